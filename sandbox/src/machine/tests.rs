//! Tests of the machine layer. The pure ones run everywhere; the ones that boot real machines
//! need root, debootstrap, systemd-nspawn and iproute2, so they are `#[ignore]`d: run them with
//! `cargo test -p sandbox machine:: -- --ignored --nocapture --test-threads=1` (`scripts/test` runs
//! them, as root).

use super::host;
use super::net;
use super::nspawn::{inside_path, nspawn_dir, render_hosts, PROPAGATE_DIR};
use super::*;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn recipe_key_is_short_stable_hex() {
    let r = RootfsRecipe::default();
    let k = r.key();
    assert_eq!(k.len(), 12);
    assert!(k.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(k, r.clone().key());
}

#[test]
fn wait_with_cpu_counts_the_waited_for_descendants() {
    // A grandchild doing a fixed amount of work prints its own CPU time (`times`, user and
    // system); the tree's, as wait4 gives it, holds it.
    let script = r#"sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; times'; exit 3"#;
    let mut child = Command::new("sh")
        .args(["-c", script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let (status, cpu) = sys::wait_with_cpu(child).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut out, &mut text).unwrap();
    assert_eq!(status.code(), Some(3));
    // `0m0.123000s 0m0.004000s`: minutes and seconds, user then system.
    let secs = |t: &str| {
        let (m, s) = t.trim_end_matches('s').split_once('m').unwrap();
        m.parse::<f64>().unwrap() * 60.0 + s.parse::<f64>().unwrap()
    };
    let own: f64 = text
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .map(secs)
        .sum();
    assert!(own > 0.0, "the grandchild did no measurable work: {text:?}");
    assert!(
        cpu.as_secs_f64() >= own,
        "tree {cpu:?} < grandchild {own} s"
    );
}

#[test]
fn extra_packages_are_package_names_only() {
    let got = rootfs::extra_packages(Some(" python3, libc6-dev ,,x,g++,-o,a b,A,a;b"));
    assert_eq!(got, ["python3", "libc6-dev", "g++"]);
    assert!(rootfs::extra_packages(None).is_empty());
}

#[test]
fn the_debian_mirror_comes_from_the_hosts_apt_sources() {
    let src = |name: &str, text: &str| (name.to_string(), text.to_string());
    let deb822 =
        "Types: deb\nURIs: http://mirror.local/debian/\nSuites: bookworm bookworm-updates\n\
                  Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n";
    let sources = [
        src("/etc/apt/sources.list", "# deb http://commented/debian bookworm main\n"),
        src(
            "/etc/apt/sources.list.d/sec.sources",
            "Types: deb\nURIs: http://security/debian-security\nSuites: bookworm-security\nComponents: main\n",
        ),
        src("/etc/apt/sources.list.d/debian.sources", deb822),
    ];
    assert_eq!(
        rootfs::debian_mirror_in(&sources).as_deref(),
        Some("http://mirror.local/debian")
    );
    let one_line = [src(
        "/etc/apt/sources.list",
        "deb [arch=amd64 signed-by=/k.gpg] http://proxy:3142/debian trixie main contrib\n",
    )];
    assert_eq!(
        rootfs::debian_mirror_in(&one_line).as_deref(),
        Some("http://proxy:3142/debian")
    );
    let ubuntu = [src(
        "/etc/apt/sources.list",
        "deb http://archive.ubuntu.com/ubuntu jammy main restricted\n",
    )];
    assert_eq!(rootfs::debian_mirror_in(&ubuntu), None);
}

#[test]
fn recipe_key_follows_content_not_order_or_mirror() {
    let r = RootfsRecipe::default();
    let key = r.key();
    let changed = |change: fn(&mut RootfsRecipe)| {
        let mut c = r.clone();
        change(&mut c);
        c.key()
    };
    let reordered = changed(|c| {
        c.include.reverse();
        c.mask.reverse();
    });
    assert_eq!(key, reordered);
    assert_eq!(
        key,
        changed(|c| c.mirror = "http://mirror.example/debian".into())
    );
    assert_ne!(key, changed(|c| c.include.push("netcat-openbsd".into())));
    assert_ne!(key, changed(|c| c.suite = "trixie".into()));
    assert_ne!(
        key,
        changed(|c| c.mask.push("systemd-logind.service".into()))
    );
}

#[test]
fn lab_addresses_and_names() {
    let lab = Lab {
        prefix: "sbx3f2a".into(),
        subnet: [10, 213, 7],
    };
    assert_eq!(lab.switch_ns(), "sbx3f2a-sw");
    assert_eq!(lab.machine_ns(3), "sbx3f2a-m3");
    assert_eq!(lab.veth(3), "sbx3f2av3");
    assert_eq!(lab.address(0), Ipv4Addr::new(10, 213, 7, 10));
    assert_eq!(lab.address(7), Ipv4Addr::new(10, 213, 7, 17));
    assert_eq!(lab.address(MAX_MACHINE_ID), Ipv4Addr::new(10, 213, 7, 254));
    assert_eq!(
        lab.address(MAX_MACHINE_ID + 100),
        Ipv4Addr::new(10, 213, 7, 254)
    );
    assert_eq!(lab.mac(1), "0a:58:0a:d5:07:0b");
}

#[test]
fn interface_names_fit_in_15_chars() {
    let lab = Lab {
        prefix: "abcdefgh".into(),
        subnet: [10, 0, 0],
    };
    lab.validate().unwrap();
    assert!(lab.veth(MAX_MACHINE_ID).len() <= 15);
    assert!(lab.veth(999_999).len() <= 15);
}

#[test]
fn lab_prefix_is_validated() {
    for bad in ["", "abcdefghi", "Sbx", "1abc", "sb-x", "sb x"] {
        let lab = Lab {
            prefix: bad.into(),
            subnet: [10, 0, 0],
        };
        assert!(lab.validate().is_err(), "{bad:?} should be refused");
    }
    Lab {
        prefix: "s".into(),
        subnet: [10, 0, 0],
    }
    .validate()
    .unwrap();
}

#[test]
fn mountinfo_is_parsed_with_escapes() {
    let text = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
97 22 0:45 / /var/lib/sand\\040box/m/root rw,relatime shared:50 - overlay overlay rw,lowerdir=/x
98 22 0:46 / /run/netns/a rw shared:51 master:3 - nsfs nsfs rw
";
    let m = host::parse_mountinfo(text);
    assert_eq!(m.len(), 3);
    assert_eq!(m[1].point, PathBuf::from("/var/lib/sand box/m/root"));
    assert_eq!(m[1].fstype, "overlay");
    assert_eq!(m[2].fstype, "nsfs");
    assert_eq!(m[1].options, "rw,lowerdir=/x");
}

#[test]
fn a_boot_error_shows_only_what_that_boot_logged() {
    let path = std::env::temp_dir().join(format!("tail-from-{}", std::process::id()));
    std::fs::write(&path, "last boot\nthis boot\n").unwrap();
    assert_eq!(host::tail_from(&path, 10, 1500), "this boot");
    assert_eq!(host::tail_from(&path, 0, 5), "boot");
    assert_eq!(host::tail_from(&path, 99, 1500), "");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn nspawn_dir_is_found_in_any_spelling() {
    let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        nspawn_dir(&argv(&["systemd-nspawn", "-q", "-D", "/a/root", "--boot"])),
        Some("/a/root".into())
    );
    assert_eq!(
        nspawn_dir(&argv(&["systemd-nspawn", "--directory=/b"])),
        Some("/b".into())
    );
    assert_eq!(
        nspawn_dir(&argv(&["systemd-nspawn", "-D/c"])),
        Some("/c".into())
    );
    assert_eq!(nspawn_dir(&argv(&["systemd-nspawn", "-i", "img"])), None);
}

#[test]
fn hosts_file_has_localhost_self_and_peers_once() {
    let a = Ipv4Addr::new(10, 1, 2, 10);
    let b = Ipv4Addr::new(10, 1, 2, 11);
    let text = render_hosts((a, "m-0"), &[(a, "m-0".into()), (b, "m-1".into())]);
    assert_eq!(text, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.1.2.10\tm-0\n10.1.2.11\tm-1\n");
}

#[test]
fn paths_inside_machines_must_be_absolute_and_plain() {
    assert_eq!(
        inside_path("/etc/hosts").unwrap(),
        PathBuf::from("etc/hosts")
    );
    for bad in ["etc/hosts", "/etc/../root", "/", "."] {
        assert!(inside_path(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn print_uris_lines_name_package_version_and_arch() {
    let out = "'http://deb.debian.org/debian/pool/main/e/etcd/etcd-server_3.4.23-4%2bb4_amd64.deb' \
               etcd-server_3.4.23-4+b4_amd64.deb 8438488 MD5Sum:1a41\n\
               'http://m/pool/main/a/adduser/adduser_3.134_all.deb' adduser_3.134_all.deb 1 SHA256:ab\n\
               'http://m/pool/main/p/perl/perl-base_1%3a5.36.0-7_amd64.deb' perl-base_1%3a5.36.0-7_amd64.deb 1 SHA256:cd\n";
    let debs = archive::parse_print_uris(out).unwrap();
    let pins: Vec<String> = debs.iter().map(archive::Deb::pin).collect();
    assert_eq!(
        pins,
        [
            "adduser=3.134",
            "etcd-server=3.4.23-4+b4",
            "perl-base=1:5.36.0-7"
        ]
    );
    assert_eq!(debs[0].arch, "all");
    assert!(archive::parse_print_uris("'http://m/x.deb' not-a-deb-name 1 SHA256:ab").is_err());
    assert!(archive::parse_print_uris("").unwrap().is_empty());
}

#[test]
fn archive_key_follows_packages_and_resolved_versions() {
    let deb = |v: &str| archive::Deb {
        package: "etcd-server".into(),
        version: v.into(),
        arch: "amd64".into(),
    };
    let k = archive::key(&["etcd-server", "etcd-client"], &[deb("3.4.23-4")]);
    assert_eq!(k.len(), 12);
    assert_eq!(
        k,
        archive::key(&["etcd-client", "etcd-server"], &[deb("3.4.23-4")])
    );
    assert_ne!(
        k,
        archive::key(&["etcd-server", "etcd-client"], &[deb("3.4.23-5")])
    );
    assert_ne!(k, archive::key(&["etcd-server"], &[deb("3.4.23-4")]));
}

#[test]
fn machines_apt_sources_name_the_archive_only() {
    let with = archive::sources(true);
    let lines: Vec<&str> = with
        .iter()
        .flat_map(|(_, text)| text.lines())
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert_eq!(
        lines,
        [format!("deb [trusted=yes] file:{} ./", archive::MOUNT)]
    );
    // /etc/apt/sources.list is always replaced (the rootfs's names the Debian mirror).
    assert_eq!(with[0].0, "/etc/apt/sources.list");
    assert_eq!(archive::sources(false).len(), 1);
}

#[test]
fn machine_round_trips_through_json() {
    let m = Machine {
        id: 2,
        nspawn_pid: 1234,
        netns: "sbx-m2".into(),
        hostname: "juju-x-2".into(),
        address: Ipv4Addr::new(10, 0, 0, 12),
        dir: "/h/machines/2".into(),
        root: "/h/machines/2/root".into(),
    };
    let back: Machine = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
    assert_eq!(back, m);
    // Not a live nspawn process for that root: never taken for alive.
    assert!(!back.is_alive());
    assert_eq!(back.pid1(), None);
}

// ---- Real machines (root only) ----

const PREFIX: &str = "mtest";

/// Sweeps everything the real-machine tests create, even when they fail.
struct Guard {
    home: PathBuf,
    prefix: &'static str,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(e) = sweep(self.prefix, &self.home) {
            eprintln!("sweep: {e:#}");
        }
        let _ = host::remove_tree(&self.home);
    }
}

fn host_network() -> String {
    let mut s = String::new();
    for args in [
        &["-o", "link"][..],
        &["-o", "addr"],
        &["route"],
        &["-6", "route"],
        &["rule"],
    ] {
        s.push_str(&host::run(Command::new("ip").args(args)).unwrap());
    }
    s
}

fn sh(m: &Machine, script: &str) -> ExecOutput {
    m.run(&["bash", "-c", script], Duration::from_secs(20))
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().to_string()
}

/// Exit status of a 2-second TCP connection attempt from `from` to `to`'s echo port.
fn connect(from: &Machine, to: Ipv4Addr) -> (i32, String) {
    let out = sh(
        from,
        &format!("timeout 2 bash -c 'exec 3<>/dev/tcp/{to}/7000; head -c 5 <&3'"),
    );
    (out.status, text(&out.stdout))
}

fn assert_clean(home: &Path) {
    let ns: Vec<String> = net::netns_list()
        .into_iter()
        .filter(|n| n.starts_with(&format!("{PREFIX}-")))
        .collect();
    assert!(ns.is_empty(), "namespaces left: {ns:?}");
    let mounts: Vec<_> = host::mounts(None)
        .into_iter()
        .filter(|m| m.point.starts_with(home))
        .collect();
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    let nspawns: Vec<i32> = host::pids()
        .into_iter()
        .filter(|&p| host::running(p) && host::comm(p).as_deref() == Some("systemd-nspawn"))
        .filter(|&p| nspawn_dir(&host::cmdline(p)).is_some_and(|d| d.starts_with(home)))
        .collect();
    assert!(nspawns.is_empty(), "nspawn processes left: {nspawns:?}");
    let cgroups: Vec<String> = super::cgroup::names()
        .into_iter()
        .filter(|n| n.starts_with(&format!("{PREFIX}-")))
        .collect();
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
}

fn spec(lab: &Lab, home: &Path, id: u32, binds: Vec<(PathBuf, String)>) -> MachineSpec {
    MachineSpec {
        id,
        hostname: format!("{PREFIX}-{id}"),
        dir: home.join("machines").join(id.to_string()),
        hosts: (0..3)
            .map(|i| (lab.address(i), format!("{PREFIX}-{i}")))
            .collect(),
        binds,
        ro_binds: vec![],
        address: None,
    }
}

// Needs root, debootstrap (or a cached rootfs), systemd-nspawn and iproute2; boots real machines.
#[test]
#[ignore]
fn real_machines_boot_talk_partition_and_survive_power_loss() {
    let home = std::env::temp_dir().join(format!("mtest-home-{}", std::process::id()));
    std::fs::create_dir_all(home.join("shared")).unwrap();
    std::fs::write(home.join("shared/hello"), "from the host\n").unwrap();
    let home = home.canonicalize().unwrap();
    let _guard = Guard {
        home: home.clone(),
        prefix: PREFIX,
    };
    let host_net = host_network();

    let t = Instant::now();
    let rootfs = ensure_rootfs(&RootfsRecipe::default(), &mut |l| eprintln!("{l}")).unwrap();
    eprintln!("rootfs {} ready in {:?}", rootfs.display(), t.elapsed());

    let lab = Lab {
        prefix: PREFIX.into(),
        subnet: [10, 213, 250],
    };
    let bind = vec![(home.join("shared"), "/var/lib/sandbox-shared".to_string())];
    let mut ms = Vec::new();
    for id in 0..2 {
        let t = Instant::now();
        let m = Machine::boot(&lab, &spec(&lab, &home, id, bind.clone()), &rootfs).unwrap();
        let started = t.elapsed();
        m.wait_running(Duration::from_secs(60)).unwrap();
        eprintln!(
            "machine {id}: nspawn up in {started:?}, running after {:?}",
            t.elapsed()
        );
        let state = text(&sh(&m, "systemctl is-system-running").stdout);
        let failed = text(&sh(&m, "systemctl --failed --no-legend --plain").stdout);
        assert_eq!(state, "running", "failed units: {failed}");
        ms.push(m);
    }
    let (m0, m1) = (&ms[0], &ms[1]);
    assert_eq!(host_network(), host_net, "the host's network changed");

    // Idempotent boot adopts the running machine.
    let again = Machine::boot(&lab, &spec(&lab, &home, 0, bind.clone()), &rootfs).unwrap();
    assert_eq!(again.nspawn_pid, m0.nspawn_pid);

    // Identity and network.
    for m in [m0, m1] {
        assert_eq!(text(&sh(m, "hostname").stdout), m.hostname);
        let addr = text(&sh(m, "ip -br -4 addr show eth0").stdout);
        assert!(addr.contains(&format!("{}/24", m.address)), "{addr}");
        assert!(text(&sh(m, "cat /etc/hosts").stdout).contains("mtest-1"));
        assert_eq!(
            text(&sh(m, "cat /var/lib/sandbox-shared/hello").stdout),
            "from the host"
        );
        assert_eq!(text(&sh(m, "cat /etc/machine-id").stdout).len(), 32);
    }
    assert_ne!(
        text(&sh(m0, "cat /etc/machine-id").stdout),
        text(&sh(m1, "cat /etc/machine-id").stdout)
    );
    // Each machine's systemd owns its own cgroup tree.
    for m in [m0, m1] {
        let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", m.pid1().unwrap())).unwrap();
        assert!(
            cg.contains(&format!("/etcd-sandbox/{}/payload", m.netns)),
            "{cg}"
        );
        let out = sh(m, "systemctl status systemd-journald --no-pager");
        assert!(
            !text(&out.stderr).contains("Failed to dump process list"),
            "{}",
            text(&out.stderr)
        );
    }

    // exec: exact env, cwd, stdin, status, timeout.
    let env = vec![
        ("A".to_string(), "1 2".to_string()),
        ("JUJU_UNIT_NAME".to_string(), "etcd/0".to_string()),
    ];
    let out = m0.exec(&["env"], &env, "/", None, None).unwrap();
    assert_eq!(text(&out.stdout), "A=1 2\nJUJU_UNIT_NAME=etcd/0");
    assert_eq!(
        text(
            &m0.exec(&["pwd"], &[], "/var/lib", None, None)
                .unwrap()
                .stdout
        ),
        "/var/lib"
    );
    assert_eq!(
        m0.exec(&["cat"], &[], "/", Some(b"piped in"), None)
            .unwrap()
            .stdout,
        b"piped in"
    );
    assert_eq!(
        m0.exec(&["sh", "-c", "echo err >&2; exit 7"], &[], "/", None, None)
            .unwrap()
            .status,
        7
    );
    assert!(
        m0.exec(&["no-such-program"], &[], "/", None, None)
            .unwrap()
            .status
            != 0
    );
    let t = Instant::now();
    let err = m0
        .exec(
            &["sleep", "30"],
            &[],
            "/",
            None,
            Some(Duration::from_millis(300)),
        )
        .unwrap_err();
    assert!(format!("{err:#}").contains("timed out"), "{err:#}");
    assert!(t.elapsed() < Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    let left: Vec<String> = m0
        .processes()
        .iter()
        .filter(|&&p| host::comm(p).as_deref() == Some("sleep"))
        .map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default())
        .collect();
    assert!(left.is_empty(), "sleep survived the timeout: {left:?}");
    // spawn: killing the child kills the command inside.
    let mut child = m0.spawn(&["sleep", "31"], &[], "/").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(m0
        .processes()
        .iter()
        .any(|&p| host::comm(p).as_deref() == Some("sleep")));
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !m0.processes()
            .iter()
            .any(|&p| host::comm(p).as_deref() == Some("sleep")),
        "spawned sleep survived kill"
    );
    let t = Instant::now();
    for _ in 0..20 {
        m0.exec(&["true"], &[], "/", None, None).unwrap();
    }
    eprintln!("exec round trip: {:?}", t.elapsed() / 20);

    // write_file: on the overlay, on a tmpfs inside the machine, through a symlink dir.
    m1.write_file("/var/lib/mtest/data", b"kept\n", 0o600)
        .unwrap();
    assert_eq!(
        text(
            &sh(
                m1,
                "stat -c %a /var/lib/mtest/data; cat /var/lib/mtest/data"
            )
            .stdout
        ),
        "600\nkept"
    );
    m1.write_file("/tmp/on-tmpfs", b"tmp\n", 0o644).unwrap();
    assert_eq!(text(&sh(m1, "cat /tmp/on-tmpfs").stdout), "tmp");
    m1.write_file("/run/mtest/x", b"run\n", 0o755).unwrap();
    assert_eq!(
        text(&sh(m1, "stat -c %a /run/mtest/x; cat /run/mtest/x").stdout),
        "755\nrun"
    );

    // copy_dir_in keeps modes and symlinks.
    let src = home.join("charm");
    std::fs::create_dir_all(src.join("hooks")).unwrap();
    std::fs::write(src.join("metadata.yaml"), "name: etcd\n").unwrap();
    std::fs::write(src.join("dispatch"), "#!/bin/sh\necho dispatched \"$@\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(src.join("dispatch"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("../dispatch", src.join("hooks/install")).unwrap();
    m1.copy_dir_in(&src, "/var/lib/juju/charm").unwrap();
    let out = m1
        .exec(
            &["./hooks/install", "x"],
            &[],
            "/var/lib/juju/charm",
            None,
            None,
        )
        .unwrap();
    assert_eq!(text(&out.stdout), "dispatched x", "{}", text(&out.stderr));
    assert_eq!(
        text(&sh(m1, "readlink /var/lib/juju/charm/hooks/install").stdout),
        "../dispatch"
    );

    // Talk over the switch: an echo service on machine 1, socket-activated by its systemd.
    m1.write_file(
        "/etc/systemd/system/echo.socket",
        b"[Socket]\nListenStream=7000\nAccept=yes\n",
        0o644,
    )
    .unwrap();
    m1.write_file(
        "/etc/systemd/system/echo@.service",
        b"[Service]\nExecStart=/bin/echo hello\nStandardOutput=socket\n",
        0o644,
    )
    .unwrap();
    let out = sh(m1, "systemctl daemon-reload && systemctl start echo.socket");
    assert_eq!(out.status, 0, "{}", text(&out.stderr));
    assert_eq!(connect(m0, m1.address), (0, "hello".into()));

    // Partition from the switch side, then heal.
    m1.partition(&lab).unwrap();
    assert_ne!(
        connect(m0, m1.address).0,
        0,
        "partitioned machine still reachable"
    );
    m1.heal(&lab).unwrap();
    assert_eq!(connect(m0, m1.address), (0, "hello".into()));
    // Cut only 0 <-> 1 from machine 0's side, then undo.
    m0.block_from(&[m1.address]).unwrap();
    assert_ne!(connect(m0, m1.address).0, 0, "blocked peer still reachable");
    m0.unblock_all().unwrap();
    assert_eq!(connect(m0, m1.address), (0, "hello".into()));
    assert_eq!(host_network(), host_net, "the host's network changed");

    // Memory of idle machines.
    for m in [m0, m1] {
        let rss: u64 = m
            .processes()
            .iter()
            .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
            .filter_map(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))?
                    .split_whitespace()
                    .nth(1)?
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        eprintln!(
            "machine {}: {} processes, PSS {} MiB, RSS sum {} MiB",
            m.id,
            m.processes().len(),
            m.memory_bytes() / (1 << 20),
            rss / 1024
        );
    }

    // Power loss keeps the disk; a new boot finds the file, the echo socket and the network.
    let old_pid1 = m1.pid1().unwrap();
    let t = Instant::now();
    m1.kill().unwrap();
    eprintln!("kill took {:?}", t.elapsed());
    assert!(!m1.is_alive());
    assert!(!host::running(old_pid1));
    assert!(
        host::mount_at(&m1.root).is_some(),
        "overlay must stay mounted after a power loss"
    );
    // An nspawn killed before it cleaned up leaves its propagation directory in the host's
    // /run: the next boot and the destroy remove it.
    let propagate = Path::new(PROPAGATE_DIR).join(&m1.hostname);
    std::fs::create_dir_all(propagate.join("incoming")).unwrap();
    std::fs::write(propagate.join("incoming/left"), "").unwrap();
    let t = Instant::now();
    let m1b = Machine::boot(&lab, &spec(&lab, &home, 1, bind.clone()), &rootfs).unwrap();
    m1b.wait_running(Duration::from_secs(60)).unwrap();
    eprintln!("machine 1 rebooted to running in {:?}", t.elapsed());
    assert_ne!(m1b.nspawn_pid, m1.nspawn_pid);
    assert_eq!(text(&sh(&m1b, "cat /var/lib/mtest/data").stdout), "kept");
    assert_eq!(text(&sh(&m1b, "systemctl enable echo.socket >/dev/null 2>&1; systemctl start echo.socket; echo ok").stdout), "ok");
    assert_eq!(connect(m0, m1b.address), (0, "hello".into()));

    // Clean poweroff.
    let t = Instant::now();
    m0.poweroff(Duration::from_secs(20)).unwrap();
    eprintln!("poweroff took {:?}", t.elapsed());
    assert!(!m0.is_alive());

    // Two more booted in parallel; they are left for sweep to find.
    let t = Instant::now();
    let more: Vec<Machine> = std::thread::scope(|s| {
        let hs: Vec<_> = (2..4)
            .map(|id| {
                let (lab, home, rootfs) = (&lab, &home, &rootfs);
                s.spawn(move || {
                    let m = Machine::boot(lab, &spec(lab, home, id, vec![]), rootfs).unwrap();
                    m.wait_running(Duration::from_secs(60)).unwrap();
                    m
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!(
        "machines 2 and 3 booted in parallel to running in {:?}",
        t.elapsed()
    );
    assert_eq!(connect(&more[0], m1b.address), (0, "hello".into()));

    destroy_machine(&lab, 0, &m0.dir, Some(m0.nspawn_pid)).unwrap();
    destroy_machine(&lab, 1, &m1b.dir, None).unwrap();
    destroy_machine(&lab, 1, &m1b.dir, None).unwrap(); // idempotent
    assert!(!m1b.dir.exists());
    assert!(!net::netns_exists(&lab.machine_ns(1)));
    sweep(PREFIX, &home).unwrap();
    assert!(more.iter().all(|m| !m.is_alive()));
    for m in [m0, &m1b].into_iter().chain(&more) {
        let left = Path::new(PROPAGATE_DIR).join(&m.hostname);
        assert!(!left.exists(), "{} left behind", left.display());
    }
    lab.destroy().unwrap();
    assert_clean(&home);
    assert_eq!(host_network(), host_net, "the host's network changed");
}

// Needs root, systemd-nspawn and a host whose apt can download etcd-server and etcd-client
// (once: the archive is cached); boots one real machine.
#[test]
#[ignore]
fn a_machine_installs_etcd_from_the_archive_with_no_network() {
    const ARCHIVE_PREFIX: &str = "mtarc";
    let home = std::env::temp_dir().join(format!("mtarc-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let home = home.canonicalize().unwrap();
    let _guard = Guard {
        home: home.clone(),
        prefix: ARCHIVE_PREFIX,
    };
    let host_net = host_network();
    let rootfs = ensure_rootfs(&RootfsRecipe::default(), &mut |l| eprintln!("{l}")).unwrap();
    let dir =
        archive::ensure_archive(&rootfs, archive::PACKAGES, &mut |l| eprintln!("{l}")).unwrap();
    let index = std::fs::read_to_string(dir.join("Packages")).unwrap();
    for p in archive::PACKAGES {
        assert!(index.contains(&format!("Package: {p}\n")), "{index}");
    }
    let again =
        archive::ensure_archive(&rootfs, archive::PACKAGES, &mut |l| panic!("rebuilt: {l}"));
    assert_eq!(again.unwrap(), dir, "the archive is cached");

    let lab = Lab {
        prefix: ARCHIVE_PREFIX.into(),
        subnet: [10, 213, 251],
    };
    let mut spec = spec(&lab, &home, 0, vec![]);
    spec.hostname = format!("{ARCHIVE_PREFIX}-0");
    spec.ro_binds = vec![(dir.clone(), archive::MOUNT.to_string())];
    let m = Machine::boot(&lab, &spec, &rootfs).unwrap();
    m.wait_running(Duration::from_secs(60)).unwrap();
    for (path, text) in archive::sources(true) {
        m.write_file(path, text.as_bytes(), 0o644).unwrap();
    }
    let install = m
        .run(
            &[
                "sh",
                "-c",
                "apt-get update && apt-get install -y etcd-server etcd-client",
            ],
            Duration::from_secs(300),
        )
        .unwrap();
    assert_eq!(
        install.status,
        0,
        "{}{}",
        text(&install.stdout),
        text(&install.stderr)
    );
    assert!(text(&sh(&m, "etcdctl version").stdout).contains("etcdctl version: 3.4"));
    assert!(text(&sh(&m, "etcd --version").stdout).contains("etcd Version: 3.4"));
    let write = sh(&m, &format!("touch {}/x", archive::MOUNT));
    assert_ne!(write.status, 0, "the archive is read-only in the machine");
    // The machine's only links are its loopback and its veth.
    let links = text(&sh(&m, "ip -o link | awk -F': ' '{print $2}' | cut -d@ -f1").stdout);
    assert_eq!(links, "lo\neth0");

    destroy_machine(&lab, 0, &m.dir, Some(m.nspawn_pid)).unwrap();
    lab.destroy().unwrap();
    assert_eq!(host_network(), host_net, "the host's network changed");
}

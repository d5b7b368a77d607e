//! The charm's package fallback on real machines: deployed without the `etcd` resource, the charm
//! installs Debian's `etcd-server` and `etcd-client` with apt, from the sandbox's package archive
//! (the machines have no other network), and runs etcd 3.4 from them as its own service.
//! Needs root: it boots machines.

#[path = "support/mod.rs"]
mod support;
use support::{built_charm, etcdctl, get, main_pid, sh, voting_members, Sandbox};

#[test]
fn without_a_resource_the_charm_runs_etcd_from_the_distributions_packages() {
    let sb = Sandbox::new("etcd_pkg");
    let (charm, _) = built_charm();
    sb.ok(&["deploy", charm.to_str().unwrap(), "-n", "3"]);
    sb.wait_active(3);
    for u in ["etcd/0", "etcd/1", "etcd/2"] {
        let pkgs = sh(
            &sb,
            u,
            "dpkg-query -W -f='${Package} ${Status} ${Version}\\n' etcd-server etcd-client",
        );
        // dpkg-query lists them by name.
        for (line, p) in pkgs.lines().zip(["etcd-client", "etcd-server"]) {
            assert!(
                line.starts_with(&format!("{p} install ok installed 3.4.")),
                "{u}: {pkgs}"
            );
        }
        // The charm's service runs the package's binary; the package's own service stays off.
        let pid = main_pid(&sb, u);
        assert_eq!(
            sh(&sb, u, &format!("readlink /proc/{pid}/exe")),
            "/usr/bin/etcd"
        );
        assert_eq!(
            sh(&sb, u, "readlink -f /usr/local/bin/etcd"),
            "/usr/bin/etcd"
        );
        assert!(sh(&sb, u, "etcdctl version").contains("etcdctl version: 3.4."));
        assert_eq!(
            sh(&sb, u, "systemctl show -p FragmentPath --value etcd"),
            "/etc/systemd/system/etcd.service",
            "{u} runs the package's etcd.service, not the charm's"
        );
        let (code, out, err) = etcdctl(&sb, u, "member list");
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(
            voting_members(&out),
            ["etcd0", "etcd1", "etcd2"],
            "members seen from {u}"
        );
    }
    // No apt source but the archive: the machine reaches nothing else.
    let sources = sh(
        &sb,
        "etcd/0",
        "cat /etc/apt/sources.list /etc/apt/sources.list.d/* | grep -v '^#'",
    );
    assert_eq!(
        sources,
        "deb [trusted=yes] file:/var/lib/sandbox-archive ./"
    );

    let (code, out, err) = etcdctl(&sb, "etcd/0", "put from-package works");
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(get(&sb, "etcd/2", "from-package").as_deref(), Ok("works"));
    let health = sb.ok(&["run", "etcd/1", "health"]);
    assert!(health.contains("cluster is healthy"), "{health}");
}

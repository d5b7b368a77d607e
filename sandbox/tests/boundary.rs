//! The boundary between a charm and the host: a hook reaches only its own unit, through its
//! machine's tool socket, while its context is live; charm archives stay inside the charm;
//! everything under $SANDBOX_HOME is owner-only and the logs keep secrets out. Needs root.

mod common;
use common::{copy_executable, probe_charm as probe, sandbox_bin, Sandbox};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

const TOOL_SOCKET: &str = "/var/lib/juju/sandbox/agent.sock";

/// Where the probe's `intrude` action finds the sandbox's command line on probe/0.
const CLI: &str = "/root/sandbox-cli";

/// Entries under `dir` that group or others may read, write or enter; machine disks (the
/// machines' own files, modes as in any Linux root, inside a 0700 machine dir) are left out.
fn open_to_others(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        let md = std::fs::symlink_metadata(&p).expect("stat");
        // A machine's disk: its root must be 0755 for the machine's own users.
        let disk = ["upper", "work", "root"].iter().any(|d| p.ends_with(d))
            && p.parent()
                .and_then(|m| m.parent())
                .is_some_and(|m| m.ends_with("machines"));
        if md.file_type().is_symlink() || disk {
            continue;
        }
        if md.permissions().mode() & 0o077 != 0 {
            out.push(format!(
                "{:o} {}",
                md.permissions().mode() & 0o7777,
                p.display()
            ));
        }
        if md.is_dir() {
            open_to_others(&p, out);
        }
    }
}

#[test]
fn a_hook_reaches_only_its_own_unit() {
    let sb = Sandbox::new("boundary");
    sb.ok(&["deploy", &probe(), "-n", "2"]);
    sb.wait_active(2);

    // probe/1 runs an exec that holds its context open until told to stop (at most a minute).
    std::thread::scope(|s| {
        let held = s.spawn(|| {
            sb.exec(
                "probe/1",
                "echo \"$JUJU_CONTEXT_ID\" > /run/held-context; \
                 for i in $(seq 300); do [ -e /run/release ] && break; sleep 0.2; done",
            )
        });
        let ctx = sb.eventually("probe/1's context", Duration::from_secs(60), || {
            let (_, out, _) = sb.ssh("probe/1", "cat /run/held-context 2>/dev/null");
            (!out.trim().is_empty()).then(|| out.trim().to_string())
        });
        let as_held = format!(
            "JUJU_CONTEXT_ID={ctx} JUJU_AGENT_SOCKET_ADDRESS={TOOL_SOCKET} \
             /var/lib/juju/tools/unit-probe-1/unit-get private-address"
        );
        // On its own machine, the live context works.
        let (code, addr, err) = sb.ssh("probe/1", &as_held);
        assert_eq!(code, 0, "{err}");
        assert!(addr.trim().starts_with("10."), "{addr}");

        // The attacker gets the whole sandbox client (the hook tools are only `jujuc`), so every
        // verb is put to each socket.
        copy_executable(&sb, "probe/0", &sandbox_bin(), CLI);
        let out = sb.ok(&[
            "run",
            "probe/0",
            "intrude",
            &format!("context={ctx}"),
            "--format",
            "json",
        ]);
        sb.ssh("probe/1", "touch /run/release");
        let (code, _, _) = held.join().expect("held exec");
        assert_eq!(code, 0);

        let (_, log, _) = sb.ssh("probe/0", "cat /var/lib/probe/intrude.log");
        let res: serde_json::Value =
            serde_json::from_str(out.lines().last().expect("json")).expect("json");
        assert_eq!(res["succeeded"], "0", "{log}");
        let sockets = res["sockets"].as_str().expect("sockets");
        assert!(sockets.split(' ').any(|s| s == TOOL_SOCKET), "{sockets}");
        assert!(!sockets.contains("controller"), "{sockets}");
        // On the tool socket every verb and every call as the other unit is refused as such;
        // `debug-log` reads a file on the host, which the machine has not got.
        let on_tool: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with(&format!("failed {TOOL_SOCKET}: ")))
            .collect();
        assert_eq!(on_tool.len(), 38, "{log}");
        for l in on_tool {
            assert!(
                l.contains("refused: ")
                    || l.contains(": sandbox debug-log --replay --no-tail: ERROR no model log"),
                "{l}"
            );
        }

        // cmd/jujud/run/run.go: juju-exec from inside a hook is refused; for a unit on another
        // machine the controller answers as for one that does not exist.
        let exec: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with("failed juju-exec: "))
            .collect();
        assert_eq!(exec.len(), 3, "{log}");
        assert!(
            exec[0].contains("ERROR juju-exec cannot be called from within a hook"),
            "{log}"
        );
        for (l, unit) in exec[1..].iter().zip(["probe/1", "nosuch/7"]) {
            assert!(
                l.ends_with(&format!("ERROR unit \"{unit}\" not found on this machine")),
                "{l}"
            );
        }

        // Once the exec is over its context is dead on its own machine too.
        let (code, _, err) = sb.ssh("probe/1", &as_held);
        assert_eq!(code, 1);
        assert!(err.contains("refused: no hook, action or exec"), "{err}");
    });
    // Nothing changed.
    assert_eq!(sb.ok(&["config", "probe", "message"]).trim(), "ready");
    assert_eq!(sb.units("probe"), ["probe/0", "probe/1"]);
    let status = sb.status();
    assert!(!status.to_string().contains("intruded"), "{status}");

    // A charm whose symlink leads out of the charm is refused, naming the entry.
    let evil = sb.home.join("evil.charm");
    {
        use std::io::Write;
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        let mut w = zip::ZipWriter::new(std::fs::File::create(&evil).expect("zip"));
        w.start_file("metadata.yaml", opts).expect("entry");
        w.write_all(b"name: evil\n").expect("write");
        w.add_symlink("hooks", "../../../../../etc", opts)
            .expect("link");
        w.start_file("hooks/evil", opts.unix_permissions(0o755))
            .expect("entry");
        w.write_all(b"#!/bin/sh\n").expect("write");
        w.finish().expect("zip");
    }
    let out = sb.run(&["deploy", &evil.to_string_lossy()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("entry \"hooks\" is a symlink that other entries would be written through"),
        "{err}"
    );
    std::fs::remove_file(&evil).expect("rm");

    // Secrets never reach the log.
    sb.exec(
        "probe/0",
        "relation-set -r 99 client_key=TOPSECRET1; juju-log 'db password=TOPSECRET2'; \
         printf -- '-----BEGIN EC PRIVATE KEY-----\\nTOPSECRET3\\n-----END EC PRIVATE KEY-----\\n' >&2",
    );
    let log = sb.ok(&["debug-log", "--replay", "--no-tail"]);
    assert!(log.contains("client_key=<redacted>"), "{log}");
    assert!(!log.contains("TOPSECRET"), "{log}");

    // Everything under the home is the owner's alone.
    let mode = std::fs::metadata(&sb.home)
        .expect("home")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    let mut open = vec![];
    open_to_others(&sb.home, &mut open);
    assert!(open.is_empty(), "readable by others: {open:#?}");
}

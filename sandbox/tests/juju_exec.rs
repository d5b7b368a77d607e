//! `juju-exec` on a machine (`juju-run` in Juju 2.9): a unit's hook context from a shell or a
//! systemd timer on its machine, as Juju's. Each check names the juju/juju file it follows.
//! Needs root.

mod common;
use common::{probe_charm as probe, Sandbox};
use std::time::Duration;

#[test]
fn juju_exec_runs_in_the_units_hook_context() {
    let sb = Sandbox::new("juju_exec");
    sb.ok(&["deploy", &probe(), "-n", "2"]);
    sb.wait_active(2);

    // cmd/jujud/run/run.go `Init`, worker/uniter/runner/runner.go `RunCommands`: the one
    // argument runs verbatim through bash in the charm dir, with the hook environment (no
    // dispatch path, no hook name, an exec's context id); output and exit code pass through; the
    // relation write is committed although the script exits 3.
    let (code, out, err) = sb.ssh(
        "probe/0",
        "/usr/bin/juju-exec probe/0 '[[ -n $BASH_VERSION ]] && \
         echo \"${JUJU_DISPATCH_PATH-unset} [$JUJU_HOOK_NAME] $PWD $JUJU_UNIT_NAME\"; \
         echo \"$JUJU_CONTEXT_ID\"; relation-set -r peer:0 via=juju-exec; echo oops >&2; exit 3'",
    );
    assert_eq!(code, 3, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "unset [] /var/lib/juju/agents/unit-probe-0/charm probe/0"
    );
    assert!(lines[1].starts_with("probe/0-run-commands-"), "{out}");
    assert_eq!(err, "oops\n");
    let (_, via, _) = sb.exec("probe/1", "relation-get -r peer:0 via probe/0");
    assert_eq!(via.trim(), "juju-exec");

    // Several arguments are joined with juju/utils `CommandString`; the unit may be a tag, or
    // left out when it is the machine's only one.
    let (code, out, err) = sb.ssh(
        "probe/0",
        "juju-exec -u unit-probe-0 -- printf '%s,' 'a b' '$HOME'; echo; juju-exec hostname",
    );
    assert_eq!(code, 0, "{err}");
    let (_, host, _) = sb.ssh("probe/0", "hostname");
    assert_eq!(out, format!("a b,$HOME,\n{host}"));

    // run.go `Init`: never from inside a hook context (a hook's background process included).
    let (code, _, err) = sb.exec("probe/0", "juju-exec probe/0 true");
    assert_eq!(code, 2);
    assert!(
        err.starts_with("ERROR juju-exec cannot be called from within a hook, have context \"probe/0-run-commands-"),
        "{err}"
    );

    // run.go `executeInUnitContext`: only this machine's units, also when the check on the
    // machine is fooled by a made-up agent directory.
    let (code, _, err) = sb.ssh(
        "probe/0",
        "juju-exec probe/1 id; mkdir -p /var/lib/juju/agents/unit-probe-1 && juju-exec probe/1 id",
    );
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "ERROR unit \"probe/1\" not found on this machine\n".repeat(2)
    );

    // worker/uniter/runner/context/contextfactory.go `inferRemoteUnit`: `-r` gives a relation
    // context, its one member the remote unit; run.go `checkRelationId` checks the id first.
    let (code, out, err) = sb.ssh(
        "probe/0",
        "juju-exec -r peer:0 probe/0 'echo $JUJU_RELATION_ID $JUJU_REMOTE_UNIT $JUJU_REMOTE_APP; \
         relation-get private-address'",
    );
    assert_eq!(code, 0, "{err}");
    let (_, addr1, _) = sb.exec("probe/1", "unit-get private-address");
    assert_eq!(out, format!("peer:0 probe/1 probe\n{addr1}"));
    for (flags, msg) in [
        ("-r 7", "unknown relation id: 7"),
        ("-r peer", "invalid relation id"),
        (
            "-r 0 --remote-unit probe/5",
            "unknown remote unit probe/5; possibilities are [probe/1]",
        ),
        (
            "--remote-unit probe/1",
            "remote unit: probe/1, provided without a relation",
        ),
    ] {
        let (code, _, err) = sb.ssh("probe/0", &format!("juju-exec {flags} probe/0 true"));
        assert_eq!((code, err), (1, format!("ERROR {msg}\n")), "{flags}");
    }

    // worker/uniter/operation/runcommands.go `NeedsGlobalMachineLock`: it waits for the hook or
    // exec that is running, and runs after it.
    std::thread::scope(|s| {
        let held = s.spawn(|| {
            sb.exec(
                "probe/0",
                "touch /run/held; for i in $(seq 300); do [ -e /run/release ] && break; \
                 sleep 0.2; done; touch /run/held-done",
            )
        });
        sb.eventually("the held exec", Duration::from_secs(60), || {
            (sb.ssh("probe/0", "test -e /run/held").0 == 0).then_some(())
        });
        let waiting = s.spawn(|| {
            sb.ssh(
                "probe/0",
                "juju-exec probe/0 'test -e /run/held-done && echo after'",
            )
        });
        sb.eventually("juju-exec queued", Duration::from_secs(60), || {
            let log = sb.ok(&["debug-log", "--replay", "--no-tail"]);
            log.contains("juju-exec on machine 0 queued").then_some(())
        });
        sb.ssh("probe/0", "touch /run/release");
        assert_eq!(held.join().expect("held").0, 0);
        let (code, out, err) = waiting.join().expect("juju-exec");
        assert_eq!((code, out.as_str()), (0, "after\n"), "{err}");
    });

    // A systemd timer on the machine enters hook context as in the pattern of Canonical's
    // charms (the "event timer": juju-exec with JUJU_DISPATCH_PATH given inline).
    let (code, _, err) = sb.ssh(
        "probe/0",
        r#"cat > /etc/systemd/system/probe-tick.service <<'EOF'
[Service]
Type=oneshot
ExecStart=/usr/bin/timeout 60 /usr/bin/bash -c '/usr/bin/juju-exec "probe/0" "JUJU_DISPATCH_PATH=hooks/tick ./dispatch"'
EOF
cat > /etc/systemd/system/probe-tick.timer <<'EOF'
[Timer]
OnActiveSec=1s
OnUnitInactiveSec=1h
EOF
systemctl daemon-reload && systemctl start probe-tick.timer"#,
    );
    assert_eq!(code, 0, "{err}");
    let line = sb.eventually("the timer's tick", Duration::from_secs(60), || {
        sb.probe_log("probe/0", "hooks.log")
            .into_iter()
            .find(|l| l.starts_with("tick|"))
    });
    assert_eq!(line, "tick||||");
    let env = sb.probe_log("probe/0", "env-tick");
    assert!(env.iter().any(|l| l == "JUJU_HOOK_NAME="), "{env:?}");
    assert!(
        env.iter()
            .any(|l| l.starts_with("JUJU_CONTEXT_ID=probe/0-run-commands-")),
        "{env:?}"
    );
}

#[test]
fn juju_run_in_juju_2_9_mode() {
    let sb = Sandbox::with_agent_version("juju_run29", Some("2.9.44"));
    sb.ok(&["deploy", &probe()]);
    sb.wait_active(1);
    // core/paths/paths.go: 2.9 machines have /usr/bin/juju-run and no juju-exec.
    let (code, out, err) = sb.ssh(
        "probe/0",
        "test ! -e /usr/bin/juju-exec && juju-run probe/0 'echo $JUJU_VERSION'",
    );
    assert_eq!((code, out.as_str()), (0, "2.9.44\n"), "{err}");
    let (code, _, err) = sb.exec("probe/0", "juju-run probe/0 true");
    assert_eq!(code, 2);
    assert!(
        err.starts_with("ERROR juju-run cannot be called from within a hook"),
        "{err}"
    );
}

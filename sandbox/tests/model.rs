//! The sandbox behaves as Juju does: hook order and environment, hook tools, commit at exit,
//! errors and retries, actions, relations, leadership, faults, and a clean host afterwards.
//! These need root: they boot real systemd-nspawn machines.

mod common;
use common::{probe_charm as probe, Sandbox};
use std::time::Duration;

fn hooks(sb: &Sandbox, unit: &str) -> Vec<String> {
    sb.probe_log(unit, "hooks.log")
}

#[test]
fn hooks_tools_actions_and_errors() {
    let sb = Sandbox::new("hooks_tools");
    sb.ok(&["deploy", &probe(), "-n", "2"]);
    sb.wait_active(2);
    let leader = sb.leader("probe").expect("a leader");
    assert_eq!(leader, "probe/0");

    // Juju's install sequence, then the peers join each other.
    let h = hooks(&sb, "probe/0");
    let names: Vec<&str> = h.iter().map(|l| l.split('|').next().unwrap()).collect();
    assert_eq!(
        names[..5],
        [
            "install",
            "peer-relation-created",
            "leader-elected",
            "config-changed",
            "start"
        ],
        "{h:?}"
    );
    let joined = h
        .iter()
        .position(|l| l.starts_with("peer-relation-joined|probe/1|"))
        .expect("joined");
    assert!(
        h[joined + 1].starts_with("peer-relation-changed|probe/1|"),
        "{h:?}"
    );
    let h1 = hooks(&sb, "probe/1");
    assert!(
        h1.iter().any(|l| l.starts_with("leader-settings-changed")),
        "{h1:?}"
    );

    // The environment of a hook.
    let (_, env, _) = sb.ssh("probe/1", "cat /var/lib/probe/env-peer-relation-joined");
    for want in [
        "JUJU_UNIT_NAME=probe/1",
        "JUJU_DISPATCH_PATH=hooks/peer-relation-joined",
        "JUJU_HOOK_NAME=peer-relation-joined",
        "JUJU_RELATION=peer",
        "JUJU_RELATION_ID=peer:0",
        "JUJU_REMOTE_UNIT=probe/0",
        "JUJU_REMOTE_APP=probe",
        "JUJU_CHARM_DIR=/var/lib/juju/agents/unit-probe-1/charm",
        "CHARM_DIR=/var/lib/juju/agents/unit-probe-1/charm",
        "JUJU_MODEL_NAME=default",
        "JUJU_AGENT_SOCKET_NETWORK=unix",
        "PATH=/var/lib/juju/tools/unit-probe-1:",
    ] {
        assert!(env.contains(want), "missing {want} in\n{env}");
    }
    assert!(
        env.contains("JUJU_CONTEXT_ID=")
            && env.contains("JUJU_MODEL_UUID=")
            && env.contains("JUJU_VERSION=")
    );

    // Hook tools: output formats and exit codes.
    assert_eq!(sb.exec("probe/0", "is-leader").1, "True\n");
    assert_eq!(sb.exec("probe/1", "is-leader --format json").1, "false\n");
    let (code, _, err) = sb.exec("probe/1", "leader-set a=b");
    assert_eq!(
        (code, err.trim()),
        (
            1,
            "ERROR cannot write leadership settings: cannot write settings: not the leader"
        )
    );
    let (code, _, err) = sb.exec("probe/0", "status-set bogus");
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("ERROR invalid status \"bogus\""), "{err}");
    assert_eq!(
        sb.exec("probe/0", "config-get no-such-key"),
        (0, String::new(), String::new())
    );
    assert_eq!(sb.exec("probe/1", "leader-get leader").1, "probe/0\n");

    // Relation writes are committed only when the hook exits 0; an exec's are committed
    // whatever its exit code (worker/uniter/runner/runner.go `RunCommands`).
    let (code, _, _) = sb.exec("probe/0", "relation-set -r peer:0 k=early; exit 1");
    assert_eq!(code, 1);
    assert_eq!(
        sb.exec("probe/1", "relation-get -r peer:0 k probe/0").1,
        "early\n"
    );
    sb.exec("probe/0", "relation-set -r 0 k=kept");
    assert_eq!(
        sb.exec("probe/1", "relation-get -r peer:0 k probe/0").1,
        "kept\n"
    );
    sb.eventually(
        "relation-changed after the commit",
        Duration::from_secs(60),
        || {
            hooks(&sb, "probe/1")
                .iter()
                .filter(|l| l.starts_with("peer-relation-changed|probe/0"))
                .nth(1)
                .cloned()
        },
    );

    // Actions, Juju 3 and 2.x forms; results nested from dotted keys.
    let out = sb.ok(&[
        "run",
        "probe/0",
        "echo",
        "message=hi",
        "count=3",
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(json["result"]["message"], "hi");
    assert_eq!(json["result"]["count"], "3");
    let failed = sb.run(&["run", "probe/0", "fail"]);
    assert_eq!(failed.status.code(), Some(1));
    let bad = sb.run(&["run", "probe/0", "echo", "message=hi", "bogus=1"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr)
        .contains("additional property \"bogus\" is not allowed"));
    let queued = sb.ok(&["action", "do", "probe/1", "echo", "message=two"]);
    let id = queued.trim().rsplit(' ').next().unwrap().to_string();
    let fetched = sb.ok(&["action", "fetch", &id, "--wait", "1m"]);
    assert!(
        fetched.contains("message: two") && fetched.contains("status: completed"),
        "{fetched}"
    );

    // A failing hook puts the unit in error; it is retried; resolved retries now.
    sb.ok(&["config", "probe", "fail-hook=config-changed"]);
    sb.eventually("probe/1 in error", Duration::from_secs(60), || {
        let s = sb.status();
        let u = &s["applications"]["probe"]["units"]["probe/1"];
        (u["workload-status"]["current"] == "error")
            .then(|| u["workload-status"]["message"].clone())
    });
    let s = sb.status();
    assert_eq!(
        s["applications"]["probe"]["units"]["probe/1"]["workload-status"]["message"],
        "hook failed: \"config-changed\""
    );
    for u in ["probe/0", "probe/1"] {
        sb.ssh(u, "touch /var/lib/probe/fail-ok");
    }
    let _ = sb.run(&["resolved", "probe/0"]);
    let _ = sb.run(&["resolved", "probe/1"]);
    sb.wait_active(2);
    // The failed hook's state-set was discarded.
    assert_eq!(sb.exec("probe/1", "state-get failed-write").1.trim(), "");

    // A refresh runs upgrade-charm, config-changed, start.
    sb.ok(&["refresh", "probe", "--path", &probe()]);
    sb.eventually("upgrade hooks", Duration::from_secs(60), || {
        let h = hooks(&sb, "probe/1");
        let i = h.iter().rposition(|l| l.starts_with("upgrade-charm"))?;
        (h.len() > i + 2 && h[i + 1].starts_with("config-changed") && h[i + 2].starts_with("start"))
            .then_some(())
    });

    // The controller dies; bootstrap picks the model up again, machines untouched.
    let pid = std::fs::read_to_string(sb.home.join("run/controller.pid")).unwrap();
    assert!(std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(300));
    sb.ok(&["bootstrap"]);
    assert_eq!(sb.exec("probe/0", "is-leader").1, "True\n");
    sb.wait_active(2);

    // Removing the leader's unit: it departs, the other unit sees it depart and leads.
    sb.ok(&["remove-unit", "probe/0"]);
    sb.eventually("probe/1 leads", Duration::from_secs(120), || {
        (sb.leader("probe").as_deref() == Some("probe/1")).then_some(())
    });
    sb.wait_active(1);
    let h1 = hooks(&sb, "probe/1");
    assert!(
        h1.iter()
            .any(|l| l.starts_with("peer-relation-departed|probe/0|probe/0|")),
        "{h1:?}"
    );
    assert!(
        h1.last().unwrap().starts_with("leader-elected")
            || h1.iter().any(|l| l.starts_with("leader-elected")),
        "{h1:?}"
    );
}

#[test]
fn relations_and_faults() {
    let sb = Sandbox::new("relations_faults");
    sb.ok(&["deploy", &probe(), "-n", "2"]);
    sb.ok(&["deploy", &probe(), "client"]);
    sb.wait_active(3);
    sb.ok(&["integrate", "probe:info", "client:other"]);
    sb.eventually(
        "client sees both probe units",
        Duration::from_secs(120),
        || {
            let h = hooks(&sb, "client/0");
            let both = ["probe/0", "probe/1"].iter().all(|u| {
                h.iter()
                    .any(|l| l.starts_with(&format!("other-relation-changed|{u}|")))
            });
            both.then_some(())
        },
    );
    let (_, data, _) = sb.exec("client/0", "relation-get -r other:2 seen-by probe/1");
    assert_eq!(data, "probe/1\n");
    let (_, ids, _) = sb.exec("client/0", "relation-ids other --format json");
    assert_eq!(ids.trim(), "[\"other:2\"]");
    sb.ok(&["remove-relation", "probe", "client"]);
    sb.eventually("broken on the client", Duration::from_secs(120), || {
        hooks(&sb, "client/0")
            .iter()
            .find(|l| l.starts_with("other-relation-broken"))
            .cloned()
    });
    let h = hooks(&sb, "client/0");
    let broken = h
        .iter()
        .position(|l| l.starts_with("other-relation-broken"))
        .unwrap();
    assert!(
        h[..broken]
            .iter()
            .any(|l| l.starts_with("other-relation-departed|probe/0|")),
        "{h:?}"
    );

    // Power loss of the leader's machine: lost, leadership moves after the lease, and a forced
    // machine removal makes the other peer run departed.
    sb.ok(&["kill-machine", "probe/0"]);
    sb.eventually("probe/0 lost", Duration::from_secs(30), || {
        (sb.status()["applications"]["probe"]["units"]["probe/0"]["juju-status"]["current"]
            == "lost")
            .then_some(())
    });
    sb.eventually("probe/1 leads", Duration::from_secs(60), || {
        (sb.leader("probe").as_deref() == Some("probe/1")).then_some(())
    });
    sb.ok(&["remove-machine", "--force", "probe/0"]);
    sb.eventually("departed on probe/1", Duration::from_secs(60), || {
        hooks(&sb, "probe/1")
            .iter()
            .find(|l| l.starts_with("peer-relation-departed|probe/0|probe/0"))
            .cloned()
    });
    // A reboot keeps the disk and runs start again.
    let starts = |sb: &Sandbox| {
        sb.ssh("client/0", "grep -c '^start|' /var/lib/probe/hooks.log")
            .1
            .trim()
            .parse::<usize>()
            .unwrap_or(0)
    };
    let before = starts(&sb);
    sb.ok(&["restart-machine", "client/0"]);
    sb.eventually("start after reboot", Duration::from_secs(60), || {
        (starts(&sb) > before).then_some(())
    });
    sb.wait_active(2);

    // A partition cuts a machine off its peers; heal restores it.
    let addr = sb.status()["machines"]["2"]["dns-name"]
        .as_str()
        .unwrap()
        .to_string();
    // Port 9 has no listener: reachable means "refused" (exit 1), cut off means a timeout (124).
    let reach = |sb: &Sandbox| {
        sb.ssh(
            "probe/1",
            &format!("timeout 3 bash -c '</dev/tcp/{addr}/9' 2>/dev/null; echo $?"),
        )
        .1
    };
    sb.ok(&["partition", "client/0"]);
    let cut = reach(&sb);
    sb.ok(&["heal"]);
    let healed = reach(&sb);
    assert_eq!((cut.trim(), healed.trim()), ("124", "1"));
}

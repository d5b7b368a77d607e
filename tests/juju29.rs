//! The charm under Juju 2.9 (`sandbox bootstrap --agent-version 2.9.44`): first where a charm or
//! its operator can tell 2.9 from 3.x (`JUJU_VERSION`, no `secret-*` tools on `PATH`, status in
//! 2.9's shape, `run` meaning exec, `run-action` and `show-action-output`), then the deploy,
//! scale-out and scale-in of tests/cluster.rs. Needs root: it boots machines.

#[path = "support/mod.rs"]
mod support;
use std::time::Duration;
use support::{deploy_etcd, etcdctl, voters, Sandbox};

const VERSION: &str = "2.9.44";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn juju29_deploy_scale_and_remove() {
    let sb = Sandbox::with_agent_version("etcd_juju29", Some(VERSION));
    deploy_etcd(&sb, 1, &[]);
    sb.wait_active(1);

    // Juju 2.9's `juju run --unit` runs commands in a hook context; 2.9 registers no secret
    // commands (jujuc/server.go), so bash finds none: exit 127.
    let out = sb.run(&[
        "run",
        "--unit",
        "etcd/0",
        "echo $JUJU_VERSION; command -v secret-add || echo none; secret-get x; echo rc=$?",
    ]);
    assert_eq!(text(&out.stdout), format!("{VERSION}\nnone\nrc=127\n"));
    assert!(
        text(&out.stderr).contains("secret-get: command not found"),
        "{}",
        text(&out.stderr)
    );
    let out = sb.run(&["run", "etcd/0", "health"]);
    assert!(
        !out.status.success() && text(&out.stderr).contains("run-action"),
        "{}",
        text(&out.stderr)
    );
    let queued = sb.ok(&["run-action", "etcd/0", "health"]);
    let id = queued.trim().rsplit(' ').next().unwrap().trim_matches('"');
    let fetched = sb.ok(&["show-action-output", id, "--wait", "2m"]);
    assert!(
        fetched.contains("completed") && fetched.contains("cluster is healthy"),
        "{fetched}"
    );
    // Bootstrapping again keeps the model's version and refuses another.
    let again = sb.run(&["bootstrap", "--agent-version", "3.4.0"]);
    assert!(!again.status.success(), "{}", text(&again.stdout));

    sb.ok(&["add-unit", "etcd", "-n", "2"]);
    sb.wait_active(3);
    for u in ["etcd/0", "etcd/1", "etcd/2"] {
        assert_eq!(
            voters(&sb, u),
            ["etcd0", "etcd1", "etcd2"],
            "members seen from {u}"
        );
    }
    // cmd/juju/status/formatted.go @2.9: `series` (no `base`), relations as application names.
    let s = sb.status();
    assert_eq!(s["model"]["version"], VERSION);
    let app = &s["applications"]["etcd"];
    assert_eq!(app["series"], "bookworm", "{app}");
    assert!(app.get("base").is_none(), "{app}");
    assert_eq!(
        app["relations"]["cluster"],
        serde_json::json!(["etcd"]),
        "{app}"
    );
    assert_eq!(app["units"]["etcd/0"]["juju-status"]["version"], VERSION);

    // Remove the Juju leader's unit: the other two keep the cluster and the data.
    assert_eq!(etcdctl(&sb, "etcd/0", "put kept-under-2.9 yes").0, 0);
    let leader = sb.leader("etcd").unwrap();
    sb.ok(&["remove-unit", &leader]);
    sb.eventually("a new leader", Duration::from_secs(120), || {
        sb.leader("etcd")
            .filter(|l| *l != leader && sb.units("etcd").len() == 2)
    });
    sb.wait_active(2);
    let left = sb.units("etcd");
    for u in &left {
        assert_eq!(voters(&sb, u).len(), 2, "members seen from {u}");
        let (_, v, _) = etcdctl(&sb, u, "get kept-under-2.9 --print-value-only");
        assert_eq!(v.trim(), "yes", "key read on {u}");
    }
}

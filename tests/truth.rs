//! A status that tells the truth, on real machines: a killed member is named in the other
//! units' status after `update-status`, and healthy again once back; etcd below 3.4 is refused
//! with nothing started; `update-status` asks Juju only what the hook before could not tell it.
//! Needs root: it boots machines.

#[path = "support/mod.rs"]
mod support;
use std::time::Duration;
use support::{built_charm, deploy_etcd, fake_etcd_resource, try_sh, workload, Sandbox};

#[test]
fn a_dead_member_is_named_in_the_others_status_until_it_is_back() {
    let sb = Sandbox::new("etcd_truth");
    deploy_etcd(&sb, 3, &[]);
    sb.wait_active(3);
    sb.ok(&["model-config", "update-status-hook-interval=10s"]);
    let healthy = |u: &str| (workload(&sb, u).1 == "3 members healthy").then_some(());
    for u in ["etcd/0", "etcd/1", "etcd/2"] {
        sb.eventually(&format!("{u} healthy"), Duration::from_secs(60), || {
            healthy(u)
        });
    }
    update_status_asks_only_what_can_change(&sb);
    sb.ok(&["kill-machine", "etcd/0"]);
    let named = "2 of 3 members healthy: etcd0 (etcd/0) does not answer";
    for u in ["etcd/1", "etcd/2"] {
        sb.eventually(
            &format!("{u} names the dead member"),
            Duration::from_secs(120),
            || {
                let (state, message) = workload(&sb, u);
                (state == "active" && message == named).then_some(())
            },
        );
    }
    sb.ok(&["restart-machine", "etcd/0"]);
    for u in ["etcd/0", "etcd/1", "etcd/2"] {
        sb.eventually(
            &format!("{u} healthy again"),
            Duration::from_secs(180),
            || healthy(u),
        );
    }
}

/// The hook tools one `update-status` of `unit` calls, from its timings in debug-log.
fn tools_of_update_status(sb: &Sandbox, unit: &str) -> Vec<String> {
    let before = sb
        .ok(&["debug-log", "--replay", "--no-tail"])
        .lines()
        .count();
    let run = "ETCD_CHARM_TRACE=1 JUJU_DISPATCH_PATH=hooks/update-status ./dispatch";
    sb.ok(&["exec", "--unit", unit, "--", run]);
    let log = sb.ok(&["debug-log", "--replay", "--no-tail"]);
    let tag = format!("unit-{}: ", unit.replace('/', "-"));
    let tools = log.lines().skip(before).filter_map(|l| {
        let (_, phase) = l.strip_prefix(&tag)?.split_once(" DEBUG   tool ")?;
        phase.split_whitespace().next().map(str::to_string)
    });
    tools.collect()
}

/// The `config-get` answer `unit` keeps for its next `update-status`.
fn kept_options(sb: &Sandbox, unit: &str) -> serde_json::Value {
    let file = "/var/lib/juju/agents/unit-*/charm/.etcd-charm-kept-answers.json";
    let kept = try_sh(sb, unit, &format!("cat {file}")).expect("kept answers");
    let kept: Vec<(Vec<String>, String)> = serde_json::from_str(&kept).expect("kept answers");
    let options = kept
        .iter()
        .find(|(k, _)| k[0] == "config-get")
        .expect("options kept");
    serde_json::from_str(&options.1).expect("config-get's answer")
}

/// A follower's `update-status` takes the options, leader settings and relation ids the hook
/// before saw, and asks Juju only `is-leader` and its own data; a changed option reaches it
/// through the `config-changed` Juju runs first.
fn update_status_asks_only_what_can_change(sb: &Sandbox) {
    let leader = sb.leader("etcd").expect("a leader");
    let units = ["etcd/0", "etcd/1", "etcd/2"];
    let follower = units
        .into_iter()
        .find(|u| *u != leader)
        .expect("a follower");
    let asked = tools_of_update_status(sb, follower);
    assert_eq!(asked, ["is-leader", "relation-get"], "{follower}");
    sb.ok(&["config", "etcd", "defrag_free_percent=1"]);
    sb.eventually("the new option kept", Duration::from_secs(120), || {
        (kept_options(sb, follower)["defrag_free_percent"] == 1).then_some(())
    });
    sb.wait_active(3);
    let asked = tools_of_update_status(sb, follower);
    assert_eq!(asked, ["is-leader", "relation-get"], "{follower}");
    sb.ok(&["config", "etcd", "--reset", "defrag_free_percent"]);
    sb.wait_active(3);
}

#[test]
fn etcd_below_3_4_is_refused_with_nothing_started() {
    let sb = Sandbox::new("etcd_too_old");
    let (charm, _) = built_charm();
    let tarball = fake_etcd_resource(&sb, "3.3.25");
    let resource = format!("etcd={}", tarball.display());
    sb.ok(&["deploy", charm.to_str().unwrap(), "--resource", &resource]);
    let (state, message) = sb.eventually("etcd 3.3 refused", Duration::from_secs(300), || {
        let (state, message) = workload(&sb, "etcd/0");
        (state == "blocked").then_some((state, message))
    });
    assert_eq!(state, "blocked");
    assert!(
        message.starts_with(
            "etcd 3.3.25 from the etcd resource refused: the charm needs etcd 3.4 or later"
        ),
        "{message}"
    );
    assert!(
        message.contains("attach etcd 3.5.x with `juju attach-resource etcd etcd="),
        "{message}"
    );
    // Nothing installed, nothing started.
    let absent = "test ! -e /usr/local/bin/etcd && test ! -e /opt/etcd/bin/etcd";
    try_sh(&sb, "etcd/0", absent).expect("no etcd binary installed");
    try_sh(&sb, "etcd/0", "test ! -e /etc/etcd/etcd.conf.yml").expect("no etcd config");
    let running = "! systemctl is-active --quiet etcd && ! grep -qx etcd /proc/[0-9]*/comm";
    try_sh(&sb, "etcd/0", running).expect("etcd not running");
}

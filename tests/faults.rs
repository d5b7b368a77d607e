//! The fault suite (issue 16), network and machine faults: etcd ×3 related to
//! `tests/charms/db-client`, whose machine runs `fault-client` (the `checker` crate) with the
//! `db` relation's data: bounded clients (puts, linearizable gets, compare-and-swap
//! transactions) and a watch (`support/faults.rs`). Each scenario runs one fault under the
//! clients and then checks that the `health` action passes, the member list matches the live
//! units, the history is linearizable, revisions only grow, the watch saw every change once and
//! in order, and every acknowledged write is on every member. `faults_membership.rs` and
//! `faults_process.rs` hold the other scenarios. Needs root: it boots machines.
//! A member's disk filled to its quota (NOSPACE) and recovered is here too.

#[path = "support/faults.rs"]
mod faults;
use std::time::Duration;
use support::{sh, try_sh, Sandbox};
#[path = "support/mod.rs"]
mod support;
use faults::{
    clients_progress, cluster, cluster_of, etcd_units, finish, raft_leader, raft_leader_if_any,
    revision, settle, start_clients, start_clients_with, RECOVER,
};

/// (a) A follower cut off the network, then healed; (c) the Raft leader cut off from both
/// followers (the clients still reach it), then healed; a flapping partition: (c) three times
/// in a row.
#[test]
fn partitions_under_clients() {
    let sb = cluster("etcd_faults_partitions");

    start_clients(&sb, "partition-follower");
    let leader = raft_leader(&sb, "etcd/0");
    let follower = etcd_units(&sb).into_iter().find(|u| *u != leader).unwrap();
    sb.ok(&["partition", &follower]);
    clients_progress(&sb, &leader, 100, "writes while a follower is cut off");
    sb.ok(&["heal", &follower]);
    sb.wait_active(4);
    finish(&sb, "partition-follower");

    start_clients(&sb, "partition-leader");
    let leader = cut_leader_off(&sb, 50);
    sb.ok(&["heal", &leader]);
    sb.wait_active(4);
    finish(&sb, "partition-leader");

    start_clients(&sb, "flapping-partition");
    for _ in 0..3 {
        let leader = cut_leader_off(&sb, 20);
        sb.ok(&["heal", &leader]);
        let unit = etcd_units(&sb)[0].clone();
        clients_progress(&sb, &unit, 20, "writes after a heal");
    }
    sb.wait_active(4);
    finish(&sb, "flapping-partition");
}

/// Cuts the Raft leader off from the other members (the clients still reach it) and waits
/// until they have elected a new leader and the clients made `n` changes through it. Returns
/// the old leader's unit.
fn cut_leader_off(sb: &Sandbox, n: i64) -> String {
    let leader = raft_leader(sb, "etcd/0");
    let followers: Vec<String> = etcd_units(sb)
        .into_iter()
        .filter(|u| *u != leader)
        .collect();
    let mut args = vec!["partition", leader.as_str()];
    for f in &followers {
        args.extend(["--from", f.as_str()]);
    }
    sb.ok(&args);
    let new_leader = sb.eventually("a new Raft leader among the followers", RECOVER, || {
        raft_leader_if_any(sb, &followers[0]).filter(|l| *l != leader)
    });
    clients_progress(sb, &new_leader, n, "writes with the old leader cut off");
    leader
}

/// (d) A machine restarted (etcd comes back under systemd); (b) the Raft leader's machine
/// killed, then removed with `remove-machine --force`, and the application grown back with
/// `add-unit`; every machine powered off at once, then started again.
#[test]
fn machine_failures_under_clients() {
    let sb = cluster("etcd_faults_machines");

    start_clients(&sb, "restart-machine");
    let leader = raft_leader(&sb, "etcd/0");
    sb.ok(&["restart-machine", &leader]);
    let other = etcd_units(&sb).into_iter().find(|u| *u != leader).unwrap();
    clients_progress(
        &sb,
        &other,
        100,
        "writes while the leader's machine restarts",
    );
    sb.eventually("the restarted member answering", RECOVER, || {
        revision(&sb, &leader)
    });
    sb.wait_active(4);
    finish(&sb, "restart-machine");

    start_clients(&sb, "kill-leader-machine");
    let leader = raft_leader(&sb, "etcd/0");
    sb.ok(&["kill-machine", &leader]);
    let survivors: Vec<String> = etcd_units(&sb)
        .into_iter()
        .filter(|u| *u != leader)
        .collect();
    clients_progress(
        &sb,
        &survivors[0],
        100,
        "writes with the leader's machine dead",
    );
    sb.ok(&["remove-machine", &leader, "--force"]);
    sb.eventually("the dead unit gone", RECOVER, || {
        (etcd_units(&sb).len() == 2).then_some(())
    });
    sb.wait_active(3);
    sb.ok(&["add-unit", "etcd"]);
    sb.wait_active(4);
    finish(&sb, "kill-leader-machine");

    start_clients(&sb, "power-off-all");
    let units = etcd_units(&sb);
    for u in &units {
        sb.ok(&["kill-machine", u]);
    }
    for u in &units {
        sb.ok(&["restart-machine", u]);
    }
    sb.wait_active(4);
    finish(&sb, "power-off-all");
}

/// The NOSPACE scenario's quota: etcd's smallest the charm takes (16 MiB).
const QUOTA: &str = "quota_backend_bytes=16777216";

/// A member's database filled to its quota under the clients: 1 MB values (outside the clients'
/// keys) written on one unit until etcd refuses them and raises the NOSPACE alarm (the clients'
/// writes are refused then, their reads go on); the filler deleted; the charm's
/// `auto_nospace_recovery` then compacts the history, defragments every member and disarms the
/// alarm at `update-status`, and the clients write again. The compaction hides the members'
/// change logs below it: `fault-client verify` reads them from the compacted revision on, and
/// every member's final values for the writes below it. The clients run up to 240 s (the
/// recovery takes several `update-status`).
#[test]
fn nospace_under_clients() {
    let sb = cluster_of("etcd_faults_nospace", 3, &["--config", QUOTA]);
    sb.ok(&["model-config", "update-status-hook-interval=10s"]);
    start_clients_with(&sb, "nospace", "--seconds 240 --max-ops 7200");
    let unit = etcd_units(&sb)[0].clone();
    let filled = sh(
        &sb,
        &unit,
        "for i in $(seq 1 40); do head -c 1000000 /dev/zero | tr '\\0' x | \
         etcdctl put big-$i >/dev/null 2>/tmp/fill.err || { cat /tmp/fill.err; break; }; done",
    );
    assert!(
        filled.contains("database space exceeded"),
        "no NOSPACE after 40 MB: {filled}"
    );
    let alarms = sh(&sb, &unit, "etcdctl alarm list");
    assert!(alarms.contains("NOSPACE"), "{alarms}");
    sh(&sb, &unit, "etcdctl del --prefix big- >/dev/null");
    sb.eventually("the alarm disarmed", Duration::from_secs(300), || {
        try_sh(&sb, &unit, "etcdctl alarm list")
            .ok()
            .filter(|a| a.trim().is_empty())
    });
    clients_progress(&sb, &unit, 30, "writes after the recovery");
    settle(&sb, 3);
    finish(&sb, "nospace");
}

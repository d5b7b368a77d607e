//! The fault suite (issue 16), network and machine faults: etcd ×3 related to
//! `tests/charms/db-client`, whose machine runs `fault-client` (the `checker` crate) with the
//! `db` relation's data: bounded clients (puts, linearizable gets, compare-and-swap
//! transactions) and a watch (`support/faults.rs`). Each scenario runs one fault under the
//! clients and then checks that the `health` action passes, the member list matches the live
//! units, the history is linearizable, revisions only grow, the watch saw every change once and
//! in order, and every acknowledged write is on every member. `faults_membership.rs` and
//! `faults_process.rs` hold the other scenarios. Needs root: it boots machines.

#[path = "support/faults.rs"]
mod faults;
use support::Sandbox;
#[path = "support/mod.rs"]
mod support;
use faults::{
    clients_progress, cluster, etcd_units, finish, raft_leader, raft_leader_if_any, revision,
    start_clients, RECOVER,
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

//! The fault suite's membership scenarios (issue 16): units removed and added under the clients
//! of `support/faults.rs` (four added at once; two of five at once, the Raft leader's, the Juju
//! leader's; the scale cycle 1 → 3 → 5 → 3 → 1 → 3). Each ends with `finish`: health passes,
//! the members are the live units, the history is linearizable and no acknowledged write is
//! lost. Needs root: it boots machines.

#[path = "support/faults.rs"]
mod faults;
#[path = "support/mod.rs"]
mod support;
use faults::{
    cluster_of, etcd_units, finish, raft_leader, revision, settle, start_clients, RECOVER,
};
use support::{sh, Sandbox};

/// Waits until the application has `n` units (the removed ones gone).
fn wait_units(sb: &Sandbox, n: usize) {
    sb.eventually(&format!("{n} etcd units"), RECOVER, || {
        (etcd_units(sb).len() == n).then_some(())
    });
}

/// One unit grown to five with `add-unit -n 4` at once; two of them removed at once (5 → 3);
/// the Raft leader's unit removed (3 → 2); the Juju leader's unit removed (2 → 1). All while
/// the clients write. The sandbox runs the remaining units' `-relation-departed` as Juju does:
/// at once, concurrently with the dying unit's teardown (not after its `stop`).
#[test]
fn removals_under_clients() {
    let sb = cluster_of("etcd_faults_removals", 1, &[]);

    start_clients(&sb, "add-four-at-once");
    sb.ok(&["add-unit", "etcd", "-n", "4"]);
    wait_units(&sb, 5);
    settle(&sb, 5);
    finish(&sb, "add-four-at-once");

    start_clients(&sb, "remove-two-of-five");
    // The Raft leader and a follower, in one command.
    let leader = raft_leader(&sb, &etcd_units(&sb)[0]);
    let follower = etcd_units(&sb).into_iter().find(|u| *u != leader).unwrap();
    sb.ok(&["remove-unit", &leader, &follower]);
    wait_units(&sb, 3);
    settle(&sb, 3);
    finish(&sb, "remove-two-of-five");

    start_clients(&sb, "remove-raft-leader");
    let leader = raft_leader(&sb, &etcd_units(&sb)[0]);
    sb.ok(&["remove-unit", &leader]);
    wait_units(&sb, 2);
    settle(&sb, 2);
    finish(&sb, "remove-raft-leader");

    start_clients(&sb, "remove-juju-leader");
    let leader = sb.leader("etcd").expect("a Juju leader");
    sb.ok(&["remove-unit", &leader]);
    wait_units(&sb, 1);
    settle(&sb, 1);
    finish(&sb, "remove-juju-leader");
}

/// Keys written before the cycles, checked on every member after each step.
const SEEDS: u32 = 20;

/// Every live member has the seed keys with their values, and the revision did not go back
/// since `last` (updated).
fn seeds_kept(sb: &Sandbox, last: &mut i64) {
    for u in etcd_units(sb) {
        let values = sh(
            sb,
            &u,
            "etcdctl get seed- --prefix --print-value-only --consistency=s",
        );
        let want: Vec<String> = (0..SEEDS).map(|i| format!("v{i}")).collect();
        let mut got: Vec<String> = values.lines().map(str::to_string).collect();
        got.sort_by_key(|v| v[1..].parse::<u32>().unwrap_or(0));
        assert_eq!(got, want, "seed keys on {u}");
    }
    let unit = etcd_units(sb)[0].clone();
    let now = sb.eventually("the revision", RECOVER, || revision(sb, &unit));
    assert!(now >= *last, "the revision went back: {now} < {last}");
    *last = now;
}

/// The scale cycle 1 → 3 → 5 → 3 → 1 → 3 in one cluster, the clients writing through each step
/// (removals of several units in one command); keys written at the start are on every member
/// after each step, and the revision never goes back.
#[test]
fn scale_cycle_keeps_the_data() {
    let sb = cluster_of("etcd_faults_scale", 1, &[]);
    let first = etcd_units(&sb)[0].clone();
    sh(
        &sb,
        &first,
        &format!(
            "for i in $(seq 0 {}); do etcdctl put seed-$i v$i >/dev/null; done",
            SEEDS - 1
        ),
    );
    let mut last = 0;
    seeds_kept(&sb, &mut last);

    // (scenario, etcd units after it); a step adds units with one `add-unit -n`, or removes the
    // last ones with one `remove-unit`.
    let steps = [
        ("scale-1-to-3", 3),
        ("scale-3-to-5", 5),
        ("scale-5-to-3", 3),
        ("scale-3-to-1", 1),
        ("scale-1-to-3-again", 3),
    ];
    for (scenario, to) in steps {
        start_clients(&sb, scenario);
        let units = etcd_units(&sb);
        if to > units.len() {
            let n = (to - units.len()).to_string();
            sb.ok(&["add-unit", "etcd", "-n", &n]);
        } else {
            let mut args = vec!["remove-unit"];
            args.extend(units[to..].iter().map(String::as_str));
            sb.ok(&args);
        }
        wait_units(&sb, to);
        settle(&sb, to);
        finish(&sb, scenario);
        seeds_kept(&sb, &mut last);
    }
}

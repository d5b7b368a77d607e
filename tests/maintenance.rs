//! Automatic maintenance on real machines, driven by `update-status` alone: a fragmented cluster
//! is defragmented member by member with the Raft leader last while a writer sees no failed
//! write, and a NOSPACE alarm is recovered from without an action. Needs root: it boots
//! machines.

#[path = "support/mod.rs"]
mod support;
use std::time::Duration;
use support::{deploy_etcd, sh, try_sh, workload, writer_script, writer_summary, Sandbox};

/// Writes `n` values of 1 MB (`big-1`…), stopping at the first refused one; its output.
fn fill(sb: &Sandbox, unit: &str, n: u32) -> String {
    sh(
        sb,
        unit,
        &format!(
            "for i in $(seq 1 {n}); do head -c 1000000 /dev/zero | tr '\\0' x | \
             etcdctl put big-$i >/dev/null 2>/tmp/fill.err || {{ cat /tmp/fill.err; break; }}; done"
        ),
    )
}

/// The charm's log lines that contain `what`, in order.
fn log_lines(sb: &Sandbox, what: &str) -> Vec<String> {
    let log = sb.ok(&["debug-log", "--replay", "--no-tail"]);
    log.lines()
        .filter(|l| l.contains(what))
        .map(str::to_string)
        .collect()
}

/// The name of the Raft leader's member (`etcd1`), from `etcdctl endpoint status --cluster`
/// (ID in the 2nd column, "is leader" in the 5th) and `etcdctl member list` (ID, name).
fn raft_leader(sb: &Sandbox, unit: &str) -> String {
    let status = sh(sb, unit, "etcdctl endpoint status --cluster");
    let id = status
        .lines()
        .map(|l| l.split(", ").collect::<Vec<_>>())
        .find(|c| c.get(4) == Some(&"true"))
        .map(|c| c[1].to_string())
        .unwrap_or_else(|| panic!("no Raft leader in {status}"));
    let members = sh(sb, unit, "etcdctl member list");
    members
        .lines()
        .map(|l| l.split(", ").collect::<Vec<_>>())
        .find(|c| c[0] == id)
        .map(|c| c[2].to_string())
        .unwrap_or_else(|| panic!("{id} not in {members}"))
}

#[test]
fn a_fragmented_cluster_is_defragmented_by_itself_the_raft_leader_last() {
    let sb = Sandbox::new("etcd_auto_defrag");
    // Thresholds low enough for 20 MB written and deleted.
    let config = [
        "defrag_free_percent=30",
        "defrag_free_bytes=4194304",
        "defrag_interval=60",
    ];
    let mut args = Vec::new();
    for c in &config {
        args.extend(["--config", c]);
    }
    deploy_etcd(&sb, 3, &args);
    sb.wait_active(3);
    // 20 MB written, deleted and compacted away: each member's database mostly free pages.
    let filled = fill(&sb, "etcd/0", 20);
    assert_eq!(filled, "", "{filled}");
    sh(
        &sb,
        "etcd/0",
        "etcdctl del --prefix big- >/dev/null && \
         rev=$(etcdctl get big- -w json | sed -n 's/.*\"revision\":\\([0-9]*\\).*/\\1/p') && \
         etcdctl compact --physical $rev",
    );
    let (code, endpoints, err) = sb.exec("etcd/0", "leader-get endpoints");
    assert_eq!(code, 0, "{err}");
    let endpoints = endpoints.trim().to_string();
    let done = "automatic maintenance: defragmenting";
    let writer = std::thread::scope(|s| {
        let writer = s.spawn(|| sb.ssh("etcd/1", &writer_script(&endpoints, 20000)));
        sb.ok(&["model-config", "update-status-hook-interval=10s"]);
        sb.eventually(
            "every member defragmented",
            Duration::from_secs(300),
            || {
                let freed: Vec<String> = log_lines(&sb, done)
                    .into_iter()
                    .filter(|l| l.contains("freed"))
                    .collect();
                (freed.len() >= 3).then_some(freed)
            },
        );
        support::wait_for_more_writes(&sb, 20, "writes after the defragmentations");
        sb.ssh("etcd/1", "touch /tmp/stop-writer");
        writer.join().expect("writer thread")
    });
    let (_, summary) = writer_summary(writer);
    let freed: Vec<String> = log_lines(&sb, done)
        .into_iter()
        .filter(|l| l.contains("freed"))
        .collect();
    eprintln!("writer: {summary}\n{}", freed.join("\n"));
    // Each member once (the interval holds them), the Raft leader last.
    let member = |l: &str| {
        let rest = l.split(done).nth(1).unwrap_or("").trim_start();
        rest.split(' ').next().unwrap_or("").to_string()
    };
    let order: Vec<String> = freed.iter().map(|l| member(l)).collect();
    let mut distinct = order.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct, ["etcd0", "etcd1", "etcd2"], "{order:?}");
    assert_eq!(order.len(), 3, "a member defragmented twice: {order:?}");
    assert_eq!(order[2], raft_leader(&sb, "etcd/0"), "{order:?}");
    // The record every leader reads.
    let (_, record, _) = sb.exec("etcd/0", "leader-get defragmented");
    assert_eq!(record.trim().split(',').count(), 3, "{record}");
}

#[test]
fn nospace_is_recovered_from_without_an_action() {
    let sb = Sandbox::new("etcd_auto_nospace");
    deploy_etcd(&sb, 3, &["--config", "quota_backend_bytes=16777216"]);
    sb.wait_active(3);
    let filled = fill(&sb, "etcd/0", 40);
    assert!(
        filled.contains("database space exceeded"),
        "no NOSPACE after 40 MB: {filled}"
    );
    let alarms = sh(&sb, "etcd/0", "etcdctl alarm list");
    assert!(alarms.contains("NOSPACE"), "{alarms}");
    sh(&sb, "etcd/0", "etcdctl del --prefix big- >/dev/null");
    sb.ok(&["model-config", "update-status-hook-interval=10s"]);
    sb.eventually(
        "the alarm gone and writes accepted",
        Duration::from_secs(300),
        || {
            let none = try_sh(&sb, "etcd/0", "etcdctl alarm list").ok()?.is_empty();
            (none && try_sh(&sb, "etcd/1", "etcdctl put after-nospace yes").is_ok()).then_some(())
        },
    );
    let steps = log_lines(&sb, "recovering from NOSPACE");
    eprintln!("{}", steps.join("\n"));
    let step = |what: &str| steps.iter().position(|l| l.contains(what));
    let compacted = step("compacting the history to the current revision: ");
    let disarmed = step("disarming the alarm: disarmed");
    assert!(compacted.is_some() && disarmed.is_some(), "{steps:#?}");
    let defrags = steps
        .iter()
        .filter(|l| l.contains("defragmenting") && l.contains("freed"))
        .count();
    assert!(defrags >= 3, "each member defragmented: {steps:#?}");
    assert!(compacted < disarmed, "{steps:#?}");
    // The units say so no more.
    for u in ["etcd/0", "etcd/1", "etcd/2"] {
        sb.eventually(&format!("{u} active"), Duration::from_secs(120), || {
            let (state, message) = workload(&sb, u);
            (state == "active" && !message.contains("NOSPACE")).then_some(())
        });
    }
}

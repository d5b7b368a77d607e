//! The hardened unit on real machines (issue 13). etcd -n 3, a learner joining and a snapshot
//! all work under the sandboxed systemd unit, which `systemd-analyze security` on each machine
//! rates at most 2.5. Needs root.

#[path = "support/mod.rs"]
mod support;
use std::time::Duration;
use support::{deploy_etcd, main_pid, sh, voting_members, Sandbox};

/// The highest exposure `systemd-analyze security etcd` may report (issue 13).
const MAX_EXPOSURE: f64 = 2.5;

/// The overall exposure `systemd-analyze security etcd` prints on a unit's machine.
fn exposure(sb: &Sandbox, unit: &str) -> f64 {
    let out = sh(sb, unit, "systemd-analyze security etcd --no-pager");
    let line = out
        .lines()
        .find(|l| l.contains("Overall exposure level for etcd.service:"))
        .unwrap_or_else(|| panic!("no overall exposure on {unit}:\n{out}"));
    line.rsplit(':')
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unparsable exposure on {unit}: {line}"))
}

#[test]
fn etcd_runs_under_a_hardened_unit() {
    let sb = Sandbox::new("etcd_hardening");
    deploy_etcd(&sb, 3, &[]);
    sb.wait_active(3);
    // A learner joins and is promoted under the same unit.
    sb.ok(&["add-unit", "etcd"]);
    sb.wait_active(4);
    let units = sb.units("etcd");
    assert_eq!(units.len(), 4, "{units:?}");
    sb.eventually("4 voting members", Duration::from_secs(120), || {
        let list = sh(&sb, "etcd/3", "etcdctl member list");
        (voting_members(&list).len() == 4).then_some(())
    });

    // A snapshot into the charm's directory (written by the charm, streamed from etcd).
    let out = sb.run(&["run", "etcd/1", "snapshot"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "snapshot failed: {text}");
    let snaps = sh(&sb, "etcd/1", "ls /var/lib/etcd-charm/snapshots/");
    assert!(snaps.lines().any(|l| l.ends_with(".db")), "{snaps}");

    sh(&sb, "etcd/0", "etcdctl put hardened yes");
    for unit in &units {
        let score = exposure(&sb, unit);
        eprintln!("{unit}: systemd-analyze security etcd = {score}");
        assert!(score <= MAX_EXPOSURE, "{unit}: exposure {score}");
        // The running etcd is the one confined: no capabilities, no new privileges, seccomp.
        let pid = main_pid(&sb, unit);
        let status = sh(&sb, unit, &format!("cat /proc/{pid}/status"));
        for want in ["CapEff:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2"] {
            assert!(status.contains(want), "{unit} etcd lacks {want}:\n{status}");
        }
        assert_eq!(
            sh(&sb, unit, "etcdctl get --print-value-only hardened"),
            "yes"
        );
    }
    let health = sh(&sb, "etcd/2", "etcdctl endpoint health --cluster 2>&1");
    assert_eq!(health.matches(" is healthy").count(), 4, "{health}");
}

//! A status that tells the truth, on real machines: a killed member is named in the other
//! units' status after `update-status`, and healthy again once back. Needs root: it boots
//! machines.

#[path = "support/mod.rs"]
mod support;
use std::time::Duration;
use support::{deploy_etcd, workload, Sandbox};

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

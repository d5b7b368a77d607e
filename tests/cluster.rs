//! The charm on real machines: bootstrap, scale out one learner at a time, scale in (the Juju
//! leader's unit and the Raft leader's), with nothing lost. Needs root: it boots machines.

#[path = "support/mod.rs"]
mod support;
use std::time::Duration;
use support::{deploy_etcd, etcdctl, main_pid, sh, voters, workload, Sandbox};

#[test]
fn bootstrap_scale_out_and_in() {
    let sb = Sandbox::new("etcd_scale");
    deploy_etcd(&sb, 1, &[]);
    sb.wait_active(1);
    let (code, out, err) = etcdctl(&sb, "etcd/0", "endpoint health");
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(etcdctl(&sb, "etcd/0", "put before-scale-out kept").0, 0);
    let pid0 = main_pid(&sb, "etcd/0");

    sb.ok(&["add-unit", "etcd", "-n", "2"]);
    sb.wait_active(3);
    for u in ["etcd/0", "etcd/1", "etcd/2"] {
        assert_eq!(
            voters(&sb, u),
            ["etcd0", "etcd1", "etcd2"],
            "members seen from {u}"
        );
        let (_, v, _) = etcdctl(&sb, u, "get before-scale-out --print-value-only");
        assert_eq!(v.trim(), "kept", "key read on {u}");
    }
    assert_eq!(
        main_pid(&sb, "etcd/0"),
        pid0,
        "scale-out restarted the first member"
    );

    // Remove the Juju leader's unit.
    let leader = sb.leader("etcd").unwrap();
    sb.ok(&["remove-unit", &leader]);
    sb.eventually("a new leader", Duration::from_secs(120), || {
        sb.leader("etcd")
            .filter(|l| *l != leader && sb.units("etcd").len() == 2)
    });
    sb.wait_active(2);
    let left = two_members_keep_the_data(&sb);

    // Back to three, then remove the Raft leader's unit.
    sb.ok(&["add-unit", "etcd"]);
    sb.wait_active(3);
    let (_, status, _) = etcdctl(&sb, &left[0], "endpoint status --cluster");
    // Columns: endpoint, id, version, db size, is leader, ...
    let raft_leader_url = status
        .lines()
        .find(|l| l.split(", ").nth(4) == Some("true"))
        .and_then(|l| l.split(", ").next())
        .expect("a raft leader")
        .to_string();
    let s = sb.status();
    let units = s["applications"]["etcd"]["units"].as_object().unwrap();
    let raft_unit = units
        .iter()
        .find(|(_, u)| {
            raft_leader_url.contains(&format!("//{}:", u["public-address"].as_str().unwrap()))
        })
        .map(|(n, _)| n.clone())
        .expect("unit of the raft leader");
    sb.ok(&["remove-unit", &raft_unit]);
    sb.eventually("two units", Duration::from_secs(180), || {
        (sb.units("etcd").len() == 2).then_some(())
    });
    sb.wait_active(2);
    two_members_keep_the_data(&sb);
}

/// After a scale-in to two units: each sees two healthy voting members and the old key.
fn two_members_keep_the_data(sb: &Sandbox) -> Vec<String> {
    let left = sb.units("etcd");
    for u in &left {
        assert_eq!(voters(sb, u).len(), 2, "members seen from {u}");
        let (_, value, _) = etcdctl(sb, u, "get before-scale-out --print-value-only");
        assert_eq!(value.trim(), "kept", "key read on {u}");
        assert_eq!(etcdctl(sb, u, "endpoint health").0, 0, "health on {u}");
    }
    left
}

/// A unit whose machine loses power in the middle of a hook runs that hook again after the
/// reboot, and the cluster converges.
#[test]
fn hook_killed_halfway_converges() {
    let sb = Sandbox::new("etcd_killed_hook");
    deploy_etcd(&sb, 1, &[]);
    sb.wait_active(1);
    assert_eq!(etcdctl(&sb, "etcd/0", "put survives yes").0, 0);
    sb.ok(&["add-unit", "etcd"]);
    // Wait until etcd/1 is running a hook, then cut its power.
    sb.eventually("etcd/1 executing a hook", Duration::from_secs(120), || {
        let s = sb.status();
        (s["applications"]["etcd"]["units"]["etcd/1"]["juju-status"]["current"] == "executing")
            .then_some(())
    });
    sb.ok(&["kill-machine", "etcd/1"]);
    sb.ok(&["restart-machine", "etcd/1"]);
    sb.wait_active(2);
    for u in ["etcd/0", "etcd/1"] {
        assert_eq!(voters(&sb, u), ["etcd0", "etcd1"], "members seen from {u}");
        assert_eq!(
            etcdctl(&sb, u, "get survives --print-value-only").1.trim(),
            "yes"
        );
    }
}

/// On a Juju without leader election (no is-leader/leader-get/leader-set), a unit is blocked
/// with a message saying what to do, and recovers when the tools are back.
#[test]
fn missing_leadership_tools_block_with_a_clear_message() {
    let sb = Sandbox::new("etcd_no_leadership");
    deploy_etcd(&sb, 1, &[]);
    sb.wait_active(1);
    let tools = "/var/lib/juju/tools/unit-etcd-0";
    sh(
        &sb,
        "etcd/0",
        &format!(
            "cd {tools} && mkdir -p ../hidden && mv is-leader leader-get leader-set ../hidden/"
        ),
    );
    let message = sb.eventually("etcd/0 blocked", Duration::from_secs(90), || {
        let (current, message) = workload(&sb, "etcd/0");
        (current == "blocked").then_some(message)
    });
    assert!(
        message.contains("needs Juju's leader election (Juju >= 1.23.2)"),
        "{message}"
    );
    assert_eq!(
        etcdctl(&sb, "etcd/0", "endpoint health").0,
        0,
        "etcd keeps serving"
    );
    sb.ssh("etcd/0", &format!("mv {tools}/../hidden/* {tools}/"));
    sb.wait_active(1);
}

//! A unit whose address changes (issue 16, point 3), under the clients of `support/faults.rs`:
//! `sandbox change-address` moves a follower's machine to a new address of the sandbox network
//! and its unit runs `config-changed`, as under Juju (see `records::address_changed` in the
//! sandbox). The member must follow its new address without losing data: same member (no
//! rejoin from scratch, nothing set aside), its peer URL updated in etcd, the consumer's
//! relation data on the new client URL, only that member restarted; then `finish`: health
//! passes, the members are the live units, the history is linearizable and no acknowledged
//! write is lost. Needs root: it boots machines.
//!
//! The charm needs nothing of its own for this: at `config-changed` it asks `network-get`
//! again, renders its config on the new address (an old peer URL is kept open only on the
//! same host, so the vanished address is not listened on), restarts at once because its etcd
//! answers nobody anyway, and publishes its new peer and client URLs; the Juju leader then
//! moves the member's peer URL (`member update`, with the quorum of the other members, as every
//! membership change) and republishes the endpoints to the consumers; the unit's certificate
//! request is keyed by its SANs, so the leader signs one for the new IP and the unit rewrites
//! its files in place.

#[path = "support/faults.rs"]
mod faults;
#[path = "support/mod.rs"]
mod support;
use faults::{cluster, etcd_units, finish, raft_leader, settle, start_clients, CLIENT, RECOVER};
use support::{run_of, sh, Sandbox};

/// This unit's line of `etcdctl member list` (`id, started, name, peer URLs, client URLs, …`).
fn member_line(sb: &Sandbox, from: &str, unit: &str) -> Option<String> {
    let name = unit.replace('/', "");
    let list = support::try_sh(sb, from, "etcdctl member list --command-timeout=5s").ok()?;
    list.lines()
        .find(|l| l.split(", ").nth(2) == Some(name.as_str()))
        .map(str::to_string)
}

#[test]
fn a_followers_address_changes_under_clients() {
    let sb = cluster("etcd_address_change");
    let units = etcd_units(&sb);
    let leader = raft_leader(&sb, &units[0]);
    let juju_leader = sb.leader("etcd").expect("a Juju leader");
    // A Raft follower, not the Juju leader when there is such a unit.
    let follower = units
        .iter()
        .filter(|u| **u != leader)
        .min_by_key(|u| **u == juju_leader)
        .unwrap()
        .clone();
    let other = units.iter().find(|u| **u != follower).unwrap().clone();
    let id = |line: &str| line.split(", ").next().unwrap_or_default().to_string();
    let before = member_line(&sb, &other, &follower).expect("the follower's member");
    let starts: Vec<_> = units.iter().map(|u| (u.clone(), run_of(&sb, u))).collect();

    start_clients(&sb, "address-change");
    let moved = sb.ok(&["change-address", &follower]);
    let (old, new) = moved
        .trim()
        .split_once(" -> ")
        .unwrap_or_else(|| panic!("change-address said {moved:?}"));
    assert_ne!(old, new);
    eprintln!("{follower}: {old} -> {new}");

    // The member follows: its peer URL in etcd is on the new address.
    let want = format!(":{new}:2380");
    sb.eventually("the member's new peer URL", RECOVER, || {
        member_line(&sb, &other, &follower).filter(|l| l.replace("//", ":").contains(&want))
    });
    settle(&sb, units.len());
    let after = member_line(&sb, &other, &follower).unwrap();
    assert_eq!(id(&after), id(&before), "a new member: {before} → {after}");
    assert!(!after.contains(&format!("//{old}:")), "{after}");
    assert_eq!(
        sb.status()["applications"]["etcd"]["units"][&follower]["public-address"],
        new
    );
    // The same data dir: nothing set aside, no rejoin.
    let aside = sh(
        &sb,
        &follower,
        "ls -d /var/lib/etcd/storage/data.removed-* /var/lib/etcd/data.removed-* 2>/dev/null || true",
    );
    assert!(aside.trim().is_empty(), "a data dir was set aside: {aside}");
    // Its server certificate names the new address: a peer's etcdctl verifies it there.
    let health =
        format!("etcdctl --endpoints=https://{new}:2379 endpoint health --command-timeout=5s");
    sb.eventually("a certificate for the new address", RECOVER, || {
        (sb.ssh(&other, &health).0 == 0).then_some(())
    });
    // The consumer was told: the connection string names the new address, not the old one.
    let cs = |sb: &Sandbox| sh(sb, CLIENT, "cat /var/lib/db-client/connection_string");
    sb.eventually("the consumer's new connection string", RECOVER, || {
        let cs = cs(&sb);
        (cs.contains(&format!("//{new}:")) && !cs.contains(&format!("//{old}:"))).then_some(())
    });
    // Only the moved member restarted.
    for (u, run) in &starts {
        let now = run_of(&sb, u);
        match *u == follower {
            true => assert_ne!(now.started, run.started, "{u} did not restart"),
            false => assert_eq!(now.started, run.started, "{u} restarted"),
        }
    }
    finish(&sb, "address-change");
}

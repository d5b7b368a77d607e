//! Hook ordering as state transitions: arrange a model, change it, assert the queued hooks.

use super::*;
use crate::controller::model::{App, CharmMeta};
use std::path::Path;

fn model_with(app: &str, peer: bool) -> Model {
    let mut m = Model::new(Path::new("/tmp/lifecycle-test"));
    m.apps
        .insert(app.into(), App::new(app, "/x".into(), CharmMeta::default()));
    if peer {
        add_relation(
            &mut m,
            vec![RelEnd {
                app: app.into(),
                endpoint: "cluster".into(),
            }],
            "etcd".into(),
        );
    }
    m
}

/// Adds a `client` application like `etcd`.
fn add_client_app(m: &mut Model) {
    m.apps.insert("client".into(), {
        let mut a = m.apps["etcd"].clone();
        a.name = "client".into();
        a.leader = None;
        a
    });
}

/// Relates `etcd:db` and `client:db`.
fn db_relation(m: &mut Model) -> i64 {
    add_relation(
        m,
        vec![
            RelEnd {
                app: "etcd".into(),
                endpoint: "db".into(),
            },
            RelEnd {
                app: "client".into(),
                endpoint: "db".into(),
            },
        ],
        "etcd".into(),
    )
}

/// Runs every queued hook of every unit until all queues are empty; returns what ran per unit.
fn drain(m: &mut Model) -> BTreeMap<String, Vec<Event>> {
    let mut ran: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    loop {
        let next = m
            .units
            .values()
            .find(|u| !u.queue.is_empty())
            .map(|u| u.name.clone());
        let Some(name) = next else { return ran };
        let ev = m.units.get_mut(&name).unwrap().queue.pop_front().unwrap();
        ran.entry(name.clone()).or_default().push(ev.clone());
        hook_done(m, &name, &ev);
        if ev == Event::Remove {
            forget_unit(m, &name);
        }
    }
}

#[test]
fn install_sequence_is_jujus() {
    let mut m = model_with("etcd", true);
    let u0 = add_unit(&mut m, "etcd");
    let u1 = add_unit(&mut m, "etcd");
    let ran = drain(&mut m);
    assert_eq!(
        ran[&u0][..5],
        [
            Event::Install,
            Event::RelationCreated { rel: 0 },
            Event::LeaderElected,
            Event::ConfigChanged,
            Event::Start
        ]
    );
    assert_eq!(ran[&u1][2], Event::LeaderSettingsChanged);
    // Each sees the other joined, then changed, after start.
    assert!(ran[&u0].ends_with(&[
        Event::RelationJoined {
            rel: 0,
            remote: u1.clone()
        },
        Event::RelationChanged {
            rel: 0,
            remote: Some(u1.clone())
        }
    ]));
    assert_eq!(m.relations[&0].scope[&u1], BTreeSet::from([u0.clone()]));
}

#[test]
fn removing_a_peer_runs_departed_on_both_sides_and_moves_leadership() {
    let mut m = model_with("etcd", true);
    let u0 = add_unit(&mut m, "etcd");
    let u1 = add_unit(&mut m, "etcd");
    drain(&mut m);
    remove_unit(&mut m, &u0);
    let ran = drain(&mut m);
    assert_eq!(
        ran[&u0],
        [
            Event::RelationDeparted {
                rel: 0,
                remote: u1.clone(),
                departing: u0.clone()
            },
            Event::Stop,
            Event::Remove
        ]
    );
    assert_eq!(
        ran[&u1],
        [
            Event::RelationDeparted {
                rel: 0,
                remote: u0.clone(),
                departing: u0.clone()
            },
            Event::LeaderElected
        ]
    );
    assert_eq!(m.apps["etcd"].leader.as_deref(), Some(u1.as_str()));
}

#[test]
fn data_changes_and_relation_removal() {
    let mut m = model_with("etcd", false);
    add_client_app(&mut m);
    let e0 = add_unit(&mut m, "etcd");
    let c0 = add_unit(&mut m, "client");
    drain(&mut m);
    let rel = db_relation(&mut m);
    let ran = drain(&mut m);
    assert_eq!(ran[&e0][0], Event::RelationCreated { rel });
    assert!(ran[&c0].contains(&Event::RelationChanged {
        rel,
        remote: Some(e0.clone())
    }));
    data_changed(&mut m, rel, &e0, false);
    data_changed(&mut m, rel, &e0, false);
    assert_eq!(m.units[&c0].queue.len(), 1, "changed events coalesce");
    drain(&mut m);
    remove_relation(&mut m, rel);
    let ran = drain(&mut m);
    assert_eq!(
        ran[&c0],
        [
            Event::RelationDeparted {
                rel,
                remote: e0.clone(),
                departing: e0.clone()
            },
            Event::RelationBroken { rel }
        ]
    );
    assert!(m.relations.is_empty());
}

fn departed(rel: i64, remote: &str) -> Event {
    Event::RelationDeparted {
        rel,
        remote: remote.into(),
        departing: remote.into(),
    }
}

/// state/relationunit.go `PrepareLeaveScope` + state/watcher.go: the remaining units see the
/// dying unit depart at once, while its own teardown (worker/uniter/relation/resolver.go)
/// runs on its own queue.
#[test]
fn remaining_units_run_departed_at_once_concurrently_with_the_teardown() {
    let mut m = model_with("etcd", true);
    let units: Vec<String> = (0..3).map(|_| add_unit(&mut m, "etcd")).collect();
    drain(&mut m);
    let (u0, u1, u2) = (&units[0], &units[1], &units[2]);
    // A change of u0's data is still pending on u1 when u0 starts dying: it is dropped.
    data_changed(&mut m, 0, u0, false);
    assert_eq!(m.units[u1].queue.len(), 1);
    remove_unit(&mut m, u0);
    for u in [u1, u2] {
        assert_eq!(m.units[u].queue, [departed(0, u0)], "{u} is told at once");
    }
    assert_eq!(
        m.units[u0].queue,
        [
            Event::RelationDeparted {
                rel: 0,
                remote: u1.clone(),
                departing: u0.clone()
            },
            Event::RelationDeparted {
                rel: 0,
                remote: u2.clone(),
                departing: u0.clone()
            },
            Event::Stop,
            Event::Remove
        ]
    );
    // Its writes during teardown wake nobody; leaving the scope tells nobody twice.
    data_changed(&mut m, 0, u0, false);
    let ran = drain(&mut m);
    assert_eq!(ran[u1], [departed(0, u0), Event::LeaderElected]);
    assert_eq!(ran[u2], [departed(0, u0)]);
}

/// relation/resolver.go `NextOp`: the dying unit handles non-peer relations before peers.
#[test]
fn the_dying_unit_leaves_other_relations_before_its_peers() {
    let mut m = model_with("etcd", true);
    add_client_app(&mut m);
    let e0 = add_unit(&mut m, "etcd");
    let e1 = add_unit(&mut m, "etcd");
    let c0 = add_unit(&mut m, "client");
    let db = db_relation(&mut m);
    drain(&mut m);
    remove_unit(&mut m, &e0);
    let own: Vec<Event> = m.units[&e0].queue.iter().cloned().collect();
    assert_eq!(
        own,
        [
            Event::RelationDeparted {
                rel: db,
                remote: c0.clone(),
                departing: e0.clone()
            },
            Event::RelationBroken { rel: db },
            Event::RelationDeparted {
                rel: 0,
                remote: e1.clone(),
                departing: e0.clone()
            },
            Event::Stop,
            Event::Remove
        ]
    );
}

/// worker/uniter/runner/context/contextfactory.go `HookContext` (the departing unit leaves the
/// member cache first) and runner/context/cache.go `MemberNames` (`sort.Strings`).
#[test]
fn relation_list_leaves_out_the_departing_unit_and_sorts_as_strings() {
    let mut m = model_with("etcd", true);
    for _ in 0..11 {
        add_unit(&mut m, "etcd");
    }
    drain(&mut m);
    let members = relation_members(&m, 0, "etcd/0", &Event::UpdateStatus);
    assert_eq!(members[..3], ["etcd/1", "etcd/10", "etcd/2"]);
    let in_departed = relation_members(&m, 0, "etcd/0", &departed(0, "etcd/10"));
    assert_eq!(in_departed.len(), 9);
    assert!(!in_departed.contains(&"etcd/10".to_string()));
}

/// apiserver uniter `EnterScope` and uniter `updateUnitNetworkInfoOperation`: the address keys
/// are in the unit's databag from the start and written again after config-changed.
#[test]
fn address_keys_on_entering_scope_and_after_config_changed() {
    let mut m = model_with("etcd", true);
    let u0 = add_unit(&mut m, "etcd");
    let u1 = add_unit(&mut m, "etcd");
    m.machines.get_mut(&0).unwrap().address = "10.1.2.3".into();
    write_network_keys(&mut m, &u0, &[0]);
    let bag = &m.relations[&0].unit_data[&u0];
    assert_eq!(bag["private-address"], "10.1.2.3");
    assert_eq!(bag["ingress-address"], "10.1.2.3");
    assert_eq!(bag["egress-subnets"], "10.1.2.3/32");
    drain(&mut m);
    // A charm's override lasts until the next config-changed, which wakes the peer.
    m.relations
        .get_mut(&0)
        .unwrap()
        .unit_data
        .get_mut(&u0)
        .unwrap()
        .insert("private-address".into(), "x".into());
    let rels = entered_relations(&m, &u0);
    write_network_keys(&mut m, &u0, &rels);
    assert_eq!(
        m.relations[&0].unit_data[&u0]["private-address"],
        "10.1.2.3"
    );
    assert_eq!(
        m.units[&u1].queue,
        [Event::RelationChanged {
            rel: 0,
            remote: Some(u0.clone())
        }]
    );
}

/// jujuc/relation-ids.go (`sort.Strings`) and contextfactory.go `getContextRelations`: a dying
/// relation is listed while the unit still has members in it, not once it is broken.
#[test]
fn relation_ids_sort_as_strings_and_keep_a_dying_relation_until_broken() {
    let mut m = model_with("etcd", false);
    add_client_app(&mut m);
    let e0 = add_unit(&mut m, "etcd");
    add_unit(&mut m, "client");
    drain(&mut m);
    for _ in 0..11 {
        db_relation(&mut m);
    }
    drain(&mut m);
    let ids = relation_ids(&m, &e0, "db");
    assert_eq!(ids[..3], ["db:0", "db:1", "db:10"]);
    remove_relation(&mut m, 10);
    assert!(relation_ids(&m, &e0, "db").contains(&"db:10".to_string()));
    // Departed has run, broken is next: the relation is broken for the unit.
    let departed = m.units.get_mut(&e0).unwrap().queue.pop_front().unwrap();
    hook_done(&mut m, &e0, &departed);
    assert!(!relation_ids(&m, &e0, "db").contains(&"db:10".to_string()));
}

/// `change-address`: a free address above every allocated machine number; the machine's units
/// (and only they) run config-changed, after which their relation data carries the new address
/// and their peers hear of it.
#[test]
fn address_change_runs_config_changed_and_rewrites_the_address_keys() {
    let mut m = model_with("etcd", true);
    m.subnet = [10, 1, 2];
    let u0 = add_unit(&mut m, "etcd");
    let u1 = add_unit(&mut m, "etcd");
    for (id, rec) in m.machines.iter_mut() {
        rec.address = format!("10.1.2.{}", 10 + id);
    }
    drain(&mut m);
    let rels = entered_relations(&m, &u0);
    assert_eq!(rels, [0]);

    let new = records::free_address(&m).unwrap();
    assert_eq!(new, "10.1.2.254");
    records::address_changed(&mut m, 0, new.clone());
    assert_eq!(m.machines[&0].address, new);
    assert_eq!(records::free_address(&m).unwrap(), "10.1.2.253");
    assert_eq!(m.units[&u0].queue, [Event::ConfigChanged]);
    assert!(m.units[&u1].queue.is_empty());
    // The same address again is no change.
    m.units.get_mut(&u0).unwrap().queue.clear();
    records::address_changed(&mut m, 0, new.clone());
    assert!(m.units[&u0].queue.is_empty());

    // After config-changed (what agent::hook_ended does on success): the keys, then the peer.
    write_network_keys(&mut m, &u0, &rels);
    assert_eq!(m.relations[&0].unit_data[&u0]["ingress-address"], new);
    assert_eq!(
        m.units[&u1].queue,
        [Event::RelationChanged {
            rel: 0,
            remote: Some(u0.clone())
        }]
    );
}

/// No free address once every one of `.10`–`.254` is a machine's or a future machine's.
#[test]
fn no_free_address_in_a_full_subnet() {
    let mut m = model_with("etcd", false);
    m.next_machine = 245;
    assert_eq!(records::free_address(&m), None);
    m.next_machine = 244;
    assert_eq!(
        records::free_address(&m).as_deref(),
        Some(&*format!(
            "{}.{}.{}.254",
            m.subnet[0], m.subnet[1], m.subnet[2]
        ))
    );
}

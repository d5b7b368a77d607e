//! Subordinates as state transitions: arrange a model, change it, assert the hooks that run.

use super::*;
use crate::controller::lifecycle::{
    add_relation, add_unit, forget_unit, hook_done, relation_members, remove_relation,
};
use crate::controller::model::{App, RelEnd};
use serde_json::json;
use std::collections::BTreeMap;

/// An application; a subordinate one requires `juju-info` in container scope, as a COS agent.
fn app(m: &mut Model, name: &str, subordinate: bool) {
    let mut endpoints = BTreeMap::new();
    if subordinate {
        endpoints.insert(
            "juju-info".to_string(),
            json!({"role": "requires", "interface": "juju-info", "scope": "container"}),
        );
    } else {
        endpoints.insert(
            "juju-info".to_string(),
            json!({"role": "provides", "interface": "juju-info"}),
        );
    }
    let a: App = serde_json::from_value(json!({
        "name": name, "charm_dir": "/x", "charm_rev": 0,
        "meta": {"name": name, "endpoints": endpoints, "resources": {}, "options": {},
                 "actions": {}, "subordinate": subordinate},
        "config": {}, "resources": {}, "leader": null, "leader_data": {},
        "status": {"status": "", "message": ""}, "version": "", "next_unit": 0,
    }))
    .expect("app");
    m.apps.insert(name.into(), a);
}

fn relate(m: &mut Model) -> i64 {
    let ends = vec![
        RelEnd {
            app: "etcd".into(),
            endpoint: "juju-info".into(),
        },
        RelEnd {
            app: "agent".into(),
            endpoint: "juju-info".into(),
        },
    ];
    add_relation(m, ends, "juju-info".into())
}

/// Runs every queued hook until all queues are empty, retiring removed units as the controller
/// does (a principal only after its subordinates); returns what ran per unit.
fn drain(m: &mut Model) -> BTreeMap<String, Vec<Event>> {
    let mut ran: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    while let Some(name) = m
        .units
        .values()
        .find(|u| !u.queue.is_empty())
        .map(|u| u.name.clone())
    {
        let ev = m.units.get_mut(&name).unwrap().queue.pop_front().unwrap();
        ran.entry(name.clone()).or_default().push(ev.clone());
        hook_done(m, &name, &ev);
        if ev == Event::Remove && !waits_for_subordinates(m, &name) {
            let principal = m.units[&name].principal.clone();
            forget_unit(m, &name);
            if let Some(p) = principal.filter(|p| principal_done(m, p)) {
                forget_unit(m, &p);
            }
        }
    }
    ran
}

fn model() -> (Model, i64) {
    let mut m = Model::new(std::path::Path::new("/tmp/subordinate-test"));
    app(&mut m, "etcd", false);
    app(&mut m, "agent", true);
    add_unit(&mut m, "etcd");
    add_unit(&mut m, "etcd");
    drain(&mut m);
    let rel = relate(&mut m);
    drain(&mut m);
    (m, rel)
}

fn joined(rel: i64, remote: &str) -> Event {
    Event::RelationJoined {
        rel,
        remote: remote.into(),
    }
}

fn departed(rel: i64, remote: &str, departing: &str) -> Event {
    Event::RelationDeparted {
        rel,
        remote: remote.into(),
        departing: departing.into(),
    }
}

/// What a subordinate runs as it goes: departed for `remote`, broken, stop, remove.
fn teardown(rel: i64, remote: &str, departing: &str) -> Vec<Event> {
    vec![
        departed(rel, remote, departing),
        Event::RelationBroken { rel },
        Event::Stop,
        Event::Remove,
    ]
}

// state/relationunit.go `EnterScope`: a principal entering a container relation gets a unit of
// the subordinate on its machine; the two see only each other.
#[test]
fn one_subordinate_per_principal_on_its_machine_seeing_only_it() {
    let (mut m, rel) = model();
    assert!(m.relations[&rel].container);
    assert_eq!(m.machines.len(), 2);
    for (sub, principal) in [("agent/0", "etcd/0"), ("agent/1", "etcd/1")] {
        let s = &m.units[sub];
        assert_eq!(s.principal.as_deref(), Some(principal));
        assert_eq!(s.machine, m.units[principal].machine);
        assert_eq!(relation_members(&m, rel, sub, &Event::Start), [principal]);
        assert_eq!(relation_members(&m, rel, principal, &Event::Start), [sub]);
    }
    // A new principal unit gets its own, with the install sequence and its principal only.
    let new = add_unit(&mut m, "etcd");
    let ran = drain(&mut m);
    assert!(ran[&new].contains(&joined(rel, "agent/2")), "{ran:?}");
    let sub: Vec<&Event> = ran["agent/2"]
        .iter()
        .filter(|e| !matches!(e, Event::RelationChanged { .. }))
        .collect();
    assert_eq!(
        sub,
        [
            &Event::Install,
            &Event::RelationCreated { rel },
            &Event::LeaderSettingsChanged,
            &Event::ConfigChanged,
            &Event::Start,
            &joined(rel, &new),
        ]
    );
    assert_eq!(m.units["agent/2"].machine, m.units[&new].machine);
    assert_eq!(m.machines.len(), 3);
}

// state/unit.go `destroyOps`, `EnsureDead`: the subordinate goes with its principal, which
// goes after it; each is told once of the other leaving.
#[test]
fn a_subordinate_is_removed_with_its_principal() {
    let (mut m, rel) = model();
    super::super::remove_unit(&mut m, "etcd/1");
    let ran = drain(&mut m);
    assert_eq!(ran["agent/1"], teardown(rel, "etcd/1", "agent/1"));
    assert_eq!(
        ran["etcd/1"]
            .iter()
            .filter(|e| matches!(e, Event::RelationDeparted { rel: r, .. } if *r == rel))
            .count(),
        1
    );
    assert!(
        !ran.contains_key("agent/0") && !ran.contains_key("etcd/0"),
        "{ran:?}"
    );
    assert!(!m.units.contains_key("agent/1") && !m.units.contains_key("etcd/1"));
}

// state/relationunit.go `LeaveScope`: leaving its last container relation removes it.
#[test]
fn removing_the_relation_removes_the_subordinates() {
    let (mut m, rel) = model();
    remove_relation(&mut m, rel);
    let ran = drain(&mut m);
    assert_eq!(ran["agent/0"], teardown(rel, "etcd/0", "etcd/0"));
    assert_eq!(m.units.keys().collect::<Vec<_>>(), ["etcd/0", "etcd/1"]);
    assert!(m.relations.is_empty());
}

#[test]
fn deploy_add_unit_remove_unit_and_endpoint_choice() {
    let (m, _) = model();
    let meta = &m.apps["agent"].meta;
    assert_eq!(units_to_deploy(meta, 1), Ok(0));
    assert!(units_to_deploy(meta, 2).is_err());
    assert_eq!(units_to_deploy(&m.apps["etcd"].meta, 3), Ok(3));
    assert_eq!(
        check_add_unit(&m, "agent"),
        Err("cannot add unit to application \"agent\": application is a subordinate".into())
    );
    assert!(check_remove_unit(&m, "agent/0")
        .unwrap_err()
        .starts_with("unit \"agent/0\" is a subordinate, to remove use remove-relation."));
    assert_eq!(check_remove_unit(&m, "etcd/0"), Ok(()));
    let pick = |c: Vec<[&'static str; 2]>| prefer_explicit(c, |p| *p);
    assert_eq!(
        pick(vec![["juju-info", "juju-info"], ["metrics", "metrics"]]),
        [["metrics", "metrics"]]
    );
    assert_eq!(
        pick(vec![["juju-info", "juju-info"]]),
        [["juju-info", "juju-info"]]
    );
}

// state/state.go `AddRelation`: either end's container scope makes the relation container-scoped.
#[test]
fn container_scope_from_either_end() {
    let (mut m, _) = model();
    let ends = |a: &str, b: &str| {
        vec![
            RelEnd {
                app: "etcd".into(),
                endpoint: a.into(),
            },
            RelEnd {
                app: "agent".into(),
                endpoint: b.into(),
            },
        ]
    };
    assert!(is_container(&m, &ends("juju-info", "juju-info")));
    let agent = m.apps.get_mut("agent").expect("agent");
    agent.meta.endpoints.get_mut("juju-info").expect("ep").scope = "global".into();
    assert!(!is_container(&m, &ends("juju-info", "juju-info")));
    let etcd = m.apps.get_mut("etcd").expect("etcd");
    etcd.meta.endpoints.get_mut("juju-info").expect("ep").scope = "container".into();
    assert!(is_container(&m, &ends("juju-info", "juju-info")));
}

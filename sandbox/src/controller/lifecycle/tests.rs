//! Hook ordering as state transitions: arrange a model, change it, assert the queued hooks.

use super::*;
use crate::controller::model::{App, CharmMeta};
use std::path::Path;

fn model_with(app: &str, peer: bool) -> Model {
    let mut m = Model::new(Path::new("/tmp/lifecycle-test"));
    m.apps.insert(
        app.into(),
        App {
            name: app.into(),
            charm_dir: "/x".into(),
            charm_rev: 0,
            meta: CharmMeta::default(),
            config: BTreeMap::new(),
            resources: BTreeMap::new(),
            leader: None,
            leader_data: Settings::new(),
            status: StatusInfo::default(),
            version: String::new(),
            next_unit: 0,
        },
    );
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
    m.apps.insert("client".into(), {
        let mut a = m.apps["etcd"].clone();
        a.name = "client".into();
        a.leader = None;
        a
    });
    let e0 = add_unit(&mut m, "etcd");
    let c0 = add_unit(&mut m, "client");
    drain(&mut m);
    let rel = add_relation(
        &mut m,
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
    );
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

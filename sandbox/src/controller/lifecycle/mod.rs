//! Juju's hook ordering, as pure changes to the model: which units must run which hooks when
//! units, relations, leadership, config or relation data change.
//!
//! Nothing here does IO; the runner, the provisioner, the hook tools and the command line call
//! these functions under the model lock, and nothing else changes the model.

pub mod agent;
pub mod context;
pub mod records;
pub mod subordinate;

pub use agent::INSTALLING;
pub use context::HookCtx;

use super::model::{
    app_of, now, Agent, Event, Life, MachineRec, MachineState, Model, RelEnd, Relation, Unit,
};
use crate::tools::env::{Settings, StatusInfo};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Juju's hook name for an event on a unit (`db-relation-changed`, `install`, …); for actions
/// the action name.
pub fn hook_name(model: &Model, unit: &str, ev: &Event) -> String {
    let endpoint = |rel: &i64| {
        model
            .relations
            .get(rel)
            .and_then(|r| r.end_of(app_of(unit)).map(|e| e.endpoint.clone()))
            .unwrap_or_else(|| "unknown".into())
    };
    match ev {
        Event::Install => "install".into(),
        Event::LeaderElected => "leader-elected".into(),
        Event::LeaderSettingsChanged => "leader-settings-changed".into(),
        Event::ConfigChanged => "config-changed".into(),
        Event::Start => "start".into(),
        Event::UpgradeCharm => "upgrade-charm".into(),
        Event::UpdateStatus => "update-status".into(),
        Event::Stop => "stop".into(),
        Event::Remove => "remove".into(),
        Event::RelationCreated { rel } => format!("{}-relation-created", endpoint(rel)),
        Event::RelationJoined { rel, .. } => format!("{}-relation-joined", endpoint(rel)),
        Event::RelationChanged { rel, .. } => format!("{}-relation-changed", endpoint(rel)),
        Event::RelationDeparted { rel, .. } => format!("{}-relation-departed", endpoint(rel)),
        Event::RelationBroken { rel } => format!("{}-relation-broken", endpoint(rel)),
        Event::Action { id } => model
            .tasks
            .get(id)
            .map(|t| t.action.clone())
            .unwrap_or_default(),
        Event::Exec { .. } => "juju-exec".into(),
        Event::SecretChanged { .. } => "secret-changed".into(),
        Event::SecretRotate { .. } => "secret-rotate".into(),
        Event::SecretExpired { .. } => "secret-expired".into(),
        Event::SecretRemove { .. } => "secret-remove".into(),
        Event::StorageAttached { .. } | Event::StorageDetaching { .. } => {
            super::storage::hook_name(ev).unwrap_or_default()
        }
    }
}

/// Events that may be merged with an identical pending one.
fn coalesces(ev: &Event) -> bool {
    matches!(
        ev,
        Event::ConfigChanged
            | Event::LeaderSettingsChanged
            | Event::UpdateStatus
            | Event::RelationChanged { .. }
            | Event::LeaderElected
    )
}

/// Appends an event to a unit's queue; `running` is whether the head is executing now (a
/// running event is not merged with, since it may already have read the old state).
pub fn push(unit: &mut Unit, ev: Event, running: bool) {
    if coalesces(&ev) {
        let skip = usize::from(running);
        if unit.queue.iter().skip(skip).any(|e| *e == ev) {
            return;
        }
    }
    unit.queue.push_back(ev);
}

/// Whether a unit's head event is being executed.
pub fn is_running(u: &Unit) -> bool {
    u.agent == Agent::Executing
}

/// Appends an event to `unit`'s queue (see [`push`]).
pub fn push_to(model: &mut Model, unit: &str, ev: Event) {
    if let Some(u) = model.units.get_mut(unit) {
        let running = is_running(u);
        push(u, ev, running);
    }
}

/// Creates a unit (and its machine record) with Juju's install sequence queued.
pub fn add_unit(model: &mut Model, app: &str) -> String {
    let a = model.apps.get_mut(app).expect("app exists");
    let name = format!("{app}/{}", a.next_unit);
    a.next_unit += 1;
    let leader = match &a.leader {
        None => {
            a.leader = Some(name.clone());
            true
        }
        Some(_) => false,
    };
    let charm_rev = a.charm_rev;
    let machine = model.next_machine;
    model.next_machine += 1;
    let address = format!(
        "{}.{}.{}.{}",
        model.subnet[0],
        model.subnet[1],
        model.subnet[2],
        10 + machine
    );
    let short = &model.uuid[..6];
    model.machines.insert(
        machine,
        MachineRec {
            id: machine,
            hostname: format!("juju-{short}-{machine}"),
            address,
            mac: String::new(),
            state: MachineState::Pending,
            handle: None,
            blocked_from: vec![],
            partitioned: false,
        },
    );
    let mut queue = VecDeque::from([Event::Install]);
    for r in model
        .relations
        .values()
        .filter(|r| r.involves(app) && r.life == Life::Alive)
    {
        queue.push_back(Event::RelationCreated { rel: r.id });
    }
    queue.push_back(if leader {
        Event::LeaderElected
    } else {
        Event::LeaderSettingsChanged
    });
    queue.push_back(Event::ConfigChanged);
    queue.push_back(Event::Start);
    let t = now();
    model.units.insert(
        name.clone(),
        Unit {
            name: name.clone(),
            app: app.into(),
            machine,
            life: Life::Alive,
            queue,
            installed: false,
            workload: StatusInfo {
                status: "waiting".into(),
                message: "waiting for machine".into(),
            },
            workload_since: t,
            agent: Agent::Allocating,
            agent_message: String::new(),
            agent_since: t,
            retries: 0,
            retry_at: 0.0,
            state: Settings::new(),
            ports: BTreeSet::new(),
            charm_rev,
            principal: None,
        },
    );
    name
}

/// Units of the relation's applications that have entered it (ran `-relation-created`).
fn entered(rel: &Relation) -> Vec<String> {
    rel.entered.iter().cloned().collect()
}

/// Whether `a` and `b` see each other in this relation (different apps, or peers; in a
/// container-scoped one, on the same machine).
fn counterparts(model: &Model, rel: &Relation, a: &str, b: &str) -> bool {
    a != b
        && (rel.is_peer() || app_of(a) != app_of(b))
        && subordinate::same_container(model, rel, a, b)
}

/// After `unit` ran `-relation-created`: it enters scope; it and each counterpart already in
/// the relation run joined then changed for each other.
pub fn enter_scope(model: &mut Model, rel_id: i64, unit: &str) {
    let Some(rel) = model.relations.get_mut(&rel_id) else {
        return;
    };
    if rel.life != Life::Alive || !rel.entered.insert(unit.to_string()) {
        return;
    }
    rel.scope.entry(unit.to_string()).or_default();
    let rel = &model.relations[&rel_id];
    let others: Vec<String> = entered(rel)
        .into_iter()
        .filter(|o| counterparts(model, rel, unit, o))
        .collect();
    for o in others {
        if model.units.get(&o).is_some_and(|u| u.life == Life::Alive) {
            join(model, rel_id, unit, &o);
            join(model, rel_id, &o, unit);
        }
    }
}

fn join(model: &mut Model, rel: i64, local: &str, remote: &str) {
    push_to(
        model,
        local,
        Event::RelationJoined {
            rel,
            remote: remote.into(),
        },
    );
    push_to(
        model,
        local,
        Event::RelationChanged {
            rel,
            remote: Some(remote.into()),
        },
    );
}

/// A committed change of `writer`'s unit databag (or its app databag, with `app`): every
/// counterpart that has the writer in scope (or is about to join it) runs relation-changed.
pub fn data_changed(model: &mut Model, rel_id: i64, writer: &str, app: bool) {
    let Some(rel) = model.relations.get(&rel_id) else {
        return;
    };
    if !app && rel.departing.contains(writer) {
        return;
    }
    let targets: Vec<String> = entered(rel)
        .into_iter()
        .filter(|o| {
            if app {
                o != writer && (rel.is_peer() || app_of(o) != app_of(writer))
            } else {
                counterparts(model, rel, writer, o)
                    && rel.scope.get(o).is_some_and(|s| s.contains(writer))
            }
        })
        .collect();
    for t in targets {
        let remote = if app { None } else { Some(writer.to_string()) };
        push_to(
            model,
            &t,
            Event::RelationChanged {
                rel: rel_id,
                remote,
            },
        );
    }
}

/// A change of leader settings: every other installed unit runs leader-settings-changed.
pub fn leader_data_changed(model: &mut Model, app: &str) {
    let leader = model.apps.get(app).and_then(|a| a.leader.clone());
    let targets: Vec<String> = model
        .units
        .values()
        .filter(|u| {
            u.app == app && u.installed && u.life == Life::Alive && Some(&u.name) != leader.as_ref()
        })
        .map(|u| u.name.clone())
        .collect();
    for t in targets {
        push_to(model, &t, Event::LeaderSettingsChanged);
    }
}

/// A config change: every unit of the app runs config-changed.
pub fn config_changed(model: &mut Model, app: &str) {
    for u in model.units_of(app) {
        if model.units[&u].life == Life::Alive {
            push_to(model, &u, Event::ConfigChanged);
        }
    }
}

/// Makes `unit` the leader of its application; it runs leader-elected.
pub fn elect(model: &mut Model, app: &str, exclude: &str) {
    let candidate = model.units_of(app).into_iter().find(|u| {
        u != exclude && model.units[u].life == Life::Alive && model.units[u].agent != Agent::Lost
    });
    if let Some(a) = model.apps.get_mut(app) {
        a.leader = candidate.clone();
    }
    if let Some(c) = candidate {
        push_to(model, &c, Event::LeaderElected);
    }
}

/// Creates a relation between two ends (or a peer relation with one end); every unit of both
/// applications runs `-relation-created`.
pub fn add_relation(model: &mut Model, ends: Vec<RelEnd>, interface: String) -> i64 {
    let id = model.next_relation;
    model.next_relation += 1;
    let apps: Vec<String> = ends.iter().map(|e| e.app.clone()).collect();
    let container = subordinate::is_container(model, &ends);
    model.relations.insert(
        id,
        Relation {
            id,
            ends,
            interface,
            life: Life::Alive,
            app_data: BTreeMap::new(),
            unit_data: BTreeMap::new(),
            scope: BTreeMap::new(),
            entered: BTreeSet::new(),
            departing: BTreeSet::new(),
            since: now(),
            container,
        },
    );
    for app in apps {
        for u in model.units_of(&app) {
            let unit = &model.units[&u];
            // Units still in their install sequence pick the relation up from `add_unit`'s
            // list only if it existed then, so queue it for every live unit.
            if unit.life == Life::Alive && !unit.queue.contains(&Event::RelationCreated { rel: id })
            {
                push_to(model, &u, Event::RelationCreated { rel: id });
            }
        }
    }
    id
}

/// Starts removing a relation: every entered unit runs departed for each remote, then broken.
pub fn remove_relation(model: &mut Model, rel_id: i64) {
    let Some(rel) = model.relations.get_mut(&rel_id) else {
        return;
    };
    rel.life = Life::Dying;
    let plan: Vec<(String, Vec<String>)> = rel
        .scope
        .iter()
        .map(|(u, s)| (u.clone(), s.iter().cloned().collect()))
        .collect();
    for (u, remotes) in plan {
        for r in remotes {
            push_to(
                model,
                &u,
                Event::RelationDeparted {
                    rel: rel_id,
                    remote: r.clone(),
                    departing: r,
                },
            );
        }
        push_to(model, &u, Event::RelationBroken { rel: rel_id });
    }
    forget_relation_if_done(model, rel_id);
}

/// Deletes a dying relation once no unit has hooks of it pending.
pub fn forget_relation_if_done(model: &mut Model, rel_id: i64) {
    let dying = model
        .relations
        .get(&rel_id)
        .is_some_and(|r| r.life == Life::Dying);
    let pending = model
        .units
        .values()
        .any(|u| u.queue.iter().any(|e| event_rel(e) == Some(rel_id)));
    if dying && !pending {
        model.relations.remove(&rel_id);
    }
}

/// The relation an event belongs to.
pub fn event_rel(ev: &Event) -> Option<i64> {
    match ev {
        Event::RelationCreated { rel }
        | Event::RelationJoined { rel, .. }
        | Event::RelationChanged { rel, .. }
        | Event::RelationDeparted { rel, .. }
        | Event::RelationBroken { rel } => Some(*rel),
        _ => None,
    }
}

/// Starts removing a unit: it runs departed for each remote in scope (itself departing), broken
/// for non-peer relations, then stop and remove. Pending hooks other than the running one are
/// dropped, as Juju's resolver no longer wants them.
pub fn remove_unit(model: &mut Model, unit: &str) {
    let Some(u) = model.units.get_mut(unit) else {
        return;
    };
    if u.life == Life::Dying {
        return;
    }
    u.life = Life::Dying;
    let running = is_running(u);
    let head = if running {
        u.queue.front().cloned()
    } else {
        None
    };
    // Keep queued actions; drop queued hooks.
    let actions: Vec<Event> = u
        .queue
        .iter()
        .skip(usize::from(running))
        .filter(|e| matches!(e, Event::Action { .. }))
        .cloned()
        .collect();
    u.queue = head.into_iter().chain(actions).collect();
    super::storage::unit_dying(model, unit);
    let mut rels: Vec<(i64, bool, Vec<String>)> = model
        .relations
        .values()
        .filter(|r| r.entered.contains(unit))
        .map(|r| {
            (
                r.id,
                r.is_peer(),
                r.scope
                    .get(unit)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default(),
            )
        })
        .collect();
    // Juju's dying unit handles non-peer relations first, peer relations last
    // (worker/uniter/relation/resolver.go `NextOp`).
    rels.sort_by_key(|(id, peer, _)| (*peer, *id));
    for (rel, _, _) in &rels {
        prepare_leave_scope(model, *rel, unit);
    }
    for (rel, peer, remotes) in &rels {
        for r in remotes {
            push_to(
                model,
                unit,
                Event::RelationDeparted {
                    rel: *rel,
                    remote: r.clone(),
                    departing: unit.into(),
                },
            );
        }
        if !peer {
            push_to(model, unit, Event::RelationBroken { rel: *rel });
        }
    }
    push_to(model, unit, Event::Stop);
    push_to(model, unit, Event::Remove);
    for (rel, _, _) in rels {
        leave_scope_if_done(model, rel, unit);
    }
    subordinate::principal_removed(model, unit);
}

/// `unit` is dying: the units that have it in scope (or are joining it now) run departed for it
/// at once, concurrently with its own teardown, and drop their pending joined/changed for it, as
/// Juju's cleanup marks the scope `departing` and every watcher takes it as gone
/// (state/relationunit.go `PrepareLeaveScope`, state/cleanup.go `cleanupDyingUnit`).
pub fn prepare_leave_scope(model: &mut Model, rel_id: i64, unit: &str) {
    let Some(rel) = model.relations.get_mut(&rel_id) else {
        return;
    };
    if !rel.departing.insert(unit.to_string()) {
        return;
    }
    let rel = &model.relations[&rel_id];
    let watchers: Vec<(String, bool)> = entered(rel)
        .into_iter()
        .filter(|w| counterparts(model, rel, unit, w))
        .map(|w| {
            let joined = rel.scope.get(&w).is_some_and(|s| s.contains(unit));
            (w, joined)
        })
        .collect();
    for (w, joined) in watchers {
        let Some(u) = model.units.get_mut(&w) else {
            continue;
        };
        let running = is_running(u);
        let joining_now = running
            && u.queue.front()
                == Some(&Event::RelationJoined {
                    rel: rel_id,
                    remote: unit.to_string(),
                });
        let head = usize::from(running);
        let mut i = head;
        while i < u.queue.len() {
            let about_unit = match &u.queue[i] {
                Event::RelationJoined { rel, remote } => *rel == rel_id && remote == unit,
                Event::RelationChanged {
                    rel,
                    remote: Some(remote),
                } => *rel == rel_id && remote == unit,
                _ => false,
            };
            if about_unit {
                u.queue.remove(i);
            } else {
                i += 1;
            }
        }
        if joined || joining_now {
            push(
                u,
                Event::RelationDeparted {
                    rel: rel_id,
                    remote: unit.into(),
                    departing: unit.into(),
                },
                running,
            );
        }
    }
}

/// A dying unit leaves a relation's scope once it has no hooks of it pending.
pub fn leave_scope_if_done(model: &mut Model, rel_id: i64, unit: &str) {
    let Some(u) = model.units.get(unit) else {
        return;
    };
    if u.life != Life::Dying || u.queue.iter().any(|e| event_rel(e) == Some(rel_id)) {
        return;
    }
    leave_scope(model, rel_id, unit);
}

/// `unit` leaves the relation now (also used for a force-removed lost unit).
pub fn leave_scope(model: &mut Model, rel_id: i64, unit: &str) {
    let Some(rel) = model.relations.get_mut(&rel_id) else {
        return;
    };
    if !rel.entered.remove(unit) {
        return;
    }
    rel.scope.remove(unit);
    if rel.departing.remove(unit) {
        // The others were told when it started dying.
        return;
    }
    let watchers: Vec<String> = rel
        .scope
        .iter()
        .filter(|(_, s)| s.contains(unit))
        .map(|(w, _)| w.clone())
        .collect();
    for w in watchers {
        push_to(
            model,
            &w,
            Event::RelationDeparted {
                rel: rel_id,
                remote: unit.into(),
                departing: unit.into(),
            },
        );
    }
}

/// What `relation-list -r <rel_id>` shows to `unit` while it runs `ev`: the units whose joined
/// it has run (and, in joined, the joining one), without the departing one in departed
/// (worker/uniter/runner/context/contextfactory.go `HookContext` removes it from the cache),
/// sorted as strings: `app/10` before `app/2` (runner/context/cache.go `MemberNames`).
pub fn relation_members(model: &Model, rel_id: i64, unit: &str, ev: &Event) -> Vec<String> {
    let Some(rel) = model.relations.get(&rel_id) else {
        return vec![];
    };
    let mut v: Vec<String> = rel
        .scope
        .get(unit)
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default();
    match ev {
        Event::RelationJoined { rel, remote } if *rel == rel_id && !v.contains(remote) => {
            v.push(remote.clone());
        }
        Event::RelationDeparted { rel, remote, .. } if *rel == rel_id => v.retain(|u| u != remote),
        _ => {}
    }
    v.sort();
    v
}

/// What `relation-ids <endpoint>` shows to `unit`: its application's relations on that
/// endpoint that are alive, or dying with members left for it (a broken one is left out, as
/// Juju 3.4.4+ does), as `endpoint:id` sorted as strings, `db:10` before `db:2`
/// (jujuc/relation-ids.go; runner/context/contextfactory.go `getContextRelations`).
pub fn relation_ids(model: &Model, unit: &str, endpoint: &str) -> Vec<String> {
    let mut ids: Vec<String> = model
        .relations
        .values()
        .filter(|r| {
            r.end_of(app_of(unit))
                .is_some_and(|e| e.endpoint == endpoint)
        })
        .filter(|r| {
            r.life == Life::Alive
                || (r.is_peer() && r.entered.contains(unit))
                || r.scope.get(unit).is_some_and(|s| !s.is_empty())
        })
        .map(|r| format!("{endpoint}:{}", r.id))
        .collect();
    ids.sort();
    ids
}

/// The keys Juju writes into a unit's own databag of every relation it is in: on entering
/// scope (apiserver uniter `EnterScope`) and after every config-changed (uniter
/// `updateUnitNetworkInfoOperation`). Changed values are committed like a hook's writes.
pub fn write_network_keys(model: &mut Model, unit: &str, rels: &[i64]) {
    let Some(addr) = model
        .units
        .get(unit)
        .and_then(|u| model.machines.get(&u.machine))
        .map(|m| m.address.clone())
    else {
        return;
    };
    for rel in rels {
        let Some(r) = model.relations.get_mut(rel) else {
            continue;
        };
        let bag = r.unit_data.entry(unit.to_string()).or_default();
        let before = bag.clone();
        for k in ["private-address", "ingress-address"] {
            bag.insert(k.into(), addr.clone());
        }
        bag.insert("egress-subnets".into(), format!("{addr}/32"));
        if *bag != before {
            data_changed(model, *rel, unit, false);
        }
    }
}

/// The relations `unit` has entered.
pub fn entered_relations(model: &Model, unit: &str) -> Vec<i64> {
    model
        .relations
        .values()
        .filter(|r| r.entered.contains(unit))
        .map(|r| r.id)
        .collect()
}

/// Bookkeeping after a hook completed successfully on `unit`.
pub fn hook_done(model: &mut Model, unit: &str, ev: &Event) {
    super::storage::hook_done(model, unit, ev);
    match ev {
        Event::Install => {
            if let Some(u) = model.units.get_mut(unit) {
                u.installed = true;
                // A charm that set no status during install shows `unknown`, as in Juju.
                if u.workload.message == INSTALLING && u.workload.status == "maintenance" {
                    u.workload = StatusInfo {
                        status: "unknown".into(),
                        message: String::new(),
                    };
                }
            }
        }
        Event::RelationCreated { rel } => {
            enter_scope(model, *rel, unit);
            subordinate::principal_entered(model, *rel, unit);
        }
        Event::RelationJoined { rel, remote } => {
            if let Some(r) = model.relations.get_mut(rel) {
                r.scope
                    .entry(unit.into())
                    .or_default()
                    .insert(remote.clone());
            }
        }
        Event::RelationDeparted { rel, remote, .. } => {
            if let Some(r) = model.relations.get_mut(rel) {
                if let Some(s) = r.scope.get_mut(unit) {
                    s.remove(remote);
                }
            }
            leave_scope_if_done(model, *rel, unit);
            forget_relation_if_done(model, *rel);
        }
        Event::RelationBroken { rel } => {
            if let Some(r) = model.relations.get_mut(rel) {
                if r.life == Life::Dying {
                    r.entered.remove(unit);
                    r.scope.remove(unit);
                }
            }
            subordinate::subordinate_left(model, unit, *rel);
            leave_scope_if_done(model, *rel, unit);
            forget_relation_if_done(model, *rel);
        }
        _ => {}
    }
}

/// Parses Go-style durations like `5m`, `30s`, `1h`, `1m30s`.
pub fn parse_duration(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut num = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        total += n * match c {
            'h' => 3600.0,
            'm' => 60.0,
            's' => 1.0,
            _ => return None,
        };
    }
    if !num.is_empty() {
        return None;
    }
    Some(total)
}

/// Removes a unit from the model (after its `remove` hook, or by force); moves leadership.
pub fn forget_unit(model: &mut Model, unit: &str) {
    let rels: Vec<i64> = model
        .relations
        .values()
        .filter(|r| r.entered.contains(unit))
        .map(|r| r.id)
        .collect();
    for r in rels {
        leave_scope(model, r, unit);
    }
    for r in model.relations.values_mut() {
        for s in r.scope.values_mut() {
            s.remove(unit);
        }
    }
    let app = app_of(unit).to_string();
    model.units.remove(unit);
    if model.apps.get(&app).and_then(|a| a.leader.as_deref()) == Some(unit) {
        elect(model, &app, unit);
    }
    let ids: Vec<i64> = model.relations.keys().copied().collect();
    for id in ids {
        forget_relation_if_done(model, id);
    }
}

#[cfg(test)]
mod tests;

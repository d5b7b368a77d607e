//! Where the model meets [`crate::secrets`]: who a unit is to the secret store, which secret
//! hooks to queue, and the environment they run with.
//!
//! Followed: the uniter's secrets resolver (`[internal/]worker/uniter/secrets/resolver.go`: no
//! secret hook before `install` has completed or while the unit is dying; an application's
//! secrets are the leader's to rotate, expire and remove), `ctx.HookVars` (`JUJU_SECRET_ID` in
//! the local `secret:<id>` form, `JUJU_SECRET_LABEL`, `JUJU_SECRET_REVISION` only for
//! `secret-expired` and `secret-remove`).

use super::lifecycle;
use super::model::{app_of, now, Event, Life, Model, Relation};
use crate::secrets::{Hook, Who};

/// A relation's tag as Juju names it: its key with the requirer's end first (state/relation.go
/// `relationKey` sorts the endpoints by role, requirer before provider), `:` as `.` and the
/// space as `#`, e.g. `relation-wordpress.db#mysql.server`.
fn relation_tag(model: &Model, r: &Relation) -> String {
    let role = |app: &str, endpoint: &str| {
        model
            .apps
            .get(app)
            .and_then(|a| a.meta.endpoints.get(endpoint))
            .map_or("", |e| e.role.as_str())
    };
    let mut ends: Vec<_> = r.ends.iter().collect();
    ends.sort_by_key(|e| (role(&e.app, &e.endpoint) != "requires", e.app.clone()));
    let key: Vec<String> = ends
        .iter()
        .map(|e| format!("{}.{}", e.app, e.endpoint))
        .collect();
    format!("relation-{}", key.join("#"))
}

/// The calling unit as the secret store sees it.
pub fn who(model: &Model, unit: &str) -> Who {
    let app = app_of(unit);
    let alive = || model.relations.values().filter(|r| r.life == Life::Alive);
    Who {
        unit: unit.to_string(),
        leader: model.apps.get(app).and_then(|a| a.leader.as_deref()) == Some(unit),
        model_uuid: model.uuid.clone(),
        now: now(),
        remote_apps: alive()
            .filter(|r| r.involves(app))
            .filter_map(|r| Some((r.id, r.remote_app(app)?)))
            .collect(),
        live_relations: alive().map(|r| (r.id, relation_tag(model, r))).collect(),
    }
}

/// Queues the secret hooks due at `now` on the units that get them; answers whether any.
pub fn queue_due(model: &mut Model, now: f64) -> bool {
    let notices = crate::secrets::due(&mut model.secrets, now);
    let mut queued = false;
    for n in notices {
        let unit = if n.to.contains('/') {
            Some(n.to.clone())
        } else {
            model.apps.get(&n.to).and_then(|a| a.leader.clone())
        };
        let Some(u) = unit.and_then(|u| model.units.get_mut(&u)) else {
            continue;
        };
        if !u.installed || u.life != Life::Alive {
            continue;
        }
        let id = n.id;
        let ev = match n.hook {
            Hook::Changed => Event::SecretChanged { id },
            Hook::Rotate => Event::SecretRotate { id },
            Hook::Expired(revision) => Event::SecretExpired { id, revision },
            Hook::Remove(revision) => Event::SecretRemove { id, revision },
        };
        if !u.queue.contains(&ev) {
            let running = lifecycle::is_running(u);
            lifecycle::push(u, ev, running);
            queued = true;
        }
    }
    queued
}

/// `JUJU_SECRET_*` of a secret hook (none for other events).
pub fn hook_env(model: &Model, unit: &str, ev: &Event) -> Vec<(String, String)> {
    let (id, revision) = match ev {
        Event::SecretChanged { id } | Event::SecretRotate { id } => (id, None),
        Event::SecretExpired { id, revision } | Event::SecretRemove { id, revision } => {
            (id, Some(*revision))
        }
        _ => return vec![],
    };
    let mut env = vec![
        ("JUJU_SECRET_ID".to_string(), crate::secrets::local_uri(id)),
        (
            "JUJU_SECRET_LABEL".to_string(),
            crate::secrets::label_for(&model.secrets, id, unit),
        ),
    ];
    if let Some(r) = revision.filter(|r| *r > 0) {
        env.push(("JUJU_SECRET_REVISION".to_string(), r.to_string()));
    }
    env
}

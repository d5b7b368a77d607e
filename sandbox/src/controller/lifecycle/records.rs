//! What hook tools and the command line record at once, as pure changes: leader data, status,
//! action results, an application's config, resources and charm, tasks, partitions and the
//! error a unit is resolved from.

use super::context::merge;
use super::{config_changed, leader_data_changed, push_to};
use crate::controller::model::{App, CharmMeta, Event, Model, RelEnd, Task, TaskStatus};
use crate::tools::env::{Settings, StatusInfo};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `leader-set` by the leader of `app`: followers get `leader-settings-changed` if it changed.
pub fn set_leader_data(model: &mut Model, app: &str, settings: &Settings) {
    let Some(a) = model.apps.get_mut(app) else {
        return;
    };
    let before = a.leader_data.clone();
    merge(&mut a.leader_data, settings);
    if a.leader_data != before {
        leader_data_changed(model, app);
    }
}

/// `status-set` of `unit` at `now` (its application's when `application`); the unit's since
/// moves only when its status changes.
pub fn set_status(model: &mut Model, unit: &str, application: bool, info: StatusInfo, now: f64) {
    if application {
        if let Some(a) = model.apps.get_mut(crate::controller::model::app_of(unit)) {
            a.status = info;
        }
        return;
    }
    if let Some(u) = model.units.get_mut(unit) {
        if u.workload != info {
            u.workload = info;
            u.workload_since = now;
        }
    }
}

/// `application-version-set`.
pub fn set_version(model: &mut Model, app: &str, version: &str) {
    if let Some(a) = model.apps.get_mut(app) {
        a.version = version.into();
    }
}

/// `action-set key=value`: a dotted key nests.
pub fn set_action_result(task: &mut Task, key: &str, value: &str) {
    if !task.results.is_object() {
        task.results = Value::Object(Default::default());
    }
    let mut cur = &mut task.results;
    let parts: Vec<&str> = key.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        let obj = cur.as_object_mut().expect("object");
        let next = obj
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
        if !next.is_object() {
            *next = Value::Object(Default::default());
        }
        cur = next;
    }
    cur.as_object_mut()
        .expect("object")
        .insert(parts[parts.len() - 1].to_string(), Value::from(value));
}

/// `action-fail`.
pub fn fail_action(task: &mut Task, message: &str) {
    task.status = TaskStatus::Failed;
    task.message = message.into();
}

/// `action-log` at `now`.
pub fn log_action(task: &mut Task, message: &str, now: f64) {
    task.log.push((now, message.into()));
}

/// A new task for `unit` at `now`, queued: an action, or with `exec` a `juju-exec`; answers
/// its id.
pub fn add_task(
    model: &mut Model,
    unit: &str,
    action: &str,
    params: Value,
    exec: bool,
    now: f64,
) -> u64 {
    let id = model.next_task;
    model.next_task += 1;
    model.tasks.insert(
        id,
        Task {
            id,
            unit: unit.into(),
            action: action.into(),
            params,
            status: TaskStatus::Pending,
            message: String::new(),
            results: json!({}),
            log: vec![],
            stdout: String::new(),
            stderr: String::new(),
            code: 0,
            enqueued: now,
            started: 0.0,
            completed: 0.0,
        },
    );
    let ev = if exec {
        Event::Exec { id }
    } else {
        Event::Action { id }
    };
    push_to(model, unit, ev);
    id
}

/// A deployed application, with a relation for each of its peer endpoints.
pub fn add_app(model: &mut Model, app: App) {
    let name = app.name.clone();
    let peers: Vec<(String, String)> = app
        .meta
        .endpoints
        .iter()
        .filter(|(_, e)| e.role == "peers")
        .map(|(n, e)| (n.clone(), e.interface.clone()))
        .collect();
    model.apps.insert(name.clone(), app);
    for (ep, iface) in peers {
        super::add_relation(
            model,
            vec![RelEnd {
                app: name.clone(),
                endpoint: ep,
            }],
            iface,
        );
    }
}

/// `config` of `app`: the checked `changes` set, `reset` removed; its units get
/// `config-changed` when that changed anything.
pub fn set_config(
    model: &mut Model,
    app: &str,
    changes: BTreeMap<String, Value>,
    reset: &[String],
) {
    let Some(a) = model.apps.get_mut(app) else {
        return;
    };
    let before = a.config.clone();
    a.config.extend(changes);
    for k in reset {
        a.config.remove(k);
    }
    if a.config != before {
        config_changed(model, app);
    }
}

/// A resource attached to `app` (a checked name): a new revision changes the charm's modified
/// version, so the uniter runs upgrade-charm, then config-changed (worker/uniter/resolver.go).
pub fn attach_resource(model: &mut Model, app: &str, name: String, path: PathBuf) {
    let Some(a) = model.apps.get_mut(app) else {
        return;
    };
    a.resources.insert(name, path);
    for u in model.units_of(app) {
        push_to(model, &u, Event::UpgradeCharm);
        push_to(model, &u, Event::ConfigChanged);
    }
}

/// `refresh`: `app` runs revision `rev`, staged at `dir`; its units upgrade.
pub fn refreshed(model: &mut Model, app: &str, dir: PathBuf, rev: u32, meta: CharmMeta) {
    let Some(a) = model.apps.get_mut(app) else {
        return;
    };
    a.charm_dir = dir;
    a.charm_rev = rev;
    a.meta = meta;
    for u in model.units_of(app) {
        for ev in [Event::UpgradeCharm, Event::ConfigChanged, Event::Start] {
            push_to(model, &u, ev);
        }
    }
    super::super::storage::refreshed(model, app);
}

/// Model config set by the command line; `update-status-hook-interval` must be a duration.
pub fn set_model_config(model: &mut Model, set: BTreeMap<String, String>) -> Result<(), String> {
    for (k, v) in set {
        if k == "update-status-hook-interval" && super::parse_duration(&v).is_none() {
            return Err(format!("{k}: {v:?} is not a duration like 5m or 30s"));
        }
        model.config.insert(k, v);
    }
    Ok(())
}

/// `resolved`: the failed hook of `unit` runs again now, or with `no_retry` is skipped.
pub fn resolved(model: &mut Model, unit: &str, no_retry: bool) -> Result<(), String> {
    let u = model
        .units
        .get_mut(unit)
        .ok_or_else(|| format!("unit {unit:?} not found"))?;
    if u.agent != crate::controller::model::Agent::Error {
        return Err(format!("unit {unit:?} is not in an error state"));
    }
    if no_retry {
        u.queue.pop_front();
        u.agent = crate::controller::model::Agent::Idle;
        u.agent_message.clear();
    }
    u.retry_at = 0.0;
    u.retries = 0;
    Ok(())
}

/// Machine `id` was cut off the switch.
pub fn partitioned(model: &mut Model, id: u32) {
    if let Some(m) = model.machines.get_mut(&id) {
        m.partitioned = true;
    }
}

/// Machine `id` no longer hears from the machines of `units`.
pub fn blocked_from(model: &mut Model, id: u32, units: Vec<String>) {
    if let Some(m) = model.machines.get_mut(&id) {
        m.blocked_from.extend(units);
    }
}

/// Machine `id` was healed of every partition.
pub fn healed(model: &mut Model, id: u32) {
    if let Some(m) = model.machines.get_mut(&id) {
        m.partitioned = false;
        m.blocked_from.clear();
    }
}

/// `destroy`: every application, unit and machine leaves the model; answers the machines to
/// destroy.
pub fn destroyed(model: &mut Model) -> BTreeMap<u32, crate::controller::model::MachineRec> {
    model.units.clear();
    model.apps.clear();
    std::mem::take(&mut model.machines)
}

/// A `secret-*` tool call of `unit` at `now`: answered from the store, its changes buffered in
/// `pending`, the secret hooks it makes due queued.
pub fn secret_call(
    model: &mut Model,
    pending: &mut crate::secrets::Pending,
    unit: &str,
    call: crate::secrets::Call,
    now: f64,
) -> Result<crate::secrets::Answer, String> {
    let who = crate::controller::secret_hooks::who(model, unit);
    let answer = crate::secrets::handle(&mut model.secrets, pending, &who, call)?;
    crate::controller::secret_hooks::queue_due(model, now);
    Ok(answer)
}

/// A free address for a machine to move to: the highest of the subnet's `.10`–`.254` that no
/// machine holds and no machine number yet allocated maps to (new machines take `.(10 + n)`
/// upwards, so one moved to the top is not met again until a model has well over 200).
pub fn free_address(model: &Model) -> Option<String> {
    let [a, b, c] = model.subnet;
    let taken = |last: u32| {
        last < 10 + model.next_machine
            || model
                .machines
                .values()
                .any(|m| m.address == format!("{a}.{b}.{c}.{last}"))
    };
    (10..=254u32)
        .rev()
        .find(|l| !taken(*l))
        .map(|l| format!("{a}.{b}.{c}.{l}"))
}

/// Machine `id` now holds `address` (`change-address`, as a provider's new address reaching
/// Juju). In Juju (2.9 and 3.x) the unit agent's remote-state watcher follows
/// `WatchUnitAddressesHash` (apiserver uniter: the machine's addresses, and the endpoint
/// bindings); when the hash differs the resolver runs `config-changed`
/// (worker/uniter/resolver.go: `addressesHashChanged` → `hooks.ConfigChanged`), after which the
/// uniter writes `private-address`/`ingress-address` into the unit's relation data again
/// ([`super::write_network_keys`]), which wakes the remote units with relation-changed. No
/// other hook fires. So: every live unit on the machine (subordinates too) gets `config-changed`.
pub fn address_changed(model: &mut Model, id: u32, address: String) {
    let Some(m) = model.machines.get_mut(&id) else {
        return;
    };
    if m.address == address {
        return;
    }
    if let (Some(h), Ok(a)) = (m.handle.as_mut(), address.parse()) {
        h.address = a;
    }
    m.address = address;
    let units: Vec<String> = model
        .units
        .values()
        .filter(|u| u.machine == id && u.life == crate::controller::model::Life::Alive)
        .map(|u| u.name.clone())
        .collect();
    for u in units {
        push_to(model, &u, Event::ConfigChanged);
    }
}

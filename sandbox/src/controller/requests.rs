//! Answers to command-line requests.

use super::lifecycle::{agent, records};
use super::model::{now, App, Life, RelEnd};
use super::{charm, lifecycle, provision, Shared, State};
use crate::api::{Request, Response};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

type Res = Result<Value, String>;

/// Handles one request.
pub fn handle(sh: &Arc<Shared>, req: Request) -> Response {
    let result = match req {
        // These power a machine off: not under the lock.
        Request::KillMachine { unit } => kill_machine(sh, &unit),
        Request::RestartMachine { unit } => restart_machine(sh, &unit),
        // These change the machines' network namespaces: not under the lock either.
        Request::Partition { unit, from } => partition(sh, unit, from),
        Request::Heal { unit } => heal(sh, unit),
        Request::ChangeAddress { target } => change_address(sh, &target),
        // These copy a charm in: staged without the lock, then recorded under it.
        Request::Deploy {
            charm,
            app,
            num_units,
            config,
            resources,
            storage,
            attach_storage,
        } => super::storage::Wanted::parse(&storage, attach_storage, num_units)
            .and_then(|storage| deploy(sh, &charm, app, num_units, &config, &resources, &storage)),
        Request::Refresh { app, path } => refresh(sh, &app, &path),
        // The host path is resolved without the lock.
        Request::AttachResource { app, name, path } => {
            absolute(&path).and_then(|p| locked(sh, |st| attach_resource(st, app, name, p)))
        }
        // The model is emptied under the lock, the machines destroyed after it.
        Request::Destroy => {
            destroy(sh);
            Ok(Value::Null)
        }
        req => locked(sh, |st| dispatch(sh, st, req)),
    };
    match result {
        Ok(v) => Response::ok(v),
        Err(e) => Response::err(e),
    }
}

/// Runs `f` under the lock and saves the model before releasing it.
fn locked(sh: &Shared, f: impl FnOnce(&mut State) -> Res) -> Res {
    let mut st = sh.lock();
    let r = f(&mut st);
    sh.commit(&st);
    r
}

fn dispatch(sh: &Arc<Shared>, st: &mut State, req: Request) -> Res {
    match req {
        Request::Ping => Ok(json!({
            "model": st.model.name,
            "uuid": st.model.uuid,
            "agent-version": st.model.agent_version,
            "build": super::Build::current_value(),
        })),
        Request::AddUnit {
            app,
            num_units,
            storage,
            attach_storage,
        } => add_units(sh, st, app, num_units, storage, attach_storage),
        Request::RemoveUnit {
            units,
            destroy_storage,
        } => remove_units(st, units, destroy_storage),
        Request::Integrate(ends) => integrate(st, &ends.a, &ends.b),
        Request::RemoveRelation(ends) => {
            let id = find_relation(st, &ends.a, &ends.b)?;
            lifecycle::remove_relation(&mut st.model, id);
            Ok(json!({ "removing": id }))
        }
        Request::Config { app, set, reset } => config(st, &app, &set, &reset),
        Request::RunAction {
            unit,
            action,
            params,
        } => run_action(st, &unit, &action, params),
        Request::ShowTask { id } => st
            .model
            .tasks
            .get(&id)
            .map(|t| json!(t))
            .ok_or_else(|| format!("task {id} not found")),
        Request::Exec { unit, command } => {
            unit_exists(st, &unit)?;
            Ok(json!({ "id": queue_exec(st, &unit, &command) }))
        }
        Request::Status => Ok(json!(st.model)),
        Request::Resolved { unit, no_retry } => {
            records::resolved(&mut st.model, &unit, no_retry)?;
            Ok(Value::Null)
        }
        Request::ModelConfig { set } => {
            records::set_model_config(&mut st.model, set)?;
            Ok(json!(st.model.config))
        }
        Request::KillMachine { .. }
        | Request::RestartMachine { .. }
        | Request::Partition { .. }
        | Request::Heal { .. }
        | Request::ChangeAddress { .. }
        | Request::Deploy { .. }
        | Request::Refresh { .. }
        | Request::AttachResource { .. }
        | Request::Destroy => unreachable!("handled without the lock"),
        Request::RemoveMachine { target, force } => remove_machine(sh, st, target, force),
    }
}

fn absolute(path: &str) -> Result<PathBuf, String> {
    let p = std::fs::canonicalize(path).map_err(|e| format!("cannot use {path}: {e}"))?;
    Ok(p)
}

fn unit_exists(st: &State, unit: &str) -> Result<(), String> {
    if st.model.units.contains_key(unit) {
        Ok(())
    } else {
        Err(format!(
            "unit {unit:?} not found: see `sandbox status` for the units of the model"
        ))
    }
}

fn machine_of(st: &State, unit: &str) -> Result<(u32, crate::machine::Machine), String> {
    unit_exists(st, unit)?;
    let mid = st.model.units[unit].machine;
    let h = st.model.machines.get(&mid).and_then(|m| m.handle.clone());
    h.map(|h| (mid, h))
        .ok_or_else(|| format!("the machine of {unit} is not running yet"))
}

fn add_unit(sh: &Arc<Shared>, st: &mut State, app: &str, storage: &super::storage::Plan) -> String {
    let u = lifecycle::add_unit(&mut st.model, app);
    super::storage::give_new_unit(&mut st.model, &u, storage);
    provision::provision(sh, &u);
    u
}

/// A charm staged in its own dir under `charms/`, not yet in the model.
struct Incoming {
    dir: PathBuf,
    meta: super::model::CharmMeta,
}

impl Incoming {
    /// Stages the charm at `path` (without the lock: it copies the whole charm).
    fn stage(sh: &Shared, path: &str) -> Result<Incoming, String> {
        let src = absolute(path)?;
        let name = format!(".incoming-{}", super::model::random_hex(8));
        let dir = sh.home.join("charms").join(name);
        let meta = charm::stage(&src, &dir).and_then(|()| charm::read_meta(&dir));
        match meta {
            Ok(meta) => Ok(Incoming { dir, meta }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(format!("{e:#}"))
            }
        }
    }

    /// Moves the staged charm to `dest`, its place in the model (under the lock: a rename).
    fn place(&self, dest: &std::path::Path) -> Result<(), String> {
        if dest.exists() {
            // Left by a controller that stopped before saving the model: never in use.
            std::fs::remove_dir_all(dest).map_err(|e| e.to_string())?;
        }
        std::fs::rename(&self.dir, dest).map_err(|e| e.to_string())
    }

    /// Runs `commit` under the lock, then deletes the staged dir if `commit` did not place it.
    fn commit(self, sh: &Shared, commit: impl FnOnce(&mut State, &Incoming) -> Res) -> Res {
        let r = locked(sh, |st| commit(st, &self));
        if self.dir.exists() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        r
    }
}

fn deploy(
    sh: &Arc<Shared>,
    charm_path: &str,
    app: Option<String>,
    n: u32,
    config: &BTreeMap<String, String>,
    resources: &BTreeMap<String, String>,
    storage: &super::storage::Wanted,
) -> Res {
    let incoming = Incoming::stage(sh, charm_path)?;
    // Checked without the lock: they concern the charm and the host's files only.
    let meta = &incoming.meta;
    let n = lifecycle::subordinate::units_to_deploy(meta, n)?;
    let name = app.unwrap_or_else(|| meta.name.clone());
    let mut typed = BTreeMap::new();
    for (k, v) in config {
        typed.insert(
            k.clone(),
            charm::parse_option(meta, k, v).map_err(|e| format!("{e:#}"))?,
        );
    }
    let mut res = BTreeMap::new();
    for (k, v) in resources {
        if !meta.resources.contains_key(k) {
            return Err(format!("charm {:?} has no resource {k:?}", meta.name));
        }
        res.insert(k.clone(), absolute(v)?);
    }
    incoming.commit(sh, |st, incoming| {
        if st.model.apps.contains_key(&name) {
            return Err(format!(
                "application {name:?} already exists: use add-unit, or deploy under another name"
            ));
        }
        let meta = &incoming.meta;
        let plan = super::storage::plan(&st.model, &name, &meta.storage, storage)?;
        let dir = charm::staged_dir(&sh.home, &name, 0);
        incoming.place(&dir)?;
        let mut a = App::new(&name, dir, meta.clone());
        a.config = typed;
        a.resources = res;
        records::add_app(&mut st.model, a);
        let units: Vec<String> = (0..n).map(|_| add_unit(sh, st, &name, &plan)).collect();
        Ok(json!({ "application": name, "units": units }))
    })
}

fn parse_end(s: &str) -> (String, Option<String>) {
    match s.split_once(':') {
        Some((a, e)) => (a.to_string(), Some(e.to_string())),
        None => (s.to_string(), None),
    }
}

/// Picks the endpoints of a new relation as Juju does: matching interfaces, provides to requires.
fn integrate(st: &mut State, a: &str, b: &str) -> Res {
    let (aa, ae) = parse_end(a);
    let (ba, be) = parse_end(b);
    let app = |n: &str| {
        st.model
            .apps
            .get(n)
            .ok_or_else(|| format!("application {n:?} not found"))
    };
    let (ma, mb) = (&app(&aa)?.meta, &app(&ba)?.meta);
    let mut candidates = vec![];
    for (en, em) in &ma.endpoints {
        for (fn_, fm) in &mb.endpoints {
            let roles_ok = matches!(
                (em.role.as_str(), fm.role.as_str()),
                ("provides", "requires") | ("requires", "provides")
            );
            if roles_ok
                && em.interface == fm.interface
                && ae.as_ref().is_none_or(|x| x == en)
                && be.as_ref().is_none_or(|x| x == fn_)
            {
                candidates.push((en.clone(), fn_.clone(), em.interface.clone()));
            }
        }
    }
    let mut candidates =
        lifecycle::subordinate::prefer_explicit(candidates, |(x, y, _)| [x.as_str(), y.as_str()]);
    let (ea, eb, iface) = match candidates.len() {
        0 => return Err(format!("no relations found between {a:?} and {b:?}: the endpoints' interfaces or roles do not match")),
        1 => candidates.remove(0),
        _ => {
            let opts: Vec<String> = candidates.iter().map(|(x, y, _)| format!("{aa}:{x} {ba}:{y}")).collect();
            return Err(format!("ambiguous relation: {a:?} {b:?} could refer to {opts:?}: name the endpoints"));
        }
    };
    let ends = [
        RelEnd {
            app: aa,
            endpoint: ea,
        },
        RelEnd {
            app: ba,
            endpoint: eb,
        },
    ];
    if st.model.find_relation(&ends[0], &ends[1]).is_some() {
        return Err(format!("relation {a} {b} already exists"));
    }
    let id = lifecycle::add_relation(&mut st.model, ends.to_vec(), iface);
    Ok(json!({ "id": id }))
}

fn find_relation(st: &State, a: &str, b: &str) -> Result<i64, String> {
    let (aa, ae) = parse_end(a);
    let (ba, be) = parse_end(b);
    let matches = |e: &RelEnd, app: &str, ep: &Option<String>| {
        e.app == app && ep.as_ref().is_none_or(|x| *x == e.endpoint)
    };
    st.model
        .relations
        .values()
        .find(|r| {
            r.life == Life::Alive
                && r.ends.len() == 2
                && ((matches(&r.ends[0], &aa, &ae) && matches(&r.ends[1], &ba, &be))
                    || (matches(&r.ends[1], &aa, &ae) && matches(&r.ends[0], &ba, &be)))
        })
        .map(|r| r.id)
        .ok_or_else(|| format!("relation between {a:?} and {b:?} not found"))
}

fn config(st: &mut State, app: &str, set: &BTreeMap<String, String>, reset: &[String]) -> Res {
    let a = st
        .model
        .apps
        .get(app)
        .ok_or_else(|| format!("application {app:?} not found"))?;
    let mut changes = BTreeMap::new();
    for (k, v) in set {
        changes.insert(
            k.clone(),
            charm::parse_option(&a.meta, k, v).map_err(|e| format!("{e:#}"))?,
        );
    }
    for k in reset {
        if !a.meta.options.contains_key(k) {
            return Err(format!("unknown option {k:?}"));
        }
    }
    records::set_config(&mut st.model, app, changes, reset);
    let a = &st.model.apps[app];
    let settings: BTreeMap<String, Value> = a
        .meta
        .options
        .iter()
        .map(|(k, o)| {
            let user = a.config.get(k);
            let mut e = json!({
                "type": o["type"], "description": o["description"],
                "source": if user.is_some() { "user" } else if o.get("default").is_some() { "default" } else { "unset" },
            });
            if let Some(d) = o.get("default") {
                e["default"] = d.clone();
            }
            if let Some(v) = user.or(o.get("default")) {
                e["value"] = v.clone();
            }
            (k.clone(), e)
        })
        .collect();
    Ok(json!({ "application": app, "charm": a.meta.name, "settings": settings }))
}

fn refresh(sh: &Arc<Shared>, app: &str, path: &str) -> Res {
    let not_found = || format!("application {app:?} not found");
    if !sh.lock().model.apps.contains_key(app) {
        return Err(not_found());
    }
    Incoming::stage(sh, path)?.commit(sh, |st, incoming| {
        // The next revision as the model has it now (another refresh may have come first).
        let rev = st.model.apps.get(app).ok_or_else(not_found)?.charm_rev + 1;
        let dir = charm::staged_dir(&sh.home, app, rev);
        incoming.place(&dir)?;
        records::refreshed(&mut st.model, app, dir, rev, incoming.meta.clone());
        for unit in st.model.units_of(app) {
            super::storage::volumes::bind_new(sh, st, &unit);
        }
        Ok(json!({ "revision": rev }))
    })
}

/// Queues `command` as an exec on `unit` (a `juju-exec` task); answers its task id.
fn queue_exec(st: &mut State, unit: &str, command: &str) -> u64 {
    let params = json!({ "command": command });
    records::add_task(&mut st.model, unit, "juju-exec", params, true, now())
}

fn run_action(st: &mut State, unit: &str, action: &str, params: Value) -> Res {
    unit_exists(st, unit)?;
    let app = &st.model.apps[super::model::app_of(unit)];
    let Some(spec) = app.meta.actions.get(action) else {
        let known: Vec<&String> = app.meta.actions.keys().collect();
        return Err(format!(
            "action {action:?} not defined on unit {unit:?}: its actions are {known:?}"
        ));
    };
    let params = super::params::validate(action, spec, &params)?;
    let id = records::add_task(&mut st.model, unit, action, params, false, now());
    Ok(json!({ "id": id }))
}

/// Kills the machine of `unit`: the lock is held to find it and to record it down, not while
/// it is killed.
fn kill_machine(sh: &Arc<Shared>, unit: &str) -> Res {
    let (mid, h) = machine_of(&sh.lock(), unit)?;
    h.kill().map_err(|e| format!("{e:#}"))?;
    let mut st = sh.lock();
    agent::machine_down(&mut st.model, mid, now());
    sh.commit(&st);
    Ok(Value::Null)
}

/// Reboots the machine of `unit`: recorded pending under the lock (so no hook starts on it),
/// powered off after the lock is released, then booted again in the background.
fn restart_machine(sh: &Arc<Shared>, unit: &str) -> Res {
    let (unit, handle) = {
        let mut st = sh.lock();
        unit_exists(&st, unit)?;
        let r = agent::machine_restarting(&mut st.model, unit);
        sh.commit(&st);
        r.ok_or_else(|| format!("the machine of {unit} is gone"))?
    };
    if let Some(h) = handle.filter(|h| h.is_alive()) {
        h.poweroff(Duration::from_secs(30))
            .map_err(|e| format!("{e:#}"))?;
    }
    provision::reboot(sh, &unit);
    Ok(Value::Null)
}

/// `destroy`: the model emptied and the controller stopping under the lock, then every machine,
/// the network and the model's files destroyed without it; the process exits after.
fn destroy(sh: &Arc<Shared>) {
    let (lab, machines) = {
        let mut st = sh.lock();
        let machines = records::destroyed(&mut st.model);
        st.stopping = true;
        sh.commit(&st);
        (super::lab(&st), machines)
    };
    for (id, m) in machines {
        let dir = super::machine_dir(sh, id);
        if let Err(e) =
            crate::machine::destroy_machine(&lab, id, &dir, m.handle.map(|h| h.nspawn_pid))
        {
            sh.log_line(
                "controller",
                "ERROR",
                &format!("destroying machine {id}: {e:#}"),
            );
        }
    }
    let _ = crate::machine::sweep(&lab.prefix, &sh.home);
    let _ = lab.destroy();
    let _ = std::fs::remove_file(super::model_path(&sh.home));
    let _ = std::fs::remove_dir_all(sh.home.join("charms"));
    let _ = std::fs::remove_dir_all(sh.home.join("machines"));
    sh.lock().destroyed = true;
}

/// `add-unit`: `num_units` more units of `app`, with the storage asked for.
fn add_units(
    sh: &Arc<Shared>,
    st: &mut State,
    app: String,
    num_units: u32,
    storage: Vec<String>,
    attach_storage: Vec<String>,
) -> Res {
    let Some(a) = st.model.apps.get(&app) else {
        return Err(format!(
            "application {app:?} not found: deploy it first (sandbox deploy)"
        ));
    };
    lifecycle::subordinate::check_add_unit(&st.model, &app)?;
    let storage = super::storage::Wanted::parse(&storage, attach_storage, num_units)?;
    let stores = a.meta.storage.clone();
    let plan = super::storage::plan(&st.model, &app, &stores, &storage)?;
    let units: Vec<String> = (0..num_units)
        .map(|_| add_unit(sh, st, &app, &plan))
        .collect();
    Ok(json!({ "units": units }))
}

/// `remove-unit`: each unit starts dying (none if one cannot); answers the storage each leaves.
fn remove_units(st: &mut State, units: Vec<String>, destroy_storage: bool) -> Res {
    for u in &units {
        let unit = st
            .model
            .units
            .get(u)
            .ok_or_else(|| format!("unit {u:?} not found"))?;
        if unit.agent == super::model::Agent::Lost {
            return Err(format!(
                "unit {u:?} is lost (its machine is down): use `sandbox remove-machine --force {u}` or restart the machine"
            ));
        }
        lifecycle::subordinate::check_remove_unit(&st.model, u)?;
    }
    let mut storage = BTreeMap::new();
    for u in &units {
        if destroy_storage {
            super::storage::destroy_with(&mut st.model, u);
        }
        storage.insert(u, super::storage::attached_to(&st.model, u, None));
        lifecycle::remove_unit(&mut st.model, u);
    }
    Ok(json!({ "removing": units, "storage": storage }))
}

/// `attach-resource`: `app`'s resource `name` is the file at `path` from now on.
fn attach_resource(st: &mut State, app: String, name: String, p: PathBuf) -> Res {
    let a = st
        .model
        .apps
        .get(&app)
        .ok_or_else(|| format!("application {app:?} not found"))?;
    if !a.meta.resources.contains_key(&name) {
        return Err(format!("charm {:?} has no resource {name:?}", a.meta.name));
    }
    records::attach_resource(&mut st.model, &app, name, p);
    Ok(Value::Null)
}

/// `partition`: cuts `unit`'s machine off the switch, or only from the machines of `from`.
fn partition(sh: &Arc<Shared>, unit: String, from: Vec<String>) -> Res {
    let (mid, h, lab, addrs) = {
        let st = sh.lock();
        let (mid, h) = machine_of(&st, &unit)?;
        let mut addrs = vec![];
        for f in &from {
            let m = st
                .model
                .units
                .get(f)
                .ok_or_else(|| format!("unit {f:?} not found"))?
                .machine;
            addrs.push(
                st.model.machines[&m]
                    .address
                    .parse()
                    .map_err(|_| "bad address".to_string())?,
            );
        }
        (mid, h, super::lab(&st), addrs)
    };
    if from.is_empty() {
        h.partition(&lab).map_err(|e| format!("{e:#}"))?;
    } else {
        h.block_from(&addrs).map_err(|e| format!("{e:#}"))?;
    }
    let mut st = sh.lock();
    if from.is_empty() {
        records::partitioned(&mut st.model, mid);
    } else {
        records::blocked_from(&mut st.model, mid, from);
    }
    sh.commit(&st);
    Ok(Value::Null)
}

/// `heal`: undoes every partition of `unit`'s machine, or of all machines.
fn heal(sh: &Arc<Shared>, unit: Option<String>) -> Res {
    let (lab, machines) = {
        let st = sh.lock();
        let targets: Vec<String> = match unit {
            Some(u) => vec![u],
            None => st.model.units.keys().cloned().collect(),
        };
        let machines: Vec<_> = targets
            .iter()
            .filter_map(|u| machine_of(&st, u).ok())
            .collect();
        (super::lab(&st), machines)
    };
    for (mid, h) in machines {
        h.heal(&lab).map_err(|e| format!("{e:#}"))?;
        h.unblock_all().map_err(|e| format!("{e:#}"))?;
        let mut st = sh.lock();
        records::healed(&mut st.model, mid);
        sh.commit(&st);
    }
    Ok(Value::Null)
}

/// `change-address`: moves the machine of `target` (a machine number or unit name) to a free
/// address of the sandbox's subnet, inside its own namespace; then, under the lock, the model's
/// record (status, `network-get`, `unit-get`) and the units' `config-changed`
/// ([`records::address_changed`], where Juju's behaviour is described); then every running
/// machine's `/etc/hosts`. Answers the old and the new address.
fn change_address(sh: &Arc<Shared>, target: &str) -> Res {
    let (mid, h, lab, old, new) = {
        let st = sh.lock();
        let mid = match target.parse::<u32>() {
            Ok(n) if st.model.machines.contains_key(&n) => n,
            _ => machine_of(&st, target)?.0,
        };
        let m = &st.model.machines[&mid];
        let h = m.handle.clone().ok_or_else(|| {
            format!("machine {mid} is not running: start it with `restart-machine` first")
        })?;
        let new = records::free_address(&st.model)
            .ok_or("no free address left on the sandbox network")?;
        (mid, h, super::lab(&st), m.address.clone(), new)
    };
    let addr = new.parse().map_err(|_| format!("bad address {new}"))?;
    let moved = h.change_address(&lab, addr).map_err(|e| format!("{e:#}"))?;
    let (text, machines) = {
        let mut st = sh.lock();
        records::address_changed(&mut st.model, mid, new.clone());
        sh.commit(&st);
        sh.log_line(
            "controller",
            "INFO",
            &format!("machine {mid} moved from {old} to {new}"),
        );
        super::provision::hosts_file(&st, &moved)
    };
    for m in machines {
        let _ = m.write_file("/etc/hosts", text.as_bytes(), 0o644);
    }
    Ok(json!({ "machine": mid, "old": old, "new": new }))
}

/// `remove-machine`: the unit on machine (or named) `target` dies, or with `force` is gone.
fn remove_machine(sh: &Arc<Shared>, st: &mut State, target: String, force: bool) -> Res {
    let unit = match target.parse::<u32>() {
        Ok(n) => st
            .model
            .units
            .values()
            .find(|u| u.machine == n && u.principal.is_none())
            .map(|u| u.name.clone()),
        Err(_) => st.model.units.get(&target).map(|u| u.name.clone()),
    }
    .ok_or_else(|| format!("machine or unit {target:?} not found"))?;
    if force {
        super::deployer::forget_subordinates(st, &unit);
        super::deployer::retire_unit(sh, st, &unit);
    } else if st.model.units[&unit].agent == super::model::Agent::Lost {
        return Err(format!(
            "machine of {unit} is down: add --force to remove it without running its hooks"
        ));
    } else {
        lifecycle::remove_unit(&mut st.model, &unit);
    }
    Ok(json!({ "removed": unit }))
}

//! The unit agents' side of the model, as pure changes: a hook, action or exec starting and
//! ending, a machine booting, going down or coming back, and a failed hook retried.
//!
//! The runner and the provisioner do the IO and call these under the model lock with what they
//! saw (an exit code, a booted machine, the time).

use super::context::HookCtx;
use super::{entered_relations, hook_done, push_to, write_network_keys};
use crate::controller::model::{Agent, Event, Life, MachineRec, MachineState, Model, TaskStatus};
use crate::machine::Machine;
use crate::tools::env::StatusInfo;
use std::collections::HashMap;

/// The retry time of a failed hook that only `resolved` retries (a finite number: the model is
/// saved as JSON, where an infinity would come back as `null`).
const NEVER: f64 = f64::MAX;

/// Juju's workload message while the install hook runs.
pub const INSTALLING: &str = "installing charm software";

/// Backoff before retrying a failed hook, as Juju's retry strategy: 5 s doubling to 5 min.
pub fn backoff(retries: u32) -> f64 {
    (5.0 * 2f64.powi(retries.saturating_sub(1).min(10) as i32)).min(300.0)
}

/// Moves queue entry `idx` of `unit` to the head and marks it executing at `now`: its task
/// running, its charm revision the application's, and for `-relation-created` the unit's
/// address keys written first (Juju enters the scope just before that hook).
pub fn hook_starting(model: &mut Model, unit: &str, idx: usize, now: f64) -> Option<Event> {
    let charm_rev = model.apps.get(&model.units.get(unit)?.app)?.charm_rev;
    let u = model.units.get_mut(unit)?;
    let ev = u.queue.remove(idx)?;
    u.queue.push_front(ev.clone());
    u.agent = Agent::Executing;
    u.agent_since = now;
    u.charm_rev = charm_rev;
    if let Some(t) = task_of(&ev).and_then(|id| model.tasks.get_mut(&id)) {
        t.status = TaskStatus::Running;
        t.started = now;
    }
    if let Event::RelationCreated { rel } = ev {
        write_network_keys(model, unit, &[rel]);
    }
    Some(ev)
}

/// The task an event runs, for actions and exec.
pub fn task_of(ev: &Event) -> Option<u64> {
    match ev {
        Event::Action { id } | Event::Exec { id } => Some(*id),
        _ => None,
    }
}

/// How a hook, action or exec process ended, as the runner saw it.
pub struct Ended<'a> {
    /// What ran.
    pub event: &'a Event,
    /// Its hook (or action) name.
    pub hook: &'a str,
    /// Whether the charm had a handler for it.
    pub implemented: bool,
    /// Exit code (after the secret commit: 1 when the controller refused it).
    pub code: i32,
    /// Its output.
    pub stdout: String,
    /// Its error output.
    pub stderr: String,
    /// Its buffered writes.
    pub ctx: Option<&'a HookCtx>,
}

/// The machine went down while `unit` ran something: the hook runs again when it is back.
pub fn hook_lost(model: &mut Model, unit: &str, ev: &Event) {
    if let Some(u) = model.units.get_mut(unit) {
        if u.agent == Agent::Executing {
            u.agent = Agent::Lost;
        }
    }
    if let Some(t) = task_of(ev).and_then(|id| model.tasks.get_mut(&id)) {
        t.status = TaskStatus::Pending;
    }
}

/// Records how the head event of `unit` ended at `now`: a task gets its result (and never puts
/// the unit in error); a hook that exited 0 commits its writes and moves the hook order on; a
/// failed one stays at the head, the unit in error until its retry is due. Answers false when
/// the unit is gone.
pub fn hook_ended(model: &mut Model, unit: &str, e: Ended, now: f64) -> bool {
    let Some(u) = model.units.get_mut(unit) else {
        return false;
    };
    if u.queue.front() == Some(e.event) {
        u.queue.pop_front();
    }
    if let Some(id) = task_of(e.event) {
        u.agent = Agent::Idle;
        u.agent_since = now;
        task_ended(model, unit, id, &e, now);
        // An exec's non-zero exit is its result, not a failure of the context: Juju flushes
        // its changes all the same (worker/uniter/runner/runner.go `RunCommands`).
        if e.code == 0 || matches!(e.event, Event::Exec { .. }) {
            if let Some(ctx) = e.ctx {
                ctx.commit(model);
            }
        }
    } else if e.code == 0 {
        u.agent = Agent::Idle;
        u.agent_message.clear();
        u.agent_since = now;
        u.retries = 0;
        if *e.event == Event::ConfigChanged {
            // Juju's own network update is queued before the hook's settings, which win.
            let rels = entered_relations(model, unit);
            write_network_keys(model, unit, &rels);
        }
        if let Some(ctx) = e.ctx {
            ctx.commit(model);
        }
        hook_done(model, unit, e.event);
        if *e.event == Event::Remove {
            crate::secrets::forget_unit(&mut model.secrets, unit);
        }
    } else {
        let auto = model
            .config
            .get("automatically-retry-hooks")
            .map(|v| v != "false")
            .unwrap_or(true);
        let u = model.units.get_mut(unit).expect("unit");
        u.queue.push_front(e.event.clone());
        u.agent = Agent::Error;
        u.agent_message = format!("hook failed: {:?}", e.hook);
        u.agent_since = now;
        u.retries += 1;
        u.retry_at = if auto {
            now + backoff(u.retries)
        } else {
            NEVER
        };
    }
    true
}

fn task_ended(model: &mut Model, unit: &str, id: u64, e: &Ended, now: f64) {
    let Some(t) = model.tasks.get_mut(&id) else {
        return;
    };
    t.stdout = e.stdout.clone();
    t.stderr = e.stderr.clone();
    t.code = e.code;
    t.completed = now;
    if !e.implemented {
        t.status = TaskStatus::Failed;
        t.message = format!("action not implemented on unit {unit:?}");
    } else if e.code != 0 && t.status != TaskStatus::Failed {
        t.status = TaskStatus::Failed;
        t.message = format!("exit status {}", e.code);
    } else if t.status != TaskStatus::Failed {
        t.status = TaskStatus::Completed;
    }
}

/// `unit`'s machine `id` has been booted (not yet running).
pub fn machine_booted(model: &mut Model, id: u32, handle: Machine) {
    if let Some(m) = model.machines.get_mut(&id) {
        m.handle = Some(handle);
    }
}

/// `unit`'s new machine `id` runs, with the tools and charm in, at `now`: the unit may run
/// its install hook.
pub fn machine_started(model: &mut Model, id: u32, unit: &str, mac: String, now: f64) {
    if let Some(m) = model.machines.get_mut(&id) {
        m.mac = mac;
        m.state = MachineState::Started;
    }
    crate::controller::storage::machine_started(model, unit);
    unit_ready(model, unit, now);
}

/// `unit`'s tools and charm are on its running machine at `now`: it may run its install hook.
pub fn unit_ready(model: &mut Model, unit: &str, now: f64) {
    if let Some(u) = model.units.get_mut(unit) {
        u.agent = Agent::Idle;
        u.agent_since = now;
        u.workload = StatusInfo {
            status: "maintenance".into(),
            message: INSTALLING.into(),
        };
        u.workload_since = now;
    }
}

/// `unit`'s machine `id` runs again after a reboot, at `now`.
pub fn machine_rebooted(model: &mut Model, id: u32, unit: &str, handle: Machine, now: f64) {
    if let Some(m) = model.machines.get_mut(&id) {
        m.handle = Some(handle);
        m.state = MachineState::Started;
    }
    if let Some(u) = model.units.get_mut(unit) {
        u.agent = Agent::Idle;
        u.agent_since = now;
    }
}

/// The machine of `unit` could not be provisioned: the message says why.
pub fn provision_failed(model: &mut Model, unit: &str, message: String) {
    if let Some(u) = model.units.get_mut(unit) {
        u.agent_message = message;
    }
}

/// Machine `id` was killed at `now`: every unit on it, subordinates too, is lost.
pub fn machine_down(model: &mut Model, id: u32, now: f64) {
    if let Some(m) = model.machines.get_mut(&id) {
        m.state = MachineState::Down;
    }
    for u in model.units.values_mut().filter(|u| u.machine == id) {
        u.agent = Agent::Lost;
        u.agent_since = now;
    }
}

/// The machine of `unit` (its principal's, for a subordinate) is to be rebooted: pending (so
/// no hook starts on it), its units to run `start` again. Answers the principal unit and the
/// machine to power off.
pub fn machine_restarting(model: &mut Model, unit: &str) -> Option<(String, Option<Machine>)> {
    let principal = model.units.get(unit)?.principal.clone();
    let unit = principal.unwrap_or_else(|| unit.to_string());
    for s in super::subordinate::subordinates_of(model, &unit) {
        model.units.get_mut(&s).expect("unit").agent = Agent::Lost;
        push_to(model, &s, Event::Start);
    }
    let mid = model.units.get(&unit)?.machine;
    let m = model.machines.get_mut(&mid)?;
    let handle = m.handle.take();
    m.state = MachineState::Pending;
    model.units.get_mut(&unit).expect("unit").agent = Agent::Allocating;
    // Juju runs start again after a reboot.
    push_to(model, &unit, Event::Start);
    Some((unit, handle))
}

/// After a controller restart, `unit` on machine `id` in state `state`, whose nspawn process
/// is `alive` or not: an interrupted hook runs again; a machine that died meanwhile is down.
pub fn resumed(model: &mut Model, unit: &str, id: u32, state: MachineState, alive: bool) {
    let Some(u) = model.units.get_mut(unit) else {
        return;
    };
    match (state, alive) {
        (MachineState::Started, true) => {
            if u.agent == Agent::Executing {
                u.agent = Agent::Idle;
            }
        }
        (MachineState::Pending, _) => {}
        _ => {
            u.agent = Agent::Lost;
            if let Some(m) = model.machines.get_mut(&id) {
                m.state = MachineState::Down;
            }
        }
    }
}

/// Machine `id` runs again at `now`: its lost subordinate units resume; answers them.
pub fn subordinates_back(model: &mut Model, id: u32, now: f64) -> Vec<String> {
    let lost: Vec<String> = model
        .units
        .values()
        .filter(|u| u.machine == id && u.principal.is_some() && u.agent == Agent::Lost)
        .map(|u| u.name.clone())
        .collect();
    for unit in &lost {
        if let Some(u) = model.units.get_mut(unit) {
            u.agent = Agent::Idle;
            u.agent_since = now;
        }
    }
    lost
}

/// Machine `id` leaves the model (its last unit is gone); answers its record, to destroy it.
pub fn machine_removed(model: &mut Model, id: u32) -> Option<MachineRec> {
    model.machines.remove(&id)
}

/// What one [`tick`] changed.
#[derive(Debug, Default, PartialEq)]
pub struct Ticked {
    /// Whether the model changed (and is to be saved).
    pub changed: bool,
    /// `(application, unit)` for each leadership that moved away from a lost unit.
    pub moved: Vec<(String, String)>,
}

/// One tick of the controller's clock at `now`: due secret hooks queued; `update-status` queued
/// for each started, live, idle or executing unit once the model's
/// `update-status-hook-interval` has passed since its last one (`last`, by unit, starts at its
/// first tick); the leadership of a leader lost for `lease` seconds moved to another unit.
pub fn tick(model: &mut Model, last: &mut HashMap<String, f64>, now: f64, lease: f64) -> Ticked {
    let interval = model
        .config
        .get("update-status-hook-interval")
        .and_then(|v| super::parse_duration(v))
        .unwrap_or(300.0)
        .max(1.0);
    let mut ticked = Ticked {
        changed: crate::controller::secret_hooks::queue_due(model, now),
        moved: vec![],
    };
    let names: Vec<String> = model.units.keys().cloned().collect();
    for name in names {
        let u = &model.units[&name];
        let started = u.installed && !u.queue.contains(&Event::Start);
        let due = now - *last.entry(name.clone()).or_insert(now) >= interval;
        if due
            && started
            && u.life == Life::Alive
            && matches!(u.agent, Agent::Idle | Agent::Executing)
        {
            last.insert(name.clone(), now);
            let u = model.units.get_mut(&name).expect("unit");
            let running = super::is_running(u);
            super::push(u, Event::UpdateStatus, running);
            ticked.changed = true;
        }
        let u = &model.units[&name];
        let app = u.app.clone();
        let is_leader =
            model.apps.get(&app).and_then(|a| a.leader.as_deref()) == Some(name.as_str());
        if is_leader && u.agent == Agent::Lost && now - u.agent_since >= lease {
            super::elect(model, &app, &name);
            ticked.moved.push((app, name));
            ticked.changed = true;
        }
    }
    ticked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::lifecycle::{add_unit, records};
    use crate::controller::model::{App, CharmMeta};
    use serde_json::Value;
    use std::path::Path;

    /// A model with one unit of `etcd`, its machine started, no hook queued.
    fn one_unit() -> (Model, String) {
        let mut m = Model::new(Path::new("agent-test"));
        let app = App::new("etcd", "/x".into(), CharmMeta::default());
        m.apps.insert("etcd".into(), app);
        let u = add_unit(&mut m, "etcd");
        m.units.get_mut(&u).unwrap().queue.clear();
        m.machines.get_mut(&0).unwrap().state = MachineState::Started;
        unit_ready(&mut m, &u, 1.0);
        (m, u)
    }

    fn ended<'a>(ev: &'a Event, code: i32) -> Ended<'a> {
        Ended {
            event: ev,
            hook: "config-changed",
            implemented: true,
            code,
            stdout: String::new(),
            stderr: String::new(),
            ctx: None,
        }
    }

    #[test]
    fn a_failed_hook_stays_at_the_head_until_it_succeeds() {
        let (mut m, u) = one_unit();
        m.units
            .get_mut(&u)
            .unwrap()
            .queue
            .push_back(Event::ConfigChanged);
        let ev = hook_starting(&mut m, &u, 0, 10.0).unwrap();
        assert_eq!(m.units[&u].agent, Agent::Executing);
        assert!(hook_ended(&mut m, &u, ended(&ev, 1), 11.0));
        let unit = &m.units[&u];
        assert_eq!(unit.agent, Agent::Error);
        assert_eq!(unit.agent_message, "hook failed: \"config-changed\"");
        assert_eq!(unit.queue.front(), Some(&Event::ConfigChanged));
        assert_eq!((unit.retries, unit.retry_at), (1, 16.0));
        let ev = hook_starting(&mut m, &u, 0, 20.0).unwrap();
        hook_ended(&mut m, &u, ended(&ev, 1), 21.0);
        assert_eq!(m.units[&u].retry_at, 21.0 + backoff(2));
        let ev = hook_starting(&mut m, &u, 0, 40.0).unwrap();
        hook_ended(&mut m, &u, ended(&ev, 0), 41.0);
        let unit = &m.units[&u];
        assert_eq!((unit.agent, unit.retries), (Agent::Idle, 0));
        assert!(unit.agent_message.is_empty() && unit.queue.is_empty());
    }

    #[test]
    fn no_retry_when_the_model_says_so() {
        let (mut m, u) = one_unit();
        m.config
            .insert("automatically-retry-hooks".into(), "false".into());
        m.units.get_mut(&u).unwrap().queue.push_back(Event::Start);
        let ev = hook_starting(&mut m, &u, 0, 10.0).unwrap();
        hook_ended(&mut m, &u, ended(&ev, 1), 11.0);
        assert_eq!(m.units[&u].retry_at, NEVER);
        // The model is saved as JSON, which has no infinity: it must read back.
        let saved = serde_json::to_string(&m).unwrap();
        let back: Model = serde_json::from_str(&saved).unwrap();
        assert_eq!(back.units[&u].retry_at, NEVER);
        records::resolved(&mut m, &u, true).unwrap();
        let unit = &m.units[&u];
        assert_eq!((unit.agent, unit.retry_at), (Agent::Idle, 0.0));
        assert!(unit.queue.is_empty(), "--no-retry skips the failed hook");
        assert!(records::resolved(&mut m, &u, false).is_err());
    }

    #[test]
    fn tasks_end_completed_or_failed_and_never_put_the_unit_in_error() {
        let (mut m, u) = one_unit();
        let a = records::add_task(&mut m, &u, "health", Value::Null, false, 5.0);
        let x = records::add_task(&mut m, &u, "juju-exec", Value::Null, true, 5.0);
        assert_eq!(
            Vec::from(m.units[&u].queue.clone()),
            [Event::Action { id: a }, Event::Exec { id: x }]
        );
        let ev = hook_starting(&mut m, &u, 0, 6.0).unwrap();
        assert_eq!(m.tasks[&a].status, TaskStatus::Running);
        records::fail_action(m.tasks.get_mut(&a).unwrap(), "no quorum");
        hook_ended(&mut m, &u, ended(&ev, 0), 7.0);
        assert_eq!(m.tasks[&a].status, TaskStatus::Failed);
        assert_eq!(m.tasks[&a].message, "no quorum");
        let ev = hook_starting(&mut m, &u, 0, 8.0).unwrap();
        hook_ended(&mut m, &u, ended(&ev, 3), 9.0);
        let t = &m.tasks[&x];
        assert_eq!(
            (t.status, t.code, t.message.as_str()),
            (TaskStatus::Failed, 3, "exit status 3")
        );
        assert_eq!(m.units[&u].agent, Agent::Idle);
        let b = records::add_task(&mut m, &u, "missing", Value::Null, false, 10.0);
        let ev = hook_starting(&mut m, &u, 0, 10.0).unwrap();
        let mut e = ended(&ev, 0);
        e.implemented = false;
        hook_ended(&mut m, &u, e, 11.0);
        assert_eq!(
            m.tasks[&b].message,
            "action not implemented on unit \"etcd/0\""
        );
    }

    #[test]
    fn a_machine_lost_mid_hook_runs_it_again_when_back() {
        let (mut m, u) = one_unit();
        let a = records::add_task(&mut m, &u, "health", Value::Null, false, 5.0);
        let ev = hook_starting(&mut m, &u, 0, 6.0).unwrap();
        machine_down(&mut m, 0, 7.0);
        assert_eq!(m.machines[&0].state, MachineState::Down);
        assert_eq!(m.units[&u].agent, Agent::Lost);
        hook_lost(&mut m, &u, &ev);
        assert_eq!(m.tasks[&a].status, TaskStatus::Pending);
        assert_eq!(m.units[&u].queue.front(), Some(&Event::Action { id: a }));
        let (principal, _) = machine_restarting(&mut m, &u).unwrap();
        assert_eq!(principal, u);
        assert_eq!(m.machines[&0].state, MachineState::Pending);
        assert_eq!(m.units[&u].agent, Agent::Allocating);
        assert_eq!(m.units[&u].queue.back(), Some(&Event::Start));
    }

    #[test]
    fn a_controller_restart_finds_each_machine_as_it_is() {
        let (mut m, u) = one_unit();
        m.units.get_mut(&u).unwrap().agent = Agent::Executing;
        resumed(&mut m, &u, 0, MachineState::Started, true);
        assert_eq!(m.units[&u].agent, Agent::Idle);
        resumed(&mut m, &u, 0, MachineState::Started, false);
        assert_eq!(m.units[&u].agent, Agent::Lost);
        assert_eq!(m.machines[&0].state, MachineState::Down);
    }

    #[test]
    fn the_clock_queues_update_status_and_moves_a_lost_leaders_lease() {
        let (mut m, u) = one_unit();
        m.units.get_mut(&u).unwrap().installed = true;
        m.apps.get_mut("etcd").unwrap().leader = Some(u.clone());
        let second = add_unit(&mut m, "etcd");
        m.units.get_mut(&second).unwrap().queue.clear();
        unit_ready(&mut m, &second, 1.0);
        m.config
            .insert("update-status-hook-interval".into(), "10s".into());
        let mut last = HashMap::new();
        // The first tick only starts each unit's interval.
        assert_eq!(tick(&mut m, &mut last, 100.0, 60.0), Ticked::default());
        assert!(!tick(&mut m, &mut last, 109.0, 60.0).changed);
        assert!(tick(&mut m, &mut last, 110.0, 60.0).changed);
        assert_eq!(m.units[&u].queue.back(), Some(&Event::UpdateStatus));
        // A unit not yet installed gets none.
        assert!(!m.units[&second].queue.contains(&Event::UpdateStatus));

        machine_down(&mut m, 0, 120.0);
        let t = tick(&mut m, &mut last, 179.0, 60.0);
        assert!(t.moved.is_empty(), "{t:?}");
        let t = tick(&mut m, &mut last, 180.0, 60.0);
        assert_eq!(t.moved, vec![("etcd".to_string(), u.clone())]);
        assert_eq!(m.apps["etcd"].leader, Some(second.clone()));
        assert_eq!(m.units[&second].queue.back(), Some(&Event::LeaderElected));
    }
}

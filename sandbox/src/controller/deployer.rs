//! Subordinate units on their principal's machine, as Juju's deployer worker puts them there:
//! their hook tools and charm are installed beside the principal's once the model has the unit
//! ([`deploy_new`]), and their agent dirs are removed again when they go ([`retire_subordinate`]).
//! The hook ordering itself is in [`super::lifecycle::subordinate`]. It sits below `runner`,
//! which starts the units' workers.

use super::lifecycle::agent;
use super::lifecycle::subordinate::{principal_done, subordinates_of, waits_for_subordinates};
use super::model::{unit_tag, Agent};
use super::{Shared, State};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Subordinate units whose files are being installed now.
static DEPLOYING: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn deploying() -> std::sync::MutexGuard<'static, BTreeSet<String>> {
    DEPLOYING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts installing every new subordinate unit whose principal's machine is running; answers
/// those units, whose workers (waiting while a unit is allocating) the caller starts.
pub fn deploy_new(sh: &Arc<Shared>, st: &mut State) -> Vec<String> {
    let new: Vec<(String, crate::machine::Machine, std::path::PathBuf)> = st
        .model
        .units
        .values()
        .filter(|u| u.principal.is_some() && u.agent == Agent::Allocating)
        .filter_map(|u| {
            let m = st.model.machines.get(&u.machine)?;
            let handle = m
                .handle
                .clone()
                .filter(|_| m.state == super::model::MachineState::Started)?;
            let charm = st.model.apps.get(&u.app)?.charm_dir.clone();
            Some((u.name.clone(), handle, charm))
        })
        .collect();
    let mut started = vec![];
    for (unit, handle, charm) in new {
        if !deploying().insert(unit.clone()) {
            continue;
        }
        started.push(unit.clone());
        let sh = sh.clone();
        std::thread::spawn(move || {
            let r = super::install::install_unit_files(&handle, &unit, &charm);
            let mut st = sh.lock();
            deploying().remove(&unit);
            let Some(machine) = st.model.units.get(&unit).map(|u| u.machine) else {
                return;
            };
            match r {
                Ok(()) => {
                    agent::unit_ready(&mut st.model, &unit, super::model::now());
                    sh.log_line(
                        "controller",
                        "INFO",
                        &format!("subordinate {unit} deployed on machine {machine}"),
                    );
                }
                Err(e) => {
                    let message = format!("cannot deploy the subordinate unit: {e:#}");
                    sh.log_line("controller", "ERROR", &message);
                    agent::provision_failed(&mut st.model, &unit, message);
                }
            }
            sh.commit(&st);
        });
    }
    started
}

/// Removes a unit after its `remove` hook (or by force) and destroys its machine.
pub fn retire_unit(sh: &Arc<Shared>, st: &mut State, unit: &str) {
    let Some(machine) = st.model.units.get(unit).map(|u| u.machine) else {
        return;
    };
    super::storage::volumes::unit_gone(sh, st, unit);
    if retire_subordinate(sh, st, unit) {
        return;
    }
    super::lifecycle::forget_unit(&mut st.model, unit);
    if let Some(rec) = agent::machine_removed(&mut st.model, machine) {
        let lab = super::lab(st);
        let dir = super::machine_dir(sh, machine);
        let sh = sh.clone();
        std::thread::spawn(move || {
            super::stop_tool_socket(&sh, machine);
            let pid = rec.handle.as_ref().map(|h| h.nspawn_pid);
            if let Err(e) = crate::machine::destroy_machine(&lab, machine, &dir, pid) {
                sh.log_line(
                    "controller",
                    "ERROR",
                    &format!("cannot destroy machine {machine}: {e:#}"),
                );
            }
        });
    }
}

/// The part of a unit's retirement that concerns subordinates; answers whether it was all of
/// it. A principal with subordinates left waits for them; a subordinate leaves the model and its
/// agent dir, and its principal follows if it was waiting for it.
pub fn retire_subordinate(sh: &Arc<Shared>, st: &mut State, unit: &str) -> bool {
    if waits_for_subordinates(&st.model, unit) {
        sh.log_line(
            &unit_tag(unit),
            "INFO",
            "waiting for its subordinate units to be removed",
        );
        return true;
    }
    let Some(u) = st.model.units.get(unit) else {
        return true;
    };
    let Some(principal) = u.principal.clone() else {
        return false;
    };
    let handle = st
        .model
        .machines
        .get(&u.machine)
        .and_then(|m| m.handle.clone());
    super::lifecycle::forget_unit(&mut st.model, unit);
    if let Some(h) = handle {
        let tag = unit_tag(unit);
        std::thread::spawn(move || {
            let _ = h.run(
                &[
                    "rm",
                    "-rf",
                    &format!("/var/lib/juju/agents/{tag}"),
                    &format!("/var/lib/juju/tools/{tag}"),
                ],
                Duration::from_secs(30),
            );
        });
    }
    if principal_done(&st.model, &principal) {
        retire_unit(sh, st, &principal);
    }
    true
}

/// Before a principal is removed by force: its subordinates leave the model at once too.
pub fn forget_subordinates(st: &mut State, principal: &str) {
    for s in subordinates_of(&st.model, principal) {
        super::lifecycle::forget_unit(&mut st.model, &s);
    }
}

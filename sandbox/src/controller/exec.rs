//! `juju-exec` from a machine (cmd/jujud/run/run.go, worker/uniter/runcommands): the commands run
//! as an exec in the unit's own queue, so after the hook it is running and never beside another
//! hook on the machine (Juju's machine lock, [`machine_busy`]); the caller waits for the result.
//!
//! Served on the machine's tool socket only, and only for a unit on that machine: a unit anywhere
//! else gets the same answer as one that does not exist.

use super::model::{unit_tag, Agent};
use super::{Shared, State};
use crate::tools::juju_exec::ExecRequest;
use crate::tools::ToolResponse;
use std::sync::Arc;
use std::time::Duration;

/// Whether another unit on `unit`'s machine is running a hook, action or exec now (Juju holds
/// the machine lock for each: one at a time per machine).
pub fn machine_busy(st: &State, unit: &str) -> bool {
    let Some(machine) = st.model.units.get(unit).map(|u| u.machine) else {
        return false;
    };
    st.model
        .units
        .values()
        .any(|u| u.name != unit && u.machine == machine && u.agent == Agent::Executing)
}

/// What `juju-exec` says for a unit that is not on the calling machine.
fn not_here(unit: &str) -> ToolResponse {
    ToolResponse::error(
        1,
        &format!("unit {} not found on this machine", go_quote(unit)),
    )
}

fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Answers `juju-exec` from machine `machine`: queues the commands for the unit and waits until
/// they have run (no timeout, as Juju's); their output and exit code are the answer.
pub fn serve(sh: &Arc<Shared>, machine: u32, req: ExecRequest) -> ToolResponse {
    let mut st = sh.lock();
    if st.model.units.get(&req.unit).map(|u| u.machine) != Some(machine) {
        return not_here(&req.unit);
    }
    let id = super::requests::queue_exec(&mut st, &req.unit, &req.commands);
    sh.log_line(
        &unit_tag(&req.unit),
        "INFO",
        &format!("juju-exec on machine {machine} queued as task {id}"),
    );
    sh.commit(&st);
    loop {
        if st.stopping || !st.model.units.contains_key(&req.unit) {
            return not_here(&req.unit);
        }
        let Some(t) = st.model.tasks.get(&id) else {
            return not_here(&req.unit);
        };
        if matches!(t.status.as_str(), "completed" | "failed") && t.completed > 0.0 {
            return ToolResponse {
                code: t.code,
                stdout: t.stdout.clone(),
                stderr: t.stderr.clone(),
                output_file: None,
            };
        }
        st = sh
            .changed
            .wait_timeout(st, Duration::from_millis(500))
            .map(|r| r.0)
            .unwrap_or_else(|e| e.into_inner().0);
    }
}

//! `juju-exec` from a machine (cmd/jujud/run/run.go, worker/uniter/runcommands): the commands run
//! as an exec in the unit's own queue, so after the hook it is running and never beside another
//! hook on the machine (Juju's machine lock, [`machine_busy`]); the caller waits for the result.
//!
//! Served on the machine's tool socket only, and only for a unit on that machine: a unit anywhere
//! else gets the same answer as one that does not exist.

use super::model::{app_of, unit_tag, Agent, Event, Model};
use super::{Shared, State};
use crate::tools::juju_exec::ExecRequest;
use crate::tools::ToolResponse;
use serde::{Deserialize, Serialize};
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

/// The relation context of a `juju-exec -r`, kept in its task's params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRelation {
    /// Relation id.
    pub rel: i64,
    /// `JUJU_REMOTE_UNIT` (may be empty with `--force-remote-unit`).
    pub remote_unit: String,
    /// `JUJU_REMOTE_APP`.
    pub remote_app: String,
}

/// The relation context of an exec run by `juju-exec -r`.
pub fn exec_relation(model: &Model, ev: &Event) -> Option<ExecRelation> {
    let Event::Exec { id } = ev else { return None };
    serde_json::from_value(model.tasks.get(id)?.params.get("relation")?.clone()).ok()
}

/// The relation environment of such an exec, as a relation hook's.
pub fn relation_env(model: &Model, unit: &str, ev: &Event) -> Vec<(String, String)> {
    let Some(r) = exec_relation(model, ev) else {
        return vec![];
    };
    let endpoint = model
        .relations
        .get(&r.rel)
        .and_then(|rel| rel.end_of(app_of(unit)))
        .map(|e| e.endpoint.clone())
        .unwrap_or_default();
    vec![
        ("JUJU_RELATION".into(), endpoint.clone()),
        ("JUJU_RELATION_ID".into(), format!("{endpoint}:{}", r.rel)),
        ("JUJU_REMOTE_UNIT".into(), r.remote_unit),
        ("JUJU_REMOTE_APP".into(), r.remote_app),
    ]
}

/// worker/uniter/runner/context/contextfactory.go `inferRemoteUnit`: `-r` must name a relation
/// the unit is in; the remote unit, unless forced, must be a member, and is inferred when there
/// is exactly one.
pub fn infer_remote_unit(model: &Model, req: &ExecRequest) -> Result<Option<ExecRelation>, String> {
    let remote = &req.remote_unit;
    if !remote.is_empty() && !crate::tools::juju_exec::is_valid_unit(remote) {
        return Err(format!("invalid remote unit: {remote}"));
    }
    let Some(id) = req.relation else {
        if !remote.is_empty() {
            return Err(format!("remote unit provided without a relation: {remote}"));
        }
        return Ok(None);
    };
    let rel = model
        .relations
        .get(&id)
        .filter(|r| r.entered.contains(&req.unit))
        .ok_or_else(|| format!("unknown relation id: {id}"))?;
    let possibles =
        super::lifecycle::relation_members(model, id, &req.unit, &Event::Exec { id: 0 });
    let listed = || format!("[{}]", possibles.join(" "));
    let remote_unit = if req.force_remote_unit || possibles.contains(remote) {
        remote.clone()
    } else if !remote.is_empty() {
        return Err(format!(
            "unknown remote unit {remote}; possibilities are {}",
            listed()
        ));
    } else {
        match possibles.as_slice() {
            [] => return Err(format!("cannot infer remote unit in empty relation {id}")),
            [one] => one.clone(),
            _ => {
                return Err(format!(
                    "ambiguous remote unit; possibilities are {}",
                    listed()
                ))
            }
        }
    };
    let remote_app = if !req.remote_app.is_empty() {
        req.remote_app.clone()
    } else if !remote_unit.is_empty() {
        app_of(&remote_unit).to_string()
    } else {
        rel.remote_app(app_of(&req.unit)).unwrap_or_default()
    };
    Ok(Some(ExecRelation {
        rel: id,
        remote_unit,
        remote_app,
    }))
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
    let relation = match infer_remote_unit(&st.model, &req) {
        Ok(r) => r,
        Err(msg) => return ToolResponse::error(1, &msg),
    };
    let mut params = serde_json::json!({ "command": req.commands });
    if let Some(r) = relation {
        params["relation"] = serde_json::json!(r);
    }
    let id = super::lifecycle::records::add_task(
        &mut st.model,
        &req.unit,
        "juju-exec",
        params,
        true,
        super::model::now(),
    );
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
        if t.status.is_done() && t.completed > 0.0 {
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

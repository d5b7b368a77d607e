//! One running hook context and the controller's answers to the hook tools it calls.

use super::lifecycle;
use super::lifecycle::context::merge;
use super::lifecycle::records;
use super::model::{app_of, now, unit_tag, Event, Model};
use super::{Shared, State};
use crate::tools::env::{
    Databag, HookEnv, NetworkInfo, PortRange, Settings, StatusInfo, ToolError,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

pub use super::lifecycle::HookCtx;

/// A fresh context for `unit` running `hook`; its id ends in 128 random bits, so it cannot be
/// guessed.
pub fn new_context(unit: &str, hook: &str, event: Event, task: Option<u64>) -> HookCtx {
    let id = format!("{unit}-{hook}-{}", super::model::random_hex(16));
    HookCtx::new(id, unit, event, task)
}

/// What a tool call gets for a context that is not live on the calling machine.
pub const UNKNOWN_CONTEXT: &str =
    "refused: no hook, action or exec with this JUJU_CONTEXT_ID is running on this machine; \
     hook tools work only from inside one, with its own environment";

/// Answers one hook tool call that came in on machine `machine`'s tool socket: only a live
/// context of a unit on that machine is served, as that unit.
pub fn serve_tool(
    sh: &Arc<Shared>,
    machine: u32,
    req: crate::tools::ToolRequest,
) -> crate::tools::ToolResponse {
    let mut st = sh.lock();
    let State {
        model, contexts, ..
    } = &mut *st;
    let Some(ctx) = contexts.get_mut(&req.context_id).filter(|c| {
        model
            .units
            .get(&c.unit)
            .is_some_and(|u| u.machine == machine)
    }) else {
        return crate::tools::ToolResponse::error(1, UNKNOWN_CONTEXT);
    };
    let unit = ctx.unit.clone();
    let mut env = Env {
        sh,
        model,
        ctx,
        copies: vec![],
    };
    let out = crate::tools::run_tool(&req.tool, &req.args, &req.files(), &mut env);
    let copies = std::mem::take(&mut env.copies);
    // A secret tool's arguments may hold values: only its name is logged.
    let log = if req.tool.starts_with("secret-") {
        format!("{} (arguments not logged)", req.tool)
    } else {
        format!("{} {}", req.tool, req.args.join(" "))
    };
    let changed = !matches!(
        req.tool.as_str(),
        "juju-log"
            | "is-leader"
            | "relation-get"
            | "relation-list"
            | "relation-ids"
            | "config-get"
            | "leader-get"
            | "action-get"
            | "state-get"
            | "network-get"
            | "unit-get"
            | "opened-ports"
            | "status-get"
            | "secret-ids"
            | "secret-info-get"
            | "goal-state"
            | "storage-get"
            | "storage-list"
    );
    if changed {
        sh.commit(&st);
    }
    // The files a `resource-get` names are copied in once the lock is released.
    drop(st);
    let out = match copies.iter().try_for_each(ResourceCopy::run) {
        Ok(()) => crate::tools::ToolResponse::from(out),
        Err(msg) => crate::tools::ToolResponse::error(1, &msg),
    };
    if out.code != 0 {
        sh.log_line(
            &unit_tag(&unit),
            "DEBUG",
            &format!("tool {log} exited {}", out.code),
        );
    }
    out
}

/// A resource file to copy into a machine, after the lock is released.
struct ResourceCopy {
    src: std::path::PathBuf,
    dest: String,
    machine: crate::machine::Machine,
}

impl ResourceCopy {
    fn run(&self) -> Result<(), String> {
        let data = std::fs::read(&self.src)
            .map_err(|e| format!("cannot read resource {}: {e}", self.src.display()))?;
        self.machine
            .write_file(&self.dest, &data, 0o644)
            .map_err(|e| format!("cannot copy resource into the machine: {e:#}"))
    }
}

/// The `HookEnv` over the model for one context.
pub struct Env<'a> {
    sh: &'a Arc<Shared>,
    model: &'a mut Model,
    ctx: &'a mut HookCtx,
    /// Files `resource-get` promised, copied in by [`serve_tool`] once the lock is released.
    copies: Vec<ResourceCopy>,
}

fn err(msg: impl Into<String>) -> ToolError {
    ToolError::new(msg)
}

impl Env<'_> {
    fn app(&self) -> &super::model::App {
        &self.model.apps[app_of(&self.ctx.unit)]
    }
    fn leader(&self) -> bool {
        self.app().leader.as_deref() == Some(self.ctx.unit.as_str())
    }
    /// A relation this unit's application takes part in (others are not found).
    fn rel(&self, id: i64) -> Result<&super::model::Relation, ToolError> {
        self.model
            .relations
            .get(&id)
            .filter(|r| r.involves(app_of(&self.ctx.unit)))
            .ok_or_else(|| err(format!("relation not found: {id}")))
    }
    fn task_mut(&mut self) -> Result<&mut super::model::Task, ToolError> {
        let id = self.ctx.task.ok_or_else(|| err("not running an action"))?;
        self.model
            .tasks
            .get_mut(&id)
            .ok_or_else(|| err("not running an action"))
    }
    fn machine(&self) -> &super::model::MachineRec {
        let m = self.model.units[&self.ctx.unit].machine;
        &self.model.machines[&m]
    }
}

impl HookEnv for Env<'_> {
    fn unit_name(&self) -> String {
        self.ctx.unit.clone()
    }
    fn app_name(&self) -> String {
        app_of(&self.ctx.unit).to_string()
    }
    fn current_relation(&self) -> Option<i64> {
        lifecycle::event_rel(&self.ctx.event)
            .or_else(|| super::exec::exec_relation(self.model, &self.ctx.event).map(|r| r.rel))
    }
    fn remote_unit(&self) -> Option<String> {
        match &self.ctx.event {
            Event::RelationJoined { remote, .. } | Event::RelationDeparted { remote, .. } => {
                Some(remote.clone())
            }
            Event::RelationChanged { remote, .. } => remote.clone(),
            ev => super::exec::exec_relation(self.model, ev)
                .map(|r| r.remote_unit)
                .filter(|u| !u.is_empty()),
        }
    }
    fn remote_app(&self) -> Option<String> {
        if let Some(r) = super::exec::exec_relation(self.model, &self.ctx.event) {
            return Some(r.remote_app);
        }
        let rel = self.current_relation()?;
        self.model
            .relations
            .get(&rel)?
            .remote_app(app_of(&self.ctx.unit))
    }
    fn is_leader(&self) -> Result<bool, ToolError> {
        Ok(self.leader())
    }
    fn leader_get(&self) -> Result<Settings, ToolError> {
        Ok(self.app().leader_data.clone())
    }
    fn leader_set(&mut self, settings: Settings) -> Result<(), ToolError> {
        if !self.leader() {
            return Err(err(
                "cannot write leadership settings: cannot write settings: not the leader",
            ));
        }
        records::set_leader_data(self.model, &self.app_name(), &settings);
        Ok(())
    }
    fn relation_endpoint(&self, id: i64) -> Option<String> {
        let r = self.model.relations.get(&id)?;
        if r.life != super::model::Life::Alive && !r.entered.contains(&self.ctx.unit) {
            return None;
        }
        r.end_of(app_of(&self.ctx.unit)).map(|e| e.endpoint.clone())
    }
    fn relation_ids(&self, endpoint: &str) -> Result<Vec<String>, ToolError> {
        Ok(lifecycle::relation_ids(
            self.model,
            &self.ctx.unit,
            endpoint,
        ))
    }
    fn relation_list(&self, id: i64) -> Result<Vec<String>, ToolError> {
        self.rel(id)?;
        Ok(lifecycle::relation_members(
            self.model,
            id,
            &self.ctx.unit,
            &self.ctx.event,
        ))
    }
    fn relation_remote_app(&self, id: i64) -> Result<String, ToolError> {
        self.rel(id)?
            .remote_app(app_of(&self.ctx.unit))
            .ok_or_else(|| err("relation has no remote application"))
    }
    fn relation_get(&self, id: i64, bag: &Databag) -> Result<Settings, ToolError> {
        let r = self.rel(id)?;
        let me = &self.ctx.unit;
        let pending = self.ctx.relation_sets.get(&id);
        Ok(match bag {
            Databag::Unit(u) => {
                let mut s = r.unit_data.get(u).cloned().unwrap_or_default();
                if u == me {
                    if let Some((unit_set, _)) = pending {
                        merge(&mut s, unit_set);
                    }
                } else if !r.involves(app_of(u)) {
                    return Err(err(format!("cannot read settings for unit \"{u}\" in relation \"{}\": unit \"{u}\": settings not found", r.key())));
                }
                s
            }
            Databag::App(a) => {
                let mut s = r.app_data.get(a).cloned().unwrap_or_default();
                if a == app_of(me) {
                    if !self.leader() && !r.is_peer() {
                        return Err(err("permission denied"));
                    }
                    if let Some((_, app_set)) = pending {
                        merge(&mut s, app_set);
                    }
                }
                s
            }
        })
    }
    fn relation_set(&mut self, id: i64, app: bool, settings: Settings) -> Result<(), ToolError> {
        self.rel(id)?;
        if app && !self.leader() {
            return Err(err("cannot write relation settings"));
        }
        let entry = self.ctx.relation_sets.entry(id).or_default();
        let target = if app { &mut entry.1 } else { &mut entry.0 };
        target.extend(settings);
        Ok(())
    }
    fn config(&self) -> Result<BTreeMap<String, Value>, ToolError> {
        let a = self.app();
        Ok(super::charm::effective_config(&a.meta, &a.config))
    }
    fn action_params(&self) -> Option<Value> {
        let id = self.ctx.task?;
        self.model.tasks.get(&id).map(|t| t.params.clone())
    }
    fn action_set(&mut self, key: &str, value: &str) -> Result<(), ToolError> {
        records::set_action_result(self.task_mut()?, key, value);
        Ok(())
    }
    fn action_fail(&mut self, message: &str) -> Result<(), ToolError> {
        records::fail_action(self.task_mut()?, message);
        Ok(())
    }
    fn action_log(&mut self, message: &str) -> Result<(), ToolError> {
        records::log_action(self.task_mut()?, message, now());
        Ok(())
    }
    fn status_set(
        &mut self,
        application: bool,
        status: &str,
        message: &str,
    ) -> Result<(), ToolError> {
        let info = StatusInfo {
            status: status.into(),
            message: message.into(),
        };
        if application && !self.leader() {
            return Err(err("this unit is not the leader"));
        }
        records::set_status(self.model, &self.ctx.unit, application, info, now());
        Ok(())
    }
    fn status_get(&self) -> Result<StatusInfo, ToolError> {
        Ok(self.model.units[&self.ctx.unit].workload.clone())
    }
    fn application_status_get(
        &self,
    ) -> Result<(StatusInfo, BTreeMap<String, StatusInfo>), ToolError> {
        if !self.leader() {
            return Err(err(
                "finding application status: this unit is not the leader",
            ));
        }
        let units = self
            .model
            .units_of(&self.app_name())
            .into_iter()
            .map(|u| (u.clone(), self.model.units[&u].workload.clone()))
            .collect();
        Ok((self.app().status.clone(), units))
    }
    fn application_version_set(&mut self, version: &str) -> Result<(), ToolError> {
        records::set_version(self.model, &self.app_name(), version);
        Ok(())
    }
    fn unit_address(&self, _which: &str) -> Result<String, ToolError> {
        Ok(self.machine().address.clone())
    }
    fn network_get(&self, binding: &str) -> Result<NetworkInfo, ToolError> {
        if !self.app().meta.endpoints.contains_key(binding) && binding != "juju-info" {
            return Err(err(format!("undefined for unit charm: binding name {binding:?} not defined by the unit's charm")));
        }
        let m = self.machine();
        let s = self.model.subnet;
        Ok(NetworkInfo {
            interface: "eth0".into(),
            mac: m.mac.clone(),
            address: m.address.clone(),
            cidr: format!("{}.{}.{}.0/24", s[0], s[1], s[2]),
            hostname: m.hostname.clone(),
        })
    }
    fn change_port(
        &mut self,
        open: bool,
        range: PortRange,
        _endpoints: Option<Vec<String>>,
    ) -> Result<(), ToolError> {
        self.ctx.ports.push((open, range));
        Ok(())
    }
    fn opened_ports(&self) -> Result<Vec<PortRange>, ToolError> {
        Ok(self.model.units[&self.ctx.unit]
            .ports
            .iter()
            .cloned()
            .collect())
    }
    fn juju_log(&mut self, level: &str, message: &str) -> Result<(), ToolError> {
        let hook = lifecycle::hook_name(self.model, &self.ctx.unit, &self.ctx.event);
        let message = crate::secrets::scrub(&self.model.secrets, Some(&self.ctx.secrets), message);
        self.sh.log_line(
            &unit_tag(&self.ctx.unit),
            level,
            &format!("unit.{}.juju-log {hook}: {message}", self.ctx.unit),
        );
        Ok(())
    }
    fn resource_get(&mut self, name: &str) -> Result<String, ToolError> {
        let app = self.app();
        let Some(file) = app.meta.resources.get(name).cloned() else {
            return Err(err(format!(
                "cannot get resource {name:?}: resource not found"
            )));
        };
        let Some(src) = app.resources.get(name).cloned() else {
            return Err(err(format!("could not download resource: HTTP request failed: resource {name:?} of application {:?} is not attached (sandbox attach-resource)", app.name)));
        };
        let dest = format!(
            "/var/lib/juju/agents/{}/resources/{name}/{file}",
            unit_tag(&self.ctx.unit)
        );
        let machine = self
            .machine()
            .handle
            .clone()
            .ok_or_else(|| err("machine is not running"))?;
        self.copies.push(ResourceCopy {
            src,
            dest: dest.clone(),
            machine,
        });
        Ok(dest)
    }
    fn state_get(&self) -> Result<Settings, ToolError> {
        let mut s = self.model.units[&self.ctx.unit].state.clone();
        for (k, v) in &self.ctx.state {
            match v {
                Some(v) => s.insert(k.clone(), v.clone()),
                None => s.remove(k),
            };
        }
        Ok(s)
    }
    fn state_set(&mut self, settings: Settings) -> Result<(), ToolError> {
        for (k, v) in settings {
            self.ctx
                .state
                .insert(k, if v.is_empty() { None } else { Some(v) });
        }
        Ok(())
    }
    fn state_delete(&mut self, key: &str) -> Result<(), ToolError> {
        self.ctx.state.insert(key.into(), None);
        Ok(())
    }
    fn goal_state(&self) -> Result<crate::tools::env::GoalState, ToolError> {
        Ok(super::goal_state::goal_state(self.model, &self.ctx.unit))
    }
    fn secret(&mut self, call: crate::secrets::Call) -> Result<crate::secrets::Answer, ToolError> {
        if self.model.is_juju29() {
            return Err(err("secrets are not available in Juju 2.9"));
        }
        records::secret_call(
            self.model,
            &mut self.ctx.secrets,
            &self.ctx.unit,
            call,
            now(),
        )
        .map_err(err)
    }
    fn hook_storage(&self) -> Option<String> {
        super::storage::event_storage(&self.ctx.event).map(str::to_string)
    }
    fn storage_get(&self, id: &str) -> Result<crate::tools::env::StorageInfo, ToolError> {
        super::storage::info(self.model, &self.ctx.unit, id).map_err(err)
    }
    fn storage_list(&self, name: &str) -> Result<Vec<String>, ToolError> {
        Ok(super::storage::visible(self.model, &self.ctx.unit, name))
    }
    fn storage_add(&mut self, adds: Vec<(String, u32)>) -> Result<(), ToolError> {
        super::storage::check_add(self.model, &self.ctx.unit, &self.ctx.storage_adds, &adds)
            .map_err(err)?;
        self.ctx.storage_adds.extend(adds);
        Ok(())
    }
}

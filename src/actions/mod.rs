/*!
The actions: one module each, run through [`run`].

| action | where | what |
|---|---|---|
| `health` | any unit | every member's health, Raft leader, term, index, db size, version, alarms |
| `member-list` | any unit | members with ids, names, URLs, learner flag and Juju unit |
| `snapshot` | any unit | a consistent snapshot to a directory, with its sha256 and revision |
| `restore` | leader | the whole cluster from a snapshot (a file, the resource, or a backup); the other units rejoin by themselves |
| `compact` | any unit | compacts the key-value history (latest revision by default) |
| `defrag` | any unit | defragments this member, or every member one at a time (`all=true`) |
| `alarm-list`, `alarm-disarm` | any unit | active alarms; disarms them once the cause is fixed |
| `rebuild-cluster` | leader | after losing the majority: the surviving member alone, the others rejoin |
| `create-backup`, `list-backups` | any unit | a snapshot to the object store of `s3-credentials`; the backups there |
| `rotate-ca` | leader | new client and peer CAs: trust both, reissue every certificate, drop the old (the hooks drive it) |

Every action checks its params again ([`params`]), reports dotted lowercase result keys and a
readable `output`, logs progress with `action-log` on long steps, and fails (`action-fail`)
with a reason saying what to do whenever it did not do what was asked. An action that changes
the cluster checks everything it can before it changes anything.
*/

mod alarm_disarm;
mod alarm_list;
mod backup;
pub use backup::request_store;
mod backup_verify;
mod common;
mod compact;
pub(crate) mod defrag;
mod health;
mod machine;
mod member_list;
pub mod params;
mod rebuild_cluster;
mod restore;
mod rotate_ca;
mod snapshot;

pub use health::{health_report, MemberHealth};
pub use machine::{inspect_snapshot, SnapshotInfo};

use crate::core::config::CharmConfig;
use crate::etcd::Etcd;
use crate::juju::context::JujuContext;
use crate::juju::{Juju, JujuError, Level, Settings};
use params::Params;
use std::cell::OnceCell;

/// Why an action could not run at all (the process exits non-zero).
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// A hook tool failed.
    #[error(transparent)]
    Juju(#[from] JujuError),
}

/// How an action stops early.
#[derive(Debug)]
pub enum Stop {
    /// It did not do what was asked: `action-fail` with this reason (what to do next).
    Fail(String),
    /// A hook tool failed.
    Juju(JujuError),
}

impl From<JujuError> for Stop {
    fn from(e: JujuError) -> Stop {
        Stop::Juju(e)
    }
}

/// Fails the action with `msg`.
pub fn fail<T>(msg: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Fail(msg.into()))
}

/// Result keys, in the order they were set (`action-set` once, at the end).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Results(pub Vec<(String, String)>);

impl Results {
    /// Sets one key (replacing an earlier value).
    pub fn set(&mut self, key: impl Into<String>, value: impl ToString) {
        let key = key.into();
        let value = value.to_string();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(kv) => kv.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// One key's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// One running action: who, with what params, through which tools.
pub struct Action<'a> {
    /// The Juju environment.
    pub ctx: &'a JujuContext,
    /// Juju's hook tools.
    pub juju: &'a dyn Juju,
    /// The etcd API.
    pub etcd: &'a dyn Etcd,
    /// Validated params.
    pub params: Params,
    config: OnceCell<CharmConfig>,
    leader_data: OnceCell<Settings>,
}

impl<'a> Action<'a> {
    /// An action with these params.
    pub fn new(
        ctx: &'a JujuContext,
        juju: &'a dyn Juju,
        etcd: &'a dyn Etcd,
        params: Params,
    ) -> Action<'a> {
        Action {
            ctx,
            juju,
            etcd,
            params,
            config: OnceCell::new(),
            leader_data: OnceCell::new(),
        }
    }

    /// The charm config (defaults where it is invalid: the reconcile path reports that).
    pub fn config(&self) -> &CharmConfig {
        self.config.get_or_init(|| {
            self.juju
                .config_get()
                .ok()
                .and_then(|raw| CharmConfig::try_from(&raw).ok())
                .unwrap_or_default()
        })
    }

    /// Leader data (empty when unreadable).
    pub fn leader_data(&self) -> &Settings {
        self.leader_data
            .get_or_init(|| self.juju.leader_get().unwrap_or_default())
    }

    /// Progress: `action-log` (shown while the action runs) and the unit's log.
    pub fn progress(&self, msg: &str) {
        self.juju.log(Level::Info, msg);
        if let Err(e) = self.juju.action_log(msg) {
            self.juju
                .log(Level::Debug, &format!("action-log failed: {e}"));
        }
    }
}

type Body = fn(&Action, &mut Results) -> Result<(), Stop>;

/// The action functions, by name (the names of [`params::SPECS`]).
const BODIES: &[(&str, Body)] = &[
    ("health", health::run),
    ("member-list", member_list::run),
    ("snapshot", snapshot::run),
    ("restore", restore::run),
    ("compact", compact::run),
    ("defrag", defrag::run),
    ("alarm-list", alarm_list::run),
    ("alarm-disarm", alarm_disarm::run),
    ("rebuild-cluster", rebuild_cluster::run),
    ("create-backup", backup::create),
    ("list-backups", backup::list_action),
    ("rotate-ca", rotate_ca::run),
];

/// Runs the named action: params checked, results set, failure reported. Unknown names and
/// bad params fail the action, not the process; only a failing hook tool is an error. Returns
/// the results it set.
pub fn run(
    ctx: &JujuContext,
    name: &str,
    juju: &dyn Juju,
    etcd: &dyn Etcd,
) -> Result<Results, ActionError> {
    let names: Vec<&str> = params::SPECS.iter().map(|s| s.name).collect();
    let (Some(spec), Some((_, body))) =
        (params::spec(name), BODIES.iter().find(|(n, _)| *n == name))
    else {
        let msg = format!("unknown action {name}: this charm has {}", names.join(", "));
        juju.action_fail(&msg)?;
        return Ok(Results::default());
    };
    let raw = juju.action_get()?;
    let params = match params::validate(spec, &raw) {
        Ok(p) => p,
        Err(msg) => {
            let msg = format!("{msg}; nothing was done");
            juju.action_set(&[("output".into(), msg.clone())])?;
            juju.action_fail(&msg)?;
            return Ok(Results::default());
        }
    };
    let action = Action::new(ctx, juju, etcd, params);
    let mut results = Results::default();
    let outcome = body(&action, &mut results);
    // Hook tools take no NUL bytes; messages may quote a damaged file.
    for kv in results.0.iter_mut() {
        kv.1 = machine::printable(&kv.1);
    }
    let failure = match outcome {
        Ok(()) => None,
        Err(Stop::Fail(msg)) => Some(machine::printable(&msg)),
        Err(Stop::Juju(e)) => {
            // Report what is known, then fail the process with the tool's error.
            let _ = juju.action_set(&results.0);
            return Err(e.into());
        }
    };
    if let Some(msg) = &failure {
        juju.log(Level::Warning, &format!("action {name} failed: {msg}"));
        if results.get("output").is_none() {
            results.set("output", msg);
        }
    }
    if !results.0.is_empty() {
        juju.action_set(&results.0)?;
    }
    if let Some(msg) = failure {
        juju.action_fail(&msg)?;
    }
    Ok(results)
}

/// The timer's scheduled backup ([`backup::scheduled`]), in the hook context `juju-exec`
/// gives: logged, never an action; a failure is a warning in the log and a non-zero exit.
pub fn scheduled_backup(ctx: &JujuContext, juju: &dyn Juju, etcd: &dyn Etcd) -> bool {
    let action = Action::new(ctx, juju, etcd, Params::default());
    match backup::scheduled(&action) {
        Ok(msg) => {
            juju.log(Level::Info, &format!("scheduled backup: {msg}"));
            true
        }
        Err(Stop::Fail(msg)) => {
            juju.log(Level::Warning, &format!("scheduled backup failed: {msg}"));
            false
        }
        Err(Stop::Juju(e)) => {
            juju.log(Level::Warning, &format!("scheduled backup failed: {e}"));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{FakeEtcd, FakeJuju};
    use serde_json::json;

    #[test]
    fn every_spec_has_a_body() {
        for s in params::SPECS {
            assert!(BODIES.iter().any(|(n, _)| *n == s.name), "{}", s.name);
        }
        assert_eq!(BODIES.len(), params::SPECS.len());
    }

    #[test]
    fn bad_params_fail_the_action_and_do_nothing() {
        let juju = FakeJuju::new("etcd/0", json!({"revision": "abc"}));
        let etcd = FakeEtcd::healthy(3);
        juju.run("compact", &etcd);
        let failed = juju.failure_starting("parameter revision of compact must be an integer");
        assert!(failed.ends_with("nothing was done"));
        assert!(etcd.calls().iter().all(|c| !c.starts_with("compact")));
    }

    #[test]
    fn unknown_actions_fail_naming_the_known_ones() {
        let juju = FakeJuju::new("etcd/0", json!({}));
        juju.run("backup", &FakeEtcd::healthy(1));
        juju.failure_starting(
            "unknown action backup: this charm has health, member-list, snapshot",
        );
    }
}

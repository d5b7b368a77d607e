/*!
The Juju boundary: the [`Juju`] trait the rest of the charm sees, its errors and data types.
[`hooktools`] is the only place that spawns Juju's hook tools; [`context`] is the `JUJU_*`
environment.

A failed tool keeps its name, arguments, exit code and stderr in a [`HookToolError`]. Decision code sees the [`Juju`] trait only, so it is tested
with fakes. Tool reference: <https://documentation.ubuntu.com/juju/latest/reference/hook-command/>.
*/

pub mod context;
pub mod hooktools;

use serde_json::Value;
use std::collections::BTreeMap;

/// String settings of one databag (relation, leader).
pub type Settings = BTreeMap<String, String>;

/// A hook tool that could not be run or exited non-zero.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hook tool `{tool} {}` failed ({}): {}", shown(args), code.map_or("not run".to_string(), |c| format!("exit code {c}")), stderr.trim())]
pub struct HookToolError {
    /// The tool, e.g. `relation-get`.
    pub tool: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Exit code; `None` when the tool could not be started or was killed.
    pub code: Option<i32>,
    /// Its stderr (or, when it could not be started, why).
    pub stderr: String,
    /// True when the tool does not exist on PATH.
    pub missing: bool,
}

/// Arguments as an error shows them: the values of private keys (`tls-ca-key=…`,
/// `client_key=…`) are left out.
fn shown(args: &[String]) -> String {
    let one = |a: &String| match a.split_once('=') {
        Some((k, _)) if k.contains("key") => format!("{k}=<redacted>"),
        _ => a.clone(),
    };
    args.iter().map(one).collect::<Vec<_>>().join(" ")
}

/// Errors the decision code gets from [`Juju`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JujuError {
    /// A hook tool failed.
    #[error(transparent)]
    Tool(#[from] HookToolError),
    /// `is-leader`, `leader-get` or `leader-set` is missing (Juju older than 1.23.2).
    #[error("this charm needs Juju's leader election (Juju >= 1.23.2): upgrade Juju, then run `juju resolved` on units in error")]
    NoLeadership,
    /// A tool printed something that is not what its documentation promises.
    #[error("cannot parse the output of {tool}: {reason}")]
    BadOutput {
        /// The tool.
        tool: String,
        /// What was wrong.
        reason: String,
    },
}

/// Who owns a new secret (`secret-add --owner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretOwner {
    /// The application: managed by the leader, readable by every unit of it.
    Application,
    /// This unit alone; removed with it.
    Unit,
}

/// Log levels of `juju-log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// DEBUG.
    Debug,
    /// INFO.
    Info,
    /// WARNING.
    Warning,
    /// ERROR.
    Error,
}

/// Everything the charm asks of Juju. Implemented by [`hooktools::HookTools`] and by test fakes.
pub trait Juju {
    /// `config-get --all`: every option with its typed value.
    fn config_get(&self) -> Result<serde_json::Map<String, Value>, JujuError>;
    /// `is-leader`.
    fn is_leader(&self) -> Result<bool, JujuError>;
    /// `leader-get`: all leader settings.
    fn leader_get(&self) -> Result<Settings, JujuError>;
    /// `leader-set`: writes at once; empty values delete keys.
    fn leader_set(&self, settings: &Settings) -> Result<(), JujuError>;
    /// `relation-ids <endpoint>`.
    fn relation_ids(&self, endpoint: &str) -> Result<Vec<String>, JujuError>;
    /// `relation-list -r <id>`: remote units in scope.
    fn relation_list(&self, relation_id: &str) -> Result<Vec<String>, JujuError>;
    /// `relation-get -r <id> - <unit>`: one unit's databag (string values only).
    fn relation_get(&self, relation_id: &str, unit: &str) -> Result<Settings, JujuError>;
    /// `relation-get -r <id> --app - <app>`: a remote application's databag.
    fn relation_get_app(&self, relation_id: &str, app: &str) -> Result<Settings, JujuError>;
    /// `relation-set -r <id> k=v...`: buffered until the hook exits 0.
    fn relation_set(&self, relation_id: &str, settings: &Settings) -> Result<(), JujuError>;
    /// `relation-set -r <id> --app`: this application's databag (leader only), buffered alike.
    fn relation_set_app(&self, relation_id: &str, settings: &Settings) -> Result<(), JujuError>;
    /// `status-set <status> <message>`.
    fn status_set(&self, status: &str, message: &str) -> Result<(), JujuError>;
    /// `juju-log`; never fails (falls back to stderr).
    fn log(&self, level: Level, message: &str);
    /// This unit's address on a binding: `network-get`, else `unit-get private-address`.
    fn address(&self, binding: &str) -> Result<Option<String>, JujuError>;
    /// `resource-get <name>`: local path of the attached file.
    fn resource_get(&self, name: &str) -> Result<String, JujuError>;
    /// `application-version-set`.
    fn application_version_set(&self, version: &str) -> Result<(), JujuError>;
    /// `open-port <port>/tcp`.
    fn open_port(&self, port: u16) -> Result<(), JujuError>;
    /// `close-port <port>/tcp`.
    fn close_port(&self, port: u16) -> Result<(), JujuError>;
    /// `opened-ports`: the single TCP ports this unit has opened (ranges left out).
    fn opened_ports(&self) -> Result<Vec<u16>, JujuError>;
    /// `action-get`: the action's params.
    fn action_get(&self) -> Result<Value, JujuError>;
    /// `action-set k=v...` (dotted lowercase keys).
    fn action_set(&self, results: &[(String, String)]) -> Result<(), JujuError>;
    /// `action-fail <message>`.
    fn action_fail(&self, message: &str) -> Result<(), JujuError>;
    /// `action-log <message>`.
    fn action_log(&self, message: &str) -> Result<(), JujuError>;
    /// `secret-add --owner … [--label …] --file <0600 file>`: a new secret with `content`
    /// (keys as Juju requires: `[a-z](-?[a-z0-9]){2,}`), its URI. Created when the hook exits 0.
    fn secret_add(
        &self,
        content: &Settings,
        owner: SecretOwner,
        label: Option<&str>,
    ) -> Result<String, JujuError>;
    /// `secret-get <id> --format=json [--refresh]`: the content of the revision this unit
    /// tracks, or with `refresh` the latest (then tracked).
    fn secret_get(&self, id: &str, refresh: bool) -> Result<Settings, JujuError>;
    /// `secret-set <id> --file <0600 file>`: a new revision with `content` (replaces all keys).
    fn secret_set(&self, id: &str, content: &Settings) -> Result<(), JujuError>;
    /// `secret-grant <id> -r <relation> [--unit <unit>]`: the relation's remote application (or
    /// one of its units) may read the secret while the relation lasts.
    fn secret_grant(
        &self,
        id: &str,
        relation_id: &str,
        unit: Option<&str>,
    ) -> Result<(), JujuError>;
    /// `secret-ids --format=json`: the bare ids of the secrets this unit owns (the leader: its
    /// application's too).
    fn secret_ids(&self) -> Result<Vec<String>, JujuError>;
    /// `secret-remove <id>`: every revision.
    fn secret_remove(&self, id: &str) -> Result<(), JujuError>;
    /// `goal-state --format=json`: this application's units, this one included, each with its
    /// status (`dying` once it is being removed), units not yet in the peer relation too.
    fn goal_units(&self) -> Result<BTreeMap<String, String>, JujuError>;
}

/// The bare 20-character id of a secret URI in any of Juju's forms (`secret:<id>`,
/// `secret://<uuid>/<id>`, `<uuid>/<id>`, `<id>`): how secrets are compared.
pub fn secret_bare_id(uri: &str) -> &str {
    let rest = uri.trim();
    let rest = rest.strip_prefix("secret:").unwrap_or(rest);
    rest.rsplit('/').next().unwrap_or(rest)
}

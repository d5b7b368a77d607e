//! The controller's side of one running hook context, as the hook tools see it.
//!
//! `run_tool` (in `tools/mod.rs`) parses a tool's command line exactly as Juju does and calls
//! these methods; the controller implements them over its model. Every method that can fail at
//! run time returns a [`ToolError`] whose message becomes `ERROR <message>` on stderr, exit 1.

use serde_json::Value;
use std::collections::BTreeMap;

/// String settings of one databag (relation, leader or unit state).
pub type Settings = BTreeMap<String, String>;

/// A run-time failure of a hook tool (exit code 1, `ERROR <message>` on stderr).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ToolError(pub String);

impl ToolError {
    /// Builds an error from any message.
    pub fn new(msg: impl Into<String>) -> Self {
        ToolError(msg.into())
    }
}

/// Whose databag `relation-get` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Databag {
    /// A unit's databag (local or remote unit name, e.g. `etcd/1`).
    Unit(String),
    /// An application's databag (local or remote application name).
    App(String),
}

/// A port range as `open-port` takes it: `80`, `80/udp`, `8000-8080/tcp`, `icmp`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct PortRange {
    /// First port (0 for icmp).
    pub from: u16,
    /// Last port (equal to `from` for one port, 0 for icmp).
    pub to: u16,
    /// `tcp`, `udp` or `icmp`.
    pub protocol: String,
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.protocol.as_str(), self.from == self.to) {
            ("icmp", _) => write!(f, "icmp"),
            (p, true) => write!(f, "{}/{}", self.from, p),
            (p, false) => write!(f, "{}-{}/{}", self.from, self.to, p),
        }
    }
}

/// A workload status as `status-get` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct StatusInfo {
    /// `maintenance`, `blocked`, `waiting`, `active`, `unknown` or `error`.
    pub status: String,
    /// Free text.
    pub message: String,
}

/// One address of a network binding (`network-get`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    /// Interface name inside the machine, e.g. `eth0`.
    pub interface: String,
    /// MAC address of that interface.
    pub mac: String,
    /// The unit's address on it, e.g. `10.40.3.11`.
    pub address: String,
    /// The subnet in CIDR form, e.g. `10.40.3.0/24`.
    pub cidr: String,
    /// Host name of the machine.
    pub hostname: String,
}

/// A status and when it was set, as `goal-state` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalStatus {
    /// `active`, `waiting`, … `dying` for units; `joining`, `joined`, `broken` for relations.
    pub status: String,
    /// Seconds since the epoch.
    pub since: f64,
}

/// `goal-state`'s facts: this application's units, and per local endpoint of each non-peer
/// relation the remote application (the relation's status) and its units.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GoalState {
    /// Unit name → status.
    pub units: BTreeMap<String, GoalStatus>,
    /// Local endpoint → remote application or unit → status.
    pub relations: BTreeMap<String, BTreeMap<String, GoalStatus>>,
}

/// A storage instance as `storage-get` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageInfo {
    /// `filesystem` or `block`.
    pub kind: String,
    /// Its mount point in the machine.
    pub location: String,
}

/// Everything the hook tools may ask of the controller during one hook or action.
///
/// Buffered writes (`relation_set`, `change_port`, `state_set`, `state_delete`) are
/// held by the implementation and committed only when the hook exits 0. `leader_set`,
/// `status_set` and the action calls take effect at once.
pub trait HookEnv {
    /// This unit, e.g. `etcd/0`.
    fn unit_name(&self) -> String;
    /// This unit's application, e.g. `etcd`.
    fn app_name(&self) -> String;
    /// The relation id of the running relation hook (`JUJU_RELATION_ID`'s number), if any.
    fn current_relation(&self) -> Option<i64>;
    /// `JUJU_REMOTE_UNIT` of the running hook, if any.
    fn remote_unit(&self) -> Option<String>;
    /// `JUJU_REMOTE_APP` of the running hook, if any.
    fn remote_app(&self) -> Option<String>;

    /// Whether this unit holds leadership now.
    fn is_leader(&self) -> Result<bool, ToolError>;
    /// The application's leader settings.
    fn leader_get(&self) -> Result<Settings, ToolError>;
    /// Writes leader settings at once; an empty value deletes the key. Non-leader: error
    /// `cannot write leadership settings: cannot write settings: not the leader`.
    fn leader_set(&mut self, settings: Settings) -> Result<(), ToolError>;

    /// Endpoint name of a live relation id (`None` when the id is unknown).
    fn relation_endpoint(&self, id: i64) -> Option<String>;
    /// Sorted `name:id` strings of the live relations on an endpoint (empty when none).
    fn relation_ids(&self, endpoint: &str) -> Result<Vec<String>, ToolError>;
    /// Remote units in scope of a relation (for a peer relation, the other peers), sorted.
    fn relation_list(&self, id: i64) -> Result<Vec<String>, ToolError>;
    /// The remote application of a relation (for a peer relation, this application).
    fn relation_remote_app(&self, id: i64) -> Result<String, ToolError>;
    /// Reads a databag; for this unit (and this app, when leader) the in-hook view.
    fn relation_get(&self, id: i64, bag: &Databag) -> Result<Settings, ToolError>;
    /// Buffers writes to this unit's (or, with `app`, this application's) databag; an empty
    /// value deletes the key. `app` on a non-leader: error `cannot write relation settings`.
    fn relation_set(&mut self, id: i64, app: bool, settings: Settings) -> Result<(), ToolError>;

    /// Charm config: every option with its typed value; options without value or default map
    /// to `Value::Null`.
    fn config(&self) -> Result<BTreeMap<String, Value>, ToolError>;

    /// Params of the running action (with schema defaults filled in); `None` outside actions.
    fn action_params(&self) -> Option<Value>;
    /// Merges one already-validated dotted key into the action's results.
    fn action_set(&mut self, key: &str, value: &str) -> Result<(), ToolError>;
    /// Marks the running action failed with this message.
    fn action_fail(&mut self, message: &str) -> Result<(), ToolError>;
    /// Appends a progress message to the running action.
    fn action_log(&mut self, message: &str) -> Result<(), ToolError>;

    /// Sets this unit's (or with `application`, the application's; leader only) workload status.
    fn status_set(
        &mut self,
        application: bool,
        status: &str,
        message: &str,
    ) -> Result<(), ToolError>;
    /// This unit's workload status.
    fn status_get(&self) -> Result<StatusInfo, ToolError>;
    /// The application status and each unit's status (leader only).
    fn application_status_get(
        &self,
    ) -> Result<(StatusInfo, BTreeMap<String, StatusInfo>), ToolError>;
    /// Sets the workload version shown by `status`.
    fn application_version_set(&mut self, version: &str) -> Result<(), ToolError>;

    /// `private-address` or `public-address` of this unit.
    fn unit_address(&self, which: &str) -> Result<String, ToolError>;
    /// The network of a binding (endpoint or extra-binding name); error for an unknown one.
    fn network_get(&self, binding: &str) -> Result<NetworkInfo, ToolError>;

    /// Buffers opening (`open`) or closing a port range.
    fn change_port(
        &mut self,
        open: bool,
        range: PortRange,
        endpoints: Option<Vec<String>>,
    ) -> Result<(), ToolError>;
    /// Committed open port ranges (not this hook's pending changes).
    fn opened_ports(&self) -> Result<Vec<PortRange>, ToolError>;

    /// Writes a line to the unit's debug log (`level` is upper case: TRACE…ERROR).
    fn juju_log(&mut self, level: &str, message: &str) -> Result<(), ToolError>;

    /// Path, inside the machine, of a resource's file; error when none is attached.
    fn resource_get(&mut self, name: &str) -> Result<String, ToolError>;

    /// The unit's server-side state, including this hook's pending changes.
    fn state_get(&self) -> Result<Settings, ToolError>;
    /// Buffers state writes.
    fn state_set(&mut self, settings: Settings) -> Result<(), ToolError>;
    /// Buffers a state deletion.
    fn state_delete(&mut self, key: &str) -> Result<(), ToolError>;

    /// What `goal-state` prints.
    fn goal_state(&self) -> Result<GoalState, ToolError> {
        Err(ToolError::new("goal-state is not available in this model"))
    }

    /// Answers a `secret-*` tool whose arguments are checked (see [`crate::secrets`]); reads
    /// act at once, changes are buffered until the hook exits 0.
    fn secret(&mut self, call: crate::secrets::Call) -> Result<crate::secrets::Answer, ToolError> {
        let _ = call;
        Err(ToolError::new("secrets are not available in this model"))
    }

    /// The storage of the running storage hook (`JUJU_STORAGE_ID`), if any.
    fn hook_storage(&self) -> Option<String> {
        None
    }
    /// A storage instance attached to this unit; an error names an unknown one.
    fn storage_get(&self, id: &str) -> Result<StorageInfo, ToolError> {
        Err(ToolError::new(format!("storage {id:?} not found")))
    }
    /// Ids of the storage attached to this unit (of store `name` unless empty), in the
    /// controller's order.
    fn storage_list(&self, name: &str) -> Result<Vec<String>, ToolError> {
        let _ = name;
        Ok(vec![])
    }
    /// Buffers `storage-add` (store, count), committed when the hook exits 0.
    fn storage_add(&mut self, adds: Vec<(String, u32)>) -> Result<(), ToolError> {
        let _ = adds;
        Err(ToolError::new("storage is not available in this model"))
    }
}

//! What the command line and the controller say to each other over the controller's socket.
//!
//! One request is one line of JSON, answered by one line of JSON. Hook tools send the `tool`
//! variant over their machine's own tool socket (see [`crate::tools`]); each socket refuses the
//! other variant.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One line sent to the controller.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Wire {
    /// A command-line request (the host's controller socket only).
    Cli(Request),
    /// A hook tool call from inside a machine (tool sockets only).
    Tool(crate::tools::ToolRequest),
    /// `juju-exec` on a machine (tool sockets only; for a unit on that machine).
    JujuExec(crate::tools::juju_exec::ExecRequest),
}

/// A command-line request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// Liveness check.
    Ping,
    /// Deploys a charm (an unpacked directory or a `.charm` zip, host path).
    Deploy {
        /// Host path of the charm.
        charm: String,
        /// Application name (default: the charm's name).
        app: Option<String>,
        /// Number of units.
        num_units: u32,
        /// Config values as `key` → string, parsed by the option's type.
        config: BTreeMap<String, String>,
        /// Resources as `name` → host path.
        resources: BTreeMap<String, String>,
        /// `--storage <store>=<directive>` flags.
        #[serde(default)]
        storage: Vec<String>,
        /// Detached storage ids to attach to the unit (with one unit only).
        #[serde(default)]
        attach_storage: Vec<String>,
    },
    /// Adds units to an application.
    AddUnit {
        /// Application name.
        app: String,
        /// How many.
        num_units: u32,
        /// `--storage <store>=<directive>` flags.
        #[serde(default)]
        storage: Vec<String>,
        /// Detached storage ids to attach to the new unit.
        #[serde(default)]
        attach_storage: Vec<String>,
    },
    /// Removes units.
    RemoveUnit {
        /// Unit names.
        units: Vec<String>,
        /// Remove their storage too, instead of detaching it.
        #[serde(default)]
        destroy_storage: bool,
    },
    /// Relates two endpoints (`app` or `app:endpoint`).
    Integrate(RelationEnds),
    /// Removes a relation.
    RemoveRelation(RelationEnds),
    /// Reads or changes application config.
    Config {
        /// Application name.
        app: String,
        /// Values to set (`key` → string).
        set: BTreeMap<String, String>,
        /// Keys to reset to their default.
        reset: Vec<String>,
    },
    /// Attaches a resource file.
    AttachResource {
        /// Application name.
        app: String,
        /// Resource name.
        name: String,
        /// Host path.
        path: String,
    },
    /// Upgrades the charm from a new path.
    Refresh {
        /// Application name.
        app: String,
        /// Host path of the new charm.
        path: String,
    },
    /// Queues an action; answers its task id.
    RunAction {
        /// Unit name.
        unit: String,
        /// Action name.
        action: String,
        /// Params (nested map).
        params: Value,
    },
    /// A task's state and results.
    ShowTask {
        /// Task id.
        id: u64,
    },
    /// Runs a command in a hook context on a unit; answers its output.
    Exec {
        /// Unit name.
        unit: String,
        /// Command line for `sh -c`.
        command: String,
    },
    /// The whole model.
    Status,
    /// Retries (or skips) a failed hook.
    Resolved {
        /// Unit name.
        unit: String,
        /// Skip the failed hook instead of retrying it.
        no_retry: bool,
    },
    /// Reads or sets model config.
    ModelConfig {
        /// Values to set.
        set: BTreeMap<String, String>,
    },
    /// Abrupt power loss of a unit's machine.
    KillMachine {
        /// Unit name.
        unit: String,
    },
    /// Reboots (or powers on again) a unit's machine.
    RestartMachine {
        /// Unit name.
        unit: String,
    },
    /// Cuts a unit's machine off the network, or only from some units.
    Partition {
        /// Unit name.
        unit: String,
        /// Only from these units (all when empty).
        from: Vec<String>,
    },
    /// Undoes partitions (of one unit, or all).
    Heal {
        /// Unit name, or all.
        unit: Option<String>,
    },
    /// Moves a machine (by number or unit name) to a free address of the sandbox's subnet.
    ChangeAddress {
        /// Machine number or unit name.
        target: String,
    },
    /// Removes a machine (by number or unit name); `force` for a lost one.
    RemoveMachine {
        /// Machine number or unit name.
        target: String,
        /// Remove without running hooks.
        force: bool,
    },
    /// Tears the model down: machines, namespaces, mounts, the controller.
    Destroy,
}

/// The two sides of a relation, each `app` or `app:endpoint` (on the command line too).
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
pub struct RelationEnds {
    /// One side.
    pub a: String,
    /// The other side.
    pub b: String,
}

/// The controller's answer.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Response {
    /// Set when the request failed; a sentence telling the user what to do.
    pub error: Option<String>,
    /// The result.
    #[serde(default)]
    pub data: Value,
}

impl Response {
    /// A successful answer.
    pub fn ok(data: Value) -> Self {
        Response { error: None, data }
    }
    /// A failed answer.
    pub fn err(msg: impl Into<String>) -> Self {
        Response {
            error: Some(msg.into()),
            data: Value::Null,
        }
    }
}

//! Juju's hook tools, parsed, checked and formatted as Juju's `jujuc` commands do, and the
//! multi-call client that forwards a tool call from inside a machine to the controller.
//!
//! The flow of one call: the client ([`client::main_as_tool`]) sends a [`ToolRequest`] line
//! over the unit's socket; the controller answers it with [`run_tool`] over its [`HookEnv`] and
//! sends back a [`ToolResponse`]; the client prints it and exits with its code.
//!
//! Exit codes and messages follow juju/cmd: 0 on success (and for `--help`); 2 with
//! `ERROR <message>` when flags or arguments are wrong (gnuflag parsing and each command's
//! `Init`); 1 with `ERROR <message>` when the command fails while running.
//!
//! Layout: `args` parses gnuflag-style command lines; `format`, `yaml` and `yaml_emit` write
//! Juju's smart/yaml/json output; `call` holds what every tool body shares; one file per tool
//! family holds the commands (`leader`, `relation`, `config_action`, `status`, `network`,
//! `ports`, `state`, `log_resource`, `secret`, `goal`, `storage`); `client` is the binary side.

pub mod client;
pub mod env;
pub mod juju_exec;

mod args;
mod call;
mod config_action;
mod format;
mod goal;
mod leader;
mod log_resource;
mod network;
mod ports;
mod relation;
mod secret;
mod state;
mod status;
mod storage;
mod yaml;
pub(crate) use yaml::json_to_yaml;
mod yaml_emit;

#[cfg(test)]
mod tests;

pub(crate) use call::{
    check_empty, checked, fail, get_key, key_values, optional_arg, select, switch, usage, value,
    Call, Fail, Res, Tool, FORMAT, OLD_FORMAT, OUTPUT, RELATION,
};

use args::{Check, Flag, Kind, ParseError, Parsed};
use env::HookEnv;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every hook tool the sandbox provides (the names the client is installed under).
pub const TOOL_NAMES: &[&str] = &[
    "action-fail",
    "action-get",
    "action-log",
    "action-set",
    "application-version-set",
    "close-port",
    "config-get",
    "goal-state",
    "is-leader",
    "juju-log",
    "juju-reboot",
    "leader-get",
    "leader-set",
    "network-get",
    "open-port",
    "opened-ports",
    "relation-get",
    "relation-ids",
    "relation-list",
    "relation-set",
    "resource-get",
    "secret-add",
    "secret-get",
    "secret-grant",
    "secret-ids",
    "secret-info-get",
    "secret-remove",
    "secret-revoke",
    "secret-set",
    "state-delete",
    "state-get",
    "state-set",
    "status-get",
    "status-set",
    "storage-add",
    "storage-get",
    "storage-list",
    "unit-get",
];

/// The Juju version the hook tools are installed for (set once by the controller).
static AGENT_VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets the Juju version whose tools [`installed_tool_names`] lists.
pub fn set_agent_version(version: &str) {
    let _ = AGENT_VERSION.set(version.to_string());
}

/// The tools a machine of this controller's Juju version has: Juju 2.9 has no `secret-*` (it
/// registers no secret commands, so they are not on `PATH`: "command not found").
pub fn installed_tool_names() -> Vec<&'static str> {
    let juju29 = AGENT_VERSION.get().is_some_and(|v| v.starts_with("2."));
    TOOL_NAMES
        .iter()
        .copied()
        .filter(|t| !(juju29 && t.starts_with("secret-")))
        .collect()
}

/// What one tool call produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolOutput {
    /// Exit code: 0 success, 1 run-time failure, 2 bad usage.
    pub code: i32,
    /// Standard output (or, with `output_file`, the content of that file).
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
    /// The `-o/--output` path: the client writes `stdout` there instead of printing it.
    pub output_file: Option<String>,
}

/// A hook tool call, as the client sends it (inside `{"tool": …}`, see [`crate::api::Wire`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolRequest {
    /// `JUJU_CONTEXT_ID` of the calling process.
    pub context_id: String,
    /// Tool name, e.g. `relation-get`.
    pub tool: String,
    /// Arguments after the tool name.
    pub args: Vec<String>,
    /// Files named by `--file` (relation-set, state-set), read by the client: path (`-` for
    /// stdin) → content as a JSON array of bytes.
    #[serde(default)]
    pub files: BTreeMap<String, Vec<u8>>,
}

impl ToolRequest {
    /// The files the client sent, for [`run_tool`].
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        self.files.clone()
    }
}

/// The controller's answer to a [`ToolRequest`]. Output is text, sent as UTF-8 strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolResponse {
    /// Exit code.
    pub code: i32,
    /// Standard output, or the content of `output_file`.
    #[serde(default)]
    pub stdout: String,
    /// Standard error.
    #[serde(default)]
    pub stderr: String,
    /// Where the client writes `stdout` instead of printing it (`-o/--output`).
    #[serde(default)]
    pub output_file: Option<String>,
}

impl ToolResponse {
    /// A failure answered before any tool ran: `ERROR <msg>` and the code.
    pub fn error(code: i32, msg: &str) -> Self {
        ToolResponse {
            code,
            stderr: format!("ERROR {msg}\n"),
            ..Default::default()
        }
    }
}

impl From<ToolOutput> for ToolResponse {
    fn from(o: ToolOutput) -> Self {
        ToolResponse {
            code: o.code,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            output_file: o.output_file,
        }
    }
}

/// Runs one hook tool: parses `args` as Juju does, calls `env`, formats the answer.
/// `files` holds what the client read for `--file` (keyed by path, `-` for stdin).
pub fn run_tool(
    tool: &str,
    args: &[String],
    files: &BTreeMap<String, Vec<u8>>,
    env: &mut dyn HookEnv,
) -> ToolOutput {
    let Some(t) = find(tool) else {
        let msg = format!("unknown hook tool {}", args::go_quote(tool));
        return ToolOutput {
            code: 2,
            stderr: format!("ERROR {msg}\n").into_bytes(),
            ..Default::default()
        };
    };
    let mut relation = env.current_relation().unwrap_or(-1);
    let parsed = {
        let env_ref: &dyn HookEnv = &*env;
        args::parse(
            t.flags,
            args,
            &mut |flag: &Flag, value: &str| match flag.check {
                Check::None => Ok(()),
                Check::Format => format::check_format(value),
                Check::YamlJson => format::check_yaml_json(value),
                Check::Relation => relation_value(env_ref, value).map(|id| relation = id),
                Check::Storage => storage::check_id(env_ref, value),
            },
        )
    };
    let mut call = Call {
        env,
        files,
        tool: t,
        flags: Parsed::default(),
        relation,
        out: ToolOutput::default(),
    };
    let result = match parsed {
        Ok(p) => {
            call.flags = p;
            (t.run)(&mut call)
        }
        Err(ParseError::Help) => {
            call.out.stdout = help(t).into_bytes();
            Ok(())
        }
        Err(ParseError::Usage(msg)) => Err(Fail::Usage(msg)),
    };
    let mut out = call.out;
    if let Err(fail) = result {
        let (code, msg) = match fail {
            Fail::Usage(m) => (2, m),
            Fail::Run(m) => (1, m),
        };
        out.code = code;
        out.stderr.extend(format!("ERROR {msg}\n").into_bytes());
    }
    out
}

/// A relation id flag value: `7` or `name:7`, naming a relation this unit is in.
fn relation_value(env: &dyn HookEnv, value: &str) -> Result<i64, String> {
    let id_part = value.rsplit(':').next().unwrap_or(value);
    let id: i64 = id_part
        .parse()
        .map_err(|_| "invalid relation id".to_string())?;
    env.relation_endpoint(id)
        .map(|_| id)
        .ok_or_else(|| "relation not found".to_string())
}

fn find(name: &str) -> Option<&'static Tool> {
    [
        leader::TOOLS,
        relation::TOOLS,
        config_action::TOOLS,
        status::TOOLS,
        network::TOOLS,
        ports::TOOLS,
        state::TOOLS,
        log_resource::TOOLS,
        secret::TOOLS,
        goal::TOOLS,
        storage::TOOLS,
    ]
    .into_iter()
    .flatten()
    .find(|t| t.name == name)
}

/// A short `--help` text in juju/cmd's layout.
fn help(t: &Tool) -> String {
    let mut s = format!("Usage: {}", t.name);
    if !t.flags.is_empty() {
        s.push_str(" [options]");
    }
    if !t.args.is_empty() {
        s.push(' ');
        s.push_str(t.args);
    }
    s.push_str(&format!("\n\nSummary:\n{}\n", t.purpose));
    if !t.flags.is_empty() {
        s.push_str("\nOptions:\n");
        for f in t.flags {
            let names: Vec<String> = f
                .names
                .iter()
                .map(|n| {
                    if n.len() > 1 {
                        format!("--{n}")
                    } else {
                        format!("-{n}")
                    }
                })
                .collect();
            let default = if f.kind == Kind::Value {
                format!("\"{}\"", f.default)
            } else {
                f.default.into()
            };
            s.push_str(&format!(
                "{} (= {default})\n    {}\n",
                names.join(", "),
                f.usage
            ));
        }
    }
    s
}

//! `juju-exec` (Juju 3.x; `juju-run` in Juju 2.9), installed in `/usr/bin` on every machine: runs
//! commands in a unit's hook context, as a systemd timer or an operator on the machine does
//! (cmd/jujud/run/run.go).
//!
//! The command line is parsed here as Juju's `Init` does; the call goes over the machine's own
//! tool socket, whose controller side ([`crate::controller::exec`]) serves only units on that
//! machine and runs the commands as an exec in the unit's queue (after the running hook, never
//! beside another hook on the machine). `--no-context` runs them here, outside any context.

use super::args::{self, Flag, Kind, ParseError};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::net::UnixStream;

/// What `juju-exec` asks the controller for (inside `{"juju-exec": …}`, see [`crate::api::Wire`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// The unit (`app/0`).
    pub unit: String,
    /// The command line, run by bash as a script.
    pub commands: String,
    /// `-r`: the relation whose context the commands run in.
    #[serde(default)]
    pub relation: Option<i64>,
    /// `--remote-unit` (inferred when the relation has one member).
    #[serde(default)]
    pub remote_unit: String,
    /// `--remote-app`.
    #[serde(default)]
    pub remote_app: String,
    /// `--force-remote-unit`: take the remote unit as given.
    #[serde(default)]
    pub force_remote_unit: bool,
}

/// Where a machine keeps its units' agent directories.
pub const AGENTS_DIR: &str = "/var/lib/juju/agents";

/// The on-machine runner's name for a Juju version: `juju-run` in 2.9, `juju-exec` from 3.0
/// (core/paths/paths.go).
pub fn name_for(agent_version: &str) -> &'static str {
    if agent_version.starts_with("2.") {
        "juju-run"
    } else {
        "juju-exec"
    }
}

/// The runner's name on this controller's machines (its Juju version, [`super::set_agent_version`]).
pub fn installed_name() -> &'static str {
    name_for(super::AGENT_VERSION.get().map_or("", String::as_str))
}

/// Whether `name` is one of the runner's names.
pub fn is_runner(name: &str) -> bool {
    name == "juju-exec" || name == "juju-run"
}

const FLAGS: &[Flag] = &[
    flag(&["no-context"], Kind::Bool, "false", "do not run the command in a unit context"),
    flag(&["r", "relation"], Kind::Value, "", "run the commands for a specific relation context on a unit"),
    flag(&["remote-unit"], Kind::Value, "", "run the commands for a specific remote unit in a relation context on a unit"),
    flag(&["remote-app"], Kind::Value, "", "run the commands for a specific remote application in a relation context on a unit"),
    flag(&["operator"], Kind::Bool, "false", "run the commands on the operator instead of the workload. Only supported on k8s workload charms"),
    flag(&["force-remote-unit"], Kind::Bool, "false", "run the commands for a specific relation context, bypassing the remote unit check"),
    flag(&["u"], Kind::Value, "-", "explicit unit-name, all other arguments are commands. if -u is passed an empty string, unit-name is inferred from state"),
];

const fn flag(
    names: &'static [&'static str],
    kind: Kind,
    default: &'static str,
    usage: &'static str,
) -> Flag {
    Flag {
        names,
        kind,
        check: args::Check::None,
        default,
        usage,
    }
}

/// What a command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// `-h`/`--help`.
    Help,
    /// Run the commands in a unit's hook context; `relation` is `-r` as given, checked when
    /// it runs (`checkRelationId`).
    Unit {
        /// The request, without its relation.
        req: ExecRequest,
        /// `-r`/`--relation`.
        relation: String,
    },
    /// `--no-context`: run `commands` on the machine, outside any hook context.
    NoContext(String),
}

/// Juju's `names.IsValidUnit`: `<application>/<number>`.
pub fn is_valid_unit(s: &str) -> bool {
    let Some((app, n)) = s.split_once('/') else {
        return false;
    };
    let number =
        n == "0" || (!n.is_empty() && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()));
    number && is_valid_app(app)
}

/// Juju's application name rule: `[a-z][a-z0-9]*(-[a-z0-9]*[a-z][a-z0-9]*)*`.
fn is_valid_app(app: &str) -> bool {
    let mut parts = app.split('-');
    let first = parts.next().unwrap_or("");
    let lower_digit = |p: &str| {
        p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    first.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && lower_digit(first)
        && parts.all(|p| lower_digit(p) && p.bytes().any(|b| b.is_ascii_lowercase()))
}

/// Juju's `names.ParseUnitTag`: `unit-<app>-<n>` → `app/n`.
pub fn parse_unit_tag(tag: &str) -> Result<String, String> {
    let unit = tag
        .strip_prefix("unit-")
        .and_then(|rest| rest.rsplit_once('-'))
        .map(|(app, n)| format!("{app}/{n}"))
        .filter(|u| is_valid_unit(u));
    match (unit, tag.starts_with("unit-")) {
        (Some(u), _) => Ok(u),
        (None, true) => Err(format!("{} is not a valid unit tag", args::go_quote(tag))),
        (None, false) => Err(format!("{} is not a valid tag", args::go_quote(tag))),
    }
}

/// A unit given as `app/0` or `unit-app-0`.
fn unit_arg(s: &str) -> Result<String, String> {
    if is_valid_unit(s) {
        Ok(s.to_string())
    } else {
        parse_unit_tag(s)
    }
}

/// juju/utils `CommandString`: the arguments joined by spaces, each double-quoted (with `"`, `$`
/// and `\` escaped) when it holds one of those or a space.
pub fn command_string(args: &[String]) -> String {
    let quote = |arg: &String| {
        let mut needs = false;
        let mut s = String::new();
        for c in arg.chars() {
            if c.is_whitespace() {
                needs = true;
            } else if matches!(c, '"' | '$' | '\\') {
                needs = true;
                s.push('\\');
            }
            s.push(c);
        }
        if needs {
            format!("\"{s}\"")
        } else {
            s
        }
    };
    args.iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// Parses a command line as `RunCommand.Init` does. `context` is `JUJU_CONTEXT_ID`, `units` the
/// unit agents on this machine (for the single-unit inference).
pub fn parse(
    name: &str,
    argv: &[String],
    context: Option<&str>,
    units: &[String],
) -> Result<Invocation, String> {
    let parsed = match args::parse(FLAGS, argv, &mut |_, _| Ok(())) {
        Ok(p) => p,
        Err(ParseError::Help) => return Ok(Invocation::Help),
        Err(ParseError::Usage(m)) => return Err(m),
    };
    if let Some(id) = context.filter(|c| !c.is_empty()) {
        return Err(format!(
            "{name} cannot be called from within a hook, have context {}",
            args::go_quote(id)
        ));
    }
    let only_unit = || match units {
        [one] => Ok(one.clone()),
        _ => Err("no unit".to_string()),
    };
    let remote_unit = parsed.value("remote-unit").unwrap_or("").to_string();
    let mut remote_app = parsed.value("remote-app").unwrap_or("").to_string();
    if remote_app.is_empty() && !remote_unit.is_empty() {
        if !is_valid_unit(&remote_unit) {
            return Err(format!(
                "remoteUnit {} is not a valid unit name: {} is not a valid unit name",
                args::go_quote(&remote_unit),
                args::go_quote(&remote_unit)
            ));
        }
        remote_app = remote_unit.split('/').next().unwrap_or("").to_string();
    }
    let mut rest = parsed.args.clone();
    let flag_unit = parsed.value("u").unwrap_or("-");
    let no_context = parsed.on("no-context");
    let unit = if no_context {
        if flag_unit != "-" {
            return Err(format!(
                "-no-context cannot be passed with an explicit unit-name (-u {})",
                args::go_quote(flag_unit)
            ));
        }
        None
    } else if flag_unit == "-" {
        let first = rest.first().ok_or("missing unit-name")?.clone();
        match unit_arg(&first) {
            Ok(u) => {
                rest.remove(0);
                Some(u)
            }
            Err(e) => Some(only_unit().map_err(|_| e)?),
        }
    } else if flag_unit.is_empty() {
        Some(only_unit()?)
    } else {
        Some(unit_arg(flag_unit)?)
    };
    let commands = match rest.as_slice() {
        [] => return Err("missing commands".into()),
        [one] => one.clone(),
        many => command_string(many),
    };
    Ok(match unit {
        Some(unit) => Invocation::Unit {
            req: ExecRequest {
                unit,
                commands,
                relation: None,
                remote_unit,
                remote_app,
                force_remote_unit: parsed.on("force-remote-unit"),
            },
            relation: parsed.value("r").unwrap_or("").to_string(),
        },
        None => Invocation::NoContext(commands),
    })
}

/// The units whose agent directories this machine has (`unit-app-0` → `app/0`).
fn local_units() -> Vec<String> {
    let mut units: Vec<String> = std::fs::read_dir(AGENTS_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| parse_unit_tag(&e.file_name().to_string_lossy()).ok())
        .collect();
    units.sort();
    units
}

fn usage(name: &str) -> String {
    let mut s = format!(
        "Usage: {name} [options] [-u] [<unit-name>] <commands>\n\nSummary:\nrun commands in a unit's hook context\n\nOptions:\n"
    );
    for f in FLAGS {
        let names: Vec<String> = f
            .names
            .iter()
            .map(|n| format!("{}{n}", if n.len() > 1 { "--" } else { "-" }))
            .collect();
        let default = match f.kind {
            Kind::Value => format!("\"{}\"", f.default),
            Kind::Bool => f.default.to_string(),
        };
        s.push_str(&format!(
            "{} (= {default})\n    {}\n",
            names.join(", "),
            f.usage
        ));
    }
    s.push_str("\nThe commands are executed with '/bin/bash -s', and the output returned.\n");
    s
}

/// Runs `juju-exec`/`juju-run` with this process's arguments; answers the exit code.
pub fn main(name: &str) -> i32 {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let context = std::env::var("JUJU_CONTEXT_ID").ok();
    let inv = match parse(name, &argv, context.as_deref(), &local_units()) {
        Ok(i) => i,
        Err(msg) => {
            eprintln!("ERROR {msg}");
            return 2;
        }
    };
    match inv {
        Invocation::Help => {
            print!("{}", usage(name));
            0
        }
        Invocation::NoContext(commands) => no_context(&commands),
        Invocation::Unit { mut req, relation } => {
            if let Err(msg) = check_unit_request(&mut req, &relation) {
                eprintln!("ERROR {msg}");
                return 1;
            }
            match call(&req) {
                Ok(resp) => {
                    let _ = std::io::stdout().write_all(resp.stdout.as_bytes());
                    let _ = std::io::stderr().write_all(resp.stderr.as_bytes());
                    resp.code
                }
                Err(msg) => {
                    eprintln!("ERROR {msg}");
                    1
                }
            }
        }
    }
}

/// `executeInUnitContext`'s checks on the machine: the unit's agent dir is here, `-r` is a
/// relation id (`7` or `name:7`), a remote unit or app comes with one.
fn check_unit_request(req: &mut ExecRequest, relation: &str) -> Result<(), String> {
    let dir = std::path::Path::new(AGENTS_DIR).join(crate::controller::model::unit_tag(&req.unit));
    if !dir.is_dir() {
        return Err(format!(
            "unit {} not found on this machine",
            args::go_quote(&req.unit)
        ));
    }
    req.relation = check_relation_id(relation)?;
    if req.relation.is_none() {
        if !req.remote_unit.is_empty() {
            return Err(format!(
                "remote unit: {}, provided without a relation",
                req.remote_unit
            ));
        }
        if !req.remote_app.is_empty() {
            return Err(format!(
                "remote app: {}, provided without a relation",
                req.remote_app
            ));
        }
    }
    Ok(())
}

/// run.go `checkRelationId`: `""` is none; else the number after the last `:`.
pub fn check_relation_id(value: &str) -> Result<Option<i64>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let id = value.rsplit(':').next().unwrap_or(value);
    id.parse()
        .map(Some)
        .map_err(|_| "invalid relation id".to_string())
}

/// `--no-context`: bash runs the commands here, with the proxy settings sourced if there are any.
fn no_context(commands: &str) -> i32 {
    let script = format!(
        "[ -f \"/home/ubuntu/.juju-proxy\" ] && . \"/home/ubuntu/.juju-proxy\"\n{commands}\n"
    );
    let run = || -> std::io::Result<i32> {
        let dir = std::env::temp_dir().join(format!("juju-exec{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("script.sh");
        std::fs::write(&file, script)?;
        let st = std::process::Command::new("/bin/bash").arg(&file).status();
        let _ = std::fs::remove_dir_all(&dir);
        Ok(st?.code().unwrap_or(1))
    };
    run().unwrap_or_else(|e| {
        eprintln!("ERROR cannot run the commands: {e}");
        1
    })
}

/// Sends the request over this machine's tool socket and waits for the commands' result.
fn call(req: &ExecRequest) -> Result<super::ToolResponse, String> {
    let address = format!(
        "{}/{}",
        crate::controller::MACHINE_RUN_DIR,
        crate::controller::TOOL_SOCKET
    );
    let conn = UnixStream::connect(&address)
        .map_err(|e| format!("dialing juju run socket: {address}: {e}"))?;
    super::client::round_trip(
        conn,
        &crate::api::Wire::JujuExec(req.clone()),
        "the commands",
    )
}

#[cfg(test)]
mod tests {
    use super::{command_string, parse, parse_unit_tag, Invocation};

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn unit(u: &str, c: &str) -> Result<Invocation, String> {
        Ok(Invocation::Unit {
            req: super::ExecRequest {
                unit: u.into(),
                commands: c.into(),
                relation: None,
                remote_unit: String::new(),
                remote_app: String::new(),
                force_remote_unit: false,
            },
            relation: String::new(),
        })
    }

    // cmd/jujud/run/run.go `Init`.
    #[test]
    fn takes_the_unit_and_commands_as_juju_exec_does() {
        let one = strings(&["probe/0"]);
        let p = |a: &[&str]| parse("juju-exec", &strings(a), None, &one);
        assert_eq!(p(&["probe/0", "a; b | c"]), unit("probe/0", "a; b | c"));
        assert_eq!(
            p(&["unit-probe-0", "hostname"]),
            unit("probe/0", "hostname")
        );
        assert_eq!(
            p(&["-u", "probe/0", "--", "echo", "a b", "$x"]),
            unit("probe/0", "echo \"a b\" \"\\$x\"")
        );
        // Neither a unit nor a tag: the single unit on the machine.
        assert_eq!(p(&["hostname"]), unit("probe/0", "hostname"));
        assert_eq!(p(&["-u", "", "hostname"]), unit("probe/0", "hostname"));
        assert_eq!(
            p(&["--no-context", "--", "hostname", "-f"]),
            Ok(Invocation::NoContext("hostname -f".into()))
        );
        assert_eq!(p(&["--help"]), Ok(Invocation::Help));
        assert_eq!(p(&[]), Err("missing unit-name".into()));
        assert_eq!(p(&["probe/0"]), Err("missing commands".into()));
        assert_eq!(
            p(&["--no-context", "-u", "probe/0", "x"]),
            Err("-no-context cannot be passed with an explicit unit-name (-u \"probe/0\")".into())
        );
        let two = strings(&["a/0", "b/0"]);
        assert_eq!(
            parse("juju-exec", &strings(&["hostname"]), None, &two),
            Err("\"hostname\" is not a valid tag".into())
        );
        assert_eq!(
            parse("juju-exec", &strings(&["-u", "", "x"]), None, &two),
            Err("no unit".into())
        );
    }

    #[test]
    fn refuses_to_run_inside_a_hook_context() {
        let args = strings(&["probe/0", "true"]);
        assert_eq!(
            parse("juju-run", &args, Some("probe/0-install-1"), &[]),
            Err(
                "juju-run cannot be called from within a hook, have context \"probe/0-install-1\""
                    .into()
            )
        );
    }

    #[test]
    fn unit_tags_and_command_strings() {
        assert_eq!(parse_unit_tag("unit-etcd-tls-12"), Ok("etcd-tls/12".into()));
        assert!(parse_unit_tag("unit-etcd-01").is_err());
        assert_eq!(
            command_string(&strings(&["a", "", "b\\c"])),
            "a  \"b\\\\c\""
        );
        assert_eq!(super::check_relation_id("db:7"), Ok(Some(7)));
        assert_eq!(super::check_relation_id(""), Ok(None));
        assert_eq!(
            super::check_relation_id("db"),
            Err("invalid relation id".into())
        );
    }
}

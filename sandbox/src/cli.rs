//! The `sandbox` command line: Juju's verbs (3.x names, 2.x spellings as aliases).

use crate::api::{RelationEnds, Request};
use crate::client::{call, home};
use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// A local Juju-like model whose machines are systemd-nspawn containers.
///
/// The model lives under $SANDBOX_HOME (default /var/lib/etcd-sandbox); `sandbox bootstrap`
/// starts its controller, every other verb talks to it.
#[derive(Parser, Debug)]
#[command(name = "sandbox", version, about, long_about = None)]
pub struct Cli {
    /// The verb.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Output formats of `status`, `run` and `show-task`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Juju's tables.
    Tabular,
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

/// The verbs.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Start the controller (builds the machine image on first use); idempotent.
    Bootstrap {
        /// The Juju version to imitate: 2.9.x for Juju 2.9 (no secrets, 2.9's status and
        /// verbs), 3.x.y otherwise; fixed for the model's life.
        #[arg(long)]
        agent_version: Option<String>,
    },
    /// Deploy a charm (a directory or a .charm file) as a new application.
    Deploy {
        /// Path of the charm.
        charm: String,
        /// Application name (default: the charm's name).
        app: Option<String>,
        /// Number of units.
        #[arg(short = 'n', long = "num-units", default_value_t = 1)]
        num_units: u32,
        /// Config as key=value, or a YAML file of `<app>: {key: value}` (repeatable).
        #[arg(long)]
        config: Vec<String>,
        /// A resource as name=path (repeatable).
        #[arg(long)]
        resource: Vec<String>,
        /// Charm storage as <store>=<directive>, the directive a comma list of pool, count and
        /// size, e.g. data=rootfs,2G (repeatable).
        #[arg(long)]
        storage: Vec<String>,
        /// Detached storage to attach to the unit: ids, comma separated (only with -n 1).
        #[arg(long, value_delimiter = ',')]
        attach_storage: Vec<String>,
    },
    /// Add units (each on a new machine) to an application.
    AddUnit {
        /// Application name.
        app: String,
        /// Number of units to add.
        #[arg(short = 'n', long = "num-units", default_value_t = 1)]
        num_units: u32,
        /// Charm storage as <store>=<directive>, e.g. data=2G (repeatable).
        #[arg(long)]
        storage: Vec<String>,
        /// Detached storage to attach to the new unit: ids, comma separated (only with -n 1).
        #[arg(long, value_delimiter = ',')]
        attach_storage: Vec<String>,
    },
    /// Remove units; each runs its teardown hooks, then its machine is destroyed.
    RemoveUnit {
        /// Unit names, e.g. etcd/1.
        #[arg(required = true)]
        units: Vec<String>,
        /// Remove the units' storage with them, instead of detaching it (kept with its data).
        #[arg(long)]
        destroy_storage: bool,
    },
    /// List the model's storage: each instance's unit, status and location.
    #[command(visible_alias = "list-storage")]
    Storage {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Tabular)]
        format: Format,
    },
    /// Integrate two applications (`app` or `app:endpoint`).
    #[command(visible_aliases = ["add-relation", "relate"])]
    Integrate(RelationEnds),
    /// Remove an integration.
    RemoveRelation(RelationEnds),
    /// Show or change an application's config: `config app`, `config app key`, `config app k=v…`.
    Config {
        /// Application name.
        app: String,
        /// A key to show, or key=value pairs to set.
        args: Vec<String>,
        /// Reset the provided comma delimited keys to their defaults (repeatable).
        #[arg(long, action = clap::ArgAction::Append)]
        reset: Vec<String>,
        /// Output format for `config app`.
        #[arg(long, value_enum, default_value_t = Format::Yaml)]
        format: Format,
    },
    /// Attach a resource file: `attach-resource app name=path`.
    AttachResource {
        /// Application name.
        app: String,
        /// name=path.
        resource: String,
    },
    /// Upgrade an application's charm from a path.
    #[command(visible_alias = "upgrade-charm")]
    Refresh {
        /// Application name.
        app: String,
        /// Path of the new charm.
        #[arg(long)]
        path: String,
    },
    /// Juju 3: run an action and wait for its result: `run <unit> <action> [k=v…]`. Juju 2.9:
    /// run a command in a hook context, as exec: `run --unit <unit> <command>`.
    Run {
        /// Juju 2.9: the unit to run the command on.
        #[arg(long = "unit", short = 'u')]
        on_unit: Option<String>,
        /// Juju 3: the unit, the action and its params as key=value (dotted keys nest; values
        /// parsed as YAML). Juju 2.9: the command (after `--` when it has flags).
        args: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Yaml)]
        format: Format,
        /// How long to wait, e.g. 10m.
        #[arg(long, default_value = "10m")]
        wait: String,
    },
    /// Queue an action and print its id (Juju 2.x).
    RunAction {
        /// Unit name.
        unit: String,
        /// Action name.
        action: String,
        /// Params as key=value.
        params: Vec<String>,
        /// Wait for the result instead of printing the id.
        #[arg(long)]
        wait: bool,
    },
    /// Juju 2.x `action` verbs: `action do <unit> <action> [k=v…]`, `action fetch <id>`.
    #[command(subcommand)]
    Action(ActionCmd),
    /// Show a task's result (Juju 3).
    ShowTask {
        /// Task id.
        id: u64,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Yaml)]
        format: Format,
    },
    /// Show an action's result (Juju 2.x).
    ShowActionOutput {
        /// Task id.
        id: u64,
        /// Wait up to this long for it to finish, e.g. 1m.
        #[arg(long)]
        wait: Option<String>,
    },
    /// Show the model.
    Status {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Tabular)]
        format: Format,
    },
    /// Show the model's log.
    DebugLog {
        /// Show the whole log, not only the last lines.
        #[arg(long)]
        replay: bool,
        /// Only lines of these units or machines (e.g. etcd/0).
        #[arg(long)]
        include: Vec<String>,
        /// Print what is there and exit instead of following.
        #[arg(long)]
        no_tail: bool,
        /// How many lines to show first.
        #[arg(short = 'n', long = "lines", default_value_t = 10)]
        lines: usize,
    },
    /// Run a command in a hook context on a unit: `exec --unit u -- cmd…`.
    Exec {
        /// Unit name.
        #[arg(long, short = 'u')]
        unit: String,
        /// The command.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Run a command (or a shell) on a unit's machine as root.
    Ssh {
        /// Unit name.
        unit: String,
        /// The command (default: an interactive shell).
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Retry a failed hook now (or skip it with --no-retry).
    Resolved {
        /// Unit name.
        unit: String,
        /// Skip the failed hook.
        #[arg(long)]
        no_retry: bool,
    },
    /// Show or set model config (e.g. update-status-hook-interval=30s).
    ModelConfig {
        /// key=value pairs.
        args: Vec<String>,
    },
    /// Wait until every unit is idle with the given workload status.
    WaitFor {
        /// The workload status every unit must have.
        #[arg(long, default_value = "active")]
        status: String,
        /// Give up after this long (e.g. 10m).
        #[arg(long, default_value = "10m")]
        timeout: String,
        /// How many units the model must have (default: any).
        #[arg(long)]
        units: Option<usize>,
    },
    /// Tear the model down: machines, namespaces, mounts, the controller.
    #[command(visible_alias = "kill-controller")]
    Destroy,
    /// Fault: abrupt power loss of a unit's machine (the unit becomes lost).
    KillMachine {
        /// Unit name.
        unit: String,
    },
    /// Fault: reboot a unit's machine (or power it on after kill-machine).
    RestartMachine {
        /// Unit name.
        unit: String,
    },
    /// Fault: cut a unit's machine off the network, or only from some units.
    Partition {
        /// Unit name.
        unit: String,
        /// Only cut traffic with these units.
        #[arg(long)]
        from: Vec<String>,
    },
    /// Fault: undo partitions (of one unit, or all).
    Heal {
        /// Unit name (default: all).
        unit: Option<String>,
    },
    /// Fault: move a machine (number or unit name) to a new address on the sandbox network;
    /// its units run config-changed, as under Juju. Prints the old and new address.
    ChangeAddress {
        /// Machine number or unit name.
        target: String,
    },
    /// Remove a machine (number or unit name); --force for a lost one.
    RemoveMachine {
        /// Machine number or unit name.
        target: String,
        /// Remove without running the unit's hooks.
        #[arg(long)]
        force: bool,
    },
    /// Run the controller in the foreground (used by bootstrap).
    #[command(hide = true)]
    Controller,
}

/// Juju 2.x action verbs.
#[derive(Subcommand, Debug)]
pub enum ActionCmd {
    /// Queue an action and print its id.
    Do {
        /// Unit name.
        unit: String,
        /// Action name.
        action: String,
        /// Params as key=value.
        params: Vec<String>,
    },
    /// Show an action's result.
    Fetch {
        /// Task id.
        id: u64,
        /// Wait up to this long for it to finish, e.g. 1m.
        #[arg(long)]
        wait: Option<String>,
    },
}

/// Runs the command line; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    if !matches!(cli.cmd, Cmd::Controller) {
        crate::machine::sys::default_sigpipe();
    }
    let home = home();
    let h = home.as_path();
    match cli.cmd {
        Cmd::Bootstrap { agent_version } => bootstrap(h, agent_version.as_deref()),
        Cmd::Controller => crate::controller::serve(h).map(|_| 0),
        Cmd::Deploy {
            charm,
            app,
            num_units,
            config,
            resource,
            storage,
            attach_storage,
        } => {
            let config = parse_config_args(&config, app.as_deref())?;
            let resources = parse_pairs(&resource, "--resource name=path")?
                .into_iter()
                .map(|(k, v)| Ok((k, local_path(&v)?)))
                .collect::<anyhow::Result<_>>()?;
            let v = call(
                h,
                Request::Deploy {
                    charm: local_path(&charm)?,
                    app,
                    num_units,
                    config,
                    resources,
                    storage,
                    attach_storage,
                },
            )?;
            println!(
                "Deployed {:?} with {} unit(s): {}",
                v["application"].as_str().unwrap_or(""),
                num_units,
                join(&v["units"])
            );
            Ok(0)
        }
        Cmd::AddUnit {
            app,
            num_units,
            storage,
            attach_storage,
        } => {
            let v = call(
                h,
                Request::AddUnit {
                    app,
                    num_units,
                    storage,
                    attach_storage,
                },
            )?;
            println!("Added {}", join(&v["units"]));
            Ok(0)
        }
        Cmd::RemoveUnit {
            units,
            destroy_storage,
        } => remove_units(h, units, destroy_storage),
        Cmd::Storage { format } => storage(h, format),
        Cmd::Integrate(ends) => call(h, Request::Integrate(ends)).map(|_| 0),
        Cmd::RemoveRelation(ends) => call(h, Request::RemoveRelation(ends)).map(|_| 0),
        Cmd::Config {
            app,
            args,
            reset,
            format,
        } => config(h, app, args, reset, format),
        Cmd::AttachResource { app, resource } => attach_resource(h, app, resource),
        Cmd::Refresh { app, path } => refresh(h, app, path),
        Cmd::Run {
            on_unit,
            args,
            format,
            wait,
        } => juju_run(h, on_unit, args, format, wait),
        Cmd::RunAction {
            unit,
            action,
            params,
            wait,
        } => {
            let id = queue_action(h, &unit, &action, &params)?;
            if wait {
                print_task(&wait_task(h, id, Duration::from_secs(600))?)?;
            } else {
                println!("Action queued with id: {id:?}");
            }
            Ok(0)
        }
        Cmd::Action(ActionCmd::Do {
            unit,
            action,
            params,
        }) => {
            let id = queue_action(h, &unit, &action, &params)?;
            println!("Action queued with id: {id}");
            Ok(0)
        }
        Cmd::Action(ActionCmd::Fetch { id, wait }) | Cmd::ShowActionOutput { id, wait } => {
            let t = match wait {
                Some(w) => wait_task(h, id, duration(&w)?)?,
                None => call(h, Request::ShowTask { id })?,
            };
            print_task(&t)?;
            Ok(0)
        }
        Cmd::ShowTask { id, format } => {
            let t = call(h, Request::ShowTask { id })?;
            print_value(&task_view(&t), format)?;
            Ok(0)
        }
        Cmd::Status { format } => status(h, format),
        Cmd::DebugLog {
            replay,
            include,
            no_tail,
            lines,
        } => debug_log(h, replay, &include, no_tail, lines),
        Cmd::Exec { unit, command } => exec(h, unit, &command),
        Cmd::Ssh { unit, command } => ssh(h, &unit, &command),
        Cmd::Resolved { unit, no_retry } => {
            call(h, Request::Resolved { unit, no_retry }).map(|_| 0)
        }
        Cmd::ModelConfig { args } => {
            let set = parse_pairs(&args, "key=value")?;
            let v = call(h, Request::ModelConfig { set })?;
            if args.is_empty() {
                print_value(&v, Format::Yaml)?;
            }
            Ok(0)
        }
        Cmd::WaitFor {
            status,
            timeout,
            units,
        } => wait_for(h, &status, duration(&timeout)?, units),
        Cmd::Destroy => destroy(h),
        Cmd::KillMachine { unit } => call(h, Request::KillMachine { unit }).map(|_| 0),
        Cmd::RestartMachine { unit } => call(h, Request::RestartMachine { unit }).map(|_| 0),
        Cmd::Partition { unit, from } => call(h, Request::Partition { unit, from }).map(|_| 0),
        Cmd::Heal { unit } => call(h, Request::Heal { unit }).map(|_| 0),
        Cmd::ChangeAddress { target } => {
            let moved = call(h, Request::ChangeAddress { target })?;
            println!(
                "{} -> {}",
                moved["old"].as_str().unwrap_or(""),
                moved["new"].as_str().unwrap_or("")
            );
            Ok(0)
        }
        Cmd::RemoveMachine { target, force } => {
            call(h, Request::RemoveMachine { target, force }).map(|_| 0)
        }
    }
}

/// `remove-unit`, printing what happens to each unit's storage.
fn remove_units(h: &Path, units: Vec<String>, destroy_storage: bool) -> anyhow::Result<i32> {
    let v = call(
        h,
        Request::RemoveUnit {
            units: units.clone(),
            destroy_storage,
        },
    )?;
    let verb = if destroy_storage { "remove" } else { "detach" };
    for u in units {
        println!("will remove unit {u}");
        for id in v["storage"][&u].as_array().into_iter().flatten() {
            println!("- will {verb} storage {}", id.as_str().unwrap_or_default());
        }
    }
    Ok(0)
}

/// `storage`: the model's storage instances.
fn storage(h: &Path, format: Format) -> anyhow::Result<i32> {
    let m = model(h)?;
    use crate::controller::storage::listing;
    match format {
        Format::Tabular if m.storage.instances.is_empty() => {
            eprintln!("No storage to display.");
        }
        Format::Tabular => print!("{}", listing::tabular(&m)),
        Format::Yaml => print_value(&serde_json::to_value(listing::list(&m))?, format)?,
        Format::Json => println!("{}", serde_json::to_string(&listing::list(&m))?),
    }
    Ok(0)
}

/// `refresh`: `app` runs the charm at `path`.
fn refresh(h: &Path, app: String, path: String) -> anyhow::Result<i32> {
    let v = call(
        h,
        Request::Refresh {
            app: app.clone(),
            path: local_path(&path)?,
        },
    )?;
    println!(
        "Added local charm {app}, revision {}, to the model",
        v["revision"]
    );
    Ok(0)
}

/// `run`: an action, waited for (Juju 3), or with `--unit` commands (Juju 2.9).
fn juju_run(
    h: &Path,
    on_unit: Option<String>,
    args: Vec<String>,
    format: Format,
    wait: String,
) -> anyhow::Result<i32> {
    let juju29 = agent_version(h)?.starts_with("2.");
    let (unit, action, params) = match (on_unit, juju29, args.as_slice()) {
        (Some(unit), true, _) => return exec(h, unit, &args),
        (Some(_), false, _) => bail!(
            "`run --unit` is Juju 2.9's; in Juju 3 run a command with `sandbox exec \
             --unit <unit> -- <command>` (or bootstrap with --agent-version 2.9.x)"
        ),
        (None, true, _) => bail!(
            "in Juju 2.9 `run` runs commands (`sandbox run --unit <unit> <command>`); \
             run an action with `sandbox run-action <unit> <action> --wait`"
        ),
        (None, false, [unit, action, params @ ..]) => (unit, action, params),
        (None, false, _) => bail!("usage: sandbox run <unit> <action> [key=value…]"),
    };
    let id = queue_action(h, unit, action, params)?;
    println!(
        "Running operation {id} with 1 task\n  - task {id} on unit-{}\n\nWaiting for task {id}...",
        unit.replace('/', "-")
    );
    let task = wait_task(h, id, duration(&wait)?)?;
    print_value(&task["results"], format)?;
    if task["status"] == "failed" {
        eprintln!("ERROR the following task failed:\n id {id:?} with return code {}\n\nuse 'sandbox show-task {id}' to inspect the failure", task["code"]);
        return Ok(1);
    }
    Ok(0)
}

/// `status`, in Juju's shapes.
fn status(h: &Path, format: Format) -> anyhow::Result<i32> {
    let m = model(h)?;
    match format {
        Format::Tabular => print!("{}", crate::status::tabular(&m)),
        f => print_value(&crate::status::to_value(&m), f)?,
    }
    Ok(0)
}

/// `attach-resource app name=path`.
fn attach_resource(h: &Path, app: String, resource: String) -> anyhow::Result<i32> {
    let (name, path) = resource
        .split_once('=')
        .context("give the resource as name=path")?;
    call(
        h,
        Request::AttachResource {
            app,
            name: name.into(),
            path: local_path(path)?,
        },
    )
    .map(|_| 0)
}

fn join(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn duration(s: &str) -> anyhow::Result<Duration> {
    crate::controller::lifecycle::parse_duration(s)
        .map(Duration::from_secs_f64)
        .with_context(|| format!("{s:?} is not a duration: use e.g. 90s, 10m or 1h"))
}

/// A file named on the command line, made absolute here: the controller runs elsewhere (its own
/// cwd), as Juju's client reads local charms and resources itself.
fn local_path(path: &str) -> anyhow::Result<String> {
    let p = std::fs::canonicalize(path)
        .with_context(|| format!("cannot use {path}: check that the file or directory exists"))?;
    Ok(p.to_string_lossy().into_owned())
}

fn parse_pairs(args: &[String], what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    args.iter()
        .map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("{a:?}: expected {what}"))
        })
        .collect()
}

/// `--config k=v` pairs, or YAML files of `<app>: {k: v}` (as `juju deploy --config` takes).
fn parse_config_args(
    args: &[String],
    app: Option<&str>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for a in args {
        if let Some((k, v)) = a.split_once('=') {
            out.insert(k.to_string(), v.to_string());
            continue;
        }
        let text = std::fs::read_to_string(a)
            .with_context(|| format!("--config {a}: not key=value and not a readable file"))?;
        let y: Value =
            serde_yaml_ng::from_str(&text).with_context(|| format!("{a} is not valid YAML"))?;
        let section = app
            .and_then(|n| y.get(n))
            .or_else(|| y.as_object().and_then(|m| m.values().next()))
            .cloned()
            .unwrap_or(Value::Null);
        for (k, v) in section.as_object().into_iter().flatten() {
            out.insert(
                k.clone(),
                v.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v.to_string()),
            );
        }
    }
    Ok(out)
}

/// Action params from `k=v` args: dotted keys nest, values are parsed as YAML.
pub fn action_params(args: &[String]) -> anyhow::Result<Value> {
    let mut root = json!({});
    for a in args {
        let (k, v) = a
            .split_once('=')
            .with_context(|| format!("argument {a:?} must be of the form key=value"))?;
        let value: Value = serde_yaml_ng::from_str(v).unwrap_or_else(|_| Value::from(v));
        let value = if v.is_empty() { Value::from("") } else { value };
        let parts: Vec<&str> = k.split('.').collect();
        let mut cur = &mut root;
        for p in &parts[..parts.len() - 1] {
            cur = cur
                .as_object_mut()
                .context("conflicting keys")?
                .entry(p.to_string())
                .or_insert_with(|| json!({}));
        }
        cur.as_object_mut()
            .context("conflicting keys")?
            .insert(parts[parts.len() - 1].to_string(), value);
    }
    Ok(root)
}

fn queue_action(h: &Path, unit: &str, action: &str, params: &[String]) -> anyhow::Result<u64> {
    let params = action_params(params)?;
    let v = call(
        h,
        Request::RunAction {
            unit: unit.into(),
            action: action.into(),
            params,
        },
    )?;
    v["id"].as_u64().context("no task id in the answer")
}

/// Waits for a task to finish, echoing its `action-log` lines to stderr as Juju 3's `run` does.
fn wait_task(h: &Path, id: u64, timeout: Duration) -> anyhow::Result<Value> {
    let start = Instant::now();
    let mut shown = 0;
    loop {
        let t = call(h, Request::ShowTask { id })?;
        let log = t["log"].as_array().cloned().unwrap_or_default();
        for entry in log.iter().skip(shown) {
            let when = entry[0].as_f64().unwrap_or(0.0) as u64 % 86400;
            let msg = entry[1].as_str().unwrap_or_default();
            eprintln!(
                "{:02}:{:02}:{:02} {msg}",
                when / 3600,
                (when / 60) % 60,
                when % 60
            );
        }
        shown = log.len();
        if matches!(t["status"].as_str(), Some("completed" | "failed"))
            && t["completed"].as_f64().unwrap_or(0.0) > 0.0
        {
            return Ok(t);
        }
        if start.elapsed() > timeout {
            bail!(
                "timed out waiting for task {id} (status {}): see `sandbox show-task {id}`",
                t["status"]
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn task_view(t: &Value) -> Value {
    let mut results = t["results"].clone();
    if let Some(r) = results.as_object_mut() {
        r.insert("return-code".into(), t["code"].clone());
        for k in ["stdout", "stderr"] {
            if t[k].as_str().is_some_and(|s| !s.is_empty()) {
                r.insert(k.into(), t[k].clone());
            }
        }
    }
    let log: Vec<Value> = t["log"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e[1].clone())
        .collect();
    json!({
        "id": t["id"].to_string(), "action": t["action"], "unit": t["unit"], "status": t["status"],
        "message": t["message"], "results": results, "log": log,
        "timing": {"enqueued": t["enqueued"], "started": t["started"], "completed": t["completed"]},
    })
}

/// The Juju 2.x `show-action-output` layout.
fn print_task(t: &Value) -> anyhow::Result<()> {
    let mut v = task_view(t);
    v["UnitId"] = t["unit"].clone();
    print_value(&v, Format::Yaml)
}

fn print_value(v: &Value, f: Format) -> anyhow::Result<()> {
    match f {
        Format::Json => println!("{}", serde_json::to_string(v)?),
        _ => print!("{}", crate::tools::json_to_yaml(v)),
    }
    Ok(())
}

fn model(h: &Path) -> anyhow::Result<crate::controller::model::Model> {
    Ok(serde_json::from_value(call(h, Request::Status)?)?)
}

/// What `config <app> …` asks: a key to show, values to set, keys to reset; checked as Juju's
/// `ConfigCommandBase.Init` checks them (cmd/juju/config/config.go).
#[derive(Debug, PartialEq, Eq)]
struct ConfigAsk {
    get: Option<String>,
    set: BTreeMap<String, String>,
    reset: Vec<String>,
}

fn config_ask(args: &[String], reset: &[String]) -> anyhow::Result<ConfigAsk> {
    let mut ask = ConfigAsk {
        get: None,
        set: BTreeMap::new(),
        reset: vec![],
    };
    for value in reset {
        for k in value.trim_matches(',').split(',') {
            if k.contains('=') {
                bail!("--reset accepts a comma delimited set of keys \"a,b,c\", received: {k:?}");
            }
            ask.reset.push(k.to_string());
        }
    }
    let mut gets = vec![];
    for arg in args {
        match arg.split_once('=') {
            Some(("", _)) => bail!("expected \"key=value\", got {arg:?}"),
            Some((k, v)) => {
                if ask.set.insert(k.to_string(), v.to_string()).is_some() {
                    bail!("key {k:?} specified more than once");
                }
            }
            None => gets.push(arg.clone()),
        }
    }
    let mut actions = vec![];
    if !ask.reset.is_empty() {
        actions.push("use --reset flag");
    }
    if !gets.is_empty() {
        actions.push("get value");
    }
    if !ask.set.is_empty() {
        actions.push("set key=value pairs");
    }
    if actions.len() > 1 && !gets.is_empty() {
        let (last, rest) = actions.split_last().expect("two or more");
        bail!("cannot {} and {last} simultaneously", rest.join(", "));
    }
    if gets.len() > 1 {
        bail!("cannot specify multiple keys to get");
    }
    if let Some(k) = ask.reset.iter().find(|k| ask.set.contains_key(*k)) {
        bail!("cannot set and reset key {k:?} simultaneously");
    }
    ask.get = gets.pop();
    Ok(ask)
}

fn config(
    h: &Path,
    app: String,
    args: Vec<String>,
    reset: Vec<String>,
    format: Format,
) -> anyhow::Result<i32> {
    let ask = config_ask(&args, &reset)?;
    let changes = !ask.set.is_empty() || !ask.reset.is_empty();
    let v = call(
        h,
        Request::Config {
            app,
            set: ask.set,
            reset: ask.reset,
        },
    )?;
    if changes {
        return Ok(0);
    }
    match ask.get {
        Some(key) => {
            let val = &v["settings"][&key]["value"];
            match val {
                Value::Null => {}
                Value::String(s) => println!("{s}"),
                other => println!("{other}"),
            }
        }
        None => print_value(&v, format)?,
    }
    Ok(0)
}

fn ssh(h: &Path, unit: &str, command: &[String]) -> anyhow::Result<i32> {
    let m = model(h)?;
    let u = m
        .units
        .get(unit)
        .with_context(|| format!("unit {unit:?} not found"))?;
    let handle = m
        .machines
        .get(&u.machine)
        .and_then(|r| r.handle.clone())
        .context("the unit's machine is not running")?;
    let pid = handle.pid1().context("the unit's machine is not running")?;
    // `-r -w` take the machine's root and cwd; a host path for --wd would not resolve inside.
    let script = if command.is_empty() {
        "cd /root && exec bash -l".to_string()
    } else {
        format!("cd /root && {}", command.join(" "))
    };
    let st = std::process::Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-a", "-r", "-w", "--", "env", "-i"])
        .args([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME=/root",
            "TERM=xterm",
            "LANG=C.UTF-8",
        ])
        .args(["/bin/sh", "-c", &script])
        .status()?;
    Ok(st.code().unwrap_or(1))
}

/// Runs a command line in a hook context on a unit; prints its output, answers its exit code.
fn exec(h: &Path, unit: String, command: &[String]) -> anyhow::Result<i32> {
    let v = call(
        h,
        Request::Exec {
            unit,
            command: command.join(" "),
        },
    )?;
    let id = v["id"].as_u64().context("no task id")?;
    let t = wait_task(h, id, Duration::from_secs(600))?;
    print!("{}", t["stdout"].as_str().unwrap_or(""));
    eprint!("{}", t["stderr"].as_str().unwrap_or(""));
    Ok(t["code"].as_i64().unwrap_or(1) as i32)
}

/// The Juju version the running model imitates.
fn agent_version(h: &Path) -> anyhow::Result<String> {
    let v = call(h, Request::Ping)?;
    Ok(v["agent-version"]
        .as_str()
        .unwrap_or(crate::controller::model::DEFAULT_AGENT_VERSION)
        .to_string())
}

fn bootstrap(h: &Path, version: Option<&str>) -> anyhow::Result<i32> {
    if let Some(v) = version {
        crate::controller::model::check_agent_version(v).map_err(anyhow::Error::msg)?;
    }
    if let Ok(answer) = crate::client::call_raw(h, Request::Ping) {
        if let Some(e) = answer.error {
            bail!(
                "something other than a sandbox controller answers at {}: {e}",
                h.display()
            );
        }
        let running = answer.data["agent-version"].as_str().unwrap_or_default();
        same_version(h, running, version)?;
        println!("sandbox controller is already running at {}", h.display());
        let running = crate::controller::Build::from_value(&answer.data["build"]);
        let ours = std::env::current_exe()
            .ok()
            .and_then(|p| crate::controller::Build::of(&p));
        if let Some(note) = older_build_note(running, ours, h) {
            eprintln!("{note}");
        }
        return Ok(0);
    }
    if let Some(m) = crate::controller::model::Model::load(&crate::controller::model_path(h))? {
        same_version(h, &m.agent_version, version)?;
    }
    crate::controller::private::dir(h)?;
    crate::controller::private::dir(&h.join("logs"))?;
    let mut progress = |l: &str| eprintln!("{l}");
    crate::machine::ensure_rootfs(&crate::machine::RootfsRecipe::default(), &mut progress)?;
    let start = Instant::now();
    let log = crate::controller::private::append(&h.join("logs/controller.log"))?;
    use std::os::unix::process::CommandExt;
    let mut controller = std::process::Command::new(std::env::current_exe()?);
    if let Some(v) = version {
        controller.env(crate::controller::AGENT_VERSION_VAR, v);
    }
    controller
        .arg("controller")
        .env("SANDBOX_HOME", h)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("cannot start the controller")?;
    while start.elapsed() < Duration::from_secs(120) {
        if call(h, Request::Ping).is_ok() {
            println!(
                "sandbox controller started at {} ({:.1}s)",
                h.display(),
                start.elapsed().as_secs_f64()
            );
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "the controller did not start: see {}",
        h.join("logs/controller.log").display()
    )
}

/// Refuses an `--agent-version` other than the one the existing model imitates.
fn same_version(h: &Path, existing: &str, wanted: Option<&str>) -> anyhow::Result<()> {
    match wanted {
        Some(v) if v != existing => bail!(
            "the model at {} imitates Juju {existing}, and a model keeps its version: \
             `sandbox destroy` it first to bootstrap Juju {v}",
            h.display()
        ),
        _ => Ok(()),
    }
}

/// A warning when the running controller is an older build than this binary.
fn older_build_note(
    running: Option<crate::controller::Build>,
    ours: Option<crate::controller::Build>,
    h: &Path,
) -> Option<String> {
    let (running, ours) = (running?, ours?);
    if running == ours || running.modified >= ours.modified {
        return None;
    }
    let mins = (ours.modified - running.modified).div_ceil(60);
    Some(format!(
        "WARNING the running controller is an older build than this sandbox binary (built {mins} \
         min earlier): its hooks and hook tools behave as that build's do. To switch, keeping the \
         model and its machines: kill $(cat {}) && sandbox bootstrap",
        h.join("run/controller.pid").display()
    ))
}

fn destroy(h: &Path) -> anyhow::Result<i32> {
    match crate::client::call_raw(h, Request::Destroy) {
        Ok(answer) => {
            if let Some(e) = answer.error {
                bail!("{e}");
            }
        }
        Err(e) => {
            // No controller: sweep whatever a crashed one left behind.
            eprintln!("{e:#}; sweeping leftovers");
            let m = crate::controller::model::Model::load(&crate::controller::model_path(h))?
                .unwrap_or_else(|| crate::controller::model::Model::new(h));
            crate::machine::sweep(&m.prefix, h)?;
            crate::machine::Lab {
                prefix: m.prefix.clone(),
                subnet: m.subnet,
            }
            .destroy()?;
            let _ = std::fs::remove_file(crate::controller::model_path(h));
            let _ = std::fs::remove_dir_all(h.join("machines"));
        }
    }
    // Wait for the controller to exit so nothing is left running.
    let start = Instant::now();
    while call(h, Request::Ping).is_ok() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("sandbox destroyed");
    Ok(0)
}

fn wait_for(h: &Path, want: &str, timeout: Duration, units: Option<usize>) -> anyhow::Result<i32> {
    let start = Instant::now();
    let mut last_print = Instant::now() - Duration::from_secs(10);
    loop {
        let m = model(h)?;
        let mut pending = vec![];
        for u in m.units.values() {
            let (ws, wm) = crate::status::shown_workload(u);
            if ws == "error" {
                eprintln!("ERROR unit {} is in error: {wm}: see `sandbox debug-log --replay --include {}`", u.name, u.name);
                return Ok(1);
            }
            if u.agent_message
                .starts_with(crate::controller::PROVISION_FAILED)
            {
                eprintln!(
                    "ERROR unit {}: {}: see `sandbox debug-log --replay`, fix the cause, then \
                     `sandbox remove-unit {}` and `sandbox add-unit`",
                    u.name, u.agent_message, u.name
                );
                return Ok(1);
            }
            let busy = !u
                .queue
                .iter()
                .all(|e| *e == crate::controller::model::Event::UpdateStatus)
                || u.agent != crate::controller::model::Agent::Idle;
            if busy || ws != want {
                pending.push(format!("{} ({ws}: {wm})", u.name));
            }
        }
        if units.is_some_and(|n| m.units.len() != n) {
            pending.push(format!(
                "{} units, want {}",
                m.units.len(),
                units.unwrap_or(0)
            ));
        }
        if pending.is_empty() && !m.units.is_empty() {
            eprintln!(
                "all {} units are {want} and idle ({:.0}s)",
                m.units.len(),
                start.elapsed().as_secs_f64()
            );
            return Ok(0);
        }
        if start.elapsed() > timeout {
            eprintln!(
                "ERROR timed out after {:.0}s waiting for: {}",
                start.elapsed().as_secs_f64(),
                pending.join(", ")
            );
            return Ok(1);
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            eprintln!(
                "[{:>4.0}s] waiting for: {}",
                start.elapsed().as_secs_f64(),
                pending.join(", ")
            );
            last_print = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn debug_log(
    h: &Path,
    replay: bool,
    include: &[String],
    no_tail: bool,
    n: usize,
) -> anyhow::Result<i32> {
    let path = crate::controller::log_path(h);
    let tags: Vec<String> = include
        .iter()
        .map(|i| {
            if i.contains('/') {
                format!("unit-{}:", i.replace('/', "-"))
            } else {
                format!("{i}:")
            }
        })
        .collect();
    let keep = |l: &str| tags.is_empty() || tags.iter().any(|t| l.starts_with(t.as_str()));
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no model log at {}: run `sandbox bootstrap` first",
            path.display()
        )
    })?;
    let lines: Vec<&str> = text.lines().filter(|l| keep(l)).collect();
    let from = if replay {
        0
    } else {
        lines.len().saturating_sub(n)
    };
    let mut out = std::io::stdout().lock();
    for l in &lines[from..] {
        writeln!(out, "{l}")?;
    }
    if no_tail {
        return Ok(0);
    }
    let mut pos = text.len() as u64;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        if (data.len() as u64) > pos {
            for l in String::from_utf8_lossy(&data[pos as usize..])
                .lines()
                .filter(|l| keep(l))
            {
                writeln!(out, "{l}")?;
            }
            out.flush()?;
            pos = data.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{config_ask, older_build_note};
    use crate::controller::Build;
    use std::path::Path;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// cmd/juju/config/config.go `Init`, `parseResetKeys`, `validateActions`.
    #[test]
    fn config_takes_reset_and_set_as_juju_does() {
        let ask = config_ask(&strings(&["port=1"]), &strings(&["a,b,", ",c"])).expect("ask");
        assert_eq!(ask.reset, ["a", "b", "c"]);
        assert_eq!(ask.set["port"], "1");
        let err = |args: &[&str], reset: &[&str]| {
            format!(
                "{}",
                config_ask(&strings(args), &strings(reset)).expect_err("refused")
            )
        };
        assert_eq!(
            err(&[], &["a=1"]),
            "--reset accepts a comma delimited set of keys \"a,b,c\", received: \"a=1\""
        );
        assert_eq!(
            err(&["a=1"], &["a"]),
            "cannot set and reset key \"a\" simultaneously"
        );
        assert_eq!(
            err(&["a"], &["b"]),
            "cannot use --reset flag and get value simultaneously"
        );
        assert_eq!(
            err(&["a", "b=1"], &[]),
            "cannot get value and set key=value pairs simultaneously"
        );
        assert_eq!(err(&["a", "b"], &[]), "cannot specify multiple keys to get");
        assert_eq!(
            err(&["a=1", "a=2"], &[]),
            "key \"a\" specified more than once"
        );
        assert_eq!(err(&["=1"], &[]), "expected \"key=value\", got \"=1\"");
    }

    #[test]
    fn bootstrap_says_when_the_controller_is_an_older_build() {
        let b = |size, modified| Some(Build { size, modified });
        let h = Path::new("/h");
        assert!(older_build_note(b(10, 100), b(10, 100), h).is_none());
        assert!(older_build_note(b(10, 200), b(11, 100), h).is_none());
        let note = older_build_note(b(10, 100), b(11, 700), h).expect("older");
        assert!(
            note.contains("older build") && note.contains("built 10 min earlier"),
            "{note}"
        );
        assert!(note.contains("kill $(cat /h/run/controller.pid) && sandbox bootstrap"));
    }
}

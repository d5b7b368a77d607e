//! Running hooks: one worker thread per unit takes the next event from the unit's queue, runs
//! it inside the unit's machine with Juju's environment, and commits or discards its effects.

use super::lifecycle;
use super::lifecycle::agent::{self, Ended};
use super::model::{now, unit_tag, Agent, Event, MachineState, Model};
use super::{Shared, State, MACHINE_RUN_DIR, TOOL_SOCKET};
use crate::machine::Machine;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Starts the worker thread of a unit unless it has one.
pub fn ensure_worker(sh: &Arc<Shared>, st: &mut State, unit: &str) {
    if st.workers.insert(unit.to_string()) {
        let sh = sh.clone();
        let unit = unit.to_string();
        std::thread::spawn(move || worker(&sh, &unit));
    }
}

/// Starts deploying the new subordinate units ([`super::deployer::deploy_new`]) and their
/// workers, which wait until a unit is ready.
pub fn deploy_subordinates(sh: &Arc<Shared>, st: &mut State) {
    for unit in super::deployer::deploy_new(sh, st) {
        ensure_worker(sh, st, &unit);
    }
}

/// Index of the queue entry the unit should run now, if any.
fn next_runnable(st: &State, unit: &str) -> Option<usize> {
    let u = st.model.units.get(unit)?;
    let m = st.model.machines.get(&u.machine)?;
    if u.queue.is_empty()
        || m.state != MachineState::Started
        || matches!(u.agent, Agent::Allocating | Agent::Lost)
        || super::exec::machine_busy(st, unit)
    {
        return None;
    }
    if u.agent == Agent::Error {
        return (now() >= u.retry_at).then_some(0);
    }
    // Pending actions go before queued hooks, as Juju's resolver picks them first.
    Some(
        u.queue
            .iter()
            .position(|e| matches!(e, Event::Action { .. } | Event::Exec { .. }))
            .unwrap_or(0),
    )
}

struct Job {
    ev: Event,
    ctx_id: String,
    hook: String,
    command: Command,
    env: Vec<(String, String)>,
    cwd: String,
    machine: Machine,
    task: Option<u64>,
    /// The charm to install first (for upgrade-charm).
    upgrade: Option<std::path::PathBuf>,
    /// When the hook process started.
    started: std::time::Instant,
}

fn worker(sh: &Arc<Shared>, unit: &str) {
    loop {
        let job = {
            let mut st = sh.lock();
            loop {
                if st.stopping || !st.model.units.contains_key(unit) {
                    st.workers.remove(unit);
                    return;
                }
                if let Some(i) = next_runnable(&st, unit) {
                    break prepare(sh, &mut st, unit, i);
                }
                st = sh
                    .changed
                    .wait_timeout(st, Duration::from_millis(500))
                    .map(|r| r.0)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
        };
        let Some(job) = job else { continue };
        if let Some(dir) = &job.upgrade {
            if let Err(e) = super::install::install_charm(&job.machine, unit, dir) {
                sh.log_line(
                    &unit_tag(unit),
                    "ERROR",
                    &format!("cannot install the new charm: {e:#}"),
                );
            }
        }
        // Without the lock: the handler's lookup in the charm, the hook, the machine's state.
        let argv = match &job.command {
            Command::Argv(argv) => argv.clone(),
            Command::Handler(h) => h.argv(),
        };
        let out = if argv.is_empty() {
            Ok(crate::machine::ExecOutput {
                status: 0,
                stdout: vec![],
                stderr: vec![],
                cpu: Duration::ZERO,
            })
        } else {
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            job.machine.exec(&argv, &job.env, &job.cwd, None, None)
        };
        let ran = Ran {
            implemented: !argv.is_empty(),
            alive: job.machine.is_alive(),
            out,
        };
        finish(sh, unit, job, ran);
    }
}

/// Moves the chosen event to the head, marks the unit executing and builds the job.
fn prepare(sh: &Arc<Shared>, st: &mut State, unit: &str, idx: usize) -> Option<Job> {
    let machine = st.model.machines[&st.model.units.get(unit)?.machine]
        .handle
        .clone()?;
    let ev = agent::hook_starting(&mut st.model, unit, idx, now())?;
    let hook = lifecycle::hook_name(&st.model, unit, &ev);
    let task = agent::task_of(&ev);
    // Juju names an exec's context `<unit>-run-commands-<random>`.
    let kind = if matches!(ev, Event::Exec { .. }) {
        "run-commands"
    } else {
        &hook
    };
    let ctx = super::hookenv::new_context(unit, kind, ev.clone(), task);
    let (command, env) = command_for(&st.model, unit, &ev, &hook, &ctx.id);
    let ctx_id = ctx.id.clone();
    st.contexts.insert(ctx_id.clone(), ctx);
    sh.log_line(&unit_tag(unit), "DEBUG", &format!("running {hook}"));
    sh.commit(st);
    let cwd = format!("/var/lib/juju/agents/{}/charm", unit_tag(unit));
    let app = &st.model.apps[super::model::app_of(unit)];
    let upgrade = (ev == Event::UpgradeCharm).then(|| app.charm_dir.clone());
    Some(Job {
        ev,
        ctx_id,
        hook,
        command,
        env,
        cwd,
        machine,
        task,
        upgrade,
        started: std::time::Instant::now(),
    })
}

/// The command and environment Juju would use for this event.
fn command_for(
    model: &Model,
    unit: &str,
    ev: &Event,
    hook: &str,
    ctx_id: &str,
) -> (Command, Vec<(String, String)>) {
    let tag = unit_tag(unit);
    let charm = format!("/var/lib/juju/agents/{tag}/charm");
    let tools = format!("/var/lib/juju/tools/{tag}");
    let app = &model.apps[super::model::app_of(unit)];
    let u = &model.units[unit];
    let is_action = matches!(ev, Event::Action { .. });
    // Actions and exec have no hook name (contextfactory.go `ActionContext`, `CommandContext`).
    let no_hook_name = is_action || matches!(ev, Event::Exec { .. });
    let mut env: Vec<(String, String)> = vec![
        ("CHARM_DIR".into(), charm.clone()),
        ("JUJU_CHARM_DIR".into(), charm.clone()),
        ("JUJU_CONTEXT_ID".into(), ctx_id.into()),
        (
            "JUJU_HOOK_NAME".into(),
            if no_hook_name {
                String::new()
            } else {
                hook.into()
            },
        ),
        (
            "JUJU_AGENT_SOCKET_ADDRESS".into(),
            format!("{MACHINE_RUN_DIR}/{TOOL_SOCKET}"),
        ),
        ("JUJU_AGENT_SOCKET_NETWORK".into(), "unix".into()),
        ("JUJU_UNIT_NAME".into(), unit.into()),
        ("JUJU_MODEL_UUID".into(), model.uuid.clone()),
        ("JUJU_MODEL_NAME".into(), model.name.clone()),
        ("JUJU_API_ADDRESSES".into(), "localhost:17070".into()),
        ("JUJU_MACHINE_ID".into(), u.machine.to_string()),
        (
            "JUJU_PRINCIPAL_UNIT".into(),
            u.principal.clone().unwrap_or_default(),
        ),
        ("JUJU_AVAILABILITY_ZONE".into(), String::new()),
        ("JUJU_VERSION".into(), model.agent_version.clone()),
        ("CLOUD_API_VERSION".into(), String::new()),
        ("JUJU_CHARM_HTTP_PROXY".into(), String::new()),
        ("JUJU_CHARM_HTTPS_PROXY".into(), String::new()),
        ("JUJU_CHARM_FTP_PROXY".into(), String::new()),
        ("JUJU_CHARM_NO_PROXY".into(), String::new()),
        ("APT_LISTCHANGES_FRONTEND".into(), "none".into()),
        ("DEBIAN_FRONTEND".into(), "noninteractive".into()),
        ("LANG".into(), "C.UTF-8".into()),
        (
            "PATH".into(),
            format!("{tools}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        ),
        ("TERM".into(), "tmux-256color".into()),
    ];
    if let Some(rel) = lifecycle::event_rel(ev) {
        let r = model.relations.get(&rel);
        let endpoint = r
            .and_then(|r| r.end_of(&app.name))
            .map(|e| e.endpoint.clone())
            .unwrap_or_default();
        env.push(("JUJU_RELATION".into(), endpoint.clone()));
        env.push(("JUJU_RELATION_ID".into(), format!("{endpoint}:{rel}")));
        let remote_unit = match ev {
            Event::RelationJoined { remote, .. } | Event::RelationDeparted { remote, .. } => {
                remote.clone()
            }
            Event::RelationChanged {
                remote: Some(r), ..
            } => r.clone(),
            _ => String::new(),
        };
        env.push(("JUJU_REMOTE_UNIT".into(), remote_unit));
        env.push((
            "JUJU_REMOTE_APP".into(),
            r.and_then(|r| r.remote_app(&app.name)).unwrap_or_default(),
        ));
        if let Event::RelationDeparted { departing, .. } = ev {
            env.push(("JUJU_DEPARTING_UNIT".into(), departing.clone()));
        }
    }
    env.extend(super::secret_hooks::hook_env(model, unit, ev));
    env.extend(super::exec::relation_env(model, unit, ev));
    env.extend(super::storage::hook_env(model, ev));
    let handler = |kind| {
        Command::Handler(Handler {
            charm_dir: app.charm_dir.clone(),
            kind,
            hook: hook.to_string(),
            charm: charm.clone(),
        })
    };
    match ev {
        Event::Action { id } => {
            env.push(("JUJU_ACTION_NAME".into(), hook.into()));
            env.push(("JUJU_ACTION_UUID".into(), id.to_string()));
            env.push(("JUJU_ACTION_TAG".into(), format!("action-{id}")));
            env.push(("JUJU_DISPATCH_PATH".into(), format!("actions/{hook}")));
            (handler("actions"), env)
        }
        Event::Exec { id } => {
            let cmd = model
                .tasks
                .get(id)
                .and_then(|t| t.params["command"].as_str().map(String::from))
                .unwrap_or_default();
            (Command::Argv(exec_argv(&cmd)), env)
        }
        _ => {
            env.push(("JUJU_DISPATCH_PATH".into(), format!("hooks/{hook}")));
            (handler("hooks"), env)
        }
    }
}

/// What runs for an event.
enum Command {
    /// An exec's command line.
    Argv(Vec<String>),
    /// The charm's handler of a hook or action, looked up once the lock is released.
    Handler(Handler),
}

/// Where a hook's or action's handler may be in the staged charm.
struct Handler {
    /// The staged charm on the host.
    charm_dir: std::path::PathBuf,
    /// `hooks` or `actions`.
    kind: &'static str,
    /// The hook or action name.
    hook: String,
    /// The charm dir inside the machine.
    charm: String,
}

impl Handler {
    /// What Juju runs: `dispatch` if the charm has it, else `<kind>/<hook>`; nothing when
    /// neither is there (the hook is not implemented).
    fn argv(&self) -> Vec<String> {
        let (charm, kind, hook) = (&self.charm, self.kind, &self.hook);
        if is_executable(&self.charm_dir.join("dispatch")) {
            return vec![format!("{charm}/dispatch")];
        }
        let p = self.charm_dir.join(kind).join(hook);
        if p.exists() || p.is_symlink() {
            vec![format!("{charm}/{kind}/{hook}")]
        } else {
            vec![]
        }
    }
}

/// How Juju runs an exec's command line: written to a script file that `/bin/bash` runs, in the
/// charm dir (juju/utils exec `RunParams.Run`; worker/uniter/runner/runner.go
/// `runCommandsWithTimeout`). The script goes in as the last argument, never through a shell.
fn exec_argv(cmd: &str) -> Vec<String> {
    let wrapper = r#"d=$(mktemp -d /tmp/juju-exec.XXXXXXXX) || exit 1
printf '%s
' "$1" > "$d/script.sh"
/bin/bash "$d/script.sh" </dev/null
rc=$?
rm -rf "$d"
exit $rc"#;
    ["/bin/bash", "-c", wrapper, "juju-exec", cmd]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn is_executable(p: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What running a job showed, seen without the lock.
struct Ran {
    /// Whether the charm had a handler for it.
    implemented: bool,
    /// Whether the job's machine was still running after it.
    alive: bool,
    /// The handler's output.
    out: anyhow::Result<crate::machine::ExecOutput>,
}

fn finish(sh: &Arc<Shared>, unit: &str, job: Job, ran: Ran) {
    let mut st = sh.lock();
    let ctx = st.contexts.remove(&job.ctx_id);
    let tag = unit_tag(unit);
    // The machine the job ran on, still alive and still the unit's.
    let machine_up = ran.alive
        && st
            .model
            .units
            .get(unit)
            .and_then(|u| st.model.machines.get(&u.machine))
            .is_some_and(|m| {
                m.state == MachineState::Started
                    && m.handle
                        .as_ref()
                        .is_some_and(|h| h.nspawn_pid == job.machine.nspawn_pid)
            });
    let (code, stdout, stderr, cpu) = match ran.out {
        Ok(o) => (
            o.status,
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
            Some(o.cpu),
        ),
        Err(e) => (-1, String::new(), format!("{e:#}"), None),
    };
    let ms = job.started.elapsed().as_secs_f64() * 1000.0;
    let pending = ctx.as_ref().map(|c| &c.secrets);
    let (log_out, log_err) = (
        crate::secrets::scrub(&st.model.secrets, pending, &stdout),
        crate::secrets::scrub(&st.model.secrets, pending, &stderr),
    );
    // The hook's CPU time, its whole process tree's in the machine ([`Machine::exec`]); unknown
    // when it could not be run or waited for.
    let cpu = cpu
        .map(|c| format!(", cpu {:.1} ms", c.as_secs_f64() * 1000.0))
        .unwrap_or_default();
    sh.log_line(
        &tag,
        "DEBUG",
        &format!("ran {} in {ms:.1} ms{cpu} (exit {code})", job.hook),
    );
    if !log_out.trim().is_empty() {
        sh.log_line(
            &tag,
            "DEBUG",
            &format!("unit.{unit}.{}: {}", job.hook, log_out.trim_end()),
        );
    }
    if !log_err.trim().is_empty() {
        sh.log_line(
            &tag,
            "WARNING",
            &format!("unit.{unit}.{}: {}", job.hook, log_err.trim_end()),
        );
    }
    if !machine_up {
        // Power loss mid-hook: the hook runs again when the machine is back.
        agent::hook_lost(&mut st.model, unit, &job.ev);
        sh.commit(&st);
        return;
    }
    // Juju commits a hook's secret changes first; one the controller refuses fails the hook.
    let exec = matches!(job.ev, Event::Exec { .. });
    let code = match &ctx {
        Some(c) if code == 0 || exec => match c.commit_secrets(&mut st.model, now()) {
            Ok(()) => code,
            Err(e) => {
                sh.log_line(
                    &tag,
                    "ERROR",
                    &format!("cannot commit the secret changes of {:?}: {e}", job.hook),
                );
                if exec {
                    code
                } else {
                    1
                }
            }
        },
        _ => code,
    };
    let ended = Ended {
        event: &job.ev,
        hook: &job.hook,
        implemented: ran.implemented,
        code,
        stdout,
        stderr,
        ctx: ctx.as_ref(),
    };
    if !agent::hook_ended(&mut st.model, unit, ended, now()) {
        return;
    }
    if job.task.is_some() {
        if code == 0 || exec {
            super::storage::volumes::bind_new(sh, &st, unit);
        }
    } else if code == 0 {
        deploy_subordinates(sh, &mut st);
        super::storage::volumes::bind_new(sh, &st, unit);
        if job.ev == Event::Remove {
            sh.log_line(&tag, "INFO", "unit removed");
            super::deployer::retire_unit(sh, &mut st, unit);
        }
    } else {
        sh.log_line(
            &tag,
            "ERROR",
            &format!("hook {:?} failed: exit status {code}", job.hook),
        );
    }
    sh.commit(&st);
}

/// Seconds a lost leader keeps its lease before another unit is elected.
fn lease_seconds() -> f64 {
    std::env::var("SANDBOX_LEASE_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60.0)
}

/// Starts the periodic work: update-status and leadership expiry of lost units.
pub fn start_timers(sh: &Arc<Shared>) {
    let sh = sh.clone();
    std::thread::spawn(move || {
        let mut last: HashMap<String, f64> = HashMap::new();
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let mut st = sh.lock();
            if st.stopping {
                return;
            }
            let ticked = agent::tick(&mut st.model, &mut last, now(), lease_seconds());
            for (app, unit) in &ticked.moved {
                sh.log_line(
                    "controller",
                    "INFO",
                    &format!("leadership of {app} moves away from lost {unit}"),
                );
            }
            if ticked.changed {
                sh.commit(&st);
            }
        }
    });
}

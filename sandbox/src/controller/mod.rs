//! The controller: one long-running process per sandbox that owns the model, provisions
//! machines, runs hooks one at a time per unit and serves the hook tools and the command line.
//!
//! Every other `sandbox` invocation is a short process that talks to it over
//! `$SANDBOX_HOME/run/controller.sock`, which exists only on the host (0600 in a 0700 dir). Each
//! machine gets its own tool socket instead ([`tool_socket_dir`], bind-mounted at
//! [`MACHINE_RUN_DIR`]): it answers hook-tool calls only, and only for a live context of a hook,
//! action or exec running on that machine.

pub mod charm;
pub mod deployer;
pub mod exec;
pub mod goal_state;
pub mod hookenv;
pub mod install;
pub mod lifecycle;
pub mod model;
pub mod params;
pub mod private;
pub mod provision;
pub mod redact;
pub mod requests;
pub mod runner;
pub mod secret_hooks;
pub mod storage;

use crate::api::{Response, Wire};
use anyhow::Context;
use model::Model;
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Where a machine sees its tool socket's directory.
pub const MACHINE_RUN_DIR: &str = "/var/lib/juju/sandbox";

/// The tool socket's file name (in [`tool_socket_dir`], seen in [`MACHINE_RUN_DIR`]).
pub const TOOL_SOCKET: &str = "agent.sock";

/// The longest request line either socket reads (a `relation-set --file` included).
const MAX_REQUEST: u64 = 16 << 20;

/// Mutable controller state, behind one lock.
pub struct State {
    /// The persisted model.
    pub model: Model,
    /// Running hook contexts by context id.
    pub contexts: HashMap<String, lifecycle::HookCtx>,
    /// Units that have a worker thread.
    pub workers: BTreeSet<String>,
    /// Machines whose tool socket is being served.
    pub tool_sockets: BTreeSet<u32>,
    /// Set when the controller is shutting down: workers end, the model is no longer saved.
    pub stopping: bool,
    /// Set once `destroy` has torn everything down: the process exits.
    pub destroyed: bool,
}

/// Shared by every controller thread.
pub struct Shared {
    /// `$SANDBOX_HOME`.
    pub home: PathBuf,
    /// The lock around the state.
    pub state: Mutex<State>,
    /// Signalled whenever the state changes.
    pub changed: Condvar,
    /// The cached rootfs.
    pub rootfs: PathBuf,
    /// The debug log.
    pub log: Mutex<std::fs::File>,
}

impl Shared {
    /// Locks the state.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Saves the model and wakes the workers.
    pub fn commit(&self, st: &State) {
        if st.stopping {
            self.changed.notify_all();
            return;
        }
        if let Err(e) = st.model.save(&model_path(&self.home)) {
            self.log_line(
                "controller",
                "ERROR",
                &format!("cannot save the model: {e:#}"),
            );
        }
        self.changed.notify_all();
    }

    /// Appends one line to the model's debug log, secrets redacted ([`redact::redact`]).
    pub fn log_line(&self, entity: &str, level: &str, msg: &str) {
        let t = chrono_like_now();
        let msg = redact::redact(msg);
        let mut f = self.log.lock().unwrap_or_else(|e| e.into_inner());
        for line in msg.lines() {
            let _ = writeln!(f, "{entity}: {t} {level} {line}");
        }
    }
}

/// `HH:MM:SS` in UTC.
pub fn chrono_like_now() -> String {
    let s = model::now() as u64 % 86400;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// The model file.
pub fn model_path(home: &Path) -> PathBuf {
    home.join("model.json")
}

/// The controller socket.
pub fn socket_path(home: &Path) -> PathBuf {
    home.join("run").join("controller.sock")
}

/// The host directory of machine `id`'s tool socket.
pub fn tool_socket_dir(home: &Path, id: u32) -> PathBuf {
    home.join("machines").join(id.to_string()).join("run")
}

/// The state dir of machine `id` (its tool socket's dir is inside).
pub fn machine_dir(sh: &Shared, id: u32) -> PathBuf {
    sh.home.join("machines").join(id.to_string())
}

/// The lab (network) of this model.
pub fn lab(st: &State) -> crate::machine::Lab {
    crate::machine::Lab {
        prefix: st.model.prefix.clone(),
        subnet: st.model.subnet,
    }
}

/// The debug log.
pub fn log_path(home: &Path) -> PathBuf {
    home.join("logs").join("model.log")
}

/// Which build of the `sandbox` binary a process runs: its size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Build {
    /// Bytes.
    pub size: u64,
    /// Seconds since the epoch.
    pub modified: u64,
}

impl Build {
    /// The build of the binary at `path` (`/proc/self/exe` stays this process's own file even
    /// after a rebuild replaced it).
    pub fn of(path: &Path) -> Option<Build> {
        let md = std::fs::metadata(path).ok()?;
        let modified = md
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs();
        Some(Build {
            size: md.len(),
            modified,
        })
    }

    /// This process's build, as `ping` answers it.
    pub fn current_value() -> serde_json::Value {
        Build::of(Path::new("/proc/self/exe"))
            .map(|b| serde_json::json!({ "size": b.size, "modified": b.modified }))
            .unwrap_or(serde_json::Value::Null)
    }

    /// The build in a `ping` answer.
    pub fn from_value(v: &serde_json::Value) -> Option<Build> {
        Some(Build {
            size: v["size"].as_u64()?,
            modified: v["modified"].as_u64()?,
        })
    }
}

/// The variable through which `bootstrap` tells a new controller the Juju version to imitate.
pub const AGENT_VERSION_VAR: &str = "SANDBOX_AGENT_VERSION";

/// The start of a unit's agent message when its machine could not be started.
pub const PROVISION_FAILED: &str = "cannot start machine";

/// Runs the controller in this process until `destroy` (never returns otherwise).
pub fn serve(home: &Path) -> anyhow::Result<()> {
    private::dir(home)?;
    private::dir(&home.join("run"))?;
    private::dir(&home.join("logs"))?;
    let model = match Model::load(&model_path(home))? {
        Some(m) => m,
        None => {
            let mut m = Model::new(home);
            if let Ok(v) = std::env::var(AGENT_VERSION_VAR) {
                model::check_agent_version(&v).map_err(anyhow::Error::msg)?;
                m.agent_version = v;
            }
            m
        }
    };
    crate::tools::set_agent_version(&model.agent_version);
    let mut progress = |l: &str| eprintln!("{l}");
    let rootfs =
        crate::machine::ensure_rootfs(&crate::machine::RootfsRecipe::default(), &mut progress)?;
    let log = private::append(&log_path(home))?;
    let shared = Arc::new(Shared {
        home: home.to_path_buf(),
        state: Mutex::new(State {
            model,
            contexts: HashMap::new(),
            workers: BTreeSet::new(),
            tool_sockets: BTreeSet::new(),
            stopping: false,
            destroyed: false,
        }),
        changed: Condvar::new(),
        rootfs,
        log: Mutex::new(log),
    });
    let sock = socket_path(home);
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock)
        .with_context(|| format!("cannot listen on {}", sock.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))?;
    private::write(
        &home.join("run").join("controller.pid"),
        std::process::id().to_string().as_bytes(),
    )?;
    shared.log_line("controller", "INFO", "controller started");
    provision::resume(&shared);
    runner::start_timers(&shared);
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let sh = shared.clone();
        std::thread::spawn(move || handle_conn(&sh, conn, None));
        if shared.lock().destroyed {
            std::thread::sleep(Duration::from_millis(200));
            std::process::exit(0);
        }
    }
    Ok(())
}

/// Serves machine `id`'s tool socket (once per machine) until the machine leaves the model.
/// Takes the lock only to claim the socket and to see the machine still there once it is bound.
pub fn serve_tool_socket(sh: &Arc<Shared>, id: u32) -> anyhow::Result<()> {
    if !sh.lock().tool_sockets.insert(id) {
        return Ok(());
    }
    let sock = tool_socket_dir(&sh.home, id).join(TOOL_SOCKET);
    let bound = bind_tool_socket(&sock);
    let mut st = sh.lock();
    let gone = st.stopping || !st.model.machines.contains_key(&id);
    if gone || bound.is_err() {
        st.tool_sockets.remove(&id);
        drop(st);
        if bound.is_ok() {
            let _ = std::fs::remove_file(&sock);
        }
        bound?;
        anyhow::bail!("machine {id} left the model");
    }
    drop(st);
    let listener = bound?;
    let sh = sh.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            {
                let mut st = sh.lock();
                if st.stopping || !st.model.machines.contains_key(&id) {
                    st.tool_sockets.remove(&id);
                    return;
                }
            }
            let Ok(conn) = conn else { continue };
            let sh = sh.clone();
            std::thread::spawn(move || handle_conn(&sh, conn, Some(id)));
        }
    });
    Ok(())
}

/// Binds a tool socket (0600, in a 0700 dir).
fn bind_tool_socket(sock: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = sock.parent() {
        private::dir(dir)?;
    }
    let _ = std::fs::remove_file(sock);
    let listener =
        UnixListener::bind(sock).with_context(|| format!("cannot listen on {}", sock.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(sock, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Stops serving machine `id`'s tool socket (the machine has left the model).
pub fn stop_tool_socket(sh: &Shared, id: u32) {
    let sock = tool_socket_dir(&sh.home, id).join(TOOL_SOCKET);
    // Wakes the accept loop, which sees the machine gone and ends.
    let _ = UnixStream::connect(&sock);
    let _ = std::fs::remove_file(&sock);
}

/// What a machine's tool socket says to anything but a hook-tool call.
pub const TOOL_SOCKET_ONLY: &str =
    "refused: this socket serves only hook tools called from a hook, action or exec \
     running on this machine; run `sandbox` commands on the host";

/// What the controller socket says to a hook-tool call.
const CLI_SOCKET_ONLY: &str =
    "refused: hook tools are served on each machine's own tool socket, not on the \
     controller socket";

/// A refusal both clients show as an error: the command line reads `error`, a hook tool
/// `code` and `stderr`.
fn refusal(msg: &str) -> String {
    serde_json::json!({ "error": msg, "code": 1, "stderr": format!("ERROR {msg}\n") }).to_string()
}

/// Answers one connection: on the controller socket (`machine` None) command-line requests, on
/// machine `machine`'s tool socket hook-tool calls of that machine's live contexts.
fn handle_conn(sh: &Arc<Shared>, conn: UnixStream, machine: Option<u32>) {
    use std::io::Read;
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c.take(MAX_REQUEST),
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let reply = match (serde_json::from_str::<Wire>(&line), machine) {
        (Ok(Wire::Tool(req)), Some(id)) => serde_json::to_string(&hookenv::serve_tool(sh, id, req)),
        (Ok(Wire::Cli(req)), None) => serde_json::to_string(&requests::handle(sh, req)),
        (Ok(Wire::JujuExec(req)), Some(id)) => serde_json::to_string(&exec::serve(sh, id, req)),
        (Ok(Wire::Tool(_) | Wire::JujuExec(_)), None) => Ok(refusal(CLI_SOCKET_ONLY)),
        (_, Some(_)) => Ok(refusal(TOOL_SOCKET_ONLY)),
        (Err(e), None) => serde_json::to_string(&Response::err(format!("bad request: {e}"))),
    };
    let mut conn = conn;
    if let Ok(s) = reply {
        let _ = conn.write_all(s.as_bytes());
        let _ = conn.write_all(b"\n");
    }
    if machine.is_none() && sh.lock().destroyed {
        // Wake the accept loop so it can exit.
        let _ = UnixStream::connect(socket_path(&sh.home));
    }
}

#[cfg(test)]
mod architecture {
    //! Invariants of the controller's layout, checked on the source.

    /// The hook-running modules, whose imports must not make a cycle.
    const LAYERS: &[&str] = &["lifecycle", "hookenv", "deployer", "runner", "provision"];

    /// What `lifecycle/` may not name: the controller's effectful modules, and std's IO,
    /// processes and threads.
    const EFFECTFUL: &[&str] = &[
        "deployer",
        "exec",
        "hookenv",
        "install",
        "provision",
        "requests",
        "runner",
        "storage::volumes",
        "std::fs",
        "std::io",
        "std::process",
        "std::thread",
    ];

    /// The code of the controller module `name` (a file, or a folder's files), comments blanked.
    fn code(name: &str) -> String {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/controller");
        let mut files = vec![dir.join(format!("{name}.rs"))];
        if let Ok(entries) = std::fs::read_dir(dir.join(name)) {
            files.extend(entries.flatten().map(|e| e.path()));
        }
        let mut text = String::new();
        for f in files
            .iter()
            .filter(|f| f.extension().is_some_and(|x| x == "rs"))
        {
            let Ok(t) = std::fs::read_to_string(f) else {
                continue;
            };
            for line in t.lines() {
                text.push_str(line.split("//").next().unwrap_or(""));
                text.push('\n');
            }
        }
        assert!(!text.is_empty(), "no source for {name}");
        text
    }

    /// Whether `code` names controller module `m`: `super::m`, `controller::m`, or `m` in a
    /// `use super::{..}` list.
    fn names(code: &str, m: &str) -> bool {
        let word = |s: &str| s.trim().split("::").next() == Some(m);
        code.contains(&format!("super::{m}"))
            || code.contains(&format!("controller::{m}"))
            || code
                .split("super::{")
                .skip(1)
                .any(|rest| rest.split('}').next().unwrap_or("").split(',').any(word))
    }

    #[test]
    fn lifecycle_names_no_effectful_module() {
        let code = code("lifecycle");
        for bad in EFFECTFUL {
            let hit = if bad.contains("::") {
                code.contains(bad)
            } else {
                names(&code, bad)
            };
            assert!(!hit, "lifecycle/ names {bad}");
        }
    }

    #[test]
    fn the_hook_running_modules_import_each_other_without_a_cycle() {
        let deps: Vec<Vec<usize>> = LAYERS
            .iter()
            .map(|own| {
                let code = code(own);
                let named = |(_, m): &(usize, &&str)| *m != own && names(&code, m);
                LAYERS
                    .iter()
                    .enumerate()
                    .filter(named)
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
        // Each may name only those before it in LAYERS
        // (lifecycle ← hookenv ← deployer ← runner ← provision).
        for (i, d) in deps.iter().enumerate() {
            for &j in d {
                assert!(j < i, "{} names {}: an import cycle", LAYERS[i], LAYERS[j]);
            }
        }
        // The check sees the imports that are there: provision → runner → deployer, hookenv.
        assert!(
            deps[4].contains(&3) && deps[3].contains(&2) && deps[3].contains(&1),
            "{deps:?}"
        );
    }
}

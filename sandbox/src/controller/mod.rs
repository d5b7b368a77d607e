//! The controller: one long-running process per sandbox that owns the model, provisions
//! machines, runs hooks one at a time per unit and serves the hook tools and the command line.
//!
//! Every other `sandbox` invocation is a short process that talks to it over
//! `$SANDBOX_HOME/run/controller.sock` (bind-mounted into every machine for the hook tools).

pub mod charm;
pub mod hookenv;
pub mod lifecycle;
pub mod model;
pub mod params;
pub mod provision;
pub mod requests;
pub mod runner;

use crate::api::{Response, Wire};
use anyhow::Context;
use model::Model;
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Where the machines reach the controller socket.
pub const MACHINE_RUN_DIR: &str = "/var/lib/juju/sandbox";

/// Mutable controller state, behind one lock.
pub struct State {
    /// The persisted model.
    pub model: Model,
    /// Running hook contexts by context id.
    pub contexts: HashMap<String, hookenv::HookCtx>,
    /// Units that have a worker thread.
    pub workers: BTreeSet<String>,
    /// Set when the controller is shutting down.
    pub stopping: bool,
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

    /// Appends one line to the model's debug log.
    pub fn log_line(&self, entity: &str, level: &str, msg: &str) {
        let t = chrono_like_now();
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

/// The debug log.
pub fn log_path(home: &Path) -> PathBuf {
    home.join("logs").join("model.log")
}

/// The start of a unit's agent message when its machine could not be started.
pub const PROVISION_FAILED: &str = "cannot start machine";

/// Runs the controller in this process until `destroy` (never returns otherwise).
pub fn serve(home: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(home.join("run"))?;
    std::fs::create_dir_all(home.join("logs"))?;
    let model = match Model::load(&model_path(home))? {
        Some(m) => m,
        None => Model::new(home),
    };
    let mut progress = |l: &str| eprintln!("{l}");
    let rootfs =
        crate::machine::ensure_rootfs(&crate::machine::RootfsRecipe::default(), &mut progress)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(home))?;
    let shared = Arc::new(Shared {
        home: home.to_path_buf(),
        state: Mutex::new(State {
            model,
            contexts: HashMap::new(),
            workers: BTreeSet::new(),
            stopping: false,
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
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666))?;
    std::fs::write(
        home.join("run").join("controller.pid"),
        std::process::id().to_string(),
    )?;
    shared.log_line("controller", "INFO", "controller started");
    provision::resume(&shared);
    runner::start_timers(&shared);
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let sh = shared.clone();
        std::thread::spawn(move || handle_conn(&sh, conn));
        if shared.lock().stopping {
            std::thread::sleep(Duration::from_millis(200));
            std::process::exit(0);
        }
    }
    Ok(())
}

fn handle_conn(sh: &Arc<Shared>, conn: UnixStream) {
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let reply = match serde_json::from_str::<Wire>(&line) {
        Ok(Wire::Tool(req)) => serde_json::to_string(&hookenv::serve_tool(sh, req)),
        Ok(Wire::Cli(req)) => serde_json::to_string(&requests::handle(sh, req)),
        Err(e) => serde_json::to_string(&Response::err(format!("bad request: {e}"))),
    };
    let mut conn = conn;
    if let Ok(s) = reply {
        let _ = conn.write_all(s.as_bytes());
        let _ = conn.write_all(b"\n");
    }
    if sh.lock().stopping {
        // Wake the accept loop so it can exit.
        let _ = UnixStream::connect(socket_path(&sh.home));
    }
}

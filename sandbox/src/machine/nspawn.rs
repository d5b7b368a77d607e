//! Booting, entering and stopping machines: `systemd-nspawn --boot` over a per-machine overlay of
//! the cached rootfs, inside the machine's own network namespace.
//!
//! A machine is found again from persisted data alone: its nspawn process is the one whose
//! command line names the machine's root directory, and the container's PID 1 is the child of
//! that process whose pid is 1 in its own pid namespace.

use super::cgroup;
use super::host::{self, run};
use super::net::{self, Lab, MAX_MACHINE_ID};
use super::sys;
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// How long [`Machine::boot`] waits for the container's PID 1 to appear.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// PATH given to nspawn and to commands run inside machines.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineSpec {
    /// Juju machine number.
    pub id: u32,
    /// Host name, e.g. `juju-3f2a-0`.
    pub hostname: String,
    /// Machine state dir: `upper/`, `work/`, `root/` (the overlay mount point), `console.log`.
    pub dir: PathBuf,
    /// Extra `/etc/hosts` lines (all machines), besides the localhost lines.
    pub hosts: Vec<(Ipv4Addr, String)>,
    /// Host path -> path inside the machine (nspawn `--bind`), e.g. the machine's tool socket dir.
    pub binds: Vec<(PathBuf, String)>,
    /// The same, read-only (nspawn `--bind-ro`), e.g. the package archive.
    pub ro_binds: Vec<(PathBuf, String)>,
    /// Its address after a `change-address` (else [`Lab::address`] of its number).
    pub address: Option<Ipv4Addr>,
}

/// A booted machine, identified by its nspawn process; plain data, so it can be persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// Juju machine number.
    pub id: u32,
    /// Host pid of the `systemd-nspawn` process.
    pub nspawn_pid: i32,
    /// The machine's network namespace (`<prefix>-m<id>`).
    pub netns: String,
    /// Host name.
    pub hostname: String,
    /// Address on eth0.
    pub address: Ipv4Addr,
    /// The machine state dir.
    pub dir: PathBuf,
    /// The overlay mount point, i.e. the machine's `/` as seen from the host.
    pub root: PathBuf,
}

/// Result of a command run in a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit code, or 128 + signal number when killed by a signal.
    pub status: i32,
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr.
    pub stderr: Vec<u8>,
    /// CPU time (user + system) of the command's whole process tree in the machine, and of the
    /// `nsenter` that entered it (see [`Machine::exec`]).
    pub cpu: Duration,
}

/// Where a command's stdin comes from.
enum Input<'a> {
    None,
    Bytes(&'a [u8]),
    Pipe(Stdio),
}

impl Machine {
    /// Boots machine `spec.id` of `lab` from `rootfs`, detached from the calling process.
    ///
    /// Creates netns `<prefix>-m<id>` with a veth to the switch (address on eth0, lo up); mounts
    /// the overlay (lower = rootfs, upper/work in `spec.dir`, kept across reboots so data survives
    /// a power cycle); writes `/etc/hostname`, `/etc/hosts` and a machine id into the overlay; then
    /// starts `systemd-nspawn --boot` in a new session with stdin `/dev/null` and output appended to
    /// `spec.dir/console.log`. Returns once the container's PID 1 exists (see
    /// [`Machine::wait_running`]). Every step is idempotent, and when the machine is already
    /// running its nspawn process is adopted instead of starting a second one.
    pub fn boot(lab: &Lab, spec: &MachineSpec, rootfs: &Path) -> anyhow::Result<Machine> {
        lab.validate()?;
        if spec.id > MAX_MACHINE_ID {
            bail!(
                "machine number {} is too high: a sandbox addresses machines 0 to {MAX_MACHINE_ID}",
                spec.id
            );
        }
        check_hostname(&spec.hostname)?;
        if !rootfs.join("sbin/init").exists() && !rootfs.join("lib/systemd/systemd").exists() {
            bail!(
                "{} is not a bootable rootfs: call ensure_rootfs to build it",
                rootfs.display()
            );
        }
        for d in ["upper", "work", "root"] {
            std::fs::create_dir_all(spec.dir.join(d)).with_context(|| {
                format!("cannot create {}: run as root", spec.dir.join(d).display())
            })?;
        }
        // The machine's disk and console are the host's business only.
        std::fs::set_permissions(&spec.dir, std::fs::Permissions::from_mode(0o700))?;
        let dir = spec.dir.canonicalize()?;
        let root = dir.join("root");
        let machine = Machine {
            id: spec.id,
            nspawn_pid: 0,
            netns: lab.machine_ns(spec.id),
            hostname: spec.hostname.clone(),
            address: spec.address.unwrap_or(lab.address(spec.id)),
            dir: dir.clone(),
            root: root.clone(),
        };
        if let Some(pid) = nspawn_pids_for(&root).into_iter().next() {
            return Ok(Machine {
                nspawn_pid: pid,
                ..machine
            });
        }
        lab.ensure_machine_net(spec.id, machine.address)?;
        clear_propagate_dir(&spec.hostname)?;
        mount_overlay(&dir, rootfs)?;
        write_identity(&machine, &spec.hosts)?;

        let log_path = dir.join("console.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        // An error shows what this boot wrote, not the end of the last one.
        let logged_before = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new("systemd-nspawn");
        cmd.args(["-q", "--boot", "--register=no", "--keep-unit"])
            .arg("-D")
            .arg(&root)
            .arg("-M")
            .arg(&spec.hostname)
            .arg(format!(
                "--network-namespace-path=/run/netns/{}",
                machine.netns
            ))
            // Leave the host's resolver, time zone and journal alone; the console goes to the log.
            .args([
                "--resolv-conf=off",
                "--timezone=off",
                "--link-journal=no",
                "--console=read-only",
            ]);
        let binds = spec.binds.iter().map(|b| ("--bind", b));
        for (flag, (host_path, inside)) in
            binds.chain(spec.ro_binds.iter().map(|b| ("--bind-ro", b)))
        {
            let hp = host_path.to_string_lossy();
            if hp.contains(':') || inside.contains(':') {
                bail!("cannot bind {hp} to {inside}: paths with ':' are not supported by systemd-nspawn {flag}");
            }
            cmd.arg(format!("{flag}={hp}:{inside}"));
        }
        cmd.env_clear()
            .env("PATH", PATH)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        sys::new_session(&mut cmd);
        sys::join_cgroups(&mut cmd, cgroup::prepare(&machine.netns)?);
        let mut child = cmd.spawn().context(
            "cannot start systemd-nspawn: install it with `apt-get install systemd-container`",
        )?;
        let pid = child.id() as i32;
        // Reap nspawn when it exits while we live; if we die first it is re-parented and keeps running.
        let (exited, exit) = std::sync::mpsc::channel();
        let _ = std::thread::Builder::new()
            .name(format!("reap-nspawn-{pid}"))
            .spawn(move || exited.send(child.wait()));

        let machine = Machine {
            nspawn_pid: pid,
            ..machine
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if !machine.is_alive() {
                // How it ended tells a crash or a kill from a refusal (which nspawn explains).
                let how = match exit.recv_timeout(Duration::from_secs(1)) {
                    Ok(Ok(status)) => status.to_string(),
                    _ => "ended".to_string(),
                };
                bail!(
                    "systemd-nspawn for machine {} exited at start ({how}); it wrote to {}:\n{}",
                    spec.id,
                    log_path.display(),
                    host::tail_from(&log_path, logged_before, 1500)
                );
            }
            if machine.pid1().is_some() {
                return Ok(machine);
            }
            if Instant::now() >= deadline {
                let _ = machine.kill();
                bail!(
                    "machine {} started no PID 1 within {START_TIMEOUT:?}; see {}",
                    spec.id,
                    log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the nspawn process still exists (not a zombie) and is this machine's `systemd-nspawn`.
    pub fn is_alive(&self) -> bool {
        is_nspawn_for(self.nspawn_pid, &self.root)
    }

    /// The container's PID 1 (the child of the nspawn process that is pid 1 in its own pid namespace).
    pub fn pid1(&self) -> Option<i32> {
        if !self.is_alive() {
            return None;
        }
        pid1_of(self.nspawn_pid)
    }

    /// Host pids of every live (non-zombie) process inside the machine.
    pub fn processes(&self) -> Vec<i32> {
        let Some(p1) = self.pid1() else { return vec![] };
        let Ok(ns) = std::fs::read_link(format!("/proc/{p1}/ns/pid")) else {
            return vec![];
        };
        host::pids()
            .into_iter()
            .filter(|&p| {
                host::running(p)
                    && std::fs::read_link(format!("/proc/{p}/ns/pid")).is_ok_and(|n| n == ns)
            })
            .collect()
    }

    /// Memory used by the machine's processes: the sum of their proportional set sizes, in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.processes()
            .into_iter()
            .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")).ok())
            .filter_map(|s| {
                let l = s.lines().find(|l| l.starts_with("Pss:"))?;
                l.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .sum::<u64>()
            * 1024
    }

    /// The console log of the machine (nspawn's and systemd's boot output).
    pub fn console_log(&self) -> PathBuf {
        self.dir.join("console.log")
    }

    /// Waits until `systemctl is-system-running` prints `running` or `degraded` (or the timeout
    /// passes, an error naming what it printed last).
    pub fn wait_running(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.pid1().is_none() {
                let tail = host::tail(&self.console_log(), 1500);
                // systemd needs inotify instances of the host's; many machines at once (several
                // sandboxes) exhaust the default of 128.
                let hint = match tail.contains("Too many open files") {
                    true => {
                        "\nThe host ran out of inotify instances: raise them with \
                             `sysctl -w fs.inotify.max_user_instances=1024`, or run fewer machines"
                    }
                    false => "",
                };
                bail!(
                    "machine {} stopped while booting; its console log {} ends with:\n{tail}{hint}",
                    self.id,
                    self.console_log().display(),
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            // `--wait` blocks inside the machine until boot finishes; it fails fast while the
            // machine's systemd is not yet reachable, hence the loop.
            let wait = left
                .min(Duration::from_secs(30))
                .max(Duration::from_millis(200));
            let last = match self.run(&["systemctl", "is-system-running", "--wait"], wait) {
                Ok(out) => {
                    let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
                    if state == "running" || state == "degraded" {
                        return Ok(());
                    }
                    if state.is_empty() {
                        String::from_utf8_lossy(&out.stderr).trim().to_string()
                    } else {
                        state
                    }
                }
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "machine {} did not finish booting within {timeout:?}: `systemctl is-system-running` said {last:?}; \
                     look at `systemctl --failed` in it or at {}",
                    self.id,
                    self.console_log().display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `argv` inside the machine as root (`nsenter` into all its namespaces) with exactly
    /// `env` as its environment (pass `PATH` yourself; without it programs are looked up in
    /// `/bin:/usr/bin`) and `cwd` as its working directory, feeding it `stdin` if given.
    ///
    /// A non-zero exit is not an error: it is in [`ExecOutput::status`] (127 when the program is
    /// not found, 128 + n when killed by signal n). A `timeout` kills the command and everything
    /// in its process group and returns an error saying it timed out.
    ///
    /// [`ExecOutput::cpu`] comes from wait4(2) on the `nsenter` we spawn: nsenter forks the
    /// command into the machine's PID namespace and waits for it, so its children's rusage is the
    /// command and every descendant reaped inside that tree (a hook's tools, `systemctl`, … —
    /// the charm waits for each process it starts). Not counted: what the machine's systemd runs
    /// for it (etcd itself), and an orphan, which the machine's PID 1 reaps. A cgroup per command
    /// would count orphans too, but the command runs in the controller's cgroup (nsenter does not
    /// move it) and a cgroup of its own would need cgroup v2 and a tree outside the machine's;
    /// wait4 needs neither and its user + system sum is the scheduler's exact run time.
    pub fn exec(
        &self,
        argv: &[&str],
        env: &[(String, String)],
        cwd: &str,
        stdin: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> anyhow::Result<ExecOutput> {
        let input = match stdin {
            Some(b) => Input::Bytes(b),
            None => Input::None,
        };
        self.exec_with(argv, env, cwd, input, timeout)
    }

    /// [`Machine::exec`] of `argv` in `/` with no environment and no stdin, within `timeout`.
    pub fn run(&self, argv: &[&str], timeout: Duration) -> anyhow::Result<ExecOutput> {
        self.exec(argv, &[], "/", None, Some(timeout))
    }

    /// Like [`Machine::exec`] but returns the spawned child with piped stdout/stderr (stdin
    /// `/dev/null`) so the caller can stream output and wait or kill. The child leads its own
    /// process group: `kill -KILL -<pid>` stops everything it started; killing just the child
    /// also kills the command inside (it dies with its parent).
    pub fn spawn(
        &self,
        argv: &[&str],
        env: &[(String, String)],
        cwd: &str,
    ) -> anyhow::Result<Child> {
        let mut cmd = self.command(argv, env, cwd)?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        cmd.spawn()
            .with_context(|| format!("cannot run nsenter into machine {}", self.id))
    }

    /// Writes a file inside the machine, creating parent dirs, with `mode`; atomic (temp file +
    /// rename). A running machine writes it itself (a shell in the machine), so nothing the
    /// machine's root does to its own tree can redirect the write to the host; a stopped one is
    /// written through the overlay mount, refusing a symlink on the way.
    pub fn write_file(&self, path: &str, contents: &[u8], mode: u32) -> anyhow::Result<()> {
        let rel = inside_path(path)?;
        if self.pid1().is_none() {
            if host_writable(&self.root, &rel) {
                return write_via_host(&self.root, &rel, contents, mode)
                    .with_context(|| format!("cannot write {path} in machine {}", self.id));
            }
            bail!(
                "cannot write {path}: machine {} is not running; boot it first",
                self.id
            );
        }
        let script = r#"set -e; d=$(dirname "$1"); mkdir -p "$d"; t="$1.sandbox-tmp.$$"; cat > "$t"; chmod "$2" "$t"; mv -f "$t" "$1""#;
        let mode = format!("{mode:o}");
        let out = self.exec(
            &["sh", "-c", script, "sh", path, &mode],
            &[],
            "/",
            Some(contents),
            Some(Duration::from_secs(120)),
        )?;
        if out.status != 0 {
            bail!(
                "cannot write {path} in machine {}: {}",
                self.id,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Copies a host directory tree into `dest` in the machine (created if missing), keeping
    /// symlinks and modes; files end up owned by root. Streams `tar` on the host into `tar -x`
    /// in the machine.
    pub fn copy_dir_in(&self, host_dir: &Path, dest: &str) -> anyhow::Result<()> {
        self.copy_tree_in(host_dir, dest, None)
    }

    /// [`Machine::copy_dir_in`] of a tree kept owner-only on the host: in the machine, group and
    /// others get the owner's bits without write (0700 → 0755, 0600 → 0644).
    pub fn copy_private_dir_in(&self, host_dir: &Path, dest: &str) -> anyhow::Result<()> {
        self.copy_tree_in(host_dir, dest, Some("go=u,go-w"))
    }

    fn copy_tree_in(&self, host_dir: &Path, dest: &str, mode: Option<&str>) -> anyhow::Result<()> {
        inside_path(dest)?;
        if !host_dir.is_dir() {
            bail!(
                "cannot copy {} into machine {}: not a directory",
                host_dir.display(),
                self.id
            );
        }
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(host_dir)
            .args(mode.map(|m| format!("--mode={m}")))
            .args(["-cf", "-", "."])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run tar on the host")?;
        let pipe = tar.stdout.take().expect("piped stdout");
        // Drained on a thread so a chatty tar can never block on a full stderr pipe.
        let (tar_err, tar_err_done) = collect(tar.stderr.take());
        let script = r#"mkdir -p "$1" && exec tar -C "$1" --no-same-owner -xf -"#;
        let res = self.exec_with(
            &["sh", "-c", script, "sh", dest],
            &[],
            "/",
            Input::Pipe(Stdio::from(pipe)),
            Some(Duration::from_secs(600)),
        );
        let tar_status = tar.wait()?;
        let _ = tar_err_done.recv_timeout(Duration::from_secs(2));
        let out = res?;
        if !tar_status.success() {
            let err = tar_err.lock().unwrap_or_else(|e| e.into_inner());
            bail!(
                "tar of {} on the host failed: {}",
                host_dir.display(),
                String::from_utf8_lossy(&err).trim()
            );
        }
        if out.status != 0 {
            bail!(
                "cannot unpack {} into {dest} in machine {}: {}",
                host_dir.display(),
                self.id,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Abrupt power loss: SIGKILL the container's PID 1 (the kernel then kills every process in
    /// it) and the nspawn process. The overlay stays mounted and intact for the next boot.
    pub fn kill(&self) -> anyhow::Result<()> {
        kill_nspawn(self.nspawn_pid, &self.root)
    }

    /// Clean shutdown: `systemctl poweroff`, then waits up to `timeout` for nspawn to exit, then
    /// SIGKILL.
    pub fn poweroff(&self, timeout: Duration) -> anyhow::Result<()> {
        if !self.is_alive() {
            return Ok(());
        }
        let _ = self.run(
            &["systemctl", "poweroff", "--no-block"],
            Duration::from_secs(10),
        );
        if host::wait_gone(&[self.nspawn_pid], timeout) {
            return Ok(());
        }
        self.kill()
    }

    /// Cuts this machine off the switch (its veth down on the switch side).
    pub fn partition(&self, lab: &Lab) -> anyhow::Result<()> {
        lab.set_port(self.id, false)
    }

    /// Moves this machine to `address` on the lab's subnet (its own namespace only); answers
    /// the machine as it is now.
    pub fn change_address(&self, lab: &Lab, address: Ipv4Addr) -> anyhow::Result<Machine> {
        lab.move_machine_address(self.id, address)?;
        Ok(Machine {
            address,
            ..self.clone()
        })
    }

    /// Plugs this machine back into the switch.
    pub fn heal(&self, lab: &Lab) -> anyhow::Result<()> {
        lab.set_port(self.id, true)
    }

    /// Cuts traffic between this machine and `peers` only, with blackhole routes in this
    /// machine's namespace: its own sends to them fail at once (EINVAL), their packets to it get
    /// no answer.
    pub fn block_from(&self, peers: &[Ipv4Addr]) -> anyhow::Result<()> {
        net::blackhole(&self.netns, peers)
    }

    /// Removes every block made by [`Machine::block_from`].
    pub fn unblock_all(&self) -> anyhow::Result<()> {
        net::clear_blackholes(&self.netns)
    }

    /// The `nsenter` command that runs `argv` in the machine.
    fn command(
        &self,
        argv: &[&str],
        env: &[(String, String)],
        cwd: &str,
    ) -> anyhow::Result<Command> {
        let Some(pid1) = self.pid1() else {
            bail!("machine {} is not running: boot it first", self.id);
        };
        let Some(prog) = argv.first() else {
            bail!("nothing to run: empty command")
        };
        if prog.contains('=') {
            bail!(
                "cannot run {prog:?}: a program name with '=' would be taken as a variable by env"
            );
        }
        let mut cmd = Command::new("nsenter");
        // `-r -w` without a value: the machine's root and PID 1's cwd. nsenter's `--wd=DIR` would
        // open DIR on the host, so the working directory is set by `env -C` inside instead.
        cmd.arg("-t").arg(pid1.to_string()).args(["-a", "-r", "-w"]);
        // The command dies with nsenter, so killing what we spawned never leaves it behind.
        cmd.args([
            "setpriv",
            "--pdeathsig",
            "KILL",
            "--",
            "env",
            "-i",
            "-C",
            cwd,
            "--",
        ]);
        for (k, v) in env {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                bail!("bad environment variable name {k:?}");
            }
            cmd.arg(format!("{k}={v}"));
        }
        cmd.args(argv);
        cmd.env_clear().env("PATH", PATH);
        Ok(cmd)
    }

    fn exec_with(
        &self,
        argv: &[&str],
        env: &[(String, String)],
        cwd: &str,
        input: Input<'_>,
        timeout: Option<Duration>,
    ) -> anyhow::Result<ExecOutput> {
        let mut cmd = self.command(argv, env, cwd)?;
        let bytes = match input {
            Input::None => {
                cmd.stdin(Stdio::null());
                None
            }
            Input::Bytes(b) => {
                cmd.stdin(Stdio::piped());
                Some(b.to_vec())
            }
            Input::Pipe(s) => {
                cmd.stdin(s);
                None
            }
        };
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run nsenter into machine {}", self.id))?;
        let pid = child.id() as i32;
        if let (Some(b), Some(mut w)) = (bytes, child.stdin.take()) {
            // A command that does not read its input just gets EPIPE here; not our error.
            std::thread::spawn(move || {
                let _ = w.write_all(&b);
            });
        }
        let (out_buf, out_done) = collect(child.stdout.take());
        let (err_buf, err_done) = collect(child.stderr.take());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(sys::wait_with_cpu(child));
        });
        let (status, timed_out) = match timeout {
            None => (rx.recv().context("lost the command's status")?, false),
            Some(t) => match rx.recv_timeout(t) {
                Ok(s) => (s, false),
                Err(_) => {
                    let _ = sys::kill(-pid, libc::SIGKILL);
                    (rx.recv().context("lost the command's status")?, true)
                }
            },
        };
        let (status, cpu) = status?;
        // Output is complete when both pipes close; a daemon that kept them open only delays us a bit.
        let grace = Instant::now() + Duration::from_secs(2);
        for done in [&out_done, &err_done] {
            let _ = done.recv_timeout(grace.saturating_duration_since(Instant::now()));
        }
        let take = |b: &Arc<Mutex<Vec<u8>>>| {
            std::mem::take(&mut *b.lock().unwrap_or_else(|e| e.into_inner()))
        };
        let (stdout, stderr) = (take(&out_buf), take(&err_buf));
        if timed_out {
            bail!(
                "`{}` in machine {} timed out after {:?} and was killed; stderr so far: {}",
                argv.join(" "),
                self.id,
                timeout.unwrap_or_default(),
                String::from_utf8_lossy(&stderr).trim()
            );
        }
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        Ok(ExecOutput {
            status: code,
            stdout,
            stderr,
            cpu,
        })
    }
}

/// Reads a pipe to its end on a thread; the buffer can be taken early if the end never comes.
fn collect<R: Read + Send + 'static>(r: Option<R>) -> (Arc<Mutex<Vec<u8>>>, mpsc::Receiver<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let b = buf.clone();
    std::thread::spawn(move || {
        if let Some(mut r) = r {
            let mut chunk = [0u8; 16384];
            loop {
                match r.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => b
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&chunk[..n]),
                }
            }
        }
        let _ = tx.send(());
    });
    (buf, rx)
}

/// Stops (SIGKILL if needed) the machine, unmounts its overlay (and anything mounted under its
/// dir, lazily if busy), deletes its netns, nspawn's propagation directory and its dir.
/// Idempotent; works from persisted data even when the nspawn process is already gone.
pub fn destroy_machine(
    lab: &Lab,
    id: u32,
    dir: &Path,
    nspawn_pid: Option<i32>,
) -> anyhow::Result<()> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let root = dir.join("root");
    let mut pids = nspawn_pids_for(&root);
    pids.extend(nspawn_pid.filter(|&p| is_nspawn_for(p, &root)));
    pids.sort_unstable();
    pids.dedup();
    for p in pids {
        kill_nspawn(p, &root)?;
    }
    clear_propagate_dir_of(&dir)?;
    host::unmount_under(&dir)?;
    lab.remove_machine_net(id)?;
    cgroup::remove(&lab.machine_ns(id))?;
    host::remove_tree(&dir)
}

/// Leak sweeper for tests and `sandbox destroy`: kills every systemd-nspawn process whose machine
/// dir is under `home`, unmounts every mount under `home`, deletes every netns whose name starts
/// with `<prefix>-` and removes the machine cgroups named likewise. Idempotent; leaves files alone.
pub fn sweep(prefix: &str, home: &Path) -> anyhow::Result<()> {
    if prefix.is_empty() {
        bail!("refusing to sweep with an empty prefix: it would match every namespace");
    }
    let home = home.canonicalize().unwrap_or_else(|_| home.to_path_buf());
    let (mut victims, mut dirs) = (Vec::new(), Vec::new());
    for pid in host::pids() {
        if host::comm(pid).as_deref() != Some("systemd-nspawn") || !host::running(pid) {
            continue;
        }
        match nspawn_dir(&host::cmdline(pid)) {
            Some(root) if root.starts_with(&home) => {
                victims.push(pid);
                dirs.extend(root.parent().map(Path::to_path_buf));
            }
            _ => {}
        }
    }
    let mut errors = Vec::new();
    for &pid in &victims {
        for c in host::children(pid) {
            let _ = sys::kill(c, libc::SIGKILL);
        }
        let _ = sys::kill(pid, libc::SIGKILL);
    }
    if !host::wait_gone(&victims, Duration::from_secs(10)) {
        errors.push(format!(
            "systemd-nspawn processes {victims:?} did not die after SIGKILL"
        ));
    }
    if let Err(e) = host::unmount_under(&home) {
        errors.push(format!("{e:#}"));
    }
    for dir in dirs {
        if let Err(e) = clear_propagate_dir_of(&dir) {
            errors.push(format!("{e:#}"));
        }
    }
    let mut names: Vec<String> = net::netns_list()
        .into_iter()
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .collect();
    // Machines first, the switch last: deleting a machine namespace also removes its veth pair.
    names.sort_by_key(|n| n.ends_with("-sw"));
    for n in names {
        if let Err(e) = net::delete_netns(&n) {
            errors.push(format!("{e:#}"));
        }
    }
    for n in cgroup::names()
        .into_iter()
        .filter(|n| n.starts_with(&format!("{prefix}-")))
    {
        if let Err(e) = cgroup::remove(&n) {
            errors.push(format!("{e:#}"));
        }
    }
    if !errors.is_empty() {
        bail!(
            "sweep of {prefix} under {} left things behind: {}",
            home.display(),
            errors.join("; ")
        );
    }
    Ok(())
}

/// The `-D`/`--directory` argument of an nspawn command line.
pub(crate) fn nspawn_dir(argv: &[String]) -> Option<PathBuf> {
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        if a == "-D" || a == "--directory" {
            return it.next().map(PathBuf::from);
        }
        if let Some(d) = a.strip_prefix("--directory=") {
            return Some(PathBuf::from(d));
        }
        if let Some(d) = a.strip_prefix("-D") {
            return Some(PathBuf::from(d));
        }
    }
    None
}

fn is_nspawn_for(pid: i32, root: &Path) -> bool {
    pid > 0
        && host::running(pid)
        && host::comm(pid).as_deref() == Some("systemd-nspawn")
        && nspawn_dir(&host::cmdline(pid)).as_deref() == Some(root)
}

/// Every live nspawn process booting `root`.
fn nspawn_pids_for(root: &Path) -> Vec<i32> {
    host::pids()
        .into_iter()
        .filter(|&p| is_nspawn_for(p, root))
        .collect()
}

fn pid1_of(nspawn: i32) -> Option<i32> {
    host::children(nspawn)
        .into_iter()
        .find(|&c| host::running(c) && host::inner_pid(c) == Some(1))
}

/// SIGKILLs the container's PID 1, gives nspawn a moment to exit on its own, then SIGKILLs it.
fn kill_nspawn(pid: i32, root: &Path) -> anyhow::Result<()> {
    if !is_nspawn_for(pid, root) {
        return Ok(());
    }
    if let Some(p1) = pid1_of(pid) {
        sys::kill(p1, libc::SIGKILL)
            .with_context(|| format!("cannot kill PID 1 ({p1}) of {}", root.display()))?;
    }
    if host::wait_gone(&[pid], Duration::from_secs(2)) {
        return Ok(());
    }
    if is_nspawn_for(pid, root) {
        sys::kill(pid, libc::SIGKILL)
            .with_context(|| format!("cannot kill systemd-nspawn {pid}"))?;
    }
    if !host::wait_gone(&[pid], Duration::from_secs(10)) {
        bail!(
            "systemd-nspawn {pid} for {} survived SIGKILL; look at `ps -o stat,wchan -p {pid}`",
            root.display()
        );
    }
    Ok(())
}

/// Where systemd-nspawn keeps a machine's directory for mounts propagated into it.
pub(crate) const PROPAGATE_DIR: &str = "/run/systemd/nspawn/propagate";

/// Removes nspawn's propagation directory of the machine named `hostname`. nspawn removes it
/// when it exits, but not when it is killed, and it refuses to empty one where `/run` is not a
/// tmpfs ("Attempted to remove disk file system"): left alone, it stays on the host. Called
/// only while no nspawn runs for the machine.
fn clear_propagate_dir(hostname: &str) -> anyhow::Result<()> {
    check_hostname(hostname)?;
    host::remove_tree(&Path::new(PROPAGATE_DIR).join(hostname))
}

/// [`clear_propagate_dir`] for the machine whose state dir is `dir`, named as its disk says.
fn clear_propagate_dir_of(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_to_string(dir.join("upper/etc/hostname")) {
        Ok(name) => clear_propagate_dir(name.trim()),
        Err(_) => Ok(()),
    }
}

/// Mounts the machine's overlay at `dir/root` unless it already is.
fn mount_overlay(dir: &Path, rootfs: &Path) -> anyhow::Result<()> {
    let root = dir.join("root");
    let rootfs = rootfs.canonicalize()?;
    // The upper dir only makes sense over the lower it was made on.
    let marker = dir.join("lower");
    match std::fs::read_to_string(&marker) {
        Ok(prev) if Path::new(prev.trim()) != rootfs => bail!(
            "machine dir {} was made over rootfs {} but is now booted over {}: destroy the machine first",
            dir.display(),
            prev.trim(),
            rootfs.display()
        ),
        Ok(_) => {}
        Err(_) => {
            std::fs::write(&marker, format!("{}\n", rootfs.display()))?;
            std::fs::set_permissions(&marker, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    if let Some(m) = host::mount_at(&root) {
        if m.fstype == "overlay" {
            return Ok(());
        }
        bail!(
            "{} is already mounted ({}): unmount it first",
            root.display(),
            m.fstype
        );
    }
    let (upper, work) = (dir.join("upper"), dir.join("work"));
    for p in [&rootfs, &upper, &work] {
        let s = p.to_string_lossy();
        if s.contains(',') || s.contains(':') {
            bail!("cannot use {s} in an overlay mount: ',' and ':' are not allowed in its path");
        }
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        rootfs.display(),
        upper.display(),
        work.display()
    );
    run(Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(&root))
    .with_context(|| format!("cannot mount the overlay of {}", dir.display()))?;
    Ok(())
}

/// The `/etc/hosts` of a machine: localhost lines, its own name, then everyone else's.
pub fn render_hosts(own: (Ipv4Addr, &str), others: &[(Ipv4Addr, String)]) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    s.push_str(&format!("{}\t{}\n", own.0, own.1));
    for (a, n) in others {
        if n != own.1 {
            s.push_str(&format!("{a}\t{n}\n"));
        }
    }
    s
}

/// Writes hostname, hosts and (first boot only) a machine id into the overlay before boot.
fn write_identity(m: &Machine, hosts: &[(Ipv4Addr, String)]) -> anyhow::Result<()> {
    write_via_host(
        &m.root,
        Path::new("etc/hostname"),
        format!("{}\n", m.hostname).as_bytes(),
        0o644,
    )?;
    write_via_host(
        &m.root,
        Path::new("etc/hosts"),
        render_hosts((m.address, &m.hostname), hosts).as_bytes(),
        0o644,
    )?;
    let id_path = m.root.join("etc/machine-id");
    let current = std::fs::read_to_string(&id_path).unwrap_or_default();
    if current.trim().len() != 32 {
        let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid")?;
        let id: String = uuid.trim().chars().filter(|c| *c != '-').collect();
        write_via_host(
            &m.root,
            Path::new("etc/machine-id"),
            format!("{id}\n").as_bytes(),
            0o444,
        )?;
    }
    Ok(())
}

fn check_hostname(h: &str) -> anyhow::Result<()> {
    let ok = !h.is_empty()
        && h.len() <= 63
        && !h.starts_with('-')
        && !h.ends_with('-')
        && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !ok {
        bail!("bad hostname {h:?}: use up to 63 letters, digits and '-', not at either end");
    }
    Ok(())
}

/// `path` inside the machine, as a relative path with only normal components.
pub(super) fn inside_path(path: &str) -> anyhow::Result<PathBuf> {
    let p = Path::new(path);
    if !p.is_absolute() {
        bail!("path {path:?} in the machine must be absolute");
    }
    let mut rel = PathBuf::new();
    for c in p.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => rel.push(n),
            _ => bail!("path {path:?} in the machine must not contain '.' or '..'"),
        }
    }
    if rel.as_os_str().is_empty() {
        bail!("path {path:?} names the machine's root, not a file");
    }
    Ok(rel)
}

/// Whether `rel` can be written through the host's view of a stopped machine's overlay: the
/// overlay is mounted and no existing directory on the way is a symlink.
fn host_writable(root: &Path, rel: &Path) -> bool {
    host::mount_at(root).is_some_and(|m| m.fstype == "overlay") && no_symlink_on_the_way(root, rel)
}

/// Whether no existing parent directory of `root/rel` below `root` is a symlink (the last
/// component may be one: a rename replaces the link itself).
fn no_symlink_on_the_way(root: &Path, rel: &Path) -> bool {
    let mut at = root.to_path_buf();
    let Some(parent) = rel.parent() else {
        return true;
    };
    for c in parent.components() {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(md) if md.file_type().is_symlink() => return false,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    true
}

fn write_via_host(root: &Path, rel: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    if !no_symlink_on_the_way(root, rel) {
        bail!(
            "refusing to write /{} through a symlink in the machine",
            rel.display()
        );
    }
    let target = root.join(rel);
    let parent = target.parent().context("no parent directory")?;
    std::fs::create_dir_all(parent)?;
    let name = target
        .file_name()
        .context("no file name")?
        .to_string_lossy()
        .into_owned();
    let tmp = parent.join(format!(".{name}.sandbox-tmp.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    std::fs::rename(&tmp, &target).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    Ok(())
}

impl Machine {
    /// Binds the host directory `host_dir` at `inside` in this running machine (what
    /// `machinectl bind` does): the machine creates the mount point itself; a forked child
    /// clones `host_dir` as a detached mount while still in the host's namespace, enters the
    /// machine's mount namespace (whose root is the machine's `/`) and moves the mount there,
    /// so `inside` is resolved only within the machine, never through the host's view of it.
    pub fn bind_in(&self, host_dir: &Path, inside: &str, read_only: bool) -> anyhow::Result<()> {
        use std::ffi::CString;
        use std::os::fd::AsRawFd;
        use std::os::unix::ffi::OsStrExt;
        inside_path(inside)?;
        let out = self.run(&["mkdir", "-p", "--", inside], Duration::from_secs(30))?;
        if out.status != 0 {
            bail!(
                "cannot make {inside} in machine {}: {}",
                self.id,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let pid1 = self
            .pid1()
            .with_context(|| format!("machine {} is not running: boot it first", self.id))?;
        let ns = std::fs::File::open(format!("/proc/{pid1}/ns/mnt"))
            .with_context(|| format!("cannot open the mount namespace of machine {}", self.id))?;
        let src = CString::new(host_dir.as_os_str().as_bytes())?;
        let dst = CString::new(inside)?;
        let mut cmd = Command::new("/bin/true");
        cmd.env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        sys::move_mount_into(&mut cmd, src, ns.as_raw_fd(), dst, read_only);
        let status = cmd.status().with_context(|| {
            format!(
                "cannot bind {} at {inside} in machine {}",
                host_dir.display(),
                self.id
            )
        })?;
        if !status.success() {
            bail!(
                "binding {} at {inside} in machine {} exited with {status}",
                host_dir.display(),
                self.id
            );
        }
        drop(ns);
        Ok(())
    }
}

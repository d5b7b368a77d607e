//! A sandbox per test: its own home, controller and network, destroyed (and checked clean)
//! when the test ends, also when it fails.

#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// One test's sandbox.
pub struct Sandbox {
    /// `$SANDBOX_HOME` of this test.
    pub home: PathBuf,
    bin: PathBuf,
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    if manifest.join("sandbox").is_dir() {
        manifest.to_path_buf()
    } else {
        manifest.parent().expect("workspace root").to_path_buf()
    }
}

/// The probe test charm (tests/charms/probe).
pub fn probe_charm() -> String {
    repo_root()
        .join("tests/charms/probe")
        .to_string_lossy()
        .into_owned()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative to the repository root, where the
/// tests' cargo runs) when set, else the workspace's `target`.
pub fn target_dir() -> PathBuf {
    let root = repo_root();
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |d| root.join(d))
}

/// The `sandbox` binary: Cargo's own when testing the sandbox crate, else `$SANDBOX_BIN`, else
/// the workspace's debug build.
pub fn sandbox_bin() -> PathBuf {
    if let Some(b) = option_env!("CARGO_BIN_EXE_sandbox") {
        return PathBuf::from(b);
    }
    std::env::var_os("SANDBOX_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("debug/sandbox"))
}

/// Copies a host file to `dest` on a unit's machine (mode 0755), through `sandbox ssh` with the
/// file as standard input.
pub fn copy_executable(sb: &Sandbox, unit: &str, src: &std::path::Path, dest: &str) {
    let file = std::fs::File::open(src).unwrap_or_else(|e| panic!("open {}: {e}", src.display()));
    let out = std::process::Command::new(sandbox_bin())
        .args([
            "ssh",
            unit,
            "--",
            &format!("cat > {dest}.part && chmod 0755 {dest}.part && mv {dest}.part {dest}"),
        ])
        .env("SANDBOX_HOME", &sb.home)
        .stdin(file)
        .output()
        .expect("run sandbox ssh");
    assert!(
        out.status.success(),
        "copying {} to {unit}:{dest}: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Sandbox {
    /// Bootstraps a fresh sandbox named after the test.
    pub fn new(test: &str) -> Sandbox {
        Sandbox::with_agent_version(test, None)
    }

    /// Bootstraps a fresh sandbox imitating a given Juju version (`2.9.44`), or the default.
    pub fn with_agent_version(test: &str, version: Option<&str>) -> Sandbox {
        let home = std::env::temp_dir().join("sandbox-tests").join(test);
        let sb = Sandbox {
            home,
            bin: sandbox_bin(),
        };
        // A previous run that was killed may have left this one behind.
        let _ = sb.run(&["destroy"]);
        let _ = std::fs::remove_dir_all(&sb.home);
        std::fs::create_dir_all(&sb.home).expect("home");
        match version {
            Some(v) => sb.ok(&["bootstrap", "--agent-version", v]),
            None => sb.ok(&["bootstrap"]),
        };
        sb.ok(&["model-config", "update-status-hook-interval=20s"]);
        sb
    }

    /// Runs `sandbox <args>`.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(args)
            .env("SANDBOX_HOME", &self.home)
            .env("SANDBOX_LEASE_SECONDS", "10")
            .output()
            .expect("run sandbox")
    }

    /// Runs `sandbox <args>`, asserts success and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "sandbox {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `status --format json`.
    pub fn status(&self) -> Value {
        serde_json::from_str(&self.ok(&["status", "--format", "json"])).expect("status json")
    }

    /// Waits until every unit is idle and active.
    pub fn wait_active(&self, units: usize) {
        let out = self.run(&["wait-for", "--timeout", "6m", "--units", &units.to_string()]);
        if !out.status.success() {
            let log = self.ok(&["debug-log", "--replay", "--no-tail"]);
            panic!(
                "wait-for failed: {}\n--- status ---\n{}\n--- log (tail) ---\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.ok(&["status"]),
                log.lines()
                    .rev()
                    .take(80)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }

    /// Polls `f` until it returns Some, or panics after `timeout`.
    pub fn eventually<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut() -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = f() {
                return v;
            }
            if start.elapsed() > timeout {
                panic!("timed out waiting for {what}\n{}", self.ok(&["status"]));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Runs a shell command on a unit's machine; returns (code, stdout, stderr).
    pub fn ssh(&self, unit: &str, cmd: &str) -> (i32, String, String) {
        let out = self.run(&["ssh", unit, "--", cmd]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs a command in a hook context on a unit; returns (code, stdout, stderr).
    pub fn exec(&self, unit: &str, cmd: &str) -> (i32, String, String) {
        let out = self.run(&["exec", "--unit", unit, "--", cmd]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The lines of a file the probe charm keeps on a unit (`/var/lib/probe/<file>`); none when
    /// it is not there (yet).
    pub fn probe_log(&self, unit: &str, file: &str) -> Vec<String> {
        let (_, out, _) = self.ssh(unit, &format!("cat /var/lib/probe/{file} 2>/dev/null"));
        out.lines().map(String::from).collect()
    }

    /// The units of an application, sorted by name.
    pub fn units(&self, app: &str) -> Vec<String> {
        let s = self.status();
        s["applications"][app]["units"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The leader unit of an application.
    pub fn leader(&self, app: &str) -> Option<String> {
        let s = self.status();
        s["applications"][app]["units"]
            .as_object()?
            .iter()
            .find(|(_, u)| u["leader"] == true)
            .map(|(n, _)| n.clone())
    }

    fn prefix(&self) -> String {
        let m: Value = serde_json::from_slice(
            &std::fs::read(self.home.join("model.json")).unwrap_or_default(),
        )
        .unwrap_or(Value::Null);
        m["prefix"].as_str().unwrap_or("").to_string()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let prefix = self.prefix();
        let out = self.run(&["destroy"]);
        let leaks = leaks(&prefix, &self.home);
        if !std::thread::panicking() {
            assert!(
                out.status.success(),
                "destroy failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(leaks.is_empty(), "destroy left behind: {leaks:?}");
        }
    }
}

/// Namespaces, mounts and nspawn processes of a sandbox that still exist.
pub fn leaks(prefix: &str, home: &Path) -> Vec<String> {
    let mut found = vec![];
    if !prefix.is_empty() {
        let ns = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default();
        for l in String::from_utf8_lossy(&ns).lines() {
            if l.starts_with(&format!("{prefix}-")) {
                found.push(format!("netns {l}"));
            }
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    // Component-wise: the home `…/etcd_tls` must not match `…/etcd_tls_switch`'s mounts.
    for l in mounts.lines() {
        if l.split(' ')
            .nth(1)
            .is_some_and(|m| Path::new(m).starts_with(home))
        {
            found.push(format!("mount {l}"));
        }
    }
    let ps = Command::new("pgrep")
        .args(["-af", "systemd-nspawn"])
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    let h = format!("{}/", home.to_string_lossy());
    for l in String::from_utf8_lossy(&ps).lines() {
        if l.contains(&h) {
            found.push(format!("process {l}"));
        }
    }
    found
}

//! `fault-client` end to end against a one-member etcd on loopback (the host's `/usr/bin/etcd`,
//! which `scripts/install-deps` installs): a run through a stall of the member (SIGSTOP for 4 s,
//! then SIGCONT) is judged clean, so is one through a compaction, a history altered to read a
//! value nobody wrote is judged not linearizable, and a second run on the same keys is refused.

use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_fault-client");

/// A one-member etcd on free loopback ports, stopped and removed when dropped.
struct Etcd {
    child: Child,
    dir: PathBuf,
    url: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Etcd {
    fn start(name: &str) -> Etcd {
        let dir = std::env::temp_dir().join(format!("checker-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (client, peer) = (free_port(), free_port());
        let url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.join("etcd.log")).unwrap();
        let child = Command::new("/usr/bin/etcd")
            .args(["--name", "local", "--data-dir"])
            .arg(dir.join("data"))
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("local={peer_url}")])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start /usr/bin/etcd (scripts/install-deps installs it)");
        let etcd = Etcd { child, dir, url };
        let start = Instant::now();
        while !Command::new("/usr/bin/etcdctl")
            .args(["--endpoints", &etcd.url, "endpoint", "health"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "etcd did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        etcd
    }

    /// Sends `sig` to etcd; whether it was delivered.
    fn signal(&self, sig: &str) -> bool {
        Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fault_client(args: &[&str], history: &Path) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg(history)
        .output()
        .expect("run fault-client");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `fault-client run` for `seconds` at 100 operations a second on `t/`, in the background.
fn start_run(etcd: &Etcd, history: &Path, seconds: &str) -> Child {
    Command::new(BIN)
        .args(["run", "--endpoints", &etcd.url, "--seconds", seconds])
        .args(["--rate", "100", "--prefix", "t/", "--out"])
        .arg(history)
        .spawn()
        .expect("run fault-client")
}

fn report(json: &str) -> Value {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

#[test]
fn a_stalled_member_gives_a_clean_history_and_an_altered_one_is_caught() {
    let etcd = Etcd::start("stall");
    let history = etcd.dir.join("history.json");
    let mut run = start_run(&etcd, &history, "8");
    std::thread::sleep(Duration::from_secs(2));
    assert!(etcd.signal("-STOP"), "stop etcd");
    // Longer than the clients' keepalive timeout (2 s): their connections break.
    std::thread::sleep(Duration::from_secs(4));
    assert!(etcd.signal("-CONT"), "resume etcd");
    assert!(run.wait().unwrap().success(), "fault-client run failed");

    let (ok, out, err) = fault_client(&["verify", "--endpoints", &etcd.url, "--history"], &history);
    assert!(ok, "{err}");
    let r = report(&out);
    assert_eq!(r["linearizable"], "yes", "{r:#}");
    assert_eq!(r["problems"], serde_json::json!([]), "{r:#}");
    assert_eq!(r["lost_writes"], 0, "{r:#}");
    assert!(r["ok"].as_u64() > Some(100), "{r:#}");
    assert!(
        r["indeterminate"].as_u64() > Some(0),
        "the stall timed writes out: {r:#}"
    );

    // The same history with one read of a value nobody wrote.
    let mut h: Value = serde_json::from_slice(&std::fs::read(&history).unwrap()).unwrap();
    let read = h["ops"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|o| o["call"]["type"] == "get" && o["outcome"]["outcome"] == "ok")
        .expect("an ok read");
    read["outcome"]["value"] = "nobody wrote this".into();
    let altered = etcd.dir.join("altered.json");
    std::fs::write(&altered, h.to_string()).unwrap();
    let (ok, out, err) = fault_client(&["check", "--history"], &altered);
    assert!(ok, "{err}");
    let r = report(&out);
    assert_eq!(r["linearizable"], "no", "{r:#}");

    // A second run on the same keys would start from values the checker does not know.
    let (ok, _, err) = fault_client(
        &["run", "--endpoints", &etcd.url, "--prefix", "t/", "--out"],
        &etcd.dir.join("again.json"),
    );
    assert!(
        !ok && err.contains("give each run a prefix of its own"),
        "{err}"
    );
}

/// The history compacted to the current revision in the middle of a run (as NOSPACE recovery
/// does): the clients' watch, started before, keeps every change; `verify` reads the member's
/// log from the compacted revision and its final values, and judges the run clean.
#[test]
fn a_compaction_during_a_run_is_judged_from_the_final_values() {
    let etcd = Etcd::start("compact");
    let history = etcd.dir.join("history.json");
    let mut run = start_run(&etcd, &history, "6");
    std::thread::sleep(Duration::from_secs(3));
    let status = Command::new("/usr/bin/etcdctl")
        .args(["--endpoints", &etcd.url, "endpoint", "status", "-w", "json"])
        .output()
        .expect("etcdctl endpoint status");
    let status: Value = serde_json::from_slice(&status.stdout).expect("endpoint status JSON");
    let revision = status[0]["Status"]["header"]["revision"]
        .as_i64()
        .expect("a revision");
    let compacted = Command::new("/usr/bin/etcdctl")
        .args(["--endpoints", &etcd.url, "compact", &revision.to_string()])
        .status()
        .expect("etcdctl compact");
    assert!(compacted.success(), "etcdctl compact {revision}");
    assert!(run.wait().unwrap().success(), "fault-client run failed");

    let (ok, out, err) = fault_client(&["verify", "--endpoints", &etcd.url, "--history"], &history);
    assert!(ok, "{err}");
    let r = report(&out);
    assert_eq!(r["compacted"], revision, "{r:#}");
    assert_eq!(r["linearizable"], "yes", "{r:#}");
    assert_eq!(r["problems"], serde_json::json!([]), "{r:#}");
    assert_eq!(r["lost_writes"], 0, "{r:#}");
    assert!(r["acknowledged_writes"].as_u64() > Some(100), "{r:#}");
}

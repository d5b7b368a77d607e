//! Helpers shared by the charm's integration tests: deploying the built charm and running
//! commands on its units. Each test includes it with `#[path = "support/mod.rs"] mod support;`.

#![allow(dead_code)]

#[path = "../../sandbox/tests/common/mod.rs"]
mod common;
#[allow(unused_imports)] // Only the tests that copy a binary in use it.
pub use common::copy_executable;
pub use common::{repo_root, target_dir, Sandbox};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The built charm and its etcd resource tarball; panics when `scripts/build-charm` has not run.
pub fn built_charm() -> (PathBuf, PathBuf) {
    let build = repo_root().join("build");
    let charm = build.join("etcd.charm");
    let resource = build.join("etcd.tar.gz");
    assert!(
        charm.exists() && resource.exists(),
        "run scripts/build-charm first (missing {})",
        charm.display()
    );
    (charm, resource)
}

/// The `objstore` command-line client: `$OBJSTORE_BIN`, else the workspace's debug build.
pub fn objstore_bin() -> PathBuf {
    let path = std::env::var_os("OBJSTORE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("debug/objstore"));
    assert!(
        path.is_file(),
        "objstore not found at {}: run `cargo build -p objstore`, or set OBJSTORE_BIN",
        path.display()
    );
    path
}

/// Deploys `n` units of the built charm with its etcd resource, passing `extra` arguments
/// (such as `--config k=v`) after them.
pub fn deploy_etcd(sb: &Sandbox, n: u32, extra: &[&str]) {
    let (charm, resource) = built_charm();
    let n = n.to_string();
    let resource = format!("etcd={}", resource.display());
    let mut args = vec![
        "deploy",
        charm.to_str().unwrap(),
        "-n",
        &n,
        "--resource",
        &resource,
    ];
    args.extend_from_slice(extra);
    sb.ok(&args);
}

/// Runs a shell command on a unit's machine: its trimmed stdout, or an error naming the
/// command, its exit code and output.
pub fn try_sh(sb: &Sandbox, unit: &str, cmd: &str) -> Result<String, String> {
    let (code, out, err) = sb.ssh(unit, cmd);
    if code == 0 {
        Ok(out.trim().to_string())
    } else {
        Err(format!("`{cmd}` on {unit} exited {code}: {out}{err}"))
    }
}

/// Runs a shell command on a unit's machine that must succeed; returns its trimmed stdout.
pub fn sh(sb: &Sandbox, unit: &str, cmd: &str) -> String {
    try_sh(sb, unit, cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// `etcdctl <args>` on a unit, as root with no flags (the charm sets up the endpoints);
/// returns (code, stdout, stderr).
pub fn etcdctl(sb: &Sandbox, unit: &str, args: &str) -> (i32, String, String) {
    sb.ssh(unit, &format!("etcdctl {args}"))
}

/// etcdctl's TLS flags for the files the db-client consumer wrote from its relation.
pub const CONSUMER_TLS: &str = "--cacert=/var/lib/db-client/tls/client_ca.pem \
     --cert=/var/lib/db-client/tls/client_cert.pem \
     --key=/var/lib/db-client/tls/client_key.pem";

/// A key's value read with etcdctl on an etcd unit.
pub fn get(sb: &Sandbox, unit: &str, key: &str) -> Result<String, String> {
    try_sh(sb, unit, &format!("etcdctl get --print-value-only {key}"))
}

/// Names of the started voting members in `etcdctl member list` output, sorted.
pub fn voting_members(member_list: &str) -> Vec<String> {
    let mut v: Vec<String> = member_list
        .lines()
        .filter(|l| l.contains(", started, ") && l.trim_end().ends_with("false"))
        .filter_map(|l| l.split(", ").nth(2).map(String::from))
        .collect();
    v.sort();
    v
}

/// Names of the started voting members as `unit` sees them (`etcdctl member list`), sorted.
pub fn voters(sb: &Sandbox, unit: &str) -> Vec<String> {
    let (code, out, err) = etcdctl(sb, unit, "member list");
    assert_eq!(code, 0, "member list on {unit}: {err}");
    voting_members(&out)
}

/// A unit's workload status from `status`: (current, message).
pub fn workload(sb: &Sandbox, unit: &str) -> (String, String) {
    let app = unit.split('/').next().unwrap();
    let s = sb.status();
    let w = &s["applications"][app]["units"][unit]["workload-status"];
    (
        w["current"].as_str().unwrap_or("").to_string(),
        w["message"].as_str().unwrap_or("").to_string(),
    )
}

/// Deploys the test consumer `tests/charms/<name>` with the built etcd tarball as its
/// `resource_name` resource.
pub fn deploy_consumer(sb: &Sandbox, name: &str, resource_name: &str) {
    let (_, resource) = built_charm();
    let dir = repo_root().join("tests/charms").join(name);
    sb.ok(&[
        "deploy",
        dir.to_str().unwrap(),
        "--resource",
        &format!("{resource_name}={}", resource.display()),
    ]);
}

/// The main PID of etcd's systemd service on a unit.
pub fn main_pid(sb: &Sandbox, unit: &str) -> String {
    sb.ssh(unit, "systemctl show -p MainPID --value etcd")
        .1
        .trim()
        .to_string()
}

/// Writes `w<i>` keys back to back (one `etcdctl put` each, ~50 a second) through every member's
/// endpoint until `/tmp/stop-writer` appears (at most `max` writes). Like any etcd client, it
/// retries a write once when its connection was to the very member that stopped (etcd closes its
/// client connections when it stops, which no server-side order can avoid); a write that fails
/// twice is a failure. Prints one `RETRY` line per retried write, one `FAIL` line per failed write
/// and a last `writes=<n> failures=<k>`.
pub fn writer_script(endpoints: &str, max: u32) -> String {
    format!(
        "rm -f /tmp/stop-writer; n=0; fail=0; \
         put() {{ etcdctl --endpoints={endpoints} --dial-timeout=2s --command-timeout=10s \
                  put w$n $n 2>&1; }}; \
         while [ ! -e /tmp/stop-writer ] && [ $n -lt {max} ]; do \
           n=$((n+1)); \
           if ! out=$(put); then echo \"RETRY w$n: $out\"; \
             if ! out=$(put); then fail=$((fail+1)); echo \"FAIL w$n: $out\"; fi; fi; \
         done; echo \"writes=$n failures=$fail\""
    )
}

/// Runs `body` while [`writer_script`] (at most `max` writes through `endpoints`) writes from
/// etcd/0, seen writing before `body` starts and stopped however `body` ends; the writer's
/// writes and summary line ([`writer_summary`]: no write failed), and what `body` returned.
pub fn while_writing<R>(
    sb: &Sandbox,
    endpoints: &str,
    max: u32,
    body: impl FnOnce() -> R,
) -> ((u64, String), R) {
    std::thread::scope(|s| {
        let writer = s.spawn(|| sb.ssh("etcd/0", &writer_script(endpoints, max)));
        struct Stop<'a>(&'a Sandbox);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.ssh("etcd/0", "touch /tmp/stop-writer");
            }
        }
        let stop = Stop(sb);
        sb.eventually("the writer to start", Duration::from_secs(60), || {
            let (_, n, _) = sb.ssh("etcd/0", "etcdctl get w3 --print-value-only");
            (n.trim() == "3").then_some(())
        });
        let out = body();
        drop(stop);
        (writer_summary(writer.join().expect("writer thread")), out)
    })
}

/// How many `w<i>` keys of [`writer_script`] a unit reads.
pub fn written(sb: &Sandbox, unit: &str) -> u64 {
    let (_, n, _) = sb.ssh(unit, "etcdctl get w --prefix --keys-only | grep -c .");
    n.trim().parse::<u64>().unwrap_or(0)
}

/// Waits until the writer has written `more` keys beyond what etcd/0 reads now.
pub fn wait_for_more_writes(sb: &Sandbox, more: u64, what: &str) {
    let so_far = written(sb, "etcd/0");
    sb.eventually(what, Duration::from_secs(60), || {
        (written(sb, "etcd/0") >= so_far + more).then_some(())
    });
}

/// Checks the result of [`writer_script`] run with `ssh`: it ran, and no write failed. Returns
/// the number of writes and the summary line.
pub fn writer_summary((code, out, err): (i32, String, String)) -> (u64, String) {
    assert_eq!(code, 0, "writer: {out}{err}");
    let summary = out.lines().last().unwrap_or_default().to_string();
    let fails: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(fails.is_empty(), "failed writes: {fails:#?}");
    let writes: u64 = summary
        .strip_prefix("writes=")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("writer summary: {out}"));
    assert_eq!(summary, format!("writes={writes} failures=0"));
    (writes, summary)
}

/// etcd's systemd timestamps on a unit (CLOCK_MONOTONIC, shared by every machine of the host):
/// main process start, when it last stopped being active, when it last became active (with
/// `Type=notify`: ready, i.e. back in a quorum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Main process start.
    pub started: u64,
    /// When it last stopped being active.
    pub left_active: u64,
    /// When it last became active (ready).
    pub ready: u64,
}

pub fn run_of(sb: &Sandbox, unit: &str) -> Run {
    let out = sh(
        sb,
        unit,
        "systemctl show -p ExecMainStartTimestampMonotonic -p ActiveExitTimestampMonotonic \
         -p ActiveEnterTimestampMonotonic etcd",
    );
    let v: BTreeMap<&str, u64> = out
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k, v.trim().parse().unwrap_or(0)))
        .collect();
    Run {
        started: v["ExecMainStartTimestampMonotonic"],
        left_active: v["ActiveExitTimestampMonotonic"],
        ready: v["ActiveEnterTimestampMonotonic"],
    }
}

/// Asserts that etcd restarted on every unit, one at a time: each stopped only after the previous
/// one was ready again. Returns each unit's run, by stop time.
pub fn restarted_one_at_a_time(sb: &Sandbox, units: &[String]) -> Vec<(String, Run)> {
    let mut after: Vec<(String, Run)> = units.iter().map(|u| (u.clone(), run_of(sb, u))).collect();
    after.sort_by_key(|(_, r)| r.left_active);
    for pair in after.windows(2) {
        let ((a, ra), (b, rb)) = (&pair[0], &pair[1]);
        assert!(
            rb.left_active > ra.ready,
            "{b} stopped before {a} was back: {ra:?} / {rb:?}"
        );
    }
    for (u, r) in &after {
        assert!(r.started > r.left_active, "{u} did not start again: {r:?}");
    }
    after
}

/// A resource tarball whose `etcd --version` says `version` (shell scripts, not etcd), made in
/// the sandbox's home.
pub fn fake_etcd_resource(sb: &Sandbox, version: &str) -> PathBuf {
    let dir = sb.home.join(format!("fake-etcd-{version}"));
    std::fs::create_dir_all(&dir).expect("fake resource dir");
    let etcd = format!("#!/bin/sh\necho 'etcd Version: {version}'\necho 'Git SHA: fake'\n");
    let etcdctl =
        format!("#!/bin/sh\necho 'etcdctl version: {version}'\necho 'API version: 3.3'\n");
    for (name, text) in [("etcd", etcd), ("etcdctl", etcdctl)] {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("fake binary");
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&path, mode).expect("chmod");
    }
    let tarball = sb.home.join(format!("etcd-{version}.tar.gz"));
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(&dir)
        .args(["etcd", "etcdctl"])
        .status()
        .expect("tar");
    assert!(status.success(), "tar of the fake resource");
    tarball
}

#[path = "../../objstore/tests/common/garage_bin.rs"]
mod garage_bin;
/// The Garage binary for the object-store tests (`$GARAGE_BIN` or `scripts/build-garage`'s cache).
#[allow(unused_imports)] // only the object-store tests use it
pub use garage_bin::garage_bin;

/// The network namespace of `unit`'s machine (`<prefix>-m<id>`, see sandbox/src/machine/net.rs):
/// a host process run in it with `ip netns exec` reaches the machines as that unit does.
pub fn netns_of(sb: &Sandbox, unit: &str) -> String {
    let model: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.home.join("model.json")).expect("model.json"))
            .expect("model.json is JSON");
    let prefix = model["prefix"].as_str().expect("a prefix").to_string();
    let app = unit.split('/').next().unwrap();
    let machine = sb.status()["applications"][app]["units"][unit]["machine"]
        .as_str()
        .expect("a machine")
        .to_string();
    format!("{prefix}-m{machine}")
}

//! Helpers shared by the charm's integration tests: deploying the built charm and running
//! commands on its units. Each test includes it with `#[path = "support/mod.rs"] mod support;`.

#![allow(dead_code)]

#[path = "../../sandbox/tests/common/mod.rs"]
mod common;
pub use common::{repo_root, Sandbox};
use std::path::PathBuf;

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

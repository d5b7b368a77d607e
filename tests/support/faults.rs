//! The fault suite's shared part (issue 16): a cluster with `tests/charms/db-client`, whose
//! machine runs `fault-client` (the `checker` crate) against the `connection_string` (and TLS
//! data) it got from the `db` relation; starting the clients, finding the Raft leader, waiting
//! for progress, and `finish`, which judges a scenario. A fault test file includes it after
//! `support` with `#[path = "support/faults.rs"] mod faults;`.
//!
//! With `FAULTS_TABLE_DIR` set, `finish` also writes the scenario's row of `bench/faults.sh`'s
//! table there as `<scenario>.json`.

#![allow(dead_code)]

use crate::support::{
    copy_executable, deploy_consumer, deploy_etcd, etcdctl, repo_root, sh, target_dir,
    voting_members, Sandbox,
};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// The unit the clients run on.
pub const CLIENT: &str = "db-client/0";
/// The clients' binary on that machine.
pub const CLIENT_BIN: &str = "/usr/local/bin/fault-client";
/// The history the clients write once they are done, and the file that stops them early.
pub const HISTORY: &str = "/root/history.json";
pub const STOP: &str = "/tmp/stop-faults";
/// How long a cluster may take to show progress again, or to settle after a fault.
pub const RECOVER: Duration = Duration::from_secs(180);

/// `fault-client`, built for this host once per test process (`cargo build -p checker`;
/// `FAULT_CLIENT_BIN` names a prebuilt one). Machines run this host's Debian, so it runs there.
pub fn fault_client() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(b) = std::env::var_os("FAULT_CLIENT_BIN") {
            return PathBuf::from(b);
        }
        let cargo = option_env!("CARGO").unwrap_or("cargo");
        let st = std::process::Command::new(cargo)
            .args(["build", "--quiet", "-p", "checker", "--bin", "fault-client"])
            .current_dir(repo_root())
            .status()
            .expect("run cargo build -p checker");
        assert!(st.success(), "cargo build -p checker failed");
        target_dir().join("debug/fault-client")
    })
    .clone()
}

/// etcd ×3 and db-client related over `db`, all active, with `fault-client` on the client.
pub fn cluster(name: &str) -> Sandbox {
    cluster_of(name, 3, &[])
}

/// etcd ×`n` (deployed with `extra` arguments, such as `--config k=v`) and db-client related
/// over `db`, all active, with `fault-client` on the client.
pub fn cluster_of(name: &str, n: u32, extra: &[&str]) -> Sandbox {
    let sb = Sandbox::new(name);
    // The default transport: TLS, with etcd RBAC (fault-client uses the relation's files).
    deploy_etcd(&sb, n, extra);
    deploy_consumer(&sb, "db-client", "etcdctl");
    sb.ok(&["integrate", "db-client:db", "etcd:db"]);
    sb.wait_active(n as usize + 1);
    copy_executable(&sb, CLIENT, &fault_client(), CLIENT_BIN);
    sb
}

/// Waits until the model is idle and active with `n` etcd units (and the client).
pub fn settle(sb: &Sandbox, n: usize) {
    sb.wait_active(n + 1);
}

/// Like [`settle`] while hooks killed on purpose fail and Juju retries them: `wait-for` stops
/// at a unit in `error`, so that is waited out (for up to [`RECOVER`]); any other failure, or
/// an error that stays, fails as in `settle`.
pub fn settle_through_retries(sb: &Sandbox, n: usize) {
    let deadline = std::time::Instant::now() + RECOVER;
    let units = (n + 1).to_string();
    loop {
        let out = sb.run(&["wait-for", "--timeout", "6m", "--units", &units]);
        let in_error = String::from_utf8_lossy(&out.stderr).contains("is in error");
        if out.status.success() || !in_error || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    settle(sb, n);
}

/// A shell command line on the client's machine running `fault-client <args>` with the `db`
/// relation's TLS files when its connection string is `https://` (`$cs` holds that string),
/// after `launcher` (such as `setsid nohup`).
fn client_command(launcher: &str, args: &str) -> String {
    format!(
        "cs=$(cat /var/lib/db-client/connection_string) && tls= && \
         case \"$cs\" in https://*) tls=\"--tls-dir /var/lib/db-client/tls\" ;; esac && \
         {launcher} {CLIENT_BIN} $tls {args}"
    )
}

/// The live etcd units, sorted.
pub fn etcd_units(sb: &Sandbox) -> Vec<String> {
    sb.units("etcd")
}

/// The client URL of each live etcd unit, from `status`, comma separated, with the scheme of
/// the client's connection string.
pub fn live_endpoints(sb: &Sandbox) -> String {
    let cs = sh(sb, CLIENT, "cat /var/lib/db-client/connection_string");
    let scheme = cs.split_once("://").map_or("http", |(s, _)| s).to_string();
    let s = sb.status();
    etcd_units(sb)
        .iter()
        .map(|u| {
            let addr = s["applications"]["etcd"]["units"][u]["public-address"]
                .as_str()
                .unwrap_or_else(|| panic!("no address for {u}"));
            format!("{scheme}://{addr}:2379")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The unit whose member is the Raft leader, as `unit` sees the cluster (waits for one).
pub fn raft_leader(sb: &Sandbox, unit: &str) -> String {
    sb.eventually("a Raft leader", RECOVER, || raft_leader_if_any(sb, unit))
}

/// The cluster's revision as a unit reads it (linearizable), if it answers.
pub fn revision(sb: &Sandbox, unit: &str) -> Option<i64> {
    let (code, out, _) = etcdctl(sb, unit, "get fault-probe -w json --command-timeout=3s");
    let v: Value = serde_json::from_str(out.trim())
        .ok()
        .filter(|_| code == 0)?;
    v["header"]["revision"].as_i64()
}

/// Waits until the clients have made `n` more changes, as `unit` reads the cluster.
pub fn clients_progress(sb: &Sandbox, unit: &str, n: i64, what: &str) {
    let from = sb.eventually(&format!("{unit} answering"), RECOVER, || revision(sb, unit));
    sb.eventually(what, RECOVER, || {
        revision(sb, unit).filter(|r| *r >= from + n)
    });
}

/// Starts the clients in the background on the client machine, against the endpoints the
/// `db` relation gave it, on keys of the scenario's own, and waits until they are writing.
pub fn start_clients(sb: &Sandbox, scenario: &str) {
    start_clients_with(sb, scenario, "");
}

/// [`start_clients`] with more `fault-client run` arguments (such as a longer `--seconds`).
pub fn start_clients_with(sb: &Sandbox, scenario: &str, extra: &str) {
    sh(
        sb,
        CLIENT,
        &format!(
            "rm -f {HISTORY} {STOP}; {} > /root/clients.log 2>&1 < /dev/null &",
            client_command(
                "setsid nohup",
                &format!(
                    "run --endpoints \"$cs\" --out {HISTORY} --stop-file {STOP} \
                 --prefix fault-{scenario}/ {extra}"
                )
            )
        ),
    );
    // Keys of the run appear once its clients write (a client that stopped at once says why).
    let keys = format!("etcdctl get fault-{scenario}/ --prefix --keys-only | grep -c .");
    let unit = etcd_units(sb)[0].clone();
    sb.eventually("the clients writing", RECOVER, || {
        let log = sb.ssh(CLIENT, "cat /root/clients.log").1;
        assert!(!log.contains("Error"), "fault-client: {log}");
        let (_, n, _) = sb.ssh(&unit, &keys);
        (n.trim().parse::<u32>().unwrap_or(0) >= 4).then_some(())
    });
}

/// Stops the clients, checks the end state (health, member list = live units) and judges the
/// history; panics with the report when anything is wrong. With `FAULTS_TABLE_DIR` set, writes
/// the scenario's figures and end state there first.
pub fn finish(sb: &Sandbox, scenario: &str) {
    let units = etcd_units(sb);
    let done = || sb.ssh(CLIENT, &format!("test -s {HISTORY}")).0 == 0;
    // Writes after the fault, unless the clients already reached their time limit.
    let from = sb.eventually("the cluster answering", RECOVER, || revision(sb, &units[0]));
    sb.eventually("the clients writing after the fault", RECOVER, || {
        (done() || revision(sb, &units[0]).is_some_and(|r| r >= from + 30)).then_some(())
    });
    sh(sb, CLIENT, &format!("touch {STOP}"));
    sb.eventually("the clients' history", RECOVER, || done().then_some(()));
    let log = sh(sb, CLIENT, "cat /root/clients.log");

    // Health passes and the members are exactly the live units, all voting.
    let health = sb.run(&["run", &units[0], "health"]);
    let healthy = health.status.success();
    let (code, members, err) = etcdctl(sb, &units[0], "member list");
    assert_eq!(code, 0, "member list: {err}");
    let voters = voting_members(&members);
    let want: Vec<String> = units.iter().map(|u| u.replace('/', "")).collect();
    let end_state = format!(
        "{}, {} members for {} units",
        if healthy { "healthy" } else { "UNHEALTHY" },
        members.lines().count(),
        units.len()
    );

    let out = sh(
        sb,
        CLIENT,
        &client_command(
            "",
            &format!(
                "verify --endpoints {} --history {HISTORY}",
                live_endpoints(sb)
            ),
        ),
    );
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    if let Some(dir) = std::env::var_os("FAULTS_TABLE_DIR") {
        let row =
            serde_json::json!({"scenario": scenario, "report": report, "end_state": end_state});
        std::fs::write(
            PathBuf::from(dir).join(format!("{scenario}.json")),
            row.to_string(),
        )
        .expect("write the table row");
    }
    assert!(
        healthy,
        "{scenario}: health failed: {}{}",
        String::from_utf8_lossy(&health.stdout),
        String::from_utf8_lossy(&health.stderr)
    );
    assert_eq!(voters, want, "{scenario}: voting members\n{members}");
    assert_eq!(
        members.lines().count(),
        units.len(),
        "{scenario}: {members}"
    );
    assert_eq!(
        report["linearizable"], "yes",
        "{scenario}: {report:#}\n{log}"
    );
    assert_eq!(report["lost_writes"], 0, "{scenario}: {report:#}");
    assert_eq!(
        report["problems"],
        serde_json::json!([]),
        "{scenario}: {report:#}"
    );
    assert!(report["ok"].as_u64() > Some(0), "{scenario}: {report:#}");
    let endpoints = live_endpoints(sb);
    eprintln!("{scenario}: {report}\n{end_state} ({endpoints})\n{log}");
}

/// The Raft leader's unit as `unit` sees it, or None while there is none or it does not answer.
pub fn raft_leader_if_any(sb: &Sandbox, unit: &str) -> Option<String> {
    let (code, out, _) = sb.ssh(unit, "etcdctl endpoint status -w json --command-timeout=3s");
    let statuses: Vec<Value> = serde_json::from_str(&out).ok().filter(|_| code == 0)?;
    let leader_id = statuses.first()?["Status"]["leader"].as_u64()?;
    let (code, out, _) = sb.ssh(unit, "etcdctl member list -w json --command-timeout=3s");
    let members: Value = serde_json::from_str(&out).ok().filter(|_| code == 0)?;
    let name = members["members"]
        .as_array()?
        .iter()
        .find(|m| m["ID"].as_u64() == Some(leader_id))?["name"]
        .as_str()?
        .to_string();
    etcd_units(sb)
        .into_iter()
        .find(|u| u.replace('/', "") == name)
}

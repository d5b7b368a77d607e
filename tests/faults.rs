//! The fault suite (issue 16): etcd ×3 related to `tests/charms/db-client`, whose machine runs
//! `fault-client` (the `checker` crate) against the `connection_string` it got from the `db`
//! relation: bounded clients (puts, linearizable gets, compare-and-swap transactions) and a
//! watch. Each scenario runs one fault under the clients and then checks that the `health`
//! action passes, the member list matches the live units, the history is linearizable,
//! revisions only grow, the watch saw every change once and in order, and every acknowledged
//! write is on every member. Needs root: it boots machines.
//!
//! With `FAULTS_TABLE_DIR` set, each scenario also writes its row of `bench/faults.sh`'s table
//! there as `<scenario>.json`.

#[path = "support/mod.rs"]
mod support;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;
use support::{
    copy_executable, deploy_consumer, deploy_etcd, etcdctl, repo_root, sh, voting_members, Sandbox,
};

/// The unit the clients run on.
const CLIENT: &str = "db-client/0";
/// The clients' binary on that machine.
const CLIENT_BIN: &str = "/usr/local/bin/fault-client";
/// The history the clients write once they are done, and the file that stops them early.
const HISTORY: &str = "/root/history.json";
const STOP: &str = "/tmp/stop-faults";
/// How long a cluster may take to show progress again, or to settle after a fault.
const RECOVER: Duration = Duration::from_secs(180);

/// `fault-client`, built for this host once per test process (`cargo build -p checker`;
/// `FAULT_CLIENT_BIN` names a prebuilt one). Machines run this host's Debian, so it runs there.
fn fault_client() -> PathBuf {
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
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target"));
        target.join("debug/fault-client")
    })
    .clone()
}

/// etcd ×3 and db-client related over `db`, all active, with `fault-client` on the client.
fn cluster(name: &str) -> Sandbox {
    let sb = Sandbox::new(name);
    // Plain http: the fault client dials the members' client URLs without certificates.
    deploy_etcd(&sb, 3, &["--config", "tls=false"]);
    deploy_consumer(&sb, "db-client", "etcdctl");
    sb.ok(&["integrate", "db-client:db", "etcd:db"]);
    sb.wait_active(4);
    copy_executable(&sb, CLIENT, &fault_client(), CLIENT_BIN);
    sb
}

/// The live etcd units, sorted.
fn etcd_units(sb: &Sandbox) -> Vec<String> {
    sb.units("etcd")
}

/// The client URL of each live etcd unit, from `status`, comma separated.
fn live_endpoints(sb: &Sandbox) -> String {
    let s = sb.status();
    etcd_units(sb)
        .iter()
        .map(|u| {
            let addr = s["applications"]["etcd"]["units"][u]["public-address"]
                .as_str()
                .unwrap_or_else(|| panic!("no address for {u}"));
            format!("http://{addr}:2379")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The unit whose member is the Raft leader, as `unit` sees the cluster (waits for one).
fn raft_leader(sb: &Sandbox, unit: &str) -> String {
    sb.eventually("a Raft leader", RECOVER, || raft_leader_if_any(sb, unit))
}

/// The cluster's revision as a unit reads it (linearizable), if it answers.
fn revision(sb: &Sandbox, unit: &str) -> Option<i64> {
    let (code, out, _) = etcdctl(sb, unit, "get fault-probe -w json --command-timeout=3s");
    let v: Value = serde_json::from_str(out.trim())
        .ok()
        .filter(|_| code == 0)?;
    v["header"]["revision"].as_i64()
}

/// Waits until the clients have made `n` more changes, as `unit` reads the cluster.
fn clients_progress(sb: &Sandbox, unit: &str, n: i64, what: &str) {
    let from = sb.eventually(&format!("{unit} answering"), RECOVER, || revision(sb, unit));
    sb.eventually(what, RECOVER, || {
        revision(sb, unit).filter(|r| *r >= from + n)
    });
}

/// Starts the clients in the background on the client machine, against the endpoints the
/// `db` relation gave it, on keys of the scenario's own, and waits until they are writing.
fn start_clients(sb: &Sandbox, scenario: &str) {
    sh(
        sb,
        CLIENT,
        &format!(
            "rm -f {HISTORY} {STOP}; cs=$(cat /var/lib/db-client/connection_string) && \
             setsid nohup {CLIENT_BIN} run --endpoints \"$cs\" --out {HISTORY} \
             --stop-file {STOP} --prefix fault-{scenario}/ > /root/clients.log 2>&1 < /dev/null &"
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
fn finish(sb: &Sandbox, scenario: &str) {
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
        &format!(
            "{CLIENT_BIN} verify --endpoints {} --history {HISTORY}",
            live_endpoints(sb)
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
    eprintln!("{scenario}: {report}\n{end_state}\n{log}");
}

/// (a) A follower cut off the network, then healed; (c) the Raft leader cut off from both
/// followers (the clients still reach it), then healed; a flapping partition: (c) three times
/// in a row.
#[test]
fn partitions_under_clients() {
    let sb = cluster("etcd_faults_partitions");

    start_clients(&sb, "partition-follower");
    let leader = raft_leader(&sb, "etcd/0");
    let follower = etcd_units(&sb).into_iter().find(|u| *u != leader).unwrap();
    sb.ok(&["partition", &follower]);
    clients_progress(&sb, &leader, 100, "writes while a follower is cut off");
    sb.ok(&["heal", &follower]);
    sb.wait_active(4);
    finish(&sb, "partition-follower");

    start_clients(&sb, "partition-leader");
    let leader = cut_leader_off(&sb, 50);
    sb.ok(&["heal", &leader]);
    sb.wait_active(4);
    finish(&sb, "partition-leader");

    start_clients(&sb, "flapping-partition");
    for _ in 0..3 {
        let leader = cut_leader_off(&sb, 20);
        sb.ok(&["heal", &leader]);
        let unit = etcd_units(&sb)[0].clone();
        clients_progress(&sb, &unit, 20, "writes after a heal");
    }
    sb.wait_active(4);
    finish(&sb, "flapping-partition");
}

/// Cuts the Raft leader off from the other members (the clients still reach it) and waits
/// until they have elected a new leader and the clients made `n` changes through it. Returns
/// the old leader's unit.
fn cut_leader_off(sb: &Sandbox, n: i64) -> String {
    let leader = raft_leader(sb, "etcd/0");
    let followers: Vec<String> = etcd_units(sb)
        .into_iter()
        .filter(|u| *u != leader)
        .collect();
    let mut args = vec!["partition", leader.as_str()];
    for f in &followers {
        args.extend(["--from", f.as_str()]);
    }
    sb.ok(&args);
    let new_leader = sb.eventually("a new Raft leader among the followers", RECOVER, || {
        raft_leader_if_any(sb, &followers[0]).filter(|l| *l != leader)
    });
    clients_progress(sb, &new_leader, n, "writes with the old leader cut off");
    leader
}

/// The Raft leader's unit as `unit` sees it, or None while there is none or it does not answer.
fn raft_leader_if_any(sb: &Sandbox, unit: &str) -> Option<String> {
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

/// (d) A machine restarted (etcd comes back under systemd); (b) the Raft leader's machine
/// killed, then removed with `remove-machine --force`, and the application grown back with
/// `add-unit`; every machine powered off at once, then started again.
#[test]
fn machine_failures_under_clients() {
    let sb = cluster("etcd_faults_machines");

    start_clients(&sb, "restart-machine");
    let leader = raft_leader(&sb, "etcd/0");
    sb.ok(&["restart-machine", &leader]);
    let other = etcd_units(&sb).into_iter().find(|u| *u != leader).unwrap();
    clients_progress(
        &sb,
        &other,
        100,
        "writes while the leader's machine restarts",
    );
    sb.eventually("the restarted member answering", RECOVER, || {
        revision(&sb, &leader)
    });
    sb.wait_active(4);
    finish(&sb, "restart-machine");

    start_clients(&sb, "kill-leader-machine");
    let leader = raft_leader(&sb, "etcd/0");
    sb.ok(&["kill-machine", &leader]);
    let survivors: Vec<String> = etcd_units(&sb)
        .into_iter()
        .filter(|u| *u != leader)
        .collect();
    clients_progress(
        &sb,
        &survivors[0],
        100,
        "writes with the leader's machine dead",
    );
    sb.ok(&["remove-machine", &leader, "--force"]);
    sb.eventually("the dead unit gone", RECOVER, || {
        (etcd_units(&sb).len() == 2).then_some(())
    });
    sb.wait_active(3);
    sb.ok(&["add-unit", "etcd"]);
    sb.wait_active(4);
    finish(&sb, "kill-leader-machine");

    start_clients(&sb, "power-off-all");
    let units = etcd_units(&sb);
    for u in &units {
        sb.ok(&["kill-machine", u]);
    }
    for u in &units {
        sb.ok(&["restart-machine", u]);
    }
    sb.wait_active(4);
    finish(&sb, "power-off-all");
}

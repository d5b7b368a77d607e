//! TLS on real machines: etcd -n 3 deployed with `tls=true` serves only https with client
//! certificates; `etcdctl` as root with no flags, the `health` action and both consumers
//! (`db-client` with etcdctl, `proxy-client` with grpc-proxy) work through the credentials the
//! charm publishes; a fourth unit joins as a learner over TLS; changing `tls` afterwards
//! blocks without restarting anything, and changing it back clears the block. Needs root.

#[path = "support/mod.rs"]
mod support;
use std::time::Duration;
use support::{deploy_consumer, deploy_etcd, main_pid, workload, Sandbox};

const DB_UNIT: &str = "db-client/0";
const PROXY_UNIT: &str = "proxy-client/0";

fn address(sb: &Sandbox, unit: &str) -> String {
    sb.status()["applications"]["etcd"]["units"][unit]["public-address"]
        .as_str()
        .expect("an address")
        .to_string()
}

/// `etcdctl endpoint health --cluster` through the wrapper: the healthy endpoints.
fn healthy_endpoints(sb: &Sandbox, unit: &str) -> Vec<String> {
    let (code, out, err) = sb.ssh(unit, "etcdctl endpoint health --cluster");
    assert_eq!(code, 0, "endpoint health on {unit}: {out}{err}");
    let mut eps: Vec<String> = format!("{out}{err}")
        .lines()
        .filter(|l| l.contains(" is healthy"))
        .filter_map(|l| l.split(' ').next().map(String::from))
        .collect();
    eps.sort();
    eps
}

#[test]
fn tls_cluster_serves_only_https_with_client_certificates() {
    let sb = Sandbox::new("etcd_tls");
    deploy_etcd(&sb, 3, &["--config", "tls=true"]);
    deploy_consumer(&sb, "db-client", "etcdctl");
    deploy_consumer(&sb, "proxy-client", "etcd");
    sb.ok(&["integrate", "db-client:db", "etcd:db"]);
    sb.ok(&["integrate", "proxy-client:proxy", "etcd:proxy"]);
    sb.wait_active(5);

    // etcdctl as root with no flags: the whole cluster over https.
    let eps = healthy_endpoints(&sb, "etcd/0");
    assert_eq!(eps.len(), 3, "{eps:?}");
    assert!(eps.iter().all(|e| e.starts_with("https://")), "{eps:?}");

    // Plain http is refused, and so is https without a client certificate.
    let ip = address(&sb, "etcd/1");
    let bare = "ETCDCTL_API=3 /opt/etcd/bin/etcdctl --dial-timeout=3s --command-timeout=3s";
    let (code, out, err) = sb.ssh(
        "etcd/0",
        &format!("{bare} --endpoints=http://{ip}:2379 get probe"),
    );
    assert_ne!(code, 0, "plain http answered: {out}{err}");
    let (code, out, err) = sb.ssh(
        "etcd/0",
        &format!("{bare} --endpoints=https://{ip}:2379 --cacert=/etc/etcd/tls/ca.crt get probe"),
    );
    assert_ne!(
        code, 0,
        "https without a client certificate answered: {out}{err}"
    );

    // The key is the etcd group's, read-only; the client key is root's alone.
    let (_, modes, _) = sb.ssh(
        "etcd/0",
        "stat -c '%n %U:%G %a' /etc/etcd/tls /etc/etcd/tls/server.key /etc/etcd/tls/client.key",
    );
    assert_eq!(
        modes.trim(),
        "/etc/etcd/tls root:etcd 750\n/etc/etcd/tls/server.key root:etcd 640\n\
         /etc/etcd/tls/client.key root:root 600"
    );

    // The consumers work over TLS with the credentials from the relations.
    let (code, cs, err) = sb.exec(
        DB_UNIT,
        "rid=$(relation-ids db); relation-get -r $rid connection_string $(relation-list -r $rid | head -1)",
    );
    assert_eq!(code, 0, "{err}");
    assert!(cs.trim().starts_with("https://"), "connection_string {cs}");
    let (code, ca, err) = sb.exec(
        DB_UNIT,
        "rid=$(relation-ids db); relation-get -r $rid client_ca $(relation-list -r $rid | head -1)",
    );
    assert_eq!(code, 0, "{err}");
    assert!(ca.contains("BEGIN CERTIFICATE"), "client_ca {ca}");
    assert_eq!(
        workload(&sb, DB_UNIT),
        ("active".into(), "read and wrote through 3 endpoints".into())
    );
    assert_eq!(
        workload(&sb, PROXY_UNIT),
        (
            "active".into(),
            "grpc-proxy 127.0.0.1:23790 -> 3 etcd endpoints".into()
        )
    );

    // A fourth unit joins as a learner over TLS and is promoted; nothing else restarts.
    let pids: Vec<String> = ["etcd/0", "etcd/1", "etcd/2"]
        .iter()
        .map(|u| main_pid(&sb, u))
        .collect();
    sb.ok(&["add-unit", "etcd"]);
    sb.wait_active(6);
    sb.eventually("4 healthy members", Duration::from_secs(120), || {
        (healthy_endpoints(&sb, "etcd/3").len() == 4).then_some(())
    });
    sb.eventually("db-client on 4 endpoints", Duration::from_secs(120), || {
        (workload(&sb, DB_UNIT).1 == "read and wrote through 4 endpoints").then_some(())
    });
    let (code, out, err) = sb.ssh("etcd/3", "etcdctl member list");
    assert_eq!(code, 0, "{err}");
    let voters = out
        .lines()
        .filter(|l| l.contains(", started, ") && l.contains("https://"))
        .filter(|l| l.trim_end().ends_with("false"))
        .count();
    assert_eq!(voters, 4, "{out}");

    // The health action talks TLS too.
    let out = sb.run(&["run", "etcd/0", "health"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "health failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("cluster is healthy"), "{text}");

    // TLS is fixed at bootstrap: tls=false blocks every unit and changes nothing.
    let units = ["etcd/0", "etcd/1", "etcd/2", "etcd/3"];
    let pids_before: Vec<String> = units.iter().map(|u| main_pid(&sb, u)).collect();
    assert_eq!(pids_before[..3], pids[..], "the join restarted a member");
    sb.ok(&["config", "etcd", "tls=false"]);
    let want = "config tls=false takes effect only for a new deployment: this cluster runs with \
                tls=true; set it back with `juju config <app> tls=true`";
    sb.eventually(
        "every unit blocked on tls",
        Duration::from_secs(120),
        || {
            units
                .iter()
                .all(|u| workload(&sb, u) == ("blocked".to_string(), want.to_string()))
                .then_some(())
        },
    );
    let pids_blocked: Vec<String> = units.iter().map(|u| main_pid(&sb, u)).collect();
    assert_eq!(pids_blocked, pids_before, "a unit restarted etcd");
    assert_eq!(healthy_endpoints(&sb, "etcd/2").len(), 4);
    sb.ok(&["config", "etcd", "tls=true"]);
    sb.wait_active(6);
    let pids_after: Vec<String> = units.iter().map(|u| main_pid(&sb, u)).collect();
    assert_eq!(pids_after, pids_before, "a unit restarted etcd");
}

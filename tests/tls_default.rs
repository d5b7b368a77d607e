//! TLS by default, on real machines (issue 13): a default `deploy -n 3` serves only https with
//! client certificates, and its db consumer works with the relation's credentials. A plain-http
//! cluster deployed by an older revision (the built charm with `default: false` for `tls`, and
//! leader data without `tls`) stays plain http and working across a refresh to this charm, its
//! status saying how to keep it or switch; `tls=false` then acknowledges it and `tls=true`
//! switches it to TLS with its keys kept. Needs root.

#[path = "support/mod.rs"]
mod support;
use std::time::Duration;
use support::{built_charm, deploy_consumer, deploy_etcd, get, main_pid, sh, workload, Sandbox};

const DB_UNIT: &str = "db-client/0";

/// etcdctl itself, with no settings of the charm's wrapper.
const BARE: &str = "ETCDCTL_API=3 /opt/etcd/bin/etcdctl --dial-timeout=3s --command-timeout=3s";

fn address(sb: &Sandbox, unit: &str) -> String {
    sb.status()["applications"]["etcd"]["units"][unit]["public-address"]
        .as_str()
        .expect("an address")
        .to_string()
}

/// `etcdctl get` of `key` on etcd/1's client port over plain http, from etcd/0.
fn plain_get(sb: &Sandbox, key: &str) -> (i32, String, String) {
    let ip = address(sb, "etcd/1");
    let cmd = format!("{BARE} --endpoints=http://{ip}:2379 get --print-value-only {key}");
    sb.ssh("etcd/0", &cmd)
}

/// The peer URLs `etcdctl member list` shows.
fn peer_urls(sb: &Sandbox) -> Vec<String> {
    let list = sh(sb, "etcd/0", "etcdctl member list");
    let urls = list.lines().filter_map(|l| l.split(", ").nth(3));
    urls.map(String::from).collect()
}

/// Waits until every etcd unit's workload status is `active` and its message satisfies `ok`.
fn every_status(sb: &Sandbox, what: &str, ok: impl Fn(&str) -> bool) {
    sb.eventually(what, Duration::from_secs(360), || {
        let all = ["etcd/0", "etcd/1", "etcd/2"].iter().all(|u| {
            let (state, message) = workload(sb, u);
            state == "active" && ok(&message)
        });
        all.then_some(())
    });
}

fn leader_get(sb: &Sandbox, key: &str) -> String {
    let (_, v, _) = sb.exec("etcd/0", &format!("leader-get {key}"));
    v.trim().to_string()
}

#[test]
fn a_default_deploy_serves_only_tls_and_its_consumer_uses_the_relation_credentials() {
    let sb = Sandbox::new("etcd_tls_default");
    deploy_etcd(&sb, 3, &[]);
    deploy_consumer(&sb, "db-client", "etcdctl");
    sb.ok(&["integrate", "db-client:db", "etcd:db"]);
    sb.wait_active(4);
    assert_eq!(leader_get(&sb, "tls"), "true");
    assert_eq!(workload(&sb, "etcd/0").1, "3 members healthy");
    assert!(peer_urls(&sb).iter().all(|u| u.starts_with("https://")));

    // http refused on the client port, https without a client certificate refused.
    let (code, out, err) = plain_get(&sb, "probe");
    assert_ne!(code, 0, "plain http answered: {out}{err}");
    let ip = address(&sb, "etcd/1");
    let (code, out, err) = sb.ssh(
        "etcd/0",
        &format!("{BARE} --endpoints=https://{ip}:2379 --cacert=/etc/etcd/tls/ca.crt get probe"),
    );
    assert_ne!(code, 0, "https without a client certificate: {out}{err}");

    // The consumer reads and writes with the relation's credentials, over https.
    let (code, cs, err) = sb.exec(
        DB_UNIT,
        "rid=$(relation-ids db); relation-get -r $rid connection_string $(relation-list -r $rid | head -1)",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        cs.trim().split(',').all(|u| u.starts_with("https://")),
        "{cs}"
    );
    assert_eq!(
        workload(&sb, DB_UNIT),
        ("active".into(), "read and wrote through 3 endpoints".into())
    );
}

#[test]
fn a_refresh_leaves_a_plaintext_cluster_plaintext_until_tls_is_changed() {
    let sb = Sandbox::new("etcd_tls_refresh");
    let (charm, resource) = built_charm();
    // The older revision: the same charm, `tls` defaulting to false.
    let old = sb.home.join("etcd-old");
    let staged = charm.with_file_name("charm");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(&staged)
        .arg(&old)
        .status()
        .expect("cp runs");
    assert!(copied.success());
    let yaml = std::fs::read_to_string(old.join("config.yaml")).unwrap();
    let tls = "  tls:\n    type: boolean\n    default: true\n";
    assert!(yaml.contains(tls), "the tls option in {yaml}");
    let yaml = yaml.replace(tls, "  tls:\n    type: boolean\n    default: false\n");
    std::fs::write(old.join("config.yaml"), yaml).unwrap();
    let resource = format!("etcd={}", resource.display());
    let args = ["deploy", old.to_str().unwrap(), "etcd", "-n", "3"];
    sb.ok(&[&args[..], &["--resource", &resource]].concat());
    sb.wait_active(3);
    sh(&sb, "etcd/0", "etcdctl put before-refresh kept");
    // An older revision's leader data has no `tls`: what runs says.
    let leader = sb.leader("etcd").expect("a leader");
    let (code, _, err) = sb.exec(&leader, "leader-set tls=");
    assert_eq!(code, 0, "{err}");
    let pids: Vec<String> = ["etcd/0", "etcd/1", "etcd/2"]
        .iter()
        .map(|u| main_pid(&sb, u))
        .collect();

    // The refresh: `tls` now reads true (the new default); the cluster stays on http.
    sb.ok(&["refresh", "etcd", "--path", charm.to_str().unwrap()]);
    let kept = "kept on plain http across the refresh although tls now reads true";
    let how = "keep http with `juju config etcd tls=false`, or switch to TLS with \
               `juju config etcd tls=false` then `juju config etcd tls=true`";
    every_status(&sb, "the transport kept", |m| {
        m.contains(kept) && m.ends_with(how)
    });
    assert_eq!(leader_get(&sb, "tls-kept"), "true");
    let (code, v, err) = plain_get(&sb, "before-refresh");
    assert_eq!(
        (code, v.trim()),
        (0, "kept"),
        "plain http after the refresh: {err}"
    );
    assert!(peer_urls(&sb).iter().all(|u| u.starts_with("http://")));
    sh(&sb, "etcd/2", "etcdctl put after-refresh yes");
    let after: Vec<String> = ["etcd/0", "etcd/1", "etcd/2"]
        .iter()
        .map(|u| main_pid(&sb, u))
        .collect();
    assert_eq!(after, pids, "the refresh restarted etcd");

    // `tls=false` acknowledges plain http: the record goes, the status says what it means.
    sb.ok(&["config", "etcd", "tls=false"]);
    every_status(&sb, "plain http acknowledged", |m| {
        !m.contains("kept")
            && m.contains("unencrypted and unauthenticated")
            && m.ends_with("switch to TLS with `juju config etcd tls=true`")
    });
    assert_eq!(leader_get(&sb, "tls-kept"), "");
    assert_eq!(plain_get(&sb, "after-refresh").0, 0);

    // `tls=true` switches through the rolling switch, the keys kept.
    sb.ok(&["config", "etcd", "tls=true"]);
    sb.eventually("the switch recorded", Duration::from_secs(360), || {
        (leader_get(&sb, "tls") == "true").then_some(())
    });
    every_status(&sb, "active on TLS", |m| m == "3 members healthy");
    assert!(peer_urls(&sb).iter().all(|u| u.starts_with("https://")));
    assert_ne!(plain_get(&sb, "before-refresh").0, 0, "http still answers");
    for (key, value) in [("before-refresh", "kept"), ("after-refresh", "yes")] {
        assert_eq!(get(&sb, "etcd/1", key).as_deref(), Ok(value), "{key}");
    }
}

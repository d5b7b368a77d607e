//! COS: the `cos-agent` payload's dashboards as the agents decode them, and (with machines,
//! `--run-ignored`) etcd's metrics listener across the sandbox network.

use base64::Engine;
use etcd_charm::core::cos;
use serde_json::{json, Value};

#[test]
fn dashboard_is_xz_json_with_its_uid_and_tag() {
    let encoded = cos::dashboards();
    assert_eq!(encoded.len(), 1);
    // The xz container, as Python's `lzma.compress` writes it.
    assert!(
        encoded[0].starts_with("/Td6WFoAAATm1rRG"),
        "{}",
        &encoded[0][..16]
    );
    let xz = base64::engine::general_purpose::STANDARD
        .decode(&encoded[0])
        .unwrap();
    let mut json = Vec::new();
    let mut reader = lzma_rust2::XzReader::new(xz.as_slice(), false);
    std::io::Read::read_to_end(&mut reader, &mut json).unwrap();
    let d: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(d["uid"], "0af808fbd476400df882fb6e00aae619ba0ed232");
    let tags = d["tags"].as_array().unwrap();
    assert!(tags.contains(&json!("charm: etcd")) && tags.contains(&json!("etcd")));
    assert!(d["panels"].as_array().is_some_and(|p| !p.is_empty()));
}

#[path = "support/mod.rs"]
mod support;
use std::process::Command;
use std::time::Duration;
use support::{deploy_consumer, deploy_etcd, netns_of, restarted_one_at_a_time, Sandbox};

/// `curl -sS <url>` run by the host in `netns` (a machine's network, loopback included): the
/// body, or curl's error.
fn curl(netns: &str, url: &str) -> Result<String, String> {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            netns,
            "curl",
            "-sS",
            "--fail",
            "--max-time",
            "5",
            url,
        ])
        .output()
        .expect("curl runs");
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

/// The ports a unit has opened, as `opened-ports` prints them.
fn opened_ports(sb: &Sandbox, unit: &str) -> String {
    let (code, out, err) = sb.exec(unit, "opened-ports");
    assert_eq!(code, 0, "opened-ports on {unit}: {err}");
    out
}

/// `etcd_charm_last_defrag_timestamp_seconds` as the facts exporter of `unit` serves it, on its
/// machine's loopback.
fn last_defrag(sb: &Sandbox, unit: &str) -> i64 {
    let facts = curl(&netns_of(sb, unit), "http://127.0.0.1:9379/metrics").unwrap();
    let line = facts
        .lines()
        .find_map(|l| l.strip_prefix("etcd_charm_last_defrag_timestamp_seconds "));
    let value = line.and_then(|v| v.trim().parse().ok());
    value.unwrap_or_else(|| panic!("no last defrag from {unit}: {facts}"))
}

/// The hosts of the `db` relation's `connection_string`, as the consumer reads it.
fn member_hosts(sb: &Sandbox, n: usize) -> Vec<String> {
    sb.eventually(
        "connection_string with every member",
        Duration::from_secs(120),
        || {
            let (_, out, _) = sb.exec(
                "db-client/0",
                "relation-get -r $(relation-ids db | head -1) connection_string etcd/0",
            );
            let hosts: Vec<String> = out
                .trim()
                .split(',')
                .filter_map(|u| u.split_once("://")?.1.rsplit_once(':'))
                .map(|(h, _)| h.to_string())
                .collect();
            (hosts.len() == n).then_some(hosts)
        },
    )
}

/// etcd's metrics listener answers `/metrics` and `/health` on every member's address from a
/// consumer's machine, with the listener's port opened; a new `metrics_port` moves it (members
/// restarted one at a time) and closes the old port. The facts exporter answers on each unit's
/// loopback only, and reports a defragmentation.
#[test]
fn metrics_listener_and_facts_exporter_answer() {
    let sb = Sandbox::new("etcd_cos_metrics");
    deploy_etcd(&sb, 2, &[]);
    deploy_consumer(&sb, "db-client", "etcdctl");
    sb.ok(&["integrate", "db-client:db", "etcd:db"]);
    sb.wait_active(3);
    let client = netns_of(&sb, "db-client/0");
    let hosts = member_hosts(&sb, 2);
    for host in &hosts {
        let metrics = curl(&client, &format!("http://{host}:2381/metrics")).unwrap();
        assert!(metrics.contains("\netcd_server_has_leader 1\n"), "{host}");
        let health = curl(&client, &format!("http://{host}:2381/health")).unwrap();
        assert!(health.contains(r#""health":"true""#), "{host}: {health}");
        // The facts exporter listens on loopback only.
        assert!(curl(&client, &format!("http://{host}:9379/metrics")).is_err());
    }
    for unit in ["etcd/0", "etcd/1"] {
        let ports = opened_ports(&sb, unit);
        assert!(
            ports.contains("2379/tcp") && ports.contains("2381/tcp"),
            "{unit}: {ports}"
        );
    }

    assert_eq!(last_defrag(&sb, "etcd/0"), 0);
    let out = sb.run(&["run", "etcd/0", "defrag"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(last_defrag(&sb, "etcd/0") > 0);
    assert_eq!(last_defrag(&sb, "etcd/1"), 0);
    // `defrag all=true` on etcd/0 reaches etcd/1's member, and its unit records it.
    let out = sb.run(&["run", "etcd/0", "defrag", "all=true"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    sb.eventually(
        "etcd/1 records its defragmentation",
        Duration::from_secs(60),
        || (last_defrag(&sb, "etcd/1") > 0).then_some(()),
    );

    sb.ok(&["config", "etcd", "metrics_port=2391"]);
    for host in &hosts {
        sb.eventually(
            "the metrics listener on 2391",
            Duration::from_secs(180),
            || curl(&client, &format!("http://{host}:2391/metrics")).ok(),
        );
    }
    sb.wait_active(3);
    let units = sb.units("etcd");
    restarted_one_at_a_time(&sb, &units);
    for host in &hosts {
        assert!(curl(&client, &format!("http://{host}:2381/metrics")).is_err());
    }
    for unit in ["etcd/0", "etcd/1"] {
        let ports = opened_ports(&sb, unit);
        assert!(
            ports.contains("2391/tcp") && !ports.contains("2381/tcp"),
            "{unit}: {ports}"
        );
    }
}

/// The `prometheus` binary `scripts/install-deps` unpacked from Debian's package, packed as the
/// prometheus-agent test charm's resource in the sandbox's home.
fn prometheus_resource(sb: &Sandbox) -> std::path::PathBuf {
    let tools = std::env::var("ETCD_CHARM_TOOLS")
        .unwrap_or_else(|_| "/var/cache/etcd-charm-tools".to_string());
    let bin = std::path::Path::new(&tools).join("prometheus/current/usr/bin");
    assert!(
        bin.join("prometheus").exists(),
        "run scripts/install-deps first (no {})",
        bin.display()
    );
    let tarball = sb.home.join("prometheus.tar.gz");
    let out = Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(&bin)
        .arg("prometheus")
        .output()
        .expect("tar runs");
    assert!(out.status.success(), "{out:?}");
    tarball
}

/// A PromQL query to the Prometheus of the agent beside `unit`: the result vector.
fn query(sb: &Sandbox, unit: &str, promql: &str) -> Vec<Value> {
    let netns = netns_of(sb, unit);
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &netns,
            "curl",
            "-sS",
            "--max-time",
            "5",
            "-G",
        ])
        .args(["http://127.0.0.1:9090/api/v1/query", "--data-urlencode"])
        .arg(format!("query={promql}"))
        .output()
        .expect("curl runs");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// The values of a query's series, as numbers.
fn values(result: &[Value]) -> Vec<f64> {
    let value = |s: &Value| s["value"][1].as_str()?.parse().ok();
    result.iter().filter_map(value).collect()
}

/// The real parts: the prometheus-agent test charm, related to etcd over `cos-agent` as
/// grafana-agent would be, runs Debian's Prometheus with exactly the scrape jobs and rules the
/// charm publishes. Every member is `up` with a Raft leader, the facts job answers, and when a
/// member's machine is killed the charm's `EtcdMemberDown` alert fires on a surviving agent.
#[test]
fn prometheus_scrapes_every_member_and_alerts_on_a_lost_one() {
    let sb = Sandbox::new("etcd_cos_prometheus");
    let resource = prometheus_resource(&sb);
    deploy_etcd(&sb, 3, &[]);
    let charm = support::repo_root().join("tests/charms/prometheus-agent");
    let resource = format!("prometheus={}", resource.display());
    sb.ok(&["deploy", charm.to_str().unwrap(), "--resource", &resource]);
    sb.ok(&["integrate", "etcd", "prometheus-agent"]);
    sb.wait_active(6);
    let units = sb.units("etcd");
    assert_eq!(units.len(), 3);
    for unit in &units {
        let member =
            format!("{{job=\"etcd_etcd\",juju_unit=\"{unit}\",juju_application=\"etcd\"}}");
        let wait = Duration::from_secs(120);
        sb.eventually(&format!("{unit} scraped with a leader"), wait, || {
            let up = values(&query(&sb, unit, &format!("up{member}")));
            let leader = values(&query(
                &sb,
                unit,
                &format!("etcd_server_has_leader{member}"),
            ));
            (up == [1.0] && leader == [1.0]).then_some(())
        });
        let facts = format!("up{{job=\"{}\"}}", cos::facts_job_name("etcd"));
        sb.eventually(&format!("{unit}'s facts scraped"), wait, || {
            (values(&query(&sb, unit, &facts)) == [1.0]).then_some(())
        });
    }
    let down = "ALERTS{alertname=~\"EtcdMemberDown|EtcdClusterNoLeader\"}";
    let before = query(&sb, &units[0], down);
    assert!(
        before.is_empty(),
        "no member down before the fault: {before:?}"
    );

    let lost = &units[2];
    sb.ok(&["kill-machine", lost]);
    let firing = "ALERTS{alertname=\"EtcdMemberDown\",alertstate=\"firing\"}";
    let alerts = sb.eventually("EtcdMemberDown firing", Duration::from_secs(420), || {
        let alerts = query(&sb, &units[0], firing);
        (!alerts.is_empty()).then_some(alerts)
    });
    let labels = &alerts[0]["metric"];
    assert_eq!(labels["juju_application"], "etcd", "{alerts:?}");
    assert_eq!(labels["juju_charm"], "etcd", "{alerts:?}");
    assert!(
        labels["Remote"].as_str().is_some_and(|r| !r.is_empty()),
        "{alerts:?}"
    );
}

/// With TLS (the default), the facts exporter reports the `notAfter` of the CA, member and client
/// certificates the unit holds, as `openssl` reads them from the files.
#[test]
fn facts_exporter_reports_certificate_expiry_with_tls() {
    let sb = Sandbox::new("etcd_cos_tls_facts");
    deploy_etcd(&sb, 1, &[]);
    sb.wait_active(1);
    let netns = netns_of(&sb, "etcd/0");
    let facts = curl(&netns, "http://127.0.0.1:9379/metrics").unwrap();
    for (name, file) in [
        ("ca", "ca.crt"),
        ("member", "server.crt"),
        ("client", "client.crt"),
    ] {
        let pem = support::sh(&sb, "etcd/0", &format!("cat /etc/etcd/tls/{file}"));
        let mut openssl = Command::new("openssl")
            .args(["x509", "-noout", "-enddate", "-dateopt", "iso_8601"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("openssl runs");
        use std::io::Write;
        openssl
            .stdin
            .take()
            .unwrap()
            .write_all(pem.as_bytes())
            .unwrap();
        let out = openssl.wait_with_output().unwrap();
        // notAfter=2036-05-06 00:00:00Z
        let end = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let date = end.strip_prefix("notAfter=").expect("an end date");
        let unix = Command::new("date")
            .args(["-u", "-d", date, "+%s"])
            .output()
            .expect("date runs");
        let unix = String::from_utf8_lossy(&unix.stdout).trim().to_string();
        let series = format!(
            "etcd_charm_certificate_expiry_timestamp_seconds{{certificate=\"{name}\"}} {unix}\n"
        );
        assert!(facts.contains(&series), "{series} not in {facts}");
    }
}

//! An external CA on real machines: etcd -n 3 (TLS by default) with a db-client consumer and a
//! bounded writer is related to `tests/charms/tls-provider` (a tls-certificates v4 provider
//! with its own CA, signing with openssl). Every member ends serving, on its client port, a
//! certificate from the provider's CA without a restart; the consumer works with the bundle it
//! is given; `health` passes; a member restarted then comes back on it and its JSON gateway is
//! refused (the limitation the README states). Garbage `certificates` from the provider is logged and ignored.
//! Removing the relation brings every member back to the charm's CA. No acknowledged write
//! fails throughout. Needs root.

#[path = "support/mod.rs"]
mod support;
use std::time::Duration;
use support::{deploy_consumer, deploy_etcd, main_pid, netns_of, workload, Sandbox};

const DB_UNIT: &str = "db-client/0";
const UNITS: [&str; 3] = ["etcd/0", "etcd/1", "etcd/2"];

fn address(sb: &Sandbox, unit: &str) -> String {
    sb.status()["applications"]["etcd"]["units"][unit]["public-address"]
        .as_str()
        .expect("an address")
        .to_string()
}

/// The issuer of the certificate `unit`'s client port presents (asked from etcd/0 with its
/// client certificate).
fn served_issuer(sb: &Sandbox, unit: &str) -> String {
    let ip = address(sb, unit);
    let cmd = format!(
        "timeout 10 openssl s_client -connect {ip}:2379 -cert /etc/etcd/tls/client.crt \
         -key /etc/etcd/tls/client.key </dev/null 2>/dev/null | openssl x509 -noout -issuer"
    );
    sb.ssh("etcd/0", &cmd).1.trim().to_string()
}

fn all_issued_by(sb: &Sandbox, ca: &str) -> bool {
    UNITS.iter().all(|u| served_issuer(sb, u).contains(ca))
}

/// The consumer writes a key with the files it wrote from the relation (at its last hook).
fn consumer_writes(sb: &Sandbox, endpoints: &str) -> Result<(), String> {
    let tls = support::CONSUMER_TLS;
    let (code, out, err) = sb.ssh(
        DB_UNIT,
        &format!(
            "ETCDCTL_API=3 /usr/local/bin/etcdctl --dial-timeout=3s --command-timeout=5s \
             --endpoints={endpoints} {tls} put db-client/external yes"
        ),
    );
    (code == 0).then_some(()).ok_or(format!("{out}{err}"))
}

/// What the consumer reads from etcd/0 on its `db` relation.
fn db_setting(sb: &Sandbox, key: &str) -> String {
    let (code, out, err) = sb.exec(
        DB_UNIT,
        &format!("relation-get -r $(relation-ids db | head -1) {key} etcd/0"),
    );
    assert_eq!(code, 0, "relation-get {key}: {err}");
    out.trim().to_string()
}

/// etcd/0's JSON gateway asked for a token (`/v3/auth/authenticate`) with curl in the
/// consumer's network, with the relation's certificate without a CN and the consumer's
/// password, verifying the server with the relation's `client_ca` (as tests/json_gateway.rs):
/// curl's answer.
fn gateway_login(sb: &Sandbox, etcd0: &str) -> String {
    let dir = sb.home.join("gateway-client");
    std::fs::create_dir_all(&dir).unwrap();
    let mut args: Vec<String> = vec![];
    for (key, flag) in [
        ("client_ca", "--cacert"),
        ("cnless_client_cert", "--cert"),
        ("cnless_client_key", "--key"),
    ] {
        let path = dir.join(key);
        std::fs::write(&path, db_setting(sb, key)).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        args.extend([flag.to_string(), path.display().to_string()]);
    }
    let (_, password, _) = sb.exec(
        DB_UNIT,
        "secret-get $(relation-get -r $(relation-ids db | head -1) client_key_secret etcd/0) password",
    );
    let body = serde_json::json!({"name": "db-client", "password": password.trim()});
    let body_file = dir.join("body");
    std::fs::write(&body_file, body.to_string()).unwrap();
    std::fs::set_permissions(
        &body_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &netns_of(sb, DB_UNIT),
            "curl",
            "-sS",
            "--max-time",
            "10",
        ])
        .args(&args)
        .args([
            "-X",
            "POST",
            &format!("https://{etcd0}:2379/v3/auth/authenticate"),
        ])
        .arg("--data-binary")
        .arg(format!("@{}", body_file.display()))
        .output()
        .expect("curl runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The workload status message of `unit`.
fn message(sb: &Sandbox, unit: &str) -> String {
    workload(sb, unit).1
}

fn health(sb: &Sandbox) {
    let out = sb.run(&["run", "etcd/0", "health"]);
    assert!(
        out.status.success(),
        "health failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const EXTERNAL: &str = "tls-provider test CA";
const CHARM: &str = "etcd charm CA";

#[test]
fn an_external_ca_serves_the_client_port_and_back_without_losing_a_write() {
    let sb = Sandbox::new("etcd_external_ca");
    deploy_etcd(&sb, 3, &[]);
    deploy_consumer(&sb, "db-client", "etcdctl");
    let provider = support::repo_root().join("tests/charms/tls-provider");
    sb.ok(&["deploy", provider.to_str().unwrap()]);
    sb.ok(&["integrate", "db-client:db", "etcd:db"]);
    sb.wait_active(5);
    assert!(all_issued_by(&sb, CHARM));
    let etcd0 = address(&sb, "etcd/0");
    sb.eventually("a gateway token", Duration::from_secs(180), || {
        gateway_login(&sb, &etcd0)
            .contains("\"token\"")
            .then_some(())
    });
    let mut pids: Vec<String> = UNITS.iter().map(|u| main_pid(&sb, u)).collect();
    let (_, endpoints, _) = sb.exec("etcd/0", "leader-get endpoints");
    let endpoints = endpoints.trim().to_string();

    let ((writes, summary), ()) = support::while_writing(&sb, &endpoints, 200_000, || {
        // To the external CA: every member serves a certificate from it.
        sb.ok(&[
            "integrate",
            "etcd:certificates",
            "tls-provider:certificates",
        ]);
        sb.eventually(
            "members on the external CA",
            Duration::from_secs(300),
            || all_issued_by(&sb, EXTERNAL).then_some(()),
        );
        // The consumer's client_ca is the bundle; it works with it.
        sb.eventually(
            "the consumer on the bundle",
            Duration::from_secs(120),
            || consumer_writes(&sb, &endpoints).ok(),
        );
        let (_, ca, _) = sb.ssh(
            DB_UNIT,
            "grep -c 'BEGIN CERTIFICATE' /var/lib/db-client/tls/client_ca.pem",
        );
        assert_eq!(ca.trim(), "2", "the consumer's bundle");
        support::wait_for_more_writes(&sb, 20, "writes on the external CA");
        health(&sb);
        let now: Vec<String> = UNITS.iter().map(|u| main_pid(&sb, u)).collect();
        assert_eq!(now, pids, "the switch to the external CA restarted etcd");
        sb.eventually(
            "the status naming the provider",
            Duration::from_secs(300),
            || {
                UNITS
                    .iter()
                    .all(|u| message(&sb, u).contains("server certificate from tls-provider"))
                    .then_some(())
            },
        );
        // The limitation the status and README state: the gateway's connection to its own
        // client port, made when etcd starts, presents the server certificate as a client
        // certificate. One made before the switch goes on working; after a restart it is refused.
        let etcd2 = address(&sb, "etcd/2");
        sb.ssh("etcd/2", "systemctl restart etcd");
        sb.eventually("etcd/2 back", Duration::from_secs(120), || {
            let pid = main_pid(&sb, "etcd/2");
            (pid != pids[2] && pid != "0" && served_issuer(&sb, "etcd/2").contains(EXTERNAL))
                .then_some(())
        });
        pids[2] = main_pid(&sb, "etcd/2");
        sb.eventually(
            "the restarted gateway refused",
            Duration::from_secs(60),
            || (!gateway_login(&sb, &etcd2).contains("\"token\"")).then_some(()),
        );

        // Bad input: garbage from the provider is logged and ignored.
        sb.ok(&["config", "tls-provider", "garbage=true"]);
        sb.eventually("the garbage logged", Duration::from_secs(120), || {
            let log = sb.ok(&["debug-log", "--replay", "--no-tail"]);
            log.contains("is not a tls-certificates v4 list")
                .then_some(())
        });
        sb.ok(&["run", "etcd/1", "health"]);
        assert!(all_issued_by(&sb, EXTERNAL), "garbage changed a member");
        let log = sb.ok(&["debug-log", "--replay", "--no-tail"]);
        assert!(!log.contains("PRIVATE KEY"), "a key in the log");
        sb.ok(&["config", "tls-provider", "garbage=false"]);

        // And back: the charm's CA again once the relation is gone.
        sb.ok(&[
            "remove-relation",
            "etcd:certificates",
            "tls-provider:certificates",
        ]);
        sb.eventually(
            "members on the charm's CA",
            Duration::from_secs(300),
            || all_issued_by(&sb, CHARM).then_some(()),
        );
        sb.eventually("the phase cleared", Duration::from_secs(300), || {
            let (_, phase, _) = sb.exec("etcd/0", "leader-get tls-external");
            phase.trim().is_empty().then_some(())
        });
        sb.eventually(
            "the consumer on the charm's CA",
            Duration::from_secs(120),
            || {
                let (_, n, _) = sb.ssh(
                    DB_UNIT,
                    "grep -c 'BEGIN CERTIFICATE' /var/lib/db-client/tls/client_ca.pem",
                );
                (n.trim() == "1" && consumer_writes(&sb, &endpoints).is_ok()).then_some(())
            },
        );
        support::wait_for_more_writes(&sb, 20, "writes after the switch back");
        // The restarted member's gateway reconnects within gRPC's back-off (at most two minutes).
        sb.eventually("a gateway token again", Duration::from_secs(300), || {
            gateway_login(&sb, &etcd2)
                .contains("\"token\"")
                .then_some(())
        });
        sb.eventually(
            "the status without the provider",
            Duration::from_secs(300),
            || {
                UNITS
                    .iter()
                    .all(|u| !message(&sb, u).contains("tls-provider"))
                    .then_some(())
            },
        );
    });
    assert!(writes > 40, "{summary}");
    let after: Vec<String> = UNITS.iter().map(|u| main_pid(&sb, u)).collect();
    assert_eq!(after, pids, "the switch restarted etcd");
    health(&sb);
    sb.wait_active(5);
    assert_eq!(
        workload(&sb, DB_UNIT),
        ("active".into(), "read and wrote through 3 endpoints".into())
    );
}

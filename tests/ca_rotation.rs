//! CA rotation on real machines: etcd -n 3 (TLS by default, RBAC on) with the db-client
//! consumer, while a bounded writer writes through every member. `rotate-ca` returns at once;
//! the hooks drive its three phases. Afterwards every member's certificates come from the new
//! CAs, the CA files hold only them (a client with an old-CA certificate is refused), the
//! consumer works with the credentials it now has, `health` passes, no acknowledged write
//! failed, and each member restarted exactly twice (phases 1 and 3). Needs root.

#[path = "support/mod.rs"]
mod support;
use std::time::Duration;
use support::{deploy_consumer, deploy_etcd, sh, workload, Sandbox};

const DB_UNIT: &str = "db-client/0";
const UNITS: [&str; 3] = ["etcd/0", "etcd/1", "etcd/2"];
/// What the charm logs at each restart of etcd for new settings.
const RESTART_LOG: &str = "restarting etcd with the new settings";

fn restarts(sb: &Sandbox) -> usize {
    let log = sb.ok(&["debug-log", "--replay", "--no-tail"]);
    log.matches(RESTART_LOG).count()
}

/// `leader-get <key>` on `unit` (in a hook context).
fn leader_get(sb: &Sandbox, unit: &str, key: &str) -> String {
    let (_, out, _) = sb.exec(unit, &format!("leader-get {key}"));
    out.trim().to_string()
}

#[test]
fn rotate_ca_replaces_both_cas_without_losing_a_write() {
    let sb = Sandbox::new("etcd_ca_rotation");
    deploy_etcd(&sb, 3, &[]);
    deploy_consumer(&sb, "db-client", "etcdctl");
    sb.ok(&["integrate", "db-client:db", "etcd:db"]);
    sb.wait_active(4);
    let leader = sb.leader("etcd").expect("a leader");
    assert_eq!(leader_get(&sb, &leader, "etcd-auth"), "on");
    let old_ca = leader_get(&sb, &leader, "tls-ca");
    assert!(old_ca.contains("BEGIN CERTIFICATE"));
    // The consumer's current (old-CA) credentials, kept aside for the end.
    let tls = "/var/lib/db-client/tls";
    sh(
        &sb,
        DB_UNIT,
        &format!("cp {tls}/client_cert.pem /root/old.crt && cp {tls}/client_key.pem /root/old.key"),
    );
    let before = restarts(&sb);

    // A rotation cannot start on a follower.
    let follower = UNITS.iter().find(|u| **u != leader).unwrap();
    let out = sb.run(&["run", follower, "rotate-ca"]);
    assert!(!out.status.success(), "rotate-ca ran on a follower");

    let (_, endpoints, _) = sb.exec("etcd/0", "leader-get endpoints");
    let endpoints = endpoints.trim().to_string();
    let ((writes, summary), ()) = support::while_writing(&sb, &endpoints, 100000, || {
        let started = sb.ok(&["run", &leader, "rotate-ca"]);
        assert!(started.contains("1 of 3"), "{started}");
        // A second rotation is refused while this one runs.
        let again = sb.run(&["run", &leader, "rotate-ca"]);
        assert!(!again.status.success(), "a second rotation started");
        sb.eventually("the rotation to finish", Duration::from_secs(900), || {
            let done = leader_get(&sb, &leader, "ca-rotation").is_empty()
                && leader_get(&sb, &leader, "tls-ca") != old_ca;
            done.then_some(())
        });
        support::wait_for_more_writes(&sb, 20, "writes after the rotation");
    });
    assert!(writes > 20, "{summary}");
    sb.wait_active(4);

    // Every member: CA files with the new CAs alone, certificates from them, none from the old.
    let new_ca = leader_get(&sb, &leader, "tls-ca");
    let new_peer_ca = leader_get(&sb, &leader, "tls-peer-ca");
    assert_ne!(new_ca, old_ca);
    sh(
        &sb,
        DB_UNIT,
        &format!("printf '%s\\n' '{old_ca}' > /root/old-ca.crt"),
    );
    for u in UNITS {
        let ca = sh(&sb, u, "cat /etc/etcd/tls/ca.crt");
        assert_eq!(ca, new_ca, "{u}: client CA file");
        let peer = sh(&sb, u, "cat /etc/etcd/tls/peer-ca.crt");
        assert_eq!(peer, new_peer_ca, "{u}: peer CA file");
        let verify = "openssl verify -CAfile /etc/etcd/tls/ca.crt /etc/etcd/tls/server.crt \
                      /etc/etcd/tls/client.crt && openssl verify -CAfile \
                      /etc/etcd/tls/peer-ca.crt /etc/etcd/tls/peer.crt";
        sh(&sb, u, verify);
    }
    // The consumer: its files now hold the new CA and a certificate from it, and it works.
    sb.eventually(
        "the consumer's new credentials",
        Duration::from_secs(300),
        || {
            let (_, ca, _) = sb.ssh(DB_UNIT, &format!("cat {tls}/client_ca.pem"));
            let verified =
                sb.ssh(
                    DB_UNIT,
                    &format!("openssl verify -CAfile {tls}/client_ca.pem {tls}/client_cert.pem"),
                )
                .0 == 0;
            (ca.trim() == new_ca && verified).then_some(())
        },
    );
    let etcdctl = |cert: &str, key: &str| {
        sb.ssh(
            DB_UNIT,
            &format!(
                "ETCDCTL_API=3 /usr/local/bin/etcdctl --endpoints={endpoints} \
                 --dial-timeout=3s --command-timeout=5s --cacert={tls}/client_ca.pem \
                 --cert={cert} --key={key} put db-client/rotated yes"
            ),
        )
    };
    let (code, out, err) = etcdctl(
        &format!("{tls}/client_cert.pem"),
        &format!("{tls}/client_key.pem"),
    );
    assert_eq!(code, 0, "the consumer with its new certificate: {out}{err}");
    let (code, out, err) = etcdctl("/root/old.crt", "/root/old.key");
    assert_ne!(
        code, 0,
        "a certificate from the old CA was accepted: {out}{err}"
    );
    // The old-CA certificate was the consumer's own: it verifies against the old CA only.
    sh(
        &sb,
        DB_UNIT,
        "openssl verify -CAfile /root/old-ca.crt /root/old.crt",
    );
    sb.eventually("the consumer active", Duration::from_secs(120), || {
        let w = workload(&sb, DB_UNIT);
        (w == ("active".into(), "read and wrote through 3 endpoints".into())).then_some(())
    });

    let health = sb.run(&["run", &leader, "health"]);
    assert!(
        health.status.success(),
        "health: {}{}",
        String::from_utf8_lossy(&health.stdout),
        String::from_utf8_lossy(&health.stderr)
    );
    // Two rolling restarts (phases 1 and 3), one restart of each member in each, no other.
    assert_eq!(restarts(&sb) - before, 6, "restarts during the rotation");
    for key in ["ca-rotation", "tls-ca-other", "tls-ca-other-secret"] {
        assert_eq!(
            leader_get(&sb, &leader, key),
            "",
            "{key} left in leader data"
        );
    }
}

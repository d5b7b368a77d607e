//! Certificate renewal on real machines: etcd -n 3 (TLS by default) with the db-client consumer;
//! a shorter `tls_cert_validity_days` renews every member's certificates (client port, peer
//! port, the unit's own), the consumer's and the shared one at once, for the same keys, while a
//! client writes through every member: no write fails, no etcd restarts, and the consumer works
//! with its new certificate. Needs root.

#[path = "support/mod.rs"]
mod support;
use std::time::Duration;
use support::{deploy_consumer, deploy_etcd, main_pid, workload, writer_script, Sandbox};

const DB_UNIT: &str = "db-client/0";
const UNITS: [&str; 3] = ["etcd/0", "etcd/1", "etcd/2"];
/// The member's certificate files, and its keys (which a renewal keeps).
const CERTS: &str = "/etc/etcd/tls/server.crt /etc/etcd/tls/peer.crt /etc/etcd/tls/client.crt";
const KEYS: &str = "/etc/etcd/tls/server.key /etc/etcd/tls/client.key";
/// Five days, in seconds: every certificate of a two-day validity expires within them, none of
/// a year's.
const FIVE_DAYS: u32 = 5 * 86_400;

/// Whether every certificate in `files` on `unit` (in the hook context for a consumer) expires
/// within [`FIVE_DAYS`].
fn short_lived(sb: &Sandbox, unit: &str, files: &str, exec: bool) -> bool {
    let cmd = format!(
        "for f in {files}; do openssl x509 -in $f -noout -checkend {FIVE_DAYS} >/dev/null \
         && echo long; done; true"
    );
    let (code, out, _) = match exec {
        true => sb.exec(unit, &cmd),
        false => sb.ssh(unit, &cmd),
    };
    code == 0 && !out.contains("long")
}

#[test]
fn a_shorter_validity_renews_every_certificate_without_restarting_etcd() {
    let sb = Sandbox::new("etcd_rotation");
    deploy_etcd(&sb, 3, &[]);
    deploy_consumer(&sb, "db-client", "etcdctl");
    sb.ok(&["integrate", "db-client:db", "etcd:db"]);
    sb.wait_active(4);
    assert_eq!(
        workload(&sb, DB_UNIT),
        ("active".into(), "read and wrote through 3 endpoints".into())
    );
    let consumer_cert = "/var/lib/db-client/tls/client_cert.pem";
    for u in UNITS {
        assert!(!short_lived(&sb, u, CERTS, false), "{u}: already short");
    }
    assert!(!short_lived(&sb, DB_UNIT, consumer_cert, false));
    let pids: Vec<String> = UNITS.iter().map(|u| main_pid(&sb, u)).collect();
    let keys = |u: &str| sb.ssh(u, &format!("sha256sum {KEYS}")).1;
    let key_sums: Vec<String> = UNITS.iter().map(|u| keys(u)).collect();

    let (_, endpoints, _) = sb.exec("etcd/0", "leader-get endpoints");
    let endpoints = endpoints.trim().to_string();
    let writer = std::thread::scope(|s| {
        let writer = s.spawn(|| sb.ssh("etcd/0", &writer_script(&endpoints, 5000)));
        // Stops the writer however this scope ends (a failed check must not wait for it).
        struct Stop<'a>(&'a Sandbox);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.ssh("etcd/0", "touch /tmp/stop-writer");
            }
        }
        let _stop = Stop(&sb);
        sb.eventually("the writer to start", Duration::from_secs(60), || {
            let (_, n, _) = sb.ssh("etcd/0", "etcdctl get w3 --print-value-only");
            (n.trim() == "3").then_some(())
        });
        sb.ok(&[
            "config",
            "etcd",
            "tls_cert_validity_days=2",
            "tls_renew_before_days=1",
        ]);
        sb.eventually("members renewed", Duration::from_secs(300), || {
            UNITS
                .iter()
                .all(|u| short_lived(&sb, u, CERTS, false))
                .then_some(())
        });
        // The consumer's relation data, and the file it wrote from it at its next hook.
        sb.eventually("the consumer renewed", Duration::from_secs(300), || {
            let data = "rid=$(relation-ids db); u=$(relation-list -r $rid | head -1); \
                        relation-get -r $rid client_cert $u > /tmp/renewed.crt; \
                        relation-get -r $rid cnless_client_cert $u > /tmp/cnless.crt";
            sb.exec(DB_UNIT, data);
            let both = "/tmp/renewed.crt /tmp/cnless.crt";
            (short_lived(&sb, DB_UNIT, both, true)
                && short_lived(&sb, DB_UNIT, consumer_cert, false))
            .then_some(())
        });
        support::wait_for_more_writes(&sb, 20, "writes after the renewal");
        sb.ssh("etcd/0", "touch /tmp/stop-writer");
        writer.join().expect("writer thread")
    });
    let (writes, summary) = support::writer_summary(writer);
    assert!(writes > 20, "{summary}");

    // Same etcd processes, same keys; the cluster and the consumer work with the new ones.
    let after: Vec<String> = UNITS.iter().map(|u| main_pid(&sb, u)).collect();
    assert_eq!(after, pids, "a renewal restarted etcd");
    let sums_after: Vec<String> = UNITS.iter().map(|u| keys(u)).collect();
    assert_eq!(sums_after, key_sums, "a renewal changed a key");
    sb.wait_active(4);
    let (code, out, err) = sb.ssh("etcd/1", "etcdctl endpoint health --cluster");
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(format!("{out}{err}").matches(" is healthy").count(), 3);
    let tls = support::CONSUMER_TLS;
    let (code, out, err) = sb.ssh(
        DB_UNIT,
        &format!(
            "ETCDCTL_API=3 /usr/local/bin/etcdctl --endpoints={endpoints} {tls} \
             put renewed yes"
        ),
    );
    assert_eq!(
        code, 0,
        "the consumer with its renewed certificate: {out}{err}"
    );
    // Nothing renews again: the leader's log names each renewal once.
    let log = sb.ok(&["debug-log", "--replay", "--no-tail"]);
    let renewed = log
        .matches("renewed db-client's client certificate")
        .count();
    assert_eq!(renewed, 1, "renewals of the consumer's certificate");
}

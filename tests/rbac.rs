//! One identity per relation with etcd's RBAC, on real machines: etcd deployed with `tls=true`,
//! two `db` consumers (`db-client` as `db-a` and `db-b`, each asking for its own prefix) and a
//! `proxy` consumer. The leader turns auth on; each db consumer presents a certificate with its
//! own name and cannot read or write the other's keys; the proxy consumer works through
//! grpc-proxy with its user and password; the charm's `etcdctl` wrapper and actions work as
//! `root`; after `remove-relation` the old certificate is denied. Needs root.

#[path = "support/mod.rs"]
mod support;
use std::time::Duration;
use support::{built_charm, deploy_consumer, deploy_etcd, repo_root, workload, Sandbox};

/// etcdctl on a db-client unit with the credentials in `dir` (the ones it wrote from the
/// relation, or a copy).
fn as_consumer(sb: &Sandbox, unit: &str, dir: &str, args: &str) -> (i32, String) {
    let cmd = format!(
        "ETCDCTL_API=3 etcdctl --endpoints=$(cat {dir}/connection_string 2>/dev/null || \
         cat /var/lib/db-client/connection_string) \
         --cacert={dir}/client_ca.pem --cert={dir}/client_cert.pem --key={dir}/client_key.pem \
         --dial-timeout=3s --command-timeout=5s {args}"
    );
    let (code, out, err) = sb.exec(unit, &cmd);
    (code, format!("{out}{err}"))
}

#[test]
fn each_consumer_has_its_own_identity_and_keys() {
    let sb = Sandbox::new("etcd_rbac");
    deploy_etcd(&sb, 1, &["--config", "tls=true"]);
    let (_, resource) = built_charm();
    let db_client = repo_root().join("tests/charms/db-client");
    for (app, prefix) in [("db-a", "a/"), ("db-b", "b/")] {
        sb.ok(&[
            "deploy",
            db_client.to_str().unwrap(),
            app,
            "--config",
            &format!("prefix={prefix}"),
            "--resource",
            &format!("etcdctl={}", resource.display()),
        ]);
        sb.ok(&["integrate", &format!("{app}:db"), "etcd:db"]);
    }
    deploy_consumer(&sb, "proxy-client", "etcd");
    sb.ok(&["integrate", "proxy-client:proxy", "etcd:proxy"]);
    sb.wait_active(4);

    // The leader turns auth on once its users are made.
    sb.eventually("etcd auth on", Duration::from_secs(180), || {
        let (_, on, _) = sb.exec("etcd/0", "leader-get etcd-auth");
        (on.trim() == "on").then_some(())
    });
    let (code, users, err) = sb.ssh("etcd/0", "etcdctl user list");
    assert_eq!(code, 0, "the etcdctl wrapper as root: {err}");
    let mut users: Vec<&str> = users.split_whitespace().collect();
    users.sort_unstable();
    assert_eq!(users, ["db-a", "db-b", "proxy-client", "root"]);
    for unit in ["db-a/0", "db-b/0"] {
        sb.eventually(
            &format!("{unit} writes with auth on"),
            Duration::from_secs(180),
            || {
                let (_, msg) = workload(&sb, unit);
                (msg == "read and wrote through 1 endpoints").then_some(())
            },
        );
    }

    // Each db consumer is its own application's identity.
    let tls = "/var/lib/db-client/tls";
    for app in ["db-a", "db-b"] {
        let (_, subject, _) = sb.exec(
            &format!("{app}/0"),
            &format!("openssl x509 -noout -subject -in {tls}/client_cert.pem"),
        );
        assert!(
            subject.contains(&format!("CN = {app}")) || subject.contains(&format!("CN={app}")),
            "{app}: {subject}"
        );
    }
    // Confined to its prefix: its own key, not the other's, not outside.
    let (code, out) = as_consumer(&sb, "db-a/0", tls, "get --print-value-only a/db-a/0");
    assert_eq!(code, 0, "{out}");
    for args in ["get b/db-b/0", "put b/intruder x", "put outside x"] {
        let (code, out) = as_consumer(&sb, "db-a/0", tls, args);
        assert_ne!(code, 0, "db-a may {args}: {out}");
        assert!(out.contains("permission denied"), "{args}: {out}");
    }

    // The charm itself is root: the wrapper sees every key, the health action works.
    let (code, keys, err) = sb.ssh("etcd/0", "etcdctl get --prefix '' --keys-only");
    assert_eq!(code, 0, "{err}");
    for k in ["a/db-a/0", "b/db-b/0"] {
        assert!(keys.contains(k), "{k} in {keys}");
    }
    let out = sb.run(&["run", "etcd/0", "health"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "health: {text}");

    // The proxy consumer works through grpc-proxy (its certificate without a name, its user's
    // password for callers).
    sb.eventually("the proxy round trip", Duration::from_secs(180), || {
        let (state, msg) = workload(&sb, "proxy-client/0");
        (state == "active" && msg.starts_with("grpc-proxy")).then_some(())
    });

    // After remove-relation, db-b's certificate is denied.
    sb.exec(
        "db-b/0",
        &format!(
            "rm -rf /root/old-tls; cp -r {tls} /root/old-tls; \
             cp /var/lib/db-client/connection_string /root/old-tls/"
        ),
    );
    sb.ok(&["remove-relation", "db-b:db", "etcd:db"]);
    sb.eventually("db-b's user gone", Duration::from_secs(180), || {
        let (_, users, _) = sb.ssh("etcd/0", "etcdctl user list");
        (!users.contains("db-b")).then_some(())
    });
    let (code, out) = as_consumer(&sb, "db-b/0", "/root/old-tls", "get b/db-b/0");
    assert_ne!(code, 0, "the old certificate still reads: {out}");
    let (_, out) = as_consumer(&sb, "db-a/0", tls, "get --print-value-only a/db-a/0");
    assert!(!out.is_empty(), "db-a keeps working");
}

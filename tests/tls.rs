//! TLS on real machines: etcd -n 3 deployed with its defaults (`tls` on) serves only https with client
//! certificates; `etcdctl` as root with no flags, the `health` action and both consumers
//! (`db-client` with etcdctl, `proxy-client` with grpc-proxy) work through the credentials the
//! charm publishes; the peer port refuses the consumers' certificate; the CA keys are only in a
//! Juju secret and each member's key only on its machine; a fourth unit joins as a learner over
//! TLS, and a fifth after the Juju leader's unit is removed (the new leader signs). A cluster
//! deployed with `tls=false` switches to it and back while a client writes, one member at a time.
//! Under Juju 2.9 the keys are in leader data (the fallback). Needs root.

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
    deploy_etcd(&sb, 3, &[]);
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

    // Members only on the peer port: a member's peer certificate is answered there, the db
    // consumer's client certificate (from the relation) is refused.
    let peer_ip = address(&sb, "etcd/2");
    let members = format!(
        "printf 'GET /members HTTP/1.0\\r\\n\\r\\n' | timeout 10 openssl s_client -quiet \
         -connect {peer_ip}:2380 -servername {peer_ip} 2>&1"
    );
    let (_, out, _) = sb.ssh(
        "etcd/1",
        &format!("{members} -cert /etc/etcd/tls/peer.crt -key /etc/etcd/tls/server.key"),
    );
    assert!(out.contains("200 OK"), "a member's peer certificate: {out}");
    let (_, out, _) = sb.exec(
        DB_UNIT,
        &format!(
            "rid=$(relation-ids db); u=$(relation-list -r $rid | head -1); \
             umask 077; relation-get -r $rid client_cert $u >/tmp/c.crt; \
             relation-get -r $rid client_key $u >/tmp/c.key; \
             {members} -cert /tmp/c.crt -key /tmp/c.key; rm -f /tmp/c.key"
        ),
    );
    assert!(
        !out.contains("200 OK"),
        "a consumer on the peer port: {out}"
    );
    assert!(!out.contains("PRIVATE KEY"), "{out}");

    // Keys: no private key in leader data or peer data (requests only); the CA keys in the
    // leader's application secret; each member's key its own.
    let (_, leader_data, _) = sb.exec("etcd/0", "leader-get --format=json");
    assert!(!leader_data.contains("PRIVATE KEY"), "a key in leader data");
    let (_, peer_data, _) = sb.exec(
        "etcd/0",
        "rid=$(relation-ids cluster); for u in $(relation-list -r $rid); do \
         relation-get -r $rid - $u; done",
    );
    assert_eq!(
        peer_data.matches("BEGIN CERTIFICATE REQUEST").count(),
        4,
        "{peer_data}"
    );
    assert!(!peer_data.contains("PRIVATE KEY"), "a key in peer data");
    let leader = sb.leader("etcd").expect("a leader");
    let (code, keys, err) = sb.exec(
        &leader,
        "secret-get $(leader-get tls-ca-secret) --format=json | grep -o 'BEGIN PRIVATE KEY' | wc -l",
    );
    assert_eq!(
        (code, keys.trim()),
        (0, "2"),
        "CA keys in the secret: {err}"
    );
    let (_, sums, _) = sb.ssh("etcd/0", "sha256sum /etc/etcd/tls/server.key");
    for u in ["etcd/1", "etcd/2"] {
        let (_, other, _) = sb.ssh(u, "sha256sum /etc/etcd/tls/server.key");
        assert_ne!(sums.split(' ').next(), other.split(' ').next(), "{u}'s key");
    }
    // The db relation names the secret holding its key, which the consumer may read.
    let (code, n, err) = sb.exec(
        DB_UNIT,
        "rid=$(relation-ids db); u=$(relation-list -r $rid | head -1); \
         secret-get $(relation-get -r $rid client_key_secret $u) client-key | grep -c 'BEGIN PRIVATE KEY'",
    );
    assert_eq!((code, n.trim()), (0, "1"), "the client key secret: {err}");

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

    let units = ["etcd/0", "etcd/1", "etcd/2", "etcd/3"];
    let pids_after: Vec<String> = units.iter().map(|u| main_pid(&sb, u)).collect();
    assert_eq!(pids_after[..3], pids[..], "the join restarted a member");

    // The Juju leader's unit goes: the new leader reads the CA secret and signs for the next.
    sb.ok(&["remove-unit", &leader]);
    sb.eventually("a new leader", Duration::from_secs(120), || {
        sb.leader("etcd")
            .filter(|l| *l != leader && sb.units("etcd").len() == 3)
    });
    sb.ok(&["add-unit", "etcd"]);
    sb.wait_active(6);
    sb.eventually("4 healthy members", Duration::from_secs(120), || {
        (healthy_endpoints(&sb, "etcd/4").len() == 4).then_some(())
    });
}

/// Like [`support::writer_script`], but through both schemes: each attempt puts through the
/// endpoints of the scheme that worked last, else through those of the other one (https with
/// the client certificate the charm writes; `/opt/etcd/bin/etcdctl` itself, so the wrapper's
/// settings do not mix in). An attempt is retried once; a write whose two attempts fail is a
/// failure.
fn switch_writer_script(http: &str, https: &str, max: u32) -> String {
    let tls = "--cacert=/etc/etcd/tls/ca.crt --cert=/etc/etcd/tls/client.crt \
               --key=/etc/etcd/tls/client.key";
    let ctl = "ETCDCTL_API=3 /opt/etcd/bin/etcdctl --dial-timeout=2s --command-timeout=10s";
    format!(
        "rm -f /tmp/stop-writer; n=0; fail=0; first=http; \
         via() {{ if [ $1 = http ]; then {ctl} --endpoints={http} put w$n $n 2>&1; \
                  else {ctl} --endpoints={https} {tls} put w$n $n 2>&1; fi; }}; \
         other() {{ if [ $first = http ]; then echo https; else echo http; fi; }}; \
         put() {{ via $first || {{ o=$(other); via $o && first=$o; }}; }}; \
         while [ ! -e /tmp/stop-writer ] && [ $n -lt {max} ]; do \
           n=$((n+1)); \
           if ! put >/tmp/writer.out; then echo \"RETRY w$n: $(cat /tmp/writer.out)\"; \
             if ! put >/tmp/writer.out; then fail=$((fail+1)); \
               echo \"FAIL w$n: $(cat /tmp/writer.out)\"; fi; fi; \
         done; echo \"writes=$n failures=$fail\""
    )
}

/// Switches the running cluster's `tls` to `tls` while a client writes; checks every member
/// then serves only that scheme on both ports, no write failed, and the db consumer works.
fn switch(sb: &Sandbox, tls: bool, http: &str, https: &str) {
    let units = ["etcd/0", "etcd/1", "etcd/2"];
    let (scheme, other) = if tls {
        ("https", "http")
    } else {
        ("http", "https")
    };
    let before: Vec<support::Run> = units.iter().map(|u| support::run_of(sb, u)).collect();
    let log_lines = sb
        .ok(&["debug-log", "--replay", "--no-tail"])
        .lines()
        .count();
    let writer = std::thread::scope(|s| {
        let writer = s.spawn(|| sb.ssh("etcd/0", &switch_writer_script(http, https, 5000)));
        // Stops the writer however this scope ends (a failed check must not wait for it).
        struct Stop<'a>(&'a Sandbox);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.ssh("etcd/0", "touch /tmp/stop-writer");
            }
        }
        let _stop = Stop(sb);
        sb.eventually("the writer to start", Duration::from_secs(60), || {
            let (_, n, _) = sb.ssh("etcd/0", "etcdctl get w3 --print-value-only");
            (n.trim() == "3").then_some(())
        });
        sb.ok(&["config", "etcd", &format!("tls={tls}")]);
        sb.eventually("the switch recorded", Duration::from_secs(360), || {
            let (_, v, _) = sb.exec("etcd/0", "leader-get tls");
            (v.trim() == tls.to_string()).then_some(())
        });
        sb.wait_active(4);
        support::wait_for_more_writes(sb, 20, "writes after the switch");
        drop(_stop);
        writer.join().expect("writer thread")
    });
    let (code, out, err) = &writer;
    let retries = out.lines().filter(|l| l.starts_with("RETRY")).count();
    let (writes, summary) = support::writer_summary((*code, out.clone(), err.clone()));
    eprintln!("tls={tls}: writer {summary}, {retries} retried");
    // One member at a time, each ready again (Type=notify: back in a quorum, its peers still
    // on the other scheme) before the next stopped; each member's peer URL updated first.
    let names: Vec<String> = units.iter().map(|u| u.to_string()).collect();
    let after = support::restarted_one_at_a_time(sb, &names);
    for (u, b) in units.iter().zip(&before) {
        let a = after.iter().find(|(n, _)| n == u).expect("a run").1;
        assert_ne!(a.started, b.started, "{u} did not restart");
    }
    let log = sb.ok(&["debug-log", "--replay", "--no-tail"]);
    let events: Vec<String> = log
        .lines()
        .skip(log_lines)
        .filter_map(|l| {
            let unit = l.split(": ").next()?.strip_prefix("unit-")?;
            let unit = unit.rsplit_once('-').map(|(a, n)| format!("{a}{n}"))?;
            if l.contains(&format!("now has peer URL {scheme}://")) {
                let name = l.split("member ").nth(1)?.split(' ').next()?;
                Some(format!("update {name}"))
            } else if l.contains("restarting etcd with the new settings") {
                Some(format!("restart {unit}"))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        events,
        [
            "update etcd0",
            "restart etcd0",
            "update etcd1",
            "restart etcd1",
            "update etcd2",
            "restart etcd2"
        ],
        "{after:?}"
    );
    for u in units {
        let (_, v, _) = sb.ssh(u, &format!("etcdctl get --print-value-only w{writes}"));
        assert_eq!(v.trim(), writes.to_string(), "last write read on {u}");
    }
    // Every member on the new scheme, both ports; the old scheme refused on both.
    let (code, list, err) = sb.ssh("etcd/1", "etcdctl member list");
    assert_eq!(code, 0, "{err}");
    assert_eq!(list.lines().count(), 3, "{list}");
    assert!(!list.contains(&format!("{other}://")), "{list}");
    assert_eq!(list.matches(&format!("{scheme}://")).count(), 6, "{list}");
    let eps = healthy_endpoints(sb, "etcd/0");
    assert_eq!(eps.len(), 3, "{eps:?}");
    assert!(eps.iter().all(|e| e.starts_with(scheme)), "{eps:?}");
    let ip = address(sb, "etcd/1");
    let bare = "ETCDCTL_API=3 /opt/etcd/bin/etcdctl --dial-timeout=3s --command-timeout=3s";
    let creds = "--cacert=/etc/etcd/tls/ca.crt --cert=/etc/etcd/tls/client.crt \
                 --key=/etc/etcd/tls/client.key";
    let old = match tls {
        true => format!("{bare} --endpoints=http://{ip}:2379 get probe"),
        false => format!("{bare} --endpoints=https://{ip}:2379 {creds} get probe"),
    };
    let (code, out, err) = sb.ssh("etcd/0", &old);
    assert_ne!(code, 0, "{other} answered on the client port: {out}{err}");
    for u in units {
        let conf = support::sh(sb, u, "cat /etc/etcd/etcd.conf.yml");
        let listen = conf
            .lines()
            .filter(|l| l.starts_with("listen-") || l.starts_with("advertise-client"))
            // The metrics listener is plain http whatever `tls` says (issue 15).
            .filter(|l| !l.starts_with("listen-metrics-urls"))
            .collect::<Vec<_>>();
        assert!(
            listen.iter().all(|l| l.contains(&format!("{scheme}://"))
                && !l.contains(&format!("{other}://"))),
            "{u}: {listen:?}"
        );
        assert_eq!(
            conf.contains("peer-transport-security:"),
            tls,
            "{u} runs {conf}"
        );
    }
    // The db consumer follows, over the new scheme.
    sb.eventually("db-client on the new scheme", Duration::from_secs(120), || {
        let (_, cs, _) = sb.exec(
            DB_UNIT,
            "rid=$(relation-ids db); relation-get -r $rid connection_string $(relation-list -r $rid | head -1)",
        );
        let cs = cs.trim();
        let all = cs.split(',').count() == 3 && cs.split(',').all(|u| u.starts_with(scheme));
        (all && cs.split(',').all(|u| !u.starts_with(&format!("{other}:")))).then_some(())
    });
    sb.eventually(
        "db-client reads and writes",
        Duration::from_secs(120),
        || {
            (workload(sb, DB_UNIT)
                == ("active".into(), "read and wrote through 3 endpoints".into()))
                .then_some(())
        },
    );
    let (_, ca, _) = sb.exec(
        DB_UNIT,
        "rid=$(relation-ids db); relation-get -r $rid client_ca $(relation-list -r $rid | head -1)",
    );
    assert_eq!(ca.contains("BEGIN CERTIFICATE"), tls, "client_ca {ca}");
}

#[test]
fn tls_is_switched_on_and_off_on_a_running_cluster_without_failed_writes() {
    let sb = Sandbox::new("etcd_switch_tls");
    deploy_etcd(&sb, 3, &["--config", "tls=false"]);
    deploy_consumer(&sb, "db-client", "etcdctl");
    sb.ok(&["integrate", "db-client:db", "etcd:db"]);
    sb.wait_active(4);
    let (code, http, err) = sb.exec("etcd/0", "leader-get endpoints");
    assert_eq!(code, 0, "{err}");
    let http = http.trim().to_string();
    assert_eq!(http.split(',').count(), 3, "{http}");
    assert!(http.starts_with("http://"), "{http}");
    let https = http.replace("http://", "https://");
    switch(&sb, true, &http, &https);
    switch(&sb, false, &http, &https);
    let (_, members, _) = sb.ssh("etcd/2", "etcdctl member list");
    assert_eq!(members.matches("http://").count(), 6, "{members}");
}

/// Juju 2.9 has no secrets: the documented fallback keeps the CA keys in leader data; only the
/// leader signs all the same, and the cluster serves TLS with a peer CA of its own.
#[test]
fn tls_under_juju_2_9_keeps_the_keys_in_leader_data() {
    let sb = Sandbox::with_agent_version("etcd_tls29", Some("2.9.44"));
    deploy_etcd(&sb, 2, &[]);
    sb.wait_active(2);
    let eps = healthy_endpoints(&sb, "etcd/1");
    assert_eq!(eps.len(), 2, "{eps:?}");
    assert!(eps.iter().all(|e| e.starts_with("https://")), "{eps:?}");
    let leader = sb.leader("etcd").expect("a leader");
    let (code, out, err) = sb.exec(
        &leader,
        "for k in tls-ca-key tls-peer-ca-key tls-client-key tls-ca-secret; do \
         leader-get $k | grep -c 'BEGIN PRIVATE KEY'; done",
    );
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["1", "1", "1", "0"],
        "{code} {err}"
    );
    let (_, peer_ca, _) = sb.ssh(
        "etcd/1",
        "cmp /etc/etcd/tls/ca.crt /etc/etcd/tls/peer-ca.crt",
    );
    assert!(
        peer_ca.contains("differ"),
        "one CA for both ports: {peer_ca}"
    );
}

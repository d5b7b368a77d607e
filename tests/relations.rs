//! The `db` and `proxy` relations on real machines, with real consumers (issue 5): etcd -n 3
//! related to `tests/charms/db-client` (etcdctl through `connection_string`) and
//! `tests/charms/proxy-client` (`etcd grpc-proxy` from `endpoints`); the consumers see the
//! same sorted member list on every etcd unit and work through it, across scale out to 5 and
//! scale in to 3 (the Juju leader's unit included), malformed data on either side, and the
//! removal of the relations. Needs root: it boots machines.

#[path = "support/mod.rs"]
mod support;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::{deploy_consumer, deploy_etcd, get, sh, try_sh, workload, Sandbox};

const DB: &str = "db-client";
const PROXY: &str = "proxy-client";
const DB_UNIT: &str = "db-client/0";
const PROXY_UNIT: &str = "proxy-client/0";
/// Where the proxy-client's grpc-proxy listens on its machine.
const LISTEN: &str = "127.0.0.1:23790";
/// How long the data may take to converge after the model is idle (covers an update-status).
const CONVERGE: Duration = Duration::from_secs(120);

/// Polls `f` until it returns Ok, or panics after `timeout` with its last error, the status
/// and the log's tail. Fails at once when a unit is in error.
fn poll<T>(
    sb: &Sandbox,
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        let last = match f() {
            Ok(v) => return v,
            Err(e) => e,
        };
        let errors = units_in_error(&sb.status());
        if !errors.is_empty() || start.elapsed() > timeout {
            let log = sb.ok(&["debug-log", "--replay", "--no-tail"]);
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            panic!(
                "{}waiting for {what}: {last}\n--- status ---\n{}\n--- log (tail) ---\n{}",
                if errors.is_empty() {
                    "timed out ".to_string()
                } else {
                    format!("units in error {errors:?} while ")
                },
                sb.ok(&["status"]),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn units_in_error(status: &Value) -> Vec<String> {
    let mut v = vec![];
    for app in status["applications"]
        .as_object()
        .into_iter()
        .flat_map(|a| a.values())
    {
        for (name, u) in app["units"].as_object().into_iter().flatten() {
            if u["workload-status"]["current"] == "error" || u["juju-status"]["current"] == "error"
            {
                v.push(format!("{name}: {}", u["workload-status"]["message"]));
            }
        }
    }
    v
}

/// Units of `app` → their addresses, from `status`.
fn addresses(sb: &Sandbox, app: &str) -> BTreeMap<String, String> {
    sb.status()["applications"][app]["units"]
        .as_object()
        .map(|units| {
            units
                .iter()
                .map(|(n, u)| {
                    (
                        n.clone(),
                        u["public-address"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What every etcd unit must publish for the given members (unit → address).
struct Expected {
    units: BTreeSet<String>,
    /// `etcd0=http://IP:2380,...`, sorted.
    cluster: String,
    /// `http://IP:2379,...`, sorted.
    endpoints: String,
    /// The same as `host:port`, as the proxy-client passes them to grpc-proxy.
    hostports: String,
    version: String,
}

fn expected(sb: &Sandbox) -> Expected {
    let members = addresses(sb, "etcd");
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v.join(",")
    };
    let version = sb.status()["applications"]["etcd"]["version"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(!version.is_empty(), "etcd reports no version in status");
    Expected {
        units: members.keys().cloned().collect(),
        cluster: sorted(
            members
                .iter()
                .map(|(u, ip)| format!("{}=http://{ip}:2380", u.replace('/', "")))
                .collect(),
        ),
        endpoints: sorted(
            members
                .values()
                .map(|ip| format!("http://{ip}:2379"))
                .collect(),
        ),
        hostports: sorted(members.values().map(|ip| format!("{ip}:2379")).collect()),
        version,
    }
}

/// The relation id of `endpoint` on `unit` (None when it has none).
fn relation_id(sb: &Sandbox, unit: &str, endpoint: &str) -> Option<String> {
    let (code, out, err) = sb.exec(unit, &format!("relation-ids {endpoint}"));
    assert_eq!(code, 0, "relation-ids {endpoint} on {unit}: {err}");
    out.lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

/// What a consumer sees: each remote etcd unit (in `relation-list` order) → its databag.
fn seen_by(sb: &Sandbox, unit: &str, rid: &str) -> Vec<(String, Map<String, Value>)> {
    let (code, out, err) = sb.exec(
        unit,
        &format!(
            "for u in $(relation-list -r {rid}); do echo \"$u $(relation-get -r {rid} --format=json - $u)\"; done"
        ),
    );
    assert_eq!(code, 0, "relation-get on {unit}: {err}");
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (u, json) = l.split_once(' ').unwrap_or((l, "{}"));
            let bag: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{l}: {e}"));
            let mut bag = bag.as_object().cloned().unwrap_or_default();
            // Juju's own per-unit address keys are not the charm's data.
            bag.retain(|k, _| {
                !["private-address", "ingress-address", "egress-subnets"].contains(&k.as_str())
            });
            (u.to_string(), bag)
        })
        .collect()
}

fn key<'a>(bag: &'a Map<String, Value>, k: &str) -> &'a str {
    bag.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Checks that the consumer sees exactly the members of `want`, each with the same databag,
/// and that `check` accepts it.
fn check_seen(
    sb: &Sandbox,
    unit: &str,
    rid: &str,
    want: &Expected,
    check: impl Fn(&Map<String, Value>) -> Result<(), String>,
) -> Result<(), String> {
    let seen = seen_by(sb, unit, rid);
    let remote: BTreeSet<String> = seen.iter().map(|(u, _)| u.clone()).collect();
    if remote != want.units {
        return Err(format!(
            "{unit} sees units {remote:?}, want {:?}",
            want.units
        ));
    }
    let first = &seen[0].1;
    for (u, bag) in &seen {
        if bag != first {
            return Err(format!(
                "{unit}: {u}'s databag {bag:?} differs from {}'s {first:?}",
                seen[0].0
            ));
        }
    }
    check(first).map_err(|e| format!("{unit} sees {first:?}: {e}"))
}

fn is_sorted(list: &str) -> bool {
    let v: Vec<&str> = list.split(',').collect();
    v.windows(2).all(|w| w[0] <= w[1])
}

fn check_db_bag(bag: &Map<String, Value>, want: &Expected) -> Result<(), String> {
    let cs = key(bag, "connection_string");
    if !is_sorted(cs) {
        return Err(format!("connection_string {cs} is not sorted"));
    }
    if cs != want.endpoints {
        return Err(format!("connection_string {cs}, want {}", want.endpoints));
    }
    if key(bag, "version") != want.version {
        return Err(format!(
            "version {:?}, want {}",
            bag.get("version"),
            want.version
        ));
    }
    Ok(())
}

fn check_proxy_bag(bag: &Map<String, Value>, want: &Expected) -> Result<(), String> {
    let (cluster, endpoints) = (key(bag, "cluster"), key(bag, "endpoints"));
    if !is_sorted(cluster) || !is_sorted(endpoints) {
        return Err("cluster or endpoints not sorted".into());
    }
    if cluster != want.cluster {
        return Err(format!("cluster {cluster}, want {}", want.cluster));
    }
    if endpoints != want.endpoints {
        return Err(format!("endpoints {endpoints}, want {}", want.endpoints));
    }
    Ok(())
}

/// The command line of the proxy-client's running grpc-proxy.
fn proxy_cmdline(sb: &Sandbox) -> Result<String, String> {
    try_sh(
        sb,
        PROXY_UNIT,
        "systemctl is-active --quiet etcd-grpc-proxy && \
         tr '\\0' ' ' < /proc/$(systemctl show -p MainPID --value etcd-grpc-proxy)/cmdline",
    )
}

fn restarts(sb: &Sandbox) -> String {
    try_sh(sb, PROXY_UNIT, "cat /var/lib/proxy-client/restarts").unwrap_or_default()
}

/// Waits until both consumers see `want` on every etcd unit, are active, and have done their
/// own write through it (their key on the cluster holds what they used).
fn converge(sb: &Sandbox, db_rid: &str, proxy_rid: &str, what: &str) -> Expected {
    poll(sb, what, CONVERGE, || {
        let want = expected(sb);
        check_seen(sb, DB_UNIT, db_rid, &want, |b| check_db_bag(b, &want))?;
        check_seen(sb, PROXY_UNIT, proxy_rid, &want, |b| {
            check_proxy_bag(b, &want)
        })?;
        let probe = want.units.iter().next().unwrap().clone();
        let db_key = get(sb, &probe, &format!("db-client/{DB_UNIT}"))?;
        if db_key != want.endpoints {
            return Err(format!(
                "db-client's key holds {db_key}, want {}",
                want.endpoints
            ));
        }
        let proxy_key = get(sb, &probe, &format!("proxy-client/{PROXY_UNIT}"))?;
        if proxy_key != want.hostports {
            return Err(format!(
                "proxy-client's key holds {proxy_key}, want {}",
                want.hostports
            ));
        }
        let cmd = proxy_cmdline(sb)?;
        if !cmd.contains(&format!("--endpoints={} ", want.hostports)) {
            return Err(format!(
                "grpc-proxy runs `{cmd}`, want --endpoints={}",
                want.hostports
            ));
        }
        for unit in [DB_UNIT, PROXY_UNIT] {
            let (s, m) = workload(sb, unit);
            let n = want.units.len();
            if s != "active" || !m.contains(&format!(" {n} ")) {
                return Err(format!(
                    "{unit} is {s}: {m} (want active with {n} endpoints)"
                ));
            }
        }
        Ok(want)
    })
}

/// Both consumers read and write through the current membership, seen from the cluster.
fn check_works(sb: &Sandbox, want: &Expected, tag: &str, earlier: &[&str]) {
    let etcd_units: Vec<&String> = want.units.iter().collect();
    // Through the proxy on the proxy-client's machine → read on (every) etcd unit.
    let k = format!("relations/{tag}/via-proxy");
    try_sh(
        sb,
        PROXY_UNIT,
        &format!("etcdctl --endpoints={LISTEN} --command-timeout=10s put {k} {tag}-proxy"),
    )
    .unwrap_or_else(|e| panic!("write through the proxy: {e}"));
    for u in &etcd_units {
        assert_eq!(
            get(sb, u, &k).unwrap(),
            format!("{tag}-proxy"),
            "{k} read on {u}"
        );
    }
    // With the db-client's connection string from its machine → read on etcd and via the proxy.
    let k = format!("relations/{tag}/via-db");
    try_sh(
        sb,
        DB_UNIT,
        &format!(
            "etcdctl --endpoints=$(cat /var/lib/db-client/connection_string) --command-timeout=10s put {k} {tag}-db"
        ),
    )
    .unwrap_or_else(|e| panic!("write with db-client's connection_string: {e}"));
    assert_eq!(get(sb, etcd_units[0], &k).unwrap(), format!("{tag}-db"));
    assert_eq!(
        sh(
            sb,
            PROXY_UNIT,
            &format!("etcdctl --endpoints={LISTEN} get --print-value-only {k}")
        ),
        format!("{tag}-db"),
        "{k} read through the proxy"
    );
    // What earlier phases wrote is still there.
    for t in earlier {
        for (via, v) in [("via-proxy", "proxy"), ("via-db", "db")] {
            let k = format!("relations/{t}/{via}");
            assert_eq!(
                get(sb, etcd_units[0], &k).unwrap(),
                format!("{t}-{v}"),
                "{k} after {tag}"
            );
        }
    }
}

/// `relation-set` in a hook context on `unit` (a write to its own databag).
fn relation_set(sb: &Sandbox, unit: &str, rid: &str, settings: &str) {
    let (code, _, err) = sb.exec(unit, &format!("relation-set -r {rid} {settings}"));
    assert_eq!(code, 0, "relation-set on {unit}: {err}");
}

/// The debug log's lines (for hooks that ran).
fn log_lines(sb: &Sandbox) -> Vec<String> {
    sb.ok(&["debug-log", "--replay", "--no-tail"])
        .lines()
        .map(String::from)
        .collect()
}

fn ran(lines: &[String], unit: &str, hook: &str) -> bool {
    let prefix = format!("unit-{}: ", unit.replace('/', "-"));
    lines.iter().any(|l| {
        l.starts_with(&prefix) && l.contains(&format!(" ran {hook} in ")) && l.ends_with("(exit 0)")
    })
}

#[test]
fn db_and_proxy_consumers_follow_membership() {
    let sb = Sandbox::new("etcd_relations");
    // Plain http: the expected relation data and consumers' commands carry http URLs.
    deploy_etcd(&sb, 3, &["--config", "tls=false"]);
    deploy_consumer(&sb, DB, "etcdctl");
    deploy_consumer(&sb, PROXY, "etcd");
    // Related before etcd has started: the consumers wait, then follow the cluster as it forms.
    sb.ok(&["integrate", "db-client:db", "etcd:db"]);
    sb.ok(&["integrate", "proxy-client:proxy", "etcd:proxy"]);
    sb.wait_active(5);
    let db_rid = relation_id(&sb, DB_UNIT, "db").expect("db-client's db relation");
    let proxy_rid = relation_id(&sb, PROXY_UNIT, "proxy").expect("proxy-client's proxy relation");
    let want = converge(&sb, &db_rid, &proxy_rid, "both consumers on 3 members");
    assert_eq!(want.units.len(), 3);
    check_works(&sb, &want, "three", &[]);

    // Missing and malformed data from etcd's first unit, then junk from the consumers. No
    // update-status meanwhile, so only these writes trigger hooks.
    sb.ok(&["model-config", "update-status-hook-interval=1h"]);
    // The first remote unit, the only one the consumers read.
    let first = seen_by(&sb, DB_UNIT, &db_rid)[0].0.clone();
    assert_eq!(first, seen_by(&sb, PROXY_UNIT, &proxy_rid)[0].0);
    let etcd_db_rid = relation_id(&sb, &first, "db").expect("etcd's db relation");
    let etcd_proxy_rid = relation_id(&sb, &first, "proxy").expect("etcd's proxy relation");
    let restarts_before = restarts(&sb);
    let log_mark = log_lines(&sb).len();
    // No `endpoints`: the proxy-client derives the same endpoints from `cluster`.
    relation_set(&sb, &first, &etcd_proxy_rid, "endpoints=");
    poll(
        &sb,
        "proxy-client to fall back to `cluster`",
        CONVERGE,
        || {
            let lines = log_lines(&sb);
            let fell_back = lines[log_mark..]
                .iter()
                .any(|l| l.starts_with("unit-proxy-client-0: ") && l.contains("derived "));
            let done = ran(&lines[log_mark..], PROXY_UNIT, "proxy-relation-changed");
            (fell_back && done)
                .then_some(())
                .ok_or("no fallback logged yet".to_string())
        },
    );
    assert_eq!(
        workload(&sb, PROXY_UNIT).0,
        "active",
        "after the fallback to `cluster`"
    );
    assert_eq!(
        restarts(&sb),
        restarts_before,
        "same endpoints must not restart the proxy"
    );
    relation_set(&sb, &first, &etcd_proxy_rid, "cluster=garbage");
    relation_set(&sb, &first, &etcd_db_rid, "connection_string=not-a-url");
    for unit in [DB_UNIT, PROXY_UNIT] {
        poll(
            &sb,
            &format!("{unit} to wait on malformed data"),
            CONVERGE,
            || {
                let (s, m) = workload(&sb, unit);
                (s == "waiting" && m.contains("malformed"))
                    .then_some(())
                    .ok_or(format!("{unit} is {s}: {m}"))
            },
        );
    }
    assert_eq!(
        proxy_cmdline(&sb).map(|c| c.contains(&want.hostports)),
        Ok(true),
        "malformed data must leave the running proxy alone"
    );
    relation_set(
        &sb,
        DB_UNIT,
        &db_rid,
        "connection_string=junk version= client_cert=not-pem 'odd=$(reboot)'",
    );
    relation_set(
        &sb,
        PROXY_UNIT,
        &proxy_rid,
        "cluster=junk endpoints=::: client_ca=x",
    );
    // etcd ignores it, and its hooks put back what it publishes.
    let again = converge(
        &sb,
        &db_rid,
        &proxy_rid,
        "etcd to restore its data after junk",
    );
    assert_eq!(again.endpoints, want.endpoints);
    assert_eq!(
        restarts(&sb),
        restarts_before,
        "same endpoints must not restart the proxy"
    );
    sb.ok(&["model-config", "update-status-hook-interval=20s"]);

    // Scale out to 5.
    sb.ok(&["add-unit", "etcd", "-n", "2"]);
    sb.wait_active(7);
    let want = converge(&sb, &db_rid, &proxy_rid, "both consumers on 5 members");
    assert_eq!(want.units.len(), 5);
    check_works(&sb, &want, "five", &["three"]);

    // Scale in to 3: the Juju leader's unit and the lowest other one, so the first remote unit
    // the consumers read goes away too.
    let leader = sb.leader("etcd").expect("an etcd leader");
    let other = want.units.iter().find(|u| **u != leader).unwrap().clone();
    sb.ok(&["remove-unit", &leader, &other]);
    poll(
        &sb,
        "a new etcd leader among 3 units",
        Duration::from_secs(180),
        || {
            let n = addresses(&sb, "etcd").len();
            match sb.leader("etcd") {
                Some(l) if l != leader && n == 3 => Ok(()),
                l => Err(format!("{n} etcd units, leader {l:?}")),
            }
        },
    );
    sb.wait_active(5);
    let want = converge(
        &sb,
        &db_rid,
        &proxy_rid,
        "both consumers on the 3 remaining members",
    );
    assert_eq!(want.units.len(), 3);
    assert!(!want.units.contains(&leader) && !want.units.contains(&other));
    let members = sh(
        &sb,
        want.units.iter().next().unwrap(),
        "etcdctl member list",
    );
    assert_eq!(members.lines().count(), 3, "raft members: {members}");
    check_works(&sb, &want, "three-again", &["three", "five"]);

    // Remove both relations: departed and broken on both sides, nothing left behind.
    let log_mark = log_lines(&sb).len();
    sb.ok(&["remove-relation", "db-client:db", "etcd:db"]);
    sb.ok(&["remove-relation", "proxy-client:proxy", "etcd:proxy"]);
    poll(&sb, "departed and broken on both sides", CONVERGE, || {
        let lines = log_lines(&sb);
        let lines = &lines[log_mark..];
        let mut missing = vec![];
        for (unit, ep) in [(DB_UNIT, "db"), (PROXY_UNIT, "proxy")].into_iter().chain(
            want.units
                .iter()
                .flat_map(|u| [(u.as_str(), "db"), (u.as_str(), "proxy")]),
        ) {
            for hook in ["departed", "broken"] {
                let hook = format!("{ep}-relation-{hook}");
                if !ran(lines, unit, &hook) {
                    missing.push(format!("{unit} {hook}"));
                }
            }
        }
        missing
            .is_empty()
            .then_some(())
            .ok_or(format!("not run yet: {missing:?}"))
    });
    for (unit, app) in [
        (DB_UNIT, "db-client:db"),
        (PROXY_UNIT, "proxy-client:proxy"),
    ] {
        poll(&sb, &format!("{unit} blocked"), CONVERGE, || {
            let (s, m) = workload(&sb, unit);
            (s == "blocked" && m.contains(&format!("integrate {}", app.split(':').next().unwrap())))
                .then_some(())
                .ok_or(format!("{unit} is {s}: {m}"))
        });
    }
    assert_eq!(relation_id(&sb, DB_UNIT, "db"), None);
    assert_eq!(relation_id(&sb, PROXY_UNIT, "proxy"), None);
    assert!(
        try_sh(&sb, PROXY_UNIT, "systemctl is-active etcd-grpc-proxy").is_err(),
        "the proxy still runs after relation-broken"
    );
    for u in &want.units {
        assert_eq!(
            relation_id(&sb, u, "db"),
            None,
            "{u} still lists a db relation"
        );
        assert_eq!(
            relation_id(&sb, u, "proxy"),
            None,
            "{u} still lists a proxy relation"
        );
        assert_eq!(
            workload(&sb, u).0,
            "active",
            "{u} after the relations were removed"
        );
    }
    let s = sb.status();
    let rels = s["applications"]["etcd"]["relations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(
        !rels.contains_key("db") && !rels.contains_key("proxy"),
        "etcd still lists {rels:?}"
    );
    assert_eq!(units_in_error(&s), Vec::<String>::new());
}

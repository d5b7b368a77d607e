//! The actions on real machines (issue 6), on one 3-unit deployment with a 16 MiB quota (the
//! smallest `quota_backend_bytes` the charm accepts), from harmless to destructive: bad params
//! change nothing; health and member-list on a healthy cluster (Juju 3 and 2.x forms); snapshot →
//! more writes → restore gives back exactly the snapshot's keys on every member; compact +
//! `defrag all=true` while a writer runs sees no failed write; a NOSPACE alarm is listed, refused
//! while the database is still full, and cleared once freed; health fails naming a killed
//! member; rebuild-cluster after losing 2 of 3 machines serves the surviving data, and the other
//! units rejoin once their machines are back. Needs root: it boots machines.

#[path = "support/mod.rs"]
mod support;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;
use support::{deploy_etcd, etcdctl, get, sh, voting_members, Sandbox};

/// The smallest quota the charm accepts (`src/config.rs`): 16 MiB, filled by 11 puts of 1 MB.
const QUOTA: &str = "16777216";
/// How long the other units may take to rejoin after a restore or a rebuild.
const REJOIN: Duration = Duration::from_secs(180);

/// An action's outcome: whether it completed, its results, and the CLI's stderr.
struct Outcome {
    completed: bool,
    results: Value,
    stderr: String,
}

impl Outcome {
    fn get(&self, key: &str) -> String {
        let mut v = &self.results;
        for k in key.split('.') {
            v = &v[k];
        }
        v.as_str().unwrap_or_default().to_string()
    }

    fn output(&self) -> String {
        self.get("output")
    }
}

/// `sandbox run <unit> <action> [k=v…] --format json`.
fn act(sb: &Sandbox, unit: &str, action: &str, params: &[&str]) -> Outcome {
    let mut args = vec!["run", unit, action];
    args.extend_from_slice(params);
    args.extend_from_slice(&["--format", "json"]);
    let out = sb.run(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // The JSON results follow the "Running operation…" lines.
    let results = stdout
        .find("\n{")
        .and_then(|i| serde_json::from_str(&stdout[i + 1..]).ok())
        .unwrap_or(Value::Null);
    Outcome {
        completed: out.status.success(),
        results,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs an action that must complete; returns it.
fn ok(sb: &Sandbox, unit: &str, action: &str, params: &[&str]) -> Outcome {
    let o = act(sb, unit, action, params);
    assert!(
        o.completed,
        "{action} {params:?} on {unit} failed: {}\n{}",
        o.output(),
        o.stderr
    );
    o
}

/// Runs an action that must fail with a message containing `want`; returns the message.
fn fails(sb: &Sandbox, unit: &str, action: &str, params: &[&str], want: &str) -> String {
    let o = act(sb, unit, action, params);
    assert!(
        !o.completed,
        "{action} {params:?} on {unit} completed: {}",
        o.results
    );
    let msg = format!("{}{}", o.output(), o.stderr);
    assert!(
        msg.contains(want),
        "{action} {params:?}: no {want:?} in: {msg}"
    );
    msg
}

/// Keys a unit's own member has (serializable read: that member's data, not the leader's).
fn keys(sb: &Sandbox, unit: &str) -> Option<BTreeSet<String>> {
    let (code, out, _) = etcdctl(
        sb,
        unit,
        "get --prefix '' --keys-only --consistency=s --command-timeout=3s",
    );
    (code == 0).then(|| {
        out.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    })
}

/// Names of the started voting members a unit sees, sorted (none when it does not answer).
fn voters(sb: &Sandbox, unit: &str) -> Vec<String> {
    voting_members(&etcdctl(sb, unit, "member list --command-timeout=3s").1)
}

/// Waits until every unit sees the three members voting and holds exactly `want` keys.
fn converged(sb: &Sandbox, what: &str, want: &BTreeSet<String>) {
    let units = ["etcd/0", "etcd/1", "etcd/2"];
    sb.eventually(what, REJOIN, || {
        units
            .iter()
            .all(|u| {
                voters(sb, u) == ["etcd0", "etcd1", "etcd2"] && keys(sb, u).as_ref() == Some(want)
            })
            .then_some(())
    });
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

#[test]
fn day_two_actions() {
    let sb = Sandbox::new("etcd_actions");
    deploy_etcd(
        &sb,
        3,
        // The actions by hand: no automatic maintenance at update-status meanwhile.
        &[
            "--config",
            &format!("quota_backend_bytes={QUOTA}"),
            "--config",
            "auto_nospace_recovery=false",
            "--config",
            "auto_defrag=false",
        ],
    );
    sb.wait_active(3);
    let leader = sb.leader("etcd").expect("a leader");
    let followers: Vec<String> = sb
        .units("etcd")
        .into_iter()
        .filter(|u| *u != leader)
        .collect();
    sh(&sb, &leader, "etcdctl put canary 1");

    // --- Bad params: refused at enqueue (unknown key, wrong type, missing required) or by the
    // charm (leader only, force, unreadable or mismatched snapshot, future revision); nothing
    // changes.
    let before = sh(&sb, &leader, "etcdctl member list");
    fails(
        &sb,
        &leader,
        "snapshot",
        &["tagret=/srv"],
        "additional property \"tagret\" is not allowed",
    );
    fails(
        &sb,
        &leader,
        "compact",
        &["revision=abc"],
        "revision: expected integer",
    );
    fails(&sb, &leader, "rebuild-cluster", &[], "force is required");
    fails(
        &sb,
        &leader,
        "rebuild-cluster",
        &["force=false"],
        "run it with force=true",
    );
    fails(
        &sb,
        &followers[0],
        "restore",
        &["path=/tmp/x.db"],
        "runs on the leader unit only",
    );
    sh(&sb, &leader, "echo 'not a snapshot' > /tmp/garbage.db");
    fails(
        &sb,
        &leader,
        "restore",
        &["path=/tmp/garbage.db"],
        "is not an etcd v3 snapshot",
    );
    fails(
        &sb,
        &leader,
        "compact",
        &["revision=999999"],
        "is in the future",
    );
    assert_eq!(
        sh(&sb, &leader, "etcdctl member list"),
        before,
        "bad params changed the members"
    );

    // --- health and member-list on a healthy cluster, Juju 3 and 2.x forms.
    let h = ok(&sb, &followers[0], "health", &[]);
    assert_eq!(h.get("verdict"), "healthy");
    assert!(h.output().contains("cluster is healthy"), "{}", h.output());
    for m in ["etcd0", "etcd1", "etcd2"] {
        assert_eq!(
            h.get(&format!("members.{m}.healthy")),
            "true",
            "{m}: {}",
            h.results
        );
    }
    let queued = sb.ok(&["action", "do", &leader, "health"]);
    let id = queued.trim().rsplit(' ').next().unwrap().to_string();
    let fetched = sb.ok(&["action", "fetch", &id, "--wait", "1m"]);
    assert!(
        fetched.contains("completed") && fetched.contains("cluster is healthy"),
        "{fetched}"
    );
    let ml = ok(&sb, &leader, "member-list", &[]);
    assert_eq!(ml.get("count"), "3");
    for n in 0..3 {
        assert_eq!(
            ml.get(&format!("members.etcd{n}.unit")),
            format!("etcd/{n}"),
            "{}",
            ml.results
        );
    }

    // --- snapshot → more writes → restore: the snapshot's keys and none after, everywhere.
    sh(
        &sb,
        &followers[1],
        "for i in 1 2 3; do etcdctl put snap-$i v$i; done",
    );
    let snap = ok(&sb, &leader, "snapshot", &[]);
    let path = snap.get("path");
    let sha = sh(&sb, &leader, &format!("sha256sum {path}"));
    assert_eq!(
        sha.split_whitespace().next(),
        Some(snap.get("sha256").as_str())
    );
    assert!(
        snap.get("revision").parse::<i64>().unwrap() >= 4,
        "{}",
        snap.results
    );
    assert_eq!(snap.get("etcd-version"), "3.4.23");
    sh(
        &sb,
        &followers[0],
        "etcdctl put after-1 x && etcdctl put after-2 y",
    );
    fails(
        &sb,
        &leader,
        "restore",
        &[
            &format!("path={path}"),
            &format!("sha256={}", "0".repeat(64)),
        ],
        "copy it again",
    );
    let restored = ok(&sb, &leader, "restore", &[&format!("path={path}")]);
    assert_eq!(restored.get("revision"), snap.get("revision"));
    // Set aside beside the real data dir: on the `data` volume when the unit has one.
    let previous = restored.get("previous-data");
    assert!(
        previous.starts_with("/var/lib/etcd/") && previous.contains("/data.before-restore-"),
        "{previous}"
    );
    let snapshot_keys = set(&["canary", "snap-1", "snap-2", "snap-3"]);
    converged(
        &sb,
        "every member back with the snapshot's keys",
        &snapshot_keys,
    );
    sb.wait_active(3);
    ok(&sb, &followers[1], "health", &[]);

    // --- compact + defrag all=true while a writer runs: no write fails.
    sh(
        &sb,
        &followers[0],
        "rm -f /tmp/w.*; systemd-run --unit writer --quiet sh -c 'i=0; \
         while [ ! -e /tmp/w.stop ] && [ $i -lt 5000 ]; do i=$((i+1)); \
         etcdctl --command-timeout=15s put w-$i $i >/dev/null 2>>/tmp/w.err || echo $i >> /tmp/w.fail; \
         echo $i > /tmp/w.count; done; touch /tmp/w.done'",
    );
    let count = |sb: &Sandbox| -> u64 {
        sb.ssh(&followers[0], "cat /tmp/w.count")
            .1
            .trim()
            .parse()
            .unwrap_or(0)
    };
    sb.eventually("the writer writing", Duration::from_secs(60), || {
        (count(&sb) >= 20).then_some(())
    });
    let c = ok(&sb, &leader, "compact", &["physical=true"]);
    assert!(
        c.get("revision").parse::<i64>().unwrap() > 20,
        "{}",
        c.results
    );
    let d = ok(&sb, &followers[1], "defrag", &["all=true"]);
    assert_eq!(d.get("defragmented").split(',').count(), 3, "{}", d.results);
    let after = count(&sb);
    sb.eventually("more writes after defrag", Duration::from_secs(60), || {
        (count(&sb) >= after + 20).then_some(())
    });
    sh(&sb, &followers[0], "touch /tmp/w.stop");
    sb.eventually("the writer to stop", Duration::from_secs(60), || {
        (sb.ssh(&followers[0], "test -e /tmp/w.done").0 == 0).then_some(())
    });
    let (_, failed, _) = sb.ssh(&followers[0], "cat /tmp/w.fail 2>/dev/null");
    let (_, errors, _) = sb.ssh(&followers[0], "tail -5 /tmp/w.err 2>/dev/null");
    assert_eq!(
        failed.trim(),
        "",
        "failed writes during compact + defrag: {errors}"
    );

    // --- NOSPACE: filled up, listed, refused while still full, cleared once freed.
    let fill = sh(
        &sb,
        &leader,
        "for i in $(seq 1 40); do head -c 1000000 /dev/zero | tr '\\0' x | \
         etcdctl put big-$i >/dev/null 2>/tmp/fill.err || { cat /tmp/fill.err; break; }; done",
    );
    assert!(
        fill.contains("database space exceeded"),
        "no NOSPACE after 40 MB: {fill}"
    );
    let alarms = ok(&sb, &followers[0], "alarm-list", &[]);
    assert!(
        alarms.get("alarms").contains("NOSPACE on etcd"),
        "{}",
        alarms.results
    );
    fails(&sb, &followers[0], "health", &[], "NOSPACE");
    fails(
        &sb,
        &followers[0],
        "alarm-disarm",
        &[],
        "nothing was disarmed",
    );
    assert!(ok(&sb, &leader, "alarm-list", &[])
        .get("alarms")
        .contains("NOSPACE"));
    sh(
        &sb,
        &leader,
        "etcdctl del --prefix big- && etcdctl del --prefix w-",
    );
    ok(&sb, &leader, "compact", &["physical=true"]);
    ok(&sb, &leader, "defrag", &["all=true"]);
    let disarmed = ok(&sb, &followers[1], "alarm-disarm", &[]);
    assert!(
        disarmed.get("disarmed").contains("NOSPACE"),
        "{}",
        disarmed.results
    );
    assert_eq!(disarmed.get("remaining"), "none");
    assert_eq!(ok(&sb, &leader, "alarm-list", &[]).get("count"), "0");
    sh(&sb, &leader, "etcdctl put survivor yes");
    ok(&sb, &leader, "health", &[]);

    // --- One machine lost: health fails naming its member.
    let member = |u: &str| u.replace('/', "");
    sb.ok(&["kill-machine", &followers[0]]);
    let msg = fails(&sb, &leader, "health", &[], "cluster is unhealthy");
    assert!(
        msg.contains(&format!("{} (does not answer", member(&followers[0]))),
        "{msg}"
    );
    assert!(
        !msg.contains(&format!("{} (", member(&followers[1]))),
        "{msg}"
    );

    // --- Two of three lost: rebuild-cluster serves the surviving data; the others rejoin.
    sb.ok(&["kill-machine", &followers[1]]);
    let rebuilt = ok(&sb, &leader, "rebuild-cluster", &["force=true"]);
    assert_eq!(rebuilt.get("member"), member(&leader));
    sh(&sb, &leader, "etcdctl put after-rebuild yes");
    assert_eq!(get(&sb, &leader, "survivor").as_deref(), Ok("yes"));
    for u in &followers {
        sb.ok(&["restart-machine", u]);
    }
    converged(
        &sb,
        "the lost units back in the rebuilt cluster",
        &set(&[
            "after-rebuild",
            "canary",
            "snap-1",
            "snap-2",
            "snap-3",
            "survivor",
        ]),
    );
    sb.wait_active(3);
    ok(&sb, &followers[0], "health", &[]);
}

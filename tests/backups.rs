//! Backups to object storage on real machines (issue 14), against Garage run by the
//! `s3-integrator` test charm, on one 3-unit deployment related to it: keys put →
//! `create-backup` (checked by `list-backups`) → keys deleted → `restore backup-id=…` gives the
//! keys back on every member with revisions not lower than before; retention keeps this
//! application's newest backups only; a damaged object and a foreign one are refused with the
//! cluster untouched; wrong credentials and a missing bucket fail the action naming the cause;
//! a new application restores the old one's backup (disaster recovery) and prunes only its own;
//! an unreachable endpoint fails the action naming it; the verified backup reaches every unit's
//! facts exporter; the leader asks for a bucket (and the keys in a secret) in its application
//! databag; no credential reaches a result or the log. Scheduled backups: every unit has the timer, which
//! enters hook context with `juju-exec`; one backup per period for the application, taken by a
//! healthy follower, also when every unit's timer fires at once and when a member is down; under
//! Juju 2.9 the timer enters hook context with `juju-run`. The secret form of the `s3`
//! interface (the keys in a granted Juju secret) serves `create-backup` and `list-backups`; a
//! full disk fails `create-backup` naming it, with nothing stored, left behind or changed.
//! Needs root (it boots machines), Garage
//! (`scripts/build-garage`) and the `objstore` binary (`cargo build -p objstore`).

#[path = "support/mod.rs"]
mod support;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;
use support::{
    built_charm, deploy_etcd, etcdctl, garage_bin, netns_of, objstore_bin, repo_root, sh, Sandbox,
};

/// Where the charm keeps a snapshot until its upload (`actions::backup::work_dir`).
const WORK_DIR: &str = "/var/lib/etcd-charm/backups";

/// How long the other units may take to rejoin after a restore.
const REJOIN: Duration = Duration::from_secs(240);
const BUCKET: &str = "etcd-backups";
const PATH: &str = "etcd/backups";

/// `sandbox run <unit> <action> [k=v…] --format json`: whether it completed, and its results.
fn action(sb: &Sandbox, unit: &str, name: &str, params: &[&str]) -> (bool, Value) {
    let mut args = vec!["run", unit, name];
    args.extend_from_slice(params);
    args.extend_from_slice(&["--format", "json"]);
    let out = sb.run(&args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let results = text
        .find("\n{")
        .and_then(|i| serde_json::from_str(&text[i + 1..]).ok())
        .unwrap_or(Value::Null);
    let results = match results {
        Value::Null => Value::String(format!("{text}{}", String::from_utf8_lossy(&out.stderr))),
        v => v,
    };
    (out.status.success(), results)
}

/// A dotted result key's value.
fn field(results: &Value, key: &str) -> String {
    let v = key.split('.').fold(results, |v, k| &v[k]);
    v.as_str().unwrap_or_default().to_string()
}

/// An action that must complete.
fn done(sb: &Sandbox, unit: &str, name: &str, params: &[&str]) -> Value {
    let (ok, r) = action(sb, unit, name, params);
    assert!(ok, "{name} {params:?} on {unit} failed: {r}");
    r
}

/// An action that must fail with `want` in its message; the message.
fn refused(sb: &Sandbox, unit: &str, name: &str, params: &[&str], want: &str) -> String {
    let (ok, r) = action(sb, unit, name, params);
    assert!(!ok, "{name} {params:?} on {unit} completed: {r}");
    let msg = r.to_string();
    assert!(msg.contains(want), "{name}: no {want:?} in {msg}");
    msg
}

/// A key's value and mod revision on a unit's own member (serializable read).
fn key_rev(sb: &Sandbox, unit: &str, key: &str) -> Option<(String, i64)> {
    let args = format!("get {key} -w json --consistency=s --command-timeout=3s");
    let (code, out, _) = etcdctl(sb, unit, &args);
    let v: Value = serde_json::from_str(&out).ok().filter(|_| code == 0)?;
    let kv = v["kvs"].get(0)?;
    let value = kv["value"].as_str()?;
    let value = String::from_utf8(base64_decode(value)).ok()?;
    Some((value, kv["mod_revision"].as_i64()?))
}

/// Standard base64 (etcdctl's JSON), decoded.
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| *c != b'=').map(val).collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// The provider's application databag as `etcd/0` sees it.
fn s3_data(sb: &Sandbox) -> BTreeMap<String, String> {
    let (code, out, err) = sb.exec(
        "etcd/0",
        "relation-get -r $(relation-ids s3-credentials) --app --format json - s3-integrator",
    );
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).expect("relation data")
}

/// What etcd asks the provider for (its application databag), as `s3-integrator/0` sees it.
fn requirer_data(sb: &Sandbox) -> BTreeMap<String, String> {
    let get = "relation-get -r $(relation-ids s3-credentials) --app --format json - etcd";
    let (code, out, err) = sb.exec("s3-integrator/0", get);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).expect("relation data")
}

/// `etcd_charm_last_verified_backup_timestamp_seconds` as `unit`'s facts exporter serves it
/// (on loopback, fetched in the unit's network namespace).
fn last_verified_backup(sb: &Sandbox, unit: &str) -> Option<String> {
    let url = "http://127.0.0.1:9379/metrics";
    let ns = netns_of(sb, unit);
    let out = Command::new("ip")
        .args(["netns", "exec", &ns, "curl", "-sS", "--max-time", "5", url])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let metric = "etcd_charm_last_verified_backup_timestamp_seconds ";
    text.lines()
        .find_map(|l| l.strip_prefix(metric).map(str::to_string))
}

/// Runs `objstore <args>` in `etcd/0`'s network with the relation's credentials (in the
/// environment, never in argv); its stdout.
fn objstore(sb: &Sandbox, args: &[&str]) -> String {
    let d = s3_data(sb);
    let out = Command::new("ip")
        .args(["netns", "exec", &netns_of(sb, "etcd/0")])
        .arg(objstore_bin())
        .args(args)
        .env_clear()
        .env("S3_ENDPOINT", &d["endpoint"])
        .env("S3_BUCKET", &d["bucket"])
        .env("S3_REGION", &d["region"])
        .env("S3_ACCESS_KEY", &d["access-key"])
        .env("S3_SECRET_KEY", &d["secret-key"])
        .output()
        .expect("objstore runs");
    assert!(out.status.success(), "objstore {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `relation-set` on the provider's application databag, in its hook context.
fn provider_sets(sb: &Sandbox, kv: &str) {
    let cmd = format!("relation-set -r $(relation-ids s3-credentials) --app {kv}");
    let (code, _, err) = sb.exec("s3-integrator/0", &cmd);
    assert_eq!(code, 0, "{err}");
}

/// The provider writes its real data again (its config-changed hook, run in hook context), so
/// the secret never goes through a command line here.
fn provider_shares_again(sb: &Sandbox) {
    let (code, _, err) = sb.exec(
        "s3-integrator/0",
        "JUJU_DISPATCH_PATH=hooks/config-changed ./dispatch",
    );
    assert_eq!(code, 0, "{err}");
}

/// Garage (the s3-integrator test charm, sharing bucket [`BUCKET`] and path [`PATH`], with
/// `integrator_config` too) and `n` etcd units deployed with `etcd_args`, related; all active.
fn deploy_with_store(sb: &Sandbox, n: u32, integrator_config: &[&str], etcd_args: &[&str]) {
    let charms = repo_root().join("tests/charms");
    let garage = format!("garage={}", garage_bin().display());
    let integrator = charms.join("s3-integrator");
    let config = format!("bucket={BUCKET}");
    let path = format!("path={PATH}");
    let mut deploy = vec![
        "deploy",
        integrator.to_str().unwrap(),
        "--resource",
        &garage,
    ];
    for c in [config.as_str(), path.as_str()]
        .iter()
        .chain(integrator_config)
    {
        deploy.extend_from_slice(&["--config", *c]);
    }
    sb.ok(&deploy);
    deploy_etcd(sb, n, etcd_args);
    let rel = [
        "integrate",
        "etcd:s3-credentials",
        "s3-integrator:s3-credentials",
    ];
    sb.ok(&rel);
    sb.wait_active(n as usize + 1);
}

/// The backups `list-backups` shows: (id, member), newest first.
fn backups(sb: &Sandbox, unit: &str) -> Vec<(String, String)> {
    let listed = done(sb, unit, "list-backups", &[]);
    let Some(all) = listed["backups"].as_object() else {
        return vec![];
    };
    let mut v: Vec<(String, String)> = all
        .values()
        .map(|b| (field(b, "id"), field(b, "member")))
        .collect();
    v.sort();
    v.reverse();
    v
}

/// Starts the backup service of every unit in `units` at once (as if their timers fired
/// together) and waits for them.
fn fire_timers(sb: &Sandbox, units: &[String]) {
    std::thread::scope(|s| {
        for u in units {
            s.spawn(move || sb.ssh(u, "systemctl start etcd-backup.service"));
        }
    });
}

/// The unit of a member name (`etcd1` → `etcd/1`).
fn unit_of(member: &str) -> String {
    format!("etcd/{}", member.trim_start_matches("etcd"))
}

#[test]
fn scheduled_backups_one_per_period_by_a_healthy_follower() {
    let sb = Sandbox::new("backups_scheduled");
    deploy_with_store(&sb, 3, &[], &["--config", "backup_schedule=weekly"]);
    let units = sb.units("etcd");
    for u in &units {
        assert_eq!(
            sh(&sb, u, "systemctl is-enabled etcd-backup.timer"),
            "enabled"
        );
        let service = sh(&sb, u, "cat /etc/systemd/system/etcd-backup.service");
        let exec =
            format!("/usr/bin/juju-exec {u} \"JUJU_DISPATCH_PATH=backup/scheduled ./dispatch\"");
        assert!(service.contains(&exec), "{service}");
    }
    // The timers fire (the first a minute after they start), then all at once: one backup.
    let leader = sb.leader("etcd").unwrap();
    sb.eventually(
        "the first scheduled backup",
        Duration::from_secs(180),
        || (!backups(&sb, &leader).is_empty()).then_some(()),
    );
    fire_timers(&sb, &units);
    let taken = backups(&sb, &leader);
    assert_eq!(taken.len(), 1, "one backup per period: {taken:?}");
    let raft_leader = field(&done(&sb, &leader, "health", &[]), "leader");
    assert_ne!(taken[0].1, raft_leader, "a follower takes it: {taken:?}");

    // Its member down, the other healthy follower takes the period's backup. No update-status
    // meanwhile: the charm would start the stopped member again.
    let taker = unit_of(&taken[0].1);
    objstore(&sb, &["delete", &format!("{PATH}/{}", taken[0].0)]);
    sb.ok(&["model-config", "update-status-hook-interval=1h"]);
    sb.wait_active(units.len() + 1);
    sh(&sb, &taker, "systemctl stop etcd");
    let others: Vec<String> = units.iter().filter(|u| **u != taker).cloned().collect();
    fire_timers(&sb, &others);
    let taken = backups(&sb, &leader);
    let log = sb.ok(&["debug-log", "--replay", "--no-tail"]);
    let runs: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("scheduled backup"))
        .collect();
    assert_eq!(taken.len(), 1, "{taken:?}\n{runs:#?}");
    assert_ne!(taken[0].1, raft_leader, "{taken:?}");
    assert_ne!(unit_of(&taken[0].1), taker, "{taken:?}");
    sh(&sb, &taker, "systemctl start etcd");
    sb.ok(&["model-config", "update-status-hook-interval=20s"]);

    // The schedule off: the timers go.
    sb.ok(&["config", "etcd", "backup_schedule="]);
    sb.eventually("the timers removed", Duration::from_secs(120), || {
        let gone = |u: &String| sb.ssh(u, "test -e /etc/systemd/system/etcd-backup.timer").0 != 0;
        units.iter().all(gone).then_some(())
    });
}

#[test]
fn backups_to_garage_restore_prune_and_refuse_bad_objects() {
    let sb = Sandbox::new("backups");
    deploy_with_store(&sb, 3, &[], &["--config", "backup_retention_count=2"]);
    let leader = sb.leader("etcd").expect("a leader");
    let units = sb.units("etcd");
    let follower = units.iter().find(|u| **u != leader).unwrap().clone();

    // No backups yet.
    let listed = done(&sb, &leader, "list-backups", &[]);
    assert_eq!(field(&listed, "count"), "0", "{listed}");

    // Keys → backup from a follower → list.
    sh(
        &sb,
        &follower,
        "for i in 1 2 3; do etcdctl put bk-$i v$i; done",
    );
    let before: Vec<(String, i64)> = (1..=3)
        .map(|i| key_rev(&sb, &follower, &format!("bk-{i}")).expect("the key"))
        .collect();
    let b = done(&sb, &follower, "create-backup", &[]);
    let id = field(&b, "backup-id");
    assert_eq!(field(&b, "key"), format!("{PATH}/{id}"));
    assert_eq!(field(&b, "bucket"), BUCKET);
    let revision: i64 = field(&b, "revision").parse().unwrap();
    assert!(revision >= before[2].1, "{b}");
    assert_eq!(field(&b, "member"), follower.replace('/', ""), "{b}");
    let listed = done(&sb, &leader, "list-backups", &[]);
    assert_eq!(field(&listed, "count"), "1", "{listed}");
    let k = format!("backups.{}", id.to_lowercase().replace([':'], "-"));
    assert_eq!(field(&listed, &format!("{k}.id")), id, "{listed}");
    assert_eq!(
        field(&listed, &format!("{k}.revision")),
        revision.to_string()
    );
    assert_eq!(field(&listed, &format!("{k}.etcd-version")), "3.4.23");
    assert_eq!(field(&listed, &format!("{k}.application")), "etcd");
    assert_eq!(field(&listed, &format!("{k}.size")), field(&b, "size"));
    let head = objstore(&sb, &["head", &format!("{PATH}/{id}")]);
    assert!(head.contains(&field(&b, "sha256")), "{head}");
    // The verified backup's time on the facts exporter of the unit that took it, and of the
    // others once they hear of it in peer data: `EtcdBackupTooOld` sees it.
    let at = sh(&sb, &follower, &format!("date -d {id} +%s"));
    for u in [&follower, &leader] {
        sb.eventually(&format!("{u} exports the verified backup"), REJOIN, || {
            (last_verified_backup(&sb, u).as_deref() == Some(at.as_str())).then_some(())
        });
    }
    // The leader asked the store for a bucket, and for the keys in a secret (Juju 3).
    let asked = requirer_data(&sb);
    assert!(asked["bucket"].starts_with("relation-"), "{asked:?}");
    assert!(
        asked["requested-secrets"].contains("secret-key"),
        "{asked:?}"
    );

    // Delete → restore backup-id → the keys back everywhere, revisions not lower.
    sh(&sb, &follower, "etcdctl del --prefix bk-");
    let r = done(&sb, &leader, "restore", &[&format!("backup-id={id}")]);
    assert_eq!(field(&r, "revision"), revision.to_string(), "{r}");
    assert_eq!(
        field(&r, "revision-bump"),
        "0",
        "etcd 3.4.23 cannot bump: {r}"
    );
    assert!(
        field(&r, "checksum").contains("the backup's sha256 metadata"),
        "{r}"
    );
    sb.eventually("every member back with the backup's keys", REJOIN, || {
        units
            .iter()
            .all(|u| {
                (1..=3).all(|i| {
                    let got = key_rev(&sb, u, &format!("bk-{i}"));
                    got.is_some_and(|(v, rev)| v == format!("v{i}") && rev >= before[i - 1].1)
                })
            })
            .then_some(())
    });
    sb.wait_active(4);
    assert_eq!(
        sh(&sb, &leader, "ls /var/lib/etcd-charm/backups | wc -l"),
        "0",
        "the download is removed"
    );

    // Retention: two more backups keep the newest two of this application; a foreign object
    // under the same path is left alone.
    let dir = sb.home.join("objects");
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.db");
    std::fs::write(&junk, b"not a snapshot\n".repeat(100)).unwrap();
    let junk = junk.to_str().unwrap();
    let foreign = format!("{PATH}/2001-01-01T00:00:00Z");
    objstore(&sb, &["put", &foreign, junk]);
    let mut ids = vec![id.clone()];
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(1100)); // ids are seconds
        ids.push(field(
            &done(&sb, &follower, "create-backup", &[]),
            "backup-id",
        ));
    }
    let listed = done(&sb, &leader, "list-backups", &[]);
    assert_eq!(
        field(&listed, "count"),
        "3",
        "two of ours and the foreign one: {listed}"
    );
    let keys = objstore(&sb, &["list", PATH]);
    assert!(!keys.contains(&ids[0]), "the oldest is pruned: {keys}");
    assert!(
        keys.contains(&ids[1]) && keys.contains(&ids[2]) && keys.contains(&foreign),
        "{keys}"
    );

    // A foreign object and a damaged backup are refused; the cluster is untouched.
    let members_before = sh(&sb, &leader, "etcdctl member list");
    refused(
        &sb,
        &leader,
        "restore",
        &["backup-id=2001-01-01T00:00:00Z"],
        "is not a backup written by this charm",
    );
    let damaged = format!("{PATH}/2002-02-02T00:00:00Z");
    objstore(
        &sb,
        &[
            "put",
            &damaged,
            junk,
            "format=etcd-v3-snapshot",
            "revision=5",
            "application=etcd",
        ],
    );
    refused(
        &sb,
        &leader,
        "restore",
        &["backup-id=2002-02-02T00:00:00Z"],
        "nothing was changed",
    );
    refused(
        &sb,
        &leader,
        "restore",
        &["backup-id=2003-03-03T00:00:00Z"],
        "there is no backup",
    );
    assert_eq!(sh(&sb, &leader, "etcdctl member list"), members_before);
    assert_eq!(
        key_rev(&sb, &leader, "bk-1").map(|k| k.0).as_deref(),
        Some("v1")
    );

    // Wrong credentials, a missing bucket: the action fails naming the cause.
    let secret = s3_data(&sb)["secret-key"].clone();
    provider_sets(&sb, &format!("secret-key={}", "0".repeat(40)));
    let msg = refused(
        &sb,
        &follower,
        "create-backup",
        &[],
        "refused the credentials",
    );
    assert!(msg.contains("check access-key and secret-key"), "{msg}");
    provider_shares_again(&sb);
    provider_sets(&sb, "bucket=no-such-bucket");
    refused(
        &sb,
        &follower,
        "list-backups",
        &[],
        "bucket `no-such-bucket` does not exist",
    );
    provider_shares_again(&sb);
    // An endpoint where nothing listens: the action fails naming it, no backup is taken.
    let endpoint = s3_data(&sb)["endpoint"].clone();
    let closed = endpoint.replace(":3900", ":3999");
    provider_sets(&sb, &format!("endpoint={closed}"));
    let msg = refused(&sb, &follower, "create-backup", &[], "is unreachable");
    assert!(
        msg.contains(&closed) && msg.contains("no backup was taken"),
        "{msg}"
    );
    provider_shares_again(&sb);
    done(&sb, &follower, "list-backups", &[]);

    // Disaster recovery: a new application on a new machine restores the old one's backup.
    let (charm, resource) = built_charm();
    let resource = format!("etcd={}", resource.display());
    let charm = charm.to_str().unwrap();
    sb.ok(&["deploy", charm, "etcd-new", "--resource", &resource]);
    let rel = [
        "integrate",
        "etcd-new:s3-credentials",
        "s3-integrator:s3-credentials",
    ];
    sb.ok(&rel);
    sb.wait_active(5);
    let listed = done(&sb, "etcd-new/0", "list-backups", &[]);
    assert_eq!(field(&listed, "count"), "4", "{listed}");
    let last = ids.last().unwrap();
    done(
        &sb,
        "etcd-new/0",
        "restore",
        &[&format!("backup-id={last}")],
    );
    let got = key_rev(&sb, "etcd-new/0", "bk-2").map(|k| k.0);
    assert_eq!(got.as_deref(), Some("v2"), "the old application's keys");
    // Its retention leaves the old application's backups alone.
    sb.ok(&["config", "etcd-new", "backup_retention_count=1"]);
    done(&sb, "etcd-new/0", "create-backup", &[]);
    let listed = done(&sb, "etcd-new/0", "list-backups", &[]);
    assert_eq!(field(&listed, "count"), "5", "{listed}");

    // No credential in the log.
    let log = sb.ok(&["debug-log", "--replay", "--no-tail"]);
    assert!(!log.contains(&secret), "the secret key is in the debug log");
    sb.wait_active(5);
}

#[test]
fn backups_with_the_keys_in_a_juju_secret_and_a_full_disk() {
    let sb = Sandbox::new("backups_secret");
    deploy_with_store(&sb, 1, &["secrets=true"], &[]);
    let unit = "etcd/0";
    // The provider shares the keys in a secret (the requirer asked with requested-secrets),
    // none in its databag.
    let shared = s3_data(&sb);
    let extra = shared.get("secret-extra").cloned().unwrap_or_default();
    assert!(extra.starts_with("secret:"), "{shared:?}");
    for key in ["access-key", "secret-key"] {
        assert!(shared.get(key).is_none_or(|v| v.is_empty()), "{shared:?}");
    }
    let secret = sh(
        &sb,
        "s3-integrator/0",
        "sed -n 's/^ *Secret key: *//p' /var/lib/s3-integrator/key",
    );
    assert!(!secret.is_empty());
    sh(&sb, unit, "etcdctl put kept yes");
    let members = sh(&sb, unit, "etcdctl member list");

    // A full disk where the snapshot goes: refused before it starts (too little room), or
    // failing once it starts (no inode left: ENOSPC); nothing stored, left behind or changed.
    let mount = |opts: &str| {
        let cmd = format!("umount {WORK_DIR} 2>/dev/null; mkdir -p {WORK_DIR} && mount -t tmpfs -o {opts},mode=0700 full {WORK_DIR}");
        sh(&sb, unit, &cmd);
    };
    mount("size=16m");
    let msg = refused(
        &sb,
        unit,
        "create-backup",
        &[],
        "free and the snapshot needs about",
    );
    assert!(msg.contains("nothing was saved"), "{msg}");
    mount("size=256m,nr_inodes=1");
    let msg = refused(
        &sb,
        unit,
        "create-backup",
        &[],
        "filled up while the snapshot",
    );
    assert!(
        msg.contains("no space left on device") && msg.contains("no backup was taken"),
        "{msg}"
    );
    assert_eq!(sh(&sb, unit, &format!("ls -A {WORK_DIR} | wc -l")), "0");
    assert_eq!(field(&done(&sb, unit, "list-backups", &[]), "count"), "0");
    assert_eq!(sh(&sb, unit, "etcdctl member list"), members);
    assert_eq!(sh(&sb, unit, "etcdctl get kept --print-value-only"), "yes");
    sh(&sb, unit, &format!("umount {WORK_DIR}"));

    // Room again: a backup through the secret's keys, listed.
    let b = done(&sb, unit, "create-backup", &[]);
    let id = field(&b, "backup-id");
    assert!(field(&b, "verified").starts_with("yes"), "{b}");
    let listed = done(&sb, unit, "list-backups", &[]);
    assert_eq!(field(&listed, "count"), "1", "{listed}");
    let k = format!("backups.{}", id.to_lowercase().replace([':'], "-"));
    assert_eq!(field(&listed, &format!("{k}.id")), id, "{listed}");
    assert_eq!(field(&listed, &format!("{k}.verified")), "yes", "{listed}");
    assert_eq!(sh(&sb, unit, &format!("ls -A {WORK_DIR} | wc -l")), "0");

    let log = sb.ok(&["debug-log", "--replay", "--no-tail"]);
    assert!(!log.contains(&secret), "the secret key is in the debug log");
}

#[test]
fn a_scheduled_backup_under_juju_29_enters_hook_context_with_juju_run() {
    let sb = Sandbox::with_agent_version("backups_juju29", Some("2.9.44"));
    deploy_with_store(&sb, 1, &[], &["--config", "backup_schedule=weekly"]);
    let unit = "etcd/0";
    let service = sh(&sb, unit, "cat /etc/systemd/system/etcd-backup.service");
    let exec =
        "ExecStart=/usr/bin/juju-run etcd/0 \"JUJU_DISPATCH_PATH=backup/scheduled ./dispatch\"";
    assert!(service.contains(exec), "{service}");
    assert_eq!(
        sh(&sb, unit, "test -e /usr/bin/juju-exec || echo none"),
        "none"
    );
    // No secrets in 2.9: the keys are asked for in the databag.
    assert!(!requirer_data(&sb).contains_key("requested-secrets"));
    // The timer fires a minute after it starts: the period's backup, from the only member.
    sb.eventually("the scheduled backup", Duration::from_secs(240), || {
        let keys = objstore(&sb, &["list", PATH]);
        let id = keys
            .lines()
            .find_map(|l| l.split(' ').next()?.strip_prefix(&format!("{PATH}/")))?;
        Some(id.to_string())
    });
    let keys = objstore(&sb, &["list", PATH]);
    let key = keys.split(' ').next().unwrap();
    let head = objstore(&sb, &["head", key]);
    let log = sb.ok(&["debug-log", "--replay", "--no-tail"]);
    let runs: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("scheduled backup"))
        .collect();
    assert!(
        head.contains(r#""unit": "etcd/0""#) && head.contains(r#""verified": "yes""#),
        "{head}\n{runs:#?}"
    );
}

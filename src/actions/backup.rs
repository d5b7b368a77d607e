/*!
Backups to object storage (issue 14): `create-backup` and `list-backups`, and the download
`restore backup-id=…` uses. What to name, keep and prune is decided in
[`crate::core::backup`] (which documents the object layout); this module talks to the store.

The store comes from the `s3-credentials` relation: the provider's application databag, with
the keys in it (plain form) or in the Juju secret its `secret-extra` names (secret form). Credentials stay in memory: never in an argv (the S3 client is in-process), a log, a
status or a result; the client's errors name the endpoint and bucket, not the keys.
*/

use super::{backup_verify, common, machine, snapshot, Action, Results, Stop};
use crate::core::backup::{self as plan, BackupMeta, Owner, Stored};
use crate::core::observed::peer_keys;
use crate::juju::context::JujuContext;
use crate::juju::context::PEER_ENDPOINT;
use crate::juju::{Juju, Settings};
use crate::machine::host::Host;
use crate::machine::metrics;
use crate::paths;
use objstore::{interface, Store};
use std::path::{Path, PathBuf};

use plan::RELATION as ENDPOINT;

/// Where snapshots wait for their upload, and downloads for their restore (0700).
pub fn work_dir() -> PathBuf {
    Path::new(paths::STATE_DIR).join("backups")
}

/// A connected store: the client, its runtime, the key prefix.
pub struct S3 {
    store: Store,
    rt: tokio::runtime::Runtime,
    /// The relation's `path` (key prefix), slashes trimmed.
    pub path: String,
}

impl S3 {
    /// Runs one store call to completion.
    fn run<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.rt.block_on(f)
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        self.store.bucket()
    }
}

/// Fails, saying what was not done.
fn failed<T>(what: &str, e: impl std::fmt::Display) -> Result<T, Stop> {
    super::fail(format!("{e}; {what}"))
}

/// The store from the `s3-credentials` relation.
pub fn connect(a: &Action) -> Result<S3, Stop> {
    let none = || {
        super::fail(format!(
            "no object store: relate an s3 provider first, e.g. `juju integrate {}:{ENDPOINT} \
             s3-integrator`; nothing was done",
            a.ctx.app_name()
        ))
    };
    let Some(rid) = a.juju.relation_ids(ENDPOINT)?.into_iter().next() else {
        return none();
    };
    let Some(app) = a.juju.relation_list(&rid)?.first().map(|u| {
        let app = u.split('/').next().unwrap_or(u);
        app.to_string()
    }) else {
        return none();
    };
    let mut data = a.juju.relation_get_app(&rid, &app)?;
    // The secret form (s3 interface v1): the keys are in the Juju secret `secret-extra` names.
    if let Some(uri) = data.get("secret-extra").filter(|u| !u.is_empty()).cloned() {
        let content = a.juju.secret_get(&uri, true).or_else(|e| {
            super::fail(format!(
                "cannot read the s3 credentials secret the provider shared ({e}): check that it \
                 is granted to this application; nothing was done"
            ))
        })?;
        for key in ["access-key", "secret-key"] {
            if let Some(v) = content.get(key) {
                data.insert(key.to_string(), v.clone());
            }
        }
    }
    let info = interface::from_databag(&data).or_else(|e| failed("nothing was done", e))?;
    let store = Store::new(&info.config).or_else(|e| failed("nothing was done", e))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .or_else(|e| failed("nothing was done", format!("no runtime: {e}")))?;
    Ok(S3 {
        store,
        rt,
        path: info.path,
    })
}

/// This application, as the backups' metadata names it.
fn owner(a: &Action) -> Owner {
    Owner {
        application: a.ctx.app_name().to_string(),
        model_uuid: std::env::var("JUJU_MODEL_UUID").unwrap_or_default(),
    }
}

/// Every backup under the relation's path, with its metadata (one `HEAD` each), oldest first.
pub fn list(s3: &S3) -> Result<Vec<Stored>, objstore::Error> {
    let listed = s3.run(s3.store.list(&plan::prefix(&s3.path)))?;
    let mut out = Vec::new();
    for obj in listed {
        let Some(id) = plan::id_of_key(&s3.path, &obj.key) else {
            continue;
        };
        let head = s3.run(s3.store.head(&obj.key))?;
        let meta = head.and_then(|h| BackupMeta::from_map(&h.metadata));
        let taken = plan::parse_backup_id(&id).unwrap_or(0);
        out.push(Stored {
            id,
            taken,
            size: obj.size,
            meta,
        });
    }
    out.sort_by_key(|s| s.taken);
    Ok(out)
}

/// Removes this application's backups beyond the retention options; the ids removed.
fn prune(a: &Action, s3: &S3, now: u64) -> Result<Vec<String>, objstore::Error> {
    let keep = a.config().backup_retention;
    if keep == plan::Retention::default() {
        return Ok(vec![]);
    }
    let stored = list(s3)?;
    let gone = plan::to_prune(&stored, &owner(a), now, keep);
    for id in &gone {
        a.progress(&format!("retention: removing backup {id}"));
        s3.run(s3.store.delete(&plan::object_key(&s3.path, id)))?;
    }
    Ok(gone)
}

/// Announces a verified backup taken at `now` in this unit's peer data (the status of every unit
/// warns when the newest is older than twice the schedule, and each exports the newest it hears
/// of) and records it for this unit's facts exporter; a failure is only logged.
fn announce_verified(a: &Action, now: u64) {
    let recorded = metrics::record_verified_backup(&Host, now);
    if let Err(e) = recorded.and_then(|_| metrics::refresh(&Host, false)) {
        a.progress(&format!(
            "cannot record the verified backup for the facts exporter: {e}"
        ));
    }
    let Some(rel) = peer_relation(a) else { return };
    let settings = Settings::from([(peer_keys::BACKUP_VERIFIED.to_string(), now.to_string())]);
    if let Err(e) = a.juju.relation_set(&rel, &settings) {
        a.progress(&format!(
            "cannot announce the verified backup in peer data: {e}"
        ));
    }
}

/// `create-backup`: a snapshot of this unit's member, uploaded and checked, then retention.
pub fn create(a: &Action, r: &mut Results) -> Result<(), Stop> {
    let s3 = connect(a)?;
    take(a, r, &s3)
}

/// Takes one backup to `s3` and prunes; the results of `create-backup`.
fn take(a: &Action, r: &mut Results, s3: &S3) -> Result<(), Stop> {
    let now = common::now_secs();
    let id = plan::backup_id(now);
    let key = plan::object_key(&s3.path, &id);
    let bucket = s3.bucket().to_string();
    s3.run(s3.store.check())
        .or_else(|e| failed("no backup was taken", e))?;
    if s3.run(s3.store.head(&key)).ok().flatten().is_some() {
        return super::fail(format!(
            "backup {id} already exists in bucket `{bucket}` (another unit took one this \
             second): nothing was done; run create-backup again"
        ));
    }
    let dir = work_dir();
    snapshot::ensure_dir(&dir)?;
    let local = common::local_endpoint(a);
    let saved = snapshot::save(a, &dir, &[local], "backup").map_err(|e| disk_full(e, &dir))?;
    let verify = backup_verify::test_restore(a, &saved.path, saved.size, saved.file.revision);
    let verified = match &verify {
        Ok(rev) => format!("yes: a test restore served revision {rev}"),
        Err(e) => format!("no: {e}"),
    };
    let meta = BackupMeta {
        application: owner(a).application,
        model_uuid: owner(a).model_uuid,
        unit: a.ctx.unit_name.clone(),
        member: saved.member.clone(),
        etcd_version: saved.status.version.clone(),
        revision: saved.file.revision.max(0) as u64,
        total_keys: saved.file.total_keys.max(0) as u64,
        sha256: saved.sha256.clone(),
        verified: verify.is_ok(),
    };
    let pairs = meta.to_pairs();
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    a.progress(&format!(
        "uploading {} ({}) to bucket `{bucket}` as {key}",
        saved.name,
        common::human_bytes(saved.size)
    ));
    let sent = s3.run(s3.store.put_file(&key, &saved.path, &pairs));
    let _ = std::fs::remove_file(&saved.path);
    let sent = sent.or_else(|e| failed("no backup was stored", e))?;
    if sent.sha256 != saved.sha256 {
        let _ = s3.run(s3.store.delete(&key));
        return super::fail(
            "the snapshot changed during its upload: no backup was stored; run create-backup again",
        );
    }
    if meta.verified {
        announce_verified(a, now);
    }
    let pruned = match prune(a, s3, now) {
        Ok(ids) => common::list_or_none(&ids),
        Err(e) => format!("retention failed: {e}"),
    };
    r.set("backup-id", &id);
    r.set("key", &key);
    r.set("bucket", &bucket);
    r.set("size", sent.size);
    r.set("sha256", &sent.sha256);
    r.set("etcd-version", &meta.etcd_version);
    r.set("revision", meta.revision);
    r.set("member", &meta.member);
    r.set("parts", sent.parts);
    r.set("pruned", &pruned);
    r.set("verified", &verified);
    r.set(
        "output",
        format!(
            "backup {id} of {} at revision {} stored in bucket `{bucket}` as {key} ({}, sha256 \
             {} checked after upload); verified: {verified}; pruned: {pruned}. Restore it with \
             `juju run {}/leader restore backup-id={id}`",
            meta.member,
            meta.revision,
            common::human_bytes(sent.size),
            sent.sha256,
            a.ctx.app_name()
        ),
    );
    Ok(())
}

/// A snapshot that failed because its disk filled up (`ENOSPC`, os error 28: no byte or no
/// inode left), said as such; any other failure as it is. The snapshot's part file is already
/// removed then, and the cluster was only read.
fn disk_full(stop: Stop, dir: &Path) -> Stop {
    match stop {
        Stop::Fail(m) if m.contains("os error 28") || m.contains("No space left on device") => {
            Stop::Fail(format!(
                "the disk of {} filled up while the snapshot was written (no space left on \
                 device): no backup was taken, the partial snapshot was removed and the cluster \
                 is untouched. Free some space there (`df -h {0}`, `df -i {0}`) and run \
                 create-backup again",
                dir.display()
            ))
        }
        other => other,
    }
}

/// The scheduled backup (the timer's `backup/scheduled`, in hook context): taken here when a
/// schedule is set, [`plan::turn`] says so from the members' health ([`plan::taker`]), the
/// periods the peers recorded and this application's backups in the store, and says so again
/// from a fresh look right before the snapshot. What happened, for the log.
pub fn scheduled(a: &Action) -> Result<String, Stop> {
    let Some(period) = a.config().backup_period else {
        return Ok("scheduled backups are off (backup_schedule is empty)".into());
    };
    let me = a.ctx.unit_name.as_str();
    let look = |latest: Option<u64>| -> Result<plan::Turn, Stop> {
        let (taker, healthy) = chosen(a)?;
        let Some(taker) = taker else {
            return super::fail("no scheduled backup: no member is healthy. Check `health`");
        };
        let claims = claims(a);
        let now = common::now_secs();
        let healthy: Vec<&str> = healthy.iter().map(String::as_str).collect();
        Ok(plan::turn(
            now,
            period,
            me,
            Some(&taker),
            &claims,
            &healthy,
            latest,
        ))
    };
    if let plan::Turn::Skip(why) = look(None)? {
        return Ok(why);
    }
    let s3 = connect(a)?;
    let stored = list(&s3).or_else(|e| failed("no scheduled backup was taken", e))?;
    let ours = owner(a);
    let latest = stored
        .iter()
        .filter(|s| s.ours(&ours))
        .map(|s| s.taken)
        .max();
    let start = match look(latest)? {
        plan::Turn::Take(start) => start,
        plan::Turn::Skip(why) => return Ok(why),
    };
    claim(a, start);
    let mut r = Results::default();
    take(a, &mut r, &s3)?;
    Ok(r.get("output").unwrap_or_default().to_string())
}

/// The unit [`plan::taker`] names from the members' health as this unit sees it now (`None`
/// when no member is healthy), and the units whose members are healthy.
fn chosen(a: &Action) -> Result<(Option<String>, Vec<String>), Stop> {
    let endpoints = common::endpoints(a);
    let members = a.etcd.member_list(&endpoints).or_else(|e| {
        super::fail(format!(
            "no scheduled backup: cannot list the members ({e})"
        ))
    })?;
    let units = common::units(a);
    let candidates: Vec<plan::Candidate> = members
        .iter()
        .filter_map(|m| {
            let unit = common::unit_of(&units, m)?.unit.clone();
            let status = m.client_urls.first().and_then(|ep| a.etcd.status(ep).ok());
            let healthy = status.as_ref().is_some_and(common::healthy) && m.started();
            let raft_leader = status.is_some_and(|s| s.leader == s.member_id);
            Some(plan::Candidate {
                unit,
                healthy: healthy && !m.is_learner,
                raft_leader,
            })
        })
        .collect();
    let healthy = candidates.iter().filter(|c| c.healthy);
    let healthy = healthy.map(|c| c.unit.clone()).collect();
    Ok((plan::taker(&candidates).map(str::to_string), healthy))
}

/// The periods the peers recorded as theirs ([`peer_keys::BACKUP_PERIOD`]).
fn claims(a: &Action) -> Vec<(String, u64)> {
    let Some(rel) = peer_relation(a) else {
        return Vec::new();
    };
    let units = a.juju.relation_list(&rel).unwrap_or_default();
    let claim = |unit: String| {
        let data = a.juju.relation_get(&rel, &unit).ok()?;
        let start = data.get(peer_keys::BACKUP_PERIOD)?.trim().parse().ok()?;
        Some((unit, start))
    };
    units.into_iter().filter_map(claim).collect()
}

/// Records in this unit's peer data that it takes the period starting at `start` (a failure is
/// only logged: the store's listing still keeps a period to one backup).
fn claim(a: &Action, start: u64) {
    let Some(rel) = peer_relation(a) else { return };
    let settings = Settings::from([(peer_keys::BACKUP_PERIOD.to_string(), start.to_string())]);
    if let Err(e) = a.juju.relation_set(&rel, &settings) {
        a.progress(&format!("cannot record the period taken in peer data: {e}"));
    }
}

/// The leader's request to the object store provider ([`plan::request`]), in the hooks
/// [`plan::requests_in`] names: the same values again change nothing on the provider's side.
/// A failure is logged, never the hook's.
pub fn request_store(ctx: &JujuContext, hook: &str, juju: &dyn Juju) {
    if !plan::requests_in(hook) || !juju.is_leader().unwrap_or(false) {
        return;
    }
    let secrets = crate::reconcile::observe::has_secrets(ctx);
    for id in juju.relation_ids(ENDPOINT).unwrap_or_default() {
        if let Err(e) = juju.relation_set_app(&id, &plan::request(&id, secrets)) {
            let msg = format!("cannot ask the object store for a bucket on {id}: {e}");
            juju.log(crate::juju::Level::Warning, &msg);
        }
    }
}

/// The peer relation's id.
fn peer_relation(a: &Action) -> Option<String> {
    let rel = a.juju.relation_ids(PEER_ENDPOINT).ok()?;
    rel.into_iter().next()
}

/// `list-backups`: every backup under the relation's path, newest first.
pub fn list_action(a: &Action, r: &mut Results) -> Result<(), Stop> {
    let s3 = connect(a)?;
    let mut stored = list(&s3).or_else(|e| failed("nothing was listed", e))?;
    stored.reverse();
    let mut table = format!(
        "{:<21} | {:>10} | {:<8} | {:>10} | {:<20} | {:<12} | verified",
        "backup-id", "size", "etcd", "revision", "member", "application"
    );
    for s in &stored {
        let k = format!("backups.{}", common::key_part(&s.id));
        let m = s.meta.clone().unwrap_or_default();
        let verified = match &s.meta {
            Some(m) if m.verified => "yes",
            Some(_) => "no",
            None => "no (not written by this charm)",
        };
        r.set(format!("{k}.id"), &s.id);
        r.set(format!("{k}.time"), &s.id);
        r.set(format!("{k}.size"), s.size);
        r.set(format!("{k}.etcd-version"), &m.etcd_version);
        r.set(format!("{k}.revision"), m.revision);
        r.set(format!("{k}.member"), &m.member);
        r.set(format!("{k}.application"), &m.application);
        r.set(format!("{k}.verified"), verified);
        table.push_str(&format!(
            "\n{:<21} | {:>10} | {:<8} | {:>10} | {:<20} | {:<12} | {verified}",
            s.id, s.size, m.etcd_version, m.revision, m.member, m.application
        ));
    }
    let last = match plan::last_verified(&stored, common::now_secs()) {
        Some((s, age)) => {
            r.set("last-verified", &s.id);
            r.set("last-verified-age", plan::human_age(age));
            format!(
                "last verified backup: {} ({} ago)",
                s.id,
                plan::human_age(age)
            )
        }
        None => "no verified backup".to_string(),
    };
    r.set("count", stored.len());
    r.set("output", format!("{table}\n{last}"));
    Ok(())
}

/// Downloads backup `id` to `dest` (its sha256 checked on the way: a corrupt or foreign object
/// never lands there); its metadata. Nothing in the cluster changes on a failure.
pub fn fetch(a: &Action, id: &str, dest: &Path) -> Result<BackupMeta, Stop> {
    let unchanged = "nothing was changed";
    if plan::parse_backup_id(id).is_none() {
        return super::fail(format!(
            "backup-id {id:?} is not a backup id (like 2026-12-01T17:40:21Z): run list-backups; \
             {unchanged}"
        ));
    }
    let s3 = connect(a)?;
    let key = plan::object_key(&s3.path, id);
    let bucket = s3.bucket().to_string();
    let head = s3
        .run(s3.store.head(&key))
        .or_else(|e| failed(unchanged, e))?;
    let Some(head) = head else {
        return super::fail(format!(
            "there is no backup {id} in bucket `{bucket}` (key {key}): run list-backups; \
             {unchanged}"
        ));
    };
    let Some(meta) = BackupMeta::from_map(&head.metadata) else {
        return super::fail(format!(
            "{key} in bucket `{bucket}` is not a backup written by this charm (no {} metadata): \
             {unchanged}",
            plan::FORMAT
        ));
    };
    if let Some(free) = machine::free_bytes(dest.parent().unwrap_or(dest)) {
        if free < head.size + 64 * 1024 * 1024 {
            return super::fail(format!(
                "{} has {} free and backup {id} is {}: free some space; {unchanged}",
                dest.parent().unwrap_or(dest).display(),
                common::human_bytes(free),
                common::human_bytes(head.size)
            ));
        }
    }
    a.progress(&format!(
        "downloading backup {id} ({}) from bucket `{bucket}`",
        common::human_bytes(head.size)
    ));
    s3.run(s3.store.get_file(&key, dest))
        .or_else(|e| failed(unchanged, e))?;
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::params::Params;
    use crate::fakes::{FakeEtcd, FakeJuju};
    use crate::juju::context::JujuContext;
    use serde_json::json;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `connect` on a fake with this provider data: the store, or the failure.
    fn connect_with(juju: &FakeJuju) -> Result<S3, String> {
        let ctx = JujuContext {
            unit_name: "etcd/0".into(),
            ..JujuContext::default()
        };
        let etcd = FakeEtcd::healthy(1);
        let a = Action::new(&ctx, juju, &etcd, Params::default());
        connect(&a).map_err(|e| match e {
            Stop::Fail(m) => m,
            Stop::Juju(e) => e.to_string(),
        })
    }

    #[test]
    fn the_plain_and_the_secret_form() {
        let place = [
            ("bucket", "b"),
            ("endpoint", "http://10.0.0.5:3900"),
            ("path", "/etcd/"),
        ];
        let mut juju = FakeJuju::new("etcd/0", json!({}));
        let mut plain = settings(&place);
        plain.extend(settings(&[("access-key", "GK1"), ("secret-key", "s3cr3t")]));
        juju.s3 = Some(plain);
        let s3 = connect_with(&juju).unwrap();
        assert_eq!((s3.bucket(), s3.path.as_str()), ("b", "etcd"));

        let mut secret = settings(&place);
        secret.insert("secret-extra".into(), "secret://model/s3creds".into());
        juju.s3 = Some(secret);
        let e = connect_with(&juju).err().unwrap();
        assert!(
            e.starts_with("cannot read the s3 credentials secret"),
            "{e}"
        );
        let keys = settings(&[("access-key", "GK1"), ("secret-key", "s3cr3t")]);
        juju.secrets.borrow_mut().insert("s3creds".into(), keys);
        assert_eq!(connect_with(&juju).unwrap().bucket(), "b");

        juju.s3 = Some(settings(&place));
        let e = connect_with(&juju).err().unwrap();
        assert!(e.contains("has no access-key, secret-key yet"), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn the_leader_asks_the_store_for_a_bucket_in_its_application_data() {
        let mut juju = FakeJuju::new("etcd/0", json!({}));
        juju.s3 = Some(Settings::new());
        let ctx = JujuContext {
            unit_name: "etcd/0".into(),
            relation: Some(ENDPOINT.into()),
            ..JujuContext::default()
        };
        request_store(&ctx, "s3-credentials-relation-created", &juju);
        let sets = juju.relation_sets.borrow().clone();
        assert_eq!(
            sets,
            [(
                "s3-credentials:9 --app".into(),
                plan::request("s3-credentials:9", true)
            )]
        );
        // Not in other hooks, nor on a follower.
        request_store(&ctx, "update-status", &juju);
        juju.leader = false;
        request_store(&ctx, "leader-elected", &juju);
        assert_eq!(juju.relation_sets.borrow().len(), 1);
    }

    #[test]
    fn without_a_relation_the_actions_say_what_to_relate() {
        let etcd = FakeEtcd::healthy(3);
        for action in ["create-backup", "list-backups"] {
            let juju = FakeJuju::new("etcd/0", json!({}));
            juju.run(action, &etcd);
            juju.failure_starting(
                "no object store: relate an s3 provider first, e.g. `juju integrate \
                 etcd:s3-credentials s3-integrator`",
            );
        }
        assert!(etcd.calls().iter().all(|c| !c.starts_with("snapshot")));
    }

    #[test]
    fn a_full_disk_is_named_as_such() {
        let dir = Path::new("/var/lib/etcd-charm/backups");
        let enospc = Stop::Fail(
            "the snapshot from etcd1 failed: No space left on device (os error 28); nothing \
             was saved"
                .into(),
        );
        let Stop::Fail(m) = disk_full(enospc, dir) else {
            panic!("not a failure")
        };
        assert!(
            m.starts_with("the disk of /var/lib/etcd-charm/backups filled up"),
            "{m}"
        );
        assert!(
            m.contains("no backup was taken") && m.contains("df -i"),
            "{m}"
        );
        let other = Stop::Fail("no voting member answered".into());
        let Stop::Fail(m) = disk_full(other, dir) else {
            panic!("not a failure")
        };
        assert_eq!(m, "no voting member answered");
    }

    #[test]
    fn restore_refuses_a_bad_backup_id_before_anything() {
        let etcd = FakeEtcd::healthy(3);
        let juju = FakeJuju::new("etcd/0", json!({"backup-id": "latest"}));
        juju.run("restore", &etcd);
        juju.failure_starting("backup-id \"latest\" is not a backup id");
        assert!(etcd.calls().is_empty());
    }
}

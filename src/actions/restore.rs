/*!
`restore` (leader): restores the whole cluster from a snapshot, `path=<file on this unit>` or
`resource=true` (the attached `snapshot` resource).

Everything that can be checked is checked before anything changes: the file is an etcd v3
snapshot with its integrity hash, from an etcd this one can read, its sha256 matches (the
`sha256` param, else the `<file>.sha256` written by the `snapshot` action, when present), the
cluster is settled (every member votes, no unit joining or restarting) and keeps a quorum, and
`etcdctl snapshot restore` succeeds into a new data dir beside the current one.

Then: the other members are removed from the cluster (unreachable ones first, so a quorum is
kept at each step); their etcd stops by itself. This unit's etcd is stopped, its data dir moved
aside (`data.before-restore-<time>`, deleted at the end with `keep-previous=false`) and the
restored one put in its place; etcd starts as a one-member cluster with the snapshot's data,
and the leader data announces it. The other units then see their members removed, move their
data aside and are admitted again one at a time (the reconcile path's "removed member rejoins").
If the restored member does not start, the previous data dir is put back and started. All of
this happens beside the real data dir: on the storage volume when the data dir is there.

With `backup-id=<id>` the snapshot is a backup in the object store of `s3-credentials`
(any application's: disaster recovery), downloaded with its sha256 checked and removed at the
end. Where the installed etcd can (`--bump-revision`: 3.4.27+, 3.5.10+), revisions are bumped
past the cluster's current one and older ones marked compacted, so watchers never see them go
back.

Result keys: `path`, `sha256`, `checksum`, `revision`, `revision-bump`, `total-keys`,
`member-id`, `removed-members`, `previous-data`, `output`.
*/

use super::{backup, common, machine, snapshot, Action, Results, Stop};
use crate::core::backup as core_backup;
use crate::core::observed::keys;
use crate::core::render;
use crate::etcd::{retry_not_yet, Member, MemberStatus};
use crate::machine::host::{self, Host};
use crate::machine::{state, Machine};
use crate::paths;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A backup downloaded for the restore: removed when the action ends, whatever happens.
struct Downloaded(PathBuf);

impl Drop for Downloaded {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Backup `id` from the object store, downloaded (its sha256 checked) into the charm's work
/// dir; the file and its sha256 as the object's metadata gives it.
fn download(a: &Action, id: &str) -> Result<(Downloaded, String), Stop> {
    if a.params.text("path").is_some() || a.params.flag("resource") {
        return super::fail(
            "give one of path=<file>, resource=true or backup-id=<id>, not several; nothing was \
             changed",
        );
    }
    let dir = backup::work_dir();
    snapshot::ensure_dir(&dir)?;
    let file = Downloaded(dir.join(format!("restore-{}.db", common::key_part(id))));
    let meta = backup::fetch(a, id, &file.0)?;
    Ok((file, meta.sha256))
}

/// The snapshot file, from the params.
fn source(a: &Action) -> Result<PathBuf, Stop> {
    match (a.params.text("path"), a.params.flag("resource")) {
        (Some(_), true) => {
            super::fail("give either path=<file> or resource=true, not both; nothing was changed")
        }
        (None, false) => super::fail(
            "say which snapshot to restore: path=<snapshot file on this unit> or resource=true \
             (the attached `snapshot` resource); nothing was changed",
        ),
        (Some(p), false) if !Path::new(p).is_absolute() => super::fail(format!(
            "path {p:?} must be absolute (e.g. a path returned by the snapshot action); nothing \
             was changed"
        )),
        (Some(p), false) => Ok(PathBuf::from(p)),
        (None, true) => match a.juju.resource_get("snapshot") {
            Ok(p) if std::fs::metadata(&p).is_ok_and(|m| m.len() == 0) => super::fail(
                "the attached `snapshot` resource is empty (a placeholder): attach a snapshot \
                 with `juju attach-resource <application> snapshot=<file>`, or give \
                 path=<file on this unit>; nothing was changed",
            ),
            Ok(p) if !p.is_empty() => Ok(PathBuf::from(p)),
            Ok(_) | Err(_) => super::fail(
                "no `snapshot` resource is attached: attach one with `juju attach-resource \
                 <application> snapshot=<file>`, or give path=<file on this unit>; nothing was \
                 changed",
            ),
        },
    }
}

/// The sha256 the file must have, and where that came from.
fn expected_sha(a: &Action, file: &Path) -> Result<Option<(String, String)>, Stop> {
    if let Some(s) = a.params.text("sha256") {
        let s = s.to_lowercase();
        if s.len() != 64 || !s.chars().all(|c| c.is_ascii_hexdigit()) {
            return super::fail(format!(
                "sha256 {s:?} is not a sha256 (64 hex digits); nothing was changed"
            ));
        }
        return Ok(Some((s, "the sha256 parameter".into())));
    }
    let sidecar = PathBuf::from(format!("{}.sha256", file.display()));
    let listed = host::read(&sidecar.to_string_lossy())
        .and_then(|t| t.split_whitespace().next().map(str::to_lowercase));
    Ok(listed.map(|s| (s, sidecar.display().to_string())))
}

/// The order to remove the other members in: unreachable or unhealthy ones first, so a quorum
/// is kept at every step.
fn removal_order<'m>(others: &[&'m Member], healthy: impl Fn(&Member) -> bool) -> Vec<&'m Member> {
    let mut v: Vec<(bool, &Member)> = others.iter().map(|m| (healthy(m), *m)).collect();
    v.sort_by_key(|(h, m)| (*h, m.name.clone()));
    v.into_iter().map(|(_, m)| m).collect()
}

/// Fails the action, saying that nothing was changed.
fn unchanged<T>(e: String) -> Result<T, Stop> {
    super::fail(format!("{e}; nothing was changed"))
}

/// The snapshot file, checked.
struct Snapshot {
    file: PathBuf,
    /// The path, for messages.
    shown: String,
    info: machine::SnapshotInfo,
    /// How its integrity was checked, for the result.
    checksum: String,
    status: machine::SnapshotStatus,
    /// The etcd version that restores it.
    installed: String,
}

/// 1. The file: an etcd v3 snapshot with its integrity hash, from an etcd this one can read,
///    with the sha256 it should have, readable by `etcdctl snapshot status`.
fn check_file(
    a: &Action,
    r: &mut Results,
    local: &str,
    backup: Option<&(Downloaded, String)>,
) -> Result<Snapshot, Stop> {
    let (file, shown) = match (backup, a.params.text("backup-id")) {
        (Some((d, _)), Some(id)) => (d.0.clone(), format!("backup {id}")),
        _ => {
            let file = source(a)?;
            let shown = file.display().to_string();
            (file, shown)
        }
    };
    r.set("path", file.display());
    let info = machine::inspect_snapshot(&file).or_else(unchanged)?;
    if !info.has_hash {
        return unchanged(format!(
            "{shown} has no integrity hash (a copy of a member's member/snap/db?): restore a \
             snapshot saved by the snapshot action or `etcdctl snapshot save`"
        ));
    }
    let installed = state::installed_version(&Host)
        .or_else(|| a.etcd.status(local).ok().map(|s| s.version))
        .unwrap_or_default();
    machine::check_compatible(&info, &installed).or_else(unchanged)?;
    let sha =
        machine::sha256(&file).or_else(|e| unchanged(format!("cannot checksum {shown}: {e}")))?;
    r.set("sha256", &sha);
    let expected = match backup {
        Some((_, sha)) => Some((sha.clone(), "the backup's sha256 metadata".to_string())),
        None => expected_sha(a, &file)?,
    };
    let checksum = match expected {
        Some((want, from)) if want != sha => {
            return unchanged(format!(
                "{shown} has sha256 {sha} but {from} says {want}: the file is not the snapshot \
                 you meant, or it was damaged in transit; copy it again"
            ))
        }
        Some((_, from)) => format!("sha256 matches {from}; integrity hash checked by etcd"),
        None => "integrity hash checked by etcd (no sha256 given)".to_string(),
    };
    let status = machine::snapshot_status(&file).or_else(|e| {
        unchanged(format!(
            "etcd cannot read {shown} ({e}): the file is damaged or incomplete; copy it again"
        ))
    })?;
    Ok(Snapshot {
        file,
        shown,
        info,
        checksum,
        status,
        installed,
    })
}

/// The cluster, checked.
struct Cluster {
    /// This unit's member.
    me: MemberStatus,
    members: Vec<Member>,
    endpoints: Vec<String>,
    /// This unit's peer URL.
    peer_url: String,
}

/// 2. The cluster: this member healthy, every member voting, no unit joining or restarting,
///    a quorum healthy.
fn check_cluster(a: &Action, local: &str) -> Result<Cluster, Stop> {
    let me = match a.etcd.status(local) {
        Ok(s) if common::healthy(&s) => s,
        Ok(_) => {
            return unchanged(
                "this unit's member is not a healthy voting member (no Raft leader, or a \
                 learner): if the cluster lost its majority, run rebuild-cluster first"
                    .into(),
            )
        }
        Err(e) => {
            return unchanged(format!(
                "etcd on this unit does not answer ({e}): check `juju status`; if the cluster \
                 lost its majority, run rebuild-cluster first"
            ))
        }
    };
    let ld = a.leader_data();
    for (key, what) in [
        (keys::JOINING_UNIT, "is joining"),
        (keys::RESTART_GRANTED, "is restarting"),
    ] {
        if let Some(unit) = ld.get(key).filter(|u| !u.is_empty()) {
            return unchanged(format!(
                "{unit} {what}: wait until `juju status` shows every unit active, then run \
                 restore again"
            ));
        }
    }
    let endpoints = common::endpoints(a);
    let members = a
        .etcd
        .member_list(&endpoints)
        .or_else(|e| unchanged(format!("cannot list members: {e}")))?;
    if let Some(m) = members.iter().find(|m| m.is_learner || !m.started()) {
        return unchanged(format!(
            "member {} is still joining: wait until every unit is active, then run restore again",
            common::label(m)
        ));
    }
    let others = members.iter().filter(|m| m.id != me.member_id);
    let healthy = 1 + others.filter(|m| answers(a, m)).count();
    if healthy < common::quorum(members.len()) {
        return unchanged(format!(
            "only {healthy} of {} members are healthy, short of a majority: run rebuild-cluster \
             first",
            members.len()
        ));
    }
    let Some((peer_url, _)) = host::read(paths::CONFIG_FILE)
        .as_deref()
        .and_then(render::advertised_urls)
    else {
        return unchanged(format!(
            "cannot read this unit's peer URL from {}",
            paths::CONFIG_FILE
        ));
    };
    Ok(Cluster {
        me,
        members,
        endpoints,
        peer_url,
    })
}

/// A member answers as a healthy voting member.
fn answers(a: &Action, m: &Member) -> bool {
    let healthy = |ep: &String| a.etcd.status(ep).is_ok_and(|s| common::healthy(&s));
    m.client_urls.first().is_some_and(healthy)
}

/// 3. The restored data dir, beside the current one, for a one-member cluster with a new token
///    (`etcdctl snapshot restore` checks the integrity hash).
fn unpack(
    a: &Action,
    snap: &Snapshot,
    peer_url: &str,
    restored: &Path,
    token: &str,
    bump: Option<u64>,
) -> Result<(), Stop> {
    let shown = &snap.shown;
    let needed = snap.info.size + 128 * 1024 * 1024;
    let home = restored.parent().unwrap_or(Path::new(paths::ETCD_HOME));
    if let Some(free) = machine::free_bytes(home) {
        if free < needed {
            return unchanged(format!(
                "{} has {} free and the restore needs about {}: free some space",
                home.display(),
                common::human_bytes(free),
                common::human_bytes(needed)
            ));
        }
    }
    let _ = std::fs::remove_dir_all(restored);
    a.progress(&format!(
        "checking and unpacking {shown} (revision {}, {} keys)",
        snap.status.revision, snap.status.total_keys
    ));
    let name = a.ctx.member_name();
    let restore = machine::snapshot_restore(&snap.file, restored, &name, peer_url, token, bump);
    if let Err(e) = restore {
        let _ = std::fs::remove_dir_all(restored);
        return unchanged(match e.contains("expected sha256") {
            true => format!(
                "{shown} does not match its integrity hash: the file is damaged or incomplete; \
                 copy it again"
            ),
            false => format!("etcd cannot restore {shown}: {e}"),
        });
    }
    Ok(())
}

/// 4. The other members leave, unreachable ones first; their units rejoin the restored cluster
///    by themselves. On a failure nothing is restored and the restored data dir goes.
fn remove_others(
    a: &Action,
    r: &mut Results,
    cluster: &Cluster,
    restored: &Path,
) -> Result<Vec<String>, Stop> {
    let others: Vec<&Member> = cluster
        .members
        .iter()
        .filter(|m| m.id != cluster.me.member_id)
        .collect();
    let mut removed = Vec::new();
    for m in removal_order(&others, |m| answers(a, m)) {
        let label = common::label(m);
        a.progress(&format!(
            "removing {label} from the cluster (its unit rejoins the restored cluster by itself)"
        ));
        let res = retry_not_yet(Duration::from_secs(30), Duration::from_secs(1), || {
            a.etcd.member_remove(&cluster.endpoints, m.id)
        });
        if let Err(e) = res {
            let _ = std::fs::remove_dir_all(restored);
            r.set("removed-members", removed.join(","));
            return super::fail(format!(
                "removing {label} failed: {e}. Nothing was restored; the members removed so far \
                 ({}) rejoin the current cluster by themselves. Check `health`, then run \
                 restore again",
                common::list_or_none(&removed)
            ));
        }
        removed.push(label);
    }
    r.set("removed-members", removed.join(","));
    Ok(removed)
}

/// 5. The swap: etcd stops, the data dir goes to `aside`, the restored one takes its place and
///    etcd starts on it as a one-member cluster. If it does not, the previous data is put back
///    and started (alone now: the others were removed).
fn swap(
    a: &Action,
    local: &str,
    place: &common::DataPlace,
    restored: &Path,
    aside: &Path,
    stamp: &str,
) -> Result<MemberStatus, Stop> {
    a.progress("stopping etcd on this unit and putting the restored data in place");
    let (home, data) = (place.home, place.dir);
    let swapped = machine::stop_etcd()
        .and_then(|()| machine::rename(data, aside))
        .and_then(|()| machine::rename(restored, data));
    let started = swapped.and_then(|()| {
        let why_not = "the restored member did not elect itself within 60 s";
        common::start_sole_leader(a, local, why_not)
    });
    let e = match started {
        Ok(s) => return Ok(s),
        Err(e) => e,
    };
    let _ = machine::stop_etcd();
    if aside.exists() {
        if data.exists() {
            let _ = machine::rename(data, &home.join(format!("data.failed-restore-{stamp}")));
        }
        let _ = machine::rename(aside, data);
    }
    let _ = std::fs::remove_dir_all(restored);
    let back = machine::start_etcd();
    if let Some(s) = common::wait_sole_leader(a.etcd, local, Duration::from_secs(60)) {
        common::publish_sole_member(a, s.member_id, &s.version, None)?;
    }
    super::fail(format!(
        "the restore failed: {e}. The previous data is back in place and etcd {} with it as a \
         one-member cluster; the other units rejoin it by themselves. See `juju debug-log` and \
         `journalctl -u etcd` on this unit",
        match back {
            Ok(()) => "started again".to_string(),
            Err(e) => format!("did not start again ({e})"),
        }
    ))
}

/// The action: every check first (1–3), then the change (4–5).
pub fn run(a: &Action, r: &mut Results) -> Result<(), Stop> {
    common::require_leader(a, "restore")?;
    let keep_previous = a.params.flag("keep-previous");
    let local = common::local_endpoint(a);
    let backup = match a.params.text("backup-id") {
        Some(id) => Some(download(a, id)?),
        None => None,
    };
    let snap = check_file(a, r, &local, backup.as_ref())?;
    let cluster = check_cluster(a, &local)?;
    // Past the cluster's current revision, where this etcd can bump (watchers never go back).
    let live = a.etcd.revision(&cluster.endpoints).ok();
    let live = live.and_then(|v| u64::try_from(v).ok());
    let snap_rev = u64::try_from(snap.status.revision).unwrap_or(0);
    let bump = core_backup::bump(&snap.installed, snap_rev, live);
    // Beside the real data dir: on the storage volume when it is there.
    let place = common::data_here();
    let home = place.home;
    let stamp = common::stamp(common::now_secs());
    let restored = home.join(format!("restore-{stamp}"));
    let token = Host.random_token();
    unpack(a, &snap, &cluster.peer_url, &restored, &token, bump)?;
    let removed = remove_others(a, r, &cluster, &restored)?;
    let aside = home.join(format!("data.before-restore-{stamp}"));
    let new = swap(a, &local, &place, &restored, &aside, &stamp)?;
    common::publish_sole_member(a, new.member_id, &new.version, Some(&token))?;
    let previous = match keep_previous {
        true => aside.display().to_string(),
        false => match std::fs::remove_dir_all(&aside) {
            Ok(()) => "deleted".to_string(),
            Err(e) => format!("{} (could not delete it: {e})", aside.display()),
        },
    };
    let (revision, name) = (snap.status.revision, a.ctx.member_name());
    let bumped = match bump {
        Some(n) => format!("revisions bumped by {n} past the cluster's, older ones compacted"),
        None => format!(
            "revisions not bumped (etcd {} cannot: 3.4.27+ or 3.5.10+ can)",
            snap.installed
        ),
    };
    r.set("revision-bump", bump.unwrap_or(0));
    r.set("checksum", &snap.checksum);
    r.set("revision", revision);
    r.set("total-keys", snap.status.total_keys);
    r.set("member-id", format!("{:x}", new.member_id));
    r.set("previous-data", &previous);
    r.set(
        "output",
        format!(
            "restored {} (revision {revision}) on {name}, now a one-member cluster; {}; {bumped}. \
             The other units ({}) rejoin it one at a time by themselves: watch `juju status`. \
             Previous data: {previous}",
            snap.shown,
            snap.checksum,
            common::list_or_none(&removed)
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::Etcd;
    use crate::fakes::{FakeEtcd, FakeJuju};
    use serde_json::json;

    #[test]
    fn only_on_the_leader() {
        let mut juju = FakeJuju::new("etcd/1", json!({"path": "/tmp/x.db"}));
        juju.leader = false;
        let etcd = FakeEtcd::healthy(3);
        juju.run("restore", &etcd);
        juju.failure_starting("restore runs on the leader unit only, and etcd/1 is not the leader");
        assert!(etcd.calls().is_empty());
    }

    #[test]
    fn says_which_snapshot_is_wanted() {
        let etcd = FakeEtcd::healthy(3);
        for (params, want) in [
            (json!({}), "say which snapshot to restore"),
            (
                json!({"path": "/x.db", "resource": true}),
                "give either path=<file> or resource=true",
            ),
            (json!({"path": "x.db"}), "path \"x.db\" must be absolute"),
            (
                json!({"resource": true}),
                "no `snapshot` resource is attached",
            ),
            (
                json!({"path": "/nonexistent/x.db"}),
                "cannot read /nonexistent/x.db",
            ),
        ] {
            let juju = FakeJuju::new("etcd/0", params);
            juju.run("restore", &etcd);
            let msg = juju.failed().unwrap();
            assert!(msg.starts_with(want), "{msg}");
            assert!(msg.ends_with("nothing was changed"), "{msg}");
        }
        assert!(etcd.calls().is_empty());
    }

    #[test]
    fn unreachable_members_are_removed_first() {
        let etcd = FakeEtcd::healthy(4);
        etcd.kill(2);
        let members = etcd.members.clone();
        let others: Vec<&Member> = members.iter().skip(1).collect();
        let order: Vec<String> = removal_order(&others, |m| etcd.status(&m.client_urls[0]).is_ok())
            .iter()
            .map(|m| m.name.clone())
            .collect();
        assert_eq!(order, ["etcd2", "etcd1", "etcd3"]);
    }
}

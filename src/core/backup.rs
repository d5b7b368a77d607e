/*!
Backups to object storage, decided (issue 14): the schedule, who takes a scheduled backup,
which backups retention removes, object names and metadata, the systemd timer, and how far a
restore bumps revisions. Pure: the actions and the timer's entry point gather the facts (the
clock, the listing, the members' health) and carry the answers out.

**Object layout.** One object per backup, key `<path>/<backup-id>` (`path` from the
`s3-credentials` relation, slashes trimmed; no path: just the id), as charmed-etcd names them.
The id is the UTC time the snapshot was taken, `%Y-%m-%dT%H:%M:%SZ` (`2026-12-01T17:40:21Z`),
charmed-etcd's format. The content is the etcd v3 snapshot exactly as `etcdctl snapshot save`
writes it (bbolt database plus its SHA-256). Its user metadata (`x-amz-meta-<name>`) is
[`BackupMeta`]: `sha256` (of the whole object, checked after every upload and download),
`application`, `model-uuid`, `unit`, `member`, `etcd-version`, `revision`, `total-keys`,
`format` (`etcd-v3-snapshot`), `verified` (`yes` when a test restore into a scratch etcd served
the snapshot's revision before the upload). Retention removes only objects whose `application` and
`model-uuid` are this application's; restore takes any of them (disaster recovery).
*/

use crate::core::version::Version;
use std::collections::BTreeMap;

/// The relation endpoint of the object store (interface `s3`).
pub const RELATION: &str = "s3-credentials";
/// The `format` metadata of every backup this charm writes.
pub const FORMAT: &str = "etcd-v3-snapshot";
/// Shortest schedule period: a backup every 5 minutes.
pub const MIN_PERIOD: u64 = 5 * 60;
/// Longest schedule period: 31 days.
pub const MAX_PERIOD: u64 = 31 * 86_400;
/// The systemd timer that wakes the scheduled backup.
pub const TIMER: &str = "etcd-backup.timer";
/// The oneshot service the timer starts.
pub const SERVICE: &str = "etcd-backup.service";
/// What the service asks the charm's dispatcher for (`JUJU_DISPATCH_PATH`).
pub const DISPATCH: &str = "backup/scheduled";
/// Added to the revision gap when a restore bumps revisions, for writes accepted between the
/// restore's look at the cluster and the members' removal.
pub const BUMP_MARGIN: u64 = 1_000_000;

/// The `backup_schedule` option: empty is off; `hourly`, `daily`, `weekly`, or `<n>m`, `<n>h`,
/// `<n>d` between [`MIN_PERIOD`] and [`MAX_PERIOD`]. Returns the period in seconds.
pub fn parse_schedule(s: &str) -> Result<Option<u64>, String> {
    let expected = || {
        "empty (no scheduled backups), hourly, daily, weekly, or a period such as 30m, 6h or 1d \
         (5m to 31d)"
            .to_string()
    };
    let s = s.trim();
    let secs = match s {
        "" => return Ok(None),
        "hourly" => 3600,
        "daily" => 86_400,
        "weekly" => 7 * 86_400,
        _ => {
            let (n, unit) = s.split_at(s.char_indices().last().map_or(0, |(i, _)| i));
            let unit = match unit {
                "m" => 60,
                "h" => 3600,
                "d" => 86_400,
                _ => return Err(expected()),
            };
            let n: u64 = n.parse().map_err(|_| expected())?;
            n.saturating_mul(unit)
        }
    };
    match (MIN_PERIOD..=MAX_PERIOD).contains(&secs) {
        true => Ok(Some(secs)),
        false => Err(expected()),
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) → days since 1970-01-01.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The backup id of a backup taken at `secs` (Unix time): `%Y-%m-%dT%H:%M:%SZ`, UTC.
pub fn backup_id(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, d) = civil(days);
    let (h, min, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}Z")
}

/// The time a backup id names, or `None` when it is not one.
pub fn parse_backup_id(id: &str) -> Option<u64> {
    let b = id.as_bytes();
    let shape = b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return None;
    }
    let n = |r: std::ops::Range<usize>| id[r].parse::<u32>().ok();
    let (y, mo, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (h, mi, s) = (n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + s);
    let secs = u64::try_from(secs).ok()?;
    (backup_id(secs) == id).then_some(secs)
}

/// The object key of a backup: `<path>/<id>`, or `<id>` without a path.
pub fn object_key(path: &str, id: &str) -> String {
    match path.trim().trim_matches('/') {
        "" => id.to_string(),
        p => format!("{p}/{id}"),
    }
}

/// The listing prefix of the backups under `path`.
pub fn prefix(path: &str) -> String {
    object_key(path, "")
}

/// The backup id of a listed key, when the key is a backup under `path` (not a deeper key).
pub fn id_of_key(path: &str, key: &str) -> Option<String> {
    let id = key.strip_prefix(&prefix(path))?;
    parse_backup_id(id).map(|_| id.to_string())
}

/// What a backup's object says about it (its user metadata).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackupMeta {
    /// The application that took it.
    pub application: String,
    /// Its model's UUID.
    pub model_uuid: String,
    /// The unit that took it.
    pub unit: String,
    /// The member the snapshot came from (`name (unit)`).
    pub member: String,
    /// The etcd version that member ran.
    pub etcd_version: String,
    /// The snapshot's revision.
    pub revision: u64,
    /// Its key count.
    pub total_keys: u64,
    /// SHA-256 of the object, hex.
    pub sha256: String,
    /// A test restore into a scratch etcd served the snapshot's revision before the upload.
    pub verified: bool,
}

impl BackupMeta {
    /// The metadata to store, without `sha256` (the S3 client adds it from the file).
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("format", FORMAT.to_string()),
            ("application", self.application.clone()),
            ("model-uuid", self.model_uuid.clone()),
            ("unit", self.unit.clone()),
            ("member", self.member.clone()),
            ("etcd-version", self.etcd_version.clone()),
            ("revision", self.revision.to_string()),
            ("total-keys", self.total_keys.to_string()),
            (
                "verified",
                if self.verified { "yes" } else { "no" }.to_string(),
            ),
        ]
    }

    /// Reads an object's metadata; `None` when it is not a backup this charm wrote.
    pub fn from_map(m: &BTreeMap<String, String>) -> Option<BackupMeta> {
        let get = |k: &str| m.get(k).cloned().unwrap_or_default();
        if get("format") != FORMAT || get("sha256").is_empty() {
            return None;
        }
        Some(BackupMeta {
            application: get("application"),
            model_uuid: get("model-uuid"),
            unit: get("unit"),
            member: get("member"),
            etcd_version: get("etcd-version"),
            revision: get("revision").parse().ok()?,
            total_keys: get("total-keys").parse().unwrap_or(0),
            sha256: get("sha256"),
            verified: get("verified") == "yes",
        })
    }
}

/// One backup in the store, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its id (its time).
    pub id: String,
    /// When it was taken (Unix time, from the id).
    pub taken: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Its metadata; `None` for an object this charm did not write (never pruned).
    pub meta: Option<BackupMeta>,
}

impl Stored {
    /// Whether this application (in this model) took it.
    pub fn ours(&self, app: &Owner) -> bool {
        self.meta
            .as_ref()
            .is_some_and(|m| m.application == app.application && m.model_uuid == app.model_uuid)
    }
}

/// The newest verified backup in `stored` (any application's), and its age at `now`.
pub fn last_verified(stored: &[Stored], now: u64) -> Option<(&Stored, u64)> {
    let verified = stored
        .iter()
        .filter(|s| s.meta.as_ref().is_some_and(|m| m.verified));
    let newest = verified.max_by_key(|s| s.taken)?;
    Some((newest, now.saturating_sub(newest.taken)))
}

/// An age as people read it: `45s`, `12m`, `3h 5m`, `2d 4h`.
pub fn human_age(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// The status's warning: the newest verified backup's age (`age` seconds), when a schedule is
/// set and that is over two periods. No verified backup announced yet: no warning (the
/// scheduled backups' failures are in the log).
pub fn stale(period: Option<u64>, age: Option<u64>) -> Option<String> {
    let (period, age) = (period?, age?);
    (age > 2 * period).then(|| human_age(age))
}

/// Who an application is, for retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The application's name.
    pub application: String,
    /// Its model's UUID.
    pub model_uuid: String,
}

/// How many backups to keep and for how long; 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Keep at most this many of this application's backups.
    pub count: u32,
    /// Remove this application's backups older than this many days.
    pub days: u32,
}

/// The ids retention removes, oldest first: only this application's backups, beyond the newest
/// `count` or older than `days`, and never the newest one (a schedule that stopped keeps its
/// last backup however old).
pub fn to_prune(stored: &[Stored], app: &Owner, now: u64, keep: Retention) -> Vec<String> {
    let mut ours: Vec<&Stored> = stored.iter().filter(|s| s.ours(app)).collect();
    ours.sort_by(|a, b| b.taken.cmp(&a.taken).then(b.id.cmp(&a.id)));
    let max_age = u64::from(keep.days) * 86_400;
    let mut out: Vec<String> = ours
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(i, s)| {
            let too_many = keep.count > 0 && *i >= keep.count as usize;
            let too_old = keep.days > 0 && now.saturating_sub(s.taken) > max_age;
            too_many || too_old
        })
        .map(|(_, s)| s.id.clone())
        .collect();
    out.reverse();
    out
}

/// A member as the scheduled backup's choice sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its Juju unit.
    pub unit: String,
    /// A started voting member that answers with a Raft leader.
    pub healthy: bool,
    /// It is the Raft leader.
    pub raft_leader: bool,
}

/// Units sort by number (`etcd/10` after `etcd/2`).
fn unit_order(u: &str) -> (u64, &str) {
    let n = u.rsplit('/').next().and_then(|n| n.parse().ok());
    (n.unwrap_or(u64::MAX), u)
}

/// Who takes the scheduled backup: the healthy follower with the lowest unit number, else the
/// healthy Raft leader (a one-member cluster), else nobody. Every unit decides the same from the
/// same member list and health, so one unit acts.
pub fn taker(members: &[Candidate]) -> Option<&str> {
    let healthy = members.iter().filter(|m| m.healthy);
    let best = |only_followers: bool| {
        healthy
            .clone()
            .filter(|m| !only_followers || !m.raft_leader)
            .min_by(|a, b| unit_order(&a.unit).cmp(&unit_order(&b.unit)))
    };
    best(true).or_else(|| best(false)).map(|m| m.unit.as_str())
}

/// Whether a scheduled backup is due at `now`: this application has none since the start of
/// the current period (periods are counted from the Unix epoch, the same on every unit).
pub fn due(now: u64, period: u64, latest_ours: Option<u64>) -> bool {
    latest_ours.is_none_or(|t| t < period_start(now, period))
}

/// The start of the schedule period `now` is in (periods count from the Unix epoch).
pub fn period_start(now: u64, period: u64) -> u64 {
    now - now % period.max(1)
}

/// What a scheduled run does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turn {
    /// Take the backup of the period starting then, recording that start in this unit's peer
    /// data first (`backup-period`) so that no other unit takes the same period.
    Take(u64),
    /// Nothing to do here, and why (for the log).
    Skip(String),
}

/// What the scheduled run of `me` does at `now`, from who [`taker`] names, the periods the other
/// units recorded as theirs (`claims`: unit and period start; only a unit whose member is
/// `healthy` holds its claim, so a period whose taker was lost is taken by another), and this application's newest
/// backup in the store (`latest_ours`, `None` before the store is listed or when it has none).
/// A run decides twice: before the store is listed, and again right before the snapshot, from
/// a fresh look at the members and peers, so a unit that is no longer the chosen one, or sees
/// the period taken by a peer meanwhile, stops there.
pub fn turn(
    now: u64,
    period: u64,
    me: &str,
    taker: Option<&str>,
    claims: &[(String, u64)],
    healthy: &[&str],
    latest_ours: Option<u64>,
) -> Turn {
    let start = period_start(now, period);
    match taker {
        Some(t) if t == me => {}
        Some(t) => return Turn::Skip(format!("{t} takes the scheduled backups")),
        None => return Turn::Skip("no member is healthy".into()),
    }
    let blocks = |(u, p): &&(String, u64)| u != me && *p >= start && healthy.contains(&u.as_str());
    if let Some((unit, _)) = claims.iter().find(blocks) {
        return Turn::Skip(format!("{unit} took the backup of this period"));
    }
    match due(now, period, latest_ours) {
        true => Turn::Take(start),
        false => Turn::Skip("the scheduled backup of this period is taken".into()),
    }
}

/// How often the timer wakes the charm: a twelfth of the period, between 1 and 15 minutes.
pub fn tick(period: u64) -> u64 {
    (period / 12).clamp(60, 15 * 60)
}

/// The timer unit, for a schedule of `period` seconds.
pub fn timer_unit(period: u64) -> String {
    format!(
        "[Unit]\nDescription=etcd charm: scheduled backups to object storage\n\n\
         [Timer]\nOnActiveSec=60\nOnUnitInactiveSec={}\nAccuracySec=10\n\n\
         [Install]\nWantedBy=timers.target\n",
        tick(period)
    )
}

/// The service the timer starts: the charm's dispatcher in hook context for `unit`, through
/// `runner` (`/usr/bin/juju-exec` on Juju 3, `/usr/bin/juju-run` on 2.9), bounded in time.
pub fn service_unit(runner: &str, unit: &str, period: u64) -> String {
    let timeout = period.min(6 * 3600);
    format!(
        "[Unit]\nDescription=etcd charm: take a scheduled backup if one is due\n\n\
         [Service]\nType=oneshot\nTimeoutStartSec={timeout}\n\
         ExecStart={runner} {unit} \"JUJU_DISPATCH_PATH={DISPATCH} ./dispatch\"\n"
    )
}

/// The timer and service files this unit should have (`(timer, service)`), or `None` for none:
/// scheduled backups are on (`period`), an object store is related, the unit stays, and the
/// machine has Juju's runner (`juju-exec`, `juju-run`).
pub fn timer_files(
    period: Option<u64>,
    related: bool,
    staying: bool,
    runner: Option<&str>,
    unit: &str,
) -> Option<(String, String)> {
    let (period, runner) = (period?, runner?);
    (related && staying).then(|| (timer_unit(period), service_unit(runner, unit, period)))
}

/// Whether a hook is one where the leader (re)sends this application's [`request`]: a hook of
/// the `s3-credentials` relation but its end, a new leader, a new charm.
pub fn requests_in(hook: &str) -> bool {
    let relation_hook = hook
        .strip_prefix(RELATION)
        .and_then(|h| h.strip_prefix("-relation-"));
    let ending = matches!(relation_hook, Some("broken" | "departed"));
    (relation_hook.is_some() && !ending) || matches!(hook, "leader-elected" | "upgrade-charm")
}

/// What this application asks the object store provider for, in its application databag on
/// relation `relation_id` (`s3-credentials:<n>`): `bucket`, `relation-<n>` as charmed-etcd's
/// library asks when it names none (an s3-integrator's own `bucket` option wins), and, where
/// Juju has secrets, `requested-secrets`, so that a provider of the secret form puts the keys in
/// a secret (`secret-extra`) rather than in the databag.
pub fn request(relation_id: &str, secrets: bool) -> BTreeMap<String, String> {
    let n = relation_id.rsplit(':').next().unwrap_or(relation_id);
    let mut out = BTreeMap::from([("bucket".to_string(), format!("relation-{n}"))]);
    if secrets {
        let keys = r#"["access-key", "secret-key"]"#.to_string();
        out.insert("requested-secrets".to_string(), keys);
    }
    out
}

/// How far a restore bumps revisions past the snapshot's, when the etcd that restores can
/// (`--bump-revision`: 3.4.27+, 3.5.10+, 3.6): past the cluster's current revision, plus
/// [`BUMP_MARGIN`]. `None`: the version cannot, or the gap is unknown and nothing is bumped.
pub fn bump(version: &str, snapshot_rev: u64, live_rev: Option<u64>) -> Option<u64> {
    let v = Version::parse(version)?;
    let can = match (v.major, v.minor) {
        (3, 4) => v.patch >= 27,
        (3, 5) => v.patch >= 10,
        (3, m) => m > 5,
        (m, _) => m > 3,
    };
    let live = live_rev?;
    can.then(|| live.saturating_sub(snapshot_rev) + BUMP_MARGIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_periods_or_names() {
        assert_eq!(parse_schedule(""), Ok(None));
        assert_eq!(parse_schedule(" daily "), Ok(Some(86_400)));
        assert_eq!(parse_schedule("30m"), Ok(Some(1800)));
        assert_eq!(parse_schedule("6h"), Ok(Some(21_600)));
        assert_eq!(parse_schedule("2d"), Ok(Some(172_800)));
        assert!(
            parse_schedule("30m\u{e9}").is_err(),
            "a multi-byte last char"
        );
        for bad in [
            "1m",
            "32d",
            "5",
            "h",
            "1x",
            "-5m",
            "0 0 * * *",
            "99999999999999999999d",
        ] {
            let e = parse_schedule(bad).unwrap_err();
            assert!(e.contains("hourly, daily, weekly"), "{bad}: {e}");
        }
    }

    #[test]
    fn ids_are_utc_times_both_ways() {
        assert_eq!(backup_id(0), "1970-01-01T00:00:00Z");
        assert_eq!(backup_id(1_796_146_821), "2026-12-01T17:40:21Z");
        assert_eq!(backup_id(951_782_400), "2000-02-29T00:00:00Z");
        for secs in [0, 951_782_400, 1_796_146_821, 4_102_444_799] {
            assert_eq!(parse_backup_id(&backup_id(secs)), Some(secs));
        }
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-12-01T17:40:21",
            "2026-12-01 17:40:21Z",
            "x026-12-01T17:40:21Z",
            "2026-13-01T17:40:21Z",
        ] {
            assert_eq!(parse_backup_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn keys_are_path_slash_id() {
        let id = "2026-12-01T17:40:21Z";
        assert_eq!(
            object_key("/etcd/backups/", id),
            format!("etcd/backups/{id}")
        );
        assert_eq!(object_key("", id), id);
        assert_eq!(
            id_of_key("etcd/backups", &format!("etcd/backups/{id}")).as_deref(),
            Some(id)
        );
        assert_eq!(id_of_key("etcd", &format!("etcd/other/{id}")), None);
        assert_eq!(id_of_key("", "notes.txt"), None);
    }

    #[test]
    fn metadata_round_trips_and_foreign_objects_are_not_ours() {
        let meta = BackupMeta {
            application: "etcd".into(),
            model_uuid: "m".into(),
            unit: "etcd/1".into(),
            member: "etcd1 (etcd/1)".into(),
            etcd_version: "3.5.21".into(),
            revision: 42,
            total_keys: 7,
            sha256: "ab".into(),
            verified: true,
        };
        let mut map: BTreeMap<String, String> = meta
            .to_pairs()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        map.insert("sha256".into(), "ab".into());
        assert_eq!(BackupMeta::from_map(&map), Some(meta));
        map.insert("format".into(), "tarball".into());
        assert_eq!(BackupMeta::from_map(&map), None);
    }

    fn stored(app: &str, taken: u64) -> Stored {
        Stored {
            id: backup_id(taken),
            taken,
            size: 1,
            meta: Some(BackupMeta {
                application: app.into(),
                model_uuid: "m".into(),
                revision: 1,
                sha256: "ab".into(),
                ..BackupMeta::default()
            }),
        }
    }

    #[test]
    fn retention_prunes_only_ours_and_keeps_the_newest() {
        let day = 86_400;
        let app = Owner {
            application: "etcd".into(),
            model_uuid: "m".into(),
        };
        let mut all: Vec<Stored> = (1..=5).map(|d| stored("etcd", d * day)).collect();
        all.push(stored("etcd-other", day / 2));
        all.push(Stored {
            meta: None,
            ..stored("etcd", day / 3)
        });
        let ids = |ds: &[u64]| ds.iter().map(|d| backup_id(d * day)).collect::<Vec<_>>();
        let now = 6 * day;
        let by_count = Retention { count: 2, days: 0 };
        assert_eq!(to_prune(&all, &app, now, by_count), ids(&[1, 2, 3]));
        let by_age = Retention { count: 0, days: 3 };
        assert_eq!(to_prune(&all, &app, now, by_age), ids(&[1, 2]));
        assert!(to_prune(&all, &app, now, Retention::default()).is_empty());
        // A schedule that stopped long ago keeps its last backup.
        let late = 100 * day;
        assert_eq!(to_prune(&all, &app, late, by_age), ids(&[1, 2, 3, 4]));
        // Another model's application of the same name is not ours.
        let elsewhere = Owner {
            model_uuid: "n".into(),
            ..app
        };
        assert!(to_prune(&all, &elsewhere, now, by_count).is_empty());
    }

    fn cand(unit: &str, healthy: bool, raft_leader: bool) -> Candidate {
        Candidate {
            unit: unit.into(),
            healthy,
            raft_leader,
        }
    }

    #[test]
    fn a_healthy_follower_takes_the_backup_else_the_leader() {
        let all = [
            cand("etcd/10", true, false),
            cand("etcd/2", true, false),
            cand("etcd/0", true, true),
        ];
        assert_eq!(taker(&all), Some("etcd/2"));
        let down = [
            cand("etcd/2", false, false),
            cand("etcd/10", true, false),
            cand("etcd/0", true, true),
        ];
        assert_eq!(taker(&down), Some("etcd/10"));
        let alone = [cand("etcd/0", true, true), cand("etcd/1", false, false)];
        assert_eq!(taker(&alone), Some("etcd/0"));
        assert_eq!(taker(&[cand("etcd/0", false, true)]), None);
    }

    #[test]
    fn one_backup_per_period() {
        let h = 3600;
        assert!(due(10 * h + 5, h, None));
        assert!(due(10 * h + 5, h, Some(9 * h + 3000)));
        assert!(!due(10 * h + 5, h, Some(10 * h)));
        assert!(!due(10 * h + 5, h, Some(10 * h + 1)));
    }

    #[test]
    fn a_period_is_claimed_by_one_unit_and_rechecked_before_the_snapshot() {
        let (h, now) = (3600, 10 * 3600 + 5);
        let claim = |u: &str, p: u64| (u.to_string(), p);
        let skip = |t: Turn| matches!(t, Turn::Skip(_));
        const UP: &[&str] = &["etcd/0", "etcd/1", "etcd/2"];
        // etcd/1 is the chosen one, nobody took this period: it takes it (first look, store
        // not listed yet; second look, the store holds only last period's backup).
        assert_eq!(
            turn(now, h, "etcd/1", Some("etcd/1"), &[], UP, None),
            Turn::Take(10 * h)
        );
        let last = [claim("etcd/2", 9 * h)];
        let second = turn(
            now,
            h,
            "etcd/1",
            Some("etcd/1"),
            &last,
            UP,
            Some(9 * h + 60),
        );
        assert_eq!(second, Turn::Take(10 * h));
        // Meanwhile a leader change made etcd/2 the chosen one, which also sees etcd/1's claim
        // of this period: neither runs it twice.
        let claims = [claim("etcd/1", 10 * h)];
        assert!(skip(turn(
            now,
            h,
            "etcd/2",
            Some("etcd/2"),
            &claims,
            UP,
            None
        )));
        // etcd/1, re-checking right before its snapshot, is no longer the chosen one: it stops.
        let t = turn(now, h, "etcd/1", Some("etcd/2"), &[], UP, None);
        assert_eq!(t, Turn::Skip("etcd/2 takes the scheduled backups".into()));
        assert!(skip(turn(now, h, "etcd/1", None, &[], UP, None)));
        // Its own claim does not stop a unit (a run that failed retries in the same period)...
        let own = [claim("etcd/1", 10 * h)];
        assert_eq!(
            turn(now, h, "etcd/1", Some("etcd/1"), &own, UP, None),
            Turn::Take(10 * h)
        );
        // ...but a backup of this period in the store does.
        assert!(skip(turn(
            now,
            h,
            "etcd/1",
            Some("etcd/1"),
            &own,
            UP,
            Some(10 * h + 1)
        )));
        // etcd/1's member went down after it claimed the period: etcd/2 takes it.
        let down = ["etcd/0", "etcd/2"];
        assert_eq!(
            turn(now, h, "etcd/2", Some("etcd/2"), &claims, &down, None),
            Turn::Take(10 * h)
        );
        // Next period: etcd/2 takes it, etcd/1's old claim notwithstanding.
        let next = now + h;
        assert_eq!(
            turn(next, h, "etcd/2", Some("etcd/2"), &claims, UP, None),
            Turn::Take(11 * h)
        );
    }

    #[test]
    fn the_timer_and_its_service() {
        assert_eq!(tick(3600), 300);
        assert_eq!(tick(300), 60);
        assert_eq!(tick(86_400), 900);
        let t = timer_unit(3600);
        assert!(t.contains("OnUnitInactiveSec=300\n"), "{t}");
        assert!(t.contains("WantedBy=timers.target"), "{t}");
        let s = service_unit("/usr/bin/juju-exec", "etcd/1", 3600);
        assert!(s.contains("Type=oneshot\nTimeoutStartSec=3600\n"), "{s}");
        assert!(
            s.contains(
                "ExecStart=/usr/bin/juju-exec etcd/1 \"JUJU_DISPATCH_PATH=backup/scheduled ./dispatch\"\n"
            ),
            "{s}"
        );
    }

    #[test]
    fn a_timer_only_when_scheduled_related_staying_and_runnable() {
        let runner = "/usr/bin/juju-exec";
        let exec = Some(runner);
        let (timer, service) = timer_files(Some(3600), true, true, exec, "etcd/0").unwrap();
        let want = (timer_unit(3600), service_unit(runner, "etcd/0", 3600));
        assert_eq!((timer, service), want);
        assert!(timer_files(None, true, true, exec, "etcd/0").is_none());
        assert!(timer_files(Some(3600), false, true, exec, "etcd/0").is_none());
        assert!(timer_files(Some(3600), true, false, exec, "etcd/0").is_none());
        assert!(timer_files(Some(3600), true, true, None, "etcd/0").is_none());
    }

    #[test]
    fn the_last_verified_backup_and_its_age() {
        let mut unverified = stored("etcd", 5000);
        if let Some(m) = unverified.meta.as_mut() {
            m.verified = false;
        }
        let mut old = stored("etcd", 1000);
        if let Some(m) = old.meta.as_mut() {
            m.verified = true;
        }
        let all = [old, unverified];
        let (s, age) = last_verified(&all, 8200).unwrap();
        assert_eq!((s.taken, age), (1000, 7200));
        assert_eq!(human_age(age), "2h 0m");
        assert_eq!(human_age(59), "59s");
        assert_eq!(human_age(2 * 86_400 + 3 * 3600 + 7), "2d 3h");
        assert!(last_verified(&all[1..], 8200).is_none());
        assert_eq!(stale(None, Some(99_999)), None);
        assert_eq!(stale(Some(3600), None), None);
        assert_eq!(stale(Some(3600), Some(7200)), None);
        assert_eq!(stale(Some(3600), Some(7260)).as_deref(), Some("2h 1m"));
    }

    #[test]
    fn the_store_request_names_a_bucket_and_asks_for_secrets_where_there_are() {
        let r = request("s3-credentials:9", true);
        assert_eq!(r["bucket"], "relation-9");
        let asked: Vec<String> = serde_json::from_str(&r["requested-secrets"]).unwrap();
        assert_eq!(asked, ["access-key", "secret-key"]);
        assert!(!request("s3-credentials:9", false).contains_key("requested-secrets"));
        assert!(requests_in("s3-credentials-relation-created"));
        assert!(requests_in("s3-credentials-relation-changed"));
        assert!(!requests_in("s3-credentials-relation-broken"));
        assert!(!requests_in("cluster-relation-changed"));
        assert!(requests_in("leader-elected") && requests_in("upgrade-charm"));
        assert!(!requests_in("update-status"));
    }

    #[test]
    fn revisions_are_bumped_where_etcd_can() {
        assert_eq!(bump("3.5.21", 100, Some(150)), Some(50 + BUMP_MARGIN));
        assert_eq!(bump("3.6.0", 100, Some(90)), Some(BUMP_MARGIN));
        assert_eq!(bump("3.4.27", 100, Some(100)), Some(BUMP_MARGIN));
        assert_eq!(bump("3.4.23", 100, Some(150)), None);
        assert_eq!(bump("3.5.1", 100, Some(150)), None);
        assert_eq!(bump("3.5.21", 100, None), None);
        assert_eq!(bump("garbage", 100, Some(1)), None);
    }
}

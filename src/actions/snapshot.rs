/*!
`snapshot` (any unit): saves a consistent snapshot of the key-value store (one member's
backend, read in one transaction, with its sha256 appended as `etcdctl snapshot save` does) to
`target` (default `/var/lib/etcd-charm/snapshots`, mode 0700), next to a `.sha256` file that
`sha256sum -c` and the `restore` action check. The local member is asked first, then the
others. The file is written under a temporary name and renamed once checked, and only when the
file system has room for it: the default directory shares its disk with etcd.

Result keys: `path`, `size`, `sha256`, `etcd-version`, `revision`, `total-keys`, `member`,
`copy-cmd`, `output`.
*/

use super::{common, machine, Action, Results, Stop};
use crate::etcd::MemberStatus;
use crate::paths;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Room kept free beyond the snapshot's own size.
const MARGIN: u64 = 64 * 1024 * 1024;

/// Checks the target directory: absolute, outside etcd's own directory.
pub fn check_target(target: &str) -> Result<PathBuf, String> {
    let p = Path::new(target);
    if !p.is_absolute() {
        return Err(format!(
            "target {target:?} must be an absolute path, e.g. {}",
            super::params::SNAPSHOT_DIR
        ));
    }
    if p.components().any(|c| c == std::path::Component::ParentDir) {
        return Err(format!("target {target:?} must not contain `..`"));
    }
    if p.starts_with(paths::ETCD_HOME) {
        return Err(format!(
            "target {target:?} is inside etcd's directory {}: choose another directory",
            paths::ETCD_HOME
        ));
    }
    Ok(p.to_path_buf())
}

/// A snapshot saved and checked.
pub struct Saved {
    /// Its path.
    pub path: PathBuf,
    /// Its file name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// The member it came from (`name (unit)`).
    pub member: String,
    /// That member's status when asked.
    pub status: MemberStatus,
    /// What `snapshot status` read from the file.
    pub file: machine::SnapshotStatus,
}

/// Creates `dir` (mode 0700) if it is missing.
pub fn ensure_dir(dir: &Path) -> Result<(), Stop> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .or_else(|e| {
            super::fail(format!(
                "cannot create {}: {e}; choose another target",
                dir.display()
            ))
        })
}

/// Saves a snapshot of the first voting member that answers at `endpoints` into `dir` (which
/// must exist), named `<prefix>-<member>-<time>.db`, checked as restore will check it, owner-only.
pub fn save(a: &Action, dir: &Path, endpoints: &[String], prefix: &str) -> Result<Saved, Stop> {
    // The first member that answers and is not a learner (learners cannot send snapshots).
    let Some((endpoint, status)) = endpoints.iter().find_map(|ep| {
        let s = a.etcd.status(ep).ok().filter(|s| !s.is_learner)?;
        Some((ep.clone(), s))
    }) else {
        return super::fail(format!(
            "no voting member answered at {}: nothing was saved. Check `health`",
            endpoints.join(", ")
        ));
    };
    let members = a.etcd.member_list(endpoints).unwrap_or_default();
    let member = members
        .iter()
        .find(|m| m.id == status.member_id)
        .map_or(format!("{:x}", status.member_id), common::label);
    let needed = status.db_size.max(0) as u64 + MARGIN;
    if let Some(free) = machine::free_bytes(dir) {
        if free < needed {
            return super::fail(format!(
                "{} has {} free and the snapshot needs about {} (database {} plus a margin): \
                 nothing was saved. Free some space or choose another target",
                dir.display(),
                common::human_bytes(free),
                common::human_bytes(needed),
                common::human_bytes(status.db_size.max(0) as u64)
            ));
        }
    }
    let name = format!(
        "{prefix}-{}-{}.db",
        common::key_part(&member),
        common::stamp(common::now_secs())
    );
    let path = dir.join(&name);
    let part = dir.join(format!(".{name}.part"));
    a.progress(&format!(
        "saving a snapshot of {member} (database {}) to {}",
        common::human_bytes(status.db_size.max(0) as u64),
        path.display()
    ));
    let cleanup = || {
        let _ = std::fs::remove_file(&part);
    };
    cleanup(); // a leftover of a run cut short: the snapshot is created anew, owner-only
    let size = a.etcd.snapshot(&endpoint, &part).or_else(|e| {
        cleanup();
        super::fail(format!(
            "the snapshot from {member} failed: {e}; nothing was saved. Check `health` and try \
             again"
        ))
    })?;
    // Check it as restore will: a bbolt database with its hash, that etcdctl can read.
    let checked = machine::inspect_snapshot(&part).and_then(|info| match info.has_hash {
        true => machine::snapshot_status(&part),
        false => Err("it has no integrity hash".into()),
    });
    let file = checked.or_else(|e| {
        cleanup();
        super::fail(format!(
            "the snapshot received from {member} is not readable ({e}); nothing was saved. \
             Try again, or on another unit"
        ))
    })?;
    let sha256 = machine::sha256(&part).or_else(|e| {
        cleanup();
        super::fail(format!(
            "cannot checksum the snapshot: {e}; nothing was saved"
        ))
    })?;
    machine::rename(&part, &path).or_else(|e| {
        cleanup();
        super::fail(e)
    })?;
    Ok(Saved {
        path,
        name,
        size,
        sha256,
        member,
        status,
        file,
    })
}

/// The action.
pub fn run(a: &Action, r: &mut Results) -> Result<(), Stop> {
    let target = a
        .params
        .text("target")
        .unwrap_or(super::params::SNAPSHOT_DIR)
        .to_string();
    let dir = check_target(&target).or_else(|e| super::fail(format!("{e}; nothing was saved")))?;
    ensure_dir(&dir)?;
    let s = save(a, &dir, &common::endpoints(a), "etcd-snapshot")?;
    let (name, sha) = (&s.name, &s.sha256);
    let sidecar = dir.join(format!("{name}.sha256"));
    if let Err(e) = std::fs::write(&sidecar, format!("{sha}  {name}\n")) {
        a.progress(&format!("cannot write {}: {e}", sidecar.display()));
    }
    let path_text = s.path.display().to_string();
    r.set("path", &path_text);
    r.set("size", s.size);
    r.set("sha256", sha);
    r.set("etcd-version", &s.status.version);
    r.set("revision", s.file.revision);
    r.set("total-keys", s.file.total_keys);
    r.set("member", &s.member);
    r.set(
        "copy-cmd",
        format!("juju ssh {} sudo cat {path_text} > {name}", a.ctx.unit_name),
    );
    r.set(
        "output",
        format!(
            "saved a snapshot of {} at revision {} to {path_text} ({}, sha256 {sha}, etcd {})",
            s.member,
            s.file.revision,
            common::human_bytes(s.size),
            s.status.version
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_absolute_and_outside_etcd() {
        assert_eq!(
            check_target("/srv/backups").unwrap(),
            PathBuf::from("/srv/backups")
        );
        assert!(check_target("backups")
            .unwrap_err()
            .contains("absolute path"));
        assert!(check_target("/srv/../var/lib/etcd")
            .unwrap_err()
            .contains("`..`"));
        assert!(check_target("/var/lib/etcd/data/x")
            .unwrap_err()
            .contains("inside etcd's directory"));
    }
}

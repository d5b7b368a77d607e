/*!
The machine side of `snapshot`, `restore` and `rebuild-cluster`: reading snapshot files, their
sha256 (ring), free space (statvfs), the offline `etcdctl snapshot` commands, moving data dirs, and running etcd
once with `force-new-cluster`. Failures come back as text for the action's message.
*/

use crate::core::version::Version;
use crate::machine::host::{self, Host};
use crate::machine::state;
use crate::paths;
use std::io::Read;
use std::path::Path;

/// What the file itself says about a snapshot, before etcd reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Size in bytes.
    pub size: u64,
    /// Ends with the sha256 of the database, as `etcdctl snapshot save` (and the `snapshot`
    /// action) write it; a copy of a member's `member/snap/db` has none.
    pub has_hash: bool,
    /// The cluster version recorded in the database (etcd >= 3.5 records it), e.g. `3.5.0`.
    pub cluster_version: Option<String>,
    /// The storage version (etcd >= 3.6), e.g. `3.6.0`.
    pub storage_version: Option<String>,
}

/// bbolt's meta page magic, at offset 16 of the file (after the 16-byte page header).
const BOLT_MAGIC: [u8; 4] = 0xED0C_DAEDu32.to_le_bytes();

/// The version string stored right after `key` in a bbolt leaf (keys and values are stored
/// back to back), if it looks like one.
fn version_after(buf: &[u8], key: &[u8]) -> Option<String> {
    let at = buf.windows(key.len()).position(|w| w == key)?;
    let rest = &buf[at + key.len()..];
    let v: String = rest
        .iter()
        .take(16)
        .take_while(|b| b.is_ascii_digit() || **b == b'.')
        .map(|b| *b as char)
        .collect();
    let parts: Vec<&str> = v.split('.').collect();
    (parts.len() == 3 && parts.iter().all(|p| !p.is_empty())).then_some(v)
}

/// Checks that `path` is an etcd v3 snapshot and reads what it records, without etcd.
pub fn inspect_snapshot(path: &Path) -> Result<SnapshotInfo, String> {
    let mut f =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let size = f
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .len();
    if size == 0 {
        return Err(format!("{} is empty", path.display()));
    }
    let mut head = [0u8; 20];
    let n = f.read(&mut head).map_err(|e| e.to_string())?;
    if head[..n.min(2)] == [0x1f, 0x8b] {
        return Err(format!(
            "{} is gzip-compressed, not an etcd snapshot: extract the snapshot (`db`) file from \
             it first",
            path.display()
        ));
    }
    if n < 20 || head[16..20] != BOLT_MAGIC {
        return Err(format!(
            "{} is not an etcd v3 snapshot (no bbolt database header): give a file made by this \
             charm's snapshot action or `etcdctl snapshot save` (an etcd v2 backup cannot be \
             restored)",
            path.display()
        ));
    }
    // Scan for the version keys, chunk by chunk with an overlap so no key is cut in two.
    let (mut cluster_version, mut storage_version) = (None, None);
    let mut buf = head[..n].to_vec();
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let read = f.read(&mut chunk).map_err(|e| e.to_string())?;
        buf.extend_from_slice(&chunk[..read]);
        cluster_version = cluster_version.or_else(|| version_after(&buf, b"clusterVersion"));
        storage_version = storage_version.or_else(|| version_after(&buf, b"storageVersion"));
        if read == 0 {
            break;
        }
        let keep = buf.len().saturating_sub(64);
        buf.drain(..keep);
    }
    Ok(SnapshotInfo {
        size,
        has_hash: size % 512 == 32,
        cluster_version,
        storage_version,
    })
}

/// `(major, minor)` of a version such as `3.4.23` or `v3.5.0`.
fn major_minor(v: &str) -> Option<(u64, u64)> {
    Version::parse(v).map(|v| (v.major, v.minor))
}

/// Refuses a snapshot from a newer etcd than the one installed (etcd cannot read a newer
/// minor's data); etcd 3.4 and older record no version and are accepted by 3.4 and newer.
pub fn check_compatible(info: &SnapshotInfo, installed: &str) -> Result<(), String> {
    let Some(have) = major_minor(installed) else {
        return Err(format!(
            "cannot tell the installed etcd version ({installed:?})"
        ));
    };
    let recorded = [&info.storage_version, &info.cluster_version]
        .into_iter()
        .flatten()
        .filter_map(|v| Some((v, major_minor(v)?)))
        .max_by_key(|(_, mm)| *mm);
    match recorded {
        Some((v, mm)) if mm.0 != have.0 || mm > have => Err(format!(
            "the snapshot is from etcd {}.{} (it records version {v}) and this cluster runs etcd \
             {installed}, which cannot read it: restore it on etcd {}.{} or newer",
            mm.0, mm.1, mm.0, mm.1
        )),
        _ => Ok(()),
    }
}

/// What `etcdctl snapshot status` reads from a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotStatus {
    /// The key-value store revision it holds.
    pub revision: i64,
    /// Keys in it (all revisions).
    pub total_keys: i64,
    /// The hash of its key-value data.
    pub hash: u64,
}

/// Parses `etcdctl snapshot status -w json`.
pub fn parse_snapshot_status(json: &str) -> Option<SnapshotStatus> {
    let v: serde_json::Value = serde_json::from_str(json.trim()).ok()?;
    Some(SnapshotStatus {
        revision: v["revision"].as_i64()?,
        total_keys: v["totalKey"].as_i64().unwrap_or(0),
        hash: v["hash"].as_u64().unwrap_or(0),
    })
}

/// Printable text: control characters (NUL bytes from a damaged file, ...) escaped, newlines
/// kept.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| match c.is_control() && c != '\n' {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect()
}

/// A failed command, shortly: `etcdctl snapshot status: <its error line>`.
fn text(e: host::HostError) -> String {
    match e {
        host::HostError::Command { cmd, code, stderr } => {
            let mut words = cmd.split_whitespace();
            let prog = words.next().unwrap_or("").rsplit('/').next().unwrap_or("");
            let sub: Vec<&str> = words.take(2).filter(|w| !w.starts_with('/')).collect();
            let lines: Vec<&str> = stderr
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let reason = lines
                .iter()
                .rev()
                .find_map(|l| l.strip_prefix("Error:"))
                .or(lines.last().copied())
                .map(str::trim)
                .map_or(
                    code.map_or("could not run".to_string(), |c| format!("exit code {c}")),
                    String::from,
                );
            printable(
                &format!("`{prog} {}` failed: {reason}", sub.join(" "))
                    .replace(" ` failed", "` failed"),
            )
        }
        other => printable(&other.to_string()),
    }
}

/// `etcdctl snapshot status <file>` (offline: reads the file only).
pub fn snapshot_status(file: &Path) -> Result<SnapshotStatus, String> {
    let f = file.to_string_lossy();
    let out = host::run(
        &state::real_etcdctl(&Host),
        &["snapshot", "status", &f, "--write-out", "json"],
    )
    .map_err(text)?;
    parse_snapshot_status(&out).ok_or_else(|| {
        format!(
            "cannot parse `etcdctl snapshot status` output: {}",
            out.trim()
        )
    })
}

/// `etcdctl snapshot restore` into a new data dir `dir` (which must not exist) for a one-member
/// cluster of `name` at `peer_url`: checks the snapshot's integrity hash, gives it a new
/// cluster id and member id. The dir is then handed to the etcd user.
pub fn snapshot_restore(
    file: &Path,
    dir: &Path,
    name: &str,
    peer_url: &str,
    token: &str,
    bump: Option<u64>,
) -> Result<(), String> {
    let (f, d) = (file.to_string_lossy(), dir.to_string_lossy());
    let cluster = format!("{name}={peer_url}");
    let bump = bump.map(|n| n.to_string());
    let bump_args = match &bump {
        Some(n) => vec!["--bump-revision", n.as_str(), "--mark-compacted"],
        None => vec![],
    };
    let args = [
        "snapshot",
        "restore",
        &f,
        "--data-dir",
        &d,
        "--name",
        name,
        "--initial-cluster",
        &cluster,
        "--initial-advertise-peer-urls",
        peer_url,
        "--initial-cluster-token",
        token,
    ];
    let args: Vec<&str> = args.into_iter().chain(bump_args).collect();
    host::run(&state::real_etcdctl(&Host), &args).map_err(text)?;
    give_to_etcd(dir)
}

/// The etcd user's uid and gid.
fn etcd_ids() -> Result<(u32, u32), String> {
    host::user_ids("etcd").ok_or_else(|| "there is no etcd user: run `juju resolved`".into())
}

/// Hands a directory tree to the etcd user (links themselves, not what they point at), mode
/// 0700 at the top.
pub fn give_to_etcd(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let (uid, gid) = etcd_ids()?;
    let chown = |p: &Path| {
        std::os::unix::fs::lchown(p, Some(uid), Some(gid))
            .map_err(|e| format!("cannot chown {}: {e}", p.display()))
    };
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        chown(&p)?;
        if p.is_dir() && !p.is_symlink() {
            let entries =
                std::fs::read_dir(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
            todo.extend(entries.flatten().map(|e| e.path()));
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot chmod {}: {e}", dir.display()))
}

/// The sha256 of a file, lowercase hex.
pub fn sha256(file: &Path) -> Result<String, String> {
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", file.display());
    let mut f = std::fs::File::open(file).map_err(cannot)?;
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut chunk).map_err(cannot)? {
            0 => break,
            n => digest.update(&chunk[..n]),
        }
    }
    let hash = digest.finish();
    Ok(hash.as_ref().iter().map(|b| format!("{b:02x}")).collect())
}

/// Free bytes on the file system holding `dir` (for an unprivileged user, as `df` shows).
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Renames `from` to `to`.
pub fn rename(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::rename(from, to)
        .map_err(|e| format!("cannot move {} to {}: {e}", from.display(), to.display()))
}

/// `cp -a from to`.
pub fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    host::run(
        "cp",
        &["-a", &from.to_string_lossy(), &to.to_string_lossy()],
    )
    .map(drop)
    .map_err(text)
}

/// Stops etcd.
pub fn stop_etcd() -> Result<(), String> {
    host::systemctl(&["stop", paths::SERVICE]).map_err(text)
}

/// Starts etcd and waits (bounded) for systemd to see it ready.
pub fn start_etcd() -> Result<(), String> {
    host::run("timeout", &["120", "systemctl", "start", paths::SERVICE])
        .map(drop)
        .map_err(text)
}

/// The transient unit running etcd once with `force-new-cluster`.
const FORCE_UNIT: &str = "etcd-charm-force-new-cluster";

/// Runs etcd once on its data dir with `force-new-cluster: true` added to `config` (etcd reads
/// only its config file), as the etcd user, in a transient systemd unit; returns once etcd is
/// ready (it has rewritten the membership to this member alone and elected itself). The caller
/// checks the result and then calls [`stop_force_new_cluster`].
pub fn start_force_new_cluster(config: &str) -> Result<(), String> {
    let file = Path::new(paths::ETCD_HOME).join("force-new-cluster.conf.yml");
    let content = format!("{}\nforce-new-cluster: true\n", config.trim_end());
    std::fs::write(&file, content).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    give_file_to_etcd(&file)?;
    let _ = host::systemctl(&["reset-failed", &format!("{FORCE_UNIT}.service")]);
    run_etcd_transient(FORCE_UNIT, &["--config-file", &file.to_string_lossy()])
}

/// Runs etcd with `args` as the etcd user in the transient systemd unit `unit` (collected once
/// it stops); returns once etcd is ready (`Type=notify`: serving, with a Raft leader), bounded.
pub fn run_etcd_transient(unit: &str, args: &[&str]) -> Result<(), String> {
    let mut all = vec![
        "150",
        "systemd-run",
        "--unit",
        unit,
        "--uid",
        "etcd",
        "--gid",
        "etcd",
        "--property",
        "Type=notify",
        "--property",
        "TimeoutStartSec=120",
        "--collect",
        "--quiet",
        paths::ETCD_LINK,
    ];
    all.extend_from_slice(args);
    host::run("timeout", &all).map(drop).map_err(text)
}

fn give_file_to_etcd(file: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let (uid, gid) = etcd_ids()?;
    let f = file.display();
    std::os::unix::fs::chown(file, Some(uid), Some(gid))
        .map_err(|e| format!("cannot chown {f}: {e}"))?;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot chmod {f}: {e}"))
}

/// Stops the etcd run by [`start_force_new_cluster`] and removes its config.
pub fn stop_force_new_cluster() {
    let _ = host::systemctl(&["stop", &format!("{FORCE_UNIT}.service")]);
    let _ = std::fs::remove_file(Path::new(paths::ETCD_HOME).join("force-new-cluster.conf.yml"));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file in a directory of its own, removed with it when dropped.
    struct Temp(std::path::PathBuf);

    impl std::ops::Deref for Temp {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Temp {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    fn temp(name: &str, content: &[u8]) -> Temp {
        let dir =
            std::env::temp_dir().join(format!("etcd-charm-actions-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        Temp(p)
    }

    /// A file that starts like a bbolt database, with `extra` in it and `hash` bytes at the end.
    fn bolt(extra: &[u8], hashed: bool) -> Vec<u8> {
        let mut v = vec![0u8; 16];
        v.extend_from_slice(&BOLT_MAGIC);
        v.resize(4096, 0);
        v.extend_from_slice(extra);
        v.resize(8192, 0);
        if hashed {
            v.extend_from_slice(&[7u8; 32]);
        }
        v
    }

    #[test]
    fn recognises_snapshots_and_reads_their_versions() {
        let p = temp("a.db", &bolt(b"", true));
        let i = inspect_snapshot(&p).unwrap();
        assert!(i.has_hash);
        assert_eq!((i.cluster_version, i.storage_version), (None, None));
        assert!(check_compatible(&inspect_snapshot(&p).unwrap(), "3.4.23").is_ok());

        let p = temp("b.db", &bolt(b"\x00clusterVersion3.5.0\x00\x01", false));
        let i = inspect_snapshot(&p).unwrap();
        assert!(!i.has_hash);
        assert_eq!(i.cluster_version.as_deref(), Some("3.5.0"));
        let e = check_compatible(&i, "3.4.23").unwrap_err();
        assert!(
            e.starts_with("the snapshot is from etcd 3.5 (it records version 3.5.0) and this cluster runs etcd 3.4.23"),
            "{e}"
        );
        assert!(check_compatible(&i, "3.5.21").is_ok());
        assert!(check_compatible(&i, "3.6.5").is_ok());

        let p = temp(
            "c.db",
            &bolt(b"storageVersion3.6.0clusterVersion3.6.0", true),
        );
        let e = check_compatible(&inspect_snapshot(&p).unwrap(), "3.5.21").unwrap_err();
        assert!(e.contains("from etcd 3.6"), "{e}");
    }

    #[test]
    fn refuses_what_is_not_a_snapshot() {
        let e = inspect_snapshot(&temp("d.tar.gz", &[0x1f, 0x8b, 8, 0, 0, 0])).unwrap_err();
        assert!(
            e.contains("is gzip-compressed, not an etcd snapshot"),
            "{e}"
        );
        let e =
            inspect_snapshot(&temp("e.db", b"hello, this is not a database at all")).unwrap_err();
        assert!(e.contains("is not an etcd v3 snapshot"), "{e}");
        let e = inspect_snapshot(&temp("f.db", b"")).unwrap_err();
        assert!(e.ends_with("is empty"), "{e}");
        let e = inspect_snapshot(Path::new("/nonexistent/snap.db")).unwrap_err();
        assert!(e.starts_with("cannot read /nonexistent/snap.db"), "{e}");
    }

    #[test]
    fn command_errors_are_short_and_printable() {
        let e = host::HostError::Command {
            cmd: "/opt/etcd/bin/etcdctl snapshot status /tmp/x.db --write-out json".into(),
            code: Some(1),
            stderr: "{\"level\":\"info\"}\nError: cannot get hash of bucket \0\0\n".into(),
        };
        assert_eq!(
            text(e),
            "`etcdctl snapshot status` failed: cannot get hash of bucket \\u{0}\\u{0}"
        );
        let e = host::HostError::Command {
            cmd: "cp -a /x /y".into(),
            code: Some(1),
            stderr: String::new(),
        };
        assert_eq!(text(e), "`cp -a` failed: exit code 1");
    }

    #[test]
    fn checksums_and_free_space_without_subprocesses() {
        let p = temp("abc", b"abc");
        assert_eq!(
            sha256(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(sha256(Path::new("/nonexistent/x"))
            .unwrap_err()
            .starts_with("cannot read"));
        assert!(free_bytes(&std::env::temp_dir()).is_some_and(|n| n > 0));
    }

    #[test]
    fn snapshot_status_json() {
        let s = parse_snapshot_status(
            r#"{"hash":3190311163,"revision":21,"totalKey":26,"totalSize":20480}"#,
        )
        .unwrap();
        assert_eq!((s.revision, s.total_keys, s.hash), (21, 26, 3190311163));
        assert_eq!(parse_snapshot_status("Error: bad"), None);
        assert_eq!(major_minor("v3.4.23"), Some((3, 4)));
        assert_eq!(major_minor("3.5"), None);
    }
}

/*!
The real machine ([`Host`]): commands (`systemctl`, `useradd`, `tar`, ...), atomic file writes,
the etcd user and the data dir. Juju hook tools are not run from here.
*/

use super::Machine;
use super::{install, InstallError};
use crate::clock::{Clock, SystemClock};
use crate::juju::Juju;
use crate::paths;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A machine command that could not be run or failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The command failed.
    #[error("`{cmd}` failed ({}): {}", code.map_or("not run".into(), |c| format!("exit code {c}")), stderr.trim())]
    Command {
        /// The command line.
        cmd: String,
        /// Exit code, if it ran.
        code: Option<i32>,
        /// Its stderr.
        stderr: String,
    },
    /// A file operation failed.
    #[error("cannot write {path}: {cause}")]
    Io {
        /// The path.
        path: String,
        /// The cause (a leaf: shown in the message, not chained as a source).
        cause: std::io::Error,
    },
}

/// Runs a command and returns its stdout.
/// Commands are looked up on PATH, then in the system directories (a hook's PATH may lack
/// `/usr/sbin`, where `useradd` lives).
pub fn run(cmd: &str, args: &[&str]) -> Result<String, HostError> {
    let out = output(cmd, args)?;
    if !out.status.success() {
        return Err(HostError::Command {
            cmd: format!("{cmd} {}", args.join(" ")),
            code: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command ([`run`]'s lookup) and returns what it printed and its exit status,
/// whatever that is.
fn output(cmd: &str, args: &[&str]) -> Result<std::process::Output, HostError> {
    let spawn = |program: &str| {
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
    };
    let mut result = spawn(cmd);
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        match &result {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !cmd.contains('/') => {
                result = spawn(&format!("{dir}/{cmd}"))
            }
            _ => break,
        }
    }
    result.map_err(|e| HostError::Command {
        cmd: format!("{cmd} {}", args.join(" ")),
        code: None,
        stderr: e.to_string(),
    })
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> HostError + '_ {
    move |cause| HostError::Io {
        path: path.display().to_string(),
        cause,
    }
}

/// Writes `content` to `path` atomically (temp file + rename) when it differs from what is
/// there; returns whether it wrote.
pub fn write_if_changed(path: &str, content: &str, mode: u32) -> Result<bool, HostError> {
    if read(path).as_deref() == Some(content) {
        return Ok(false);
    }
    write_atomic(Path::new(path), content, mode, None)?;
    Ok(true)
}

/// Writes `content` to a new temporary file beside `path`, created with its final `mode` in one
/// step (never wider, not even while being written) and, when given, its final owner, then
/// renames it over `path`: the file appears complete, with its mode and owner, or not at all.
fn write_atomic(
    path: &Path,
    content: &str,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<(), HostError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let tmp = PathBuf::from(format!("{}.charm-tmp", path.display()));
    // A hook killed mid-write may have left one behind; `create_new` then never follows a link.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&tmp)(e)),
        _ => {}
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    // The umask can only have narrowed the mode: widen it back to `mode` before any content.
    let created = f.metadata().map_err(io_err(&tmp))?.permissions().mode() & 0o7777;
    if created != mode {
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_err(&tmp))?;
    }
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).map_err(io_err(&tmp))?;
    }
    f.write_all(content.as_bytes()).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

/// Creates directory `dir` (and its parents) with `mode` for its last component in one step; an
/// existing one gets `mode` if it differs. Returns its metadata.
fn ensure_dir(dir: &Path, mode: u32) -> Result<fs::Metadata, HostError> {
    if !dir.is_dir() {
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        match fs::DirBuilder::new().mode(mode).create(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(io_err(dir)(e));
            }
            _ => {}
        }
    }
    let meta = fs::metadata(dir).map_err(io_err(dir))?;
    if meta.permissions().mode() & 0o7777 != mode {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(io_err(dir))?;
    }
    Ok(meta)
}

/// Reads a file, `None` when absent or unreadable.
pub fn read(path: &str) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// `systemctl <args>`.
pub fn systemctl(args: &[&str]) -> Result<(), HostError> {
    run("systemctl", args).map(drop)
}

/// True when the etcd service is active, activating (starting, or waiting to be started again
/// after it exited: its process may hold files older than those on disk), reloading or
/// refreshing. `is-active` exits 3 for `activating`: the state it prints decides.
pub fn service_active() -> bool {
    let state = output("systemctl", &["is-active", paths::SERVICE])
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    matches!(
        state.trim(),
        "active" | "activating" | "reloading" | "refreshing"
    )
}

/// The uid and gid of a user in `/etc/passwd`.
fn passwd_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = read("/etc/passwd")?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == user).then_some(())?;
        let (_, uid, gid) = (f.next()?, f.next()?, f.next()?);
        Some((uid.parse().ok()?, gid.parse().ok()?))
    })
}

/// The uid and gid of a user: `/etc/passwd` (no process spawned), else `id`.
pub fn user_ids(user: &str) -> Option<(u32, u32)> {
    passwd_ids(user).or_else(|| {
        let id = |flag| run("id", &[flag, user]).ok()?.trim().parse().ok();
        Some((id("-u")?, id("-g")?))
    })
}

/// Creates the `etcd` system user and etcd's directories (data dir mode 0700, owned by etcd).
/// Cheap when all is in place: nothing is spawned, modes and owners are set only when wrong.
pub fn ensure_user_and_dirs() -> Result<(), HostError> {
    let etcd = match user_ids("etcd") {
        Some(ids) => ids,
        None => {
            run(
                "useradd",
                &[
                    "--system",
                    "--user-group",
                    "--home-dir",
                    paths::ETCD_HOME,
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    "etcd",
                ],
            )?;
            user_ids("etcd").ok_or_else(|| HostError::Command {
                cmd: "id etcd".into(),
                code: None,
                stderr: "the etcd user was created but cannot be found".into(),
            })?
        }
    };
    for (dir, (uid, gid)) in [
        (paths::ETCD_HOME, etcd),
        (paths::DATA_DIR, etcd),
        (paths::STATE_DIR, (0, 0)),
    ] {
        let p = Path::new(dir);
        let meta = ensure_dir(p, 0o700)?;
        if (meta.uid(), meta.gid()) != (uid, gid) {
            std::os::unix::fs::chown(p, Some(uid), Some(gid)).map_err(io_err(p))?;
        }
    }
    Ok(())
}

/// Moves the data dir aside (kept as `data.removed-<UTC time>` beside it: on the volume when the
/// data dir is a link to it, where an empty one is made again). Earlier copies are kept too:
/// only an operator may decide that a member's old data no longer matters.
fn move_data_aside() -> Result<(), HostError> {
    let data = Path::new(paths::DATA_DIR);
    let real = fs::read_link(data).unwrap_or_else(|_| data.to_path_buf());
    if real.exists() {
        let aside = format!("{}.removed-{}", real.display(), stamp(now_secs()));
        fs::rename(&real, &aside).map_err(io_err(&real))?;
    }
    if real.as_path() != data {
        ensure_dir(&real, 0o700)?;
    }
    Ok(())
}

/// Puts the empty data dir on the `data` store's volume: the volume's root and data dir owned
/// by etcd (0700), and the data dir a link to it. A data dir that holds anything is never
/// replaced (`rmdir` refuses).
fn use_volume() -> Result<(), HostError> {
    ensure_user_and_dirs()?;
    let etcd = user_ids("etcd").unwrap_or((0, 0));
    for dir in [paths::VOLUME, paths::VOLUME_DATA_DIR] {
        let p = Path::new(dir);
        let meta = ensure_dir(p, 0o700)?;
        if (meta.uid(), meta.gid()) != etcd {
            std::os::unix::fs::chown(p, Some(etcd.0), Some(etcd.1)).map_err(io_err(p))?;
        }
    }
    let data = Path::new(paths::DATA_DIR);
    match fs::symlink_metadata(data) {
        Ok(m) if m.file_type().is_symlink() => fs::remove_file(data).map_err(io_err(data))?,
        Ok(_) => fs::remove_dir(data).map_err(io_err(data))?,
        Err(_) => {}
    }
    std::os::unix::fs::symlink(paths::VOLUME_DATA_DIR, data).map_err(io_err(data))
}

/// Gives the data dir's tree (behind its link: the volume's) and the volume's root to the local
/// etcd user where another uid or gid owns an entry; returns how many entries changed.
fn own_data_dir() -> Result<usize, HostError> {
    ensure_user_and_dirs()?;
    let etcd = user_ids("etcd").ok_or_else(|| HostError::Command {
        cmd: "id etcd".into(),
        code: None,
        stderr: "there is no etcd user".into(),
    })?;
    let data = Path::new(paths::DATA_DIR);
    let real = fs::read_link(data).unwrap_or_else(|_| data.to_path_buf());
    let volume = Path::new(paths::VOLUME);
    let mut changed = 0;
    if real.starts_with(volume) {
        changed += chown_if_other(volume, etcd)?;
    }
    Ok(changed + chown_tree(&real, etcd)?)
}

/// `lchown`s `path` to `(uid, gid)` when either differs; returns whether it did.
fn chown_if_other(path: &Path, (uid, gid): (u32, u32)) -> Result<usize, HostError> {
    let meta = fs::symlink_metadata(path).map_err(io_err(path))?;
    if (meta.uid(), meta.gid()) == (uid, gid) {
        return Ok(0);
    }
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(io_err(path))?;
    Ok(1)
}

/// Gives every entry of the tree at `root` to `owner` where it differs, links themselves
/// included and never followed (nothing outside the tree changes); returns how many changed.
pub fn chown_tree(root: &Path, owner: (u32, u32)) -> Result<usize, HostError> {
    let mut changed = 0;
    let mut todo = vec![root.to_path_buf()];
    while let Some(path) = todo.pop() {
        changed += chown_if_other(&path, owner)?;
        if fs::symlink_metadata(&path).map_err(io_err(&path))?.is_dir() {
            for entry in fs::read_dir(&path).map_err(io_err(&path))? {
                todo.push(entry.map_err(io_err(&path))?.path());
            }
        }
    }
    Ok(changed)
}

/// A UTC timestamp for file names: `20250131T235959Z`.
pub fn stamp(secs: u64) -> String {
    let t = i64::try_from(secs).ok();
    let t = t.and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok());
    let t = t.unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (y, m, d) = (t.year(), u8::from(t.month()), t.day());
    let (hh, mm, ss) = t.time().as_hms();
    format!("{y:04}{m:02}{d:02}T{hh:02}{mm:02}{ss:02}Z")
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Restarts etcd and waits, at most `timeout`, for systemd to see it ready: with `Type=notify`
/// that is once the member has rejoined a quorum. On timeout systemd carries on with the job.
pub fn restart_service(timeout: std::time::Duration) -> Result<(), HostError> {
    let secs = timeout.as_secs().max(1).to_string();
    run("timeout", &[&secs, "systemctl", "restart", paths::SERVICE]).map(drop)
}

/// Random hex token from the kernel's CSPRNG (ring's `SystemRandom`), else from the time and
/// the process id.
pub fn random_token() -> String {
    use ring::rand::SecureRandom;
    let mut buf = [0u8; 8];
    match ring::rand::SystemRandom::new().fill(&mut buf) {
        Ok(()) => buf.iter().map(|b| format!("{b:02x}")).collect(),
        Err(_) => format!("{:x}{:x}", now_secs(), std::process::id()),
    }
}

/// The machine's hostname.
pub fn hostname() -> Option<String> {
    read("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// Writes a file (atomically, when it differs) readable by root and, when `etcd_group`, by the
/// etcd group: mode 0640 root:etcd, else 0600 root:root, created with that mode and owner in one
/// step (see [`write_atomic`]), in a directory of mode 0750 root:etcd.
pub fn write_private(path: &str, content: &str, etcd_group: bool) -> Result<(), HostError> {
    let p = Path::new(path);
    let etcd_gid = user_ids("etcd").map(|(_, gid)| gid);
    let (mode, gid) = match etcd_group {
        true => (0o640, etcd_gid.unwrap_or(0)),
        false => (0o600, 0),
    };
    if let Some(dir) = p.parent() {
        let meta = ensure_dir(dir, 0o750)?;
        if (meta.uid(), Some(meta.gid())) != (0, etcd_gid) {
            std::os::unix::fs::chown(dir, Some(0), etcd_gid).map_err(io_err(dir))?;
        }
    }
    let same = fs::metadata(p)
        .is_ok_and(|m| (m.permissions().mode() & 0o7777, m.uid(), m.gid()) == (mode, 0, gid));
    if same && read(path).as_deref() == Some(content) {
        return Ok(());
    }
    write_atomic(p, content, mode, Some((0, gid)))
}

/// The real machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct Host;

impl Clock for Host {
    fn now(&self) -> std::time::Instant {
        SystemClock.now()
    }
    fn sleep(&self, d: std::time::Duration) {
        SystemClock.sleep(d)
    }
}

impl Machine for Host {
    fn read(&self, path: &str) -> Option<String> {
        read(path)
    }
    fn exists(&self, path: &str) -> bool {
        Path::new(path).exists()
    }
    fn write(&self, path: &str, content: &str, mode: u32) -> Result<bool, HostError> {
        write_if_changed(path, content, mode)
    }
    fn write_private(&self, path: &str, content: &str, etcd_group: bool) -> Result<(), HostError> {
        write_private(path, content, etcd_group)
    }
    fn remove(&self, path: &str) {
        let p = Path::new(path);
        let _ = match p.is_dir() {
            true => fs::remove_dir_all(p),
            false => fs::remove_file(p),
        };
    }
    fn systemctl(&self, args: &[&str]) -> Result<(), HostError> {
        systemctl(args)
    }
    fn service_active(&self) -> bool {
        service_active()
    }
    fn restart_service(&self, timeout: std::time::Duration) -> Result<(), HostError> {
        restart_service(timeout)
    }
    fn ensure_user_and_dirs(&self) -> Result<(), HostError> {
        ensure_user_and_dirs()
    }
    fn move_data_aside(&self) -> Result<(), HostError> {
        move_data_aside()
    }
    fn use_volume(&self) -> Result<(), HostError> {
        use_volume()
    }
    fn own_data_dir(&self) -> Result<usize, HostError> {
        own_data_dir()
    }
    fn read_link(&self, path: &str) -> Option<String> {
        Some(fs::read_link(path).ok()?.to_str()?.to_string())
    }
    fn install(
        &self,
        juju: &dyn Juju,
        installed: Option<&str>,
        known: &[&str],
    ) -> Result<String, InstallError> {
        install::install(self, juju, installed, known)
    }
    fn hostname(&self) -> Option<String> {
        hostname()
    }
    fn random_token(&self) -> String {
        random_token()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_printed_with_a_failing_exit_is_read() {
        // `systemctl is-active` prints `activating` and exits 3.
        let out = output("sh", &["-c", "echo activating; exit 3"]).unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "activating\n");
        assert!(matches!(
            run("sh", &["-c", "echo activating; exit 3"]),
            Err(HostError::Command { code: Some(3), .. })
        ));
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("etcd-charm-host-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn mode_of(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn files_get_their_final_mode_and_never_follow_a_planted_link() {
        let dir = scratch("write");
        let key = dir.join("tls/server.key");
        let path = key.to_str().unwrap();
        assert!(write_if_changed(path, "one", 0o600).unwrap());
        assert_eq!(mode_of(&key), 0o600);
        assert!(!write_if_changed(path, "one", 0o600).unwrap());
        // A leftover temporary file that is a link elsewhere is replaced, not written through.
        let elsewhere = dir.join("elsewhere");
        fs::write(&elsewhere, "untouched").unwrap();
        std::os::unix::fs::symlink(&elsewhere, format!("{path}.charm-tmp")).unwrap();
        assert!(write_if_changed(path, "two", 0o640).unwrap());
        assert_eq!(fs::read_to_string(&key).unwrap(), "two");
        assert_eq!(mode_of(&key), 0o640);
        assert_eq!(fs::read_to_string(&elsewhere).unwrap(), "untouched");
        assert!(!Path::new(&format!("{path}.charm-tmp")).exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_tree_is_given_to_its_owner_without_following_links() {
        let dir = scratch("chown");
        let tree = dir.join("data");
        let snap = tree.join("member/snap");
        fs::create_dir_all(&snap).unwrap();
        fs::write(snap.join("db"), "kept").unwrap();
        let outside = dir.join("outside");
        fs::write(&outside, "untouched").unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("member/link")).unwrap();
        let owner = |p: &Path| {
            let m = fs::symlink_metadata(p).unwrap();
            (m.uid(), m.gid())
        };
        let me = owner(&tree);
        // Already its owner's: nothing changes (this much runs unprivileged).
        assert_eq!(chown_tree(&tree, me).unwrap(), 0);
        // Giving files to another user needs root.
        if me.0 == 0 {
            let other = (4242, 4343);
            assert_eq!(chown_tree(&tree, other).unwrap(), 5);
            let entries = ["", "member", "member/snap", "member/snap/db", "member/link"];
            for entry in entries {
                assert_eq!(owner(&tree.join(entry)), other, "{entry}");
            }
            assert_eq!(owner(&outside), me, "a link is not followed");
            assert_eq!(chown_tree(&tree, other).unwrap(), 0);
        }
        assert_eq!(fs::read_to_string(snap.join("db")).unwrap(), "kept");
        assert_eq!(fs::read_to_string(&outside).unwrap(), "untouched");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn directories_are_made_with_their_mode() {
        let dir = scratch("dirs");
        let made = dir.join("a/b");
        ensure_dir(&made, 0o750).unwrap();
        assert_eq!(mode_of(&made), 0o750);
        fs::set_permissions(&made, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_dir(&made, 0o750).unwrap();
        assert_eq!(mode_of(&made), 0o750);
        fs::remove_dir_all(&dir).unwrap();
    }
}

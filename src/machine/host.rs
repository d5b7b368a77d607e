/*!
The machine side: commands (`systemctl`, `useradd`, `tar`, ...), atomic file writes, the data
dir and the charm's small local state. Juju hook tools are not run from here.
*/

use crate::paths;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
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
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Runs a command and returns its stdout.
/// Commands are looked up on PATH, then in the system directories (a hook's PATH may lack
/// `/usr/sbin`, where `useradd` lives).
pub fn run(cmd: &str, args: &[&str]) -> Result<String, HostError> {
    let line = format!("{cmd} {}", args.join(" "));
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
    let out = result.map_err(|e| HostError::Command {
        cmd: line.clone(),
        code: None,
        stderr: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(HostError::Command {
            cmd: line,
            code: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> HostError + '_ {
    move |source| HostError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `content` to `path` atomically (temp file + rename) when it differs from what is
/// there; returns whether it wrote.
pub fn write_if_changed(path: &str, content: &str, mode: u32) -> Result<bool, HostError> {
    let p = Path::new(path);
    if fs::read_to_string(p).ok().as_deref() == Some(content) {
        return Ok(false);
    }
    if let Some(dir) = p.parent() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let tmp = format!("{path}.charm-tmp");
    let tmp_path = Path::new(&tmp);
    let mut f = fs::File::create(tmp_path).map_err(io_err(tmp_path))?;
    // Mode first: a key is never readable by others, not even while being written.
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_err(tmp_path))?;
    f.write_all(content.as_bytes()).map_err(io_err(tmp_path))?;
    f.sync_all().map_err(io_err(tmp_path))?;
    fs::rename(tmp_path, p).map_err(io_err(p))?;
    Ok(true)
}

/// Reads a file, `None` when absent or unreadable.
pub fn read(path: &str) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// `systemctl <args>`.
pub fn systemctl(args: &[&str]) -> Result<(), HostError> {
    run("systemctl", args).map(drop)
}

/// True when the etcd service is active (or activating).
pub fn service_active() -> bool {
    let state = run("systemctl", &["is-active", paths::SERVICE]).unwrap_or_else(|e| match e {
        HostError::Command { .. } => String::new(),
        HostError::Io { .. } => String::new(),
    });
    matches!(state.trim(), "active" | "activating" | "reloading")
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
fn user_ids(user: &str) -> Option<(u32, u32)> {
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
        fs::create_dir_all(p).map_err(io_err(p))?;
        let meta = fs::metadata(p).map_err(io_err(p))?;
        if meta.permissions().mode() & 0o7777 != 0o700 {
            fs::set_permissions(p, fs::Permissions::from_mode(0o700)).map_err(io_err(p))?;
        }
        if (meta.uid(), meta.gid()) != (uid, gid) {
            std::os::unix::fs::chown(p, Some(uid), Some(gid)).map_err(io_err(p))?;
        }
    }
    Ok(())
}

/// True when the data dir holds a member (etcd's `member/` directory).
pub fn has_member_data() -> bool {
    Path::new(paths::DATA_DIR).join("member").is_dir()
}

/// Moves the data dir of a removed member aside (kept as `data.removed-<id>`) so it can
/// rejoin with an empty one; a live member's data dir is never touched (the plan checks).
pub fn wipe_data_dir() -> Result<(), HostError> {
    let data = Path::new(paths::DATA_DIR);
    if data.exists() {
        let aside = format!("{}.removed-{}", paths::DATA_DIR, now_secs());
        fs::rename(data, &aside).map_err(io_err(data))?;
        // Keep only the newest copy: older ones are of no use.
        if let Ok(entries) = fs::read_dir(paths::ETCD_HOME) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("data.removed-") && e.path().to_string_lossy() != aside {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
    }
    forget_member_id();
    ensure_user_and_dirs()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn state_file(name: &str) -> String {
    format!("{}/{name}", paths::STATE_DIR)
}

/// The member id recorded for the current data dir.
pub fn recorded_member_id() -> Option<u64> {
    u64::from_str_radix(read(&state_file("member-id"))?.trim(), 16).ok()
}

/// Records the member id the data dir belongs to.
pub fn record_member_id(id: u64) -> Result<(), HostError> {
    write_if_changed(&state_file("member-id"), &format!("{id:x}\n"), 0o600).map(drop)
}

/// Forgets the recorded member id.
pub fn forget_member_id() {
    let _ = fs::remove_file(state_file("member-id"));
}

/// True when a restart was begun (files written) and not seen through.
pub fn restart_pending() -> bool {
    Path::new(&state_file("restart-pending")).exists()
}

/// Marks a restart as begun, before the files it applies are written: a hook that dies before
/// etcd has restarted leaves the mark, and the next one restarts etcd.
pub fn mark_restart_pending() -> Result<(), HostError> {
    write_if_changed(&state_file("restart-pending"), "1\n", 0o600).map(drop)
}

/// Clears the mark once the restart has been done.
pub fn clear_restart_pending() {
    let _ = fs::remove_file(state_file("restart-pending"));
}

/// Restarts etcd and waits, at most `timeout`, for systemd to see it ready: with `Type=notify`
/// that is once the member has rejoined a quorum. On timeout systemd carries on with the job.
pub fn restart_service(timeout: std::time::Duration) -> Result<(), HostError> {
    let secs = timeout.as_secs().max(1).to_string();
    run("timeout", &[&secs, "systemctl", "restart", paths::SERVICE]).map(drop)
}

/// The workload status this charm set last (`<state>\n<message>`), as recorded.
pub fn last_status() -> Option<String> {
    read(&state_file("status"))
}

/// Records the workload status just set (not after the `remove` hook has cleaned up).
pub fn record_status(status: &str) {
    if Path::new(paths::STATE_DIR).is_dir() {
        let _ = write_if_changed(&state_file("status"), status, 0o600);
    }
}

/// Forgets the recorded status (a status set another way follows).
pub fn forget_status() {
    let _ = fs::remove_file(state_file("status"));
}

/// True once this unit has started leaving the cluster.
pub fn departing() -> bool {
    Path::new(&state_file("departing")).exists()
}

/// Marks this unit as leaving: later hooks never rejoin it.
pub fn mark_departing() -> Result<(), HostError> {
    write_if_changed(&state_file("departing"), "1\n", 0o600).map(drop)
}

/// The installed etcd version (cached at install time).
pub fn installed_version() -> Option<String> {
    if !Path::new(paths::ETCD_LINK).exists() {
        return None;
    }
    read(&state_file("etcd-version"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Records the installed etcd version.
pub fn record_version(version: &str) -> Result<(), HostError> {
    write_if_changed(&state_file("etcd-version"), &format!("{version}\n"), 0o644).map(drop)
}

/// The refusal of the last `etcd` resource attached, while it stands.
pub fn refused_resource() -> Option<crate::core::version::Refusal> {
    serde_json::from_str(&read(&state_file("resource-refused"))?).ok()
}

/// Records why the attached `etcd` resource was not installed (`None`: forgets it).
pub fn record_refusal(refusal: Option<&crate::core::version::Refusal>) -> Result<(), HostError> {
    let path = state_file("resource-refused");
    match refusal.and_then(|r| serde_json::to_string(r).ok()) {
        Some(json) => write_if_changed(&path, &format!("{json}\n"), 0o600).map(drop),
        None => {
            let _ = fs::remove_file(path);
            Ok(())
        }
    }
}

/// The real `etcdctl` the wrapper runs.
pub fn real_etcdctl() -> String {
    let ours = format!("{}/etcdctl", paths::BIN_DIR);
    match Path::new(&ours).exists() {
        true => ours,
        false => "/usr/bin/etcdctl".into(),
    }
}

/// Random hex token from the kernel's CSPRNG.
pub fn random_token() -> String {
    let mut buf = [0u8; 8];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut buf);
    }
    let token: String = buf.iter().map(|b| format!("{b:02x}")).collect();
    // Falls back to time and pid if /dev/urandom was unreadable.
    match token.as_str() {
        "0000000000000000" => format!("{:x}{:x}", now_secs(), std::process::id()),
        _ => token,
    }
}

/// The machine's hostname.
pub fn hostname() -> Option<String> {
    read("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// What this member's TLS files were made from, as recorded once written; `None` when a file is
/// missing (they are made again).
pub fn tls_record() -> Option<String> {
    let files = [
        paths::TLS_CA,
        paths::TLS_CERT,
        paths::TLS_KEY,
        paths::TLS_CLIENT_CERT,
        paths::TLS_CLIENT_KEY,
    ];
    match files.iter().all(|f| Path::new(f).is_file()) {
        true => read(&state_file("tls-record")),
        false => None,
    }
}

/// Records what the TLS files were made from (written last, once they are all in place).
pub fn record_tls(record: &str) -> Result<(), HostError> {
    write_if_changed(&state_file("tls-record"), record, 0o600).map(drop)
}

/// Forgets the TLS record (written first, before the files change).
pub fn forget_tls() {
    let _ = fs::remove_file(state_file("tls-record"));
}

/// Writes a file (atomically, when it differs) readable by root and, when `etcd_group`, by the
/// etcd group: mode 0640 root:etcd, else 0600 root:root.
pub fn write_private(path: &str, content: &str, etcd_group: bool) -> Result<(), HostError> {
    let p = Path::new(path);
    let (mode, gid) = match etcd_group {
        true => (0o640, user_ids("etcd").map(|(_, gid)| gid)),
        false => (0o600, Some(0)),
    };
    if let Some(dir) = p.parent() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o750)).map_err(io_err(dir))?;
        std::os::unix::fs::chown(dir, Some(0), user_ids("etcd").map(|(_, g)| g))
            .map_err(io_err(dir))?;
    }
    write_if_changed(path, content, mode)?;
    std::os::unix::fs::chown(p, Some(0), gid).map_err(io_err(p))?;
    Ok(())
}

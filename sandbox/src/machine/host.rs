//! Host helpers: running commands, reading `/proc`, mounts and safe removal.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` to completion and returns its stdout; a failure names the command and its stderr.
pub fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let shown = show(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{shown}`: is it installed and on PATH?"))?;
    if !out.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` and reports only whether it succeeded (for "is it there?" probes and best-effort undo).
pub fn run_ok(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The command line as an operator would type it.
pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Every pid currently in `/proc`.
pub fn pids() -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The short command name of `pid`.
pub fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_string())
}

/// The argv of `pid`.
pub fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The one-letter state of `pid` (`R`, `S`, `Z`, …) and its parent pid.
pub fn stat(pid: i32) -> Option<(char, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain spaces or parentheses.
    let rest = &s[s.rfind(')')? + 2..];
    let mut it = rest.split(' ');
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether `pid` exists and is not a zombie.
pub fn running(pid: i32) -> bool {
    pid > 0 && stat(pid).is_some_and(|(st, _)| st != 'Z' && st != 'X')
}

/// Direct children of `pid`, from the kernel's per-thread lists, else by scanning `/proc`.
pub fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
            }
        }
    }
    if out.is_empty() {
        out = pids()
            .into_iter()
            .filter(|&p| stat(p).is_some_and(|(_, pp)| pp == pid))
            .collect();
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The pid of `pid` as seen from inside its innermost pid namespace (last `NSpid` field).
pub fn inner_pid(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

/// Waits until none of `pids` is running, up to `timeout`; true if they all went.
pub fn wait_gone(pids: &[i32], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if pids.iter().all(|&p| !running(p)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One line of `/proc/self/mountinfo`: where it is mounted and the filesystem type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Mount point.
    pub point: PathBuf,
    /// Filesystem type (`overlay`, `proc`, …).
    pub fstype: String,
    /// Superblock options (e.g. `rw,name=systemd` for the v1 systemd cgroup hierarchy).
    pub options: String,
}

/// Parses mountinfo text (octal escapes such as `\040` for a space are decoded).
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|&x| x == "-")?;
            Some(Mount {
                point: PathBuf::from(unescape(f.get(4)?)),
                fstype: f.get(sep + 1)?.to_string(),
                options: f.get(sep + 3).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mounts of the host (this process's mount namespace) or, with a pid, of that process.
pub fn mounts(pid: Option<i32>) -> Vec<Mount> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/mountinfo"),
        None => "/proc/self/mountinfo".to_string(),
    };
    parse_mountinfo(&std::fs::read_to_string(path).unwrap_or_default())
}

/// The mount at exactly `point`, if any (the topmost one when stacked).
pub fn mount_at(point: &Path) -> Option<Mount> {
    mounts(None).into_iter().rev().find(|m| m.point == point)
}

/// Unmounts everything at or under `dir`, deepest first, lazily when busy.
pub fn unmount_under(dir: &Path) -> anyhow::Result<()> {
    for _round in 0..3 {
        let mut under: Vec<PathBuf> = mounts(None)
            .into_iter()
            .map(|m| m.point)
            .filter(|p| p.starts_with(dir))
            .collect();
        if under.is_empty() {
            return Ok(());
        }
        under.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for p in under {
            if !run_ok(Command::new("umount").arg(&p)) {
                let _ = run_ok(Command::new("umount").arg("-l").arg(&p));
            }
        }
    }
    let left: Vec<String> = mounts(None)
        .into_iter()
        .filter(|m| m.point.starts_with(dir))
        .map(|m| m.point.display().to_string())
        .collect();
    if left.is_empty() {
        Ok(())
    } else {
        bail!(
            "cannot unmount {}: still mounted; try `umount -l` on each by hand",
            left.join(", ")
        )
    }
}

/// Removes a directory tree without crossing into other filesystems (so a leftover mount of
/// `/proc` or a bind of a host directory is never emptied). Missing is fine.
pub fn remove_tree(dir: &Path) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(dir).is_err() {
        return Ok(());
    }
    unmount_under(dir)?;
    run(Command::new("rm")
        .arg("-rf")
        .arg("--one-file-system")
        .arg("--")
        .arg(dir))
    .with_context(|| format!("cannot remove {}", dir.display()))?;
    Ok(())
}

/// The last `max` bytes of a log file, as text (for error messages).
pub fn tail(path: &Path, max: usize) -> String {
    tail_from(path, 0, max)
}

/// The last `max` bytes of a log file written after its first `from` bytes.
pub fn tail_from(path: &Path, from: u64, max: usize) -> String {
    let b = std::fs::read(path).unwrap_or_default();
    let from = usize::try_from(from).unwrap_or(usize::MAX).min(b.len());
    let s = &b[from.max(b.len().saturating_sub(max))..];
    String::from_utf8_lossy(s).trim().to_string()
}

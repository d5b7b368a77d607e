//! One cgroup per machine, in the hierarchies where systemd tracks processes.
//!
//! `systemd-nspawn --keep-unit` nests the container's cgroups (`payload/`, `supervisor/`) below
//! the cgroup it starts in. Started from the same cgroup, every machine would share
//! `payload/system.slice/<unit>`: machine A's systemd would see machine B's processes in its
//! units (`Failed to dump process list … Input/output error`) and could wait on or kill them.
//! So each nspawn is started in `etcd-sandbox/<machine netns name>` of the cgroup v2 hierarchy
//! and of the v1 `name=systemd` one (whichever exist). Resource controllers are left alone.

use super::host;
use anyhow::{bail, Context};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Directory of all sandbox machine cgroups, at the top of each hierarchy.
const BASE: &str = "etcd-sandbox";

/// Mount points of the hierarchies systemd uses to track processes.
fn hierarchies() -> Vec<PathBuf> {
    let mounts = host::mounts(None);
    let mut out = Vec::new();
    if let Some(m) = mounts.iter().find(|m| m.fstype == "cgroup2") {
        out.push(m.point.clone());
    }
    if let Some(m) = mounts
        .iter()
        .find(|m| m.fstype == "cgroup" && m.options.split(',').any(|o| o == "name=systemd"))
    {
        out.push(m.point.clone());
    }
    out
}

/// Creates the cgroups of machine `name` (removing a previous boot's leftovers first, when
/// they are already empty) and returns their `cgroup.procs` files.
pub fn prepare(name: &str) -> anyhow::Result<Vec<CString>> {
    // A stale tree that cannot go yet (a dead process not reaped) is harmless: reuse it.
    let _ = remove(name);
    let mut procs = Vec::new();
    for h in hierarchies() {
        let dir = h.join(BASE).join(name);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create cgroup {}: are you root?", dir.display()))?;
        procs.push(CString::new(
            dir.join("cgroup.procs").as_os_str().as_bytes(),
        )?);
    }
    Ok(procs)
}

/// Removes the cgroups of machine `name` (waiting a little for dying processes to leave them).
pub fn remove(name: &str) -> anyhow::Result<()> {
    for h in hierarchies() {
        let dir = h.join(BASE).join(name);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match remove_tree(&dir) {
                Ok(()) => break,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => bail!(
                    "cannot remove cgroup {}: {e} (processes still in it? see {}/cgroup.procs)",
                    dir.display(),
                    dir.display()
                ),
            }
        }
    }
    Ok(())
}

/// Names of every machine cgroup (for the sweeper).
pub fn names() -> Vec<String> {
    let mut out: Vec<String> = hierarchies()
        .into_iter()
        .filter_map(|h| std::fs::read_dir(h.join(BASE)).ok())
        .flat_map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// rmdir of a cgroup and its children, deepest first (their files are virtual and go with them).
fn remove_tree(dir: &Path) -> std::io::Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&e.path())?;
        }
    }
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

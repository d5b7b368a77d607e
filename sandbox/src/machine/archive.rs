//! The package archive: a flat apt repository of the packages machines may install (at least
//! `etcd-server` and `etcd-client`) with every dependency the machine image lacks, downloaded once
//! by the host's own apt and bound read-only into each machine. A machine's apt has this archive
//! as its only source (`file:`), so `apt-get update && apt-get install` works with no network.
//!
//! Cache layout (under `$SANDBOX_CACHE`, default `/var/cache/etcd-sandbox`):
//!
//! ```text
//! archive/<key>/            the .debs and their `Packages` index (never written once in place)
//! archive/<key>.json        what was asked for and what was resolved
//! archive/<key>.log         apt's output of the last build
//! archive/<key>.lock        flock taken while building
//! archive/<key>.build-<pid> a build in progress
//! ```
//!
//! The key follows the packages asked for and the exact files the host's apt resolves for the
//! machine image (names, candidate versions, architectures), so a new candidate on the host
//! makes a new archive.

use super::host;
use super::rootfs::build_once;
use anyhow::{bail, Context};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Bumped whenever the archive's layout changes, so old caches are not reused.
const FORMAT: u32 = 1;

/// The packages the archive serves (with their dependencies).
pub const PACKAGES: &[&str] = &["etcd-server", "etcd-client"];

/// Where the archive appears inside a machine (read-only).
pub const MOUNT: &str = "/var/lib/sandbox-archive";

/// The machine's apt sources, as (path, content): the archive, and nothing else (with no
/// archive, no source at all, so `apt-get update` fails at once instead of timing out).
pub fn sources(archive: bool) -> Vec<(&'static str, String)> {
    let mut files = vec![(
        "/etc/apt/sources.list",
        "# Sandbox machines have no network: apt's only source is the sandbox's package\n\
         # archive (sources.list.d/sandbox-archive.list).\n"
            .to_string(),
    )];
    if archive {
        files.push((
            "/etc/apt/sources.list.d/sandbox-archive.list",
            format!("deb [trusted=yes] file:{MOUNT} ./\n"),
        ));
    }
    files
}

/// One package file, as apt names it (`<package>_<version>_<arch>.deb`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Deb {
    /// Package name.
    pub package: String,
    /// Version, with its epoch if any.
    pub version: String,
    /// Architecture, e.g. `amd64` or `all`.
    pub arch: String,
}

impl Deb {
    /// `package=version`, as `apt-get download` takes it.
    pub fn pin(&self) -> String {
        format!("{}={}", self.package, self.version)
    }
}

/// The files `apt-get install --print-uris` would download, from its output
/// (`'<uri>' <file> <size> <hash>` per line; an epoch's `:` is `%3a` in the file name).
pub fn parse_print_uris(out: &str) -> anyhow::Result<Vec<Deb>> {
    let mut debs = vec![];
    for line in out.lines().filter(|l| l.starts_with('\'')) {
        let file = line.split_whitespace().nth(1).unwrap_or("");
        let parts: Vec<&str> = file.trim_end_matches(".deb").split('_').collect();
        let [package, version, arch] = parts[..] else {
            bail!("cannot read the package file name in apt's line `{line}`");
        };
        debs.push(Deb {
            package: package.into(),
            version: version.replace("%3a", ":"),
            arch: arch.into(),
        });
    }
    debs.sort();
    Ok(debs)
}

/// Short hex of sha256 over the packages asked for and the files resolved for them.
pub fn key(packages: &[&str], debs: &[Deb]) -> String {
    let mut asked: Vec<&str> = packages.to_vec();
    asked.sort();
    let mut text = format!("format={FORMAT}\npackages={}\n", asked.join(","));
    for d in debs {
        text.push_str(&format!("{}={}:{}\n", d.package, d.version, d.arch));
    }
    let digest = Sha256::digest(text.as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// What the host's apt would download to install `packages` on the machine image `rootfs`
/// (its dpkg status, the host's package lists), without recommends, as the charm installs.
fn resolve(cache: &Path, rootfs: &Path, packages: &[&str]) -> anyhow::Result<Vec<Deb>> {
    // An empty download dir, so files the host has cached are listed too.
    let empty = cache.join(format!("archive/resolve-{}", std::process::id()));
    std::fs::create_dir_all(empty.join("partial"))?;
    let status = rootfs.join("var/lib/dpkg/status");
    let print_uris = || {
        let mut cmd = Command::new("apt-get");
        cmd.arg("-o")
            .arg(format!("Dir::State::status={}", status.display()))
            .arg("-o")
            .arg(format!("Dir::Cache::archives={}", empty.display()))
            .args(["-o", "Debug::NoLocking=1", "-qq", "--print-uris"])
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages);
        host::run(&mut cmd)
    };
    let out = print_uris().or_else(|_| {
        // The host's package lists may be missing or stale: refresh them once.
        host::run(Command::new("apt-get").args(["update", "-qq"]))?;
        print_uris()
    });
    let _ = std::fs::remove_dir_all(&empty);
    let out = out.with_context(|| {
        format!(
            "the host's apt cannot resolve {} for the machines: check that the host's apt \
             sources serve them (`apt-cache policy {}`)",
            packages.join(" "),
            packages.join(" ")
        )
    })?;
    parse_print_uris(&out)
}

/// Returns the cached archive for `packages` on the machine image `rootfs`, building it once
/// with the host's apt if missing.
pub fn ensure_archive(
    rootfs: &Path,
    packages: &[&str],
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<PathBuf> {
    let cache = super::cache_root();
    let debs = resolve(&cache, rootfs, packages)?;
    let key = key(packages, &debs);
    let dir = cache.join("archive");
    let what = format!("package archive {key}");
    build_once(
        &dir,
        &key,
        &what,
        progress,
        &mut |build, _lock, progress| {
            progress(&format!(
                "building the package archive {key} ({} files, first run only)…",
                debs.len()
            ));
            download(build, &debs, &dir.join(format!("{key}.log")))?;
            index(build)?;
            Ok(serde_json::json!({ "packages": packages, "debs": debs }))
        },
    )
}

/// `apt-get download`s `debs` into `dir`.
fn download(dir: &Path, debs: &[Deb], log: &Path) -> anyhow::Result<()> {
    if debs.is_empty() {
        return Ok(());
    }
    let out =
        std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let status = Command::new("apt-get")
        // Root writes the files: `_apt` may not enter the cache.
        .args(["-o", "APT::Sandbox::User=root", "-q", "download"])
        .args(debs.iter().map(Deb::pin))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone()?))
        .stderr(Stdio::from(out))
        .status()
        .context("cannot run apt-get")?;
    if !status.success() {
        bail!(
            "the host's apt could not download the machines' packages ({status}); full log in {}; \
             check the host's apt sources are reachable. Last lines:\n{}",
            log.display(),
            host::tail(log, 1500)
        );
    }
    Ok(())
}

/// Writes the `Packages` index of the flat repository `dir`, everything world-readable (a
/// machine's apt reads it as `_apt`).
fn index(dir: &Path) -> anyhow::Result<()> {
    let mut cmd = Command::new("dpkg-scanpackages");
    cmd.args(["--multiversion", ".", "/dev/null"])
        .current_dir(dir)
        .stderr(Stdio::piped());
    let packages = host::run(&mut cmd).context(
        "cannot index the package archive: install dpkg-dev (`apt-get install dpkg-dev`)",
    )?;
    std::fs::write(dir.join("Packages"), packages)?;
    for e in std::fs::read_dir(dir)?.flatten() {
        std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o644))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

//! The shared root filesystem: debootstrapped once per recipe, cached, then used read-only as the
//! lower layer of every machine's overlay.
//!
//! Cache layout (under `$SANDBOX_CACHE`, default `/var/cache/etcd-sandbox`):
//!
//! ```text
//! rootfs/<key>/            the finished rootfs (never written once renamed into place)
//! rootfs/<key>.json        the recipe it was built from, and how long the build took
//! rootfs/<key>.log         debootstrap's output of the last build
//! rootfs/<key>.lock        flock taken while building
//! rootfs/<key>.build-<pid> a build in progress (removed on failure or by the next builder)
//! debs/                    debootstrap's package cache, shared by all recipes
//! ```

use super::host;
use super::sys;
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Bumped whenever the post-debootstrap steps below change, so old caches are not reused.
const FORMAT: u32 = 1;

/// Default cache root when `SANDBOX_CACHE` is not set.
pub const DEFAULT_CACHE: &str = "/var/cache/etcd-sandbox";

/// Units masked in the rootfs because they cannot work, or only slow the boot, in a container.
const MASKED: &[&str] = &[
    "systemd-networkd-wait-online.service",
    "console-getty.service",
    "getty@tty1.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
];

/// Recipe of the rootfs (suite, variant, package list, mirror); its hash keys the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootfsRecipe {
    /// Debian suite, e.g. `bookworm`.
    pub suite: String,
    /// debootstrap variant, e.g. `minbase`.
    pub variant: String,
    /// Packages added with `--include`.
    pub include: Vec<String>,
    /// Units masked after the bootstrap (linked to `/dev/null`).
    pub mask: Vec<String>,
    /// Debian mirror URL; not part of the key (it says where packages come from, not what they are).
    pub mirror: String,
}

impl Default for RootfsRecipe {
    fn default() -> Self {
        RootfsRecipe {
            suite: "bookworm".into(),
            variant: "minbase".into(),
            include: [
                "systemd",
                "systemd-sysv",
                "dbus",
                "iproute2",
                "ca-certificates",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(extra_packages(
                std::env::var(EXTRA_PACKAGES).ok().as_deref(),
            ))
            .collect(),
            mask: MASKED.iter().map(|s| s.to_string()).collect(),
            mirror: default_mirror(),
        }
    }
}

/// Packages added to the default recipe, comma separated (e.g. `python3` for the benchmark's
/// ops charm): another recipe, so another cache entry; the default image stays as it is.
pub const EXTRA_PACKAGES: &str = "SANDBOX_EXTRA_PACKAGES";

/// The well-formed Debian package names of an [`EXTRA_PACKAGES`] value; others are dropped.
pub(super) fn extra_packages(value: Option<&str>) -> Vec<String> {
    let name = |p: &&str| {
        let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c);
        p.len() > 1 && p.starts_with(|c: char| c.is_ascii_alphanumeric()) && p.chars().all(ok)
    };
    let words = value.unwrap_or("").split(',').map(str::trim);
    words.filter(name).map(str::to_string).collect()
}

/// Where Debian packages come from: `$SANDBOX_DEBIAN_MIRROR`, else the Debian mirror the
/// host's own apt uses (a host behind a local mirror needs nothing more), else deb.debian.org.
pub fn default_mirror() -> String {
    if let Some(m) = std::env::var("SANDBOX_DEBIAN_MIRROR")
        .ok()
        .filter(|m| !m.is_empty())
    {
        return m;
    }
    let mut sources = vec![];
    for path in ["/etc/apt/sources.list".into()].into_iter().chain(
        std::fs::read_dir("/etc/apt/sources.list.d")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path()),
    ) {
        let path: PathBuf = path;
        let name = path.to_string_lossy().into_owned();
        if name.ends_with(".list") || name.ends_with(".sources") {
            if let Ok(text) = std::fs::read_to_string(&path) {
                sources.push((name, text));
            }
        }
    }
    debian_mirror_in(&sources).unwrap_or_else(|| "http://deb.debian.org/debian".into())
}

/// Debian's release names, as suites (not `-security`, `-updates` or `-backports`).
const DEBIAN_SUITES: &[&str] = &[
    "buster",
    "bullseye",
    "bookworm",
    "trixie",
    "forky",
    "sid",
    "oldstable",
    "stable",
    "testing",
    "unstable",
];

/// The first `deb` source among apt's `(file name, text)` (one-line `.list` or deb822
/// `.sources`) that serves a Debian release's `main`; an Ubuntu host has none.
pub fn debian_mirror_in(sources: &[(String, String)]) -> Option<String> {
    let serves = |uri: &str, suites: &[&str], components: &[&str]| {
        (uri.starts_with("http://") || uri.starts_with("https://") || uri.starts_with("file:/"))
            && suites.iter().any(|s| DEBIAN_SUITES.contains(s))
            && components.contains(&"main")
    };
    for (name, text) in sources {
        if name.ends_with(".sources") {
            for stanza in text.split("\n\n") {
                let field = |f: &str| -> Vec<&str> {
                    stanza
                        .lines()
                        .find_map(|l| l.strip_prefix(f)?.strip_prefix(':'))
                        .map(|v| v.split_whitespace().collect())
                        .unwrap_or_default()
                };
                let enabled = field("Enabled") != ["no"];
                if enabled && field("Types").contains(&"deb") {
                    let (suites, components) = (field("Suites"), field("Components"));
                    if let Some(uri) = field("URIs")
                        .into_iter()
                        .find(|u| serves(u, &suites, &components))
                    {
                        return Some(uri.trim_end_matches('/').to_string());
                    }
                }
            }
            continue;
        }
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words: Vec<&str> = vec![];
            let mut in_options = false;
            for w in line.split_whitespace() {
                // `[arch=amd64 signed-by=…]` options, maybe several words.
                if w.starts_with('[') {
                    in_options = true;
                }
                if !in_options {
                    words.push(w);
                }
                if w.ends_with(']') {
                    in_options = false;
                }
            }
            if let ["deb", uri, suite, components @ ..] = &words[..] {
                if serves(uri, &[suite], components) {
                    return Some(uri.trim_end_matches('/').to_string());
                }
            }
        }
    }
    None
}

/// The HTTP proxy the host's apt uses (`Acquire::http::Proxy`), for debootstrap when the
/// environment names none.
fn apt_http_proxy() -> Option<String> {
    let out = Command::new("apt-config")
        .args(["shell", "PROXY", "Acquire::http::Proxy"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let value = text.trim().strip_prefix("PROXY=")?.trim_matches('\'');
    (!value.is_empty()).then(|| value.to_string())
}

impl RootfsRecipe {
    /// Short hex of sha256 over what ends up in the rootfs (suite, variant, sorted packages and
    /// masks, and the version of the post-bootstrap steps); the mirror is left out on purpose.
    pub fn key(&self) -> String {
        let mut include = self.include.clone();
        include.sort();
        include.dedup();
        let mut mask = self.mask.clone();
        mask.sort();
        mask.dedup();
        let text = format!(
            "format={FORMAT}\nsuite={}\nvariant={}\ninclude={}\nmask={}\n",
            self.suite,
            self.variant,
            include.join(","),
            mask.join(",")
        );
        let digest = Sha256::digest(text.as_bytes());
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The cache root: `$SANDBOX_CACHE`, else `/var/cache/etcd-sandbox`.
pub fn cache_root() -> PathBuf {
    std::env::var_os("SANDBOX_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| DEFAULT_CACHE.into())
}

/// Returns the cached rootfs dir, building it once with debootstrap if missing.
///
/// The build goes into `rootfs/<key>.build-<pid>` and is renamed into place only when complete,
/// under an exclusive lock on `rootfs/<key>.lock`, so a killed build never leaves a half cache and
/// two processes never build at once. `progress` receives human-readable lines.
pub fn ensure_rootfs(
    recipe: &RootfsRecipe,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<PathBuf> {
    ensure_rootfs_in(&cache_root(), recipe, progress)
}

/// [`ensure_rootfs`] with an explicit cache root.
pub fn ensure_rootfs_in(
    cache: &Path,
    recipe: &RootfsRecipe,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<PathBuf> {
    let key = recipe.key();
    let what = format!("rootfs {key}");
    build_once(
        &cache.join("rootfs"),
        &key,
        &what,
        progress,
        &mut |build, lock, progress| {
            progress(&format!(
                "building rootfs {key} ({} {}, first run only, ~1 min) from {}…",
                recipe.suite, recipe.variant, recipe.mirror
            ));
            let log = cache.join("rootfs").join(format!("{key}.log"));
            debootstrap(cache, recipe, build, &log, lock)?;
            finish(build, recipe)?;
            Ok(serde_json::json!({ "recipe": recipe, "key": key }))
        },
    )
}

/// One cache entry's build: fills the given dir (it gets the lock file, to hand on to child
/// processes, and the progress sink) and returns metadata for the entry's `.json`.
pub(super) type BuildStep<'a> = dyn FnMut(&Path, &std::fs::File, &mut dyn FnMut(&str)) -> anyhow::Result<serde_json::Value>
    + 'a;

/// Builds `dir/<key>` once: `build` fills `dir/<key>.build-<pid>` (it gets the lock file, to hand
/// on to child processes, and `progress`) and returns metadata for `dir/<key>.json`; only a
/// complete build is renamed into place, under an exclusive lock on `dir/<key>.lock`, so a killed
/// build never leaves a half cache and two processes never build at once. `what` names the cache
/// entry in messages.
pub(super) fn build_once(
    dir: &Path,
    key: &str,
    what: &str,
    progress: &mut dyn FnMut(&str),
    build: &mut BuildStep,
) -> anyhow::Result<PathBuf> {
    let done = dir.join(key);
    if done.is_dir() {
        return Ok(done);
    }
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create the cache {}: run as root or set SANDBOX_CACHE",
            dir.display()
        )
    })?;
    let lock_path = dir.join(format!("{key}.lock"));
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    if !sys::lock_exclusive(&lock, false)? {
        progress(&format!(
            "waiting for another sandbox process that is building the {what}…"
        ));
        sys::lock_exclusive(&lock, true)
            .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    }
    if done.is_dir() {
        return Ok(done);
    }
    // Builds left by killed processes: nobody else can be using them, we hold the lock.
    for e in std::fs::read_dir(dir)?.flatten() {
        if e.file_name()
            .to_string_lossy()
            .starts_with(&format!("{key}.build-"))
        {
            host::remove_tree(&e.path())?;
        }
    }
    let tmp = dir.join(format!("{key}.build-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let started = Instant::now();
    let meta = match build(&tmp, &lock, progress) {
        Ok(meta) => meta,
        Err(e) => {
            let _ = host::remove_tree(&tmp);
            return Err(e);
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let meta = serde_json::json!({ "built": meta, "build_seconds": secs });
    std::fs::write(
        dir.join(format!("{key}.json")),
        serde_json::to_vec_pretty(&meta)?,
    )?;
    std::fs::rename(&tmp, &done)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), done.display()))?;
    progress(&format!("{what} ready in {secs:.0} s: {}", done.display()));
    Ok(done)
}

fn debootstrap(
    cache: &Path,
    recipe: &RootfsRecipe,
    target: &Path,
    log: &Path,
    lock: &std::fs::File,
) -> anyhow::Result<()> {
    let debs = cache.join("debs");
    std::fs::create_dir_all(&debs)?;
    let out =
        std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let mut cmd = Command::new("debootstrap");
    cmd.arg(format!("--variant={}", recipe.variant))
        .arg(format!("--cache-dir={}", debs.display()));
    if !recipe.include.is_empty() {
        cmd.arg(format!("--include={}", recipe.include.join(",")));
    }
    cmd.arg(&recipe.suite).arg(target).arg(&recipe.mirror);
    // debootstrap and every process it starts inherit the lock as stdin, so the lock stays held
    // until the whole build is gone even if this process is killed.
    cmd.stdin(Stdio::from(lock.try_clone()?))
        .stdout(Stdio::from(out.try_clone()?))
        .stderr(Stdio::from(out))
        .env("DEBIAN_FRONTEND", "noninteractive");
    if std::env::var_os("http_proxy").is_none() {
        if let Some(proxy) = apt_http_proxy() {
            cmd.env("http_proxy", proxy);
        }
    }
    let status = cmd
        .status()
        .context("cannot run debootstrap: install it with `apt-get install debootstrap`")?;
    if !status.success() {
        bail!(
            "debootstrap of {} from {} failed ({status}); full log in {}; check the mirror is reachable \
             or point SANDBOX_DEBIAN_MIRROR at another one. Last lines:\n{}",
            recipe.suite,
            recipe.mirror,
            log.display(),
            host::tail(log, 1500)
        );
    }
    Ok(())
}

/// Makes a fresh debootstrap fit for many container machines: small, quiet, nothing host- or
/// machine-specific in it.
fn finish(root: &Path, recipe: &RootfsRecipe) -> anyhow::Result<()> {
    // Package lists and downloaded archives are only dead weight in every machine.
    for d in ["var/lib/apt/lists", "var/cache/apt/archives"] {
        empty_dir(&root.join(d))?;
    }
    for e in std::fs::read_dir(root.join("var/cache/apt"))?.flatten() {
        if e.file_name().to_string_lossy().ends_with(".bin") {
            std::fs::remove_file(e.path())?;
        }
    }
    // Masks.
    let units = root.join("etc/systemd/system");
    std::fs::create_dir_all(&units)?;
    for u in &recipe.mask {
        let link = units.join(u);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/dev/null", &link)
            .with_context(|| format!("cannot mask {u}"))?;
    }
    // Root needs no password (the sandbox enters machines with nsenter, never over a login).
    let shadow = root.join("etc/shadow");
    let text = std::fs::read_to_string(&shadow)?;
    let text: String = text
        .lines()
        .map(|l| match l.strip_prefix("root:") {
            Some(rest) => format!("root::{}\n", rest.split_once(':').map_or("", |(_, r)| r)),
            None => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&shadow, text)?;
    // Machine identity is written per machine at boot; host files copied by debootstrap go.
    std::fs::write(root.join("etc/machine-id"), "")?;
    let dbus_id = root.join("var/lib/dbus/machine-id");
    if std::fs::symlink_metadata(&dbus_id).is_ok() {
        std::fs::remove_file(&dbus_id)?;
        std::os::unix::fs::symlink("/etc/machine-id", &dbus_id)?;
    }
    let _ = std::fs::remove_file(root.join("etc/hostname"));
    let _ = std::fs::remove_file(root.join("etc/resolv.conf"));
    std::fs::write(
        root.join("etc/resolv.conf"),
        "# sandbox machines have no DNS and no internet\n",
    )?;
    std::fs::write(
        root.join("etc/hosts"),
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    )?;
    // Keep the journal small: many machines share one host.
    let jd = root.join("etc/systemd/journald.conf.d");
    std::fs::create_dir_all(&jd)?;
    let mut f = std::fs::File::create(jd.join("sandbox.conf"))?;
    f.write_all(b"[Journal]\nSystemMaxUse=64M\nRuntimeMaxUse=16M\n")?;
    Ok(())
}

fn empty_dir(dir: &Path) -> anyhow::Result<()> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_type()?.is_dir() {
            std::fs::remove_dir_all(&p)?;
        } else {
            std::fs::remove_file(&p)?;
        }
    }
    Ok(())
}

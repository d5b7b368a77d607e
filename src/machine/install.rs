/*!
Installing etcd: from the `etcd` resource (a flat tarball with `etcd` and `etcdctl`, or etcd's
release layout `etcd-vX.Y.Z-linux-amd64/{etcd,etcdctl,etcdutl}`), else from Debian's
`etcd-server`/`etcd-client` packages. The binaries must run (`etcd --version`) before they are
linked into `/usr/local/bin`; `etcdctl` on PATH is a wrapper talking to the local member.

Upgrades (`upgrade-charm` after `juju attach-resource`): the tarball is unpacked and its binaries
run in a temporary directory first; only when its version may replace every version the unit
knows of ([`crate::core::version::check_against`]) are the binaries replaced, each atomically, while
etcd keeps running. The plan then restarts the member on them in its turn (rolling restart: the
running version differs from the installed one).
*/

use super::host::{self, Host, HostError};
use super::{state, InstallError};
use crate::core::version::{self, Refusal, Version};
use crate::juju::{Juju, Level};
use crate::paths;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// Parses `etcd --version` output (`etcd Version: 3.4.23`).
pub fn parse_version(out: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.strip_prefix("etcd Version:"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Runs `<etcd> --version` and returns the version.
pub fn binary_version(etcd: &str) -> Result<String, HostError> {
    let out = host::run(etcd, &["--version"])?;
    parse_version(&out).ok_or_else(|| HostError::Command {
        cmd: format!("{etcd} --version"),
        code: Some(0),
        stderr: format!("unexpected output: {}", out.trim()),
    })
}

/// Finds the directory holding `etcd` and `etcdctl` in an unpacked tarball (top level or one
/// directory down).
fn find_bin_dir(root: &Path) -> Option<PathBuf> {
    let has = |d: &Path| d.join("etcd").is_file() && d.join("etcdctl").is_file();
    if has(root) {
        return Some(root.to_path_buf());
    }
    let mut dirs: Vec<PathBuf> = fs::read_dir(root)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.into_iter().find(|d| has(d))
}

/// Unpacks the resource into `tmp` and checks its binaries run: their directory and version.
fn unpack(tarball: &str, tmp: &str) -> Result<(PathBuf, String), String> {
    let size = fs::metadata(tarball)
        .map_err(|e| format!("{tarball}: {e}"))?
        .len();
    if size == 0 {
        return Err("the attached file is empty".into());
    }
    let _ = fs::remove_dir_all(tmp);
    fs::create_dir_all(tmp).map_err(|e| format!("{tmp}: {e}"))?;
    host::run("tar", &["-xf", tarball, "-C", tmp]).map_err(|e| e.to_string())?;
    let dir = find_bin_dir(Path::new(tmp))
        .ok_or("the tarball has no etcd and etcdctl, at top level or in one directory")?;
    let version = binary_version(&dir.join("etcd").to_string_lossy()).map_err(|e| e.to_string())?;
    host::run(&dir.join("etcdctl").to_string_lossy(), &["version"]).map_err(|e| e.to_string())?;
    Ok((dir, version))
}

/// Puts the unpacked binaries into [`paths::BIN_DIR`], each replaced atomically (a running etcd
/// keeps its old file); an `etcdutl` the new release lacks is removed with its link.
fn put_binaries(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(paths::BIN_DIR).map_err(|e| e.to_string())?;
    for bin in ["etcd", "etcdctl", "etcdutl"] {
        let src = dir.join(bin);
        let dst = format!("{}/{bin}", paths::BIN_DIR);
        if !src.is_file() {
            if fs::remove_file(&dst).is_ok() {
                let _ = fs::remove_file(paths::ETCDUTL_LINK);
            }
            continue;
        }
        let tmp = format!("{dst}.charm-tmp");
        host::run("install", &["-m", "0755", &src.to_string_lossy(), &tmp])
            .map_err(|e| e.to_string())?;
        fs::rename(&tmp, &dst).map_err(|e| format!("{dst}: {e}"))?;
    }
    Ok(())
}

/// What the resource holds, once checked: its version, or why it may not be installed.
enum FromResource {
    /// Installed into [`paths::BIN_DIR`]: its version.
    Installed(String),
    /// No usable resource (none attached, empty, or not etcd): why.
    Unusable(String),
    /// An etcd release whose version may not replace the known ones.
    Refused(Refusal),
}

/// Unpacks the resource into a temporary directory, checks that it is etcd and that its version
/// may replace every `known` one, and only then installs its binaries into [`paths::BIN_DIR`].
fn from_resource(tarball: &str, known: &[&str]) -> FromResource {
    let tmp = format!("{}/unpack", paths::STATE_DIR);
    let result = match unpack(tarball, &tmp) {
        Err(why) => FromResource::Unusable(why),
        Ok((dir, version)) => {
            let checked = Version::parse(&version)
                .ok_or_else(|| format!("unexpected etcd version {version:?}"))
                .map(|v| {
                    version::check_supported(v, "the etcd resource")
                        .and_then(|()| version::check_against(known, v))
                });
            match checked {
                Err(why) => FromResource::Unusable(why),
                Ok(Err(refusal)) => FromResource::Refused(refusal),
                Ok(Ok(())) => match put_binaries(&dir) {
                    Ok(()) => FromResource::Installed(version),
                    Err(why) => FromResource::Unusable(why),
                },
            }
        }
    };
    let _ = fs::remove_dir_all(&tmp);
    result
}

/// The upstream part of a Debian version: `3.3.25` of `1:3.3.25+dfsg-7ubuntu0.22.04.2`.
pub fn upstream_version(deb: &str) -> Option<Version> {
    let deb = deb.trim();
    let deb = deb.split_once(':').map_or(deb, |(_, v)| v);
    Version::parse(deb.split(['+', '~', '-']).next()?)
}

/// Why the packages were not installed.
enum PackageError {
    /// The archive's etcd is below 3.4: nothing installed.
    Refused(Refusal),
    /// apt failed.
    Failed(String),
}

/// `Candidate:` of `apt-cache policy` output, if there is one.
fn candidate(policy: &str) -> Option<String> {
    let line = policy
        .lines()
        .find_map(|l| l.trim().strip_prefix("Candidate:"));
    line.map(str::trim)
        .filter(|v| !v.is_empty() && *v != "(none)")
        .map(String::from)
}

/// Installs Debian's packages, once the archive's etcd is known to be 3.4 or later (asked
/// before anything is installed), and stops the service they start (the charm runs its own).
fn from_packages() -> Result<String, PackageError> {
    // Bounded: without a network, apt must fail in seconds, not hang the hook.
    let apt = |args: &[&str]| {
        let opts = [
            "180",
            "apt-get",
            "-o",
            "Acquire::Retries=0",
            "-o",
            "Acquire::http::Timeout=15",
        ];
        let all: Vec<&str> = opts.iter().chain(args).copied().collect();
        host::run("timeout", &all).map_err(|e| PackageError::Failed(e.to_string()))
    };
    let policy = || {
        let out = host::run("apt-cache", &["policy", "etcd-server"]);
        out.ok().as_deref().and_then(candidate)
    };
    let offered = match policy() {
        Some(v) => v,
        None => {
            apt(&["update"])?;
            let none = || PackageError::Failed("no etcd-server package in the archive".into());
            policy().ok_or_else(none)?
        }
    };
    if let Some(v) = upstream_version(&offered) {
        version::check_supported(v, "the etcd-server package").map_err(PackageError::Refused)?;
    }
    let install = [
        "install",
        "-y",
        "--no-install-recommends",
        "etcd-server",
        "etcd-client",
    ];
    apt(&install)?;
    // The package starts its own single-member etcd on localhost: stop it for good.
    let _ = host::systemctl(&["disable", "--now", "etcd.service"]);
    binary_version("/usr/bin/etcd").map_err(|e| PackageError::Failed(e.to_string()))
}

/// Points `link` at `target`, replacing what is there.
fn link(target: &str, link: &str) -> Result<(), HostError> {
    let tmp = format!("{link}.charm-tmp");
    let _ = fs::remove_file(&tmp);
    let io = |cause| HostError::Io {
        path: link.to_string(),
        cause,
    };
    symlink(target, &tmp).map_err(io)?;
    fs::rename(&tmp, link).map_err(io)
}

/// Installs etcd and returns its version. `installed` is the version installed now, if any;
/// `known` every version the unit knows of (installed, running, the cluster's): a resource is
/// installed only when its version may replace each of them (see [`crate::core::version`]).
///
/// With etcd installed, a resource that is missing or empty changes nothing, and one that is not
/// etcd or whose version is refused changes nothing either ([`InstallError::Refused`]). Without
/// etcd, an unusable resource falls back to the distribution's packages.
pub fn install(
    machine: &Host,
    juju: &dyn Juju,
    installed: Option<&str>,
    known: &[&str],
) -> Result<String, InstallError> {
    host::ensure_user_and_dirs()?;
    let resource = juju.resource_get("etcd").map_err(|e| e.to_string());
    let attached = resource
        .as_ref()
        .ok()
        .filter(|p| fs::metadata(p).is_ok_and(|m| m.len() > 0));
    if let Some(current) = installed {
        let Some(path) = attached else {
            juju.log(
                Level::Info,
                &format!("no etcd resource attached: etcd {current} stays installed"),
            );
            return Ok(current.to_string());
        };
        let version = match from_resource(path, known) {
            FromResource::Installed(v) => v,
            FromResource::Refused(r) => return Err(InstallError::Refused(r)),
            FromResource::Unusable(why) => {
                let why = why.lines().next().unwrap_or("").chars().take(120).collect();
                let attach = version::allowed_series(known);
                let current = current.to_string();
                let r = Refusal::NotEtcd {
                    why,
                    current,
                    attach,
                };
                return Err(InstallError::Refused(r));
            }
        };
        return finish(machine, juju, &version, paths::BIN_DIR);
    }
    let resource = resource.and_then(|path| match from_resource(&path, known) {
        FromResource::Installed(v) => Ok(Ok(v)),
        FromResource::Refused(r) => Ok(Err(r)),
        FromResource::Unusable(why) => Err(why),
    });
    let (version, bin_dir) = match resource {
        Ok(Ok(v)) => (v, paths::BIN_DIR.to_string()),
        Ok(Err(refusal)) => return Err(InstallError::Refused(refusal)),
        Err(resource) => {
            juju.log(
                Level::Warning,
                &format!("etcd resource not usable ({resource}): trying the etcd-server package"),
            );
            let v = from_packages().map_err(|e| match e {
                PackageError::Refused(r) => InstallError::Refused(r),
                PackageError::Failed(package) => InstallError::NoSource { resource, package },
            })?;
            (v, "/usr/bin".to_string())
        }
    };
    finish(machine, juju, &version, &bin_dir)
}

/// Links the installed binaries and records the version.
fn finish(
    machine: &Host,
    juju: &dyn Juju,
    version: &str,
    bin_dir: &str,
) -> Result<String, InstallError> {
    link(&format!("{bin_dir}/etcd"), paths::ETCD_LINK)?;
    let etcdutl = format!("{bin_dir}/etcdutl");
    if Path::new(&etcdutl).exists() {
        link(&etcdutl, paths::ETCDUTL_LINK)?;
    }
    state::record_version(machine, version)?;
    juju.log(
        Level::Info,
        &format!("installed etcd {version} from {bin_dir}"),
    );
    Ok(version.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_line() {
        let out = "etcd Version: 3.4.23\nGit SHA: Not provided\nGo Version: go1.19.8\n";
        assert_eq!(parse_version(out).as_deref(), Some("3.4.23"));
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn package_versions() {
        let v = |s| upstream_version(s).map(|v| v.to_string());
        assert_eq!(v("3.3.25+dfsg-7ubuntu0.22.04.2").as_deref(), Some("3.3.25"));
        assert_eq!(v("3.2.26+dfsg-6ubuntu0.2").as_deref(), Some("3.2.26"));
        assert_eq!(v("1:3.4.30-1build1").as_deref(), Some("3.4.30"));
        assert_eq!(v("garbage"), None);
        let policy = "etcd-server:\n  Installed: (none)\n  Candidate: 3.3.25+dfsg-7\n";
        assert_eq!(candidate(policy).as_deref(), Some("3.3.25+dfsg-7"));
        assert_eq!(candidate("etcd-server:\n  Candidate: (none)\n"), None);
    }

    #[test]
    fn finds_flat_and_release_layouts() {
        let root = std::env::temp_dir().join(format!("etcd-charm-test-{}", std::process::id()));
        let release = root.join("etcd-v3.5.21-linux-amd64");
        fs::create_dir_all(&release).unwrap();
        assert_eq!(find_bin_dir(&root), None);
        for b in ["etcd", "etcdctl"] {
            fs::write(release.join(b), "").unwrap();
        }
        assert_eq!(find_bin_dir(&root), Some(release.clone()));
        fs::write(root.join("etcd"), "").unwrap();
        fs::write(root.join("etcdctl"), "").unwrap();
        assert_eq!(find_bin_dir(&root), Some(root.clone()));
        fs::remove_dir_all(&root).unwrap();
    }
}

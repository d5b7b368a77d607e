/*!
Installing etcd: from the `etcd` resource (a flat tarball with `etcd` and `etcdctl`, or etcd's
release layout `etcd-vX.Y.Z-linux-amd64/{etcd,etcdctl,etcdutl}`), else from Debian's
`etcd-server`/`etcd-client` packages. The binaries must run (`etcd --version`) before they are
linked into `/usr/local/bin`; `etcdctl` on PATH is a wrapper talking to the local member.
*/

use crate::hooktools::{Juju, Level};
use crate::host::{self, HostError};
use crate::paths;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// Why etcd could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// Neither the resource nor the packages could be used.
    #[error("no usable etcd resource ({resource}) and the etcd-server package failed ({package})")]
    NoSource {
        /// What was wrong with the resource.
        resource: String,
        /// What was wrong with the package install.
        package: String,
    },
    /// A machine command failed.
    #[error(transparent)]
    Host(#[from] HostError),
}

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

/// Unpacks the resource and installs its binaries into [`paths::BIN_DIR`].
fn from_resource(tarball: &str) -> Result<String, String> {
    let size = fs::metadata(tarball)
        .map_err(|e| format!("{tarball}: {e}"))?
        .len();
    if size == 0 {
        return Err("the attached file is empty".into());
    }
    let tmp = format!("{}/unpack", paths::STATE_DIR);
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| format!("{tmp}: {e}"))?;
    let result = (|| {
        host::run("tar", &["-xf", tarball, "-C", &tmp]).map_err(|e| e.to_string())?;
        let dir = find_bin_dir(Path::new(&tmp))
            .ok_or("the tarball has no etcd and etcdctl, at top level or in one directory")?;
        let etcd = dir.join("etcd");
        let version = binary_version(&etcd.to_string_lossy()).map_err(|e| e.to_string())?;
        let etcdctl = dir.join("etcdctl");
        host::run(&etcdctl.to_string_lossy(), &["version"]).map_err(|e| e.to_string())?;
        fs::create_dir_all(paths::BIN_DIR).map_err(|e| e.to_string())?;
        for bin in ["etcd", "etcdctl", "etcdutl"] {
            let src = dir.join(bin);
            if src.is_file() {
                let dst = format!("{}/{bin}", paths::BIN_DIR);
                host::run("install", &["-m", "0755", &src.to_string_lossy(), &dst])
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(version)
    })();
    let _ = fs::remove_dir_all(&tmp);
    result
}

/// Installs Debian's packages and stops the service they start (the charm runs its own).
fn from_packages() -> Result<String, String> {
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
        host::run("timeout", &all).map_err(|e| e.to_string())
    };
    let install = [
        "install",
        "-y",
        "--no-install-recommends",
        "etcd-server",
        "etcd-client",
    ];
    apt(&install).or_else(|_| apt(&["update"]).and_then(|_| apt(&install)))?;
    // The package starts its own single-member etcd on localhost: stop it for good.
    let _ = host::systemctl(&["disable", "--now", "etcd.service"]);
    binary_version("/usr/bin/etcd").map_err(|e| e.to_string())
}

/// Points `link` at `target`, replacing what is there.
fn link(target: &str, link: &str) -> Result<(), HostError> {
    let tmp = format!("{link}.charm-tmp");
    let _ = fs::remove_file(&tmp);
    let io = |source| HostError::Io {
        path: link.to_string(),
        source,
    };
    symlink(target, &tmp).map_err(io)?;
    fs::rename(&tmp, link).map_err(io)
}

/// Installs etcd and returns its version.
pub fn install(juju: &dyn Juju) -> Result<String, InstallError> {
    host::ensure_user_and_dirs()?;
    let resource = juju
        .resource_get("etcd")
        .map_err(|e| e.to_string())
        .and_then(|path| from_resource(&path));
    let (version, bin_dir) = match resource {
        Ok(v) => (v, paths::BIN_DIR.to_string()),
        Err(resource) => {
            juju.log(
                Level::Warning,
                &format!("etcd resource not usable ({resource}): trying the etcd-server package"),
            );
            let v =
                from_packages().map_err(|package| InstallError::NoSource { resource, package })?;
            (v, "/usr/bin".to_string())
        }
    };
    link(&format!("{bin_dir}/etcd"), paths::ETCD_LINK)?;
    let etcdutl = format!("{bin_dir}/etcdutl");
    if Path::new(&etcdutl).exists() {
        link(&etcdutl, paths::ETCDUTL_LINK)?;
    }
    host::record_version(&version)?;
    juju.log(
        Level::Info,
        &format!("installed etcd {version} from {bin_dir}"),
    );
    Ok(version)
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

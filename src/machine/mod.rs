/*!
The machine boundary: what the charm does on its host, behind the [`Machine`] trait (beside
[`crate::juju::Juju`] and [`crate::etcd::Etcd`]), so the reconcile path is tested with a fake.

- [`host`]: the real machine ([`host::Host`]): files, systemd, the etcd user, commands.
- [`install`]: installing etcd from the resource or the distribution's packages.
- [`state`]: the charm's own small state on the machine (`/var/lib/etcd-charm`), typed, on top
  of any [`Machine`].
- [`tls`]: the cluster's CA and this member's TLS files.
- [`metrics`]: the charm's own metrics file, the exporter's unit, and its serving mode.
- [`backup`]: the scheduled backups' systemd timer.
*/

pub mod backup;
pub mod ext_tls;
pub mod host;
pub mod install;
pub mod metrics;
pub mod state;
pub mod tls;

use crate::clock::Clock;
use crate::core::version::Refusal;
use crate::juju::Juju;
use host::HostError;
use std::time::Duration;

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
    /// The resource is not etcd, or its version may not replace the one running: nothing changed.
    #[error("the etcd resource was not installed: {0:?}")]
    Refused(Refusal),
}

/// Everything the reconcile path does on the machine. Implemented by [`host::Host`] and by a
/// test fake; paths are those of [`crate::paths`].
pub trait Machine: Clock {
    /// A file's content; `None` when absent or unreadable.
    fn read(&self, path: &str) -> Option<String>;
    /// True when a file, directory or link is at `path`.
    fn exists(&self, path: &str) -> bool;
    /// Writes `content` atomically with `mode` when it differs; returns whether it wrote.
    fn write(&self, path: &str, content: &str, mode: u32) -> Result<bool, HostError>;
    /// Writes a private file: 0640 root:etcd when `etcd_group`, else 0600 root:root, in a
    /// directory of mode 0750 root:etcd.
    fn write_private(&self, path: &str, content: &str, etcd_group: bool) -> Result<(), HostError>;
    /// Removes a file or a directory tree, if there.
    fn remove(&self, path: &str);
    /// `systemctl <args>`.
    fn systemctl(&self, args: &[&str]) -> Result<(), HostError>;
    /// True when etcd's service is active (or activating).
    fn service_active(&self) -> bool;
    /// Restarts etcd and waits at most `timeout` for systemd to see it ready.
    fn restart_service(&self, timeout: Duration) -> Result<(), HostError>;
    /// Creates the etcd user and etcd's directories (data dir 0700, owned by etcd).
    fn ensure_user_and_dirs(&self) -> Result<(), HostError>;
    /// Moves the data dir aside (`data.removed-<time>`); no earlier copy is deleted.
    fn move_data_aside(&self) -> Result<(), HostError>;
    /// Makes the empty data dir a link to the `data` store's volume (etcd's, 0700).
    fn use_volume(&self) -> Result<(), HostError>;
    /// Gives the data dir's tree (and the volume's root) to the local etcd user where another
    /// uid or gid owns an entry; nothing is moved or deleted. Returns how many entries changed.
    fn own_data_dir(&self) -> Result<usize, HostError>;
    /// Where a symbolic link points; `None` when `path` is no link.
    fn read_link(&self, path: &str) -> Option<String>;
    /// Installs etcd (see [`install::install`]) and returns its version.
    fn install(
        &self,
        juju: &dyn Juju,
        installed: Option<&str>,
        known: &[&str],
    ) -> Result<String, InstallError>;
    /// The machine's hostname.
    fn hostname(&self) -> Option<String>;
    /// A random hex token from the kernel's CSPRNG.
    fn random_token(&self) -> String;
}

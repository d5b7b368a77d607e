/*!
The test restore that verifies a backup before it is uploaded: the snapshot is restored into a
scratch data dir (`/var/lib/etcd/backup-verify`) and served by a scratch one-member etcd on
loopback only (client `127.0.0.1:32379`, peer `127.0.0.1:32380`, a transient systemd unit as the
etcd user), which must elect itself and serve the revision the snapshot claims. The scratch
member and its data go at the end, whatever happens; the cluster's own member is not touched.
*/

use super::{machine, Action};
use crate::etcd::retry_not_yet;
use crate::machine::host::{self, Host};
use crate::machine::Machine;
use crate::paths;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The transient unit of the scratch etcd.
const UNIT: &str = "etcd-charm-backup-verify";
/// Its client URL (loopback only).
const CLIENT: &str = "http://127.0.0.1:32379";
/// Its peer URL (loopback only).
const PEER: &str = "http://127.0.0.1:32380";
/// Room kept free beyond the restored database.
const MARGIN: u64 = 64 * 1024 * 1024;

/// The scratch data dir.
fn scratch() -> PathBuf {
    Path::new(paths::ETCD_HOME).join("backup-verify")
}

/// Removes the scratch member: its unit stopped, its data dir gone.
fn clean_up() {
    let _ = host::systemctl(&["stop", &format!("{UNIT}.service")]);
    let _ = host::systemctl(&["reset-failed", &format!("{UNIT}.service")]);
    let _ = std::fs::remove_dir_all(scratch());
}

/// Restores `file` (`size` bytes, claiming `revision`) into a scratch etcd and asks it for its
/// revision: `Ok` with the revision it serves when that is the claimed one, else why not.
pub fn test_restore(a: &Action, file: &Path, size: u64, revision: i64) -> Result<i64, String> {
    clean_up();
    let home = Path::new(paths::ETCD_HOME);
    if let Some(free) = machine::free_bytes(home) {
        if free < size + MARGIN {
            return Err(format!(
                "no room for a test restore in {} ({free} bytes free)",
                home.display()
            ));
        }
    }
    a.progress("verifying the snapshot: a test restore into a scratch etcd on loopback");
    let result = serve(file).and_then(|()| {
        let endpoints = [CLIENT.to_string()];
        retry_not_yet(Duration::from_secs(20), Duration::from_secs(1), || {
            a.etcd.revision(&endpoints)
        })
        .map_err(|e| format!("the scratch etcd does not answer: {e}"))
    });
    clean_up();
    match result? {
        served if served == revision => Ok(served),
        served => Err(format!(
            "the test restore serves revision {served}, the snapshot claims {revision}"
        )),
    }
}

/// Restores `file` into the scratch dir and starts the scratch etcd on it (ready once elected).
fn serve(file: &Path) -> Result<(), String> {
    let dir = scratch();
    let token = Host.random_token();
    machine::snapshot_restore(file, &dir, "verify", PEER, &token, None)?;
    let d = dir.to_string_lossy();
    let initial = format!("verify={PEER}");
    let args = [
        "--name",
        "verify",
        "--data-dir",
        &d,
        "--listen-client-urls",
        CLIENT,
        "--advertise-client-urls",
        CLIENT,
        "--listen-peer-urls",
        PEER,
        "--initial-advertise-peer-urls",
        PEER,
        "--initial-cluster",
        &initial,
    ];
    machine::run_etcd_transient(UNIT, &args)
        .map_err(|e| format!("the scratch etcd did not start: {e}"))
}

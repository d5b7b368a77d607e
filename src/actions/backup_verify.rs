/*!
The test restore that verifies a backup before it is uploaded: the snapshot is restored into a
scratch data dir (`/var/lib/etcd/backup-verify`) and served by a scratch one-member etcd on
loopback only (a transient systemd unit as the etcd user), which must elect itself and serve the
revision the snapshot claims. The scratch member and its data go at the end, whatever happens;
the cluster's own member is not touched.

Its client and peer ports are chosen by the kernel when the test restore starts ([`free_ports`]:
two loopback ports bound at once, so distinct and free then), from the ephemeral range, so they
never meet a port the member listens on (the `port`, `management_port` and `metrics_port`
options). One verification at a time per machine: actions and the scheduled backup's
`juju-exec` run under Juju's machine lock, and the scratch unit's name is fixed.
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
    let (client, peer) = free_ports()?;
    let (client, peer) = (loopback(client), loopback(peer));
    a.progress(&format!(
        "verifying the snapshot: a test restore into a scratch etcd on {client}"
    ));
    let result = serve(file, &client, &peer).and_then(|()| {
        let endpoints = [client.clone()];
        retry_not_yet(Duration::from_secs(20), Duration::from_secs(1), || {
            a.etcd.revision(&endpoints)
        })
        .map_err(|e| format!("the scratch etcd does not answer: {e}"))
    });
    clean_up();
    match result? {
        served if holds(served, revision) => Ok(served),
        served => Err(format!(
            "the test restore serves revision {served}, the snapshot claims {revision}"
        )),
    }
}

/// Whether a restored etcd serving revision `served` holds the snapshot's `claimed` one. A
/// snapshot of a keyspace that never had a key claims 0 (`snapshot status` reads the newest
/// key's revision), and etcd serves such a keyspace at revision 1.
fn holds(served: i64, claimed: i64) -> bool {
    served == claimed.max(1)
}

/// Two distinct loopback TCP ports that are free now (client, peer), from the kernel's
/// ephemeral range: both are bound at once, then released for the scratch etcd.
pub fn free_ports() -> Result<(u16, u16), String> {
    let bind = || {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0));
        let port = l.and_then(|l| Ok((l.local_addr()?.port(), l)));
        port.map_err(|e| format!("no free loopback port for a test restore: {e}"))
    };
    let ((client, _held), (peer, _also)) = (bind()?, bind()?);
    Ok((client, peer))
}

/// The URL of a loopback port.
fn loopback(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// Restores `file` into the scratch dir and starts the scratch etcd on it, serving clients on
/// `client` and Raft on `peer` (ready once elected).
fn serve(file: &Path, client: &str, peer: &str) -> Result<(), String> {
    let dir = scratch();
    let token = Host.random_token();
    machine::snapshot_restore(file, &dir, "verify", peer, &token, None)?;
    let d = dir.to_string_lossy();
    let initial = format!("verify={peer}");
    let args = [
        "--name",
        "verify",
        "--data-dir",
        &d,
        "--listen-client-urls",
        client,
        "--advertise-client-urls",
        client,
        "--listen-peer-urls",
        peer,
        "--initial-advertise-peer-urls",
        peer,
        "--initial-cluster",
        &initial,
    ];
    machine::run_etcd_transient(UNIT, &args)
        .map_err(|e| format!("the scratch etcd did not start: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scratch_ports_are_two_free_ephemeral_loopback_ports() {
        let (client, peer) = free_ports().unwrap();
        assert_ne!(client, peer);
        // The kernel's ephemeral range, where the member's ports (2379, 2380 by default) are not.
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
        let range: Vec<u16> = range
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        for port in [client, peer] {
            assert!((range[0]..=range[1]).contains(&port), "{port} {range:?}");
            std::net::TcpListener::bind(("127.0.0.1", port)).expect("free once released");
        }
        assert_eq!(loopback(client), format!("http://127.0.0.1:{client}"));
    }

    #[test]
    fn a_restore_holds_the_claimed_revision_and_an_empty_keyspace_is_at_one() {
        assert!(holds(42, 42));
        assert!(!holds(41, 42) && !holds(43, 42));
        assert!(holds(1, 0) && holds(1, 1));
        assert!(!holds(2, 0));
    }
}

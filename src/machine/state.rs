/*!
The charm's own state on the machine, in [`paths::STATE_DIR`], typed: the member id the data
dir belongs to, the marks a killed hook leaves (restart pending, departing), the installed
version, a refused resource, what the TLS files were made from, the last status set.
*/

use super::host::HostError;
use super::Machine;
use crate::core::observed::{Volume, VolumeOwner};
use crate::core::version::Refusal;
use crate::paths;

fn file(name: &str) -> String {
    format!("{}/{name}", paths::STATE_DIR)
}

const MEMBER_ID: &str = "member-id";
const RESTART_PENDING: &str = "restart-pending";
const DEPARTING: &str = "departing";
const STATUS: &str = "status";
const VERSION: &str = "etcd-version";
const REFUSED: &str = "resource-refused";
const TLS_RECORD: &str = "tls-record";

/// True when the data dir holds a member (etcd's `member/` directory).
pub fn has_member_data(m: &dyn Machine) -> bool {
    m.exists(&format!("{}/member", paths::DATA_DIR))
}

/// The member id recorded for the current data dir.
pub fn recorded_member_id(m: &dyn Machine) -> Option<u64> {
    u64::from_str_radix(m.read(&file(MEMBER_ID))?.trim(), 16).ok()
}

/// Records the member id the data dir belongs to.
pub fn record_member_id(m: &dyn Machine, id: u64) -> Result<(), HostError> {
    m.write(&file(MEMBER_ID), &format!("{id:x}\n"), 0o600)
        .map(drop)
}

/// Forgets the recorded member id.
pub fn forget_member_id(m: &dyn Machine) {
    m.remove(&file(MEMBER_ID));
}

/// Moves the data dir of a removed member aside so it can rejoin with an empty one; a live
/// member's data dir is never touched (the plan checks). On the volume, the record of whose
/// data it held goes with it.
pub fn wipe_data_dir(m: &dyn Machine) -> Result<(), HostError> {
    m.move_data_aside()?;
    forget_member_id(m);
    m.remove(paths::VOLUME_OWNER);
    m.ensure_user_and_dirs()
}

/// The `data` store's volume: mounted (a mount point in the kernel's table), in use (the data
/// dir links to it), and whose member data it holds.
pub fn volume(m: &dyn Machine) -> Volume {
    let table = m.read(paths::MOUNTINFO).unwrap_or_default();
    // mountinfo: id, parent id, major:minor, root, mount point, ...
    let mounted = table
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(paths::VOLUME));
    Volume {
        mounted,
        in_use: m.read_link(paths::DATA_DIR).as_deref() == Some(paths::VOLUME_DATA_DIR),
        owner: m
            .read(paths::VOLUME_OWNER)
            .and_then(|r| VolumeOwner::parse(&r)),
    }
}

/// Records on the volume whose member its data dir holds.
pub fn record_volume_owner(m: &dyn Machine, owner: &VolumeOwner) -> Result<(), HostError> {
    m.write(paths::VOLUME_OWNER, &owner.record(), 0o600)
        .map(drop)
}

/// True when a restart was begun (files written) and not seen through.
pub fn restart_pending(m: &dyn Machine) -> bool {
    m.exists(&file(RESTART_PENDING))
}

/// Marks a restart as begun, before the files it applies are written: a hook that dies before
/// etcd has restarted leaves the mark, and the next one restarts etcd.
pub fn mark_restart_pending(m: &dyn Machine) -> Result<(), HostError> {
    m.write(&file(RESTART_PENDING), "1\n", 0o600).map(drop)
}

/// Clears the mark once the restart has been done.
pub fn clear_restart_pending(m: &dyn Machine) {
    m.remove(&file(RESTART_PENDING));
}

/// The workload status this charm set last (`<state>\n<message>`), as recorded.
pub fn last_status(m: &dyn Machine) -> Option<String> {
    m.read(&file(STATUS))
}

/// Records the workload status just set (not after the `remove` hook has cleaned up).
pub fn record_status(m: &dyn Machine, status: &str) {
    if m.exists(paths::STATE_DIR) {
        let _ = m.write(&file(STATUS), status, 0o600);
    }
}

/// Forgets the recorded status (a status set another way follows).
pub fn forget_status(m: &dyn Machine) {
    m.remove(&file(STATUS));
}

/// True once this unit has started leaving the cluster.
pub fn departing(m: &dyn Machine) -> bool {
    m.exists(&file(DEPARTING))
}

/// Marks this unit as leaving: later hooks never rejoin it.
pub fn mark_departing(m: &dyn Machine) -> Result<(), HostError> {
    m.write(&file(DEPARTING), "1\n", 0o600).map(drop)
}

/// The installed etcd version (recorded at install time).
pub fn installed_version(m: &dyn Machine) -> Option<String> {
    if !m.exists(paths::ETCD_LINK) {
        return None;
    }
    let v = m.read(&file(VERSION))?;
    Some(v.trim().to_string()).filter(|v| !v.is_empty())
}

/// Records the installed etcd version.
pub fn record_version(m: &dyn Machine, version: &str) -> Result<(), HostError> {
    m.write(&file(VERSION), &format!("{version}\n"), 0o644)
        .map(drop)
}

/// The refusal of the last `etcd` resource attached, while it stands.
pub fn refused_resource(m: &dyn Machine) -> Option<Refusal> {
    serde_json::from_str(&m.read(&file(REFUSED))?).ok()
}

/// Records why the attached `etcd` resource was not installed (`None`: forgets it).
pub fn record_refusal(m: &dyn Machine, refusal: Option<&Refusal>) -> Result<(), HostError> {
    match refusal.and_then(|r| serde_json::to_string(r).ok()) {
        Some(json) => m
            .write(&file(REFUSED), &format!("{json}\n"), 0o600)
            .map(drop),
        None => {
            m.remove(&file(REFUSED));
            Ok(())
        }
    }
}

/// The real `etcdctl` the wrapper runs: the resource's, else the distribution's.
pub fn real_etcdctl(m: &dyn Machine) -> String {
    let ours = format!("{}/etcdctl", paths::BIN_DIR);
    match m.exists(&ours) {
        true => ours,
        false => "/usr/bin/etcdctl".into(),
    }
}

/// What this member's TLS files were made from, as recorded once written; `None` when a file is
/// missing (they are made again).
pub fn tls_record(m: &dyn Machine) -> Option<String> {
    let files = [
        paths::TLS_CA,
        paths::TLS_CERT,
        paths::TLS_KEY,
        paths::TLS_CLIENT_CERT,
        paths::TLS_CLIENT_KEY,
    ];
    match files.iter().all(|f| m.exists(f)) {
        true => m.read(&file(TLS_RECORD)),
        false => None,
    }
}

/// Records what the TLS files were made from (written last, once they are all in place).
pub fn record_tls(m: &dyn Machine, record: &str) -> Result<(), HostError> {
    m.write(&file(TLS_RECORD), record, 0o600).map(drop)
}

/// Forgets the TLS record (written first, before the files change).
pub fn forget_tls(m: &dyn Machine) {
    m.remove(&file(TLS_RECORD));
}

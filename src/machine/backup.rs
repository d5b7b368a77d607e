//! The scheduled backups' systemd timer on this machine: written, enabled, or removed as
//! [`crate::core::backup::timer_files`] decides. The timer starts a oneshot service that enters
//! hook context with Juju's runner (`juju-exec` on Juju 3, `juju-run` on 2.9) and runs the
//! charm's dispatcher as `backup/scheduled`, which decides whether a backup is due and taken here.

use super::host::HostError;
use super::Machine;
use crate::core::backup;

/// The timer unit file.
pub const TIMER_PATH: &str = "/etc/systemd/system/etcd-backup.timer";
/// The service unit file.
pub const SERVICE_PATH: &str = "/etc/systemd/system/etcd-backup.service";
/// Juju's runners, in order of preference (Juju 3, then 2.9).
pub const RUNNERS: [&str; 2] = ["/usr/bin/juju-exec", "/usr/bin/juju-run"];

/// Brings the timer in line: the files written and the timer (re)started when they change, or
/// stopped and removed when no timer is wanted. Returns whether anything changed.
pub fn sync_timer(
    m: &dyn Machine,
    unit: &str,
    period: Option<u64>,
    related: bool,
    staying: bool,
) -> Result<bool, HostError> {
    let runner = RUNNERS.into_iter().find(|r| m.exists(r));
    match backup::timer_files(period, related, staying, runner, unit) {
        Some((timer, service)) => {
            let wrote_service = m.write(SERVICE_PATH, &service, 0o644)?;
            let wrote_timer = m.write(TIMER_PATH, &timer, 0o644)?;
            if !(wrote_service || wrote_timer) {
                return Ok(false);
            }
            m.systemctl(&["daemon-reload"])?;
            m.systemctl(&["enable", backup::TIMER])?;
            m.systemctl(&["restart", backup::TIMER])?;
            Ok(true)
        }
        None if m.exists(TIMER_PATH) || m.exists(SERVICE_PATH) => {
            let _ = m.systemctl(&["disable", "--now", backup::TIMER]);
            m.remove(TIMER_PATH);
            m.remove(SERVICE_PATH);
            m.systemctl(&["daemon-reload"])?;
            Ok(true)
        }
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::FakeMachine;

    #[test]
    fn the_timer_follows_the_schedule_and_the_relation() {
        let m = FakeMachine::new();
        m.write(RUNNERS[0], "", 0o755).unwrap();
        assert!(sync_timer(&m, "etcd/1", Some(3600), true, true).unwrap());
        let service = m.read(SERVICE_PATH).unwrap();
        assert!(service.contains("/usr/bin/juju-exec etcd/1 "), "{service}");
        // Unchanged: nothing restarted.
        assert!(!sync_timer(&m, "etcd/1", Some(3600), true, true).unwrap());
        // The relation goes: the timer goes.
        assert!(sync_timer(&m, "etcd/1", Some(3600), false, true).unwrap());
        assert!(!m.exists(TIMER_PATH) && !m.exists(SERVICE_PATH));
        assert!(!sync_timer(&m, "etcd/1", None, true, true).unwrap());
    }
}

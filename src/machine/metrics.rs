/*!
The facts exporter's machine side: the charm's own metrics ([`crate::core::facts`]) collected
from this machine and rewritten atomically into [`paths::FACTS_FILE`] after the hooks that can
change one, after `defrag` and the leader's automatic defragmentations (each announces the
members it did in peer data; each of their units records its own) and after a verified backup (announced in peer data as
`backup-verified`; every unit records the newest it hears of), the systemd unit that serves them, and the serving mode itself ([`serve`]: the
charm binary as `etcd-charm serve-facts <addr> <file>`, one request at a time on std's
`TcpListener`).
*/

use super::host::HostError;
use super::Machine;
use crate::core::facts::{self, Facts};
use crate::core::maintenance::announcement;
use crate::core::observed;
use crate::core::render;
use crate::juju::context::{JujuContext, PEER_ENDPOINT};
use crate::juju::{Juju, Settings};
use crate::paths;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

/// Where the last defragmentation of this unit's member is recorded (Unix seconds).
fn defrag_file() -> String {
    format!("{}/last-defrag", paths::STATE_DIR)
}

/// Records that this unit's member finished a defragmentation at `unix` seconds.
pub fn record_defrag(m: &dyn Machine, unix: i64) -> Result<(), HostError> {
    m.write(&defrag_file(), &format!("{unix}\n"), 0o600)
        .map(drop)
}

pub use crate::core::maintenance::DEFRAG_KEY;

/// Records this unit's member defragmented at `unix` and brings the facts file up to date.
pub fn record_own_defrag(m: &dyn Machine, unix: i64) -> Result<(), HostError> {
    record_defrag(m, unix)?;
    refresh(m, false)
}

/// After `defrag` defragmented `done` (member names, comma-separated) at `unix`: records this
/// unit's member (`own`) if it is one, and announces them all in this unit's peer data.
pub fn after_defrag(
    m: &dyn Machine,
    juju: &dyn Juju,
    own: &str,
    done: &str,
    unix: i64,
) -> Result<(), String> {
    if done.split(',').any(|n| n == own) {
        record_own_defrag(m, unix).map_err(|e| e.to_string())?;
    }
    let rel = juju
        .relation_ids(PEER_ENDPOINT)
        .map_err(|e| e.to_string())?;
    let Some(rel) = rel.into_iter().next() else {
        return Ok(());
    };
    let announce = Settings::from([(DEFRAG_KEY.to_string(), announcement(unix, done))]);
    juju.relation_set(&rel, &announce)
        .map_err(|e| e.to_string())
}

/// In a peer relation hook: what the remote unit announces, recorded where it is newer than
/// what is recorded: its [`DEFRAG_KEY`] when it names this unit's member, and its verified
/// backup. Returns whether anything was recorded (the facts file is then refreshed). The remote
/// unit's data is the one observe read in this hook: the hook tools ask it once per hook.
pub fn take_announced(m: &dyn Machine, juju: &dyn Juju, ctx: &JujuContext) -> Result<bool, String> {
    let (Some(rel), Some(remote)) = (&ctx.relation_id, &ctx.remote_unit) else {
        return Ok(false);
    };
    if ctx.relation.as_deref() != Some(PEER_ENDPOINT) {
        return Ok(false);
    }
    let data = juju.relation_get(rel, remote).map_err(|e| e.to_string())?;
    let mut recorded = false;
    if let Some(t) = observed::backup_verified(&data) {
        recorded |= record_verified_backup(m, t).map_err(|e| e.to_string())?;
    }
    let announced = data.get(DEFRAG_KEY).and_then(|v| v.split_once(' '));
    let Some((unix, members)) = announced else {
        return Ok(recorded);
    };
    let own = ctx.member_name();
    match unix.parse::<i64>() {
        Ok(t) if members.split(',').any(|n| n == own) && t > last_defrag(m) => {
            record_defrag(m, t).map_err(|e| e.to_string())?;
            Ok(true)
        }
        _ => Ok(recorded),
    }
}

/// Where the newest verified backup this unit knows of is recorded (Unix seconds).
fn verified_file() -> String {
    format!("{}/last-verified-backup", paths::STATE_DIR)
}

/// The recorded newest verified backup this unit knows of.
fn last_verified_backup(m: &dyn Machine) -> Option<i64> {
    m.read(&verified_file())?.trim().parse().ok()
}

/// Records a verified backup taken at `unix` when it is newer than the one recorded; returns
/// whether it was.
pub fn record_verified_backup(m: &dyn Machine, unix: u64) -> Result<bool, HostError> {
    let unix = i64::try_from(unix).unwrap_or(i64::MAX);
    if last_verified_backup(m).is_some_and(|t| t >= unix) {
        return Ok(false);
    }
    m.write(&verified_file(), &format!("{unix}\n"), 0o600)
}

/// The recorded last defragmentation of this unit's member; 0 if none.
fn last_defrag(m: &dyn Machine) -> i64 {
    let text = m.read(&defrag_file());
    text.and_then(|t| t.trim().parse().ok()).unwrap_or(0)
}

/// The facts of this machine: the certificates' `notAfter` while the member runs with TLS, the
/// last defragmentation, the newest verified backup known here (`0` while scheduled backups
/// are set up, their timer installed, and none is known: the alert then fires if none comes).
pub fn collect(m: &dyn Machine) -> Facts {
    let tls = m
        .read(paths::CONFIG_FILE)
        .is_some_and(|c| render::tls_of(&c));
    let files = [
        ("ca", paths::TLS_CA),
        ("member", paths::TLS_CERT),
        ("client", paths::TLS_CLIENT_CERT),
    ];
    let expiry = |path: &str| {
        let pem = pem::parse(m.read(path)?).ok()?;
        facts::not_after(pem.contents())
    };
    let certificates = match tls {
        true => files
            .iter()
            .filter_map(|(name, path)| Some((*name, expiry(path)?)))
            .collect(),
        false => Vec::new(),
    };
    Facts {
        certificates,
        last_defrag: last_defrag(m),
        last_verified_backup: last_verified_backup(m)
            .or_else(|| m.exists(super::backup::TIMER_PATH).then_some(0)),
    }
}

/// Rewrites the facts file where it changed, and installs the exporter's unit (enabled and
/// started) where it changed; `restart` restarts the exporter anyway (a new charm binary).
pub fn refresh(m: &dyn Machine, restart: bool) -> Result<(), HostError> {
    m.write(paths::FACTS_FILE, &facts::render(&collect(m)), 0o644)?;
    let changed = m.write(paths::FACTS_UNIT_FILE, &facts::systemd_unit(), 0o644)?;
    if changed {
        m.systemctl(&["daemon-reload"])?;
        m.systemctl(&["enable", paths::FACTS_SERVICE])?;
    }
    if changed || restart {
        m.systemctl(&["restart", paths::FACTS_SERVICE])?;
    }
    Ok(())
}

/// Stops the exporter and removes its files (the `remove` hook).
pub fn remove(m: &dyn Machine) {
    let _ = m.systemctl(&["disable", "--now", paths::FACTS_SERVICE]);
    for path in [paths::FACTS_UNIT_FILE, paths::FACTS_DIR, paths::FACTS_BIN] {
        m.remove(path);
    }
    let _ = m.systemctl(&["daemon-reload"]);
}

/// Copies the running charm binary to [`paths::FACTS_BIN`] when it is missing or, with
/// `check`, differs (after `upgrade-charm`); returns whether it copied.
pub fn install_binary(check: bool) -> std::io::Result<bool> {
    let exe = std::env::current_exe()?;
    let same = match (check, std::fs::metadata(paths::FACTS_BIN)) {
        (_, Err(_)) => false,
        (false, Ok(_)) => true,
        (true, Ok(_)) => std::fs::read(&exe)? == std::fs::read(paths::FACTS_BIN)?,
    };
    if same {
        return Ok(false);
    }
    let dir = std::path::Path::new(paths::FACTS_BIN).parent();
    std::fs::create_dir_all(dir.unwrap_or(std::path::Path::new("/")))?;
    let tmp = format!("{}.charm-tmp", paths::FACTS_BIN);
    std::fs::copy(&exe, &tmp)?;
    std::fs::rename(&tmp, paths::FACTS_BIN)?;
    Ok(true)
}

/// Serves `file` as `GET /metrics` on `addr` until killed; anything else gets 404.
pub fn serve(addr: &str, file: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
        let mut head = [0u8; 1024];
        let n = stream.read(&mut head).unwrap_or(0);
        let first = String::from_utf8_lossy(&head[..n]);
        let path = first.split_whitespace().nth(1).unwrap_or("");
        let get = first.starts_with("GET ");
        let (status, body) = match (get, path) {
            (true, "/metrics") => ("200 OK", std::fs::read_to_string(file).unwrap_or_default()),
            _ => ("404 Not Found", "not found: GET /metrics\n".to_string()),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::observed::peer_keys::BACKUP_VERIFIED;
    use crate::fakes::FakeMachine;
    use serde_json::Value;

    fn cert_expiring(y: i32, m: u8, d: u8) -> String {
        let mut params = rcgen::CertificateParams::new(vec!["x".to_string()]).unwrap();
        params.not_after = rcgen::date_time_ymd(y, m, d);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    /// etcd's config as the charm renders it, with or without TLS.
    fn config(tls: bool) -> String {
        let cfg = crate::core::config::CharmConfig {
            tls,
            ..Default::default()
        };
        let init = render::InitialCluster {
            state: render::ClusterState::New,
            cluster: String::new(),
            token: String::new(),
        };
        render::etcd_config(&cfg, "3.4.23", "etcd0", "10.0.0.1", &init, &[])
    }

    #[test]
    fn facts_from_the_machine() {
        let m = FakeMachine::new();
        assert_eq!(collect(&m), Facts::default());
        record_defrag(&m, 1_700_000_000).unwrap();
        m.put(paths::TLS_CA, &cert_expiring(2036, 5, 6));
        m.put(paths::TLS_CERT, &cert_expiring(2031, 1, 2));
        m.put(paths::CONFIG_FILE, &config(true));
        let f = collect(&m);
        assert_eq!(f.last_defrag, 1_700_000_000);
        assert_eq!(
            f.certificates,
            [("ca", 2_093_644_800), ("member", 1_925_078_400)]
        );
        // Without TLS in force, no certificate is exported.
        m.put(paths::CONFIG_FILE, &config(false));
        assert!(collect(&m).certificates.is_empty());
    }

    /// etcd/1's peer relation hook for a change of etcd/0's data.
    fn peer_hook_of_etcd_1() -> JujuContext {
        JujuContext {
            unit_name: "etcd/1".into(),
            relation: Some(PEER_ENDPOINT.into()),
            relation_id: Some("cluster:1".into()),
            remote_unit: Some("etcd/0".into()),
            ..JujuContext::default()
        }
    }

    #[test]
    fn a_defrag_of_every_member_reaches_each_unit() {
        use crate::fakes::FakeJuju;
        // etcd/0 ran `defrag all=true`: it records its own member and announces both.
        let (m0, j0) = (FakeMachine::new(), FakeJuju::new("etcd/0", Value::Null));
        after_defrag(&m0, &j0, "etcd0", "etcd1,etcd0", 1_700_000_000).unwrap();
        assert_eq!(last_defrag(&m0), 1_700_000_000);
        let announced = j0.own_data.borrow().clone();
        assert_eq!(announced[DEFRAG_KEY], "1700000000 etcd1,etcd0");
        // etcd/1 takes it in its peer relation hook; an older one later changes nothing.
        let (m1, mut j1) = (FakeMachine::new(), FakeJuju::new("etcd/1", Value::Null));
        j1.peers.insert("etcd/0".into(), announced);
        let ctx = peer_hook_of_etcd_1();
        take_announced(&m1, &j1, &ctx).unwrap();
        assert_eq!(last_defrag(&m1), 1_700_000_000);
        let older = Settings::from([(DEFRAG_KEY.to_string(), "5 etcd1".to_string())]);
        j1.peers.insert("etcd/0".into(), older);
        take_announced(&m1, &j1, &ctx).unwrap();
        assert_eq!(last_defrag(&m1), 1_700_000_000);
        // A unit whose member is not named records nothing.
        let m2 = FakeMachine::new();
        let ctx2 = JujuContext {
            unit_name: "etcd/2".into(),
            ..ctx
        };
        take_announced(&m2, &j1, &ctx2).unwrap();
        assert_eq!(last_defrag(&m2), 0);
    }

    #[test]
    fn the_newest_verified_backup_heard_of_is_exported() {
        use crate::fakes::FakeJuju;
        let m = FakeMachine::new();
        // Scheduled backups set up (their timer), none verified yet: 0, so the alert can fire.
        m.put(super::super::backup::TIMER_PATH, "");
        assert_eq!(collect(&m).last_verified_backup, Some(0));
        assert!(record_verified_backup(&m, 1_700_000_000).unwrap());
        assert!(!record_verified_backup(&m, 1_600_000_000).unwrap());
        assert_eq!(collect(&m).last_verified_backup, Some(1_700_000_000));
        // A peer announces a newer one in its peer relation hook; an older one changes nothing.
        let mut j = FakeJuju::new("etcd/1", Value::Null);
        let verified = |t: &str| Settings::from([(BACKUP_VERIFIED.to_string(), t.to_string())]);
        j.peers.insert("etcd/0".into(), verified("1700000100"));
        let ctx = peer_hook_of_etcd_1();
        assert!(take_announced(&m, &j, &ctx).unwrap());
        assert_eq!(collect(&m).last_verified_backup, Some(1_700_000_100));
        j.peers.insert("etcd/0".into(), verified("5"));
        assert!(!take_announced(&m, &j, &ctx).unwrap());
        let text = facts::render(&collect(&m));
        assert!(text.contains("etcd_charm_last_verified_backup_timestamp_seconds 1700000100\n"));
        // Without a schedule or a record, nothing is exported.
        assert_eq!(collect(&FakeMachine::new()).last_verified_backup, None);
    }

    #[test]
    fn refresh_installs_the_unit_once() {
        let m = FakeMachine::new();
        refresh(&m, false).unwrap();
        let text = m.read(paths::FACTS_FILE).unwrap();
        assert!(text.contains("etcd_charm_last_defrag_timestamp_seconds 0\n"));
        let starts = |m: &FakeMachine| {
            let restart = format!("systemctl restart {}", paths::FACTS_SERVICE);
            m.calls().iter().filter(|c| **c == restart).count()
        };
        assert_eq!(starts(&m), 1);
        refresh(&m, false).unwrap();
        assert_eq!(starts(&m), 1);
        refresh(&m, true).unwrap();
        assert_eq!(starts(&m), 2);
    }
}

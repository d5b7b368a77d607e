/*!
What several actions share: where the local member listens, the endpoints to try, which Juju unit
owns which member, result keys, sizes and times.
*/

use super::{Action, Stop};
use crate::core::observed::{keys, peer_keys, VolumeOwner};
use crate::core::render;
use crate::etcd::{Member, MemberStatus};
use crate::juju::context::{member_name, unit_number, PEER_ENDPOINT};
use crate::machine::host::{self, Host};
use crate::machine::state;
use crate::paths;
use std::path::Path;

/// The local member's client URL on loopback (`https` when the config etcd runs says so).
pub fn local_endpoint(a: &Action) -> String {
    let rendered = host::read(paths::CONFIG_FILE);
    render::member_url(rendered.as_deref(), Some(a.config()))
}

/// Where the member's data really lives: the data dir itself and the directory beside it where
/// new data is unpacked and old data set aside (same filesystem, so a rename moves it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataPlace {
    /// The real data dir (not the link to it).
    pub dir: &'static Path,
    /// Its parent: restored and kept copies go here.
    pub home: &'static Path,
}

impl DataPlace {
    /// The data dir is on the `data` store's volume.
    pub fn on_volume(&self) -> bool {
        self.dir == Path::new(paths::VOLUME_DATA_DIR)
    }
}

/// The data dir's place, given where [`paths::DATA_DIR`] links to (if it is a link): on the
/// storage volume when it links there, else etcd's home on the root disk.
pub fn data_place(link: Option<&Path>) -> DataPlace {
    let (dir, home) = match link == Some(Path::new(paths::VOLUME_DATA_DIR)) {
        true => (paths::VOLUME_DATA_DIR, paths::VOLUME),
        false => (paths::DATA_DIR, paths::ETCD_HOME),
    };
    DataPlace {
        dir: Path::new(dir),
        home: Path::new(home),
    }
}

/// This machine's data dir place ([`data_place`]).
pub fn data_here() -> DataPlace {
    data_place(std::fs::read_link(paths::DATA_DIR).ok().as_deref())
}

/// The endpoints to try, the local member first, then those the leader published.
pub fn endpoints(a: &Action) -> Vec<String> {
    let mut eps = vec![local_endpoint(a)];
    let published = a.leader_data().get(keys::ENDPOINTS).cloned();
    for ep in published.unwrap_or_default().split(',').map(str::trim) {
        if !ep.is_empty() && !eps.iter().any(|e| e == ep) {
            eps.push(ep.to_string());
        }
    }
    eps
}

/// A unit of the application with what it publishes on the peer relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitInfo {
    /// e.g. `etcd/1`.
    pub unit: String,
    /// Its member name, e.g. `etcd1`.
    pub name: String,
    /// Its peer URL, when published.
    pub peer_url: Option<String>,
}

/// This unit and its peers, by unit number.
pub fn units(a: &Action) -> Vec<UnitInfo> {
    let own_peer = host::read(paths::CONFIG_FILE)
        .as_deref()
        .and_then(render::advertised_urls)
        .map(|(peer, _)| peer);
    let mut all = vec![UnitInfo {
        unit: a.ctx.unit_name.clone(),
        name: a.ctx.member_name(),
        peer_url: own_peer,
    }];
    let rel = a
        .juju
        .relation_ids(PEER_ENDPOINT)
        .ok()
        .and_then(|r| r.into_iter().next());
    if let Some(rel) = rel {
        for unit in a.juju.relation_list(&rel).unwrap_or_default() {
            let data = a.juju.relation_get(&rel, &unit).unwrap_or_default();
            all.push(UnitInfo {
                name: member_name(&unit),
                peer_url: data.get(peer_keys::PEER_URL).cloned(),
                unit,
            });
        }
    }
    all.sort_by_key(|u| unit_number(&u.unit));
    all
}

/// The unit owning a member: by name, or by peer URL while the member is unnamed.
pub fn unit_of<'a>(units: &'a [UnitInfo], m: &Member) -> Option<&'a UnitInfo> {
    units.iter().find(|u| match m.name.is_empty() {
        false => u.name == m.name,
        true => u.peer_url.as_ref().is_some_and(|p| m.peer_urls.contains(p)),
    })
}

/// A member's label: its name, else its id in hex.
pub fn label(m: &Member) -> String {
    match m.name.is_empty() {
        true => format!("{:x}", m.id),
        false => m.name.clone(),
    }
}

/// One segment of an `action-set` key: lowercase letters, digits and inner hyphens.
pub fn key_part(s: &str) -> String {
    let k: String = s
        .to_lowercase()
        .chars()
        .map(|c| match c.is_ascii_lowercase() || c.is_ascii_digit() {
            true => c,
            false => '-',
        })
        .collect();
    let k = k.trim_matches('-').to_string();
    match k.is_empty() {
        true => "x".into(),
        false => k,
    }
}

/// Items joined with `, `, or `none`.
pub fn list_or_none(items: &[String]) -> String {
    match items.is_empty() {
        true => "none".to_string(),
        false => items.join(", "),
    }
}

/// Majority of `n` voters.
pub fn quorum(n: usize) -> usize {
    n / 2 + 1
}

/// A healthy voting member: answers, votes, knows a Raft leader.
pub fn healthy(s: &MemberStatus) -> bool {
    !s.is_learner && s.leader != 0
}

/// Bytes for people: `734 B`, `16.0 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    match i {
        0 => format!("{n} B"),
        _ => format!("{v:.1} {}", UNITS[i]),
    }
}

pub use crate::machine::host::{now_secs, stamp};

/// Fails unless this unit is the Juju leader.
pub fn require_leader(a: &Action, what: &str) -> Result<(), Stop> {
    match a.juju.is_leader()? {
        true => Ok(()),
        false => Err(Stop::Fail(format!(
            "{what} runs on the leader unit only, and {} is not the leader: run it on the unit \
             `juju status etcd` marks with `*`",
            a.ctx.unit_name
        ))),
    }
}

/// Waits at most `budget` for the member at `endpoint` to answer as the Raft leader of a
/// cluster of its own (after a restore or a rebuild).
pub fn wait_sole_leader(
    etcd: &dyn crate::etcd::Etcd,
    endpoint: &str,
    budget: std::time::Duration,
) -> Option<MemberStatus> {
    let deadline = std::time::Instant::now() + budget;
    loop {
        if let Ok(s) = etcd.status(endpoint) {
            if s.leader != 0 && s.leader == s.member_id {
                return Some(s);
            }
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// Starts etcd on this unit and waits up to 60 s for it to lead a cluster of its own (after a
/// restore or a rebuild); `Err(why_not)` when it does not.
pub fn start_sole_leader(
    a: &Action,
    endpoint: &str,
    why_not: &str,
) -> Result<MemberStatus, String> {
    super::machine::start_etcd()?;
    wait_sole_leader(a.etcd, endpoint, std::time::Duration::from_secs(60))
        .ok_or_else(|| why_not.to_string())
}

/// After a restore or a rebuild (this unit's member alone): records its member id and publishes
/// the new one-member cluster in leader data at once, so the other units see that their members
/// were removed, move their data aside and are admitted again one at a time. `token` replaces
/// the cluster token when the cluster is a new one.
pub fn publish_sole_member(
    a: &Action,
    member_id: u64,
    version: &str,
    token: Option<&str>,
) -> Result<(), Stop> {
    if let Err(e) = state::record_member_id(&Host, member_id) {
        a.progress(&format!("cannot record the member id: {e}"));
    }
    if data_here().on_volume() {
        let owner = VolumeOwner {
            member_id,
            unit: a.ctx.unit_name.clone(),
            alone: true,
        };
        if let Err(e) = state::record_volume_owner(&Host, &owner) {
            a.progress(&format!("cannot record the member id on the volume: {e}"));
        }
    }
    let endpoints = vec![local_endpoint(a)];
    let members = a.etcd.member_list(&endpoints).unwrap_or_default();
    let version = Some(version).filter(|v| !v.is_empty());
    let mut data = crate::core::membership::published_keys(&members, version).unwrap_or_default();
    // No unit is joining or restarting any more: their turns are given again from scratch.
    data.extend(crate::core::membership::joining_keys(None));
    data.extend(crate::core::membership::restart_keys(None));
    if let Some(t) = token {
        data.insert(keys::TOKEN.to_string(), t.to_string());
    }
    a.juju.leader_set(&data)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restored_data_goes_where_the_data_dir_really_is() {
        let volume = data_place(Some(Path::new(paths::VOLUME_DATA_DIR)));
        assert_eq!(volume.dir, Path::new(paths::VOLUME_DATA_DIR));
        assert_eq!(volume.home, Path::new(paths::VOLUME));
        assert!(volume.on_volume());
        for link in [None, Some(Path::new("/srv/elsewhere"))] {
            let root = data_place(link);
            assert_eq!(root.dir, Path::new(paths::DATA_DIR));
            assert_eq!(root.home, Path::new(paths::ETCD_HOME));
            assert!(!root.on_volume());
        }
    }

    #[test]
    fn stamps_are_utc_civil_dates() {
        assert_eq!(stamp(0), "19700101T000000Z");
        assert_eq!(stamp(951_782_400), "20000229T000000Z");
        assert_eq!(stamp(1_767_225_599), "20251231T235959Z");
    }

    #[test]
    fn keys_are_valid_action_set_segments() {
        assert_eq!(key_part("etcd0"), "etcd0");
        assert_eq!(key_part("My_Etcd/2"), "my-etcd-2");
        assert_eq!(key_part("--"), "x");
    }

    #[test]
    fn sizes_and_quorum() {
        assert_eq!(human_bytes(734), "734 B");
        assert_eq!(human_bytes(16 * 1024 * 1024), "16.0 MiB");
        assert_eq!((quorum(1), quorum(2), quorum(3), quorum(5)), (1, 2, 2, 3));
    }

    #[test]
    fn members_map_to_units_by_name_or_peer_url() {
        let units = vec![
            UnitInfo {
                unit: "etcd/0".into(),
                name: "etcd0".into(),
                peer_url: Some("http://10.0.0.1:2380".into()),
            },
            UnitInfo {
                unit: "etcd/3".into(),
                name: "etcd3".into(),
                peer_url: Some("http://10.0.0.4:2380".into()),
            },
        ];
        let named = Member {
            id: 1,
            name: "etcd0".into(),
            ..Member::default()
        };
        let unnamed = Member {
            id: 0xab,
            peer_urls: vec!["http://10.0.0.4:2380".into()],
            ..Member::default()
        };
        let stranger = Member {
            id: 2,
            name: "other9".into(),
            ..Member::default()
        };
        assert_eq!(
            unit_of(&units, &named).map(|u| u.unit.as_str()),
            Some("etcd/0")
        );
        assert_eq!(
            unit_of(&units, &unnamed).map(|u| u.unit.as_str()),
            Some("etcd/3")
        );
        assert_eq!(unit_of(&units, &stranger), None);
        assert_eq!(label(&unnamed), "ab");
    }
}

/*!
The pure planner: [`plan`] turns [`Observed`] facts into a [`Plan`] (effects in order, and the
status to show). It does no IO and cannot fail; "not possible yet" is a `waiting` status.

Expected flow of a unit:
1. Not installed → install (then plan again).
2. No data dir: the Juju leader of a new application bootstraps a one-member cluster; any
   other unit publishes its peer URL and waits until the leader admits it as a learner
   (`joining-*` leader data naming it), then starts with `initial-cluster-state: existing`.
3. A member: config rendered, etcd running; restarted only if a setting it reads changed.
4. A data dir whose member the cluster no longer lists (and etcd not answering): wiped, and
   the unit rejoins as in 2.

The leader's side (membership, one change per pass) is in [`crate::membership`].
*/

use crate::config::CharmConfig;
use crate::context::Hook;
use crate::etcd::Member;
use crate::hooktools::Settings;
use crate::membership;
use crate::observe::{keys, peer_keys, Leadership, Observed};
use crate::render::{self, InitialCluster};
use crate::status::Status;

/// One thing to do, in plan order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Install etcd (resource, else packages).
    Install,
    /// `application-version-set`.
    SetVersion(String),
    /// Write etcd's config (and unit, wrapper, env); restart a running etcd only if a setting
    /// it reads changed.
    Render(String),
    /// Enable and start etcd without blocking, then wait a bounded time for it to answer.
    Start,
    /// Record the member id the data dir belongs to.
    RecordMemberId(u64),
    /// Move a removed member's data dir aside so the unit can rejoin.
    Wipe,
    /// `open-port` for clients.
    OpenPort(u16),
    /// `relation-set` on the peer relation (this unit's data).
    PeerSet(String, Settings),
    /// `relation-set` on a `db`/`proxy` relation.
    RelationSet(String, Settings),
    /// `leader-set`.
    LeaderSet(Settings),
    /// Leader: add the unit's member as a learner, publish its `joining-*` data.
    Admit {
        /// The unit.
        unit: String,
        /// Its peer URL.
        peer_url: String,
    },
    /// Leader: promote the joining learner, then clear `joining-*`.
    Promote {
        /// The unit.
        unit: String,
        /// Its member id.
        id: u64,
    },
    /// Leader: remove a member whose unit is gone.
    Remove {
        /// Member name (or peer URL when unnamed), for logs.
        name: String,
        /// Member id.
        id: u64,
    },
    /// Departing unit: hand Raft leadership to `transfer_to` if set, then remove itself.
    Leave {
        /// This member's id.
        id: u64,
        /// Where to move Raft leadership first.
        transfer_to: Option<u64>,
    },
    /// Remember that this unit is leaving.
    MarkDeparting,
    /// Stop and disable etcd.
    Stop,
    /// Remove the charm's files from the machine.
    Cleanup,
}

/// What one pass does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Effects, applied in order.
    pub effects: Vec<Effect>,
    /// The status to set at the end.
    pub status: Status,
    /// Observe and plan again after applying (the world changed in a way worth a look).
    pub again: bool,
}

impl Plan {
    fn only(status: Status) -> Plan {
        Plan {
            effects: Vec::new(),
            status,
            again: false,
        }
    }
}

/// Decides what this pass does.
pub fn plan(o: &Observed) -> Plan {
    match &o.hook {
        Hook::Remove => {
            return Plan {
                effects: vec![Effect::Stop, Effect::Cleanup],
                ..Plan::only(Status::Stopped)
            }
        }
        Hook::Stop => {
            return Plan {
                effects: vec![Effect::Stop],
                ..Plan::only(Status::Stopped)
            }
        }
        _ if o.departing => return membership::departure(o),
        _ => {}
    }
    if o.leadership == Leadership::Unsupported {
        return Plan::only(Status::NoLeadership);
    }
    let cfg = match &o.config {
        Ok(cfg) => cfg,
        Err(e) => return Plan::only(Status::InvalidConfig(e.clone())),
    };
    let Some(version) = &o.local.version else {
        let effects = vec![Effect::Install];
        return Plan {
            effects,
            again: true,
            ..Plan::only(Status::Installing)
        };
    };
    let mut p = Plan::only(Status::Starting);
    let hook = o.hook.name();
    if hook == "upgrade-charm" {
        p.effects.push(Effect::Install);
    }
    if matches!(
        hook.as_str(),
        "install" | "start" | "upgrade-charm" | "config-changed"
    ) {
        p.effects.push(Effect::SetVersion(version.clone()));
        p.effects.push(Effect::OpenPort(cfg.port));
    }
    let Some(address) = o.local.address.as_deref() else {
        p.status = Status::WaitAddress;
        return p;
    };
    p.status = own_member(o, cfg, address, &mut p);
    if let Some(e) = peer_data(o, cfg, address) {
        p.effects.push(e);
    }
    let published = match o.leadership {
        Leadership::Leader => membership::leader(o, &mut p),
        _ => o.leader_data.raw.clone(),
    };
    p.effects.extend(client_data(o, &published));
    p
}

/// The leader-data view used for relation data: the keys the leader publishes.
fn lookup<'a>(data: &'a Settings, key: &str) -> Option<&'a str> {
    data.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

/// Where this unit's data dir stands against the member list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfState<'a> {
    /// No data dir.
    Fresh,
    /// Listed in the cluster.
    Member(&'a Member),
    /// Not listed any more, and etcd not answering: a removed member's data dir.
    Removed,
    /// Data dir present, member list unknown.
    Unknown,
}

/// Finds this unit's member: by recorded id, else the id the local member reports, else by
/// name or peer URL.
pub fn self_state<'a>(o: &'a Observed, peer_url: &str) -> SelfState<'a> {
    if !o.local.has_data {
        return SelfState::Fresh;
    }
    let Some(members) = &o.members else {
        return SelfState::Unknown;
    };
    let id = o
        .local
        .member_id
        .or(o.local.status.as_ref().map(|s| s.member_id));
    let name = o.name();
    let found = members.iter().find(|m| match id {
        Some(id) => m.id == id,
        None => m.name == name || m.peer_urls.iter().any(|u| u == peer_url),
    });
    match (found, &o.local.status) {
        (Some(m), _) => SelfState::Member(m),
        (None, Some(_)) => SelfState::Unknown, // it answers: never wipe a live member
        (None, None) => SelfState::Removed,
    }
}

fn render(o: &Observed, cfg: &CharmConfig, address: &str, init: &InitialCluster) -> Effect {
    Effect::Render(render::etcd_config(cfg, &o.name(), address, init))
}

fn self_only(o: &Observed, cfg: &CharmConfig, address: &str) -> String {
    format!("{}={}", o.name(), render::url(address, cfg.management_port))
}

/// Plans this unit's own etcd and returns its status.
fn own_member(o: &Observed, cfg: &CharmConfig, address: &str, p: &mut Plan) -> Status {
    let peer_url = render::url(address, cfg.management_port);
    let ld = &o.leader_data;
    let token = ld.get(keys::TOKEN);
    let state = self_state(o, &peer_url);
    let start = |p: &mut Plan, init: InitialCluster, status: Status| {
        p.effects.push(render(o, cfg, address, &init));
        p.effects.push(Effect::Start);
        p.again = true;
        status
    };
    match state {
        SelfState::Removed => {
            p.effects.push(Effect::Wipe);
            p.again = true;
            Status::Rejoining
        }
        SelfState::Member(_) | SelfState::Unknown => {
            let fallback = || InitialCluster {
                state: "existing",
                cluster: self_only(o, cfg, address),
                token: token.unwrap_or("").to_string(),
            };
            let kept = o
                .local
                .rendered_config
                .as_deref()
                .and_then(render::initial_cluster_of);
            p.effects
                .push(render(o, cfg, address, &kept.unwrap_or_else(fallback)));
            if !o.local.service_active {
                p.effects.push(Effect::Start);
                p.again = true;
                return Status::Starting;
            }
            let Some(status) = &o.local.status else {
                return Status::WaitHealthy;
            };
            if o.local.member_id != Some(status.member_id) {
                p.effects.push(Effect::RecordMemberId(status.member_id));
            }
            match (status.is_learner, status.leader) {
                (true, _) => Status::Learner,
                (false, 0) => Status::WaitHealthy,
                (false, _) => {
                    let voters = o
                        .members
                        .iter()
                        .flatten()
                        .filter(|m| m.started() && !m.is_learner);
                    Status::Active {
                        peers: voters.count().saturating_sub(1),
                    }
                }
            }
        }
        SelfState::Fresh => {
            let bootstrap = |token: &str| InitialCluster {
                state: "new",
                cluster: self_only(o, cfg, address),
                token: token.to_string(),
            };
            let someone_started = o.peers.iter().any(|p| p.started.is_some());
            match (token, &ld.joining) {
                (None, _) if o.leadership == Leadership::Leader && !someone_started => {
                    p.effects.push(Effect::LeaderSet(Settings::from([
                        (keys::TOKEN.to_string(), o.fresh_token.clone()),
                        (keys::BOOTSTRAP_UNIT.to_string(), o.unit.clone()),
                    ])));
                    start(p, bootstrap(&o.fresh_token), Status::Bootstrapping)
                }
                (None, _) => Status::WaitBootstrap,
                // Resumes a bootstrap cut short before the cluster was published.
                (Some(t), _)
                    if ld.get(keys::BOOTSTRAP_UNIT) == Some(o.unit.as_str())
                        && ld.get(keys::CLUSTER).is_none() =>
                {
                    start(p, bootstrap(t), Status::Bootstrapping)
                }
                (Some(t), Some(j)) if j.unit == o.unit => {
                    let init = InitialCluster {
                        state: "existing",
                        cluster: j.initial_cluster.clone(),
                        token: t.to_string(),
                    };
                    start(p, init, Status::Joining)
                }
                (Some(_), j) => Status::WaitAdmission {
                    behind: j.as_ref().map(|j| j.unit.clone()),
                },
            }
        }
    }
}

/// This unit's peer relation data, when it differs from what is published.
fn peer_data(o: &Observed, cfg: &CharmConfig, address: &str) -> Option<Effect> {
    let rel = o.peer_relation.as_ref()?;
    let id = o
        .local
        .status
        .as_ref()
        .map(|s| s.member_id)
        .or(o.local.member_id);
    let started = match (id, o.local.has_data && o.local.service_active) {
        (Some(id), true) => format!("{id:x}"),
        _ => String::new(),
    };
    let want = Settings::from([
        (
            peer_keys::PEER_URL.to_string(),
            render::url(address, cfg.management_port),
        ),
        (
            peer_keys::CLIENT_URL.to_string(),
            render::url(address, cfg.port),
        ),
        (peer_keys::INGRESS.to_string(), address.to_string()),
        (peer_keys::STARTED.to_string(), started),
    ]);
    changed(&o.own_peer_data, want).map(|s| Effect::PeerSet(rel.clone(), s))
}

/// The entries of `want` that differ from `have` (empty values delete keys that exist).
pub fn changed(have: &Settings, want: Settings) -> Option<Settings> {
    let diff: Settings = want
        .into_iter()
        .filter(|(k, v)| have.get(k).map_or(!v.is_empty(), |h| h != v))
        .collect();
    (!diff.is_empty()).then_some(diff)
}

/// Data for `proxy` and `db` relations: identical on every unit because it comes from the
/// leader's published keys.
///
/// - `proxy`: `cluster` = `name=peerURL,...` of the started voting members, sorted;
///   `endpoints` = their client URLs, sorted, comma-separated (for `etcd grpc-proxy start
///   --endpoints` or `etcd gateway start --endpoints`).
/// - `db`: `connection_string` = the same client URLs; `version` = etcd's version.
fn client_data(o: &Observed, published: &Settings) -> Vec<Effect> {
    let cluster = lookup(published, keys::CLUSTER);
    let endpoints = lookup(published, keys::ENDPOINTS);
    let version = lookup(published, keys::VERSION).or(o.local.version.as_deref());
    let mut effects = Vec::new();
    for rel in &o.clients {
        let mut want = Settings::new();
        let mut put = |k: &str, v: Option<&str>| {
            if let Some(v) = v {
                want.insert(k.to_string(), v.to_string());
            }
        };
        match rel.endpoint.as_str() {
            "proxy" => {
                put("cluster", cluster);
                put("endpoints", endpoints);
            }
            _ => {
                put("connection_string", endpoints);
                put("version", version);
            }
        }
        if let Some(diff) = changed(&rel.published, want) {
            effects.push(Effect::RelationSet(rel.id.clone(), diff));
        }
    }
    effects
}

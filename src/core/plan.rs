/*!
The pure planner: [`plan`] turns [`Observed`] facts into a [`Plan`] (effects in order, and the
status to show). It does no IO and cannot fail; "not possible yet" is a `waiting` status.

Expected flow of a unit:
1. Not installed → install (then plan again).
2. No data dir: the Juju leader of a new application bootstraps a one-member cluster; any
   other unit publishes its peer URL and waits until the leader admits it as a learner
   (`joining-*` leader data naming it), then starts with `initial-cluster-state: existing`.
3. A member: config rendered, etcd running; restarted only if something it reads changed (a
   setting, its systemd unit, its version), and then one member at a time (below).
4. A data dir whose member the cluster no longer lists (and etcd not answering): wiped, and
   the unit rejoins as in 2.

A new `etcd` resource (`upgrade-charm`) is installed only when its version may replace the
cluster's ([`crate::core::version`]): the binaries are replaced while etcd runs, and the member then
restarts on them like for a new setting (the fingerprint includes the version), one at a time.
A refused resource is recorded and blocks the unit, with everything else planned as usual, until
a good one is attached.

Rolling restarts: a running member whose etcd must restart does not write the new config yet.
It publishes `restart-request` (a fingerprint of what it will run) in its peer data and waits
(`waiting for its turn to restart`) until the leader names it in `restart-granted`; then it
writes the files, restarts etcd and waits for its member to be healthy; once healthy it removes
its request, which tells the leader to grant the next. A sole member, a learner, or a member
whose etcd does not answer anyway restarts at once. The config on disk is therefore what etcd
runs; a mark in the charm's state covers a hook that dies between writing it and restarting.

TLS (`tls` option) is recorded in leader data at bootstrap. With TLS, the leader first makes the
CAs (nothing else is planned until they exist); every unit makes its keys on its machine and
publishes certificate requests in its peer data, the leader signs them (only it reads the CA
keys), and the unit writes its files before etcd's config whenever they are missing or its CAs,
certificates or names changed (nothing else is planned while it has no files at all). Changing `tls` on a running
cluster switches it one member at a time through the rolling restart: each unit asks for its
turn; in it, the leader first updates its member's peer URL to the new scheme, then the unit
restarts etcd with both listeners on the new scheme (same ports). A member with TLS settings
dials an `http` peer in plain http, so peers on both schemes keep a quorum meanwhile. Once every
member runs the new scheme, the leader records it in leader data ([`crate::core::membership`]).
A refresh never switches by itself: [`crate::core::transport`] keeps the transport in force
against a `tls` default that changed with the charm.

The leader's side (membership, one change per pass, and the restart grants) is in
[`crate::core::membership`].
*/

use crate::core::auth;
use crate::core::ca_rotation;
use crate::core::certificates;
use crate::core::config::{v2_unsupported, CharmConfig};
use crate::core::cos;
use crate::core::effect::{Effect, Plan};
use crate::core::maintenance;
use crate::core::membership;
use crate::core::observed::{keys, tls_files_record, Issued, Leadership, Observed, TlsRequest};
use crate::core::relations::{client_data, peer_data};
use crate::core::render::{self, ClusterState, InitialCluster};
use crate::core::rotation;
use crate::core::status::{Health, Status, SwitchStep, USAGE_WARNING};
use crate::core::storage;
use crate::core::transport;
use crate::core::version::Version;
use crate::etcd::Member;
use crate::juju::context::Hook;
use crate::juju::Settings;

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
    // A refresh keeps the transport: the plan is made on the transport kept, if any.
    let mut p = running(o);
    if let Some(record) = transport::record(o) {
        p.effects.insert(0, record);
    }
    // A refused resource blocks the unit (etcd runs on as it was) until a good one is attached.
    if let Some(refusal) = &o.local.refused_resource {
        if p.status.state() != "blocked" {
            p.status = Status::ResourceRefused(refusal.clone());
        }
    }
    p
}

/// The plan of a unit that is not stopping or leaving.
fn running(o: &Observed) -> Plan {
    if o.leadership == Leadership::Unsupported {
        return Plan::only(Status::NoLeadership);
    }
    let cfg = match &o.config {
        Ok(cfg) => cfg,
        Err(e) => return Plan::only(Status::InvalidConfig(e.clone())),
    };
    let cfg = &transport::config(o, cfg);
    // `cfg.tls` is the scheme wanted; a running cluster switches to it one member at a time.
    let Some(version) = &o.local.version else {
        let effects = vec![Effect::Install];
        return Plan {
            effects,
            again: true,
            ..Plan::only(Status::Installing)
        };
    };
    if cfg.enable_v2 && Version::parse(version).is_some_and(|v| !render::has_v2(v)) {
        return Plan::only(Status::InvalidConfig(v2_unsupported(version)));
    }
    let mut p = Plan::only(Status::Starting);
    let hook = o.hook.name();
    // A new charm may come with a new resource: install again (it sets the version).
    match hook.as_str() {
        // Observed again after: a new version restarts in turn (or the refusal shows).
        "upgrade-charm" => {
            p.effects.push(Effect::Install);
            p.again = true;
        }
        "install" | "start" | "config-changed" => {
            // What runs, else what is installed (a new one shows once restarted on).
            let running = o.local.status.as_ref().map(|s| s.version.clone());
            let running = running.filter(|v| !v.is_empty());
            p.effects.push(Effect::SetVersion(
                running.unwrap_or_else(|| version.clone()),
            ))
        }
        _ => {}
    }
    if matches!(
        hook.as_str(),
        "install" | "start" | "upgrade-charm" | "config-changed"
    ) {
        p.effects
            .push(Effect::OpenPorts(vec![cfg.port, cfg.metrics_port]));
    }
    let Some(address) = o.local.address.as_deref() else {
        p.status = Status::WaitAddress;
        return p;
    };
    if cfg.tls {
        if let Some(status) = tls_files(o, address, &mut p) {
            p.status = status;
            return p;
        }
    }
    if let Some(e) = storage::placement(o) {
        p.effects.push(e);
        p.again = true;
        return p;
    }
    if let Some((effects, status)) = storage::adopted(o) {
        p.again = !effects.is_empty();
        p.effects.extend(effects);
        p.status = status;
        return p;
    }
    let own = own_member(o, cfg, address, &mut p);
    p.status = switching_status(o, cfg.tls, own.status.clone());
    p.status = rotating_status(o, cfg.tls, p.status);
    if let Some(e) = peer_data(o, cfg, address, own.request.as_deref()) {
        p.effects.push(e);
    }
    let published = match o.leadership {
        Leadership::Leader => {
            let turn = membership::OwnTurn {
                requesting: own.request.is_some(),
                restarting: own.restarting,
            };
            let published = membership::leader(o, &mut p, turn);
            maintenance::leader(o, cfg, &mut p);
            if let Some(step) = ca_rotation::leader_step(o) {
                p.effects.push(step);
                p.again = true;
            }
            published
        }
        _ => o.leader_data.raw.clone(),
    };
    // Credentials stay published while any member may still serve https.
    let credentials = cfg.tls || o.tls_in_force() == Some(true);
    p.effects.extend(client_data(o, &published, credentials));
    let tls = cfg.tls && o.tls_in_force() == Some(true);
    p.effects
        .extend(auth::changes(o, tls).into_iter().map(Effect::Auth));
    p.effects.extend(cos::agent_data(o, cfg, address));
    p
}

/// While the cluster switches scheme (the `tls` option differs from the one in force), the
/// status says so instead of `active` or `waiting for its turn`.
fn switching_status(o: &Observed, tls: bool, status: Status) -> Status {
    if o.tls_in_force().is_none_or(|t| t == tls) {
        return status;
    }
    let next = o.leader_data.restart_granted.clone();
    let step = match status {
        Status::Active(_) | Status::WaitRestart { .. } => match next {
            Some(u) if u == o.unit => SwitchStep::ThisUnit,
            Some(u) => SwitchStep::Next(u),
            None => SwitchStep::Pending,
        },
        Status::Restarting | Status::WaitRestarted => SwitchStep::ThisUnit,
        other => return other,
    };
    Status::SwitchingTls { tls, step }
}

/// While the CAs rotate, the status names the phase instead of `active` (a member's own restart
/// in it shows as it is).
fn rotating_status(o: &Observed, tls: bool, status: Status) -> Status {
    match (ca_rotation::status(o), &status) {
        (Some((phase, what)), Status::Active(h)) if tls && h.alarms.is_empty() => {
            Status::RotatingCa { phase, what }
        }
        _ => status,
    }
}

/// With TLS on: the leader makes the CAs first if leader data has none (or their secret is
/// gone), and signs every unit's requests ([`membership::tls_signing`]). This unit requests
/// certificates for its names (new keys, made on its machine) when it has no request for them,
/// and writes its files once the leader has issued them. The status to show is returned when
/// nothing else can be planned: no CA yet, or no TLS files yet while the request waits.
fn tls_files(o: &Observed, address: &str, p: &mut Plan) -> Option<Status> {
    let ld = &o.leader_data;
    let leader = o.leadership == Leadership::Leader;
    let (Some(ca), Some(_)) = (ld.get(keys::TLS_CA), ld.get(keys::TLS_CLIENT_CERT)) else {
        if leader {
            p.effects.push(Effect::CreateCa);
            p.again = true;
        }
        return Some(Status::WaitTlsCa);
    };
    if leader && o.secrets.ca_lost {
        p.effects.push(Effect::CreateCa);
        p.again = true;
        return Some(Status::WaitTlsCa);
    }
    let legacy = ld.get(keys::TLS_CA_KEY).is_some() && ld.get(keys::TLS_CA_SECRET).is_none();
    if leader && legacy && o.secrets.available && o.secrets.has_ca_keys() {
        p.effects.push(Effect::MoveKeysToSecrets);
    }
    if leader {
        let signing = membership::tls_signing(o);
        // Its own certificates are written on the next pass.
        let own = Effect::Issue {
            unit: o.unit.clone(),
        };
        p.again |= signing.contains(&own);
        p.effects.extend(signing);
    }
    let peer_ca = ld.get(keys::TLS_PEER_CA).unwrap_or(ca);
    let sans = render::tls_sans(address, o.local.hostname.as_deref());
    let waiting = o.local.tls_record.is_none().then_some(Status::WaitTlsCert);
    let request = TlsRequest::from_data(&o.own_peer_data);
    let pending = request.filter(|r| o.local.tls_request_record == Some(r.record(&sans)));
    let Some(request) = pending else {
        // Requests go in peer data: none before the peer relation exists.
        if o.peer_relation.is_some() {
            p.effects.push(Effect::TlsRequest { sans });
            p.again = true;
        }
        return waiting;
    };
    let from = Issued::fingerprint(&request.csr, &request.client_csr, ca, peer_ca);
    let issued = ld.get(&keys::issued_key(&o.unit)).and_then(Issued::parse);
    let Some(issued) = issued.filter(|i| i.from == from) else {
        return waiting;
    };
    let (trusted, peer_trusted) = ca_rotation::trusted(&ld.raw)?;
    let want = tls_files_record(&trusted, &peer_trusted, &issued, &sans);
    if o.local.tls_record.as_deref() != Some(want.as_str()) {
        p.effects.push(Effect::TlsFiles { sans });
    } else {
        certificates::unit(o, &sans, &issued.server, &trusted, p);
    }
    // The clients' bundle starts from the client CAs trusted now (both while a rotation trusts both).
    certificates::trust(o, &trusted, p);
    p.effects.extend(certificates::leader(o, &trusted));
    None
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

/// Finds this unit's member: by its id ([`Observed::member_id`]), else by name or peer URL.
pub fn self_state<'a>(o: &'a Observed, peer_url: &str) -> SelfState<'a> {
    if !o.local.has_data {
        return SelfState::Fresh;
    }
    let Some(members) = &o.members else {
        return SelfState::Unknown;
    };
    let id = o.member_id();
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

fn render(
    o: &Observed,
    cfg: &CharmConfig,
    address: &str,
    init: &InitialCluster,
    old: &[String],
) -> Effect {
    let version = o.local.version.as_deref().unwrap_or("");
    let config = render::etcd_config(cfg, version, &o.name(), address, init, old);
    Effect::Render(ca_rotation::with_line(config, o, cfg.tls))
}

/// True when a file the charm writes differs from what is on disk (or is missing).
fn files_differ(o: &Observed, config: &str) -> bool {
    let port = render::client_port(config).unwrap_or(2379);
    let env = render::etcdctl_env(render::tls_of(config), port);
    let want = [
        (o.local.rendered_config.as_deref(), config.to_string()),
        (o.local.unit_file.as_deref(), render::systemd_unit()),
        (o.local.etcdctl_env.as_deref(), env),
        (
            o.local.etcdctl_wrapper.as_deref(),
            render::etcdctl_wrapper(&o.local.etcdctl),
        ),
    ];
    want.iter().any(|(have, want)| *have != Some(want.as_str()))
}

/// `3.4.23` and `v3.4.23` alike.
fn same_version(a: &str, b: &str) -> bool {
    match (Version::parse(a), Version::parse(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a.trim() == b.trim(),
    }
}

/// The fingerprint of what etcd must be restarted with, when its running etcd reads something
/// other than `config`, the charm's systemd unit and the installed version (or a restart was
/// begun and not seen through).
pub fn restart_needed(o: &Observed, config: &str) -> Option<String> {
    let unit = render::systemd_unit();
    let installed = o.local.version.as_deref().unwrap_or("");
    let config_changed = o
        .local
        .rendered_config
        .as_deref()
        .is_some_and(|old| render::runtime_part(old) != render::runtime_part(config));
    let unit_changed = o.local.unit_file.as_deref().is_some_and(|u| u != unit);
    let version_changed = match &o.local.status {
        Some(s) => {
            !s.version.is_empty() && !installed.is_empty() && !same_version(&s.version, installed)
        }
        None => false,
    };
    let cas_changed = ca_rotation::restart_needed(o, config);
    let needed = config_changed || unit_changed || version_changed || o.local.restart_pending;
    let fingerprint = || render::restart_fingerprint(config, &unit, installed);
    match ca_rotation::loaded(config) {
        Some(cas) if needed || cas_changed => Some(format!("{}-{cas}", fingerprint())),
        _ => needed.then(fingerprint),
    }
}

fn self_only(o: &Observed, cfg: &CharmConfig, address: &str) -> String {
    let peer_url = render::url(cfg.tls, address, cfg.management_port);
    format!("{}={peer_url}", o.name())
}

/// What this unit's own member needs, as the plan decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Own {
    /// The status to show.
    pub status: Status,
    /// The `restart-request` to publish in peer data, if any.
    pub request: Option<String>,
    /// This pass restarts etcd (an [`Effect::Restart`] is planned).
    pub restarting: bool,
}

impl Own {
    /// Nothing to publish, no restart.
    fn status(status: Status) -> Own {
        Own {
            status,
            request: None,
            restarting: false,
        }
    }
}

/// Plans this unit's own etcd: a removed member's data goes aside, a fresh unit bootstraps or
/// joins, a member keeps its files and restarts in its turn.
fn own_member(o: &Observed, cfg: &CharmConfig, address: &str, p: &mut Plan) -> Own {
    let peer_url = render::url(cfg.tls, address, cfg.management_port);
    match self_state(o, &peer_url) {
        SelfState::Removed => {
            p.effects.push(Effect::Wipe);
            p.again = true;
            Own::status(Status::Rejoining)
        }
        SelfState::Fresh => Own::status(fresh_member(o, cfg, address, p)),
        state => member(o, cfg, address, &peer_url, state, p),
    }
}

/// Renders `init` and starts etcd on it.
fn start(
    o: &Observed,
    cfg: &CharmConfig,
    address: &str,
    init: InitialCluster,
    p: &mut Plan,
) -> InitialCluster {
    p.effects.push(render(o, cfg, address, &init, &[]));
    p.effects.push(Effect::Start);
    p.again = true;
    init
}

/// A unit without a data dir: the Juju leader of a new application bootstraps (or resumes a
/// bootstrap cut short), an admitted unit joins, any other waits.
fn fresh_member(o: &Observed, cfg: &CharmConfig, address: &str, p: &mut Plan) -> Status {
    let ld = &o.leader_data;
    let bootstrap = |token: &str| InitialCluster {
        state: ClusterState::New,
        cluster: self_only(o, cfg, address),
        token: token.to_string(),
    };
    let someone_started = o.peers.iter().any(|p| p.started.is_some());
    match (ld.get(keys::TOKEN), &ld.joining) {
        (None, _) if o.leadership == Leadership::Leader && !someone_started => {
            p.effects.push(Effect::LeaderSet(Settings::from([
                (keys::TOKEN.to_string(), o.fresh_token.clone()),
                (keys::BOOTSTRAP_UNIT.to_string(), o.unit.clone()),
                (keys::TLS.to_string(), cfg.tls.to_string()),
            ])));
            start(o, cfg, address, bootstrap(&o.fresh_token), p);
            Status::Bootstrapping
        }
        (None, _) => Status::WaitBootstrap,
        // Resumes a bootstrap cut short before the cluster was published.
        (Some(t), _)
            if ld.get(keys::BOOTSTRAP_UNIT) == Some(o.unit.as_str())
                && ld.get(keys::CLUSTER).is_none() =>
        {
            start(o, cfg, address, bootstrap(t), p);
            Status::Bootstrapping
        }
        (Some(t), Some(j)) if j.unit == o.unit => {
            let init = InitialCluster {
                state: ClusterState::Existing,
                cluster: j.initial_cluster.clone(),
                token: t.to_string(),
            };
            start(o, cfg, address, init, p);
            Status::Joining
        }
        (Some(_), j) => Status::WaitAdmission {
            behind: j.as_ref().map(|j| j.unit.clone()),
        },
    }
}

/// The config this member runs on: the `initial-*` settings it was first started with (else
/// its own entry), and the peer URLs the cluster still lists for it kept open until the leader
/// has updated them.
fn member_config(o: &Observed, cfg: &CharmConfig, address: &str, state: SelfState) -> String {
    let registered = match state {
        SelfState::Member(m) => m.peer_urls.clone(),
        _ => Vec::new(),
    };
    let kept = o
        .local
        .rendered_config
        .as_deref()
        .and_then(render::initial_cluster_of);
    let init = kept.unwrap_or_else(|| InitialCluster {
        state: ClusterState::Existing,
        cluster: self_only(o, cfg, address),
        token: o.leader_data.get(keys::TOKEN).unwrap_or("").to_string(),
    });
    let version = o.local.version.as_deref().unwrap_or("");
    let config = render::etcd_config(cfg, version, &o.name(), address, &init, &registered);
    // During a CA rotation, the CA set it is to load: a new set is a restart.
    ca_rotation::with_line(config, o, cfg.tls)
}

/// A unit with a data dir (listed, or the member list unknown): its files, its start, its
/// restart in turn, and its status.
fn member(
    o: &Observed,
    cfg: &CharmConfig,
    address: &str,
    peer_url: &str,
    state: SelfState,
    p: &mut Plan,
) -> Own {
    let config = member_config(o, cfg, address, state);
    let my_turn = o.holds_restart_turn();
    let fingerprint = || {
        let version = o.local.version.as_deref().unwrap_or("");
        render::restart_fingerprint(&config, &render::systemd_unit(), version)
    };
    if !o.local.service_active {
        // Down during its turn (its restart failed): it keeps the turn until healthy.
        let request = my_turn.then(fingerprint);
        p.effects.push(Effect::Render(config));
        p.effects.push(Effect::Start);
        p.again = true;
        return Own {
            status: Status::Starting,
            request,
            restarting: false,
        };
    }
    if let Some(fingerprint) = restart_needed(o, &config) {
        let turn = RestartTurn { my_turn, state };
        return restart_in_turn(o, cfg, peer_url, turn, config, fingerprint, p);
    }
    if files_differ(o, &config) {
        p.effects.push(Effect::Render(config.clone()));
    }
    // Restarted on the leader's grant: confirmed (request removed) once healthy.
    let request = (my_turn && !o.healthy_voter()).then(fingerprint);
    Own {
        status: member_status(o, cfg, state, request.is_some(), p),
        request,
        restarting: false,
    }
}

/// Where a member that must restart stands.
#[derive(Debug, Clone, Copy)]
struct RestartTurn<'a> {
    /// It holds the leader's grant for the request the leader saw.
    my_turn: bool,
    /// Its entry in the member list.
    state: SelfState<'a>,
}

/// Nothing to keep up while this member restarts: it is the sole member, a learner, or its
/// etcd does not answer anyway.
fn restarts_at_once(o: &Observed) -> bool {
    let own = o.local.status.as_ref();
    let sole = o
        .members
        .as_ref()
        .is_some_and(|m| m.len() == 1 && own.is_some_and(|s| s.member_id == m[0].id));
    sole || own.is_none_or(|s| s.is_learner)
}

/// A member that must restart to run `config`: at once when nothing is to be kept up, else in
/// its turn, once the leader has moved its peer URL to a new scheme (peers then dial it there;
/// it dials them at theirs meanwhile). `fingerprint` is what it asks for.
fn restart_in_turn(
    o: &Observed,
    cfg: &CharmConfig,
    peer_url: &str,
    turn: RestartTurn,
    config: String,
    fingerprint: String,
    p: &mut Plan,
) -> Own {
    let immediate = restarts_at_once(o);
    let asks = |status| Own {
        status,
        request: Some(fingerprint.clone()),
        restarting: false,
    };
    if !(turn.my_turn || immediate) {
        let behind = o.leader_data.restart_granted.clone();
        let behind = behind.filter(|u| *u != o.unit);
        return asks(Status::WaitRestart { behind });
    }
    if let (true, SelfState::Member(m)) = (turn.my_turn && !immediate, turn.state) {
        let listed = m.peer_urls.iter().all(|u| u.starts_with("https://"));
        // The leader's word, should this member's list lag behind.
        let told = o.leader_data.get(keys::TLS_SWITCHING)
            == Some(format!("{} {peer_url}", o.unit).as_str());
        if listed != cfg.tls && !told {
            let step = SwitchStep::PeerUrl;
            return asks(Status::SwitchingTls { tls: cfg.tls, step });
        }
    }
    p.effects.push(Effect::Restart(config));
    p.again = true;
    Own {
        status: Status::Restarting,
        request: turn.my_turn.then_some(fingerprint),
        restarting: true,
    }
}

/// The status of a member that runs: from its own view when it answers (its member id is
/// recorded then), else from what is known.
fn member_status(
    o: &Observed,
    cfg: &CharmConfig,
    state: SelfState,
    requesting: bool,
    p: &mut Plan,
) -> Status {
    let Some(status) = &o.local.status else {
        return match (state, requesting) {
            (_, true) => Status::WaitRestarted,
            (SelfState::Unknown, false) => Status::WaitCluster,
            _ => Status::WaitHealthy,
        };
    };
    if o.local.member_id != Some(status.member_id) || storage::record_stale(o, status.member_id) {
        p.effects.push(Effect::RecordMemberId(status.member_id));
    }
    match (status.is_learner, status.leader) {
        _ if requesting => Status::WaitRestarted,
        (true, _) => Status::Learner,
        (false, 0) => Status::WaitHealthy,
        (false, _) => Status::Active(health(o, cfg)),
    }
}

/// The cluster as the status round found it: who does not answer, learners, alarms and
/// backends near the quota.
fn health(o: &Observed, cfg: &CharmConfig) -> Health {
    let members = o.members.as_deref().unwrap_or(&[]);
    let voters: Vec<&Member> = members
        .iter()
        .filter(|m| m.started() && !m.is_learner)
        .collect();
    let silent = voters.iter().filter(|m| o.cluster.answer(m.id).is_none());
    let learners = members.iter().filter(|m| m.is_learner);
    let quota = cfg.quota();
    let full = members.iter().filter_map(|m| {
        let used = u64::try_from(o.cluster.answer(m.id)?.db_size).unwrap_or(0);
        let percent = used.saturating_mul(100) / quota;
        (percent > USAGE_WARNING).then(|| (o.label(m), percent))
    });
    let alarms = o.cluster.alarms.iter().map(|(id, alarm)| {
        let on = members.iter().find(|m| m.id == *id);
        let on = on.map_or_else(|| "the cluster".to_string(), |m| o.label(m));
        (alarm.clone(), on)
    });
    Health {
        voters: voters.len(),
        silent: silent.map(|m| o.label(m)).collect(),
        learners: learners.map(|m| o.label(m)).collect(),
        alarms: alarms.collect(),
        full: full.collect(),
        stale_backup: crate::core::backup::stale(cfg.backup_period, o.backup_verified_age()),
        nospace_recovery: cfg.maintenance.nospace_recovery,
        transport: transport::shown(o),
        expiring: rotation::expiring(o)
            .into_iter()
            .map(|e| (e.what, e.days))
            .collect(),
        external_ca: certificates::status_note(o),
    }
}

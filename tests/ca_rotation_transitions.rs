//! The CA rotation (`rotate-ca`) as state transitions on three units running their plans
//! against shared leader data and peer data: the three phases, with restarts only where the CA
//! set changes (phases 1 and 3, one member at a time, none in phase 2), a leader change
//! midway, and hooks killed mid-phase. Pure: no Juju, no etcd.

mod fixtures;

use etcd_charm::core::ca_rotation::{self, keys as rkeys};
use etcd_charm::core::config::CharmConfig;
use etcd_charm::core::effect::{AuthChange, Effect};
use etcd_charm::core::observed::{
    keys, peer_keys, tls_files_record, CaKeys, ClientRelation, Issued, LeaderData, Leadership,
    Observed, TlsRequest,
};
use etcd_charm::core::plan::plan;
use etcd_charm::juju::Settings;
use fixtures::*;

fn three() -> Vec<etcd_charm::etcd::Member> {
    vec![member(0), member(1), member(2)]
}

/// Three units on TLS with a `db` consumer `kube`; effects applied as the real ones change the
/// facts. `log` records restarts, signatures and the leader's rotation steps, in order.
#[derive(Clone)]
struct World {
    members: Vec<etcd_charm::etcd::Member>,
    leader_data: Settings,
    leader: u64,
    units: Vec<Observed>,
    log: Vec<String>,
}

impl World {
    /// The cluster switched to TLS and settled, the log cleared.
    fn new() -> World {
        let units = (0..3)
            .map(|n| {
                let mut o = settled(n, three(), 0);
                o.clients = vec![ClientRelation {
                    id: "db:9".into(),
                    endpoint: "db".into(),
                    app: Some("kube".into()),
                    ..ClientRelation::default()
                }];
                o
            })
            .collect();
        let leader_data = leader_data(&[(keys::TOKEN, "t0k"), (keys::TLS, "false")]).raw;
        let mut w = World {
            members: three(),
            leader_data,
            leader: 0,
            units,
            log: vec![],
        };
        w.settle();
        assert_eq!(w.leader_data[keys::TLS], "true");
        w.log.clear();
        w
    }

    fn observed(&self, n: u64) -> Observed {
        let mut o = self.units[n as usize].clone();
        o.config = Ok(CharmConfig {
            tls: true,
            ..CharmConfig::plain()
        });
        o.leadership = match n == self.leader {
            true => Leadership::Leader,
            false => Leadership::Follower,
        };
        o.leader_data = LeaderData::parse(self.leader_data.clone());
        o.members = Some(self.members.clone());
        o.peers = (0..3)
            .filter(|m| *m != n)
            .map(|m| {
                let d = &self.units[m as usize].own_peer_data;
                let get = |k: &str| d.get(k).filter(|v| !v.is_empty()).cloned();
                etcd_charm::core::observed::Peer {
                    peer_url: get(peer_keys::PEER_URL),
                    client_url: get(peer_keys::CLIENT_URL),
                    started: get(peer_keys::STARTED).and_then(|s| u64::from_str_radix(&s, 16).ok()),
                    restart_request: get(peer_keys::RESTART_REQUEST),
                    tls_request: TlsRequest::from_data(d),
                    tls_files: get(peer_keys::TLS_FILES),
                    ca_loaded: get(peer_keys::CA_LOADED),
                    ..peer(m)
                }
            })
            .collect();
        if n == self.leader && self.leader_data.contains_key(keys::TLS_CA_SECRET) {
            o.secrets.available = true;
            o.secrets.ca_keys = Some(CaKeys {
                ca_key: format!("key of {}", self.leader_data[keys::TLS_CA_SECRET]),
                ..CaKeys::default()
            });
            o.secrets.client_key = Some(etcd_charm::core::observed::Redacted("k".into()));
            o.secrets.consumer_keys.insert(
                "kube".into(),
                etcd_charm::core::observed::Redacted("k".into()),
            );
        }
        o
    }

    /// One hook of unit `n`, cut short after `cut` effects (a killed hook).
    fn pass(&mut self, n: u64, cut: usize) {
        let mut applied = 0;
        for _ in 0..10 {
            let p = plan(&self.observed(n));
            for e in &p.effects {
                if applied == cut {
                    return;
                }
                applied += 1;
                self.apply(n, e);
            }
            if !p.again {
                break;
            }
        }
    }

    fn apply(&mut self, n: u64, e: &Effect) {
        let merge = |into: &mut Settings, s: &Settings| {
            for (k, v) in s {
                match v.is_empty() {
                    true => into.remove(k),
                    false => into.insert(k.clone(), v.clone()),
                };
            }
        };
        let signer = ca_rotation::signer(&self.leader_data);
        let u = &mut self.units[n as usize];
        match e {
            Effect::PeerSet(_, s) => merge(&mut u.own_peer_data, s),
            Effect::LeaderSet(s) => {
                if let Some(p) = s.get(rkeys::PHASE) {
                    self.log.push(format!("phase {p}"));
                }
                merge(&mut self.leader_data, s)
            }
            Effect::GrantRestart { unit } => {
                self.leader_data
                    .insert(keys::RESTART_GRANTED.into(), unit.clone());
            }
            Effect::CreateCa => {
                for k in [keys::TLS_CA, keys::TLS_PEER_CA, keys::TLS_CLIENT_CERT] {
                    self.leader_data.insert(k.into(), format!("OLD {k}"));
                }
                self.leader_data
                    .insert(keys::TLS_CA_SECRET.into(), "secret:old".into());
                self.leader_data
                    .insert(keys::TLS_CLIENT_SECRET.into(), "secret:client".into());
            }
            Effect::TlsRequest { sans } => {
                let req = TlsRequest {
                    csr: format!("CSR {n} {}", sans.join(",")),
                    client_csr: format!("CLIENT CSR {n}"),
                };
                u.local.tls_request_record = Some(req.record(sans));
                u.own_peer_data.insert(peer_keys::TLS_CSR.into(), req.csr);
                u.own_peer_data
                    .insert(peer_keys::TLS_CLIENT_CSR.into(), req.client_csr);
            }
            Effect::Issue { unit } => {
                let number: usize = unit[5..].parse().unwrap();
                let req = TlsRequest::from_data(&self.units[number].own_peer_data).unwrap();
                let issued = Issued {
                    from: ca_fingerprint(&self.leader_data, &req),
                    server: format!("cert of {unit} by {signer}"),
                    ..Issued::default()
                };
                let value = serde_json::to_string(&issued).unwrap();
                self.leader_data.insert(keys::issued_key(unit), value);
                self.log.push(format!("issue {unit}"));
            }
            Effect::TlsFiles { sans } => {
                let issued = self.leader_data[&keys::issued_key(&u.unit)].clone();
                let issued = Issued::parse(&issued).unwrap();
                let (ca, peer_ca) = ca_rotation::trusted(&self.leader_data).unwrap();
                u.local.tls_record = Some(tls_files_record(&ca, &peer_ca, &issued, sans));
            }
            Effect::IssueConsumer { app } => {
                let cert = keys::consumer_key(keys::CONSUMER_CERT_PREFIX, app);
                self.leader_data.insert(cert, format!("cert by {signer}"));
                self.leader_data
                    .insert(ca_rotation::consumer_ca_key(app), signer);
                self.log.push(format!("issue {app}"));
            }
            Effect::RenewSharedClient => {
                self.leader_data.insert(rkeys::SHARED_CA.into(), signer);
                self.log.push("issue shared".into());
            }
            Effect::CaRotationSwap => {
                let mut s = ca_rotation::swapped(&self.leader_data).unwrap();
                let (a, b) = (
                    self.leader_data[keys::TLS_CA_SECRET].clone(),
                    self.leader_data[rkeys::OTHER_SECRET].clone(),
                );
                s.insert(keys::TLS_CA_SECRET.into(), b);
                s.insert(rkeys::OTHER_SECRET.into(), a);
                merge(&mut self.leader_data, &s);
                self.log.push("swap".into());
            }
            Effect::CaRotationFinish => {
                merge(&mut self.leader_data, &ca_rotation::finished());
                self.log.push("done".into());
            }
            Effect::UpdatePeerUrl { id, peer_url, .. } => {
                let m = self.members.iter_mut().find(|m| m.id == *id).unwrap();
                m.peer_urls = vec![peer_url.clone()];
            }
            // The external-CA side's files (no `certificates` relation here): what is served
            // and the clients' bundle.
            Effect::ServeCert(pem) => u.external.served = Some(pem.clone()),
            Effect::TrustBundle(bundle) => u.external.bundle = Some(bundle.clone()),
            Effect::Render(config) => u.local.rendered_config = Some(config.clone()),
            Effect::Restart(config) => {
                u.local.rendered_config = Some(config.clone());
                let (peer, client) = etcd_charm::core::render::advertised_urls(config).unwrap();
                let m = self.members.iter_mut().find(|m| m.id == 0x100 + n).unwrap();
                assert_eq!(m.peer_urls, [peer], "etcd/{n} restarted before its update");
                m.client_urls = vec![client];
                // Only one member restarts at a time: the one granted (or the sole member).
                let granted = self.leader_data.get(keys::RESTART_GRANTED);
                assert_eq!(
                    granted,
                    Some(&format!("etcd/{n}")),
                    "restart without a turn"
                );
                self.log.push(format!("restart etcd/{n}"));
            }
            Effect::RecordMemberId(_)
            | Effect::SetVersion(_)
            | Effect::OpenPorts(_)
            | Effect::RelationSet(..)
            | Effect::GrantSecret { .. }
            | Effect::MoveKeysToSecrets => {}
            Effect::Auth(change) => {
                let (key, value) = match change {
                    AuthChange::SetUser { name, grant, .. } => {
                        (format!("{}{name}", keys::AUTH_USER_PREFIX), grant.record())
                    }
                    AuthChange::DeleteUser { name } => {
                        (format!("{}{name}", keys::AUTH_USER_PREFIX), String::new())
                    }
                    AuthChange::Enable => (keys::AUTH.to_string(), "on".to_string()),
                    AuthChange::Disable => (keys::AUTH.to_string(), String::new()),
                };
                self.leader_data.insert(key, value);
            }
            other => panic!("unexpected effect {other:?}"),
        }
    }

    /// Runs every unit's hooks, round after round, until nothing changes any more.
    fn settle(&mut self) {
        for _ in 0..60 {
            let before = (self.leader_data.clone(), self.log.len());
            let peer_data: Vec<Settings> =
                self.units.iter().map(|u| u.own_peer_data.clone()).collect();
            for n in 0..3 {
                self.pass(n, usize::MAX);
            }
            let after: Vec<Settings> = self.units.iter().map(|u| u.own_peer_data.clone()).collect();
            if before == (self.leader_data.clone(), self.log.len()) && peer_data == after {
                return;
            }
        }
        panic!("no fixed point: {:?}", self.log);
    }

    /// What the `rotate-ca` action leaves in leader data.
    fn rotate(&mut self) {
        for (k, v) in [
            (rkeys::OTHER_CA, "NEW CA"),
            (rkeys::OTHER_PEER_CA, "NEW PEER CA"),
            (rkeys::OTHER_SECRET, "secret:new"),
            (rkeys::PHASE, "trust"),
        ] {
            self.leader_data.insert(k.into(), v.into());
        }
    }

    fn statuses(&self) -> Vec<String> {
        (0..3)
            .map(|n| plan(&self.observed(n)).status.message())
            .collect()
    }

    /// The state once the rotation is done: the new CAs alone, everywhere.
    fn assert_rotated(&self) {
        let ld = &self.leader_data;
        assert_eq!(ld[keys::TLS_CA], "NEW CA");
        assert_eq!(ld[keys::TLS_PEER_CA], "NEW PEER CA");
        assert_eq!(ld[keys::TLS_CA_SECRET], "secret:new");
        for k in [rkeys::PHASE, rkeys::OTHER_CA, rkeys::OTHER_SECRET] {
            assert!(!ld.contains_key(k), "{k} left behind");
        }
        let new = ca_rotation::signer(ld);
        assert_eq!(ld[&ca_rotation::consumer_ca_key("kube")], new);
        assert_eq!(ld[rkeys::SHARED_CA], new);
        for u in &self.units {
            let issued = Issued::parse(&ld[&keys::issued_key(&u.unit)]).unwrap();
            assert!(issued.server.ends_with(&new), "{}: {issued:?}", u.unit);
            let record = u.local.tls_record.as_deref().unwrap();
            let sans = record.split_whitespace().nth(1).unwrap();
            let sans: Vec<String> = sans.split(',').map(String::from).collect();
            let want = tls_files_record("NEW CA", "NEW PEER CA", &issued, &sans);
            assert_eq!(record, want, "{}: files not from the new CAs alone", u.unit);
            let config = u.local.rendered_config.as_deref().unwrap();
            assert_eq!(ca_rotation::loaded(config), None, "{}", u.unit);
        }
        assert_eq!(self.statuses(), vec!["3 members healthy"; 3]);
    }
}

/// What the leader issues certificates from: the request and both signing CAs.
fn ca_fingerprint(leader_data: &Settings, req: &TlsRequest) -> String {
    let (ca, peer_ca) = (&leader_data[keys::TLS_CA], &leader_data[keys::TLS_PEER_CA]);
    Issued::fingerprint(&req.csr, &req.client_csr, ca, peer_ca)
}

/// Restarts, signatures and the leader's steps of a whole rotation, in order.
const ROTATION: [&str; 15] = [
    "restart etcd/0",
    "restart etcd/1",
    "restart etcd/2",
    "swap",
    "issue etcd/0",
    "issue etcd/1",
    "issue etcd/2",
    "issue kube",
    "issue shared",
    "phase drop",
    "restart etcd/0",
    "restart etcd/1",
    "restart etcd/2",
    "done",
    // (sentinel: nothing after it)
    "",
];

fn rotation() -> Vec<String> {
    ROTATION
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn a_rotation_restarts_each_member_once_per_trust_change_and_reissues_in_between() {
    let mut w = World::new();
    w.rotate();
    // The first round: every unit writes both CAs and asks for its restart.
    for n in 0..3 {
        w.pass(n, usize::MAX);
    }
    let statuses = w.statuses();
    assert!(
        statuses
            .iter()
            .any(|s| s.starts_with("rotating the CA: phase 1 of 3")),
        "{statuses:?}"
    );
    w.settle();
    assert_eq!(w.log, rotation());
    w.assert_rotated();
    // Nothing further happens: no restart, no signature.
    w.log.clear();
    w.settle();
    assert_eq!(w.log, Vec::<String>::new());
}

#[test]
fn the_phase_shows_in_the_status_while_it_runs() {
    let mut w = World::new();
    w.rotate();
    let mut seen = Vec::new();
    for _ in 0..40 {
        for n in 0..3 {
            w.pass(n, usize::MAX);
            let s = plan(&w.observed(n)).status.message();
            if let Some(rest) = s.strip_prefix("rotating the CA: phase ") {
                let phase = rest[..1].to_string();
                if seen.last() != Some(&phase) {
                    seen.push(phase);
                }
            }
        }
    }
    assert_eq!(seen, ["1", "2", "3"]);
    w.assert_rotated();
}

#[test]
fn a_new_leader_mid_rotation_carries_it_on() {
    for at in ["restart etcd/1", "issue etcd/1", "restart etcd/0"] {
        let mut w = World::new();
        w.rotate();
        // etcd/0 leads until the log reaches `at` (the second time for phase 3), then etcd/2.
        let target = rotation().iter().rposition(|s| s == at).unwrap();
        for _ in 0..60 {
            if w.log.len() > target {
                break;
            }
            for n in 0..3 {
                w.pass(n, usize::MAX);
            }
        }
        w.leader = 2;
        w.settle();
        // The new leader signs again what the old one signed after the swap (its keys are read
        // anew): nothing else differs.
        let mut log = w.log.clone();
        log.dedup();
        let restarts = |l: &[String]| l.iter().filter(|s| s.starts_with("restart")).count();
        assert_eq!(restarts(&w.log), 6, "after {at}: {log:?}");
        assert_eq!(log.last().map(String::as_str), Some("done"), "after {at}");
        w.assert_rotated();
    }
}

#[test]
fn hooks_killed_mid_phase_converge() {
    for cut in 0..6 {
        let mut w = World::new();
        w.rotate();
        for round in 0..60 {
            let n = round % 3;
            w.pass(n, cut);
            w.pass(n, cut);
        }
        w.settle();
        let restarts: Vec<&String> = w.log.iter().filter(|s| s.starts_with("restart")).collect();
        assert_eq!(restarts.len(), 6, "killed after {cut} effects: {:?}", w.log);
        let at = |what: &str| w.log.iter().position(|s| s == what).unwrap();
        // Every restart of phase 1 before the swap, every one of phase 3 after the drop.
        let first_three = w
            .log
            .iter()
            .take(at("swap"))
            .filter(|s| s.starts_with("restart"));
        assert_eq!(first_three.count(), 3, "killed after {cut}: {:?}", w.log);
        assert!(at("phase drop") < at("done"));
        w.assert_rotated();
    }
}

//! The external CA's phases as state transitions (pure: no Juju, no etcd): three units and a
//! tls-certificates v4 provider, each unit's hook planned from its facts and its effects applied
//! to a small world (leader data, peer data, files), some hooks killed halfway. At every step:
//! no member serves a certificate from a CA that some unit's bundle (and so its clients, and the
//! consumers' `client_ca`) does not hold. Bad input changes nothing.

use etcd_charm::core::certificates::{self, Facts, ProviderCertificate, Request};
use etcd_charm::core::effect::{Effect, Plan};
use etcd_charm::core::observed::{LeaderData, Leadership, Observed, Peer};
use etcd_charm::juju::Settings;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, IsCa, Issuer, KeyPair, PublicKeyData,
};
use std::collections::BTreeMap;

/// The charm's client CA (a real certificate: one that is not is never written).
fn client_ca() -> &'static str {
    static CA: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CA.get_or_init(|| {
        let key = KeyPair::generate().unwrap();
        CertificateParams::default()
            .self_signed(&key)
            .unwrap()
            .pem()
    })
}
const REL: &str = "certificates:7";

fn charm_cert(unit: usize) -> String {
    format!("CHARM CERT {unit}\n")
}

/// A provider with its own CA.
struct Provider {
    issuer: Issuer<'static, KeyPair>,
    ca: String,
    /// What it signed, by request: a request signed once gets the same certificate again.
    signed: std::cell::RefCell<BTreeMap<String, ProviderCertificate>>,
    /// With a validity, it signs for that many seconds from the world's clock (else rcgen's
    /// default, centuries).
    validity: Option<i64>,
    /// The world's clock, as it signs.
    now: std::cell::Cell<i64>,
}

impl Provider {
    fn new(name: &str) -> Provider {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.clone().self_signed(&key).unwrap().pem();
        Provider {
            issuer: Issuer::new(params, key),
            ca,
            signed: Default::default(),
            validity: None,
            now: Default::default(),
        }
    }

    fn sign(&self, csr: &str) -> ProviderCertificate {
        if let Some(done) = self.signed.borrow().get(csr) {
            return done.clone();
        }
        let mut req = CertificateSigningRequestParams::from_pem(csr).unwrap();
        if let Some(secs) = self.validity {
            let at = |t: i64| time::OffsetDateTime::from_unix_timestamp(t).unwrap();
            req.params.not_before = at(self.now.get());
            req.params.not_after = at(self.now.get() + secs);
        }
        let cert = req.signed_by(&self.issuer).unwrap().pem();
        let entry = ProviderCertificate {
            ca: self.ca.clone(),
            certificate_signing_request: csr.trim().to_string(),
            chain: vec![cert.clone(), self.ca.clone()],
            certificate: cert,
            revoked: false,
        };
        self.signed
            .borrow_mut()
            .insert(csr.to_string(), entry.clone());
        entry
    }
}

/// One unit's machine and data.
struct Unit {
    key: KeyPair,
    csr: Option<String>,
    names: Option<String>,
    served: String,
    bundle: Option<String>,
    peer: Settings,
    published: Option<String>,
}

struct World {
    leader: Settings,
    units: Vec<Unit>,
    related: bool,
    provided: Option<String>,
    /// The CAs each served certificate comes from, by unit.
    served_by: BTreeMap<usize, String>,
    /// The clock (Unix seconds).
    now: u64,
    /// A unit went back to the charm's certificate while the relation was there.
    fell_back: bool,
}

const SANS: [&str; 2] = ["10.0.0.1", "machine"];

fn sans() -> Vec<String> {
    SANS.iter().map(|s| s.to_string()).collect()
}

impl World {
    fn new() -> World {
        let units = (0..3)
            .map(|i| Unit {
                key: KeyPair::generate().unwrap(),
                csr: None,
                names: None,
                served: charm_cert(i),
                bundle: None,
                peer: Settings::new(),
                published: None,
            })
            .collect();
        World {
            leader: Settings::new(),
            units,
            related: false,
            provided: None,
            served_by: BTreeMap::new(),
            now: Observed::blank("etcd/0").now,
            fell_back: false,
        }
    }

    fn observed(&self, i: usize) -> Observed {
        let mut o = Observed::blank(&format!("etcd/{i}"));
        o.now = self.now;
        o.leadership = match i {
            0 => Leadership::Leader,
            _ => Leadership::Follower,
        };
        o.leader_data = LeaderData::parse(self.leader.clone());
        o.peers = (0..3)
            .filter(|&j| j != i)
            .map(|j| Peer {
                unit: format!("etcd/{j}"),
                ext_tls: self.units[j].peer.get(certificates::PEER_STATE).cloned(),
                ..Peer::default()
            })
            .collect();
        let u = &self.units[i];
        o.own_peer_data = u.peer.clone();
        o.external = Facts {
            relation: self.related.then(|| REL.to_string()),
            provider: self.related.then(|| "vault".to_string()),
            provided: self.provided.clone().filter(|_| self.related),
            published: u.published.clone(),
            csr: u.csr.clone(),
            csr_names: u.names.clone(),
            public_key: Some(u.key.subject_public_key_info()),
            served: Some(u.served.clone()),
            bundle: u.bundle.clone(),
        };
        o
    }

    fn plan(&self, i: usize) -> Plan {
        let o = self.observed(i);
        let mut p = Plan::only(etcd_charm::core::status::Status::WaitTlsCa);
        certificates::trust(&o, client_ca(), &mut p);
        certificates::unit(&o, &sans(), &charm_cert(i), client_ca(), &mut p);
        p.effects.extend(certificates::leader(&o, client_ca()));
        p
    }

    /// Runs unit `i`'s hook, applying at most `limit` effects (a hook killed after them).
    fn hook(&mut self, i: usize, limit: usize) -> usize {
        let p = self.plan(i);
        let n = p.effects.len();
        for e in p.effects.into_iter().take(limit) {
            self.apply(i, e);
            self.check();
        }
        n
    }

    fn apply(&mut self, i: usize, e: Effect) {
        let u = &mut self.units[i];
        match e {
            Effect::TrustBundle(bundle) => u.bundle = Some(bundle),
            Effect::ExternalRequest { sans } => {
                let mut params = CertificateParams::new(sans.clone()).unwrap();
                let mut dn = DistinguishedName::new();
                dn.push(
                    DnType::CommonName,
                    certificates::common_name(&format!("etcd/{i}")),
                );
                params.distinguished_name = dn;
                u.csr = Some(params.serialize_request(&u.key).unwrap().pem().unwrap());
                u.names = Some(sans.join(","));
            }
            Effect::ServeCert(pem) => {
                let from = match &self.provided {
                    Some(p) => certificates::parse(p)
                        .unwrap_or_default()
                        .into_iter()
                        .find(|e| certificates::served_file(e) == pem)
                        .map(|e| e.ca.trim().to_string()),
                    None => None,
                };
                match from {
                    Some(ca) => self.served_by.insert(i, ca),
                    None => self.served_by.remove(&i),
                };
                if self.related && pem == charm_cert(i) {
                    self.fell_back = true;
                }
                u.served = pem;
            }
            Effect::RelationSet(rel, s) => {
                assert_eq!(rel, REL);
                u.published = s.get(certificates::REQUESTS).cloned();
            }
            Effect::PeerSet(_, s) => u.peer.extend(s),
            Effect::LeaderSet(s) => {
                assert_eq!(i, 0, "only the leader sets leader data");
                for (k, v) in s {
                    match v.is_empty() {
                        true => self.leader.remove(&k),
                        false => self.leader.insert(k, v),
                    };
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// No member serves a certificate from a CA some unit's bundle, or the consumers'
    /// `client_ca`, lacks.
    fn check(&self) {
        let client_ca = certificates::client_ca(&self.observed(0), client_ca())
            .unwrap_or(client_ca().to_string());
        for (i, ca) in &self.served_by {
            for (j, u) in self.units.iter().enumerate() {
                let b = u.bundle.as_deref().unwrap_or("");
                assert!(
                    b.contains(ca.as_str()),
                    "unit {i} serves from a CA unit {j} lacks"
                );
            }
            assert!(
                client_ca.contains(ca.as_str()),
                "consumers lack unit {i}'s CA"
            );
        }
    }

    /// The provider's leader signs every published request.
    fn provide(&mut self, p: &Provider) {
        p.now.set(i64::try_from(self.now).unwrap());
        let list: Vec<ProviderCertificate> = self
            .units
            .iter()
            .filter_map(|u| u.published.as_deref())
            .flat_map(|v| serde_json::from_str::<Vec<Request>>(v).unwrap())
            .map(|r| p.sign(&r.certificate_signing_request))
            .collect();
        self.provided = Some(serde_json::to_string(&list).unwrap());
    }

    /// Hooks round-robin until nothing is planned (the provider answering as it goes), some
    /// killed after one effect.
    fn settle(&mut self, p: Option<&Provider>) {
        for round in 0..40 {
            if let Some(p) = p {
                self.provide(p);
            }
            let mut busy = 0;
            for i in 0..3 {
                let limit = if (round + i) % 4 == 1 { 1 } else { usize::MAX };
                busy += self.hook(i, limit);
            }
            if busy == 0 {
                return;
            }
        }
        panic!("no convergence");
    }

    fn serving(&self) -> Vec<bool> {
        (0..3)
            .map(|i| self.units[i].served != charm_cert(i))
            .collect()
    }
}

#[test]
fn a_relation_moves_every_unit_to_the_external_ca_and_back() {
    let mut w = World::new();
    w.settle(None);
    assert_eq!(w.serving(), [false; 3]);
    assert_eq!(
        w.units[0].bundle.as_deref(),
        Some(format!("{}\n", client_ca().trim()).as_str())
    );
    assert!(w.leader.is_empty());

    let provider = Provider::new("external CA");
    w.related = true;
    w.settle(Some(&provider));
    assert_eq!(w.serving(), [true; 3]);
    assert_eq!(w.leader[certificates::PHASE], "serve");
    for u in &w.units {
        let csr = u.published.as_deref().unwrap();
        assert!(csr.contains("\"ca\":false") && !csr.contains("PRIVATE KEY"));
        assert!(u.bundle.as_deref().unwrap().contains(provider.ca.trim()));
        assert!(u.served.contains(provider.ca.trim()), "the chain is served");
    }
    // Settled means nothing more is planned: idempotent.
    assert!((0..3).all(|i| w.plan(i).effects.is_empty()));
    // The status names the provider, and the JSON gateway's limitation.
    let note = certificates::status_note(&w.observed(1)).unwrap();
    assert!(note.starts_with("server certificate from vault"), "{note}");
    assert!(note.contains("JSON gateway"), "{note}");

    // The relation goes: back to the charm's certificates, then the bundle drops the CA.
    w.related = false;
    w.settle(None);
    assert_eq!(w.serving(), [false; 3]);
    assert!(!w.leader.contains_key(certificates::PHASE));
    assert!(!w.leader.contains_key(certificates::CAS));
    assert!(w
        .units
        .iter()
        .all(|u| u.bundle.as_deref() == Some(format!("{}\n", client_ca().trim()).as_str())));
    assert_eq!(certificates::status_note(&w.observed(1)), None);
}

#[test]
fn a_new_provider_ca_is_trusted_everywhere_before_it_is_served() {
    let mut w = World::new();
    w.related = true;
    let first = Provider::new("first CA");
    w.settle(Some(&first));
    assert_eq!(w.serving(), [true; 3]);
    let second = Provider::new("second CA");
    w.settle(Some(&second));
    assert_eq!(w.serving(), [true; 3]);
    assert!(w.units.iter().all(|u| u.served.contains(second.ca.trim())));
    let trusted = certificates::trusted(&w.observed(1));
    assert_eq!(
        trusted.len(),
        2,
        "the old CA is kept while the relation is there"
    );
}

#[test]
fn bad_input_is_ignored_and_the_served_certificate_kept() {
    let mut w = World::new();
    w.related = true;
    let provider = Provider::new("external CA");
    w.settle(Some(&provider));
    let before: Vec<String> = w.units.iter().map(|u| u.served.clone()).collect();
    let good = w.provided.clone().unwrap();

    // Not JSON.
    w.provided = Some("{\"certificates\": not json".into());
    let o = w.observed(1);
    let complaint = certificates::complaint(&o.external).unwrap();
    assert!(
        complaint.contains("not a tls-certificates v4 list"),
        "{complaint}"
    );
    assert!(!complaint.contains("BEGIN"));
    w.settle(None);
    assert_eq!(
        w.units.iter().map(|u| u.served.clone()).collect::<Vec<_>>(),
        before
    );

    // Revoked, or a certificate for another key: refused, logged without a PEM, kept.
    let mut list = certificates::parse(&good).unwrap();
    list[1].revoked = true;
    let other = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(sans()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    let foreign = params.serialize_request(&other).unwrap().pem().unwrap();
    list[2].certificate = provider.sign(&foreign).certificate;
    w.provided = Some(serde_json::to_string(&list).unwrap());
    for (i, why) in [(1, "revoked"), (2, "not for its key")] {
        let c = certificates::complaint(&w.observed(i).external).unwrap();
        assert!(c.contains(why) && !c.contains("BEGIN"), "{c}");
    }
    w.settle(None);
    assert_eq!(
        w.units.iter().map(|u| u.served.clone()).collect::<Vec<_>>(),
        before
    );
    // A matching entry can never be one for another key.
    let o = w.observed(2);
    let key = o.external.public_key.clone().unwrap();
    let csr = o.external.csr.clone().unwrap();
    assert_eq!(
        certificates::matching(&list, &csr, &key),
        Err(
            "the provider's certificate for this unit's request is not for its key: ignored".into()
        )
    );
}

#[test]
fn no_unit_serves_before_every_unit_trusts() {
    let mut w = World::new();
    w.related = true;
    let provider = Provider::new("external CA");
    // Unit 2 never runs a hook: the others trust, but nobody serves.
    for _ in 0..10 {
        w.provide(&provider);
        for i in 0..2 {
            w.hook(i, usize::MAX);
        }
    }
    assert_eq!(w.leader[certificates::PHASE], "trust");
    assert_eq!(w.serving(), [false; 3]);
    let note = certificates::status_note(&w.observed(0)).unwrap();
    assert!(
        note.contains("to vault: clients are given its CA first"),
        "{note}"
    );
    w.settle(Some(&provider));
    assert_eq!(w.serving(), [true; 3]);
}

#[test]
fn a_certificate_two_thirds_through_its_validity_is_renewed_without_falling_back() {
    let day = 86_400;
    let mut w = World::new();
    w.related = true;
    let mut provider = Provider::new("short-lived CA");
    provider.validity = Some(30 * day);
    w.settle(Some(&provider));
    assert_eq!(w.serving(), [true; 3]);
    let first: Vec<String> = w.units.iter().map(|u| u.served.clone()).collect();
    let csrs: Vec<Option<String>> = w.units.iter().map(|u| u.csr.clone()).collect();
    // Half way through: nothing to do.
    w.now += 15 * day as u64;
    assert!((0..3).all(|i| w.plan(i).effects.is_empty()));
    // Past two thirds: each unit asks again (a new request for the same key), and serves
    // the new certificate; it keeps the old one until then.
    w.now += 6 * day as u64;
    w.settle(Some(&provider));
    for (i, u) in w.units.iter().enumerate() {
        assert_ne!(u.csr, csrs[i], "unit {i} made no new request");
        assert_ne!(u.served, first[i], "unit {i} serves the old certificate");
        assert!(u.served.contains(provider.ca.trim()));
    }
    assert!(
        !w.fell_back,
        "a unit served the charm's certificate meanwhile"
    );
    assert!((0..3).all(|i| w.plan(i).effects.is_empty()));
}

/*!
An external CA on the `certificates` relation (tls-certificates v4, requirer, `Mode.UNIT`).

Each unit asks the provider for a certificate for its **member key** (the key etcd already uses,
so the client port's `key-file` never changes and no restart is needed): a CSR for its names in
its own unit databag (`certificate_signing_requests`), the provider's answers in its application
databag (`certificates`). A certificate is taken only if its CSR is exactly ours (trimmed PEM),
it is not revoked, and it is for our key (its public key is the member key's). It replaces only
the **client port's server certificate**: the peer port keeps the charm's peer CA (members only)
and client certificates stay from the charm's client CA (etcd maps their CN to RBAC users), so
etcd's `trusted-ca-file` is unchanged. Clients verify the server against a bundle (the charm's
client CA and the external CAs): the units' own clients and the consumers' `client_ca`.

The switch keeps every client working, in phases the leader drives through leader data
([`PHASE`]): `trust` (every unit writes the bundle with the external CAs, consumers get it, each
unit acknowledges it in peer data [`PEER_STATE`]) → `serve` (each unit swaps its server
certificate file: etcd reads it per handshake) and back: `revert` when the relation goes (each
unit serves the charm's certificate again) → cleared once every unit does (the bundle drops the
external CAs). Every step is a comparison of what is wanted with what is on disk or published,
so a pass killed halfway converges. Two thirds through its certificate's validity a unit makes
a new request for the same key, and keeps serving the old certificate until the answer comes. Bad input (malformed JSON, a certificate for another key or
request, `revoked`) is ignored: the unit keeps what it serves.
*/

use crate::core::effect::{Effect, Plan};
use crate::core::observed::{Leadership, Observed};
use crate::juju::Settings;
use serde::{Deserialize, Serialize};

/// The endpoint (`requires`, interface `tls-certificates`).
pub const ENDPOINT: &str = "certificates";
/// Leader data: the phase (`trust`, `serve`, `revert`; unset when no external CA is in use).
pub const PHASE: &str = "tls-external";
/// Leader data: the external CAs clients trust (a JSON list of PEMs), set with `trust`.
pub const CAS: &str = "tls-external-ca";
/// Peer data: `<bundle fingerprint> <charm|external|other>`, what this unit's files hold.
pub const PEER_STATE: &str = "tls-external";
/// The requirer's unit databag key.
pub const REQUESTS: &str = "certificate_signing_requests";
/// The provider's application databag key.
pub const PROVIDED: &str = "certificates";

/// A phase of the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Clients are being given the bundle with the external CAs.
    Trust,
    /// Units serve the external certificates.
    Serve,
    /// The relation is gone: units serve the charm's certificates again.
    Revert,
}

impl Phase {
    fn parse(v: &str) -> Option<Phase> {
        match v {
            "trust" => Some(Phase::Trust),
            "serve" => Some(Phase::Serve),
            "revert" => Some(Phase::Revert),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Phase::Trust => "trust",
            Phase::Serve => "serve",
            Phase::Revert => "revert",
        }
    }
}

/// One entry of the provider's `certificates` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderCertificate {
    /// The issuing CA (PEM).
    pub ca: String,
    /// The request it answers (PEM).
    pub certificate_signing_request: String,
    /// The certificate (PEM).
    pub certificate: String,
    /// Leaf first.
    #[serde(default)]
    pub chain: Vec<String>,
    /// Revoked by the provider.
    #[serde(default)]
    pub revoked: bool,
}

/// One entry of our `certificate_signing_requests`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The CSR (PEM).
    pub certificate_signing_request: String,
    /// Always false: a server certificate.
    pub ca: bool,
}

pub use crate::core::observed::ExternalFacts as Facts;

/// Trims a PEM for comparison (the v4 library strips it).
pub fn trimmed(pem: &str) -> &str {
    pem.trim()
}

/// The provider's list; `Err` (a message without any PEM) when it is not v4 JSON.
pub fn parse(provided: &str) -> Result<Vec<ProviderCertificate>, String> {
    serde_json::from_str(provided).map_err(|e| {
        format!(
            "the provider's `certificates` is not a tls-certificates v4 list (line {} column {}): ignored",
            e.line(),
            e.column()
        )
    })
}

/// Our `certificate_signing_requests` value for `csr`.
pub fn requests(csr: &str) -> String {
    let list = [Request {
        certificate_signing_request: trimmed(csr).to_string(),
        ca: false,
    }];
    serde_json::to_string(&list).unwrap_or_default()
}

/// The CSR's common name: the unit's name with `/` as `-` (`etcd-0`).
pub fn common_name(unit: &str) -> String {
    unit.replace('/', "-")
}

fn der(pem: &str) -> Option<Vec<u8>> {
    pem::parse(pem).ok().map(|p| p.contents().to_vec())
}

/// True if the DER of `pem` holds `public_key` (a certificate's or request's
/// SubjectPublicKeyInfo is its key's, verbatim).
pub fn holds_key(pem: &str, public_key: &[u8]) -> bool {
    !public_key.is_empty()
        && der(pem).is_some_and(|d| d.windows(public_key.len()).any(|w| w == public_key))
}

/// The CAs an entry asks clients to trust: its `ca` and every chain entry but the leaf.
fn entry_cas(e: &ProviderCertificate) -> Vec<String> {
    let leaf = trimmed(&e.certificate);
    let chain = e.chain.iter().map(|c| trimmed(c)).filter(|c| *c != leaf);
    let mut all = Vec::new();
    for ca in std::iter::once(trimmed(&e.ca)).chain(chain) {
        if !ca.is_empty() && !all.iter().any(|c: &String| c == ca) {
            all.push(ca.to_string());
        }
    }
    all
}

/// The entries fit to use: not revoked, with a certificate and a CA.
fn usable(list: &[ProviderCertificate]) -> impl Iterator<Item = &ProviderCertificate> {
    list.iter()
        .filter(|e| !e.revoked && der(&e.certificate).is_some() && der(&e.ca).is_some())
}

/// The external CAs the provider's usable entries name, in order, without repeats.
pub fn offered(list: &[ProviderCertificate]) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for ca in usable(list).flat_map(entry_cas) {
        if !all.contains(&ca) {
            all.push(ca);
        }
    }
    all
}

/// The provider's entry for this unit: our CSR exactly, for our key, not revoked; `Err` says
/// why an entry for our CSR was refused (never with a PEM).
pub fn matching<'a>(
    list: &'a [ProviderCertificate],
    csr: &str,
    public_key: &[u8],
) -> Result<Option<&'a ProviderCertificate>, String> {
    let ours = list
        .iter()
        .filter(|e| trimmed(&e.certificate_signing_request) == trimmed(csr));
    let mut refused = None;
    for e in ours {
        if e.revoked {
            refused = Some("the provider revoked this unit's certificate: ignored");
        } else if !holds_key(&e.certificate, public_key) {
            refused = Some(
                "the provider's certificate for this unit's request is not for its key: ignored",
            );
        } else if der(&e.ca).is_none() {
            refused = Some("the provider's certificate for this unit has no readable CA: ignored");
        } else {
            return Ok(Some(e));
        }
    }
    refused.map_or(Ok(None), |r| Err(r.to_string()))
}

/// The server certificate file for an entry: the leaf, then its chain without the leaf.
pub fn served_file(e: &ProviderCertificate) -> String {
    let leaf = trimmed(&e.certificate);
    let mut out = format!("{leaf}\n");
    for c in e.chain.iter().map(|c| trimmed(c)).filter(|c| *c != leaf) {
        out.push_str(c);
        out.push('\n');
    }
    out
}

/// The bundle clients verify the server with: the charm's client CA, then `external`.
pub fn bundle(client_ca: &str, external: &[String]) -> String {
    let mut out = String::new();
    for pem in std::iter::once(client_ca).chain(external.iter().map(String::as_str)) {
        out.push_str(trimmed(pem));
        out.push('\n');
    }
    out
}

/// A short fingerprint (64-bit FNV-1a, hex).
pub fn fingerprint(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The phase in leader data.
pub fn phase(o: &Observed) -> Option<Phase> {
    o.leader_data.get(PHASE).and_then(Phase::parse)
}

/// The external CAs in leader data (none when unset or malformed).
pub fn trusted(o: &Observed) -> Vec<String> {
    o.leader_data
        .get(CAS)
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

/// The external CAs clients are to trust now: those in leader data while a phase is set.
fn wanted_cas(o: &Observed) -> Vec<String> {
    match phase(o) {
        Some(_) => trusted(o),
        None => Vec::new(),
    }
}

/// The `client_ca` consumers are given while an external CA is in use (the bundle), else `None`
/// (the charm's client CA as before).
pub fn client_ca(o: &Observed, client_ca: &str) -> Option<String> {
    let cas = wanted_cas(o);
    (!cas.is_empty()).then(|| bundle(client_ca, &cas))
}

/// The provider's list, when the relation is there and it parses.
fn provided(o: &Observed) -> Option<Vec<ProviderCertificate>> {
    o.external.relation.as_ref()?;
    parse(o.external.provided.as_deref()?).ok()
}

/// A problem with what the provider sent, to log (never with a PEM), if any.
pub fn complaint(f: &Facts) -> Option<String> {
    f.relation.as_ref()?;
    let list = match parse(f.provided.as_deref()?) {
        Ok(list) => list,
        Err(e) => return Some(e),
    };
    let (csr, key) = (f.csr.as_deref()?, f.public_key.as_deref()?);
    matching(&list, csr, key).err()
}

/// What the provider has for this unit.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Offer {
    /// Our certificate, every CA it names trusted in leader data: the file to serve.
    Ours(String),
    /// Nothing for our request (or no request yet): the charm's certificate is served.
    Nothing,
    /// Malformed data, a refused entry, or a CA not trusted yet: what is served stays.
    Keep,
}

/// The validity of an entry's certificate (Unix seconds), if it is readable.
fn validity(e: &ProviderCertificate) -> Option<(i64, i64)> {
    crate::core::facts::validity(&der(&e.certificate)?)
}

fn now(o: &Observed) -> i64 {
    i64::try_from(o.now).unwrap_or(i64::MAX)
}

/// True when this unit's certificate from the provider is two thirds through its validity (as
/// the v4 library's requirers renew): a new request, for the same key, is made.
fn renewal_due(o: &Observed) -> bool {
    let f = &o.external;
    let (Some(list), Some(csr), Some(key)) = (provided(o), &f.csr, &f.public_key) else {
        return false;
    };
    let Ok(Some(e)) = matching(&list, csr, key) else {
        return false;
    };
    validity(e).is_some_and(|(from, to)| now(o) >= from + (to - from) / 3 * 2)
}

/// True when what is served is still one of the provider's certificates for our key, from CAs
/// every bundle holds, and not expired: kept while a renewal's new request waits for its answer.
fn still_good(o: &Observed, list: &[ProviderCertificate], key: &[u8]) -> bool {
    let Some(served) = o.external.served.as_deref() else {
        return false;
    };
    let trusted = trusted(o);
    usable(list).any(|e| {
        served_file(e) == served
            && holds_key(&e.certificate, key)
            && entry_cas(e).iter().all(|c| trusted.contains(c))
            && validity(e).is_some_and(|(_, to)| now(o) < to)
    })
}

fn offer(o: &Observed) -> Offer {
    let f = &o.external;
    let (Some(_), Some(provided)) = (&f.relation, f.provided.as_deref()) else {
        return Offer::Nothing;
    };
    let Ok(list) = parse(provided) else {
        return Offer::Keep;
    };
    let (Some(csr), Some(key)) = (f.csr.as_deref(), f.public_key.as_deref()) else {
        return Offer::Nothing;
    };
    match matching(&list, csr, key) {
        Err(_) => Offer::Keep,
        Ok(None) if still_good(o, &list, key) => Offer::Keep,
        Ok(None) => Offer::Nothing,
        Ok(Some(e)) => {
            let trusted = trusted(o);
            match entry_cas(e).iter().all(|c| trusted.contains(c)) {
                true => Offer::Ours(served_file(e)),
                false => Offer::Keep,
            }
        }
    }
}

/// True when this unit's CSR is for its current member key and `names`.
fn csr_current(o: &Observed, names: &str) -> bool {
    let f = &o.external;
    match (&f.csr, &f.public_key) {
        (Some(csr), Some(key)) => holds_key(csr, key) && f.csr_names.as_deref() == Some(names),
        _ => false,
    }
}

/// The bundle file clients verify the server with (written with the charm's TLS files, so
/// `etcdctl` finds it at once), when it is not what it should be.
pub fn trust(o: &Observed, client_ca: &str, p: &mut Plan) {
    // A client CA in leader data that is no certificate (bad input) is not written.
    if der(client_ca).is_none() {
        return;
    }
    let wanted = bundle(client_ca, &wanted_cas(o));
    if o.external.bundle.as_deref() != Some(wanted.as_str()) {
        p.effects.push(Effect::TrustBundle(wanted));
        p.again = true;
    }
}

/// What an `active` status says while an external CA is in use or being left (`None` when
/// none is): the phase of a switch, or the provider this unit's server certificate is from.
pub fn status_note(o: &Observed) -> Option<String> {
    let app = o
        .external
        .provider
        .as_deref()
        .unwrap_or("the `certificates` relation");
    let to = format!("switching the client port's server certificate to {app}");
    Some(match phase(o)? {
        Phase::Trust => format!("{to}: clients are given its CA first"),
        Phase::Serve => match (offer(o), o.external.served.as_deref()) {
            (Offer::Ours(file), Some(served)) if file == served => format!(
                "server certificate from {app} (the JSON gateway over https fails after a restart while it is: {GATEWAY})"
            ),
            _ => format!("{to}: waiting for this unit's certificate"),
        },
        Phase::Revert => "switching the client port's server certificate back to the charm's CA".into(),
    })
}

/// Why the JSON gateway (`/v3/…` over https) fails once etcd restarts while an external
/// certificate is served: etcd dials its own client port for it when it starts, presenting its
/// server certificate as a client certificate, and the client port trusts only the charm's
/// client CA.
pub const GATEWAY: &str = "etcd presents the server certificate to itself as a client certificate, which only the charm's client CA may sign";

/// This unit's side, once its charm TLS files are written (`charm_cert`: the server
/// certificate the leader issued, `client_ca`: the charm's client CA): the bundle file, the CSR
/// and its publication, the server certificate file, and its state in peer data.
pub fn unit(o: &Observed, sans: &[String], charm_cert: &str, client_ca: &str, p: &mut Plan) {
    let want_bundle = bundle(client_ca, &wanted_cas(o));
    if let Some(rel) = &o.external.relation {
        let names = sans.join(",");
        if !csr_current(o, &names) || renewal_due(o) {
            p.effects.push(Effect::ExternalRequest {
                sans: sans.to_vec(),
            });
            p.again = true;
        } else if let Some(csr) = &o.external.csr {
            let want = requests(csr);
            if o.external.published.as_deref() != Some(want.as_str()) {
                let s = Settings::from([(REQUESTS.to_string(), want)]);
                p.effects.push(Effect::RelationSet(rel.clone(), s));
            }
        }
    }
    let offer = offer(o);
    let external = match &offer {
        Offer::Ours(file) => Some(file.clone()),
        _ => None,
    };
    let served = o.external.served.as_deref();
    let charm = Some(charm_cert.to_string());
    let want = match (phase(o), &offer) {
        (Some(Phase::Serve), Offer::Ours(_)) => external.clone(),
        (Some(Phase::Serve), Offer::Nothing) => charm,
        // Bad input changes nothing; while clients are being given a new bundle, nothing
        // new is served (what is served is from a CA every bundle still holds).
        (Some(Phase::Serve), Offer::Keep) | (Some(Phase::Trust), _) => None,
        (Some(Phase::Revert) | None, _) => charm,
    };
    if let Some(want) = want.filter(|w| served != Some(w.as_str())) {
        p.effects.push(Effect::ServeCert(want));
        p.again = true;
    }
    let held = match served {
        Some(s) if s == charm_cert => "charm",
        Some(s) if Some(s) == external.as_deref() => "external",
        _ => "other",
    };
    let have_bundle = match o.external.bundle.as_deref() {
        Some(b) if b == want_bundle => fingerprint(b),
        _ => "-".into(),
    };
    let state = format!("{have_bundle} {held}");
    if let Some(rel) = &o.peer_relation {
        if o.own_peer_data.get(PEER_STATE) != Some(&state) {
            let s = Settings::from([(PEER_STATE.to_string(), state)]);
            p.effects.push(Effect::PeerSet(rel.clone(), s));
        }
    }
}

/// The leader's side: the next phase, from what the provider offers and what every unit's
/// peer data says its files hold (`client_ca`: the charm's client CA).
pub fn leader(o: &Observed, client_ca: &str) -> Option<Effect> {
    if o.leadership != Leadership::Leader {
        return None;
    }
    let phase = phase(o);
    let have = trusted(o);
    let states = std::iter::once(o.own_peer_data.get(PEER_STATE).map(String::as_str))
        .chain(o.peers.iter().map(|p| p.ext_tls.as_deref()))
        .map(|s| s.unwrap_or("").split_once(' ').unwrap_or(("", "")))
        .collect::<Vec<_>>();
    let set = |phase: Option<Phase>, cas: Option<&[String]>| {
        let mut s =
            Settings::from([(PHASE.to_string(), phase.map_or("", Phase::name).to_string())]);
        if let Some(cas) = cas {
            let v = match cas.is_empty() {
                true => String::new(),
                false => serde_json::to_string(cas).unwrap_or_default(),
            };
            s.insert(CAS.to_string(), v);
        }
        Some(Effect::LeaderSet(s))
    };
    match (o.external.relation.is_some(), phase) {
        (true, _) => {
            let offered = provided(o).map(|l| offered(&l)).unwrap_or_default();
            let new = offered.iter().any(|c| !have.contains(c));
            if !offered.is_empty() && (new || matches!(phase, None | Some(Phase::Revert))) {
                let mut all = have.clone();
                all.extend(offered.into_iter().filter(|c| !have.contains(c)));
                return set(Some(Phase::Trust), Some(&all));
            }
            let fp = fingerprint(&bundle(client_ca, &have));
            let acked = states.iter().all(|(b, _)| *b == fp);
            (phase == Some(Phase::Trust) && acked).then(|| set(Some(Phase::Serve), None))?
        }
        (false, Some(Phase::Trust | Phase::Serve)) => set(Some(Phase::Revert), None),
        (false, Some(Phase::Revert)) => {
            let back = states.iter().all(|(_, s)| *s == "charm");
            back.then(|| set(None, Some(&[])))?
        }
        (false, None) => None,
    }
}

/*!
Rotating the cluster's two CAs (the `rotate-ca` action), as pure decisions on leader data, peer
data and this machine's files. etcd reads its certificate and key files at each handshake but
its CA files only when it starts, so the trusted set changes through rolling restarts, and the
certificates only while both sets are trusted:

1. **trust** ([`Phase::Trust`]): the action made the new CAs ([`keys::OTHER_CA`],
   [`keys::OTHER_PEER_CA`], their keys beside the current ones). Every unit's CA files and the
   consumers' `client_ca` hold both ([`trusted`]); the unit's etcd config carries a comment
   naming that set ([`config_line`]), so each member restarts on it in its turn, and publishes
   what its running etcd loaded ([`peer_keys::CA_LOADED`]).
2. **reissue** ([`Phase::Reissue`]): once every unit loaded both, the leader swaps the CAs
   ([`Effect::CaRotationSwap`]: the new ones sign, the old ones are kept as the other, the set
   trusted is the same) and signs every unit's and consumer's certificates again (the issued
   certificates name the signing CAs, so every unit's are due; a consumer's records its CA,
   [`consumer_ca_key`]). Units rewrite them in place, without a restart.
3. **drop** ([`Phase::Drop`]): once every unit's files and every consumer's certificate come
   from the new CAs, the files and `client_ca` hold only them, and each member restarts again;
   once every unit loaded that set, the leader forgets the old CAs and their keys
   ([`Effect::CaRotationFinish`]).

Each step is decided by the Juju leader from what it observes, so a new leader goes on and a
hook killed midway converges. Nothing restarts outside phases 1 and 3, and only when the set a
member loaded differs from the one its files hold.
*/

use crate::core::effect::Effect;
use crate::core::observed::{keys as ld_keys, peer_keys as pd_keys, Issued, Observed, TlsRequest};
use crate::core::render;
use crate::juju::Settings;

/// Leader data keys of a rotation.
pub mod keys {
    /// The phase of the rotation in progress: `trust`, `reissue` or `drop`; absent when none.
    pub const PHASE: &str = "ca-rotation";
    /// The client CA (PEM) trusted beside the signing one ([`crate::core::observed::keys::TLS_CA`]):
    /// the new one in phase 1, the old one after the swap.
    pub const OTHER_CA: &str = "tls-ca-other";
    /// The peer CA (PEM) trusted beside the signing one.
    pub const OTHER_PEER_CA: &str = "tls-peer-ca-other";
    /// Juju 3: the application secret holding the other CAs' keys (only the leader reads it).
    pub const OTHER_SECRET: &str = "tls-ca-other-secret";
    /// Juju 2.9 fallback: the other client CA's key.
    pub const OTHER_CA_KEY: &str = "tls-ca-other-key";
    /// Juju 2.9 fallback: the other peer CA's key.
    pub const OTHER_PEER_CA_KEY: &str = "tls-peer-ca-other-key";
    /// Juju 2.9 fallback: the key consumers' etcd passwords are derived from, once the CA that
    /// first derived them was rotated away (Juju 3: `password-key` in the CA secret).
    pub const PASSWORD_KEY: &str = "tls-password-key";
    /// `consumer-ca-<app>`: [`super::signer`] of the CA that signed that consumer's certificate.
    pub const CONSUMER_CA_PREFIX: &str = "consumer-ca-";
    /// [`super::signer`] of the CA that signed the shared client certificate.
    pub const SHARED_CA: &str = "tls-client-cert-ca";
}

/// The phase of a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Every member and consumer comes to trust both CAs.
    Trust,
    /// Every certificate is signed again by the new CAs.
    Reissue,
    /// The old CAs are trusted no more.
    Drop,
}

impl Phase {
    /// Its word in leader data.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Trust => "trust",
            Phase::Reissue => "reissue",
            Phase::Drop => "drop",
        }
    }

    /// Its number, of 3.
    pub fn number(self) -> u8 {
        match self {
            Phase::Trust => 1,
            Phase::Reissue => 2,
            Phase::Drop => 3,
        }
    }

    /// What happens in it, for the status and the action.
    pub fn what(self) -> &'static str {
        match self {
            Phase::Trust => "every member trusts the old and new CAs (one restart each)",
            Phase::Reissue => "certificates signed again by the new CAs (no restart)",
            Phase::Drop => "the old CAs are dropped (one restart each)",
        }
    }

    fn parse(word: &str) -> Option<Phase> {
        [Phase::Trust, Phase::Reissue, Phase::Drop]
            .into_iter()
            .find(|p| p.as_str() == word)
    }
}

fn get<'a>(ld: &'a Settings, key: &str) -> Option<&'a str> {
    ld.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

/// The phase of the rotation in progress, if any.
pub fn phase(ld: &Settings) -> Option<Phase> {
    Phase::parse(get(ld, keys::PHASE)?)
}

/// The leader data key of `app`'s [`keys::CONSUMER_CA_PREFIX`].
pub fn consumer_ca_key(app: &str) -> String {
    format!("{}{app}", keys::CONSUMER_CA_PREFIX)
}

/// PEMs as one bundle: one PEM as it is; several each once, in a fixed order (the same set is
/// the same file, whichever CA signs), each ending with a newline.
pub fn bundle(pems: &[&str]) -> String {
    if let [one] = pems {
        return one.to_string();
    }
    let mut pems: Vec<String> = pems.iter().map(|p| format!("{}\n", p.trim())).collect();
    pems.sort();
    pems.dedup();
    pems.concat()
}

/// The CAs the units' files and the consumers trust now (client CAs, peer CAs): the signing
/// CAs, and in phases 1 and 2 the other ones too. `None` before the CAs exist.
pub fn trusted_lists(ld: &Settings) -> Option<(Vec<&str>, Vec<&str>)> {
    let ca = get(ld, ld_keys::TLS_CA)?;
    let peer = get(ld, ld_keys::TLS_PEER_CA).unwrap_or(ca);
    let other = get(ld, keys::OTHER_CA);
    let other_peer = get(ld, keys::OTHER_PEER_CA).or(other);
    Some(match (phase(ld), other, other_peer) {
        (Some(Phase::Trust | Phase::Reissue), Some(o), Some(op)) => (vec![ca, o], vec![peer, op]),
        _ => (vec![ca], vec![peer]),
    })
}

/// [`trusted_lists`] as the two files' contents ([`bundle`]).
pub fn trusted(ld: &Settings) -> Option<(String, String)> {
    let (client, peer) = trusted_lists(ld)?;
    Some((bundle(&client), bundle(&peer)))
}

/// A short digest of a trusted set.
pub fn digest(client: &str, peer: &str) -> String {
    let record = render::tls_record(client, peer, "", &[]);
    record.split_whitespace().next().unwrap_or("").to_string()
}

/// The digest of the client CA that signs now, as recorded with what it signed.
pub fn signer(ld: &Settings) -> String {
    digest(get(ld, ld_keys::TLS_CA).unwrap_or(""), "")
}

/// The start of the comment line naming the CA set in etcd's config.
const LINE: &str = "# etcd-charm trusted CAs: ";

/// While a rotation runs with TLS on, the comment line naming the CA set for etcd's config: a
/// new set is a restart (etcd reads CA files only at start), and the config on disk tells what
/// the running etcd loaded.
pub fn config_line(o: &Observed, tls: bool) -> Option<String> {
    phase(&o.leader_data.raw).filter(|_| tls)?;
    let (client, peer) = trusted(&o.leader_data.raw)?;
    Some(format!("{LINE}{}\n", digest(&client, &peer)))
}

/// `config` with this pass's [`config_line`], if any.
pub fn with_line(config: String, o: &Observed, tls: bool) -> String {
    match config_line(o, tls) {
        Some(line) => config + &line,
        None => config,
    }
}

/// The CA set a config names ([`config_line`]), if it does.
pub fn loaded(config: &str) -> Option<&str> {
    config
        .lines()
        .find_map(|l| l.strip_prefix(LINE))
        .map(str::trim)
}

/// Whether this member must restart to load the CA set its config now names: only while a
/// rotation runs, when the set differs from the one its running etcd loaded.
pub fn restart_needed(o: &Observed, config: &str) -> bool {
    let Some(want) = loaded(config) else {
        return false;
    };
    let old = o.local.rendered_config.as_deref();
    old.is_some_and(|old| loaded(old) != Some(want))
}

/// This unit's `ca-loaded` peer data while a rotation runs: the CA set its running etcd loaded.
pub fn loaded_now(o: &Observed) -> Option<&str> {
    phase(&o.leader_data.raw)?;
    o.local.service_active.then_some(())?;
    o.local.rendered_config.as_deref().and_then(loaded)
}

/// What the leader knows of one unit for the rotation.
struct UnitFacts<'a> {
    loaded: Option<&'a str>,
    request: Option<TlsRequest>,
    files: Option<&'a str>,
    restarting: bool,
}

fn unit_facts(o: &Observed) -> Vec<UnitFacts<'_>> {
    let own = UnitFacts {
        loaded: o.own_peer_data.get(pd_keys::CA_LOADED).map(String::as_str),
        request: TlsRequest::from_data(&o.own_peer_data),
        files: o.own_peer_data.get(pd_keys::TLS_FILES).map(String::as_str),
        restarting: o.request_published(),
    };
    let peers = o.peers.iter().map(|p| UnitFacts {
        loaded: p.ca_loaded.as_deref(),
        request: p.tls_request.clone(),
        files: p.tls_files.as_deref(),
        restarting: p.restart_request.is_some(),
    });
    std::iter::once(own).chain(peers).collect()
}

/// Leader: the next step of the rotation in progress, once what it waits for is observed:
/// every unit loaded the set trusted (phases 1 and 3, no restart under way), or every unit's
/// files and every consumer's certificate come from the signing CAs (phase 2).
pub fn leader_step(o: &Observed) -> Option<Effect> {
    let ld = &o.leader_data.raw;
    let phase = phase(ld)?;
    let (client, peer) = trusted(ld)?;
    let want = digest(&client, &peer);
    let units = unit_facts(o);
    let settled = o.leader_data.restart_granted.is_none()
        && o.leader_data.joining.is_none()
        && units.iter().all(|u| !u.restarting);
    let all_loaded = units.iter().all(|u| u.loaded == Some(want.as_str()));
    match phase {
        Phase::Trust => (settled && all_loaded).then_some(Effect::CaRotationSwap),
        Phase::Reissue => reissued(o, &units).then(|| {
            Effect::LeaderSet(Settings::from([(
                keys::PHASE.to_string(),
                Phase::Drop.as_str().to_string(),
            )]))
        }),
        Phase::Drop => (settled && all_loaded).then_some(Effect::CaRotationFinish),
    }
}

/// Every unit's files hold certificates from the signing CAs, and every consumer's certificate
/// and the shared one were signed by them.
fn reissued(o: &Observed, units: &[UnitFacts]) -> bool {
    let ld = &o.leader_data.raw;
    let (Some(ca), signer) = (get(ld, ld_keys::TLS_CA), signer(ld)) else {
        return false;
    };
    let peer_ca = get(ld, ld_keys::TLS_PEER_CA).unwrap_or(ca);
    let files_ok = units.iter().all(|u| match &u.request {
        Some(r) => {
            u.files == Some(Issued::fingerprint(&r.csr, &r.client_csr, ca, peer_ca).as_str())
        }
        None => true,
    });
    // The consumers the leader issues certificates to ([`crate::core::membership::consumers`]).
    let consumers = o.clients.iter().filter_map(|r| r.app.as_deref());
    let consumers_ok = consumers
        .filter(|app| *app != "root")
        .all(|app| get(ld, &consumer_ca_key(app)) == Some(signer.as_str()));
    let shared_ok = get(ld, ld_keys::TLS_CLIENT_CERT).is_none()
        || get(ld, keys::SHARED_CA) == Some(signer.as_str());
    files_ok && consumers_ok && shared_ok
}

/// Leader: whether a consumer's certificate under leader data `cert_key`, whose signer is
/// recorded under `ca_key`, must be signed again by the new CAs (phase 2).
pub fn reissue_due(o: &Observed, ca_key: &str) -> bool {
    let ld = &o.leader_data.raw;
    phase(ld) == Some(Phase::Reissue) && get(ld, ca_key) != Some(signer(ld).as_str())
}

/// The leader data of the swap (phase 1 → 2), from leader data `ld`: the other CAs sign, the
/// signing ones become the other (still trusted); keys as `keys` names them (the caller swaps
/// the secrets or the 2.9 fallback's keys).
pub fn swapped(ld: &Settings) -> Option<Settings> {
    let ca = get(ld, ld_keys::TLS_CA)?;
    let peer = get(ld, ld_keys::TLS_PEER_CA).unwrap_or(ca);
    let other = get(ld, keys::OTHER_CA)?;
    let other_peer = get(ld, keys::OTHER_PEER_CA).unwrap_or(other);
    let pairs = [
        (ld_keys::TLS_CA, other),
        (ld_keys::TLS_PEER_CA, other_peer),
        (keys::OTHER_CA, ca),
        (keys::OTHER_PEER_CA, peer),
        (keys::PHASE, Phase::Reissue.as_str()),
    ];
    Some(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// The leader data cleared once the rotation is done.
pub fn finished() -> Settings {
    [
        keys::PHASE,
        keys::OTHER_CA,
        keys::OTHER_PEER_CA,
        keys::OTHER_SECRET,
        keys::OTHER_CA_KEY,
        keys::OTHER_PEER_CA_KEY,
    ]
    .into_iter()
    .map(|k| (k.to_string(), String::new()))
    .collect()
}

/// Why a rotation cannot start now, if it cannot (the action's refusal).
pub fn refusal(ld: &Settings, tls_option: bool) -> Option<String> {
    let tls = get(ld, ld_keys::TLS) == Some("true");
    if !tls || !tls_option {
        return Some("TLS is off: there is no CA to rotate (set tls=true first)".into());
    }
    if let Some(p) = phase(ld) {
        return Some(format!(
            "a CA rotation is already in progress (phase {} of 3: {}): follow it with `juju status`",
            p.number(),
            p.what()
        ));
    }
    if get(ld, ld_keys::TLS_SWITCHING).is_some() || get(ld, ld_keys::TLS_KEPT).is_some() {
        return Some("a TLS switch is in progress: run rotate-ca once it is done".into());
    }
    if get(ld, ld_keys::TLS_CA).is_none() {
        return Some("the cluster's CAs are not made yet: run rotate-ca once they are".into());
    }
    None
}

/// The status detail of this unit while a rotation runs: phase and what happens.
pub fn status(o: &Observed) -> Option<(u8, &'static str)> {
    let p = phase(&o.leader_data.raw)?;
    Some((p.number(), p.what()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::observed::{LeaderData, Peer};

    fn ld(pairs: &[(&str, &str)]) -> Settings {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_trusted_set_is_the_same_before_and_after_the_swap() {
        let before = ld(&[
            (ld_keys::TLS, "true"),
            (ld_keys::TLS_CA, "OLD"),
            (ld_keys::TLS_PEER_CA, "OLD PEER"),
            (keys::OTHER_CA, "NEW"),
            (keys::OTHER_PEER_CA, "NEW PEER"),
        ]);
        // No rotation: the signing CAs only, as they are.
        assert_eq!(trusted(&before), Some(("OLD".into(), "OLD PEER".into())));
        let mut trust = before.clone();
        trust.insert(keys::PHASE.into(), "trust".into());
        let both = trusted(&trust).unwrap();
        assert_eq!(both, ("NEW\nOLD\n".into(), "NEW PEER\nOLD PEER\n".into()));
        let mut reissue = trust.clone();
        reissue.extend(swapped(&trust).unwrap());
        assert_eq!(reissue[ld_keys::TLS_CA], "NEW");
        assert_eq!(reissue[keys::OTHER_CA], "OLD");
        assert_eq!(phase(&reissue), Some(Phase::Reissue));
        assert_eq!(trusted(&reissue).unwrap(), both);
        let mut drop = reissue.clone();
        drop.insert(keys::PHASE.into(), "drop".into());
        assert_eq!(trusted(&drop), Some(("NEW".into(), "NEW PEER".into())));
        let mut done = drop.clone();
        done.extend(finished());
        done.retain(|_, v| !v.is_empty());
        assert_eq!(phase(&done), None);
        assert_eq!(trusted(&done), trusted(&drop));
        assert_eq!(refusal(&done, true), None);
        assert!(refusal(&trust, true).unwrap().contains("phase 1 of 3"));
        assert!(refusal(&done, false).unwrap().contains("TLS is off"));
    }

    /// A leader with one peer, both running etcd on `config`, in `phase`.
    fn world(phase: &str) -> Observed {
        let mut o = Observed::blank("etcd/0");
        o.leadership = crate::core::observed::Leadership::Leader;
        let mut raw = ld(&[
            (ld_keys::TLS, "true"),
            (ld_keys::TLS_CA, "OLD"),
            (ld_keys::TLS_PEER_CA, "OLD PEER"),
            (keys::OTHER_CA, "NEW"),
            (keys::OTHER_PEER_CA, "NEW PEER"),
        ]);
        raw.insert(keys::PHASE.into(), phase.into());
        o.leader_data = LeaderData::parse(raw);
        o.local.service_active = true;
        o.peers = vec![Peer {
            unit: "etcd/1".into(),
            ..Peer::default()
        }];
        o
    }

    #[test]
    fn a_member_restarts_only_for_a_new_trusted_set() {
        let mut o = world("trust");
        let config = with_line("name: etcd0\n".into(), &o, true);
        let line = loaded(&config).unwrap().to_string();
        // Running the old config (no line): a restart; once running the new one, none.
        o.local.rendered_config = Some("name: etcd0\n".into());
        assert!(restart_needed(&o, &config));
        assert_eq!(loaded_now(&o), None);
        o.local.rendered_config = Some(config.clone());
        assert!(!restart_needed(&o, &config));
        assert_eq!(loaded_now(&o), Some(line.as_str()));
        // The swap keeps the set: no restart in phase 2.
        let mut raw = o.leader_data.raw.clone();
        raw.extend(swapped(&raw).unwrap());
        o.leader_data = LeaderData::parse(raw.clone());
        assert_eq!(with_line("name: etcd0\n".into(), &o, true), config);
        // Without TLS, or once the rotation is done, no line: no restart, the config is only
        // rewritten.
        assert_eq!(config_line(&o, false), None);
        raw.extend(finished());
        o.leader_data = LeaderData::parse(raw);
        let plain = with_line("name: etcd0\n".into(), &o, true);
        assert_eq!(plain, "name: etcd0\n");
        assert!(!restart_needed(&o, &plain));
    }

    #[test]
    fn the_leader_steps_on_only_when_every_unit_is_there() {
        let mut o = world("trust");
        let (c, p) = trusted(&o.leader_data.raw).unwrap();
        let both = digest(&c, &p);
        assert_eq!(leader_step(&o), None);
        o.own_peer_data
            .insert(pd_keys::CA_LOADED.into(), both.clone());
        assert_eq!(leader_step(&o), None, "etcd/1 has not loaded both");
        o.peers[0].ca_loaded = Some(both.clone());
        o.peers[0].restart_request = Some("f".into());
        assert_eq!(leader_step(&o), None, "etcd/1 still restarting");
        o.peers[0].restart_request = None;
        assert_eq!(leader_step(&o), Some(Effect::CaRotationSwap));

        // Phase 2: units' files and consumers' certificates from the new CA.
        let mut raw = o.leader_data.raw.clone();
        raw.extend(swapped(&raw).unwrap());
        raw.insert(ld_keys::TLS_CLIENT_CERT.into(), "SHARED".into());
        o.leader_data = LeaderData::parse(raw.clone());
        let req = TlsRequest {
            csr: "csr".into(),
            client_csr: "ccsr".into(),
        };
        o.peers[0].tls_request = Some(req.clone());
        assert_eq!(leader_step(&o), None);
        assert!(reissue_due(&o, keys::SHARED_CA));
        o.peers[0].tls_files = Some(Issued::fingerprint("csr", "ccsr", "NEW", "NEW PEER"));
        raw.insert(keys::SHARED_CA.into(), signer(&raw));
        o.leader_data = LeaderData::parse(raw.clone());
        assert!(!reissue_due(&o, keys::SHARED_CA));
        let drop = Settings::from([(keys::PHASE.to_string(), "drop".to_string())]);
        assert_eq!(leader_step(&o), Some(Effect::LeaderSet(drop.clone())));

        // Phase 3: every unit restarted on the new CAs only.
        raw.extend(drop);
        o.leader_data = LeaderData::parse(raw.clone());
        assert_eq!(leader_step(&o), None);
        let (c, p) = trusted(&raw).unwrap();
        let new = digest(&c, &p);
        assert_ne!(new, both);
        o.own_peer_data
            .insert(pd_keys::CA_LOADED.into(), new.clone());
        o.peers[0].ca_loaded = Some(new);
        assert_eq!(leader_step(&o), Some(Effect::CaRotationFinish));
    }
}

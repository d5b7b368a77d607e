/*!
`rotate-ca` (leader): starts a rotation of both CAs, the client CA and the peer CA
([`crate::core::ca_rotation`]), and returns at once; the hooks drive its three phases (trust both,
reissue every certificate, drop the old CAs), with one rolling restart in phases 1 and 3.
Refused when TLS is off, while a TLS switch or another rotation runs.

Result keys: `phase`, `follow`, `output`.
*/

use super::{common, Action, Results, Stop};
use crate::core::ca_rotation::{self, keys as rkeys, Phase};
use crate::core::observed::{keys, secret_keys};
use crate::juju::{SecretOwner, Settings};
use crate::machine::tls;
use crate::reconcile::observe::has_secrets;

/// The action.
pub fn run(a: &Action, r: &mut Results) -> Result<(), Stop> {
    common::require_leader(a, "rotate-ca")?;
    let ld = a.leader_data();
    if let Some(why) = ca_rotation::refusal(ld, a.config().tls) {
        return super::fail(format!("{why}; nothing was done"));
    }
    let secrets = has_secrets(a.ctx);
    let in_secret = ld.get(keys::TLS_CA_SECRET).is_some_and(|v| !v.is_empty());
    if secrets && !in_secret {
        return super::fail(
            "the CA keys are still in leader data: the leader moves them into a secret at its \
             next hook; run rotate-ca again after it (nothing was done)",
        );
    }
    let (ca, peer_ca, new) = match tls::new_cas() {
        Ok(made) => made,
        Err(e) => return super::fail(format!("cannot make the new CAs: {e}; nothing was done")),
    };
    let peer_key = new.peer_ca_key.clone().unwrap_or_default();
    let mut data = Settings::from([
        (rkeys::OTHER_CA.to_string(), ca),
        (rkeys::OTHER_PEER_CA.to_string(), peer_ca),
    ]);
    if secrets {
        let content = Settings::from([
            (secret_keys::CA_KEY.to_string(), new.ca_key.clone()),
            (secret_keys::PEER_CA_KEY.to_string(), peer_key),
        ]);
        let id = a
            .juju
            .secret_add(&content, SecretOwner::Application, None)?;
        data.insert(rkeys::OTHER_SECRET.into(), id);
    } else {
        // Juju 2.9 fallback: beside the current keys, in leader data.
        data.insert(rkeys::OTHER_CA_KEY.into(), new.ca_key.clone());
        data.insert(rkeys::OTHER_PEER_CA_KEY.into(), peer_key);
    }
    // The phase last: the rotation starts only once the new CAs are all there.
    a.juju.leader_set(&data)?;
    let phase = Phase::Trust;
    let start = Settings::from([(rkeys::PHASE.to_string(), phase.as_str().to_string())]);
    a.juju.leader_set(&start)?;
    r.set(
        "phase",
        format!("{} of 3: {}", phase.number(), phase.what()),
    );
    r.set(
        "follow",
        "`juju status`: each unit shows the phase while it runs, and active once done",
    );
    r.set(
        "output",
        "made new client and peer CAs; the hooks now (1) make every member and consumer trust \
         old and new (one rolling restart), (2) sign every certificate again with the new CAs (no \
         restart), (3) drop the old CAs (one rolling restart)",
    );
    Ok(())
}

/*!
The leader's effectful steps of a CA rotation ([`crate::core::ca_rotation`]): the swap (the new
CAs sign, their keys and secret become the current ones) and the end (the old CAs' keys go).
Each is one `leader-set` after what it needs is in place, so a hook killed midway does it again.
*/

use super::apply::ApplyError;
use crate::core::ca_rotation::{self, keys as rkeys};
use crate::core::observed::{keys, secret_keys, Observed};
use crate::juju::{Juju, Level};

/// Leader, phase 1 → 2: the other CAs (new) sign from now on, the signing ones (old) become
/// the other, still trusted. Consumers' passwords stay those derived from the first CA key:
/// that key is kept with the new keys (`password-key`).
pub fn swap(o: &Observed, juju: &dyn Juju) -> Result<(), ApplyError> {
    let ld = &o.leader_data;
    let (Some(mut data), Some(current)) = (ca_rotation::swapped(&ld.raw), &o.secrets.ca_keys)
    else {
        let msg = "CA rotation: cannot swap the CAs now (their keys are unreadable); retrying";
        juju.log(Level::Warning, msg);
        return Ok(());
    };
    let seed = current.password_key.as_ref().unwrap_or(&current.ca_key);
    let secrets = (ld.get(keys::TLS_CA_SECRET), ld.get(rkeys::OTHER_SECRET));
    match (o.secrets.available, secrets) {
        (true, (Some(signing), Some(other))) => {
            let mut content = juju.secret_get(other, true)?;
            if content.get(secret_keys::PASSWORD_KEY) != Some(seed) {
                content.insert(secret_keys::PASSWORD_KEY.into(), seed.clone());
                juju.secret_set(other, &content)?;
            }
            data.insert(keys::TLS_CA_SECRET.into(), other.into());
            data.insert(rkeys::OTHER_SECRET.into(), signing.into());
        }
        _ => {
            // Juju 2.9: the keys are in leader data.
            let Some(other) = ld.get(rkeys::OTHER_CA_KEY) else {
                juju.log(Level::Warning, "CA rotation: the new CA keys are missing");
                return Ok(());
            };
            let other_peer = ld.get(rkeys::OTHER_PEER_CA_KEY).unwrap_or(other);
            let peer = current.peer_ca_key.as_ref().unwrap_or(&current.ca_key);
            for (k, v) in [
                (keys::TLS_CA_KEY, other),
                (keys::TLS_PEER_CA_KEY, other_peer),
                (rkeys::OTHER_CA_KEY, &current.ca_key),
                (rkeys::OTHER_PEER_CA_KEY, peer),
                (rkeys::PASSWORD_KEY, seed),
            ] {
                data.insert(k.into(), v.to_string());
            }
        }
    }
    juju.leader_set(&data)?;
    let msg = "CA rotation phase 2 of 3: the new CAs sign; every certificate is signed again";
    juju.log(Level::Info, msg);
    Ok(())
}

/// Leader, the rotation done: the old CAs' secret (Juju 3) is removed, then the rotation's
/// leader data (the 2.9 fallback's old keys with it).
pub fn finish(o: &Observed, juju: &dyn Juju) -> Result<(), ApplyError> {
    let other = o.leader_data.get(rkeys::OTHER_SECRET);
    if let Some(id) = other.filter(|_| o.secrets.available) {
        if let Err(e) = juju.secret_remove(id) {
            // Gone already (a hook killed after removing it), or to be removed by hand.
            let msg = format!("CA rotation: cannot remove the old CA keys' secret {id}: {e}");
            juju.log(Level::Warning, &msg);
        }
    }
    juju.leader_set(&ca_rotation::finished())?;
    let msg = "CA rotation done: only the new CAs are trusted; the old CA keys are removed";
    juju.log(Level::Info, msg);
    Ok(())
}

/*!
etcd's own authentication (RBAC) on a TLS cluster, decided by the Juju leader. Pure, like the
rest of the plan.

Every member's client port requires a client certificate from the client CA, and with auth on
etcd takes its common name as the user: the units' own certificates say `root` (user and role
`root`), each application related on `db` or `proxy` gets a certificate with its own name
([`crate::core::membership`]) and here a user and a role named after it, with read-write on
the prefix it asks for (the `etcd_client` interface's `prefix` in its application data) or on
the whole keyspace. What the leader made is recorded in leader data
([`keys::AUTH_USER_PREFIX`]): a user is made or changed when its record differs, deleted when
its application has no relation left (its certificate is then denied).

A consumer that cannot present a certificate with a common name (etcd 3.4's grpc-proxy on
`proxy`, HTTP clients of the JSON gateway) authenticates as the same user with its password
(see [`crate::core::relations::client_data`]).

`auth enable` comes last, once every unit runs a certificate with the `root` identity (a cluster
from an older charm has its certificates issued again first, so it converges without an
outage) and every user is made. With `tls=false` auth is off: it is disabled before the cluster
leaves https.
*/

use crate::core::effect::AuthChange;
use crate::core::membership::consumers;
use crate::core::observed::{keys, peer_keys, Issued, Leadership, Observed, TlsRequest};
use crate::etcd::Grant;

/// A requested key prefix etcd can grant: 1 to 256 printable ASCII characters, no space,
/// starting with a letter, a digit or one of `/ _ - .` (no control character, no `\0`, nothing
/// that sorts before `/`).
pub fn valid_prefix(prefix: &str) -> bool {
    let first = prefix.chars().next();
    let first_ok = first.is_some_and(|c| c.is_ascii_alphanumeric() || "/_-.".contains(c));
    first_ok && prefix.len() <= 256 && prefix.chars().all(|c| c.is_ascii_graphic())
}

/// True once every unit (this one and its peers) has the certificates issued from its current
/// request and has written them (its `tls-files` says so): then every unit's client
/// certificate is the `root` one.
fn every_unit_current(o: &Observed) -> bool {
    let (Some(ca), ld) = (o.leader_data.get(keys::TLS_CA), &o.leader_data) else {
        return false;
    };
    let peer_ca = ld.get(keys::TLS_PEER_CA).unwrap_or(ca);
    let own = (
        o.unit.as_str(),
        TlsRequest::from_data(&o.own_peer_data),
        o.own_peer_data.get(peer_keys::TLS_FILES).cloned(),
    );
    let peers = o
        .peers
        .iter()
        .map(|p| (p.unit.as_str(), p.tls_request.clone(), p.tls_files.clone()));
    std::iter::once(own).chain(peers).all(|(unit, req, files)| {
        let Some(req) = req else { return false };
        let from = Issued::fingerprint(&req.csr, &req.client_csr, ca, peer_ca);
        let issued = ld.get(&keys::issued_key(unit)).and_then(Issued::parse);
        issued.is_some_and(|i| i.from == from) && files.as_deref() == Some(from.as_str())
    })
}

/// The users the leader wants: `root`, and one per consumer application holding its own
/// certificate, with the grant its requested prefix asks for.
fn desired(o: &Observed) -> Vec<(String, Grant)> {
    let mut want = vec![("root".to_string(), Grant::Root)];
    let issued = |app: &&str| {
        let cert = keys::consumer_key(keys::CONSUMER_CERT_PREFIX, app);
        o.leader_data.get(&cert).is_some()
    };
    for app in consumers(o).into_iter().filter(issued) {
        let asked = o.clients.iter().find(|r| r.app.as_deref() == Some(app));
        let grant = match asked.and_then(|r| r.prefix.as_deref()) {
            None => Grant::All,
            Some(p) if valid_prefix(p) => Grant::Prefix(p.to_string()),
            Some(_) => Grant::Nothing,
        };
        want.push((app.to_string(), grant));
    }
    want
}

/// The users recorded in leader data, with their grants.
fn recorded(o: &Observed) -> Vec<(String, Option<Grant>)> {
    let users = o.leader_data.raw.iter().filter(|(_, v)| !v.is_empty());
    let users = users.filter_map(|(k, v)| Some((k.strip_prefix(keys::AUTH_USER_PREFIX)?, v)));
    users
        .map(|(name, v)| (name.to_string(), Grant::parse(v)))
        .collect()
}

/// The leader's auth changes for this pass, in order: users first, `auth enable` last (see
/// the module documentation). `tls` is the cluster's transport as the `tls` option asks and as
/// it is in force.
pub fn changes(o: &Observed, tls: bool) -> Vec<AuthChange> {
    if o.leadership != Leadership::Leader {
        return Vec::new();
    }
    let enabled = o.leader_data.get(keys::AUTH).is_some();
    if !tls {
        return match enabled {
            true => vec![AuthChange::Disable],
            false => Vec::new(),
        };
    }
    let want = desired(o);
    let have = recorded(o);
    let mut out: Vec<AuthChange> = want
        .iter()
        .filter_map(|(name, grant)| {
            let old = have.iter().find(|(n, _)| n == name).map(|(_, g)| g.clone());
            (old.as_ref() != Some(&Some(grant.clone()))).then(|| AuthChange::SetUser {
                name: name.clone(),
                grant: grant.clone(),
                old: old.flatten(),
            })
        })
        .collect();
    let gone = have
        .iter()
        .filter(|(n, _)| !want.iter().any(|(w, _)| w == n));
    out.extend(gone.map(|(name, _)| AuthChange::DeleteUser { name: name.clone() }));
    if !enabled && out.is_empty() && every_unit_current(o) {
        out.push(AuthChange::Enable);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_round_trip_and_prefixes_are_checked() {
        let grants = [
            Grant::Root,
            Grant::All,
            Grant::Nothing,
            Grant::Prefix("/app/".into()),
        ];
        for g in grants {
            assert_eq!(Grant::parse(&g.record()), Some(g));
        }
        assert_eq!(Grant::parse("junk"), None);
        for ok in ["/app/", "app", "_x", "a.b-c/"] {
            assert!(valid_prefix(ok), "{ok}");
        }
        let long = "a".repeat(257);
        for bad in ["", " /app", "\0", "/a b", "\u{e9}", "*", long.as_str()] {
            assert!(!valid_prefix(bad), "{bad:?}");
        }
    }
}

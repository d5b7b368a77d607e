/*!
Relation data this unit publishes: its own peer data, and the `db`/`proxy` data clients read.
Pure, like the rest of the plan.

Every unit publishes the same client data, built from the leader's published keys (see
[`crate::core::observed::keys`]), so consumers that read only the first remote unit see the full,
identically sorted member list.
*/

use crate::core::ca_rotation;
use crate::core::config::CharmConfig;
use crate::core::effect::Effect;
use crate::core::observed::{keys, peer_keys, tls_files_record, Issued, Leadership, Observed};
use crate::core::render;
use crate::juju::Settings;

/// A non-empty value of a published key.
fn lookup<'a>(data: &'a Settings, key: &str) -> Option<&'a str> {
    data.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

/// This unit's peer relation data, when it differs from what is published: the URLs its etcd
/// advertises (those of the config it runs: a new port is announced once etcd has restarted
/// with it, so the leader updates the member only then), its started member, its pending
/// `restart-request` and the etcd version its member runs (kept while it does not
/// answer).
pub fn peer_data(
    o: &Observed,
    cfg: &CharmConfig,
    address: &str,
    restart_request: Option<&str>,
) -> Option<Effect> {
    let rel = o.peer_relation.as_ref()?;
    let started = o.started_member().map(|id| format!("{id:x}"));
    let started = started.unwrap_or_default();
    let (peer_url, client_url) = o.advertised(cfg, address);
    let mut want = Settings::from([
        (peer_keys::PEER_URL.to_string(), peer_url),
        (peer_keys::CLIENT_URL.to_string(), client_url),
        (peer_keys::INGRESS.to_string(), address.to_string()),
        (peer_keys::STARTED.to_string(), started),
        (
            peer_keys::RESTART_REQUEST.to_string(),
            restart_request.unwrap_or("").to_string(),
        ),
    ]);
    if let Some(from) = written_tls(o, address) {
        want.insert(peer_keys::TLS_FILES.to_string(), from);
    }
    if let Some(loaded) = ca_rotation::loaded_now(o) {
        want.insert(peer_keys::CA_LOADED.to_string(), loaded.to_string());
    }
    let running = o.local.status.as_ref().map(|s| s.version.as_str());
    if let Some(v) = running.filter(|v| !v.is_empty()) {
        want.insert(peer_keys::VERSION.to_string(), v.to_string());
    }
    changed(&o.own_peer_data, want).map(|s| Effect::PeerSet(rel.clone(), s))
}

/// What this unit's TLS files were written from ([`Issued::from`]), when they hold what the
/// leader issued for its current request.
fn written_tls(o: &Observed, address: &str) -> Option<String> {
    let ld = &o.leader_data;
    let (ca, peer_ca) = ca_rotation::trusted(&ld.raw)?;
    let issued = ld.get(&keys::issued_key(&o.unit)).and_then(Issued::parse)?;
    let sans = render::tls_sans(address, o.local.hostname.as_deref());
    let want = tls_files_record(&ca, &peer_ca, &issued, &sans);
    (o.local.tls_record.as_deref() == Some(want.as_str())).then_some(issued.from)
}

/// The entries of `want` that differ from `have` (empty values delete keys that exist).
pub fn changed(have: &Settings, want: Settings) -> Option<Settings> {
    let diff: Settings = want
        .into_iter()
        .filter(|(k, v)| have.get(k).map_or(!v.is_empty(), |h| h != v))
        .collect();
    (!diff.is_empty()).then_some(diff)
}

/// The key under which `db`/`proxy` data names the secret holding `client_key` (Juju 3).
pub const CLIENT_KEY_SECRET: &str = "client_key_secret";

/// The key under which `db`/`proxy` data names the secret holding the application's own
/// credentials (Juju 3): `password` (its etcd user's), and `client-key` (its certificate's).
pub const CREDENTIALS_SECRET: &str = "credentials_secret";

/// The credentials one relation gets: `client_ca`, `client_cert`, `client_key` and the secret
/// id; `key` is `None` while this unit cannot read it.
#[derive(Clone, Copy, Default)]
struct Credentials<'a> {
    cert: Option<&'a str>,
    key: Option<&'a str>,
    secret: Option<&'a str>,
    /// A `db` consumer's etcd user name, and its password where it is not in the secret
    /// (Juju 2.9).
    user: Option<&'a str>,
    password: Option<&'a str>,
}

/// A `db` consumer's own credentials (see [`crate::core::membership::db_consumers`]): its
/// certificate from leader data, its key as this pass read it (or from leader data, Juju 2.9);
/// all `None` before the leader has issued them.
fn consumer_credentials<'a>(
    o: &'a Observed,
    published: &'a Settings,
    app: &'a str,
) -> Credentials<'a> {
    let get = |prefix| lookup(published, &keys::consumer_key(prefix, app));
    let read = o.secrets.consumer_keys.get(app).map(|k| k.0.as_str());
    Credentials {
        cert: get(keys::CONSUMER_CERT_PREFIX),
        key: read.or(get(keys::CONSUMER_KEY_PREFIX)),
        secret: get(keys::CONSUMER_SECRET_PREFIX).filter(|_| o.secrets.available),
        user: Some(app),
        password: get(keys::CONSUMER_PASSWORD_PREFIX).filter(|_| !o.secrets.available),
    }
}

/// Data for `proxy` and `db` relations: identical on every unit because it comes from the
/// leader's published keys.
///
/// - `proxy`: `cluster` = `name=peerURL,...` of the started voting members, sorted;
///   `endpoints` = their client URLs, sorted, comma-separated (for `etcd grpc-proxy start
///   --endpoints` or `etcd gateway start --endpoints`).
/// - `db`: `connection_string` = the same client URLs; `version` = etcd's version.
/// - both, with `tls`: `client_ca`, `client_cert`, `client_key` (PEM: where existing consumers
///   read them) and, under Juju 3, `client_key_secret` (the secret holding the key, granted to
///   the relation by the leader, [`Effect::GrantSecret`]); without `tls` these keys are
///   removed. A `db` relation gets its application's own certificate (CN = the application's
///   name), a `proxy` relation the shared one without a common name (etcd 3.4's grpc-proxy
///   refuses one with it). While this unit cannot read the key (or the leader has not issued
///   it yet), the credentials are left as they are.
pub fn client_data(o: &Observed, published: &Settings, tls: bool) -> Vec<Effect> {
    let key = o.secrets.client_key.as_ref().map(|k| k.0.as_str());
    let shared = Credentials {
        cert: lookup(published, keys::TLS_CLIENT_CERT),
        key: key.or(lookup(published, keys::TLS_CLIENT_KEY)),
        secret: lookup(published, keys::TLS_CLIENT_SECRET).filter(|_| o.secrets.available),
        ..Credentials::default()
    };
    // Both CAs while a rotation trusts both ([`ca_rotation::trusted`]), and with them the
    // external CAs while an external CA is in use.
    let trusted = ca_rotation::trusted(published).map(|(client, _)| client);
    let bundle = trusted
        .as_deref()
        .and_then(|ca| crate::core::certificates::client_ca(o, ca));
    let ca = bundle.as_deref().or(trusted.as_deref());
    let cluster = lookup(published, keys::CLUSTER);
    let endpoints = lookup(published, keys::ENDPOINTS);
    let version = lookup(published, keys::VERSION).or(o.local.version.as_deref());
    let leader = o.leadership == Leadership::Leader;
    let mut effects = Vec::new();
    for rel in &o.clients {
        let mut want = Settings::new();
        let mut put = |k: &str, v: Option<&str>| {
            if let Some(v) = v {
                want.insert(k.to_string(), v.to_string());
            }
        };
        let own = rel
            .app
            .as_deref()
            .map(|app| consumer_credentials(o, published, app));
        let creds = match rel.endpoint.as_str() {
            "proxy" => {
                put("cluster", cluster);
                put("endpoints", endpoints);
                // The certificate without a common name, and the application's own user.
                Credentials {
                    user: own.and_then(|c| c.user),
                    password: own.and_then(|c| c.password),
                    ..shared
                }
            }
            _ => {
                put("connection_string", endpoints);
                put("version", version);
                own.unwrap_or_default()
            }
        };
        let own_secret = own.and_then(|c| c.secret);
        // The CA is no secret: it follows leader data (an external CA's bundle) even while
        // this unit cannot read the key.
        if let Some(ca) = ca.filter(|_| tls) {
            want.insert("client_ca".to_string(), ca.to_string());
        }
        if !tls || creds.key.is_some() {
            // For clients that cannot present a certificate with a common name: the shared one
            // without, and a user name and password (in the secret, Juju 2.9: here).
            let for_db = creds.user.is_some() && rel.endpoint != "proxy";
            let credentials = [
                ("client_ca", ca),
                ("client_cert", creds.cert),
                ("client_key", creds.key),
                (CLIENT_KEY_SECRET, creds.secret),
                ("username", creds.user),
                ("password", creds.password),
                (CREDENTIALS_SECRET, own_secret),
                ("cnless_client_cert", shared.cert.filter(|_| for_db)),
                ("cnless_client_key", shared.key.filter(|_| for_db)),
            ];
            for (k, value) in credentials {
                let value = value.filter(|_| tls);
                want.insert(k.to_string(), value.unwrap_or("").to_string());
            }
        }
        let mut grants: Vec<&String> = [CLIENT_KEY_SECRET, CREDENTIALS_SECRET]
            .iter()
            .filter_map(|k| {
                let id = want.get(*k)?;
                (!id.is_empty() && rel.published.get(*k) != Some(id)).then_some(id)
            })
            .collect();
        grants.dedup();
        for id in grants.into_iter().filter(|_| leader) {
            effects.push(Effect::GrantSecret {
                id: id.clone(),
                relation: rel.id.clone(),
            });
        }
        if let Some(diff) = changed(&rel.published, want) {
            effects.push(Effect::RelationSet(rel.id.clone(), diff));
        }
    }
    effects
}

/*!
Gathers the facts one reconcile pass decides on: config, leadership, leader data, the peer
relation, client relations, what is installed and rendered on the machine, and etcd's own view
(local member status, member list). Everything is read here; [`crate::core::plan`] only looks.

The common path (`update-status` on a healthy member) is kept cheap: etcd is asked first and
`systemctl` only when it does not answer; a follower whose member votes and knows its Raft
leader does not read its peers' data (nothing it decides depends on it, unless a backup schedule
is set: the status then shows the newest verified backup any unit announces); `update-status`
takes the unit's address from its own published peer data instead of `network-get`; the etcd
calls are the local member's status, the member list, then one round of status calls to the
other started members, all at once and each bounded (the status names who does not answer),
all begun before the first hook tool runs when a rendered config names the member, so that
etcd and Juju's tools are waited on at once ([`Etcd::begin_status`]); their answers list the alarms (etcd's alarm list, a Raft round, is asked only when
none answers); the leader reads its CA keys' secret only for a plan that needs them
([`read_ca_keys`]), and `goal-state` only for a plan that removes a member ([`goal`]).
*/

use crate::core::ca_rotation;
use crate::core::certificates;
use crate::core::config::CharmConfig;
use crate::core::cos::ENDPOINT as COS_AGENT;
use crate::core::observed::{
    self, keys, peer_keys, secret_keys, CaKeys, ClientRelation, ClusterView, CosAgent, Goal,
    LeaderData, Leadership, Local, Observed, Peer, Redacted, TlsRequest, TlsSecrets,
};
use crate::core::render;
use crate::core::storage;
use crate::etcd::{Etcd, Member, MemberStatus};
use crate::juju::context::{member_name, Hook, JujuContext, RelationEvent, PEER_ENDPOINT};
use crate::juju::{Juju, JujuError, Level, Settings};
use crate::machine::{ext_tls, state, tls, Machine};
use crate::paths;

/// Keeps a URL only if it is `http(s)://host:port`: a host name or IP address (IPv6 in
/// brackets) and a port of digits, nothing else (no path, space or second URL).
fn well_formed_url(v: Option<&String>) -> Option<String> {
    let v = v?.trim();
    let rest = v
        .strip_prefix("http://")
        .or_else(|| v.strip_prefix("https://"))?;
    let (host, port) = rest.rsplit_once(':')?;
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ip6) => ip6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            let name = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
            !host.is_empty() && host.chars().all(name)
        }
    };
    let port_ok = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    (host_ok && port_ok && port.parse::<u16>().is_ok_and(|p| p > 0)).then(|| v.to_string())
}

fn peer(juju: &dyn Juju, rel: &str, unit: &str) -> Peer {
    let data = juju.relation_get(rel, unit).unwrap_or_else(|e| {
        juju.log(Level::Warning, &format!("ignoring {unit}'s peer data: {e}"));
        Settings::new()
    });
    let peer_url = well_formed_url(data.get(peer_keys::PEER_URL));
    if peer_url.is_none() && data.contains_key(peer_keys::PEER_URL) {
        juju.log(
            Level::Warning,
            &format!("ignoring malformed peer-url of {unit}"),
        );
    }
    Peer {
        unit: unit.to_string(),
        name: member_name(unit),
        peer_url,
        client_url: well_formed_url(data.get(peer_keys::CLIENT_URL)),
        started: data
            .get(peer_keys::STARTED)
            .and_then(|s| u64::from_str_radix(s, 16).ok()),
        restart_request: data
            .get(peer_keys::RESTART_REQUEST)
            .filter(|v| !v.is_empty())
            .cloned(),
        version: data
            .get(peer_keys::VERSION)
            .filter(|v| !v.is_empty())
            .cloned(),
        tls_request: TlsRequest::from_data(&data),
        backup_verified: observed::backup_verified(&data),
        tls_files: data
            .get(peer_keys::TLS_FILES)
            .filter(|v| !v.is_empty())
            .cloned(),
        ca_loaded: data
            .get(peer_keys::CA_LOADED)
            .filter(|v| !v.is_empty())
            .cloned(),
        ext_tls: data.get(certificates::PEER_STATE).cloned(),
    }
}

/// Juju 3 has secrets; a context without `JUJU_VERSION` is taken as a current Juju.
pub fn has_secrets(ctx: &JujuContext) -> bool {
    let major = ctx
        .juju_version
        .as_deref()
        .and_then(|v| v.split('.').next());
    major
        .and_then(|m| m.parse::<u32>().ok())
        .is_none_or(|m| m >= 3)
}

/// The latest content of the secret `id`: `Ok(None)` when it does not exist, other failures
/// logged (never its content) and `Err(())`.
fn read_secret(juju: &dyn Juju, id: &str, what: &str) -> Result<Option<Settings>, ()> {
    match juju.secret_get(id, true) {
        Ok(content) => Ok(Some(content)),
        Err(JujuError::Tool(e)) if e.stderr.contains("not found") => {
            juju.log(
                Level::Warning,
                &format!("the {what} secret {id} does not exist"),
            );
            Ok(None)
        }
        Err(e) => {
            let msg = format!("cannot read the {what} secret {id}, will retry: {e}");
            juju.log(Level::Warning, &msg);
            Err(())
        }
    }
}

/// Where the charm's TLS keys are and what this unit reads of them: every unit with
/// `db`/`proxy` relations the consumers' key; the leader its CA keys when they are in leader
/// data (Juju 2.9, or keys an older charm left there), else it only notes their secret, read by
/// [`read_ca_keys`] once a plan needs them.
fn tls_secrets(
    ctx: &JujuContext,
    juju: &dyn Juju,
    leader_data: &LeaderData,
    leadership: Leadership,
    with_clients: bool,
) -> TlsSecrets {
    let mut s = TlsSecrets {
        available: has_secrets(ctx),
        ..TlsSecrets::default()
    };
    let available = s.available;
    let secret = |key| leader_data.get(key).filter(|_| available);
    if leadership == Leadership::Leader && leader_data.get(keys::TLS_CA).is_some() {
        match secret(keys::TLS_CA_SECRET) {
            Some(_) => s.ca_keys_unread = true,
            None => {
                s.ca_keys = leader_data.get(keys::TLS_CA_KEY).map(|k| CaKeys {
                    ca_key: k.to_string(),
                    peer_ca_key: leader_data.get(keys::TLS_PEER_CA_KEY).map(str::to_string),
                    password_key: leader_data
                        .get(ca_rotation::keys::PASSWORD_KEY)
                        .map(str::to_string),
                })
            }
        }
    }
    if with_clients {
        let in_data = leader_data.get(keys::TLS_CLIENT_KEY).map(str::to_string);
        s.client_key = match secret(keys::TLS_CLIENT_SECRET) {
            Some(id) => read_secret(juju, id, "client key")
                .ok()
                .flatten()
                .and_then(|c| c.get(secret_keys::CLIENT_KEY).cloned()),
            None => in_data,
        }
        .map(Redacted);
    }
    s
}

/// Leader: this application's staying units, asked of `goal-state` for a plan that removes a
/// member; a failure is logged and leaves them unknown.
pub fn goal(juju: &dyn Juju) -> Goal {
    match juju.goal_units() {
        Ok(units) => Goal::Staying(
            units
                .into_iter()
                .filter(|(_, status)| status != "dying")
                .map(|(unit, _)| unit)
                .collect(),
        ),
        Err(e) => {
            let why = "started members no unit in the relation owns are kept";
            juju.log(Level::Warning, &format!("{e}: {why}"));
            Goal::Unknown
        }
    }
}

/// Leader: reads the CA keys' secret [`tls_secrets`] noted: the keys, or that it does not
/// exist ([`TlsSecrets::ca_lost`]); a failure to read leaves the keys unknown (nothing is signed).
pub fn read_ca_keys(juju: &dyn Juju, leader_data: &LeaderData, s: &mut TlsSecrets) {
    if !std::mem::take(&mut s.ca_keys_unread) {
        return;
    }
    let Some(id) = leader_data.get(keys::TLS_CA_SECRET) else {
        return;
    };
    match read_secret(juju, id, "CA key") {
        Ok(Some(c)) => {
            s.ca_keys = c.get(secret_keys::CA_KEY).map(|k| CaKeys {
                ca_key: k.clone(),
                peer_ca_key: c.get(secret_keys::PEER_CA_KEY).cloned(),
                password_key: c.get(secret_keys::PASSWORD_KEY).cloned(),
            })
        }
        Ok(None) => s.ca_lost = true,
        Err(()) => {}
    }
}

/// The application on the other side of a client relation: that of its first remote unit, or
/// of the unit this relation hook is about.
fn remote_app(ctx: &JujuContext, juju: &dyn Juju, id: &str) -> Result<Option<String>, JujuError> {
    let hook_unit = ctx
        .remote_unit
        .as_ref()
        .filter(|_| ctx.relation_id.as_deref() == Some(id));
    let units = juju.relation_list(id)?;
    let unit = units.first().or(hook_unit);
    Ok(unit.and_then(|u| u.split('/').next()).map(str::to_string))
}

/// The `certificates` relation (unless it is being broken), what the provider and this unit
/// publish on it, and this machine's files for it; what the provider sent that is ignored is
/// logged (never a PEM).
fn external(
    ctx: &JujuContext,
    juju: &dyn Juju,
    machine: &dyn Machine,
    broken: Option<&str>,
) -> Result<certificates::Facts, JujuError> {
    let ids = juju.relation_ids(certificates::ENDPOINT)?;
    let relation = ids.into_iter().find(|id| Some(id.as_str()) != broken);
    let mut facts = ext_tls::local_facts(machine);
    if let Some(id) = &relation {
        let own = juju.relation_get(id, &ctx.unit_name)?;
        facts.published = own.get(certificates::REQUESTS).cloned();
        if let Some(app) = remote_app(ctx, juju, id)? {
            let data = juju.relation_get_app(id, &app).unwrap_or_default();
            facts.provided = data.get(certificates::PROVIDED).cloned();
            facts.provider = Some(app);
        }
    }
    facts.relation = relation;
    if let Some(complaint) = certificates::complaint(&facts) {
        juju.log(Level::Warning, &complaint);
    }
    Ok(facts)
}

/// The key prefix `app` asks for on relation `id` (`prefix` in its application data); one etcd
/// cannot grant is logged (the consumer then gets no access until it asks for a valid one).
fn requested_prefix(juju: &dyn Juju, id: &str, app: &str) -> Option<String> {
    let data = juju.relation_get_app(id, app).unwrap_or_default();
    let prefix = data.get("prefix").filter(|p| !p.is_empty())?;
    if !crate::core::auth::valid_prefix(prefix) {
        let msg = format!(
            "{app} asks for a key prefix etcd keys should not start with ({} characters): it \
             gets no access until it asks for one of printable characters starting with a \
             letter, a digit, '/', '_', '-' or '.'",
            prefix.chars().count()
        );
        juju.log(Level::Warning, &msg);
    }
    Some(prefix.clone())
}

/// The keys of the `db` consumers' own certificates this unit does not publish yet (or
/// publishes from another secret, or with other CAs than those trusted now), read from their
/// secrets (Juju 3); an unreadable one is logged and left out.
fn consumer_keys(
    juju: &dyn Juju,
    leader_data: &LeaderData,
    clients: &[ClientRelation],
    available: bool,
) -> std::collections::BTreeMap<String, Redacted> {
    let mut read = std::collections::BTreeMap::new();
    let trusted_ca = ca_rotation::trusted(&leader_data.raw).map(|(client, _)| client);
    for rel in clients.iter().filter(|r| r.endpoint == "db") {
        let Some(app) = rel.app.as_deref().filter(|a| !read.contains_key(*a)) else {
            continue;
        };
        let get = |prefix| leader_data.get(&keys::consumer_key(prefix, app));
        let (Some(cert), Some(id)) = (
            get(keys::CONSUMER_CERT_PREFIX),
            get(keys::CONSUMER_SECRET_PREFIX).filter(|_| available),
        ) else {
            continue;
        };
        let published = |k: &str| rel.published.get(k).map(String::as_str);
        let current = published("client_cert") == Some(cert)
            && published(crate::core::relations::CLIENT_KEY_SECRET) == Some(id)
            && published("client_key").is_some_and(|k| !k.is_empty())
            // The CAs it trusts change in a CA rotation, the certificate alone not always.
            && published("client_ca") == trusted_ca.as_deref();
        if current {
            continue;
        }
        let what = format!("{app} client key");
        let key = read_secret(juju, id, &what).ok().flatten();
        if let Some(key) = key.and_then(|c| c.get(secret_keys::CLIENT_KEY).cloned()) {
            read.insert(app.to_string(), Redacted(key));
        }
    }
    read
}

/// One round of status calls, all at once, to every started member but the local one (whose
/// answer is `local`), and the active alarms: what the status tells.
fn status_round(
    etcd: &dyn Etcd,
    members: &[Member],
    local: Option<&MemberStatus>,
    endpoints: &[String],
) -> ClusterView {
    let urls = crate::etcd::round_endpoints(members, local.map(|s| s.member_id));
    let mut answers: Vec<MemberStatus> = local.cloned().into_iter().collect();
    answers.extend(etcd.statuses(&urls).into_iter().flatten());
    // Every member's status lists the alarms it has applied, so the answers hold the alarm
    // list; etcd's own alarm list is a Raft round (a disk write on a quorum), asked only when
    // no member answered.
    let mut alarms: Vec<(u64, String)> = answers
        .iter()
        .flat_map(|s| s.errors.iter().filter_map(|e| status_alarm(e)))
        .collect();
    alarms.sort();
    alarms.dedup();
    if answers.is_empty() {
        alarms = etcd.alarms(endpoints).unwrap_or_default();
    }
    ClusterView { answers, alarms }
}

/// An alarm as a member's status lists it among its errors: `memberID:<id> alarm:NOSPACE `.
fn status_alarm(error: &str) -> Option<(u64, String)> {
    let (mut member, mut alarm) = (None, None);
    for word in error.split_whitespace() {
        if let Some(id) = word.strip_prefix("memberID:") {
            member = id.parse::<u64>().ok();
        } else if let Some(a) = word.strip_prefix("alarm:") {
            alarm = Some(a.to_string()).filter(|a| a != "NONE");
        }
    }
    Some((member?, alarm?))
}

/// This unit's address. `update-status` takes the one this unit published on the peer
/// relation, when there is one: Juju runs `config-changed` when a unit's addresses change
/// (its uniter watches their hash), so only other hooks need `network-get`.
fn address(
    hook: &Hook,
    juju: &dyn Juju,
    own_peer_data: &Settings,
) -> Result<Option<String>, JujuError> {
    let published = own_peer_data.get(peer_keys::INGRESS);
    let published = published.map(|a| a.trim()).filter(|a| !a.is_empty());
    match (hook, published) {
        (Hook::Other(name), Some(a)) if name == "update-status" => Ok(Some(a.to_string())),
        _ => juju.address(PEER_ENDPOINT),
    }
}

/// Reads every fact for one pass. Only real failures of Juju's tools are errors.
pub fn observe(
    ctx: &JujuContext,
    hook: &Hook,
    juju: &dyn Juju,
    etcd: &dyn Etcd,
    machine: &dyn Machine,
) -> Result<Observed, JujuError> {
    let version = state::installed_version(machine);
    let rendered_config = machine.read(paths::CONFIG_FILE);
    // Stop and remove need no etcd facts: don't wait on dead members there.
    let asks_etcd = version.is_some() && !matches!(hook, Hook::Stop | Hook::Remove);
    // The member the config it runs names, and then its cluster, are asked while Juju's tools
    // answer.
    if let Some(url) = rendered_config.as_deref().and_then(render::local_url) {
        if asks_etcd {
            etcd.begin_status(&url);
        }
    }
    let leadership = match juju.is_leader() {
        Ok(true) => Leadership::Leader,
        Ok(false) => Leadership::Follower,
        Err(JujuError::NoLeadership) => Leadership::Unsupported,
        Err(e) => return Err(e),
    };
    let leader_data = match leadership {
        Leadership::Unsupported => LeaderData::default(),
        _ => LeaderData::parse(juju.leader_get()?),
    };
    let config = CharmConfig::try_from(&juju.config_get()?);
    let peer_relation = juju.relation_ids(PEER_ENDPOINT)?.into_iter().next();
    let own_peer_data = match &peer_relation {
        Some(rel) => juju.relation_get(rel, &ctx.unit_name)?,
        None => Settings::new(),
    };
    // etcd listens where the config it runs says (a new port applies when it restarts).
    let local_url = render::member_url(rendered_config.as_deref(), config.as_ref().ok());
    // Asked first: when it answers, etcd runs and `systemctl` is spared.
    let status = match asks_etcd {
        true => etcd.status(&local_url).ok(),
        false => None,
    };
    let service_active = status.is_some() || (version.is_some() && machine.service_active());
    // A backup schedule's status warning needs every unit's `backup-verified`.
    let scheduled = config.as_ref().is_ok_and(|c| c.backup_period.is_some());
    let settled = leadership != Leadership::Leader
        && !scheduled
        && status
            .as_ref()
            .is_some_and(|s| !s.is_learner && s.leader != 0);
    let mut peers = match (&peer_relation, settled) {
        (Some(rel), false) => {
            let units = juju.relation_list(rel)?;
            units.iter().map(|u| peer(juju, rel, u)).collect()
        }
        _ => Vec::new(),
    };
    peers.sort_by_key(|p: &Peer| crate::juju::context::unit_number(&p.unit));
    let mut clients = Vec::new();
    let broken = matches!(
        hook,
        Hook::Relation {
            event: RelationEvent::Broken,
            ..
        }
    );
    let broken = ctx.relation_id.as_deref().filter(|_| broken);
    for endpoint in ["db", "proxy"] {
        for id in juju.relation_ids(endpoint)? {
            if Some(id.as_str()) == broken {
                continue;
            }
            let published = juju.relation_get(&id, &ctx.unit_name)?;
            let app = remote_app(ctx, juju, &id)?;
            let prefix = match &app {
                Some(app) => requested_prefix(juju, &id, app),
                None => None,
            };
            let endpoint = endpoint.to_string();
            clients.push(ClientRelation {
                id,
                endpoint,
                app,
                prefix,
                published,
            });
        }
    }
    let cos_agent = match juju.relation_ids(COS_AGENT)?.into_iter().next() {
        Some(relation) => Some(CosAgent {
            published: juju.relation_get(&relation, &ctx.unit_name)?,
            relation,
            model: ctx.model_name.clone(),
            model_uuid: ctx.model_uuid.clone(),
        }),
        None => None,
    };
    // Voting members first: the local one when it votes, then the published endpoints, then
    // the peers that announced a started member.
    let mut endpoints = Vec::new();
    if status.as_ref().is_some_and(|s| !s.is_learner) {
        endpoints.push(local_url);
    }
    let published = leader_data.get(keys::ENDPOINTS).unwrap_or("").split(',');
    let announced = peers.iter().filter(|p| p.started.is_some());
    let announced = announced.filter_map(|p| p.client_url.as_deref());
    for ep in published
        .map(str::trim)
        .chain(announced)
        .filter(|e| !e.is_empty())
    {
        if !endpoints.iter().any(|e| e == ep) {
            endpoints.push(ep.to_string());
        }
    }
    let members = match asks_etcd && !endpoints.is_empty() {
        true => etcd
            .member_list(&endpoints)
            .map_err(|e| juju.log(Level::Debug, &format!("no member list: {e}")))
            .ok(),
        false => None,
    };
    let cluster = match &members {
        Some(members) => status_round(etcd, members, status.as_ref(), &endpoints),
        None => ClusterView::default(),
    };
    let mut secrets = tls_secrets(ctx, juju, &leader_data, leadership, !clients.is_empty());
    secrets.consumer_keys = consumer_keys(juju, &leader_data, &clients, secrets.available);
    let local = Local {
        version,
        etcdctl: state::real_etcdctl(machine),
        address: address(hook, juju, &own_peer_data)?,
        has_data: state::has_member_data(machine),
        member_id: state::recorded_member_id(machine),
        service_active,
        rendered_config,
        unit_file: machine.read(paths::UNIT_FILE),
        etcdctl_env: machine.read(paths::ETCDCTL_ENV),
        etcdctl_wrapper: machine.read(paths::ETCDCTL_WRAPPER),
        restart_pending: state::restart_pending(machine),
        status,
        hostname: machine.hostname(),
        tls_record: state::tls_record(machine),
        tls_request_record: tls::pending_record(machine),
        refused_resource: state::refused_resource(machine),
        volume: state::volume(machine),
    };
    Ok(Observed {
        unit: ctx.unit_name.clone(),
        hook: hook.clone(),
        departing: ctx.is_departing_self() || storage::detaching(hook) || state::departing(machine),
        leadership,
        config,
        leader_data,
        peer_relation,
        peers,
        own_peer_data,
        clients,
        cos_agent,
        local,
        endpoints,
        members,
        cluster,
        fresh_token: machine.random_token(),
        secrets,
        now: std::time::UNIX_EPOCH.elapsed().map_or(0, |d| d.as_secs()),
        external: external(ctx, juju, machine, broken)?,
        goal: Goal::Unread,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let ok = |s: &str| well_formed_url(Some(&s.to_string()));
        assert_eq!(
            ok("http://10.0.0.1:2380").as_deref(),
            Some("http://10.0.0.1:2380")
        );
        assert_eq!(
            ok("http://[fd00::1]:2380").as_deref(),
            Some("http://[fd00::1]:2380")
        );
        assert_eq!(ok("10.0.0.1:2380"), None);
        assert_eq!(ok("http://10.0.0.1:notaport"), None);
        assert_eq!(ok("http://:2380"), None);
        // Injection and junk that still ends in `:<port>`.
        assert_eq!(ok("http://10.0.0.1:2380\nhttp://10.0.0.2:2380"), None);
        assert_eq!(ok("http://10.0.0.1:2380,http://10.0.0.2:2380"), None);
        assert_eq!(ok("http://a b:2380"), None);
        assert_eq!(ok("http://10.0.0.1/x:2380"), None);
        assert_eq!(ok("http://10.0.0.1:+2380"), None);
        assert_eq!(ok("http://10.0.0.1:0"), None);
        assert_eq!(ok("http://[not-v6]:2380"), None);
    }

    #[test]
    fn update_status_takes_the_published_address_other_hooks_ask_juju() {
        let j = crate::fakes::FakeJuju::new("etcd/0", serde_json::json!({}));
        let published = Settings::from([(peer_keys::INGRESS.into(), "10.0.0.7".into())]);
        let update_status = Hook::Other("update-status".into());
        let got = |hook: &Hook, data: &Settings| address(hook, &j, data).unwrap();
        assert_eq!(got(&update_status, &published).as_deref(), Some("10.0.0.7"));
        // The fake's network-get answers 10.0.0.1.
        let config_changed = Hook::Other("config-changed".into());
        assert_eq!(
            got(&config_changed, &published).as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(
            got(&update_status, &Settings::new()).as_deref(),
            Some("10.0.0.1")
        );
    }

    #[test]
    fn alarms_are_read_from_a_status_answer() {
        let nospace = "memberID:10276657743932975437 alarm:NOSPACE ";
        let want = Some((10276657743932975437, "NOSPACE".to_string()));
        assert_eq!(status_alarm(nospace), want);
        assert_eq!(
            status_alarm("memberID:0 alarm:CORRUPT").unwrap().1,
            "CORRUPT"
        );
        assert_eq!(status_alarm("etcdserver: no leader"), None);
        assert_eq!(status_alarm("memberID:1 alarm:NONE"), None);
    }

    #[test]
    fn malformed_joining_is_ignored() {
        let raw = Settings::from([
            (keys::JOINING_UNIT.into(), "etcd/1".into()),
            (keys::JOINING_ID.into(), "zz".into()),
            (keys::JOINING_CLUSTER.into(), "a=b".into()),
        ]);
        assert_eq!(LeaderData::parse(raw).joining, None);
        let raw = Settings::from([(keys::RESTART_GRANTED.into(), String::new())]);
        assert_eq!(LeaderData::parse(raw).restart_granted, None);
    }
}

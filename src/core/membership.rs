/*!
The Juju leader's side of the plan, and the departing unit's: pure decisions on Raft membership.

Guarantees:
- Only the Juju leader changes membership, one change per pass (a pass after a successful
  change observes again), except the departing unit removing itself.
- Units are admitted one at a time, as learners, in unit-number order; a learner is promoted
  only once it has started, and the next unit is admitted only when every member votes and
  has started.
- A new leader continues from etcd's member list and the `joining-*` leader data: it never
  bootstraps again (a token exists) and never restarts etcd for leadership.
- A member is removed only when no unit in the peer relation owns it (by the `started` member
  id it publishes, by name, or by peer URL while unnamed), never the last voter, never the
  member of the unit still joining, and never one goal-state says may still be a unit's
  (named after a unit not yet in the relation).
- A joining unit that has left the peer relation (goal-state no longer lists it as staying) is
  given up at once: its learner is removed (started or not) and the joining slot freed, so the
  next unit can join.
- Rolling restarts: at most one unit holds `restart-granted`. The leader releases the grant
  when its unit has confirmed (removed its `restart-request`) or has left the relation (a unit
  that died with the grant never blocks the others), and grants the next requester, in
  unit-number order (itself included), only when no membership change is under way and, when
  applied, enough other voting members are healthy to keep a quorum while it restarts.
*/

use crate::core::ca_rotation;
use crate::core::effect::{Effect, Plan};
use crate::core::observed::{
    keys, peer_keys, Goal, Issued, Joining, Leadership, Observed, TlsRequest,
};
use crate::core::relations::changed;
use crate::core::rotation;
use crate::core::status::Status;
use crate::core::transport;
use crate::core::version::Version;
use crate::etcd::Member;
use crate::juju::context::{member_name, unit_number};
use crate::juju::Settings;

/// A unit of this application as membership sees it: this one and its peers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Unit {
    unit: String,
    name: String,
    peer_url: Option<String>,
    started: Option<u64>,
}

fn units(o: &Observed) -> Vec<Unit> {
    // What this unit's etcd advertises now: a new port counts once etcd runs with it.
    let own_url = match (&o.config, &o.local.address) {
        (Ok(cfg), Some(a)) => Some(o.advertised(&transport::config(o, cfg), a).0),
        _ => None,
    };
    // As its peer data says ([`crate::core::relations::peer_data`]).
    let started = o.started_member();
    let me = Unit {
        unit: o.unit.clone(),
        name: o.name(),
        peer_url: own_url,
        started,
    };
    let peers = o.peers.iter().map(|p| Unit {
        unit: p.unit.clone(),
        name: p.name.clone(),
        peer_url: p.peer_url.clone(),
        started: p.started,
    });
    std::iter::once(me).chain(peers).collect()
}

/// The unit whose member `m` is: the one that started it (a unit rejoined as the member of a
/// volume it was given), else by name, or by peer URL while unnamed.
fn owner<'a>(units: &'a [Unit], m: &Member) -> Option<&'a Unit> {
    let started = units.iter().find(|u| u.started == Some(m.id));
    started.or_else(|| {
        units.iter().find(|u| match m.name.is_empty() {
            false => m.name == u.name,
            true => u
                .peer_url
                .as_ref()
                .is_some_and(|url| m.peer_urls.contains(url)),
        })
    })
}

/// The keys the leader publishes from the member list: `cluster`, `endpoints`, `etcd-version`
/// (see [`keys`]). `None` while no voting member has started.
pub fn published_keys(members: &[Member], version: Option<&str>) -> Option<Settings> {
    let voters: Vec<&Member> = members
        .iter()
        .filter(|m| m.started() && !m.is_learner)
        .collect();
    if voters.is_empty() {
        return None;
    }
    let mut cluster: Vec<String> = voters
        .iter()
        .flat_map(|m| m.peer_urls.iter().map(move |u| format!("{}={u}", m.name)))
        .collect();
    cluster.sort();
    let mut endpoints: Vec<String> = voters.iter().flat_map(|m| m.client_urls.clone()).collect();
    endpoints.sort();
    endpoints.dedup();
    let mut s = Settings::from([
        (keys::CLUSTER.to_string(), cluster.join(",")),
        (keys::ENDPOINTS.to_string(), endpoints.join(",")),
    ]);
    if let Some(v) = version {
        s.insert(keys::VERSION.to_string(), v.to_string());
    }
    Some(s)
}

/// The `initial-cluster` for a new member: every member's `name=peerURL`, with `new_name` for
/// the member `new_id` (not started, so still unnamed), sorted.
pub fn initial_cluster(members: &[Member], new_id: u64, new_name: &str) -> String {
    let mut entries: Vec<String> = members
        .iter()
        .flat_map(|m| {
            let name = if m.id == new_id {
                new_name
            } else {
                m.name.as_str()
            };
            m.peer_urls.iter().map(move |u| format!("{name}={u}"))
        })
        .collect();
    entries.sort();
    entries.join(",")
}

/// Leader data naming the joining unit, or (`None`) clearing it.
pub fn joining_keys(joining: Option<&Joining>) -> Settings {
    let (unit, id, cluster) = match joining {
        Some(j) => (
            j.unit.clone(),
            format!("{:x}", j.member_id),
            j.initial_cluster.clone(),
        ),
        None => Default::default(),
    };
    Settings::from([
        (keys::JOINING_UNIT.to_string(), unit),
        (keys::JOINING_ID.to_string(), id),
        (keys::JOINING_CLUSTER.to_string(), cluster),
    ])
}

/// Leader data granting a restart to a unit, or (`None`) to none.
pub fn restart_keys(granted: Option<&str>) -> Settings {
    let unit = granted.unwrap_or("").to_string();
    Settings::from([(keys::RESTART_GRANTED.to_string(), unit)])
}

/// The cluster's etcd version: the lowest one the started members run (this one's, and those
/// the other started units publish), else the one in leader data, else the one installed.
fn cluster_version(o: &Observed) -> Option<&str> {
    let own = o.local.status.as_ref().map(|s| s.version.as_str());
    let peers = o.peers.iter().filter(|p| p.started.is_some());
    let peers = peers.filter_map(|p| p.version.as_deref());
    let lowest = own
        .into_iter()
        .chain(peers)
        .filter_map(|v| Some((Version::parse(v)?, v)))
        .min()
        .map(|(_, v)| v);
    lowest
        .or(o.leader_data.get(keys::VERSION))
        .or(o.local.version.as_deref())
}

/// The leader unit's own part in the rolling restart, as its own plan decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnTurn {
    /// It wants (or is seeing through) a restart.
    pub requesting: bool,
    /// It restarts etcd in this pass: no other turn is granted meanwhile.
    pub restarting: bool,
}

/// Plans the leader's duties, given its own part in the rolling restart. Returns the data that
/// relation data is built from.
pub fn leader(o: &Observed, p: &mut Plan, own: OwnTurn) -> Settings {
    let mut published = o.leader_data.raw.clone();
    let Some(members) = &o.members else {
        return published;
    };
    if let Some(mut want) = published_keys(members, cluster_version(o)) {
        // A cluster that runs without this application's bootstrap record (deployed onto
        // volumes of an earlier one, as with `juju deploy --attach-storage`) is adopted: with
        // no token, no new unit would ever join it.
        if o.leader_data.get(keys::TOKEN).is_none() {
            want.insert(keys::TOKEN.to_string(), o.fresh_token.clone());
        }
        if let Some(diff) = changed(&o.leader_data.raw, want.clone()) {
            p.effects.push(Effect::LeaderSet(diff));
        }
        published.extend(want);
    }
    let mut change = next_change(o, members);
    if change.is_empty() {
        change.extend(tls_record(o, members));
    }
    let busy = !change.is_empty() || own.restarting;
    if !change.is_empty() {
        p.effects.extend(change);
        p.again = true;
    }
    let turn = restart_turn(o, members, own.requesting, busy);
    if turn
        .iter()
        .any(|e| matches!(e, Effect::GrantRestart { .. }))
    {
        p.again = true;
    }
    p.effects.extend(turn);
    published
}

/// The rolling restart: releases a grant that is done or whose unit has left, and grants the
/// next requester when nothing else is under way.
fn restart_turn(o: &Observed, members: &[Member], own_request: bool, busy: bool) -> Vec<Effect> {
    // Some(wants): the unit is in the relation; None: it has left.
    let requesting = |unit: &str| match unit == o.unit {
        true => Some(own_request),
        false => o
            .peers
            .iter()
            .find(|p| p.unit == unit)
            .map(|p| p.restart_request.is_some()),
    };
    let mut effects = Vec::new();
    if let Some(holder) = &o.leader_data.restart_granted {
        match requesting(holder) {
            Some(true) => return effects,
            // Confirmed (request removed), or gone: the turn is free again.
            _ => effects.push(Effect::LeaderSet(restart_keys(None))),
        }
    }
    let settled = members.iter().all(|m| m.started() && !m.is_learner);
    if busy || o.leader_data.joining.is_some() || !settled {
        return effects;
    }
    let mut candidates: Vec<&str> = o
        .peers
        .iter()
        .filter(|p| p.restart_request.is_some())
        .map(|p| p.unit.as_str())
        .collect();
    if own_request {
        candidates.push(&o.unit);
    }
    candidates.sort_by_key(|u| unit_number(u));
    if let Some(unit) = candidates.first() {
        effects.push(Effect::GrantRestart {
            unit: unit.to_string(),
        });
    }
    effects
}

/// The scheme of a URL: true for https.
fn is_https(url: &str) -> bool {
    url.starts_with("https://")
}

/// `url` with the scheme `tls` asks for.
fn with_scheme(url: &str, tls: bool) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    format!("{}://{rest}", if tls { "https" } else { "http" })
}

/// The peer URL a unit's member must have: the one its etcd advertises, except for the unit
/// holding the restart turn to switch scheme (`tls` option vs what it runs): its new scheme,
/// set before it restarts so that it is dialled there as soon as it listens on it.
fn wanted_peer_url(o: &Observed, u: &Unit) -> Option<String> {
    let url = u.peer_url.as_ref()?;
    let tls = transport::wanted(o)?;
    let holder = o.leader_data.restart_granted.as_deref() == Some(u.unit.as_str());
    let requesting = match u.unit == o.unit {
        true => o.request_published(),
        false => o
            .peers
            .iter()
            .any(|p| p.unit == u.unit && p.restart_request.is_some()),
    };
    Some(match holder && requesting && is_https(url) != tls {
        true => with_scheme(url, tls),
        false => url.clone(),
    })
}

/// Leader data `tls`, once every member (listed peer and client URLs) and every unit (what its
/// etcd advertises) runs the scheme the `tls` option asks for and it differs from the record.
fn tls_record(o: &Observed, members: &[Member]) -> Option<Effect> {
    let tls = transport::wanted(o)?;
    if o.leader_data.restart_granted.is_some() {
        return None;
    }
    if o.tls_in_force()? == tls {
        // A switch called off midway (the option set back) leaves no stale word behind; one
        // that ends on an older revision's leader data (no `tls`: the scheme is derived from
        // what runs, so it already reads as switched) records its scheme.
        o.leader_data.get(keys::TLS_SWITCHING)?;
        let mut set = Settings::from([(keys::TLS_SWITCHING.to_string(), String::new())]);
        if o.leader_data.get(keys::TLS).is_none() {
            set.insert(keys::TLS.to_string(), tls.to_string());
        }
        return Some(Effect::LeaderSet(set));
    }
    let urls_ok = members.iter().all(|m| {
        m.started()
            && !m.is_learner
            && m.peer_urls
                .iter()
                .chain(&m.client_urls)
                .all(|u| is_https(u) == tls)
    });
    let units_ok = units(o).iter().all(|u| {
        u.peer_url
            .as_deref()
            .is_some_and(|url| is_https(url) == tls)
    });
    (urls_ok && units_ok).then(|| {
        Effect::LeaderSet(Settings::from([
            (keys::TLS.to_string(), tls.to_string()),
            (keys::TLS_SWITCHING.to_string(), String::new()),
        ]))
    })
}

/// At most one membership change (plus the leader data that goes with it): the first step that
/// has something to decide decides (an empty decision included: nothing this pass).
fn next_change(o: &Observed, members: &[Member]) -> Vec<Effect> {
    let c = Change {
        o,
        members,
        units: units(o),
    };
    c.give_up_joiner()
        .or_else(|| c.remove_stale())
        .or_else(|| c.update_peer_url())
        .or_else(|| c.promote_joiner())
        .or_else(|| c.adopt_learner())
        .or_else(|| c.admit_next())
        .unwrap_or_default()
}

/// What one membership change is decided on.
struct Change<'a> {
    o: &'a Observed,
    members: &'a [Member],
    units: Vec<Unit>,
}

impl Change<'_> {
    fn owner(&self, m: &Member) -> Option<&Unit> {
        owner(&self.units, m)
    }

    fn in_relation(&self, unit: &str) -> bool {
        self.units.iter().any(|u| u.unit == unit)
    }

    /// In the relation, or listed by goal-state as staying (not yet in a new leader's
    /// relation-list, which fills one `-joined` hook at a time).
    fn present(&self, unit: &str) -> bool {
        let staying =
            matches!(&self.o.goal, Goal::Staying(units) if units.iter().any(|u| u == unit));
        self.in_relation(unit) || staying
    }

    /// 0. A joining unit that has left the relation (e.g. its machine was lost and the unit
    ///    removed) is given up: its learner removed and the slot freed in one step.
    fn give_up_joiner(&self) -> Option<Vec<Effect>> {
        let j = self.o.leader_data.joining.as_ref()?;
        if self.present(&j.unit) {
            return None;
        }
        let learner = self
            .members
            .iter()
            .find(|m| m.id == j.member_id && m.is_learner);
        let remove = learner.map(|m| Effect::Remove {
            name: match m.name.is_empty() {
                true => format!("{} (learner of {})", m.peer_urls.join(","), j.unit),
                false => m.name.clone(),
            },
            id: m.id,
        });
        let clear = Effect::LeaderSet(joining_keys(None));
        Some(remove.into_iter().chain([clear]).collect())
    }

    /// 1. A member no unit owns: learners first, then unstarted ones; never the last voter,
    ///    never the member of the unit joining.
    fn remove_stale(&self) -> Option<Vec<Effect>> {
        let joining = self.o.leader_data.joining.as_ref();
        let voters = self.members.iter().filter(|m| !m.is_learner).count();
        let protected =
            |m: &Member| joining.is_some_and(|j| j.member_id == m.id && self.present(&j.unit));
        let mut stale: Vec<&Member> = self
            .members
            .iter()
            .filter(|m| self.owner(m).is_none() && !protected(m))
            .filter(|m| m.is_learner || voters > 1)
            .filter(|m| !self.may_come(m))
            .collect();
        stale.sort_by_key(|m| (!m.is_learner, m.started(), m.id));
        let m = stale.first()?;
        let name = match m.name.is_empty() {
            true => m.peer_urls.join(","),
            false => m.name.clone(),
        };
        Some(vec![Effect::Remove { name, id: m.id }])
    }

    /// Whether a member no unit in the relation owns may still be a unit's, as goal-state says
    /// (asked only for a plan that removes one: [`Goal::Unread`] keeps nothing): it is named
    /// after a staying unit, or goal-state failed and it is a started voter.
    fn may_come(&self, m: &Member) -> bool {
        match &self.o.goal {
            Goal::Unread => false,
            Goal::Unknown => m.started() && !m.is_learner,
            Goal::Staying(units) => units.iter().any(|u| member_name(u) == m.name),
        }
    }

    /// 2. A started member whose unit now publishes another peer URL (port or address change),
    ///    or whose unit holds the restart turn to switch scheme (updated before it restarts).
    fn update_peer_url(&self) -> Option<Vec<Effect>> {
        self.members.iter().filter(|m| m.started()).find_map(|m| {
            let unit = self.owner(m)?;
            let peer_url = wanted_peer_url(self.o, unit)?;
            // Another member's URL is not this unit's address: never taken over.
            let taken = self
                .members
                .iter()
                .any(|o| o.id != m.id && o.peer_urls.contains(&peer_url));
            if m.peer_urls == [peer_url.clone()] || taken {
                return None;
            }
            let switched = m
                .peer_urls
                .iter()
                .any(|u| is_https(u) != is_https(&peer_url));
            let wake = Settings::from([(
                keys::TLS_SWITCHING.to_string(),
                format!("{} {peer_url}", unit.unit),
            )]);
            let wake = switched.then_some(Effect::LeaderSet(wake));
            let update = Effect::UpdatePeerUrl {
                name: m.name.clone(),
                id: m.id,
                peer_url,
            };
            Some(std::iter::once(update).chain(wake).collect())
        })
    }

    /// 3. The unit joining now: promoted once started; the slot is freed when it is gone,
    ///    promoted already, or its member vanished.
    fn promote_joiner(&self) -> Option<Vec<Effect>> {
        let j = self.o.leader_data.joining.as_ref()?;
        let unit = self.units.iter().find(|u| u.unit == j.unit);
        let member = self.members.iter().find(|m| m.id == j.member_id);
        Some(match (unit, member) {
            (Some(u), Some(m)) if m.is_learner => match m.started() || u.started == Some(m.id) {
                true => vec![Effect::Promote {
                    unit: u.unit.clone(),
                    id: m.id,
                }],
                false => Vec::new(),
            },
            _ => vec![Effect::LeaderSet(joining_keys(None))],
        })
    }

    /// 4. A learner nobody tracks (a hook died between member add and leader-set): adopted.
    fn adopt_learner(&self) -> Option<Vec<Effect>> {
        let l = self.members.iter().find(|m| m.is_learner)?;
        let Some(u) = self.owner(l) else {
            return Some(Vec::new());
        };
        let adopted = Joining {
            unit: u.unit.clone(),
            member_id: l.id,
            initial_cluster: initial_cluster(self.members, l.id, &u.name),
        };
        Some(vec![Effect::LeaderSet(joining_keys(Some(&adopted)))])
    }

    /// 5. The next unit, in unit-number order, once every member votes and has started and no
    ///    member is restarting.
    fn admit_next(&self) -> Option<Vec<Effect>> {
        let members = self.members;
        if members.iter().any(|m| !m.started()) || self.o.leader_data.restart_granted.is_some() {
            return None;
        }
        let has_member = |u: &Unit| {
            members
                .iter()
                .any(|m| self.owner(m).is_some_and(|o| o.unit == u.unit))
        };
        let mut candidates: Vec<&Unit> = self
            .units
            .iter()
            .filter(|u| u.peer_url.is_some() && !has_member(u))
            .collect();
        candidates.sort_by_key(|u| unit_number(&u.unit));
        let u = candidates.first()?;
        Some(vec![Effect::Admit {
            unit: u.unit.clone(),
            peer_url: u.peer_url.clone().unwrap_or_default(),
        }])
    }
}

/// The leader's certificate duties (TLS on, CAs published): sign each unit's requests (its
/// own included) that have no certificates issued from them and the current CAs yet, or whose
/// certificates are due for renewal ([`rotation`]: the same requests signed again), and drop
/// what was issued to units no longer in the peer relation. Nothing is signed while the CA keys
/// could not be read.
pub fn tls_signing(o: &Observed) -> Vec<Effect> {
    let ld = &o.leader_data;
    let (Some(ca), true) = (ld.get(keys::TLS_CA), o.secrets.has_ca_keys()) else {
        return Vec::new();
    };
    let peer_ca = ld.get(keys::TLS_PEER_CA).unwrap_or(ca);
    let own = (o.unit.clone(), TlsRequest::from_data(&o.own_peer_data));
    let peers = o
        .peers
        .iter()
        .map(|p| (p.unit.clone(), p.tls_request.clone()));
    let units: Vec<(String, Option<TlsRequest>)> = std::iter::once(own).chain(peers).collect();
    let due = rotation::units_due(o, units.iter().map(|(u, _)| u.as_str()));
    let mut effects: Vec<Effect> = units
        .iter()
        .filter_map(|(unit, req)| {
            let req = req.as_ref()?;
            let from = Issued::fingerprint(&req.csr, &req.client_csr, ca, peer_ca);
            let issued = ld.get(&keys::issued_key(unit)).and_then(Issued::parse);
            (issued.is_none_or(|i| i.from != from) || due.contains(&unit.as_str()))
                .then(|| Effect::Issue { unit: unit.clone() })
        })
        .collect();
    let current: Vec<String> = units.iter().map(|(u, _)| keys::issued_key(u)).collect();
    let gone: Settings = ld
        .raw
        .keys()
        .filter(|k| k.starts_with(keys::TLS_ISSUED_PREFIX) && !current.contains(k))
        .map(|k| (k.clone(), String::new()))
        .collect();
    if !gone.is_empty() {
        effects.push(Effect::LeaderSet(gone));
    }
    effects.extend(consumer_certificates(o));
    effects
}

/// The applications related on `db` or `proxy` (once one of their units has joined), sorted;
/// never one named `root` (its certificate would be etcd's root identity).
pub fn consumers(o: &Observed) -> Vec<&str> {
    let mut apps: Vec<&str> = o
        .clients
        .iter()
        .filter_map(|r| r.app.as_deref())
        .filter(|app| *app != "root")
        .collect();
    apps.sort_unstable();
    apps.dedup();
    apps
}

/// The leader's duties to consumers: each application gets its own client certificate (CN =
/// its name, used on `db`) and etcd password once it has a unit on a relation, renewed when due
/// ([`rotation`]), as is the shared one; an application with no relation left loses its
/// credentials.
fn consumer_certificates(o: &Observed) -> Vec<Effect> {
    let apps = consumers(o);
    let ld = &o.leader_data;
    let issue = apps
        .iter()
        .filter(|app| {
            let key = keys::consumer_key(keys::CONSUMER_CERT_PREFIX, app);
            ld.get(&key).is_none()
                || rotation::leader_cert_due(o, &key)
                || ca_rotation::reissue_due(o, &ca_rotation::consumer_ca_key(app))
        })
        .map(|app| Effect::IssueConsumer {
            app: app.to_string(),
        });
    let issued = ld.raw.iter().filter(|(_, v)| !v.is_empty());
    let retire = issued
        .filter_map(|(k, _)| k.strip_prefix(keys::CONSUMER_CERT_PREFIX))
        .filter(|app| !apps.contains(app))
        .map(|app| Effect::RetireConsumer {
            app: app.to_string(),
        });
    let shared = rotation::leader_cert_due(o, keys::TLS_CLIENT_CERT)
        || ca_rotation::reissue_due(o, ca_rotation::keys::SHARED_CA);
    let shared = shared.then_some(Effect::RenewSharedClient);
    issue.chain(retire).chain(shared).collect()
}

/// The departing unit: hand Raft leadership over if it holds it, remove itself (when another
/// voter remains), stop etcd, and never rejoin.
pub fn departure(o: &Observed) -> Plan {
    let mut effects = vec![Effect::MarkDeparting];
    let me = o
        .member_id()
        .and_then(|id| o.members.as_ref()?.iter().find(|m| m.id == id));
    if let (Some(me), Some(members)) = (me, &o.members) {
        let mut others: Vec<&Member> = members
            .iter()
            .filter(|m| m.id != me.id && !m.is_learner && m.started())
            .collect();
        others.sort_by_key(|m| m.id);
        if me.is_learner || !others.is_empty() {
            let leads = o.local.status.as_ref().is_some_and(|s| s.leader == me.id);
            let transfer_to = others.first().map(|m| m.id).filter(|_| leads);
            effects.push(Effect::Leave {
                id: me.id,
                transfer_to,
            });
            let rest: Vec<Member> = members.iter().filter(|m| m.id != me.id).cloned().collect();
            let keys = published_keys(&rest, o.leader_data.get(keys::VERSION));
            let diff = keys.and_then(|k| changed(&o.leader_data.raw, k));
            if let (Leadership::Leader, Some(diff)) = (o.leadership, diff) {
                effects.push(Effect::LeaderSet(diff));
            }
        }
    }
    effects.push(Effect::Stop);
    if let Some(rel) = &o.peer_relation {
        let clear = Settings::from([(peer_keys::STARTED.to_string(), String::new())]);
        if let Some(diff) = changed(&o.own_peer_data, clear) {
            effects.push(Effect::PeerSet(rel.clone(), diff));
        }
    }
    Plan {
        effects,
        status: Status::Leaving,
        again: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::{CertificatePolicy, CharmConfig};
    use crate::core::observed::{CaKeys, ClientRelation};
    use crate::core::rotation::test_certificate;

    const T0: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    #[test]
    fn the_leader_plans_each_renewal_once() {
        let p = CertificatePolicy::default();
        let mut o = Observed::blank("etcd/0");
        o.config = Ok(CharmConfig::default());
        o.now = T0 as u64;
        o.leadership = Leadership::Leader;
        o.secrets.ca_keys = Some(CaKeys::default());
        o.own_peer_data
            .insert(peer_keys::TLS_CSR.into(), "csr".into());
        o.own_peer_data
            .insert(peer_keys::TLS_CLIENT_CSR.into(), "client csr".into());
        o.clients.push(ClientRelation {
            id: "db:1".into(),
            endpoint: "db".into(),
            app: Some("kube".into()),
            ..ClientRelation::default()
        });
        let consumer = keys::consumer_key(keys::CONSUMER_CERT_PREFIX, "kube");
        let from = Issued::fingerprint("csr", "client csr", "CA", "CA");
        let at = |o: &mut Observed, made_at: i64| {
            let c = test_certificate(made_at, p.validity_days);
            let issued = Issued {
                from: from.clone(),
                server: c.clone(),
                peer: c.clone(),
                client: c.clone(),
            };
            let ld = &mut o.leader_data.raw;
            ld.insert(keys::TLS_CA.into(), "CA".into());
            ld.insert(
                keys::issued_key("etcd/0"),
                serde_json::to_string(&issued).unwrap(),
            );
            ld.insert(consumer.clone(), c.clone());
            ld.insert(keys::TLS_CLIENT_CERT.into(), c);
        };
        at(&mut o, T0 - 10 * DAY);
        assert_eq!(tls_signing(&o), []);
        // A year on, all three are due; once renewed, nothing is.
        o.now += 350 * DAY as u64;
        let own = Effect::Issue {
            unit: "etcd/0".into(),
        };
        let kube = Effect::IssueConsumer { app: "kube".into() };
        assert_eq!(tls_signing(&o), [own, kube, Effect::RenewSharedClient]);
        let now = o.now as i64;
        at(&mut o, now);
        assert_eq!(tls_signing(&o), []);
    }
}

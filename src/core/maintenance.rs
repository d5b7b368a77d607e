/*!
The Juju leader's automatic maintenance, decided at `update-status` from what every hook observes
already: each started member's status answer (`dbSize`, `dbSizeInUse`, its Raft leader) and the
alarm list. Nothing runs unless every member is a started voting member that answers with a Raft
leader, no membership change or restart is under way, and this unit's own member is healthy.

- **Defragmentation** (`auto_defrag`): a member whose free space (database size minus the part
  in use) is at least `defrag_free_percent` of its database and at least `defrag_free_bytes` is
  defragmented, one member per `update-status`, followers first and the Raft leader last, at
  most once per `defrag_interval` per member, and only while no alarm is active. When each member
  was last defragmented is kept in leader data ([`keys::DEFRAGMENTED`]), so a new leader
  respects it too.
- **NOSPACE recovery** (`auto_nospace_recovery`), while a NOSPACE alarm is the only alarm: the
  history is compacted to the current revision and the start recorded
  ([`keys::NOSPACE_RECOVERY`]); once every member uses less than [`NOSPACE_BELOW_PERCENT`] % of
  the quota (else it compacts again at each `update-status`, for what was deleted meanwhile),
  each member not defragmented since the start is defragmented in turn (followers first), then
  the record is cleared and the alarm disarmed. Every step is recorded after it is done (the last
  one before: a hook killed there starts a recovery again), so a hook killed halfway repeats a
  step at most, which is harmless.

The etcd calls are [`Effect::Maintain`]; the leader data records are planned right after them
and written only when they succeeded, and so is the announcement in this unit's peer data that
the `defrag` action makes too ([`DEFRAG_KEY`]): each defragmented member's unit records it for
the facts exporter (the leader's own member is recorded where the defragmentation is applied).
*/

use crate::core::config::CharmConfig;
use crate::core::effect::{Effect, Plan};
use crate::core::observed::{keys, Observed};
use crate::core::status::{Chore, Status};
use crate::etcd::{Member, MemberStatus};
use crate::juju::Settings;
use std::collections::BTreeMap;

/// A NOSPACE alarm is recovered from once every member uses less than this share of the quota
/// (in percent; etcd refuses a write that would take the database over it, so disarming nearer
/// to it would only see the alarm raised again).
pub const NOSPACE_BELOW_PERCENT: u64 = 90;

/// Peer data key in which a unit announces the members it defragmented (automatically, or by the
/// `defrag` action): [`announcement`]; each of those members' units records it for itself.
pub const DEFRAG_KEY: &str = "defragmented";

/// The value of [`DEFRAG_KEY`]: `<Unix seconds> <member>,<member>…`.
pub fn announcement(unix: i64, members: &str) -> String {
    format!("{unix} {members}")
}

/// A voting member and its answer, in the order maintenance visits them.
type Voter<'a> = (&'a Member, &'a MemberStatus);

/// Plans the leader's maintenance for this pass, when there is nothing else to do.
pub fn leader(o: &Observed, cfg: &CharmConfig, p: &mut Plan) {
    let ld = &o.leader_data;
    let quiet = !p.again && ld.joining.is_none() && ld.restart_granted.is_none();
    if o.hook.name() != "update-status" || !quiet || !matches!(p.status, Status::Active(_)) {
        return;
    }
    let nospace: Vec<u64> = alarms(o, "NOSPACE");
    let recovering = ld.get(keys::NOSPACE_RECOVERY).is_some();
    if nospace.is_empty() && recovering {
        // Disarmed, by this or by an operator: the recovery is over.
        p.effects.push(recovery_record(None));
        return;
    }
    let Some(voters) = healthy_voters(o) else {
        return;
    };
    let others = o.cluster.alarms.iter().any(|(_, a)| a != "NOSPACE");
    let m = &cfg.maintenance;
    match (nospace.is_empty(), others) {
        (_, true) => {}
        (false, false) if m.nospace_recovery => nospace_step(o, cfg, &voters, nospace, p),
        (false, false) => {}
        (true, false) if m.defrag_on() => {
            let due = voters
                .iter()
                .find(|v| fragmented(cfg, v.1) && due(o, cfg, v.0));
            if let Some(v) = due {
                p.effects.push(Effect::Maintain(defrag(o, v, false)));
                p.effects.push(defrag_record(o, &voters, &v.0.name));
                p.effects.extend(announce(o, &[v.0.name.as_str()]));
            }
        }
        (true, false) => {}
    }
}

/// The members raising `alarm` (0: the cluster).
fn alarms(o: &Observed, alarm: &str) -> Vec<u64> {
    let on = o.cluster.alarms.iter().filter(|(_, a)| a == alarm);
    on.map(|(id, _)| *id).collect()
}

/// Every member with its answer, followers by name and then the Raft leader, when every member
/// is a started voting member that answers with a Raft leader; else `None`.
fn healthy_voters(o: &Observed) -> Option<Vec<Voter<'_>>> {
    let members = o.members.as_deref().filter(|m| !m.is_empty())?;
    let mut voters = Vec::new();
    for m in members {
        let s = o.cluster.answer(m.id)?;
        if !m.started() || m.is_learner || s.is_learner || s.leader == 0 {
            return None;
        }
        voters.push((m, s));
    }
    let raft_leader = voters[0].1.leader;
    voters.sort_by_key(|(m, _)| (m.id == raft_leader, m.name.clone()));
    Some(voters)
}

/// (size, free) of a member's backend, in bytes; `None` when it does not report its use.
fn space(s: &MemberStatus) -> Option<(u64, u64)> {
    let size = u64::try_from(s.db_size).ok()?;
    let used = u64::try_from(s.db_size_in_use).ok().filter(|u| *u > 0)?;
    Some((size, size.saturating_sub(used)))
}

/// Its free space is at least both thresholds.
fn fragmented(cfg: &CharmConfig, s: &MemberStatus) -> bool {
    let m = &cfg.maintenance;
    space(s).is_some_and(|(size, free)| {
        free.saturating_mul(100) >= m.free_percent.saturating_mul(size) && free >= m.free_bytes
    })
}

/// When each member was last defragmented by the leader (Unix seconds), by name.
fn last_defrags(o: &Observed) -> BTreeMap<String, u64> {
    let raw = o.leader_data.get(keys::DEFRAGMENTED).unwrap_or("");
    let entry = |e: &str| {
        let (name, at) = e.split_once('=')?;
        Some((name.trim().to_string(), at.trim().parse().ok()?))
    };
    raw.split(',').filter_map(entry).collect()
}

/// Its last automatic defragmentation is at least `defrag_interval` ago (or there was none).
fn due(o: &Observed, cfg: &CharmConfig, m: &Member) -> bool {
    last_defrags(o)
        .get(&m.name)
        .is_none_or(|at| o.now.saturating_sub(*at) >= cfg.maintenance.interval_secs)
}

fn defrag(o: &Observed, (m, s): &Voter, nospace: bool) -> Chore {
    let (size, free) = space(s).unwrap_or((0, 0));
    Chore::Defrag {
        member: o.label(m),
        id: m.id,
        endpoint: m.client_urls.first().cloned().unwrap_or_default(),
        free,
        size,
        nospace,
    }
}

/// Leader data recording `name` defragmented now (members no longer listed dropped).
fn defrag_record(o: &Observed, voters: &[Voter], name: &str) -> Effect {
    let mut last = last_defrags(o);
    last.insert(name.to_string(), o.now);
    last.retain(|n, _| voters.iter().any(|(m, _)| m.name == *n));
    let value: Vec<String> = last.iter().map(|(n, at)| format!("{n}={at}")).collect();
    Effect::LeaderSet(Settings::from([(
        keys::DEFRAGMENTED.to_string(),
        value.join(","),
    )]))
}

/// This unit's peer data announcing `names` defragmented now (none without the peer relation).
fn announce(o: &Observed, names: &[&str]) -> Option<Effect> {
    let rel = o.peer_relation.clone()?;
    let now = i64::try_from(o.now).unwrap_or(i64::MAX);
    let value = announcement(now, &names.join(","));
    Some(Effect::PeerSet(
        rel,
        Settings::from([(DEFRAG_KEY.to_string(), value)]),
    ))
}

/// Leader data recording the start of a NOSPACE recovery, or (`None`) its end.
fn recovery_record(began: Option<u64>) -> Effect {
    let value = began.map(|t| t.to_string()).unwrap_or_default();
    Effect::LeaderSet(Settings::from([(
        keys::NOSPACE_RECOVERY.to_string(),
        value,
    )]))
}

/// The next step of a NOSPACE recovery (see the module's description).
fn nospace_step(o: &Observed, cfg: &CharmConfig, voters: &[Voter], ids: Vec<u64>, p: &mut Plan) {
    let began = o.leader_data.get(keys::NOSPACE_RECOVERY);
    let Some(began) = began.and_then(|t| t.parse::<u64>().ok()) else {
        p.effects.push(Effect::Maintain(Chore::Compact));
        p.effects.push(recovery_record(Some(o.now)));
        p.again = true;
        return;
    };
    let limit = cfg.quota() / 100 * NOSPACE_BELOW_PERCENT;
    let over = |bytes: i64| u64::try_from(bytes).unwrap_or(0) >= limit;
    if voters.iter().any(|(_, s)| over(s.db_size_in_use)) {
        // Still too full: compact what was deleted since, and wait for more to go.
        p.effects.push(Effect::Maintain(Chore::Compact));
        return;
    }
    let last = last_defrags(o);
    let pending = voters
        .iter()
        .find(|(m, _)| last.get(&m.name).is_none_or(|at| *at < began));
    if let Some(v) = pending {
        p.effects.push(Effect::Maintain(defrag(o, v, true)));
        p.effects.push(defrag_record(o, voters, &v.0.name));
        // With those of this recovery done before (often in this hook's earlier passes, whose
        // announcement this one replaces before any peer reads it).
        let done = voters
            .iter()
            .map(|(m, _)| m.name.as_str())
            .filter(|n| *n == v.0.name || last.get(*n).is_some_and(|at| *at >= began));
        p.effects.extend(announce(o, &done.collect::<Vec<_>>()));
        p.again = true;
        return;
    }
    if voters.iter().any(|(_, s)| over(s.db_size)) {
        // Defragmented and still over: nothing more maintenance can free.
        return;
    }
    // Cleared first: a hook killed before the disarm starts a new recovery, which ends the same.
    p.effects.push(recovery_record(None));
    p.effects.push(Effect::Maintain(Chore::Disarm(ids)));
    p.again = true;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::Maintenance;
    use crate::core::observed::{ClusterView, LeaderData, Leadership};
    use crate::core::status::Health;
    use crate::juju::context::Hook;

    const MIB: i64 = 1024 * 1024;
    const NOW: u64 = 1_800_000_000;

    fn member(i: u64) -> Member {
        Member {
            id: i + 1,
            name: format!("etcd{i}"),
            peer_urls: vec![format!("http://10.0.0.{}:2380", i + 1)],
            client_urls: vec![format!("http://10.0.0.{}:2379", i + 1)],
            is_learner: false,
        }
    }

    /// The leader unit etcd/0 of three members; Raft leader etcd1 (id 2); each member's
    /// database 300 MiB of which 100 MiB in use (fragmented for the defaults).
    fn cluster() -> Observed {
        let members: Vec<Member> = (0..3).map(member).collect();
        let answers = members.iter().map(|m| MemberStatus {
            member_id: m.id,
            leader: 2,
            db_size: 300 * MIB,
            db_size_in_use: 100 * MIB,
            ..Default::default()
        });
        Observed {
            leadership: Leadership::Leader,
            cluster: ClusterView {
                answers: answers.collect(),
                alarms: vec![],
            },
            members: Some(members),
            now: NOW,
            ..Observed::blank("etcd/0")
        }
    }

    /// [`cluster`] with a quota of 256 MiB.
    fn small_quota() -> Observed {
        let mut o = cluster();
        o.config = Ok(CharmConfig {
            quota_backend_bytes: 256 * MIB as u64,
            ..CharmConfig::plain()
        });
        o
    }

    fn cfg(o: &Observed) -> CharmConfig {
        o.config.clone().unwrap()
    }

    fn plan(o: &Observed) -> Plan {
        let mut p = Plan::only(Status::Active(Health::healthy(3)));
        leader(o, &cfg(o), &mut p);
        p
    }

    fn answer(o: &mut Observed, id: u64) -> &mut MemberStatus {
        o.cluster
            .answers
            .iter_mut()
            .find(|s| s.member_id == id)
            .unwrap()
    }

    /// The world after the plan: leader data written, defragmented members compact, the
    /// history compacted (in-use sizes as `compacted_to`), alarms disarmed.
    fn apply(o: &mut Observed, p: &Plan, compacted_to: i64) {
        for e in &p.effects {
            match e {
                Effect::LeaderSet(s) => {
                    let mut raw = o.leader_data.raw.clone();
                    raw.extend(s.clone());
                    o.leader_data = LeaderData::parse(raw);
                }
                Effect::Maintain(Chore::Defrag { id, .. }) => {
                    let s = answer(o, *id);
                    s.db_size = s.db_size_in_use;
                }
                Effect::Maintain(Chore::Compact) => {
                    for s in &mut o.cluster.answers {
                        s.db_size_in_use = s.db_size_in_use.min(compacted_to);
                    }
                }
                Effect::Maintain(Chore::Disarm(ids)) => {
                    o.cluster.alarms.retain(|(id, _)| !ids.contains(id))
                }
                Effect::PeerSet(_, s) => o.own_peer_data.extend(s.clone()),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// What the plan does, briefly: `defrag etcd2`, `compact`, `disarm [1]`, `record`.
    fn steps(p: &Plan) -> Vec<String> {
        let one = |e: &Effect| match e {
            Effect::Maintain(Chore::Defrag { member, .. }) => format!("defrag {member}"),
            Effect::Maintain(Chore::Compact) => "compact".into(),
            Effect::Maintain(Chore::Disarm(ids)) => format!("disarm {ids:?}"),
            Effect::LeaderSet(s) => format!("record {s:?}"),
            Effect::PeerSet(_, s) => format!("announce {}", s[DEFRAG_KEY]),
            other => format!("{other:?}"),
        };
        p.effects.iter().map(one).collect()
    }

    fn recorded(o: &Observed, key: &str) -> String {
        o.leader_data.get(key).unwrap_or("").to_string()
    }

    #[test]
    fn fragmented_followers_first_then_the_raft_leader_one_per_run() {
        let mut o = cluster();
        let mut order = Vec::new();
        for _ in 0..4 {
            let p = plan(&o);
            assert!(!p.again, "one member per update-status");
            if let [Effect::Maintain(Chore::Defrag {
                member, nospace, ..
            }), Effect::LeaderSet(_), Effect::PeerSet(..)] = p.effects.as_slice()
            {
                assert!(!nospace);
                order.push(member.clone());
            }
            assert!(p.effects.len() <= 3, "{:?}", steps(&p));
            apply(&mut o, &p, i64::MAX);
            o.now += 60;
        }
        assert_eq!(
            order,
            ["etcd0 (etcd/0)", "etcd2 (etcd/2)", "etcd1 (etcd/1)"]
        );
        let t = |k: u64| NOW + 60 * k;
        assert_eq!(
            recorded(&o, keys::DEFRAGMENTED),
            format!("etcd0={},etcd1={},etcd2={}", t(0), t(2), t(1))
        );
    }

    #[test]
    fn an_automatic_defragmentation_is_announced_as_the_action_announces_it() {
        let mut o = cluster();
        let p = plan(&o);
        let announced = Settings::from([(DEFRAG_KEY.to_string(), format!("{NOW} etcd0"))]);
        assert_eq!(p.effects[2], Effect::PeerSet("cluster:0".into(), announced));
        // Without the peer relation (no peer to tell), the record only.
        o.peer_relation = None;
        assert_eq!(steps(&plan(&o)).len(), 2);
    }

    #[test]
    fn the_thresholds_are_both_needed() {
        let mut o = cluster();
        for id in 1..=3 {
            // 90 MiB free of 190 MiB: 47 %, but under 100 MiB.
            let s = answer(&mut o, id);
            (s.db_size, s.db_size_in_use) = (190 * MIB, 100 * MIB);
        }
        assert_eq!(steps(&plan(&o)), Vec::<String>::new());
        // 150 MiB free of 400 MiB: over 100 MiB, but 37 %.
        let s = answer(&mut o, 3);
        (s.db_size, s.db_size_in_use) = (400 * MIB, 250 * MIB);
        assert_eq!(steps(&plan(&o)), Vec::<String>::new());
        s_set(&mut o, 3, 400 * MIB, 200 * MIB);
        assert_eq!(steps(&plan(&o))[0], "defrag etcd2 (etcd/2)");
        // No use reported: never taken for all free.
        s_set(&mut o, 3, 400 * MIB, 0);
        assert_eq!(steps(&plan(&o)), Vec::<String>::new());
    }

    fn s_set(o: &mut Observed, id: u64, size: i64, used: i64) {
        let s = answer(o, id);
        (s.db_size, s.db_size_in_use) = (size, used);
    }

    #[test]
    fn the_interval_is_kept_per_member_across_leaders() {
        let mut o = cluster();
        let p = plan(&o);
        apply(&mut o, &p, i64::MAX);
        // etcd0 fragmented again at once; the record lives in leader data, so another leader
        // unit reads it as well.
        s_set(&mut o, 1, 300 * MIB, 100 * MIB);
        o.unit = "etcd/2".into();
        let mut seen = Vec::new();
        for _ in 0..3 {
            let p = plan(&o);
            seen.extend(steps(&p).into_iter().filter(|s| s.starts_with("defrag")));
            apply(&mut o, &p, i64::MAX);
            s_set(&mut o, 1, 300 * MIB, 100 * MIB);
            o.now += 600;
        }
        // The others first; etcd0 is not due within the hour.
        assert_eq!(seen, ["defrag etcd2 (etcd/2)", "defrag etcd1 (etcd/1)"]);
        o.now = NOW + 3600;
        assert_eq!(steps(&plan(&o))[0], "defrag etcd0 (etcd/0)");
        o.config = Ok(CharmConfig {
            maintenance: Maintenance {
                interval_secs: 7200,
                ..Maintenance::default()
            },
            ..CharmConfig::plain()
        });
        assert_eq!(steps(&plan(&o)), Vec::<String>::new());
    }

    #[test]
    fn nothing_unless_every_member_is_healthy_and_nothing_else_runs() {
        let ok = cluster();
        assert_eq!(plan(&ok).effects.len(), 3);
        let mut cases: Vec<(&str, Observed)> = Vec::new();
        let mut o = cluster();
        o.cluster.answers.retain(|s| s.member_id != 3);
        cases.push(("a member does not answer", o));
        let mut o = cluster();
        answer(&mut o, 2).leader = 0;
        cases.push(("a member without a Raft leader", o));
        let mut o = cluster();
        o.members.as_mut().unwrap()[2].is_learner = true;
        cases.push(("a learner", o));
        let mut o = cluster();
        o.cluster.alarms.push((0, "CORRUPT".into()));
        cases.push(("a CORRUPT alarm", o));
        let mut o = cluster();
        o.hook = Hook::Other("config-changed".into());
        cases.push(("another hook", o));
        let mut o = cluster();
        o.leader_data = LeaderData::parse(Settings::from([(
            keys::RESTART_GRANTED.into(),
            "etcd/1".into(),
        )]));
        cases.push(("a rolling restart", o));
        for off in [
            Maintenance {
                auto_defrag: false,
                ..Maintenance::default()
            },
            Maintenance {
                free_percent: 0,
                ..Maintenance::default()
            },
        ] {
            let mut o = cluster();
            o.config = Ok(CharmConfig {
                maintenance: off,
                ..CharmConfig::plain()
            });
            cases.push(("switched off", o));
        }
        for (why, o) in cases {
            assert_eq!(steps(&plan(&o)), Vec::<String>::new(), "{why}");
        }
        // Another step of this pass comes first.
        let mut p = Plan::only(Status::Active(Health::healthy(3)));
        p.again = true;
        leader(&ok, &cfg(&ok), &mut p);
        assert!(p.effects.is_empty());
        let mut p = Plan::only(Status::WaitHealthy);
        leader(&ok, &cfg(&ok), &mut p);
        assert!(p.effects.is_empty());
    }

    #[test]
    fn nospace_compact_defrag_each_member_then_disarm() {
        let mut o = small_quota();
        for id in 1..=3 {
            s_set(&mut o, id, 256 * MIB, 240 * MIB);
        }
        o.cluster.alarms = vec![(1, "NOSPACE".into()), (3, "NOSPACE".into())];
        // Compacted and recorded first; still too full after it (nothing deleted yet).
        let p = plan(&o);
        assert_eq!(steps(&p)[0], "compact");
        assert!(p.again);
        apply(&mut o, &p, i64::MAX);
        assert_eq!(recorded(&o, keys::NOSPACE_RECOVERY), NOW.to_string());
        let p = plan(&o);
        assert_eq!(steps(&p), ["compact"]);
        assert!(!p.again, "waits for the next update-status");
        // Keys were deleted: the next compaction brings usage under 90 %.
        apply(&mut o, &p, 40 * MIB);
        o.now += 300;
        let mut seen = Vec::new();
        for _ in 0..5 {
            let p = plan(&o);
            seen.extend(steps(&p).into_iter().filter(|s| !s.starts_with("record")));
            apply(&mut o, &p, i64::MAX);
        }
        // Each announcement names the members this recovery defragmented so far: the last one
        // (what the peers read at the end of the hook) all of them.
        let t = NOW + 300;
        assert_eq!(
            seen,
            [
                "defrag etcd0 (etcd/0)".to_string(),
                format!("announce {t} etcd0"),
                "defrag etcd2 (etcd/2)".to_string(),
                format!("announce {t} etcd0,etcd2"),
                "defrag etcd1 (etcd/1)".to_string(),
                format!("announce {t} etcd0,etcd2,etcd1"),
                "disarm [1, 3]".to_string(),
            ]
        );
        assert!(o.cluster.alarms.is_empty());
        assert_eq!(recorded(&o, keys::NOSPACE_RECOVERY), "");
        // Freshly defragmented: nothing more to do.
        assert_eq!(steps(&plan(&o)), Vec::<String>::new());
    }

    #[test]
    fn nospace_recovery_resumes_after_a_killed_hook() {
        let mut o = small_quota();
        o.cluster.alarms = vec![(2, "NOSPACE".into())];
        let p = plan(&o);
        apply(&mut o, &p, i64::MAX);
        // etcd0 defragmented, the hook killed before its record: the same step again.
        let p = plan(&o);
        assert_eq!(steps(&p)[0], "defrag etcd0 (etcd/0)");
        let defrag_only = Plan {
            effects: p.effects[..1].to_vec(),
            ..p.clone()
        };
        apply(&mut o, &defrag_only, i64::MAX);
        assert_eq!(steps(&plan(&o))[0], "defrag etcd0 (etcd/0)");
        // Disarmed by hand meanwhile: the record goes.
        o.cluster.alarms.clear();
        let p = plan(&o);
        assert_eq!(
            p.effects,
            [Effect::LeaderSet(Settings::from([(
                keys::NOSPACE_RECOVERY.into(),
                String::new()
            )]))]
        );
    }

    #[test]
    fn nospace_recovery_switched_off_leaves_the_alarm() {
        let mut o = cluster();
        o.config = Ok(CharmConfig {
            maintenance: Maintenance {
                nospace_recovery: false,
                ..Maintenance::default()
            },
            ..CharmConfig::plain()
        });
        o.cluster.alarms = vec![(1, "NOSPACE".into())];
        assert_eq!(steps(&plan(&o)), Vec::<String>::new());
    }
}

/*!
`defrag` (any unit): defragments this member's backend, or with `all=true` every started voting
member one at a time, followers first and the Raft leader last. A member serves nothing while
it is defragmented, so before each one the action checks that enough of the other voting
members are healthy to keep a quorum, and after each one it waits for the member to be healthy
again; it stops at the first member where that does not hold, saying which were done.

Result keys: `members.<name>.{db-size-before,db-size-after}`, `defragmented` (names),
`output`.
*/

use super::{common, Action, Results, Stop};
use crate::clock::{Clock, SystemClock};
use crate::etcd::{Etcd, EtcdError, Member};
use std::time::Duration;

/// How long a defragmented member has to answer with a Raft leader again.
const BACK_WAIT: Duration = Duration::from_secs(60);

/// The action.
pub fn run(a: &Action, r: &mut Results) -> Result<(), Stop> {
    let all = a.params.flag("all");
    let endpoints = common::endpoints(a);
    let members = a.etcd.member_list(&endpoints).or_else(|e| {
        super::fail(format!(
            "cannot list members: {e}; nothing was defragmented. Check `health`"
        ))
    })?;
    let voters: Vec<&Member> = members
        .iter()
        .filter(|m| m.started() && !m.is_learner)
        .collect();
    let targets: Vec<&Member> = match all {
        true => order(a.etcd, &voters),
        false => {
            let local = common::local_endpoint(a);
            let me = a.etcd.status(&local).or_else(|e| {
                super::fail(format!(
                    "etcd on this unit does not answer ({e}); nothing was defragmented. Check \
                     `juju status`, or run defrag on another unit"
                ))
            })?;
            if me.is_learner {
                return super::fail(
                    "this unit's member is a learner: etcd does not defragment learners; run \
                     defrag again once it has been promoted",
                );
            }
            let Some(m) = members.iter().find(|m| m.id == me.member_id) else {
                return super::fail(format!(
                    "this unit's member {:x} is not in the member list; nothing was \
                     defragmented",
                    me.member_id
                ));
            };
            // Reached on loopback: the local member is the one asked.
            vec![m]
        }
    };
    let local_only = !all;
    defrag_members(a, r, &voters, &targets, local_only, BACK_WAIT)
}

/// Followers by name, then the Raft leader (asking the members which it is).
fn order<'m>(etcd: &dyn Etcd, voters: &[&'m Member]) -> Vec<&'m Member> {
    let leader = voters
        .iter()
        .filter_map(|m| etcd.status(m.client_urls.first()?).ok())
        .map(|s| s.leader)
        .find(|l| *l != 0);
    let mut v = voters.to_vec();
    v.sort_by_key(|m| (Some(m.id) == leader, m.name.clone()));
    v
}

/// Why defragmenting `target` now would risk the cluster, if it would.
fn unsafe_now(etcd: &dyn Etcd, voters: &[&Member], target: &Member) -> Option<String> {
    let others: Vec<&&Member> = voters.iter().filter(|m| m.id != target.id).collect();
    let healthy = others
        .iter()
        .filter(|m| {
            m.client_urls
                .first()
                .is_some_and(|ep| etcd.status(ep).is_ok_and(|s| common::healthy(&s)))
        })
        .count();
    let needed = common::quorum(voters.len()).min(others.len());
    (healthy < needed).then(|| {
        format!(
            "only {healthy} of the {} other voting members are healthy and {needed} must be to \
             keep a quorum while {} is busy",
            others.len(),
            common::label(target)
        )
    })
}

/// Why the defragmentation of one member did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefragStop {
    /// It is not a healthy voting member now: it was left alone.
    NotHealthy,
    /// Defragmenting it now would risk the quorum (why): it was left alone.
    Unsafe(String),
    /// etcd's defragment call failed.
    Failed(EtcdError),
    /// Defragmented, but it has not answered with a Raft leader within the wait.
    NotBack,
}

/// A member's backend size before and after its defragmentation, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Before.
    pub before: i64,
    /// After, once it answered again.
    pub after: i64,
}

/// Defragments one voting member reached at `endpoint`, the way the action and the charm's
/// automatic maintenance both do it: only while it is healthy and the other voting members keep
/// a quorum without it, then waiting at most `back_wait` for it to answer with a Raft leader
/// again. `starting` is told its size just before etcd's call.
pub fn defrag_member(
    etcd: &dyn Etcd,
    clock: &dyn Clock,
    voters: &[&Member],
    target: &Member,
    endpoint: &str,
    back_wait: Duration,
    starting: &mut dyn FnMut(i64),
) -> Result<Sizes, DefragStop> {
    let before = match etcd.status(endpoint) {
        Ok(s) if common::healthy(&s) => s.db_size,
        Ok(_) | Err(_) => return Err(DefragStop::NotHealthy),
    };
    if let Some(why) = unsafe_now(etcd, voters, target) {
        return Err(DefragStop::Unsafe(why));
    }
    starting(before);
    etcd.defragment(endpoint).map_err(DefragStop::Failed)?;
    let after = wait_back(etcd, clock, endpoint, back_wait).ok_or(DefragStop::NotBack)?;
    Ok(Sizes { before, after })
}

fn wait_back(etcd: &dyn Etcd, clock: &dyn Clock, endpoint: &str, budget: Duration) -> Option<i64> {
    let deadline = clock.now() + budget;
    loop {
        if let Ok(s) = etcd.status(endpoint) {
            if common::healthy(&s) {
                return Some(s.db_size);
            }
        }
        if clock.now() >= deadline {
            return None;
        }
        clock.sleep(Duration::from_millis(250));
    }
}

fn defrag_members(
    a: &Action,
    r: &mut Results,
    voters: &[&Member],
    targets: &[&Member],
    local_only: bool,
    back_wait: Duration,
) -> Result<(), Stop> {
    let mut done: Vec<String> = Vec::new();
    let mut lines = Vec::new();
    let so_far = |done: &[String]| match done.is_empty() {
        true => "nothing was defragmented".to_string(),
        false => format!("defragmented so far: {}", done.join(", ")),
    };
    for (i, m) in targets.iter().enumerate() {
        let name = common::label(m);
        let p = format!("members.{}", common::key_part(&name));
        let endpoint = match local_only {
            true => common::local_endpoint(a),
            false => m.client_urls.first().cloned().unwrap_or_default(),
        };
        let mut starting = |before: i64| {
            a.progress(&format!(
                "defragmenting {name} ({} of {}, db {})",
                i + 1,
                targets.len(),
                common::human_bytes(before.max(0) as u64)
            ))
        };
        let sizes = defrag_member(
            a.etcd,
            &SystemClock,
            voters,
            m,
            &endpoint,
            back_wait,
            &mut starting,
        );
        let Sizes { before, after } = match sizes {
            Ok(sizes) => sizes,
            Err(stop) => {
                r.set("defragmented", done.join(","));
                let so_far = so_far(&done);
                return super::fail(match stop {
                    DefragStop::NotHealthy => format!(
                        "{name} is not healthy, so it was not defragmented ({so_far}); bring it \
                         back (see `health`), then run defrag again"
                    ),
                    DefragStop::Unsafe(why) => format!(
                        "stopped before {name}: {why} ({so_far}); bring the other members back \
                         (see `health`), then run defrag again"
                    ),
                    DefragStop::Failed(e) => format!(
                        "defragmenting {name} failed: {e} ({so_far}); check `health`, then run \
                         defrag again"
                    ),
                    DefragStop::NotBack => format!(
                        "{name} was defragmented but has not answered with a Raft leader within \
                         {} s, so the next members were left alone ({so_far}, {name}); check \
                         `health` before running defrag again",
                        back_wait.as_secs()
                    ),
                });
            }
        };
        r.set(format!("{p}.db-size-before"), before);
        r.set(format!("{p}.db-size-after"), after);
        lines.push(format!(
            "{name}: {} -> {}",
            common::human_bytes(before.max(0) as u64),
            common::human_bytes(after.max(0) as u64)
        ));
        done.push(name);
    }
    r.set("defragmented", done.join(","));
    let output = match done.len() {
        1 => format!("defragmented {}", lines.join("")),
        n => format!(
            "defragmented {n} members one at a time, each healthy again before the next: {}",
            lines.join("; ")
        ),
    };
    r.set("output", output);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{params, Action, Results};
    use super::*;
    use crate::fakes::{client_url, status_of, FakeEtcd, FakeJuju};
    use serde_json::json;

    fn action<'a>(
        juju: &'a FakeJuju,
        etcd: &'a FakeEtcd,
        ctx: &'a crate::juju::context::JujuContext,
    ) -> Action<'a> {
        let p = params::validate(params::spec("defrag").unwrap(), &juju.params).unwrap();
        Action::new(ctx, juju, etcd, p)
    }

    #[test]
    fn all_members_followers_first_leader_last() {
        let juju = FakeJuju::new("etcd/2", json!({"all": true}));
        let etcd = FakeEtcd::healthy(3);
        // The Raft leader is etcd1 (id 2).
        for i in 0..3 {
            etcd.status
                .borrow_mut()
                .insert(client_url(i), Ok(status_of(i as u64 + 1, 2)));
        }
        juju.run("defrag", &etcd);
        assert_eq!(juju.failed(), None);
        assert_eq!(
            etcd.calls(),
            [
                format!("defragment {}", client_url(0)),
                format!("defragment {}", client_url(2)),
                format!("defragment {}", client_url(1)),
            ]
        );
        juju.assert_result("defragmented", "etcd0,etcd2,etcd1");
        juju.assert_result("members.etcd1.db-size-after", "20480");
    }

    #[test]
    fn stops_when_a_member_does_not_come_back() {
        let juju = FakeJuju::new("etcd/0", json!({"all": true}));
        let mut etcd = FakeEtcd::healthy(3);
        etcd.dies_on_defrag = vec![client_url(2)];
        let ctx = juju.ctx();
        let a = action(&juju, &etcd, &ctx);
        let members = etcd.members.clone();
        let voters: Vec<&Member> = members.iter().collect();
        let targets = order(&etcd, &voters);
        let mut r = Results::default();
        let out = defrag_members(&a, &mut r, &voters, &targets, false, Duration::ZERO);
        let Err(Stop::Fail(msg)) = out else {
            panic!("{out:?}")
        };
        assert!(
            msg.starts_with("etcd2 was defragmented but has not answered"),
            "{msg}"
        );
        assert!(msg.contains("defragmented so far: etcd1"), "{msg}");
        // The Raft leader, last in line, was left alone.
        assert_eq!(etcd.calls().len(), 2);
    }

    #[test]
    fn refuses_when_the_others_cannot_keep_a_quorum() {
        let juju = FakeJuju::new("etcd/0", json!({}));
        let etcd = FakeEtcd::healthy(3);
        etcd.kill(2);
        juju.run("defrag", &etcd);
        juju.failure_starting(
            "stopped before etcd0: only 1 of the 2 other voting members are healthy and 2 must be",
        );
        assert!(etcd.calls().is_empty());
    }

    #[test]
    fn a_sole_member_is_defragmented() {
        let juju = FakeJuju::new("etcd/0", json!({}));
        let etcd = FakeEtcd::healthy(1);
        juju.run("defrag", &etcd);
        assert_eq!(juju.failed(), None);
        assert_eq!(etcd.calls(), ["defragment http://127.0.0.1:2379"]);
    }
}

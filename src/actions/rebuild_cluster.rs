/*!
`rebuild-cluster` (leader, `force=true`): recovery after losing the majority of the members.

It refuses unless the cluster really lost its majority: no member answers with a Raft leader
(looked at again for three election timeouts) and fewer than a majority answer at all. The
surviving member with the newest data (highest Raft index) must be this unit's: when another
answering member is ahead, the action says which and changes nothing.

Then: etcd is stopped, its data dir copied aside (`data.before-rebuild-<time>` beside it, on
the storage volume when the data dir is there; unless `keep-previous=false`), and etcd is run once with `force-new-cluster` (in a transient systemd
unit, as the etcd user): it keeps its data, member id and cluster id and commits the removal of
every other member. The action checks that it leads a cluster of its own, stops it, starts the
regular service, and publishes the one-member cluster in leader data. The other units rejoin by
themselves once their machines are back: their members were removed, so their etcd stops, they
move their data aside and are admitted again one at a time. If anything fails before etcd runs
on its own again, the copied data is put back and etcd restarted on it.

Result keys: `member`, `member-id`, `revision`, `removed-members`, `previous-data`, `output`.
*/

use super::{common, machine, Action, Results, Stop};
use crate::core::observed::keys;
use crate::core::render;
use crate::etcd::MemberStatus;
use crate::machine::host::{self, Host};
use crate::machine::state;
use crate::paths;
use std::time::{Duration, Instant};

/// What the members said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survey {
    /// Voting members known (member list, else published endpoints).
    pub voters: usize,
    /// Members that answered, this unit's first when it answers: (label, status).
    pub answering: Vec<(String, MemberStatus)>,
}

/// Why the cluster must not be rebuilt from this unit now, if it must not.
pub fn refusal(s: &Survey, own_id: Option<u64>) -> Option<String> {
    if let Some((name, st)) = s.answering.iter().find(|(_, st)| st.leader != 0) {
        let leader = s
            .answering
            .iter()
            .find(|(_, x)| x.member_id == st.leader)
            .map_or(format!("{:x}", st.leader), |(n, _)| n.clone());
        return Some(format!(
            "the cluster has not lost its majority: {name} follows Raft leader {leader} ({} of \
             {} members answer). rebuild-cluster is only for a cluster without a majority; \
             replace lost units with `juju remove-unit` and `juju add-unit`",
            s.answering.len(),
            s.voters
        ));
    }
    if s.answering.len() >= common::quorum(s.voters) {
        return Some(format!(
            "{} of {} members answer, a majority, but none has a Raft leader yet: wait for the \
             election, then run `health`",
            s.answering.len(),
            s.voters
        ));
    }
    let own_index = own_id
        .and_then(|id| s.answering.iter().find(|(_, st)| st.member_id == id))
        .map(|(_, st)| st.raft_index);
    if let Some(own_index) = own_index {
        if let Some((name, st)) = s
            .answering
            .iter()
            .filter(|(_, st)| Some(st.member_id) != own_id)
            .max_by_key(|(_, st)| st.raft_index)
            .filter(|(_, st)| st.raft_index > own_index)
        {
            return Some(format!(
                "{name} has newer data than this unit's member (Raft index {} > {own_index}): \
                 rebuilding from this unit would lose it. rebuild-cluster rebuilds from the \
                 leader unit's member: stop the other survivors' etcd only if you accept losing \
                 their newer entries",
                st.raft_index
            ));
        }
    }
    None
}

fn survey(a: &Action, local: &str) -> (Survey, Option<MemberStatus>, Vec<String>) {
    let own = a.etcd.status(local).ok();
    let members = a.etcd.member_list(&[local.to_string()]).ok();
    // Client URLs of the other voters, and their labels.
    let (voters, others): (usize, Vec<(String, String)>) = match &members {
        Some(ms) => {
            let voters: Vec<_> = ms.iter().filter(|m| !m.is_learner).collect();
            let others = voters
                .iter()
                .filter(|m| Some(m.id) != own.as_ref().map(|s| s.member_id))
                .filter_map(|m| Some((common::label(m), m.client_urls.first()?.clone())))
                .collect();
            (voters.len(), others)
        }
        None => {
            let published = a
                .leader_data()
                .get(keys::ENDPOINTS)
                .cloned()
                .unwrap_or_default();
            let eps: Vec<String> = published
                .split(',')
                .filter(|e| !e.is_empty())
                .map(String::from)
                .collect();
            // This unit's own client URL is not one of the others.
            let own_url = host::read(paths::CONFIG_FILE)
                .as_deref()
                .and_then(render::advertised_urls)
                .map(|(_, client)| client);
            let others = eps
                .iter()
                .filter(|e| Some(*e) != own_url.as_ref())
                .map(|e| (e.clone(), e.clone()))
                .collect();
            (eps.len().max(1), others)
        }
    };
    let mut answering = Vec::new();
    if let Some(s) = &own {
        answering.push((a.ctx.member_name(), s.clone()));
    }
    let mut others_names = Vec::new();
    for (label, ep) in others {
        if let Ok(s) = a.etcd.status(&ep) {
            if own.as_ref().is_none_or(|o| o.member_id != s.member_id) {
                answering.push((label.clone(), s));
            }
        }
        others_names.push(label);
    }
    (Survey { voters, answering }, own, others_names)
}

/// The action.
pub fn run(a: &Action, r: &mut Results) -> Result<(), Stop> {
    if !a.params.flag("force") {
        return super::fail(
            "rebuild-cluster rewrites the membership around this unit's member and drops the \
             others: run it with force=true, and only when the majority of members is lost for \
             good; nothing was changed",
        );
    }
    common::require_leader(a, "rebuild-cluster")?;
    let unchanged = |e: String| super::fail::<()>(format!("{e}; nothing was changed"));
    let local = common::local_endpoint(a);
    // A leader that lost its quorum steps down after an election timeout, and a new leader
    // may be being elected: look again for a while.
    let wait =
        Duration::from_millis(3 * u64::from(a.config().election_timeout)) + Duration::from_secs(2);
    let deadline = Instant::now() + wait;
    let (survey, own, others) = loop {
        let (s, own, others) = survey(a, &local);
        let why = refusal(&s, own.as_ref().map(|o| o.member_id));
        match why {
            Some(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(500)),
            Some(why) => return unchanged(why),
            None => break (s, own, others),
        }
    };
    if own.is_none() && !state::has_member_data(&Host) {
        return unchanged(
            "this unit has no etcd data to rebuild from (its etcd does not answer and its data \
             dir is empty): run rebuild-cluster on a unit that has; if none has, deploy anew and \
             use restore"
                .into(),
        );
    }
    let Some(config) = host::read(paths::CONFIG_FILE) else {
        return unchanged(format!("{} is missing", paths::CONFIG_FILE));
    };
    a.progress(&format!(
        "the cluster lost its majority ({} of {} members answer): rebuilding it around {}",
        survey.answering.len(),
        survey.voters,
        a.ctx.member_name()
    ));

    // Stop, keep a copy, run etcd once with force-new-cluster.
    // The copy goes beside the real data dir: on the storage volume when it is there.
    let place = common::data_here();
    let (home, data) = (place.home, place.dir);
    let stamp = common::stamp(common::now_secs());
    let copy = home.join(format!("data.before-rebuild-{stamp}"));
    if let Err(e) = machine::stop_etcd() {
        return unchanged(format!("cannot stop etcd: {e}"));
    }
    let keep = a.params.flag("keep-previous");
    if keep {
        if let Err(e) = machine::copy_dir(data, &copy) {
            let _ = machine::start_etcd();
            let _ = std::fs::remove_dir_all(&copy);
            return unchanged(format!(
                "cannot copy the data dir aside ({e}); etcd was started again. Free some space \
                 or run with keep-previous=false"
            ));
        }
    }
    a.progress("running etcd once with force-new-cluster");
    let forced = machine::start_force_new_cluster(&config).and_then(|()| {
        let s = common::wait_sole_leader(a.etcd, &local, Duration::from_secs(30))
            .ok_or("the member did not elect itself")?;
        let members = a
            .etcd
            .member_list(std::slice::from_ref(&local))
            .map_err(|e| e.to_string())?;
        match members.iter().map(|m| m.id).collect::<Vec<_>>() == [s.member_id] {
            true => Ok(s),
            false => Err(format!(
                "the member list still has {} members",
                members.len()
            )),
        }
    });
    machine::stop_force_new_cluster();
    let back = forced.and_then(|_| {
        a.progress("starting etcd as a one-member cluster");
        let why_not = "etcd did not come back as the leader of its own cluster";
        common::start_sole_leader(a, &local, why_not)
    });
    let s = match back {
        Ok(s) => s,
        Err(e) => {
            let _ = machine::stop_etcd();
            let restored = match keep {
                true => {
                    let failed = home.join(format!("data.failed-rebuild-{stamp}"));
                    let _ = machine::rename(data, &failed);
                    machine::rename(&copy, data).is_ok()
                }
                false => false,
            };
            let started = machine::start_etcd();
            return super::fail(format!(
                "the rebuild failed: {e}. {} etcd {}. See `journalctl -u {}` on this unit",
                match restored {
                    true => "The data dir is as it was before and",
                    false => "No copy was kept (keep-previous=false);",
                },
                match started {
                    Ok(()) => "was started again".to_string(),
                    Err(e) => format!("did not start again ({e})"),
                },
                "etcd-charm-force-new-cluster"
            ));
        }
    };
    common::publish_sole_member(a, s.member_id, &s.version, None)?;
    let revision = a.etcd.revision(std::slice::from_ref(&local)).unwrap_or(0);
    let previous = match keep {
        true => copy.display().to_string(),
        false => "not kept".to_string(),
    };
    r.set("member", a.ctx.member_name());
    r.set("member-id", format!("{:x}", s.member_id));
    r.set("revision", revision);
    r.set("removed-members", others.join(","));
    r.set("previous-data", &previous);
    r.set(
        "output",
        format!(
            "{} now forms a one-member cluster with its data (revision {revision}); removed \
             members: {}. The other units rejoin it one at a time by themselves as their \
             machines come back; remove units whose machines are gone for good with `juju \
             remove-unit --force`. Previous data: {previous}",
            a.ctx.member_name(),
            common::list_or_none(&others)
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{status_of, FakeEtcd, FakeJuju};
    use serde_json::json;

    fn leaderless(id: u64, index: u64) -> MemberStatus {
        MemberStatus {
            raft_index: index,
            ..status_of(id, 0)
        }
    }

    #[test]
    fn needs_force_and_the_leader() {
        let juju = FakeJuju::new("etcd/0", json!({"force": false}));
        let etcd = FakeEtcd::healthy(3);
        juju.run("rebuild-cluster", &etcd);
        let msg = juju.failed().unwrap();
        assert!(msg.contains("run it with force=true"), "{msg}");
        let mut juju = FakeJuju::new("etcd/1", json!({"force": true}));
        juju.leader = false;
        juju.run("rebuild-cluster", &etcd);
        assert!(juju.failed().unwrap().contains("is not the leader"));
    }

    #[test]
    fn refuses_a_cluster_with_a_leader() {
        let mut juju = FakeJuju::new("etcd/0", json!({"force": true}));
        // A short election timeout: the action looks again for a few of them.
        juju.config = json!({"heartbeat_interval": 10, "election_timeout": 50, "tls": false})
            .as_object()
            .unwrap()
            .clone();
        let etcd = FakeEtcd::healthy(3);
        etcd.kill(2);
        juju.run("rebuild-cluster", &etcd);
        let msg = juju.failure_starting("the cluster has not lost its majority: etcd0 follows Raft leader etcd0 (2 of 3 members answer)");
        assert!(msg.ends_with("nothing was changed"));
    }

    #[test]
    fn majority_loss_newest_data_and_elections() {
        let lost = Survey {
            voters: 3,
            answering: vec![("etcd0".into(), leaderless(1, 50))],
        };
        assert_eq!(refusal(&lost, Some(1)), None);
        let electing = Survey {
            voters: 3,
            answering: vec![
                ("etcd0".into(), leaderless(1, 50)),
                ("etcd1".into(), leaderless(2, 50)),
            ],
        };
        assert!(refusal(&electing, Some(1))
            .unwrap()
            .contains("wait for the election"));
        let behind = Survey {
            voters: 5,
            answering: vec![
                ("etcd0".into(), leaderless(1, 50)),
                ("etcd3".into(), leaderless(4, 57)),
            ],
        };
        let msg = refusal(&behind, Some(1)).unwrap();
        assert!(
            msg.starts_with("etcd3 has newer data than this unit's member (Raft index 57 > 50)"),
            "{msg}"
        );
        let ahead = Survey {
            voters: 5,
            answering: vec![
                ("etcd0".into(), leaderless(1, 60)),
                ("etcd3".into(), leaderless(4, 57)),
            ],
        };
        assert_eq!(refusal(&ahead, Some(1)), None);
    }
}

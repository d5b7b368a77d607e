/*!
`health` (any unit): every member's health, the Raft leader, term, index, db size, version and
alarms, with a verdict; fails naming each unhealthy member and why.

Result keys: `verdict`, `leader`, `raft-term`, `raft-index`, `alarms`,
`members.<name>.{id,healthy,learner,leader,version,db-size,raft-term,raft-index,error}`, and a
readable `output` that includes "cluster is healthy" when it is.
*/

use super::{common, Action, Results, Stop};
use crate::etcd::{EtcdError, Member, MemberStatus};

/// One member's health as the action reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberHealth {
    /// The member.
    pub member: Member,
    /// Its status, or why it did not answer.
    pub status: Result<MemberStatus, String>,
}

impl MemberHealth {
    /// Healthy: answers, votes, knows a leader, reports no errors.
    pub fn problem(&self) -> Option<String> {
        match &self.status {
            Err(e) => Some(e.clone()),
            Ok(_) if !self.member.started() => Some("not started".into()),
            Ok(s) if s.is_learner => Some("learner, not yet promoted".into()),
            Ok(s) if s.leader == 0 => Some("no Raft leader".into()),
            Ok(s) if !s.errors.is_empty() => Some(s.errors.join("; ")),
            Ok(_) => None,
        }
    }

    fn label(&self) -> String {
        common::label(&self.member)
    }
}

/// Builds the action results and the failure message (if any) from what was gathered.
pub fn health_report(
    members: &[MemberHealth],
    alarms: &[(u64, String)],
) -> (Vec<(String, String)>, Option<String>) {
    let mut r = Vec::new();
    let mut bad = Vec::new();
    let leader_id = members
        .iter()
        .find_map(|m| m.status.as_ref().ok().map(|s| s.leader).filter(|l| *l != 0));
    let leader = members.iter().find(|m| Some(m.member.id) == leader_id);
    for m in members {
        let p = format!("members.{}", common::key_part(&m.label()));
        r.push((format!("{p}.id"), format!("{:x}", m.member.id)));
        r.push((format!("{p}.learner"), m.member.is_learner.to_string()));
        r.push((
            format!("{p}.leader"),
            (Some(m.member.id) == leader_id).to_string(),
        ));
        if let Ok(s) = &m.status {
            r.push((format!("{p}.version"), s.version.clone()));
            r.push((format!("{p}.db-size"), s.db_size.to_string()));
            r.push((format!("{p}.raft-term"), s.raft_term.to_string()));
            r.push((format!("{p}.raft-index"), s.raft_index.to_string()));
        }
        let problem = m.problem();
        r.push((format!("{p}.healthy"), problem.is_none().to_string()));
        if let Some(why) = problem {
            r.push((format!("{p}.error"), why.clone()));
            bad.push(format!("{} ({why})", m.label()));
        }
    }
    let alarm_text: Vec<String> = alarms
        .iter()
        .map(|(id, a)| {
            let on = members.iter().find(|m| m.member.id == *id);
            format!("{a} on {}", on.map_or(format!("{id:x}"), |m| m.label()))
        })
        .collect();
    if !alarm_text.is_empty() {
        bad.push(format!("alarms: {}", alarm_text.join(", ")));
    }
    let leader_name = leader.map_or("none".to_string(), |l| l.label());
    if leader.is_none() {
        bad.push("no Raft leader".into());
    }
    r.push(("leader".into(), leader_name.clone()));
    if let Some(Ok(s)) = leader.map(|l| &l.status) {
        r.push(("raft-term".into(), s.raft_term.to_string()));
        r.push(("raft-index".into(), s.raft_index.to_string()));
    }
    r.push(("alarms".into(), common::list_or_none(&alarm_text)));
    let healthy = bad.is_empty() && !members.is_empty();
    r.push((
        "verdict".into(),
        if healthy { "healthy" } else { "unhealthy" }.into(),
    ));
    let n = members.len();
    let output = match healthy {
        true => format!("cluster is healthy: {n} members, Raft leader {leader_name}"),
        false => format!("cluster is unhealthy: {}", bad.join("; ")),
    };
    r.push(("output".into(), output.clone()));
    (r, (!healthy).then_some(output))
}

/// Why a member did not answer, without repeating its URL.
fn why_not(endpoint: &str, e: EtcdError) -> String {
    match e {
        EtcdError::Unreachable { detail, .. } => {
            let detail = detail
                .strip_prefix(endpoint)
                .map(|d| d.trim_start_matches(':').trim())
                .unwrap_or(&detail);
            format!("does not answer at {endpoint}: {detail}")
        }
        other => other.to_string(),
    }
}

/// etcd's `memberID:<decimal> alarm:NOSPACE` as `alarm NOSPACE on etcd0`.
fn tidy(error: &str, ids: &[(u64, String)]) -> String {
    let parse = || {
        let (member, alarm) = error.trim().split_once(' ')?;
        let id: u64 = member.strip_prefix("memberID:")?.parse().ok()?;
        let alarm = alarm.trim().strip_prefix("alarm:")?;
        let name = ids
            .iter()
            .find(|(i, _)| *i == id)
            .map_or(format!("{id:x}"), |(_, n)| n.clone());
        Some(format!("alarm {alarm} on {name}"))
    };
    parse().unwrap_or_else(|| error.trim().to_string())
}

/// The action.
pub fn run(a: &Action, r: &mut Results) -> Result<(), Stop> {
    let endpoints = common::endpoints(a);
    let members = match a.etcd.member_list(&endpoints) {
        Ok(m) => m,
        Err(e) => {
            r.set("verdict", "unhealthy");
            return super::fail(format!(
                "cluster is unhealthy: cannot list members: {e}; check `juju status` and \
                 `systemctl status etcd` on the units"
            ));
        }
    };
    let ids: Vec<(u64, String)> = members.iter().map(|m| (m.id, common::label(m))).collect();
    let report: Vec<MemberHealth> = members
        .into_iter()
        .map(|member| {
            let status = match member.client_urls.first() {
                Some(ep) => a.etcd.status(ep).map_err(|e| why_not(ep, e)).map(|mut s| {
                    s.errors = s.errors.iter().map(|e| tidy(e, &ids)).collect();
                    s
                }),
                None => Err("not started".into()),
            };
            MemberHealth { member, status }
        })
        .collect();
    let alarms = a.etcd.alarms(&endpoints).unwrap_or_default();
    let (results, failure) = health_report(&report, &alarms);
    for (k, v) in results {
        r.set(k, v);
    }
    match failure {
        Some(msg) => super::fail(format!(
            "{msg}. Check those members' units and machines with `juju status` (the \
             `member-list` action maps members to units); clear alarms with `alarm-disarm` once \
             their cause is fixed"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::fakes::{FakeEtcd, FakeJuju};
    use serde_json::json;

    #[test]
    fn healthy_cluster() {
        let juju = FakeJuju::new("etcd/0", json!({}));
        let etcd = FakeEtcd::healthy(3);
        juju.run("health", &etcd);
        assert_eq!(juju.failed(), None);
        juju.assert_result("verdict", "healthy");
        juju.assert_result("leader", "etcd0");
        for i in 0..3 {
            let key = format!("members.etcd{i}.healthy");
            juju.assert_result(&key, "true");
        }
        let out = juju.result("output").unwrap();
        assert!(out.contains("cluster is healthy: 3 members"), "{out}");
    }

    #[test]
    fn a_dead_member_fails_the_action_naming_it() {
        let juju = FakeJuju::new("etcd/0", json!({}));
        let etcd = FakeEtcd::healthy(3);
        etcd.kill(2);
        juju.run("health", &etcd);
        juju.failure_starting("cluster is unhealthy: etcd2 (");
        juju.assert_result("members.etcd2.healthy", "false");
        juju.assert_result("members.etcd1.healthy", "true");
    }

    #[test]
    fn member_errors_are_readable() {
        let ids = [(15376906988943787936u64, "etcd0".to_string())];
        assert_eq!(
            super::tidy("memberID:15376906988943787936 alarm:NOSPACE ", &ids),
            "alarm NOSPACE on etcd0"
        );
        assert_eq!(super::tidy("something else", &ids), "something else");
        let e = crate::etcd::EtcdError::Unreachable {
            op: "status".into(),
            endpoints: "http://10.0.0.2:2379".into(),
            detail: "http://10.0.0.2:2379: tcp connect error".into(),
        };
        assert_eq!(
            super::why_not("http://10.0.0.2:2379", e),
            "does not answer at http://10.0.0.2:2379: tcp connect error"
        );
    }

    #[test]
    fn alarms_make_it_unhealthy() {
        let juju = FakeJuju::new("etcd/0", json!({}));
        let etcd = FakeEtcd::healthy(1);
        etcd.alarms.borrow_mut().push((1, "NOSPACE".into()));
        juju.run("health", &etcd);
        juju.assert_result("alarms", "NOSPACE on etcd0");
        assert!(juju.failed().unwrap().contains("alarms: NOSPACE on etcd0"));
    }

    #[test]
    fn a_corrupt_alarm_of_the_cluster_makes_it_unhealthy() {
        let juju = FakeJuju::new("etcd/0", json!({}));
        let etcd = FakeEtcd::healthy(3);
        // etcd 3.4/3.5 raise CORRUPT with member id 0: no member in particular.
        etcd.alarms.borrow_mut().push((0, "CORRUPT".into()));
        juju.run("health", &etcd);
        juju.assert_result("alarms", "CORRUPT on 0");
        juju.assert_result("verdict", "unhealthy");
        assert!(juju.failed().unwrap().contains("alarms: CORRUPT on 0"));
    }
}

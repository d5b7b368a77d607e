/*!
Actions. `health`: every member's health, the Raft leader, term, index, db size, version and
alarms, with a verdict; fails (action-fail) naming each unhealthy member.

Result keys (dotted, lowercase): `verdict`, `leader`, `raft-term`, `raft-index`, `alarms`,
`members.<name>.{id,healthy,learner,leader,version,db-size,raft-term,raft-index,error}`, and a
readable `output` that includes "cluster is healthy" when it is.
*/

use crate::etcd::{Etcd, Member, MemberStatus};
use crate::hooktools::{Juju, JujuError};
use crate::observe::keys;
use crate::render::url;

/// Why an action could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// A hook tool failed.
    #[error(transparent)]
    Juju(#[from] JujuError),
}

/// Runs the named action; unknown names fail the action, not the process.
pub fn run(name: &str, juju: &dyn Juju, etcd: &dyn Etcd) -> Result<(), ActionError> {
    let params = juju.action_get()?;
    let unknown: Vec<&String> = params
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    if !unknown.is_empty() {
        let keys: Vec<&str> = unknown.iter().map(|k| k.as_str()).collect();
        let msg = format!("{name} takes no parameters, got: {}", keys.join(", "));
        return Ok(juju.action_fail(&msg)?);
    }
    match name {
        "health" => health(juju, etcd),
        other => Ok(juju.action_fail(&format!("unknown action {other}: this charm has `health`"))?),
    }
}

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
        match self.member.name.is_empty() {
            true => format!("{:x}", self.member.id),
            false => self.member.name.clone(),
        }
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
        let p = format!("members.{}", m.label());
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
        .map(|(id, a)| format!("{a} on {id:x}"))
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
    let alarms = if alarm_text.is_empty() {
        "none".to_string()
    } else {
        alarm_text.join(", ")
    };
    r.push(("alarms".into(), alarms));
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

fn health(juju: &dyn Juju, etcd: &dyn Etcd) -> Result<(), ActionError> {
    let cfg = crate::config::CharmConfig::try_from(&juju.config_get()?).unwrap_or_default();
    let mut endpoints = vec![url("127.0.0.1", cfg.port)];
    let leader_data = juju.leader_get().unwrap_or_default();
    let published = leader_data
        .get(keys::ENDPOINTS)
        .cloned()
        .unwrap_or_default();
    endpoints.extend(
        published
            .split(',')
            .filter(|e| !e.is_empty())
            .map(str::to_string),
    );
    let members = match etcd.member_list(&endpoints) {
        Ok(m) => m,
        Err(e) => {
            let msg = format!("cluster is unhealthy: cannot list members: {e}");
            juju.action_set(&[
                ("verdict".into(), "unhealthy".into()),
                ("output".into(), msg.clone()),
            ])?;
            return Ok(juju.action_fail(&msg)?);
        }
    };
    let report: Vec<MemberHealth> = members
        .into_iter()
        .map(|member| {
            let status = match member.client_urls.first() {
                Some(ep) => etcd.status(ep).map_err(|e| e.to_string()),
                None => Err("not started".into()),
            };
            MemberHealth { member, status }
        })
        .collect();
    let alarms = etcd.alarms(&endpoints).unwrap_or_default();
    let (results, failure) = health_report(&report, &alarms);
    juju.action_set(&results)?;
    if let Some(msg) = failure {
        juju.action_fail(&msg)?;
    }
    Ok(())
}

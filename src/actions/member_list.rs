/*!
`member-list` (any unit): the members with their ids, names, peer and client URLs, learner flag,
whether they have started, and which Juju unit each belongs to.

Result keys: `count`, `members.<name>.{id,name,peer-urls,client-urls,learner,started,unit}`
(an unstarted member is keyed by its hex id), `output` (one line per member).
*/

use super::{common, Action, Results, Stop};

/// The action.
pub fn run(a: &Action, r: &mut Results) -> Result<(), Stop> {
    let endpoints = common::endpoints(a);
    let mut members = a.etcd.member_list(&endpoints).or_else(|e| {
        super::fail(format!(
            "cannot list members: {e}; is etcd running on this unit (`juju status`)? Try \
             another unit"
        ))
    })?;
    members.sort_by_key(|m| (m.name.is_empty(), m.name.clone(), m.id));
    let units = common::units(a);
    let mut lines = Vec::new();
    for m in &members {
        let label = common::label(m);
        let p = format!("members.{}", common::key_part(&label));
        let unit = common::unit_of(&units, m).map_or("none", |u| u.unit.as_str());
        r.set(format!("{p}.id"), format!("{:x}", m.id));
        r.set(format!("{p}.name"), &m.name);
        r.set(format!("{p}.peer-urls"), m.peer_urls.join(","));
        r.set(format!("{p}.client-urls"), m.client_urls.join(","));
        r.set(format!("{p}.learner"), m.is_learner);
        r.set(format!("{p}.started"), m.started());
        r.set(format!("{p}.unit"), unit);
        let role = match (m.started(), m.is_learner) {
            (false, _) => "unstarted",
            (true, true) => "learner",
            (true, false) => "voter",
        };
        lines.push(format!(
            "{label} ({:x}, {role}) unit {unit}: peer {} client {}",
            m.id,
            m.peer_urls.join(","),
            match m.client_urls.is_empty() {
                true => "-".to_string(),
                false => m.client_urls.join(","),
            }
        ));
    }
    r.set("count", members.len());
    r.set("output", lines.join("\n"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::etcd::Member;
    use crate::fakes::{FakeEtcd, FakeJuju};
    use crate::juju::Settings;
    use serde_json::json;

    #[test]
    fn members_with_their_units() {
        let mut juju = FakeJuju::new("etcd/0", json!({}));
        for (u, ip) in [("etcd/1", 2), ("etcd/3", 9)] {
            let url = format!("http://10.0.0.{ip}:2380");
            juju.peers
                .insert(u.into(), Settings::from([("peer-url".into(), url)]));
        }
        let mut etcd = FakeEtcd::healthy(2);
        etcd.members.push(Member {
            id: 0xbeef,
            peer_urls: vec!["http://10.0.0.9:2380".into()],
            is_learner: true,
            ..Member::default()
        });
        juju.run("member-list", &etcd);
        assert_eq!(juju.failed(), None);
        juju.assert_result("count", "3");
        juju.assert_result("members.etcd0.unit", "etcd/0");
        juju.assert_result("members.etcd1.unit", "etcd/1");
        juju.assert_result("members.beef.unit", "etcd/3");
        juju.assert_result("members.beef.learner", "true");
        juju.assert_result("members.beef.started", "false");
        juju.assert_result("members.etcd1.client-urls", "http://10.0.0.2:2379");
        let out = juju.result("output").unwrap();
        assert!(out.contains("beef (beef, unstarted) unit etcd/3"), "{out}");
    }

    #[test]
    fn no_answer_fails() {
        let juju = FakeJuju::new("etcd/0", json!({}));
        let etcd = FakeEtcd::healthy(1);
        etcd.kill(0);
        juju.run("member-list", &etcd);
        juju.failure_starting("cannot list members");
    }
}

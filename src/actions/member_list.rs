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
    let members = match a.etcd.member_list(&endpoints) {
        Ok(m) => m,
        Err(e) => {
            return super::fail(format!(
                "cannot list members: {e}; is etcd running on this unit (`juju status`)? Try \
                 another unit"
            ))
        }
    };
    let mut members = members;
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
    use super::super::fakes::{FakeEtcd, FakeJuju};
    use super::super::run as run_action;
    use crate::etcd::Member;
    use crate::hooktools::Settings;
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
        run_action(&juju.ctx(), "member-list", &juju, &etcd).unwrap();
        assert_eq!(juju.failed(), None);
        assert_eq!(juju.result("count").as_deref(), Some("3"));
        assert_eq!(juju.result("members.etcd0.unit").as_deref(), Some("etcd/0"));
        assert_eq!(juju.result("members.etcd1.unit").as_deref(), Some("etcd/1"));
        assert_eq!(juju.result("members.beef.unit").as_deref(), Some("etcd/3"));
        assert_eq!(juju.result("members.beef.learner").as_deref(), Some("true"));
        assert_eq!(
            juju.result("members.beef.started").as_deref(),
            Some("false")
        );
        assert_eq!(
            juju.result("members.etcd1.client-urls").as_deref(),
            Some("http://10.0.0.2:2379")
        );
        let out = juju.result("output").unwrap();
        assert!(out.contains("beef (beef, unstarted) unit etcd/3"), "{out}");
    }

    #[test]
    fn no_answer_fails() {
        let juju = FakeJuju::new("etcd/0", json!({}));
        let etcd = FakeEtcd::healthy(1);
        etcd.kill(0);
        run_action(&juju.ctx(), "member-list", &juju, &etcd).unwrap();
        assert!(juju.failed().unwrap().starts_with("cannot list members"));
    }
}

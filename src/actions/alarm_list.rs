/*!
`alarm-list` (any unit): the cluster's active alarms (`NOSPACE`: a member's database reached
the quota, the cluster takes only reads and deletes; `CORRUPT`: a member's data differs).

Result keys: `count`, `alarms` (`NOSPACE on etcd1, …` or `none`),
`members.<name>.alarms`, `output` (with what to do).
*/

use super::{common, Action, Results, Stop};
use crate::etcd::Member;

/// Active alarms: (member id, kind).
pub type Alarms = Vec<(u64, String)>;

/// `NOSPACE on etcd1`, naming members by name when known.
pub fn describe(alarms: &[(u64, String)], members: &[Member]) -> Vec<String> {
    alarms
        .iter()
        .map(|(id, kind)| format!("{kind} on {}", member_label(*id, members)))
        .collect()
}

/// A member's name, else its hex id.
pub fn member_label(id: u64, members: &[Member]) -> String {
    members
        .iter()
        .find(|m| m.id == id)
        .map_or(format!("{id:x}"), common::label)
}

/// What to do about these alarms.
pub fn advice(alarms: &[(u64, String)]) -> &'static str {
    let has = |k: &str| alarms.iter().any(|(_, a)| a == k);
    match (has("NOSPACE"), has("CORRUPT")) {
        (_, true) => {
            "CORRUPT: a member's data differs from the others; replace that member (remove its \
             unit, add a new one) before disarming"
        }
        (true, false) => {
            "NOSPACE: the database reached its quota and etcd takes only reads and deletes; \
             delete what is not needed, run `compact physical=true` then `defrag all=true` (or raise \
             quota_backend_bytes), then `alarm-disarm`"
        }
        (false, false) => "no alarm is active",
    }
}

/// The active alarms and the members (to name them); when the alarms cannot be listed, fails
/// with `cannot list alarms: <error>; <then>`.
pub fn alarms_and_members(
    a: &Action,
    endpoints: &[String],
    then: &str,
) -> Result<(Alarms, Vec<Member>), Stop> {
    let alarms = a
        .etcd
        .alarms(endpoints)
        .or_else(|e| super::fail(format!("cannot list alarms: {e}; {then}")))?;
    let members = a.etcd.member_list(endpoints).unwrap_or_default();
    Ok((alarms, members))
}

/// The action.
pub fn run(a: &Action, r: &mut Results) -> Result<(), Stop> {
    let endpoints = common::endpoints(a);
    let then = "check `health` and try on another unit";
    let (alarms, members) = alarms_and_members(a, &endpoints, then)?;
    let listed = describe(&alarms, &members);
    for (id, kind) in &alarms {
        let key = format!(
            "members.{}.alarms",
            common::key_part(&member_label(*id, &members))
        );
        let mut kinds: Vec<String> = r
            .get(&key)
            .map(|v| v.split(',').map(String::from).collect())
            .unwrap_or_default();
        kinds.push(kind.clone());
        r.set(key, kinds.join(","));
    }
    r.set("count", alarms.len());
    r.set("alarms", common::list_or_none(&listed));
    let output = match listed.is_empty() {
        true => "no alarm is active".to_string(),
        false => format!("active alarms: {}. {}", listed.join(", "), advice(&alarms)),
    };
    r.set("output", output);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::fakes::{FakeEtcd, FakeJuju};
    use serde_json::json;

    #[test]
    fn lists_alarms_by_member_name() {
        let juju = FakeJuju::new("etcd/0", json!({}));
        let etcd = FakeEtcd::healthy(3);
        etcd.alarms
            .borrow_mut()
            .extend([(2, "NOSPACE".to_string()), (3, "NOSPACE".to_string())]);
        juju.run("alarm-list", &etcd);
        assert_eq!(juju.failed(), None);
        juju.assert_result("count", "2");
        juju.assert_result("alarms", "NOSPACE on etcd1, NOSPACE on etcd2");
        juju.assert_result("members.etcd2.alarms", "NOSPACE");
        assert!(juju
            .result("output")
            .unwrap()
            .contains("run `compact physical=true` then `defrag all=true`"));
    }

    #[test]
    fn none() {
        let juju = FakeJuju::new("etcd/0", json!({}));
        juju.run("alarm-list", &FakeEtcd::healthy(1));
        juju.assert_result("alarms", "none");
        juju.assert_result("count", "0");
    }
}

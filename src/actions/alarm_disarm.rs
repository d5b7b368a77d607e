/*!
`alarm-disarm` (any unit): disarms the active alarms once their cause is fixed.

`alarm=all` (default) disarms `NOSPACE` alarms and refuses while a `CORRUPT` alarm is active
(that one needs the member replaced, then `alarm=corrupt`). `NOSPACE` is disarmed only when
every member's database is below 90 % of the quota again (after `compact` and `defrag
all=true`): etcd refuses a write when size + request exceeds the quota, so a member can raise
NOSPACE while just under it, and disarming earlier would only raise it again at the next write.

Result keys: `disarmed`, `remaining`, `output`.
*/

use super::alarm_list::{advice, alarms_and_members, describe};
use super::{common, Action, Results, Stop};
use crate::core::render::EtcdConfig;
use crate::machine::host;
use crate::paths;

/// etcd's default backend quota (2 GiB), used when `quota-backend-bytes` is 0.
const DEFAULT_QUOTA: u64 = 2 * 1024 * 1024 * 1024;

/// The share of the quota (in percent) a member's database must be under for NOSPACE to be disarmed.
const DISARM_BELOW_PERCENT: u64 = 90;

/// The quota the running etcd enforces: that of the config it runs, else the charm config's.
fn quota(a: &Action) -> u64 {
    let rendered = host::read(paths::CONFIG_FILE);
    let q = rendered
        .as_deref()
        .and_then(EtcdConfig::parse)
        .map_or(a.config().quota_backend_bytes, |c| c.quota_backend_bytes);
    match q {
        0 => DEFAULT_QUOTA,
        q => q,
    }
}

/// The action.
pub fn run(a: &Action, r: &mut Results) -> Result<(), Stop> {
    let which = a.params.text("alarm").unwrap_or("all").to_uppercase();
    let endpoints = common::endpoints(a);
    let then = "nothing was disarmed. Check `health`";
    let (alarms, members) = alarms_and_members(a, &endpoints, then)?;
    let selected: Vec<(u64, String)> = alarms
        .iter()
        .filter(|(_, k)| which == "ALL" || *k == which)
        .cloned()
        .collect();
    if selected.is_empty() {
        let others = describe(&alarms, &members);
        let what = match which.as_str() {
            "ALL" => "alarm".to_string(),
            w => format!("{w} alarm"),
        };
        r.set("disarmed", "none");
        r.set("remaining", common::list_or_none(&others));
        r.set("output", format!("no {what} is active: nothing to disarm"));
        return Ok(());
    }
    let corrupt: Vec<(u64, String)> = selected
        .iter()
        .filter(|(_, k)| k == "CORRUPT")
        .cloned()
        .collect();
    if which == "ALL" && !corrupt.is_empty() {
        return super::fail(format!(
            "{} is active: nothing was disarmed. {}; then disarm it with alarm=corrupt (and \
             NOSPACE with alarm=nospace)",
            describe(&corrupt, &members).join(", "),
            advice(&corrupt)
        ));
    }
    if selected.iter().any(|(_, k)| k == "NOSPACE") {
        let quota = quota(a);
        let limit = quota / 100 * DISARM_BELOW_PERCENT;
        let full: Vec<String> = members
            .iter()
            .filter(|m| m.started() && !m.is_learner)
            .filter_map(|m| {
                let s = a.etcd.status(m.client_urls.first()?).ok()?;
                (s.db_size.max(0) as u64 >= limit).then(|| {
                    format!(
                        "{} ({})",
                        common::label(m),
                        common::human_bytes(s.db_size as u64)
                    )
                })
            })
            .collect();
        if !full.is_empty() {
            return super::fail(format!(
                "the database is still at or over {DISARM_BELOW_PERCENT}% of the {} quota on {}: \
                 nothing was disarmed, NOSPACE would be raised again at the next write. Delete what is not needed, \
                 run `compact physical=true` then `defrag all=true` (or raise quota_backend_bytes), then \
                 alarm-disarm again",
                common::human_bytes(quota),
                full.join(", ")
            ));
        }
    }
    let mut disarmed = Vec::new();
    for (id, kind) in &selected {
        let what = describe(&[(*id, kind.clone())], &members).join("");
        a.progress(&format!("disarming {what}"));
        match a.etcd.alarm_disarm(&endpoints, *id, kind) {
            Ok(()) => disarmed.push(what),
            Err(e) => {
                r.set("disarmed", disarmed.join(", "));
                return super::fail(format!(
                    "disarming {what} failed: {e}; check `health` and run alarm-disarm again"
                ));
            }
        }
    }
    let left = a.etcd.alarms(&endpoints).unwrap_or_default();
    let remaining = describe(&left, &members);
    r.set("disarmed", disarmed.join(", "));
    r.set("remaining", common::list_or_none(&remaining));
    let still: Vec<&(u64, String)> = left
        .iter()
        .filter(|a| selected.iter().any(|s| s == *a))
        .collect();
    if !still.is_empty() {
        return super::fail(format!(
            "disarmed {} but etcd raised them again: {}. Fix the cause first ({})",
            disarmed.join(", "),
            remaining.join(", "),
            advice(&left)
        ));
    }
    r.set(
        "output",
        format!(
            "disarmed {}; active alarms now: {}",
            disarmed.join(", "),
            common::list_or_none(&remaining)
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::fakes::{client_url, status_of, FakeEtcd, FakeJuju};
    use serde_json::json;

    fn nospace() -> FakeEtcd {
        let etcd = FakeEtcd::healthy(3);
        etcd.alarms
            .borrow_mut()
            .extend([(1, "NOSPACE".to_string()), (2, "NOSPACE".to_string())]);
        etcd
    }

    fn quota(q: u64) -> serde_json::Map<String, serde_json::Value> {
        json!({"quota_backend_bytes": q, "tls": false})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn disarms_nospace_once_below_the_quota() {
        let mut juju = FakeJuju::new("etcd/0", json!({}));
        juju.config = quota(16 * 1024 * 1024);
        let etcd = nospace();
        juju.run("alarm-disarm", &etcd);
        assert_eq!(juju.failed(), None);
        juju.assert_result("disarmed", "NOSPACE on etcd0, NOSPACE on etcd1");
        juju.assert_result("remaining", "none");
        assert!(etcd.alarms.borrow().is_empty());
    }

    #[test]
    fn refuses_while_a_member_is_still_over_the_quota() {
        let mut juju = FakeJuju::new("etcd/0", json!({}));
        juju.config = quota(16 * 1024 * 1024);
        let etcd = nospace();
        let mut full = status_of(3, 1);
        full.db_size = 15 * 1024 * 1024;
        etcd.status.borrow_mut().insert(client_url(2), Ok(full));
        juju.run("alarm-disarm", &etcd);
        let msg = juju.failed().unwrap();
        assert!(
            msg.starts_with(
                "the database is still at or over 90% of the 16.0 MiB quota on etcd2 (15.0 MiB): \
                 nothing was disarmed"
            ),
            "{msg}"
        );
        assert_eq!(etcd.alarms.borrow().len(), 2);
    }

    #[test]
    fn corrupt_needs_to_be_named() {
        let juju = FakeJuju::new("etcd/0", json!({}));
        let etcd = nospace();
        etcd.alarms.borrow_mut().push((3, "CORRUPT".into()));
        juju.run("alarm-disarm", &etcd);
        juju.failure_starting("CORRUPT on etcd2 is active: nothing was disarmed");
        assert_eq!(etcd.alarms.borrow().len(), 3);

        let juju = FakeJuju::new("etcd/0", json!({"alarm": "corrupt"}));
        juju.run("alarm-disarm", &etcd);
        assert_eq!(juju.failed(), None);
        juju.assert_result("disarmed", "CORRUPT on etcd2");
    }

    #[test]
    fn nothing_to_disarm() {
        let juju = FakeJuju::new("etcd/0", json!({}));
        juju.run("alarm-disarm", &FakeEtcd::healthy(3));
        assert_eq!(juju.failed(), None);
        juju.assert_result("output", "no alarm is active: nothing to disarm");
    }
}

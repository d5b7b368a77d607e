//! The verdict on one run: every check's result in one serialisable report.

use crate::checks::{change_log, finals, logs_agree, lost_writes, revisions_grow};
use crate::history::{counts, longest_unavailability, History, Log};
use crate::linearizable::{check, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many search steps the linearizability checker may take on one key.
pub const MAX_STEPS: u64 = 50_000_000;

/// The checks' results for one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Operations that completed ok.
    pub ok: usize,
    /// Operations known not to have taken effect.
    pub failed: usize,
    /// Operations that may or may not have taken effect.
    pub indeterminate: usize,
    /// The longest time in seconds with no operation completing ok.
    pub longest_unavailability_s: f64,
    /// "yes", "no" or "unknown" (the search gave up).
    pub linearizable: String,
    /// Acknowledged writes (puts and compare-and-swaps that held).
    pub acknowledged_writes: usize,
    /// Acknowledged writes missing from a member, summed over the members.
    pub lost_writes: usize,
    /// Changes the client's watch received.
    pub watch_changes: usize,
    /// Times the client's watch stream broke and was resumed.
    pub watch_resumed: usize,
    /// The highest revision a member's history was compacted to when it was read (0: none):
    /// below it, a member's final values stand for its change log.
    #[serde(default)]
    pub compacted: i64,
    /// Every problem found; empty when the run passed.
    pub problems: Vec<String>,
}

/// Judges a history against the change logs read from each member at the end (by its name);
/// with no member, the history alone.
pub fn judge(h: &History, members: &BTreeMap<String, Log>) -> Report {
    let (ok, failed, indeterminate) = counts(&h.ops);
    let mut problems = vec![];
    let linearizable = match check(&h.ops, MAX_STEPS) {
        Verdict::Linearizable => "yes",
        Verdict::NotLinearizable { key, detail } => {
            problems.push(format!("not linearizable on {key}: {detail}"));
            "no"
        }
        Verdict::Unknown { key } => {
            problems.push(format!(
                "linearizability of {key} unknown after {MAX_STEPS} steps"
            ));
            "unknown"
        }
    };
    problems.extend(revisions_grow(&h.ops));
    if h.watch_synced_to == 0 {
        problems.push("the watch never caught up with the final revision".into());
    }
    let watch = Log {
        changes: h.watch.clone(),
        synced_to: h.watch_synced_to,
        compacted: h.watch_compacted,
        finals: vec![],
    };
    problems.extend(change_log("watch", &watch, &h.ops));
    for (name, log) in members {
        problems.extend(change_log(name, log, &h.ops));
        problems.extend(finals(name, log, &h.ops));
    }
    let mut logs = members.clone();
    logs.insert("watch".into(), watch);
    problems.extend(logs_agree(&logs));
    Report {
        ok,
        failed,
        indeterminate,
        longest_unavailability_s: longest_unavailability(&h.ops),
        linearizable: linearizable.into(),
        acknowledged_writes: h
            .ops
            .iter()
            .filter(|o| o.acknowledged_write().is_some())
            .count(),
        lost_writes: members.values().map(|log| lost_writes(log, &h.ops)).sum(),
        watch_changes: h.watch.len(),
        watch_resumed: h.watch_errors.len(),
        compacted: members.values().map(|l| l.compacted).max().unwrap_or(0),
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Call, Change, Op, Outcome};

    fn put(v: &str, t: u64, rev: i64) -> Op {
        Op {
            client: 0,
            invoked_ns: t,
            completed_ns: t + 1,
            call: Call::Put {
                key: "p/k".into(),
                value: v.into(),
            },
            outcome: Outcome::Ok {
                revision: rev,
                value: None,
                succeeded: false,
            },
        }
    }
    fn change(v: &str, rev: i64) -> Change {
        Change {
            key: "p/k".into(),
            value: Some(v.into()),
            mod_revision: rev,
        }
    }

    /// A member's log of `changes` read up to `synced_to` from `compacted`, ending at b (3).
    fn member(changes: Vec<Change>, compacted: i64) -> Log {
        Log {
            changes,
            synced_to: 3,
            compacted,
            finals: vec![change("b", 3)],
        }
    }

    #[test]
    fn a_clean_run_has_no_problems_and_a_lost_write_is_counted_per_member() {
        let h = History {
            prefix: "p/".into(),
            start_revision: 1,
            ops: vec![put("a", 0, 2), put("b", 10, 3)],
            watch: vec![change("a", 2), change("b", 3)],
            watch_errors: vec![],
            watch_synced_to: 3,
            watch_compacted: 0,
        };
        let full = member(vec![change("a", 2), change("b", 3)], 0);
        let mut members = BTreeMap::from([("m0".to_string(), full)]);
        let r = judge(&h, &members);
        assert_eq!(
            (r.ok, r.linearizable.as_str(), r.lost_writes),
            (2, "yes", 0)
        );
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.longest_unavailability_s, 10e-9);

        // Compacted to 3 before it was read: a (2) is kept by the final value b (3).
        members.insert("m2".into(), member(vec![change("b", 3)], 3));
        let r = judge(&h, &members);
        assert_eq!((r.lost_writes, r.compacted), (0, 3));
        assert!(r.problems.is_empty(), "{:?}", r.problems);

        members.insert("m1".into(), member(vec![change("a", 2)], 0));
        let r = judge(&h, &members);
        assert_eq!(r.lost_writes, 1);
        assert!(!r.problems.is_empty());
    }
}

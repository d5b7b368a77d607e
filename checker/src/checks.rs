//! The checks besides linearizability: revisions only grow in real time, the watch saw every
//! committed change in order exactly once, and every member holds every acknowledged write.

use crate::history::{Change, Log, Op};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Problems with response revisions: an operation invoked after another completed must not
/// answer with a lower revision (etcd's revision is its linearization order).
pub fn revisions_grow(ops: &[Op]) -> Vec<String> {
    // (time, revision, index) of the ok operations, sorted by time.
    let by = |time: fn(&Op) -> u64| {
        let mut v: Vec<(u64, i64, usize)> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.ok_revision().map(|r| (time(o), r, i)))
            .collect();
        v.sort_unstable();
        v
    };
    let done = by(|o| o.completed_ns);
    let started = by(|o| o.invoked_ns);
    let mut problems = vec![];
    // Sweep by invocation time, keeping the highest revision of everything completed before.
    let (mut k, mut highest): (usize, Option<(i64, usize)>) = (0, None);
    for (invoked, rev, i) in started {
        while k < done.len() && done[k].0 < invoked {
            if highest.is_none_or(|(r, _)| done[k].1 > r) {
                highest = Some((done[k].1, done[k].2));
            }
            k += 1;
        }
        if let Some((r, j)) = highest.filter(|&(r, _)| rev < r) {
            problems.push(format!(
                "revision went back from {r} to {rev}: {:?} completed before {:?} was invoked",
                ops[j].call, ops[i].call
            ));
        }
    }
    problems
}

/// Problems with a change log (a watch's events, or a member's own): revisions strictly
/// increasing, every change one that some put or compare-and-swap of the history tried to write
/// (no phantom, no duplicate), and every acknowledged write at or above the log's compacted
/// revision present with its key and revision (those below are checked by [`finals`]).
pub fn change_log(what: &str, log: &Log, ops: &[Op]) -> Vec<String> {
    let mut problems = vec![];
    for pair in log.changes.windows(2) {
        if pair[1].mod_revision <= pair[0].mod_revision {
            problems.push(format!(
                "{what}: revision {} came after {} ({} after {})",
                pair[1].mod_revision, pair[0].mod_revision, pair[1].key, pair[0].key
            ));
        }
    }
    let attempted = attempted(ops);
    let mut seen: HashMap<(&str, Option<&str>), i64> = HashMap::new();
    for c in &log.changes {
        if let Some(first) = seen.insert((&c.key, c.value.as_deref()), c.mod_revision) {
            problems.push(format!(
                "{what}: {}={:?} seen twice, at revisions {first} and {}",
                c.key, c.value, c.mod_revision
            ));
        }
        if !attempted(c) {
            problems.push(format!(
                "{what}: change {}={:?} at revision {} was never written",
                c.key, c.value, c.mod_revision
            ));
        }
    }
    let by_value = by_value(&log.changes);
    for (key, v, rev) in acknowledged(ops).filter(|&(_, _, rev)| rev >= log.compacted) {
        match by_value.get(&(key, v)) {
            None => problems.push(format!(
                "{what}: acknowledged write {key}={v} (revision {rev}) is missing"
            )),
            Some(&r) if r != rev => problems.push(format!(
                "{what}: acknowledged write {key}={v} has revision {r}, acknowledged as {rev}"
            )),
            Some(_) => {}
        }
    }
    problems
}

/// Problems with a member's final values: each one some operation tried to write, the last
/// change of its key in the log when the log has one (else older than the log's compacted
/// revision), and no acknowledged write below the compacted revision overtaken by an older one
/// (see [`kept_below_compaction`]).
pub fn finals(what: &str, log: &Log, ops: &[Op]) -> Vec<String> {
    let attempted = attempted(ops);
    let mut last: HashMap<&str, &Change> = HashMap::new();
    for c in &log.changes {
        last.insert(&c.key, c);
    }
    let mut problems = vec![];
    for f in &log.finals {
        if !attempted(f) {
            problems.push(format!(
                "{what}: {}={:?} at revision {} was never written",
                f.key, f.value, f.mod_revision
            ));
        }
        match last.remove(f.key.as_str()) {
            Some(c) if c != f => problems.push(format!(
                "{what}: {} ends as {:?} at revision {}, its last change is {:?} at {}",
                f.key, f.value, f.mod_revision, c.value, c.mod_revision
            )),
            None if f.mod_revision >= log.compacted => problems.push(format!(
                "{what}: {} ends as {:?} at revision {}, a change missing from its log",
                f.key, f.value, f.mod_revision
            )),
            _ => {}
        }
    }
    for c in last.into_values() {
        problems.push(format!(
            "{what}: {} changed to {:?} at revision {}, and has no final value",
            c.key, c.value, c.mod_revision
        ));
    }
    for (key, v, rev) in acknowledged(ops).filter(|&(_, _, rev)| rev < log.compacted) {
        if !kept_below_compaction(log, key, v, rev) {
            problems.push(format!(
                "{what}: acknowledged write {key}={v} (revision {rev}, below the compaction to \
                 {}) is lost: the key ends older or different",
                log.compacted
            ));
        }
    }
    problems
}

/// Whether an acknowledged write below the log's compacted revision is kept: its key ends at a
/// later revision (the write was overwritten after it took effect), or at its very revision
/// with its value. A key that ends older, or not at all, lost it.
fn kept_below_compaction(log: &Log, key: &str, value: &str, rev: i64) -> bool {
    log.finals.iter().any(|f| {
        f.key == key
            && (f.mod_revision > rev
                || (f.mod_revision == rev && f.value.as_deref() == Some(value)))
    })
}

/// The acknowledged writes as (key, value, revision).
fn acknowledged(ops: &[Op]) -> impl Iterator<Item = (&str, &str, i64)> {
    ops.iter()
        .filter_map(|o| Some((o.call.key(), o.acknowledged_write()?, o.ok_revision()?)))
}

/// Whether some put or compare-and-swap of the history tried to write a change.
fn attempted(ops: &[Op]) -> impl Fn(&Change) -> bool + '_ {
    let tried: HashSet<(&str, &str)> = ops
        .iter()
        .filter_map(|o| Some((o.call.key(), o.call.written()?)))
        .collect();
    move |c| {
        c.value
            .as_deref()
            .is_some_and(|v| tried.contains(&(c.key.as_str(), v)))
    }
}

/// Each put's (key, value) → its revision.
fn by_value(changes: &[Change]) -> HashMap<(&str, &str), i64> {
    changes
        .iter()
        .filter_map(|c| Some(((c.key.as_str(), c.value.as_deref()?), c.mod_revision)))
        .collect()
}

/// The acknowledged writes a member's log lost: missing at their revision from its changes, or,
/// below its compacted revision, not kept in its final values.
pub fn lost_writes(log: &Log, ops: &[Op]) -> usize {
    let have = by_value(&log.changes);
    acknowledged(ops)
        .filter(|&(k, v, rev)| match rev < log.compacted {
            true => !kept_below_compaction(log, k, v, rev),
            false => have.get(&(k, v)) != Some(&rev),
        })
        .count()
}

/// Problems between change logs that must be equal: every member's and the client's watch,
/// compared between the higher of their compacted revisions and the lower of the revisions
/// they were read up to.
pub fn logs_agree(logs: &BTreeMap<String, Log>) -> Vec<String> {
    let mut problems = vec![];
    let mut it = logs.iter();
    let Some((first_name, first)) = it.next() else {
        return problems;
    };
    for (name, log) in it {
        let upto = first.synced_to.min(log.synced_to);
        let from = first.compacted.max(log.compacted);
        let within = |l: &'_ Log| -> Vec<Change> {
            l.changes
                .iter()
                .filter(|c| (from..=upto).contains(&c.mod_revision))
                .cloned()
                .collect()
        };
        let (a, b) = (within(first), within(log));
        if a != b {
            let at = a
                .iter()
                .zip(&b)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            problems.push(format!(
                "{name} and {first_name} disagree from revision {from} to {upto}: {} and {} \
                 changes, first difference at change {at}: {:?} / {:?}",
                b.len(),
                a.len(),
                b.get(at),
                a.get(at)
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Call, Outcome};

    fn write(key: &str, v: &str, t: (u64, u64), rev: i64) -> Op {
        Op {
            client: 0,
            invoked_ns: t.0,
            completed_ns: t.1,
            call: Call::Put {
                key: key.into(),
                value: v.into(),
            },
            outcome: Outcome::Ok {
                revision: rev,
                value: None,
                succeeded: false,
            },
        }
    }
    fn change(key: &str, v: &str, rev: i64) -> Change {
        Change {
            key: key.into(),
            value: Some(v.into()),
            mod_revision: rev,
        }
    }
    /// A log of `changes`, complete up to its last one, never compacted, with no final values.
    fn log(changes: &[Change]) -> Log {
        Log {
            changes: changes.to_vec(),
            synced_to: changes.iter().map(|c| c.mod_revision).max().unwrap_or(0),
            ..Log::default()
        }
    }

    #[test]
    fn revisions_must_not_go_back_in_real_time() {
        let good = [
            write("a", "1", (0, 1), 5),
            write("a", "2", (2, 3), 6),
            // Overlaps the first: any order.
            write("b", "3", (0, 4), 4),
        ];
        assert!(revisions_grow(&good).is_empty());
        let bad = [write("a", "1", (0, 1), 5), write("a", "2", (2, 3), 4)];
        assert_eq!(revisions_grow(&bad).len(), 1);
    }

    #[test]
    fn change_log_must_hold_every_acknowledged_write_once_in_order() {
        let ops = [write("a", "1", (0, 1), 5), write("a", "2", (2, 3), 6)];
        let good = log(&[change("a", "1", 5), change("a", "2", 6)]);
        assert!(change_log("watch", &good, &ops).is_empty());
        assert_eq!(lost_writes(&good, &ops), 0);

        let missing = log(&[change("a", "2", 6)]);
        assert_eq!(change_log("watch", &missing, &ops).len(), 1);
        assert_eq!(lost_writes(&missing, &ops), 1);

        let twice = log(&[
            change("a", "1", 5),
            change("a", "1", 5),
            change("a", "2", 6),
        ]);
        assert_eq!(
            change_log("watch", &twice, &ops).len(),
            2,
            "duplicate, order"
        );

        let reordered = log(&[change("a", "2", 6), change("a", "1", 5)]);
        assert_eq!(change_log("watch", &reordered, &ops).len(), 1);

        let phantom = log(&[
            change("a", "1", 5),
            change("a", "x", 6),
            change("a", "2", 7),
        ]);
        let p = change_log("watch", &phantom, &ops);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(lost_writes(&phantom, &ops), 1, "a=2 at the wrong revision");
    }

    #[test]
    fn below_a_compaction_the_final_values_show_what_was_kept() {
        // a=1 (5), b=3 (6), a=2 (7), b=4 (9) acknowledged; the member's history compacted to 8.
        let ops = [
            write("a", "1", (0, 1), 5),
            write("b", "3", (0, 2), 6),
            write("a", "2", (2, 3), 7),
            write("b", "4", (3, 4), 9),
        ];
        let compacted = |changes: &[Change], finals: &[Change]| Log {
            changes: changes.to_vec(),
            synced_to: 9,
            compacted: 8,
            finals: finals.to_vec(),
        };
        let good = compacted(
            &[change("b", "4", 9)],
            &[change("a", "2", 7), change("b", "4", 9)],
        );
        assert!(change_log("m0", &good, &ops).is_empty());
        assert!(
            finals("m0", &good, &ops).is_empty(),
            "{:?}",
            finals("m0", &good, &ops)
        );
        assert_eq!(lost_writes(&good, &ops), 0);

        // a ends at its first value: a=2, acknowledged at 7, was lost.
        let rolled_back = compacted(
            &[change("b", "4", 9)],
            &[change("a", "1", 5), change("b", "4", 9)],
        );
        assert!(change_log("m0", &rolled_back, &ops).is_empty());
        assert_eq!(finals("m0", &rolled_back, &ops).len(), 1);
        assert_eq!(lost_writes(&rolled_back, &ops), 1);

        // a missing altogether: both of its writes lost; b=4 above the compaction missing.
        let empty = compacted(&[], &[change("b", "3", 6)]);
        assert_eq!(lost_writes(&empty, &ops), 3);
        assert_eq!(change_log("m0", &empty, &ops).len(), 1, "b=4");
        assert_eq!(finals("m0", &empty, &ops).len(), 2, "a=1, a=2");

        // A final value nobody wrote, one that is not its key's last change, and a change
        // above the compaction whose key has no final value.
        let wrong = compacted(
            &[change("b", "4", 9)],
            &[change("a", "zz", 7), change("c", "2", 8)],
        );
        let p = finals("m0", &wrong, &ops);
        assert_eq!(p.len(), 6, "{p:#?}");
    }

    #[test]
    fn logs_agree_between_the_compactions_and_the_lower_revision() {
        let full = log(&[change("a", "1", 5), change("a", "2", 6)]);
        let short = log(&[change("a", "1", 5)]);
        let mut logs = BTreeMap::new();
        logs.insert("m0".to_string(), full.clone());
        logs.insert("watch".to_string(), short.clone());
        assert!(logs_agree(&logs).is_empty());
        // Compacted to 6: agrees with m0 from 6 on.
        let after = Log {
            changes: vec![change("a", "2", 6)],
            synced_to: 6,
            compacted: 6,
            finals: vec![],
        };
        logs.insert("m2".to_string(), after);
        assert!(logs_agree(&logs).is_empty(), "{:?}", logs_agree(&logs));
        logs.insert(
            "m1".to_string(),
            Log {
                synced_to: 6,
                ..short
            },
        );
        assert_eq!(logs_agree(&logs).len(), 1);
    }
}

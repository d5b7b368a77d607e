//! The checks besides linearizability: revisions only grow in real time, the watch saw every
//! committed change in order exactly once, and every member holds every acknowledged write.

use crate::history::{Change, Op};
use std::collections::{BTreeMap, HashMap};

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

/// Problems with a change log (a watch's events): revisions strictly increasing, every change
/// one that some put or compare-and-swap of the history tried to write (no phantom, no
/// duplicate), and every acknowledged write present with its key and revision.
pub fn change_log(what: &str, log: &[Change], ops: &[Op]) -> Vec<String> {
    let mut problems = vec![];
    for pair in log.windows(2) {
        if pair[1].mod_revision <= pair[0].mod_revision {
            problems.push(format!(
                "{what}: revision {} came after {} ({} after {})",
                pair[1].mod_revision, pair[0].mod_revision, pair[1].key, pair[0].key
            ));
        }
    }
    let attempted: HashMap<(&str, &str), &Op> = ops
        .iter()
        .filter_map(|o| o.call.written().map(|v| ((o.call.key(), v), o)))
        .collect();
    let mut seen: HashMap<(&str, Option<&str>), i64> = HashMap::new();
    for c in log {
        if let Some(first) = seen.insert((&c.key, c.value.as_deref()), c.mod_revision) {
            problems.push(format!(
                "{what}: {}={:?} seen twice, at revisions {first} and {}",
                c.key, c.value, c.mod_revision
            ));
        }
        let written = c
            .value
            .as_deref()
            .is_some_and(|v| attempted.contains_key(&(c.key.as_str(), v)));
        if !written {
            problems.push(format!(
                "{what}: change {}={:?} at revision {} was never written",
                c.key, c.value, c.mod_revision
            ));
        }
    }
    let by_value: HashMap<(&str, &str), i64> = log
        .iter()
        .filter_map(|c| Some(((c.key.as_str(), c.value.as_deref()?), c.mod_revision)))
        .collect();
    for op in ops {
        let (Some(v), Some(rev)) = (op.acknowledged_write(), op.ok_revision()) else {
            continue;
        };
        match by_value.get(&(op.call.key(), v)) {
            None => problems.push(format!(
                "{what}: acknowledged write {}={v} (revision {rev}) is missing",
                op.call.key()
            )),
            Some(&r) if r != rev => problems.push(format!(
                "{what}: acknowledged write {}={v} has revision {r}, acknowledged as {rev}",
                op.call.key()
            )),
            Some(_) => {}
        }
    }
    problems
}

/// The acknowledged writes missing from a member's change log.
pub fn lost_writes(log: &[Change], ops: &[Op]) -> usize {
    let have: HashMap<(&str, &str), i64> = log
        .iter()
        .filter_map(|c| Some(((c.key.as_str(), c.value.as_deref()?), c.mod_revision)))
        .collect();
    ops.iter()
        .filter_map(|o| Some((o.call.key(), o.acknowledged_write()?, o.ok_revision()?)))
        .filter(|&(k, v, rev)| have.get(&(k, v)) != Some(&rev))
        .count()
}

/// Problems between change logs that must be equal: every member's (up to the revision each was
/// read to) and the client's watch (up to the revision it caught up with).
pub fn logs_agree(logs: &BTreeMap<String, (Vec<Change>, i64)>) -> Vec<String> {
    let mut problems = vec![];
    let mut it = logs.iter();
    let Some((first_name, (first, first_to))) = it.next() else {
        return problems;
    };
    for (name, (log, to)) in it {
        let upto = (*first_to).min(*to);
        let a: Vec<&Change> = first.iter().filter(|c| c.mod_revision <= upto).collect();
        let b: Vec<&Change> = log.iter().filter(|c| c.mod_revision <= upto).collect();
        if a != b {
            let at = a
                .iter()
                .zip(&b)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            problems.push(format!(
                "{name} and {first_name} disagree up to revision {upto}: {} and {} changes, \
                 first difference at change {at}: {:?} / {:?}",
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
        let good = [change("a", "1", 5), change("a", "2", 6)];
        assert!(change_log("watch", &good, &ops).is_empty());
        assert_eq!(lost_writes(&good, &ops), 0);

        let missing = [change("a", "2", 6)];
        assert_eq!(change_log("watch", &missing, &ops).len(), 1);
        assert_eq!(lost_writes(&missing, &ops), 1);

        let twice = [
            change("a", "1", 5),
            change("a", "1", 5),
            change("a", "2", 6),
        ];
        assert_eq!(
            change_log("watch", &twice, &ops).len(),
            2,
            "duplicate, order"
        );

        let reordered = [change("a", "2", 6), change("a", "1", 5)];
        assert_eq!(change_log("watch", &reordered, &ops).len(), 1);

        let phantom = [
            change("a", "1", 5),
            change("a", "x", 6),
            change("a", "2", 7),
        ];
        let p = change_log("watch", &phantom, &ops);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(lost_writes(&phantom, &ops), 1, "a=2 at the wrong revision");
    }

    #[test]
    fn logs_agree_up_to_the_lower_revision() {
        let full = vec![change("a", "1", 5), change("a", "2", 6)];
        let short = vec![change("a", "1", 5)];
        let mut logs = BTreeMap::new();
        logs.insert("m0".to_string(), (full.clone(), 6));
        logs.insert("watch".to_string(), (short.clone(), 5));
        assert!(logs_agree(&logs).is_empty());
        logs.insert("m1".to_string(), (short, 6));
        assert_eq!(logs_agree(&logs).len(), 1);
    }
}

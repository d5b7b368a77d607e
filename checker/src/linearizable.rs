//! A linearizability checker for a key-value store with put, get and compare-and-swap: the
//! Wing–Gong algorithm with Lowe's memoisation (as in Porcupine), run on each key on its own
//! (every operation touches one key, so the history is linearizable iff each key's is).
//!
//! Failed operations did not take effect and are left out. An indeterminate write may or may
//! not have taken effect: it is kept, with a completion time of infinity, so that it can be
//! placed anywhere after its invocation or nowhere at all. A read that did not complete has no
//! effect and constrains nothing, so it is left out too.

use crate::history::{Call, Op, Outcome};
use std::collections::{BTreeMap, HashSet};

/// The verdict on a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every key's history has a linearization.
    Linearizable,
    /// A key's history has none.
    NotLinearizable {
        /// The key.
        key: String,
        /// What could not be placed.
        detail: String,
    },
    /// The search gave up on a key after too many steps.
    Unknown {
        /// The key.
        key: String,
    },
}

/// What an operation is to the register model of one key.
#[derive(Debug, Clone)]
struct Entry {
    call: Call,
    /// `None`: indeterminate (any result, may not have happened).
    result: Option<Outcome>,
    invoked: u64,
    /// `u64::MAX` for an indeterminate operation.
    completed: u64,
}

/// One step of the register model: the state after `e` from `state`, or `None` when `e`'s
/// result is impossible from `state`.
fn step(state: &Option<String>, e: &Entry) -> Option<Option<String>> {
    let result = e.result.as_ref();
    match &e.call {
        Call::Put { value, .. } => Some(Some(value.clone())),
        Call::Get { .. } => match result {
            Some(Outcome::Ok { value, .. }) if value == state => Some(state.clone()),
            Some(_) => None,
            None => Some(state.clone()),
        },
        Call::Cas { expected, new, .. } => {
            let holds = expected == state;
            match result {
                Some(Outcome::Ok { succeeded, .. }) if *succeeded != holds => None,
                _ if holds => Some(Some(new.clone())),
                _ => Some(state.clone()),
            }
        }
    }
}

/// Checks a whole history, one key at a time, giving up on a key after `max_steps`.
pub fn check(ops: &[Op], max_steps: u64) -> Verdict {
    let mut by_key: BTreeMap<&str, Vec<Entry>> = BTreeMap::new();
    for op in ops {
        let (result, completed) = match &op.outcome {
            Outcome::Ok { .. } => (Some(op.outcome.clone()), op.completed_ns),
            Outcome::Failed { .. } => continue,
            Outcome::Indeterminate { .. } if matches!(op.call, Call::Get { .. }) => continue,
            Outcome::Indeterminate { .. } => (None, u64::MAX),
        };
        by_key.entry(op.call.key()).or_default().push(Entry {
            call: op.call.clone(),
            result,
            invoked: op.invoked_ns,
            completed,
        });
    }
    for (key, entries) in by_key {
        match check_key(&entries, max_steps) {
            Ok(()) => {}
            Err(None) => return Verdict::Unknown { key: key.into() },
            Err(Some(detail)) => {
                return Verdict::NotLinearizable {
                    key: key.into(),
                    detail,
                }
            }
        }
    }
    Verdict::Linearizable
}

/// A node of the doubly linked event list: the call or the return of operation `op`.
#[derive(Debug, Clone, Copy)]
struct Node {
    op: usize,
    is_call: bool,
    /// For a call: the index of its return node.
    partner: usize,
    prev: usize,
    next: usize,
}

/// WGL on one key's operations: `Err(None)` when out of steps, `Err(Some(why))` when no
/// linearization exists.
fn check_key(ops: &[Entry], max_steps: u64) -> Result<(), Option<String>> {
    let n = ops.len();
    // Events sorted by time; at equal times calls come first (such operations overlap).
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, e) in ops.iter().enumerate() {
        events.push((e.invoked, true, i));
        events.push((e.completed, false, i));
    }
    events.sort_by_key(|&(t, is_call, i)| (t, !is_call, i));
    // Node 0 is the head sentinel; event k is node k + 1; `NIL` ends the list.
    const NIL: usize = usize::MAX;
    let mut nodes = vec![Node {
        op: NIL,
        is_call: false,
        partner: NIL,
        prev: NIL,
        next: 1,
    }];
    let mut ret_node = vec![0; n];
    for (k, &(_, is_call, op)) in events.iter().enumerate() {
        let idx = k + 1;
        if !is_call {
            ret_node[op] = idx;
        }
        nodes.push(Node {
            op,
            is_call,
            partner: NIL,
            prev: k,
            next: if k + 1 < events.len() { idx + 1 } else { NIL },
        });
    }
    if events.is_empty() {
        return Ok(());
    }
    for node in nodes.iter_mut().skip(1) {
        if node.is_call {
            node.partner = ret_node[node.op];
        }
    }
    let lift = |nodes: &mut Vec<Node>, call: usize| {
        for idx in [call, nodes[call].partner] {
            let Node { prev, next, .. } = nodes[idx];
            nodes[prev].next = next;
            if next != NIL {
                nodes[next].prev = prev;
            }
        }
    };
    let unlift = |nodes: &mut Vec<Node>, call: usize| {
        for idx in [nodes[call].partner, call] {
            let Node { prev, next, .. } = nodes[idx];
            nodes[prev].next = idx;
            if next != NIL {
                nodes[next].prev = idx;
            }
        }
    };

    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut seen: HashSet<(Vec<u64>, Option<String>)> = HashSet::new();
    let mut stack: Vec<(usize, Option<String>)> = vec![];
    let mut state: Option<String> = None;
    let mut best = 0usize;
    let mut stuck_at = 0usize;
    let mut entry = nodes[0].next;
    let mut steps = 0u64;
    loop {
        steps += 1;
        if steps > max_steps {
            return Err(None);
        }
        if entry == NIL {
            return Ok(());
        }
        let node = nodes[entry];
        let op = &ops[node.op];
        if node.is_call {
            if let Some(next_state) = step(&state, op) {
                let mut bits = linearized.clone();
                bits[node.op / 64] |= 1 << (node.op % 64);
                if seen.insert((bits.clone(), next_state.clone())) {
                    stack.push((entry, std::mem::replace(&mut state, next_state)));
                    linearized = bits;
                    lift(&mut nodes, entry);
                    if stack.len() > best {
                        best = stack.len();
                    }
                    entry = nodes[0].next;
                    continue;
                }
            }
            entry = node.next;
        } else if op.completed == u64::MAX {
            // Only indeterminate operations are left: each may simply not have happened.
            return Ok(());
        } else {
            if stack.len() >= best {
                stuck_at = node.op;
            }
            let Some((call, prev_state)) = stack.pop() else {
                let e = &ops[stuck_at];
                return Err(Some(format!(
                    "at most {best} of {n} operations linearize; none can be placed before \
                     {:?} → {:?} (invoked at {} ns, completed at {} ns) returns",
                    e.call, e.result, e.invoked, e.completed
                )));
            };
            let op_idx = nodes[call].op;
            linearized[op_idx / 64] &= !(1 << (op_idx % 64));
            state = prev_state;
            unlift(&mut nodes, call);
            entry = nodes[call].next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: u64 = 1_000_000;

    fn op(client: u32, t: (u64, u64), call: Call, outcome: Outcome) -> Op {
        Op {
            client,
            invoked_ns: t.0,
            completed_ns: t.1,
            call,
            outcome,
        }
    }
    fn put(v: &str) -> Call {
        Call::Put {
            key: "k".into(),
            value: v.into(),
        }
    }
    fn get() -> Call {
        Call::Get { key: "k".into() }
    }
    fn cas(expected: Option<&str>, new: &str) -> Call {
        Call::Cas {
            key: "k".into(),
            expected: expected.map(String::from),
            new: new.into(),
        }
    }
    fn ok() -> Outcome {
        Outcome::Ok {
            revision: 1,
            value: None,
            succeeded: false,
        }
    }
    fn read(v: Option<&str>) -> Outcome {
        Outcome::Ok {
            revision: 1,
            value: v.map(String::from),
            succeeded: false,
        }
    }
    fn swapped(succeeded: bool) -> Outcome {
        Outcome::Ok {
            revision: 1,
            value: None,
            succeeded,
        }
    }
    fn lost() -> Outcome {
        Outcome::Indeterminate {
            error: "timed out".into(),
        }
    }
    fn failed() -> Outcome {
        Outcome::Failed {
            error: "refused".into(),
        }
    }
    fn bad(ops: &[Op]) -> bool {
        matches!(check(ops, STEPS), Verdict::NotLinearizable { .. })
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let h = [
            op(0, (0, 1), get(), read(None)),
            op(0, (2, 3), put("a"), ok()),
            op(0, (4, 5), get(), read(Some("a"))),
            op(0, (6, 7), cas(Some("a"), "b"), swapped(true)),
            op(0, (8, 9), cas(Some("a"), "c"), swapped(false)),
            op(0, (10, 11), get(), read(Some("b"))),
        ];
        assert_eq!(check(&h, STEPS), Verdict::Linearizable);
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        // The read overlaps both writes and sees the first one, written by the later-invoked.
        let h = [
            op(0, (0, 10), put("a"), ok()),
            op(1, (1, 9), put("b"), ok()),
            op(2, (2, 12), get(), read(Some("a"))),
            op(2, (13, 14), get(), read(Some("a"))),
        ];
        assert_eq!(check(&h, STEPS), Verdict::Linearizable);
    }

    #[test]
    fn stale_read_is_not_linearizable() {
        let h = [
            op(0, (0, 1), put("a"), ok()),
            op(0, (2, 3), put("b"), ok()),
            op(1, (4, 5), get(), read(Some("a"))),
        ];
        assert!(bad(&h));
    }

    #[test]
    fn read_of_a_value_never_written_is_not_linearizable() {
        let h = [op(0, (0, 1), get(), read(Some("x")))];
        assert!(bad(&h));
    }

    #[test]
    fn two_successful_swaps_from_one_value_are_not_linearizable() {
        let h = [
            op(0, (0, 1), put("a"), ok()),
            op(1, (2, 10), cas(Some("a"), "b"), swapped(true)),
            op(2, (3, 11), cas(Some("a"), "c"), swapped(true)),
        ];
        assert!(bad(&h));
    }

    #[test]
    fn a_swap_that_should_have_held_is_not_linearizable() {
        let h = [
            op(0, (0, 1), put("a"), ok()),
            op(0, (2, 3), cas(Some("a"), "b"), swapped(false)),
        ];
        assert!(bad(&h));
        let absent = [op(0, (0, 1), cas(None, "b"), swapped(false))];
        assert!(bad(&absent));
    }

    #[test]
    fn indeterminate_write_may_have_taken_effect_late() {
        // The put timed out; a much later read sees it: it took effect after the first read.
        let h = [
            op(0, (0, 1), put("a"), ok()),
            op(1, (2, 3), put("b"), lost()),
            op(0, (4, 5), get(), read(Some("a"))),
            op(0, (6, 7), get(), read(Some("b"))),
        ];
        assert_eq!(check(&h, STEPS), Verdict::Linearizable);
    }

    #[test]
    fn indeterminate_write_may_not_have_taken_effect() {
        let h = [
            op(0, (0, 1), put("a"), ok()),
            op(1, (2, 3), cas(Some("a"), "b"), lost()),
            op(0, (4, 5), get(), read(Some("a"))),
        ];
        assert_eq!(check(&h, STEPS), Verdict::Linearizable);
    }

    #[test]
    fn indeterminate_write_cannot_take_effect_before_its_invocation() {
        let h = [
            op(0, (0, 1), get(), read(Some("b"))),
            op(1, (2, 3), put("b"), lost()),
        ];
        assert!(bad(&h));
    }

    #[test]
    fn indeterminate_write_takes_effect_at_most_once() {
        // a → b (lost) → a → read b: b would have to be written twice.
        let h = [
            op(0, (0, 1), put("a"), ok()),
            op(1, (2, 3), put("b"), lost()),
            op(0, (4, 5), get(), read(Some("b"))),
            op(0, (6, 7), put("a2"), ok()),
            op(0, (8, 9), get(), read(Some("b"))),
        ];
        assert!(bad(&h));
    }

    #[test]
    fn failed_operations_did_not_happen() {
        let h = [
            op(0, (0, 1), put("a"), failed()),
            op(0, (2, 3), get(), read(Some("a"))),
        ];
        assert!(bad(&h));
        let fine = [
            op(0, (0, 1), put("a"), failed()),
            op(0, (2, 3), get(), read(None)),
            op(1, (2, 3), get(), failed()),
        ];
        assert_eq!(check(&fine, STEPS), Verdict::Linearizable);
    }

    #[test]
    fn keys_are_independent() {
        let other = |c: Call| match c {
            Call::Put { value, .. } => Call::Put {
                key: "other".into(),
                value,
            },
            c => c,
        };
        let h = [
            op(0, (0, 1), put("a"), ok()),
            op(1, (2, 3), other(put("z")), ok()),
            op(0, (4, 5), get(), read(Some("a"))),
        ];
        assert_eq!(check(&h, STEPS), Verdict::Linearizable);
    }

    #[test]
    fn many_concurrent_clients_with_lost_writes_finish_quickly() {
        // 8 clients, 400 operations, every tenth write lost: a correct register run.
        let mut h = vec![];
        let mut value: Option<String> = None;
        let mut t = 0u64;
        for i in 0..400u32 {
            let c = i % 8;
            let v = format!("v{i}");
            let (call, outcome) = match i % 3 {
                0 => {
                    value = Some(v.clone());
                    (put(&v), if i % 10 == 0 { lost() } else { ok() })
                }
                1 => (get(), read(value.as_deref())),
                _ => {
                    let holds = i % 2 == 0;
                    let expected = if holds {
                        value.clone()
                    } else {
                        Some("nope".into())
                    };
                    if holds {
                        value = Some(v.clone());
                    }
                    (
                        cas(expected.as_deref(), &v),
                        Outcome::Ok {
                            revision: 1,
                            value: None,
                            succeeded: holds,
                        },
                    )
                }
            };
            // Each op overlaps its neighbours: invoked before the previous one completed.
            h.push(op(c, (t, t + 15), call, outcome));
            t += 10;
        }
        assert_eq!(check(&h, 10_000_000), Verdict::Linearizable);
        // The same run with one read changed to a value it cannot have seen.
        let i = h
            .iter()
            .rposition(|o| matches!(o.call, Call::Get { .. }))
            .unwrap();
        h[i].outcome = read(Some("v1"));
        assert!(bad(&h));
    }

    #[test]
    fn search_gives_up_after_its_steps() {
        let h = [
            op(0, (0, 10), put("a"), ok()),
            op(1, (0, 10), put("b"), ok()),
        ];
        assert_eq!(check(&h, 1), Verdict::Unknown { key: "k".into() });
    }
}

//! The history the clients record: every operation with its invocation and completion time and
//! its outcome, the events the watch received, and each member's change log read at the end.

use serde::{Deserialize, Serialize};

/// What a client asked for. Every operation touches one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Call {
    /// `put key value`.
    Put {
        /// The key.
        key: String,
        /// The value written (unique in a history).
        value: String,
    },
    /// A linearizable `get key`.
    Get {
        /// The key.
        key: String,
    },
    /// A transaction: if the key's value is `expected` (`None`: the key is absent), put `new`.
    Cas {
        /// The key.
        key: String,
        /// The value compared with (`None`: the key must not exist).
        expected: Option<String>,
        /// The value written when the comparison holds (unique in a history).
        new: String,
    },
}

impl Call {
    /// The key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            Call::Put { key, .. } | Call::Get { key } | Call::Cas { key, .. } => key,
        }
    }

    /// The value the operation writes, if it writes one.
    pub fn written(&self) -> Option<&str> {
        match self {
            Call::Put { value, .. } => Some(value),
            Call::Cas { new, .. } => Some(new),
            Call::Get { .. } => None,
        }
    }
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The cluster answered.
    Ok {
        /// The header revision of the response.
        revision: i64,
        /// What a get read (`None`: absent); unused for writes.
        #[serde(default)]
        value: Option<String>,
        /// Whether a compare-and-swap's comparison held; unused otherwise.
        #[serde(default)]
        succeeded: bool,
    },
    /// Known not to have taken effect (a read that failed has no effect either way).
    Failed {
        /// The error.
        error: String,
    },
    /// May or may not have taken effect (a write that timed out or lost its connection).
    Indeterminate {
        /// The error.
        error: String,
    },
}

/// One operation of one client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// The client (worker) that ran it; a client runs one operation at a time.
    pub client: u32,
    /// When it was invoked, in nanoseconds since the history's start.
    pub invoked_ns: u64,
    /// When it completed (or was given up on), in nanoseconds since the history's start.
    pub completed_ns: u64,
    /// What was asked.
    pub call: Call,
    /// What came back.
    pub outcome: Outcome,
}

impl Op {
    /// The response revision of an operation that completed ok.
    pub fn ok_revision(&self) -> Option<i64> {
        match self.outcome {
            Outcome::Ok { revision, .. } => Some(revision),
            _ => None,
        }
    }

    /// The value this operation is known to have written: an acknowledged put, or a
    /// compare-and-swap whose comparison held.
    pub fn acknowledged_write(&self) -> Option<&str> {
        match (&self.call, &self.outcome) {
            (Call::Put { value, .. }, Outcome::Ok { .. }) => Some(value),
            (
                Call::Cas { new, .. },
                Outcome::Ok {
                    succeeded: true, ..
                },
            ) => Some(new),
            _ => None,
        }
    }
}

/// One change seen by a watch: a put (`value` set) or a delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The key.
    pub key: String,
    /// The new value (`None`: deleted).
    pub value: Option<String>,
    /// The revision of the change.
    pub mod_revision: i64,
}

/// Everything one run of the clients recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// The prefix every key of the run lives under.
    pub prefix: String,
    /// The cluster's revision before the first operation; the watch starts after it.
    pub start_revision: i64,
    /// The operations, in no particular order.
    pub ops: Vec<Op>,
    /// The changes the client's watch received, in the order received.
    pub watch: Vec<Change>,
    /// Errors that broke the watch stream (each followed by a re-watch from where it stopped).
    pub watch_errors: Vec<String>,
    /// The revision the watch was known to have caught up with at the end (0: it never did).
    pub watch_synced_to: i64,
    /// When the watch had to resume after a compaction: the compacted revision it went on from
    /// (the changes between where it stopped and this one are not in `watch`); 0: never.
    #[serde(default)]
    pub watch_compacted: i64,
}

/// A change log read at the end (a member's own, or the clients' watch) and how far it goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Log {
    /// The changes, in the order received: every change after the history's start revision,
    /// or after `compacted` when the history below that revision was compacted away.
    pub changes: Vec<Change>,
    /// The revision the log was known to be complete up to (0: it never caught up).
    pub synced_to: i64,
    /// The compacted revision the changes start from (0: none, they start at the history's
    /// start).
    pub compacted: i64,
    /// Each key's value and revision at the end, as the member reads them (a member's log only;
    /// empty for the watch): what shows a write below `compacted` was kept.
    pub finals: Vec<Change>,
}

/// The number of operations by outcome: (ok, failed, indeterminate).
pub fn counts(ops: &[Op]) -> (usize, usize, usize) {
    ops.iter()
        .fold((0, 0, 0), |(o, f, i), op| match op.outcome {
            Outcome::Ok { .. } => (o + 1, f, i),
            Outcome::Failed { .. } => (o, f + 1, i),
            Outcome::Indeterminate { .. } => (o, f, i + 1),
        })
}

/// The longest time, in seconds, during which no operation completed ok: between the first
/// invocation, consecutive ok completions and the last completion.
pub fn longest_unavailability(ops: &[Op]) -> f64 {
    let Some(start) = ops.iter().map(|o| o.invoked_ns).min() else {
        return 0.0;
    };
    let end = ops.iter().map(|o| o.completed_ns).max().unwrap_or(start);
    let mut oks: Vec<u64> = ops
        .iter()
        .filter(|o| o.ok_revision().is_some())
        .map(|o| o.completed_ns)
        .collect();
    oks.sort_unstable();
    let mut longest = 0;
    let mut last = start;
    for t in oks.into_iter().chain([end]) {
        longest = longest.max(t.saturating_sub(last));
        last = t;
    }
    longest as f64 / 1e9
}

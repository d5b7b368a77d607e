/*!
`compact` (any unit): compacts the key-value history up to `revision` (default: the current
revision), so older revisions can no longer be read or watched. With `physical=true` it returns
only once the compacted entries are gone from every member's backend. The space is given back
to the file system by `defrag`.

Result keys: `revision` (compacted to), `current-revision`, `physical`, `output`.
*/

use super::{common, Action, Results, Stop};
use crate::etcd::EtcdError;

/// The action.
pub fn run(a: &Action, r: &mut Results) -> Result<(), Stop> {
    let endpoints = common::endpoints(a);
    let physical = a.params.flag("physical");
    let current = match a.etcd.revision(&endpoints) {
        Ok(rev) => rev,
        Err(e) => {
            return super::fail(format!(
                "cannot read the current revision: {e}; nothing was compacted. Check `health`"
            ))
        }
    };
    let revision = a.params.int("revision").unwrap_or(current);
    r.set("current-revision", current);
    if revision > current {
        return super::fail(format!(
            "revision {revision} is in the future: the current revision is {current}; nothing \
             was compacted. Give a revision up to {current}, or none for the current one"
        ));
    }
    a.progress(&format!(
        "compacting the history up to revision {revision}{}",
        if physical { " (physical)" } else { "" }
    ));
    match a.etcd.compact(&endpoints, revision, physical) {
        Ok(()) => {}
        Err(EtcdError::Failed { message, .. }) if message.contains("has been compacted") => {
            return super::fail(format!(
                "revision {revision} is already compacted; nothing changed. Give a newer \
                 revision (up to {current})"
            ))
        }
        Err(e) => {
            return super::fail(format!(
                "compaction to revision {revision} failed: {e}; check `health` and try again"
            ))
        }
    }
    r.set("revision", revision);
    r.set("physical", physical);
    r.set(
        "output",
        format!(
            "compacted the history up to revision {revision} (current {current}){}; run \
             `defrag` to give the space back to the file system",
            if physical { ", physically removed" } else { "" }
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::fakes::{FakeEtcd, FakeJuju};
    use serde_json::json;

    #[test]
    fn defaults_to_the_current_revision() {
        let juju = FakeJuju::new("etcd/1", json!({"physical": true}));
        let etcd = FakeEtcd::healthy(3);
        juju.run("compact", &etcd);
        assert_eq!(juju.failed(), None);
        assert_eq!(etcd.calls(), ["compact 100 physical=true"]);
        juju.assert_result("revision", "100");
        juju.assert_result("physical", "true");
    }

    #[test]
    fn future_and_compacted_revisions_are_refused() {
        let juju = FakeJuju::new("etcd/0", json!({"revision": 101}));
        let etcd = FakeEtcd::healthy(3);
        juju.run("compact", &etcd);
        juju.failure_starting("revision 101 is in the future");
        assert!(etcd.calls().is_empty());

        let juju = FakeJuju::new("etcd/0", json!({"revision": 50}));
        *etcd.compacted.borrow_mut() = 60;
        juju.run("compact", &etcd);
        juju.failure_starting("revision 50 is already compacted");
    }
}

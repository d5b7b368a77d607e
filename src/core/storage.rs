/*!
etcd's data dir on Juju storage (the `data` store), as pure decisions on observed facts.

A unit whose data dir holds no member yet and whose volume is mounted puts its data dir on the
volume ([`Effect::UseVolume`]: the data dir becomes a link to the volume's). A unit that already
has a data dir on the root disk (one that ran before the store existed, then got it on
`refresh`) keeps it there: nothing is moved or hidden.

A volume brought from another unit (`add-unit --attach-storage`) holds that unit's member data,
recorded on the volume with its member id. It is never started blindly, and never deleted:
- a member the cluster still lists (the application's last unit: the last voter is never
  removed; or a lost unit whose member the leader could not remove, without a quorum) is
  rejoined as that member on that data, with no resync: the unit gives the data's files to its
  own etcd user (their uid and gid are those of the machine that wrote them), records the id as
  its own and starts etcd on it; the leader then owns the member by the `started` id this unit publishes
  and moves its peer URL to this unit's address;
- with the member list unknown (no member answers), the same holds when leader data's `cluster`
  names only that member, or the volume's record says the cluster listed it alone (kept up to
  date by the unit that runs it): the volume holds the whole cluster, as when a new application
  is deployed onto the volume of an earlier one's last unit (its leader data names nothing);
- a member the cluster no longer lists has its data set aside on the volume (kept) and the unit
  joins as a new member;
- a listed member whose unit is still in the peer relation is not started (never two copies of
  one member): the status says to remove that unit.

`data-storage-detaching` makes the unit leave as a departing one does, before the volume goes.
*/

use crate::core::effect::Effect;
use crate::core::observed::{keys, Observed};
use crate::core::status::Status;
use crate::juju::context::{member_name, Hook};

/// The store's name in `metadata.yaml`.
pub const STORE: &str = "data";

/// True in `data-storage-detaching`: the unit leaves the cluster before its volume goes.
pub fn detaching(hook: &Hook) -> bool {
    matches!(hook, Hook::StorageDetaching(store) if store == STORE)
}

/// Puts the data dir on the mounted volume while it holds no member and etcd does not run.
pub fn placement(o: &Observed) -> Option<Effect> {
    let (v, l) = (&o.local.volume, &o.local);
    (v.mounted && !v.in_use && !l.has_data && !l.service_active).then_some(Effect::UseVolume)
}

/// What to do with member data on the volume that another unit's member wrote, before
/// anything starts on it: the effects and the status, or `None` when the data is this unit's
/// (or no volume is in use).
pub fn adopted(o: &Observed) -> Option<(Vec<Effect>, Status)> {
    let (v, l) = (&o.local.volume, &o.local);
    if !v.in_use || !l.has_data || l.service_active || l.member_id.is_some() {
        return None;
    }
    let owner = v.owner.as_ref().filter(|w| w.unit != o.unit)?;
    let (id, unit) = (owner.member_id, owner.unit.clone());
    let listed = match &o.members {
        Some(members) => members.iter().any(|m| m.id == id),
        None if owner.alone || sole_voter(o, &unit) => true,
        None => return Some((Vec::new(), Status::VolumeCheck)),
    };
    Some(match listed {
        false => (vec![Effect::Wipe], Status::VolumeSetAside { id, unit }),
        true if o.peers.iter().any(|p| p.unit == unit) => {
            (Vec::new(), Status::VolumeOfListedMember { id, unit })
        }
        // Its files carry the uid and gid of the etcd user of the machine that wrote them.
        true => (
            vec![Effect::OwnDataDir, Effect::RecordMemberId(id)],
            Status::VolumeRejoin { id, unit },
        ),
    })
}

/// Whether the member list names member `id` and no other (learners count: they are members).
pub fn listed_alone(o: &Observed, id: u64) -> bool {
    matches!(o.members.as_deref(), Some([only]) if only.id == id)
}

/// Whether the volume's record of this unit's running member `id` is missing or out of date:
/// another owner, or the member list (when known) no longer as the record says.
pub fn record_stale(o: &Observed, id: u64) -> bool {
    let v = &o.local.volume;
    let Some(owner) = v.owner.as_ref().filter(|_| v.in_use) else {
        return v.in_use;
    };
    let alone_changed = o.members.is_some() && owner.alone != listed_alone(o, id);
    owner.unit != o.unit || owner.member_id != id || alone_changed
}

/// Leader data's `cluster` (the started voters, `name=peerURL,...`) names `unit`'s member and
/// no other.
fn sole_voter(o: &Observed, unit: &str) -> bool {
    let name = member_name(unit);
    let cluster = o.leader_data.get(keys::CLUSTER).unwrap_or("");
    let named = |e: &str| e.split_once('=').is_some_and(|(n, _)| n == name);
    !cluster.is_empty() && cluster.split(',').all(named)
}

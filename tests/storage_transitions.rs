//! The planner with the `data` store: the data dir put on the volume, a unit that ran before
//! the store existed keeping its data dir, a volume brought from another unit set aside or left
//! alone, and `data-storage-detaching` leaving the cluster. Pure: no Juju, no etcd.

mod fixtures;

use etcd_charm::core::effect::Effect;
use etcd_charm::core::observed::{Observed, Volume, VolumeOwner};
use etcd_charm::core::plan::plan;
use etcd_charm::core::status::Status;
use etcd_charm::core::storage;
use etcd_charm::juju::context::Hook;
use fixtures::*;

fn mounted() -> Volume {
    Volume {
        mounted: true,
        ..Volume::default()
    }
}

/// Unit `etcd/<n>`, new, its data dir a link to a volume that holds `owner`'s member data.
fn adopting(n: u64, owner: &str, id: u64, members: Vec<etcd_charm::etcd::Member>) -> Observed {
    let mut o = fresh(n);
    o.leader_data = leader_data(&[
        (etcd_charm::core::observed::keys::TOKEN, "t0k"),
        (etcd_charm::core::observed::keys::CLUSTER, "etcd0=x"),
    ]);
    o.local.has_data = true;
    o.local.volume = Volume {
        mounted: true,
        in_use: true,
        owner: Some(VolumeOwner {
            member_id: id,
            unit: owner.into(),
        }),
    };
    o.endpoints = vec![client_url(0)];
    o.members = Some(members);
    o
}

fn starts(o: &Observed) -> bool {
    plan(o).effects.iter().any(|e| matches!(e, Effect::Start))
}

#[test]
fn a_fresh_unit_puts_its_data_dir_on_the_volume_before_anything_starts() {
    let mut o = fresh(1);
    o.local.volume = mounted();
    let p = plan(&o);
    assert!(p.effects.contains(&Effect::UseVolume), "{:?}", p.effects);
    assert!(!p.effects.contains(&Effect::Start));
    assert!(p.again);
    // Once it links there, the plan goes on as for any fresh unit.
    o.local.volume.in_use = true;
    let p = plan(&o);
    assert!(!p.effects.contains(&Effect::UseVolume));
    assert_eq!(p.status, Status::WaitBootstrap);
}

#[test]
fn not_installed_installs_before_it_places_the_data_dir() {
    let mut o = fresh(0);
    o.local.version = None;
    o.local.volume = mounted();
    assert_eq!(plan(&o).effects, [Effect::Install]);
}

#[test]
fn a_unit_that_ran_before_the_store_existed_keeps_its_data_dir() {
    // `refresh` to this revision mounted a new volume; the member's data stays on the root disk.
    let mut o = running(1, vec![member(0), member(1), member(2)], 0);
    o.local.volume = mounted();
    let p = plan(&o);
    assert!(!p
        .effects
        .iter()
        .any(|e| matches!(e, Effect::UseVolume | Effect::Wipe | Effect::Start)));
    assert_eq!(p.status.state(), "active", "{:?}", p.status);
    // Stopped (after a reboot, say): it starts on the same data dir.
    o.local.service_active = false;
    o.local.status = None;
    let p = plan(&o);
    assert!(p.effects.contains(&Effect::Start));
    assert!(!p.effects.contains(&Effect::UseVolume));
}

#[test]
fn a_volume_with_a_removed_members_data_is_set_aside_and_the_unit_joins_fresh() {
    let o = adopting(3, "etcd/1", 0x101, vec![member(0), member(2)]);
    let p = plan(&o);
    assert_eq!(p.effects, [Effect::Wipe]);
    assert_eq!(
        p.status,
        Status::VolumeSetAside {
            id: 0x101,
            unit: "etcd/1".into()
        }
    );
    assert_eq!(p.status.state(), "maintenance");
    assert!(p.status.message().contains("data.removed-"));
    assert!(p.again);
}

#[test]
fn a_volume_with_a_listed_members_data_is_not_started() {
    let o = adopting(3, "etcd/1", 0x101, vec![member(0), member(1), member(2)]);
    let p = plan(&o);
    assert!(p.effects.is_empty(), "{:?}", p.effects);
    assert_eq!(p.status.state(), "waiting");
    assert!(p.status.message().contains("etcdctl member remove 101"));
}

#[test]
fn a_volume_from_another_unit_waits_for_the_member_list() {
    let mut o = adopting(3, "etcd/1", 0x101, vec![]);
    o.members = None;
    let p = plan(&o);
    assert!(p.effects.is_empty());
    assert_eq!(p.status, Status::VolumeCheck);
    assert!(!starts(&o));
}

#[test]
fn its_own_data_on_the_volume_starts_as_usual() {
    // Recorded by this unit (a reboot, a killed hook): no check, no set-aside.
    let mut o = adopting(1, "etcd/1", 0x101, vec![member(0), member(1), member(2)]);
    assert!(starts(&o));
    o.local.volume.owner = None;
    o.local.member_id = Some(0x101);
    assert!(starts(&o));
    // A member that runs and answers is never second-guessed.
    let mut o = adopting(3, "etcd/1", 0x101, vec![member(0), member(2)]);
    o.local.service_active = true;
    o.local.status = Some(status_of(3, 0));
    assert!(!plan(&o).effects.contains(&Effect::Wipe));
}

#[test]
fn storage_detaching_leaves_the_cluster_and_stops_etcd() {
    assert!(storage::detaching(&Hook::parse("data-storage-detaching")));
    assert!(!storage::detaching(&Hook::parse("logs-storage-detaching")));
    assert!(!storage::detaching(&Hook::parse("data-storage-attached")));
    // Observe marks the unit departing in that hook: the plan is the departing unit's (hand
    // Raft leadership over, leave, stop etcd), the volume's data left as it is.
    let mut o = running(0, vec![member(2), member(0), member(1)], 0);
    o.departing = true;
    o.hook = Hook::parse("cluster-relation-departed");
    let departed = plan(&o);
    o.hook = Hook::parse("data-storage-detaching");
    o.local.volume = Volume {
        mounted: true,
        in_use: true,
        owner: None,
    };
    let p = plan(&o);
    assert_eq!(p, departed);
    assert!(p.effects.iter().any(|e| matches!(e, Effect::Leave { .. })));
    assert!(p.effects.contains(&Effect::Stop));
    assert!(!p.effects.contains(&Effect::Wipe));
    assert_eq!(p.status, Status::Leaving);
}

#[test]
fn the_volume_owner_record_round_trips() {
    let owner = VolumeOwner {
        member_id: 0x8e9e05c52164694d,
        unit: "etcd/12".into(),
    };
    assert_eq!(owner.record(), "8e9e05c52164694d etcd/12\n");
    assert_eq!(VolumeOwner::parse(&owner.record()), Some(owner));
    assert_eq!(VolumeOwner::parse("zz etcd/1"), None);
    assert_eq!(VolumeOwner::parse(""), None);
}

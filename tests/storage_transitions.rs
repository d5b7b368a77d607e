//! The planner with the `data` store: the data dir put on the volume, a unit that ran before
//! the store existed keeping its data dir, a volume brought from another unit rejoined as its
//! member (still listed), set aside (removed) or left alone (its unit still there), and
//! `data-storage-detaching` leaving the cluster. Pure: no Juju, no etcd.

mod fixtures;

use etcd_charm::core::config::CharmConfig;
use etcd_charm::core::effect::Effect;
use etcd_charm::core::observed::{Observed, Peer, Volume, VolumeOwner};
use etcd_charm::core::plan::plan;
use etcd_charm::core::status::Status;
use etcd_charm::core::storage;
use etcd_charm::etcd::MemberStatus;
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
    o.config = Ok(CharmConfig {
        tls: false,
        ..CharmConfig::default()
    });
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
            alone: false,
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

/// The machine after `RecordMemberId(id)`: the id is this unit's, and the volume says so.
fn record(o: &mut Observed, id: u64) {
    o.local.member_id = Some(id);
    o.local.volume.owner = Some(VolumeOwner {
        member_id: id,
        unit: o.unit.clone(),
        alone: false,
    });
}

#[test]
fn a_volume_with_a_listed_members_data_rejoins_as_that_member_without_a_resync() {
    // etcd/1's machine was lost and the unit force-removed; nobody removed its member.
    let mut o = adopting(3, "etcd/1", 0x101, vec![member(0), member(1), member(2)]);
    o.peers = vec![peer(0), peer(2)];
    let p = plan(&o);
    // Its files first given to this machine's etcd user, then the id recorded.
    assert_eq!(
        p.effects,
        [Effect::OwnDataDir, Effect::RecordMemberId(0x101)]
    );
    let rejoin = Status::VolumeRejoin {
        id: 0x101,
        unit: "etcd/1".into(),
    };
    assert_eq!(p.status, rejoin);
    assert_eq!(p.status.state(), "maintenance");
    assert!(p.again);
    // Its member now: etcd starts on the volume's data, nothing set aside, no new member.
    record(&mut o, 0x101);
    let p = plan(&o);
    assert!(starts(&o), "{:?}", p.effects);
    assert!(!p.effects.contains(&Effect::Wipe));
    assert!(membership_effects(&p).is_empty());
    // Running: it publishes the member as its started one.
    o.local.service_active = true;
    o.local.status = Some(MemberStatus {
        member_id: 0x101,
        ..status_of(1, 0)
    });
    let p = plan(&o);
    let published = p.effects.iter().find_map(|e| match e {
        Effect::PeerSet(_, s) => s.get("started").cloned(),
        _ => None,
    });
    assert_eq!(published.as_deref(), Some("101"));
    assert!(!p.effects.contains(&Effect::Start));
}

#[test]
fn the_leader_keeps_a_rejoined_member_and_moves_its_peer_url() {
    // etcd/3 runs etcd1's member (still named etcd1 until etcd publishes the new name).
    let cfg = CharmConfig {
        tls: false,
        ..CharmConfig::default()
    };
    let mut o = running(0, vec![member(0), member(1), member(2)], 0);
    runs_with(&mut o, &cfg);
    o.config = Ok(cfg);
    o.leadership = etcd_charm::core::observed::Leadership::Leader;
    let rejoined = Peer {
        started: Some(0x101),
        ..peer(3)
    };
    o.peers = vec![peer(2), rejoined];
    let p = plan(&o);
    assert_eq!(
        membership_effects(&p),
        [&Effect::UpdatePeerUrl {
            name: "etcd1".into(),
            id: 0x101,
            peer_url: peer_url(3),
        }]
    );
    // Without that unit, the member is no one's: removed.
    o.peers = vec![peer(2)];
    let p = plan(&o);
    assert_eq!(
        membership_effects(&p),
        [&Effect::Remove {
            name: "etcd1".into(),
            id: 0x101
        }]
    );
}

#[test]
fn a_volume_with_the_whole_clusters_data_rejoins_with_no_member_answering() {
    // The application's only unit was removed (the last voter leaves no cluster): its volume,
    // given to a new unit, holds every key. No member answers, leader data names only it.
    let mut o = adopting(1, "etcd/0", 0x100, vec![]);
    o.members = None;
    o.leadership = etcd_charm::core::observed::Leadership::Leader;
    o.leader_data = leader_data(&[
        (etcd_charm::core::observed::keys::TOKEN, "t0k"),
        (
            etcd_charm::core::observed::keys::CLUSTER,
            &format!("etcd0={}", peer_url(0)),
        ),
    ]);
    let p = plan(&o);
    assert_eq!(
        p.effects,
        [Effect::OwnDataDir, Effect::RecordMemberId(0x100)]
    );
    record(&mut o, 0x100);
    assert!(starts(&o));
    // Leader data naming other voters too: their answer is needed first.
    let mut o = adopting(1, "etcd/0", 0x100, vec![]);
    o.members = None;
    o.leader_data = leader_data(&[(
        etcd_charm::core::observed::keys::CLUSTER,
        &format!("etcd0={},etcd2={}", peer_url(0), peer_url(2)),
    )]);
    assert_eq!(plan(&o).status, Status::VolumeCheck);
    assert!(!starts(&o));
}

#[test]
fn a_new_application_rejoins_a_volume_recorded_as_the_whole_cluster() {
    // Deployed onto the volume of an earlier application's last unit: this application's
    // leader data names nothing and no member answers; the volume's record decides.
    let mut o = adopting(0, "etcd/0", 0x100, vec![]);
    o.unit = "etcd-again/0".into();
    o.members = None;
    o.leader_data = leader_data(&[]);
    assert_eq!(plan(&o).status, Status::VolumeCheck);
    o.local.volume.owner.as_mut().unwrap().alone = true;
    assert_eq!(
        plan(&o).effects,
        [Effect::OwnDataDir, Effect::RecordMemberId(0x100)]
    );
}

#[test]
fn a_running_member_keeps_its_volumes_record_of_being_alone() {
    let owned = |o: &mut Observed, alone: bool| {
        o.local.volume = Volume {
            mounted: true,
            in_use: true,
            owner: Some(VolumeOwner {
                member_id: 0x100,
                unit: "etcd/0".into(),
                alone,
            }),
        };
    };
    let recorded = |o: &Observed| plan(o).effects.contains(&Effect::RecordMemberId(0x100));
    let mut o = running(0, vec![member(0)], 0);
    owned(&mut o, false);
    assert!(recorded(&o), "the only member: recorded alone");
    owned(&mut o, true);
    assert!(!recorded(&o));
    o.members = Some(vec![member(0), unstarted_learner(1)]);
    assert!(recorded(&o), "a learner joined: no longer alone");
    owned(&mut o, false);
    assert!(!recorded(&o));
    // An unknown member list changes nothing.
    o.members = None;
    assert!(!recorded(&o));
    assert!(storage::listed_alone(
        &running(0, vec![member(0)], 0),
        0x100
    ));
}

#[test]
fn a_listed_members_volume_waits_while_its_unit_is_still_there() {
    // Never two copies of one member: etcd/1 is still in the peer relation.
    let mut o = adopting(3, "etcd/1", 0x101, vec![member(0), member(1), member(2)]);
    o.peers = vec![peer(0), peer(1), peer(2)];
    let p = plan(&o);
    assert!(p.effects.is_empty(), "{:?}", p.effects);
    assert_eq!(p.status.state(), "waiting");
    assert!(p
        .status
        .message()
        .contains("juju remove-unit etcd/1 --force"));
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
    let mut owner = VolumeOwner {
        member_id: 0x8e9e05c52164694d,
        unit: "etcd/12".into(),
        alone: false,
    };
    assert_eq!(owner.record(), "8e9e05c52164694d etcd/12\n");
    assert_eq!(VolumeOwner::parse(&owner.record()), Some(owner.clone()));
    owner.alone = true;
    assert_eq!(owner.record(), "8e9e05c52164694d etcd/12 alone\n");
    assert_eq!(VolumeOwner::parse(&owner.record()), Some(owner));
    assert_eq!(VolumeOwner::parse("zz etcd/1"), None);
    assert_eq!(VolumeOwner::parse(""), None);
}

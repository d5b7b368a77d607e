//! etcd's data dir on Juju storage, on real machines: a deploy with `--storage data=…` puts each
//! member's data on its volume; `remove-unit` leaves the volume detached with the data; a new
//! unit given that volume (`add-unit --attach-storage`) sets the removed member's data aside on
//! it, kept, and joins as a new member, keys intact; `--destroy-storage` removes the volume.
//! Needs root: it boots machines.

#[path = "support/mod.rs"]
mod support;
use serde_json::Value;
use std::time::Duration;
use support::{deploy_etcd, etcdctl, get, sh, voters, Sandbox};

const LOCATION: &str = "/var/lib/etcd/storage";

fn storage(sb: &Sandbox) -> Value {
    serde_json::from_str(&sb.ok(&["storage", "--format", "json"])).expect("storage json")
}

/// The id of the `data` volume attached to `unit`.
fn volume_of(sb: &Sandbox, unit: &str) -> String {
    let s = storage(sb);
    let all = s["storage"].as_object().expect("storage");
    let (id, _) = all
        .iter()
        .find(|(id, v)| id.starts_with("data/") && v["attachments"]["units"][unit].is_object())
        .unwrap_or_else(|| panic!("no data volume on {unit}: {s}"));
    id.clone()
}

/// The data dir is on the unit's volume: Juju's location, a mount point in the machine, the
/// data dir a link to it, the member's data in it.
fn data_on_volume(sb: &Sandbox, unit: &str) {
    let id = volume_of(sb, unit);
    let (code, location, err) = sb.exec(unit, &format!("storage-get -s {id} location"));
    assert_eq!((code, location.trim()), (0, LOCATION), "{err}");
    let mount = sh(
        sb,
        unit,
        &format!("findmnt -n -o TARGET --mountpoint {LOCATION}"),
    );
    assert_eq!(mount, LOCATION, "the volume is mounted on {unit}");
    let link = sh(sb, unit, "readlink /var/lib/etcd/data");
    assert_eq!(link, format!("{LOCATION}/data"), "data dir of {unit}");
    sh(sb, unit, &format!("test -d {LOCATION}/data/member/wal"));
    assert_eq!(
        sh(sb, unit, &format!("stat -c %U:%a {LOCATION}/data")),
        "etcd:700"
    );
}

#[test]
fn data_dir_on_storage_survives_a_unit_replacement() {
    let sb = Sandbox::new("etcd_storage");
    deploy_etcd(&sb, 3, &["--storage", "data=1G"]);
    sb.wait_active(3);
    for u in sb.units("etcd") {
        data_on_volume(&sb, &u);
    }
    let leader = sb.leader("etcd").expect("a leader");
    for i in 0..20 {
        let put = etcdctl(&sb, &leader, &format!("put key{i} value{i}"));
        assert_eq!(put.0, 0, "{put:?}");
    }

    // remove-unit: the unit leaves first (storage-detaching), its volume stays detached.
    let gone = sb.units("etcd").into_iter().find(|u| *u != leader).unwrap();
    let id = volume_of(&sb, &gone);
    sb.ok(&["remove-unit", &gone]);
    sb.eventually("the unit gone", Duration::from_secs(180), || {
        (sb.units("etcd").len() == 2).then_some(())
    });
    sb.wait_active(2);
    assert_eq!(voters(&sb, &leader).len(), 2);
    let s = storage(&sb);
    assert_eq!(s["storage"][&id]["status"]["current"], "detached", "{s}");

    // The volume, with the removed member's data, given to a new unit.
    let before = sb.units("etcd");
    sb.ok(&["add-unit", "etcd", "--attach-storage", &id]);
    sb.wait_active(3);
    let new = sb
        .units("etcd")
        .into_iter()
        .find(|u| !before.contains(u))
        .expect("the new unit");
    assert_eq!(volume_of(&sb, &new), id);
    data_on_volume(&sb, &new);
    let aside = sh(
        &sb,
        &new,
        &format!("ls -d {LOCATION}/data.removed-* | head -n 1"),
    );
    assert!(!aside.is_empty(), "the old data is kept on the volume");
    sh(&sb, &new, &format!("test -d {aside}/member/wal"));
    let log = sb.ok(&["debug-log", "--replay", "--no-tail", "--include", &new]);
    assert!(
        log.contains("removed member")
            && log.contains("data.removed-")
            && log.contains("→ VolumeSetAside"),
        "the set-aside is logged on {new}: {}",
        log.lines()
            .filter(|l| l.contains("aside") || l.contains("storage"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let units = sb.units("etcd");
    for u in &units {
        assert_eq!(voters(&sb, u).len(), 3, "members seen from {u}");
    }
    for i in 0..20 {
        assert_eq!(
            get(&sb, &new, &format!("key{i}")).unwrap(),
            format!("value{i}")
        );
    }
    let (code, out, err) = etcdctl(&sb, &new, "endpoint health --cluster");
    assert_eq!(code, 0, "{out}{err}");

    // --destroy-storage removes the volume with the unit.
    sb.ok(&["remove-unit", &new, "--destroy-storage"]);
    sb.eventually("the volume destroyed", Duration::from_secs(180), || {
        storage(&sb)["storage"].get(&id).is_none().then_some(())
    });
    sb.wait_active(2);
    assert_eq!(voters(&sb, &leader).len(), 2);
}

//! etcd's data dir on Juju storage, on real machines: a deploy with `--storage data=…` puts each
//! member's data on its volume; `remove-unit` leaves the volume detached with the data; a new
//! unit given that volume (`add-unit --attach-storage`) sets the removed member's data aside on
//! it, kept, and joins as a new member, keys intact; `--destroy-storage` removes the volume.
//! The application's last unit removed (the last voter stays a member: no one removes it), its
//! volume given to a new unit: the unit rejoins as that same member on that data, no resync and
//! nothing set aside, every key back; a restore there puts the restored data on the volume. A
//! new application deployed onto that volume adopts the cluster and grows it.
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

/// `<member id hex> <unit>`, the record on `unit`'s volume of whose member its data is (then
/// ` alone` while the cluster lists that member alone).
fn volume_record(sb: &Sandbox, unit: &str) -> (String, String) {
    let record = sh(sb, unit, &format!("cat {LOCATION}/member"));
    let mut fields = record.split_whitespace().map(String::from);
    let id = fields.next().expect("a volume record");
    (id, fields.next().expect("the record's unit"))
}

/// Runs an action that must complete on `unit`; its results.
fn action(sb: &Sandbox, unit: &str, args: &[&str]) -> Value {
    let mut all = vec!["run", unit];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let out = sb.ok(&all);
    // The JSON results follow the "Running operation…" lines.
    let json = out.find("\n{").map(|i| &out[i + 1..]);
    json.and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_else(|| panic!("{args:?} on {unit}: {out}"))
}

/// The ids of the members `unit` sees.
fn member_ids(sb: &Sandbox, unit: &str) -> Vec<String> {
    let (code, out, err) = etcdctl(sb, unit, "member list");
    assert_eq!(code, 0, "{err}");
    out.lines()
        .filter_map(|l| l.split(", ").next().map(String::from))
        .collect()
}

/// etcd ×1 with its data on a volume and `key0`… `key<n-1>` written; the unit.
fn one_unit_on_a_volume(sb: &Sandbox, n: usize) -> String {
    deploy_etcd(sb, 1, &["--storage", "data=1G"]);
    sb.wait_active(1);
    let unit = sb.units("etcd").remove(0);
    for i in 0..n {
        let put = etcdctl(sb, &unit, &format!("put key{i} value{i}"));
        assert_eq!(put.0, 0, "{put:?}");
    }
    unit
}

#[test]
fn the_last_units_volume_brings_its_member_back_on_a_new_unit() {
    let sb = Sandbox::new("etcd_storage_rejoin");
    let old = one_unit_on_a_volume(&sb, 10);
    data_on_volume(&sb, &old);
    let (id, owner) = volume_record(&sb, &old);
    assert_eq!(
        (member_ids(&sb, &old), owner.as_str()),
        (vec![id.clone()], old.as_str())
    );
    let record = sh(&sb, &old, &format!("cat {LOCATION}/member"));
    assert!(record.ends_with(" alone"), "the only member: {record}");

    // The last unit goes: its member stays (the last voter), the volume stays detached.
    let volume = volume_of(&sb, &old);
    sb.ok(&["remove-unit", &old]);
    sb.eventually("the unit gone", Duration::from_secs(180), || {
        sb.units("etcd").is_empty().then_some(())
    });
    let s = storage(&sb);
    assert_eq!(
        s["storage"][&volume]["status"]["current"], "detached",
        "{s}"
    );

    // A new unit with that volume: the same member, on the same data.
    sb.ok(&["add-unit", "etcd", "--attach-storage", &volume]);
    sb.wait_active(1);
    let new = sb.units("etcd").remove(0);
    assert_ne!(new, old);
    data_on_volume(&sb, &new);
    assert_eq!(volume_record(&sb, &new), (id.clone(), new.clone()));
    assert_eq!(member_ids(&sb, &new), [id], "the same member, no new one");
    assert_eq!(
        voters(&sb, &new),
        [new.replace('/', "")],
        "renamed as the new unit's"
    );
    sb.eventually(
        "its peer URL moved to the new unit",
        Duration::from_secs(120),
        || {
            let (_, list, _) = etcdctl(&sb, &new, "member list");
            let address = sb.exec(&new, "unit-get private-address").1;
            let address = address.trim();
            list.contains(&format!("{address}:2380")).then_some(())
        },
    );
    for i in 0..10 {
        assert_eq!(
            get(&sb, &new, &format!("key{i}")).unwrap(),
            format!("value{i}")
        );
    }
    let aside = sh(
        &sb,
        &new,
        &format!("ls -d {LOCATION}/data.removed-* 2>/dev/null | wc -l"),
    );
    assert_eq!(aside, "0", "nothing set aside");
    let log = sb.ok(&["debug-log", "--replay", "--no-tail", "--include", &new]);
    assert!(
        log.contains("→ VolumeRejoin"),
        "the rejoin is logged on {new}"
    );

    // restore: the restored data on the volume, the previous data kept beside it.
    let path = action(&sb, &new, &["snapshot"])["path"]
        .as_str()
        .expect("a snapshot path")
        .to_string();
    let put = etcdctl(&sb, &new, "put after-snapshot x");
    assert_eq!(put.0, 0, "{put:?}");
    let restore = ["restore", &format!("path={path}"), "keep-previous=true"];
    let previous = action(&sb, &new, &restore)["previous-data"].clone();
    let previous = previous.as_str().unwrap_or_default();
    assert!(
        previous.starts_with(&format!("{LOCATION}/data.before-restore-")),
        "{previous}"
    );
    sh(&sb, &new, &format!("test -d {previous}/member/wal"));
    sb.wait_active(1);
    data_on_volume(&sb, &new);
    assert_eq!(
        sh(
            &sb,
            &new,
            "ls -d /var/lib/etcd/restore-* /var/lib/etcd/data.* 2>/dev/null | wc -l"
        ),
        "0"
    );
    let (restored, owner) = volume_record(&sb, &new);
    assert_eq!(owner, new);
    assert_eq!(
        member_ids(&sb, &new),
        [restored],
        "the volume records the restored member"
    );
    assert_eq!(get(&sb, &new, "key3").unwrap(), "value3");
    assert_eq!(get(&sb, &new, "after-snapshot").unwrap_or_default(), "");
}

/// A new application deployed onto the volume of an earlier one's last unit (its own leader
/// data names nothing, no member answers): the volume's record says the cluster listed that
/// member alone, so the unit comes back as it on its data, the new leader adopts the cluster,
/// and a unit added after it joins.
#[test]
fn a_new_application_adopts_an_earlier_ones_volume_and_grows() {
    let sb = Sandbox::new("etcd_storage_adopt");
    let old = one_unit_on_a_volume(&sb, 5);
    let volume = volume_of(&sb, &old);
    sb.ok(&["remove-unit", &old]);
    sb.eventually("the unit gone", Duration::from_secs(180), || {
        sb.units("etcd").is_empty().then_some(())
    });

    deploy_etcd(&sb, 1, &["etcd-again", "--attach-storage", &volume]);
    sb.wait_active(1);
    let first = sb.units("etcd-again").remove(0);
    assert_eq!(get(&sb, &first, "key4").unwrap(), "value4");
    sb.ok(&["add-unit", "etcd-again"]);
    sb.wait_active(2);
    let units = sb.units("etcd-again");
    let want: Vec<String> = units.iter().map(|u| u.replace('/', "")).collect();
    assert_eq!(voters(&sb, &first), want, "both units vote");
    for u in &units {
        assert_eq!(get(&sb, u, "key0").unwrap(), "value0", "on {u}");
    }
}

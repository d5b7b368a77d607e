//! Storage as pure changes to the model: metadata, directives, the `stores` sequence, hook
//! order at install and removal, detach and reattach.

use super::*;
use crate::controller::lifecycle;
use crate::controller::model::{App, CharmMeta, RelEnd};
use serde_json::json;
use std::path::Path;

fn meta() -> BTreeMap<String, StoreMeta> {
    parse_meta(&json!({
        "data": {"type": "filesystem", "location": "/srv/data", "minimum-size": "512M"},
        "logs": {"type": "filesystem", "multiple": {"range": "1-3"}},
    }))
    .expect("meta")
}

fn model() -> Model {
    let mut m = Model::new(Path::new("/tmp/storage-test"));
    for app in ["etcd", "other"] {
        let meta = CharmMeta {
            storage: meta(),
            ..CharmMeta::default()
        };
        m.apps.insert(app.into(), App::new(app, "/x".into(), meta));
    }
    lifecycle::add_relation(
        &mut m,
        vec![RelEnd {
            app: "etcd".into(),
            endpoint: "cluster".into(),
        }],
        "etcd".into(),
    );
    m
}

/// A new unit with its storage, machine booted, every hook queued so far committed.
fn unit_with(m: &mut Model, app: &str, directives: &[&str], attach: &[&str]) -> String {
    let flags: Vec<String> = directives.iter().map(|s| s.to_string()).collect();
    let attach: Vec<String> = attach.iter().map(|s| s.to_string()).collect();
    let w = Wanted::parse(&flags, attach, 1).expect("flags");
    let stores = m.apps[app].meta.storage.clone();
    let p = plan(m, app, &stores, &w).expect("plan");
    let u = lifecycle::add_unit(m, app);
    give_new_unit(m, &u, &p);
    machine_started(m, &u);
    u
}

/// Runs (commits) every queued hook of `unit`, answering the hook names in order.
fn run_all(m: &mut Model, unit: &str) -> Vec<String> {
    let mut ran = vec![];
    while let Some(ev) = m.units.get_mut(unit).and_then(|u| u.queue.pop_front()) {
        ran.push(crate::controller::lifecycle::hook_name(m, unit, &ev));
        lifecycle::hook_done(m, unit, &ev);
    }
    ran
}

#[test]
fn metadata_as_juju_reads_it() {
    let m = meta();
    assert_eq!(
        m["data"],
        StoreMeta {
            kind: "filesystem".into(),
            location: Some("/srv/data".into()),
            multiple: false,
            count_min: 1,
            count_max: Some(1),
            minimum_size: 512,
            read_only: false,
            shared: false,
        }
    );
    assert_eq!((m["logs"].count_min, m["logs"].count_max), (1, Some(3)));
    assert_eq!(parse_range("2+"), Ok((2, None)));
    assert_eq!(parse_range("0-"), Ok((0, None)));
    assert!(parse_range("3-1").is_err());
    for bad in [
        json!({"d": {"location": "/x"}}),
        json!({"d": {"type": "tape"}}),
        json!({"d": {"type": "block", "location": "/x"}}),
        json!({"d": {"type": "filesystem", "location": "/var/lib/juju/storage/d"}}),
        json!({"d": {"type": "filesystem", "location": "srv"}}),
        json!({"d": {"type": "filesystem", "location": "/srv/../etc"}}),
        json!({"d": {"type": "filesystem", "location": "/"}}),
    ] {
        assert!(parse_meta(&bad).is_err(), "{bad}");
    }
    // Mount points: state/filesystem.go `FilesystemMountPoint`.
    assert_eq!(mount_point(&m["data"], "data/0"), "/srv/data");
    assert_eq!(
        mount_point(&m["logs"], "logs/3"),
        "/var/lib/juju/storage/logs/3"
    );
    let multi = StoreMeta {
        multiple: true,
        ..m["data"].clone()
    };
    assert_eq!(mount_point(&multi, "data/4"), "/srv/data/data/4");
}

#[test]
fn directives_sizes_and_tool_arguments() {
    // storage/constraints.go `ParseConstraints`: pool, count and size in any order.
    assert_eq!(
        parse_directive("rootfs,2,10G"),
        Ok(Directive {
            pool: Some("rootfs".into()),
            count: Some(2),
            size: Some(10240),
        })
    );
    assert_eq!(parse_directive("1.5G").map(|d| d.size), Ok(Some(1536)));
    assert_eq!(parse_size("2T"), Ok(2 * 1024 * 1024));
    assert_eq!(parse_size("100"), Ok(100));
    assert!(parse_directive("0").is_err());
    assert!(parse_size("5Q").is_err());
    assert!(parse_storage_flags(&["data".into()]).is_err());
    let args = |a: &[&str]| parse_storage_add(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(
        args(&["logs", "data=2"]),
        Ok(vec![("logs".into(), 1), ("data".into(), 2)])
    );
    assert_eq!(
        args(&[]),
        Err("storage add requires a storage directive".into())
    );
    assert_eq!(
        args(&["logs=2G"]),
        Err("only count can be specified for \"logs\"".into())
    );
    assert!(valid_id("data/0") && valid_id("my-store/12"));
    assert!(
        !valid_id("data") && !valid_id("Data/0") && !valid_id("data/x") && !valid_id("da--ta/1")
    );
    let mut ids: Vec<String> = ["data/10", "logs/1", "data/2"].map(String::from).to_vec();
    sort_ids(&mut ids);
    assert_eq!(ids, ["data/2", "data/10", "logs/1"]);
}

#[test]
fn ids_come_from_one_model_wide_sequence() {
    let mut m = model();
    let a = unit_with(&mut m, "etcd", &[], &[]);
    let b = unit_with(&mut m, "other", &["logs=2"], &[]);
    assert_eq!(attached_to(&m, &a, None), ["data/0", "logs/1"]);
    assert_eq!(attached_to(&m, &b, None), ["data/2", "logs/3", "logs/4"]);
    assert_eq!(m.storage.instances["data/0"].size, 1024);
    assert_eq!(m.storage.instances["data/0"].status, Status::Attached);
}

#[test]
fn plans_refuse_what_the_charm_or_the_sandbox_cannot_have() {
    let m = model();
    let stores = meta();
    let d = |s: &str| Wanted::parse(&[s.to_string()], vec![], 1).expect("directive");
    let err = |w: Wanted| plan(&m, "etcd", &stores, &w).unwrap_err();
    let attach = |id: &str| Wanted {
        attach: vec![id.into()],
        ..Wanted::default()
    };
    assert!(err(d("data=2")).contains("not in its range 1"));
    assert!(err(d("logs=4")).contains("not in its range 1-3"));
    assert!(err(d("data=100M")).contains("less than its minimum-size 512M"));
    assert!(err(d("data=ebs")).contains("storage pool \"ebs\" not found"));
    assert!(err(d("nope=1")).contains("charm storage \"nope\" not found"));
    let block = parse_meta(&json!({"disk": {"type": "block"}})).expect("meta");
    let e = plan(&m, "etcd", &block, &Wanted::default()).unwrap_err();
    assert!(e.contains("type block"), "{e}");
    assert!(err(attach("data/9")).contains("storage data/9 not found"));
    let e = Wanted::parse(&[], vec!["data/0".into()], 2).unwrap_err();
    assert_eq!(e, "--attach-storage cannot be used with -n");
}

#[test]
fn storage_attached_runs_before_install() {
    let mut m = model();
    let u = unit_with(&mut m, "etcd", &["logs=2"], &[]);
    let ran = run_all(&mut m, &u);
    assert_eq!(
        ran[..4],
        [
            "data-storage-attached",
            "logs-storage-attached",
            "logs-storage-attached",
            "install"
        ]
    );
    assert_eq!(
        hook_env(
            &m,
            &Event::StorageAttached {
                id: "logs/1".into()
            }
        ),
        [
            ("JUJU_STORAGE_ID".to_string(), "logs/1".to_string()),
            (
                "JUJU_STORAGE_LOCATION".into(),
                "/var/lib/juju/storage/logs/1".into()
            ),
            ("JUJU_STORAGE_KIND".into(), "filesystem".into()),
        ]
    );
    assert!(m.storage.instances.values().all(|i| i.hooked));
}

#[test]
fn storage_add_commits_then_attaches_once_bound() {
    let mut m = model();
    let u = unit_with(&mut m, "etcd", &[], &[]);
    run_all(&mut m, &u);
    let pending = vec![("logs".to_string(), 2)];
    assert!(
        check_add(&m, &u, &pending, &[("logs".into(), 1)]).is_err(),
        "1 + 3 > 3"
    );
    assert!(
        check_add(&m, &u, &[], &[("data".into(), 1)]).is_err(),
        "data is a singleton"
    );
    check_add(&m, &u, &[], &pending).expect("within range");
    commit_adds(&mut m, &u, &pending);
    // Not yet in the machine: not listed, no hook.
    assert_eq!(visible(&m, &u, "logs"), ["logs/1"]);
    assert!(m.units[&u].queue.is_empty());
    mounted(&mut m, "logs/2", true);
    assert_eq!(visible(&m, &u, ""), ["data/0", "logs/1", "logs/2"]);
    assert_eq!(run_all(&mut m, &u), ["logs-storage-attached"]);
}

#[test]
fn removal_detaches_first_keeps_the_data_and_reattaches() {
    let mut m = model();
    let a = unit_with(&mut m, "etcd", &[], &[]);
    let b = unit_with(&mut m, "etcd", &[], &[]);
    run_all(&mut m, &a);
    run_all(&mut m, &b);
    run_all(&mut m, &a);
    // An added volume whose storage-attached has not run gets no detaching hook.
    commit_adds(&mut m, &b, &[("logs".into(), 1)]);
    lifecycle::remove_unit(&mut m, &b);
    let ran = run_all(&mut m, &b);
    assert_eq!(
        ran,
        [
            "data-storage-detaching",
            "logs-storage-detaching",
            "cluster-relation-departed",
            "stop",
            "remove"
        ]
    );
    let ids = attached_to(&m, &b, None);
    assert_eq!(ids, ["data/2", "logs/3", "logs/4"]);
    assert_eq!(m.storage.instances["data/2"].status, Status::Detaching);
    assert!(unit_gone(&mut m, &b).is_empty());
    assert_eq!(m.storage.instances["data/2"].status, Status::Detached);
    assert_eq!(m.storage.instances["data/2"].unit, None);

    // The detached volume goes to a new unit, and only to one.
    let stores = meta();
    let data2 = Wanted {
        attach: vec!["data/2".into()],
        ..Wanted::default()
    };
    let p = plan(&m, "etcd", &stores, &data2).expect("plan");
    assert_eq!(p.new, [("logs".to_string(), 1, POOL.to_string(), 1024)]);
    let c = lifecycle::add_unit(&mut m, "etcd");
    give_new_unit(&mut m, &c, &p);
    machine_started(&mut m, &c);
    assert_eq!(attached_to(&m, &c, None), ["data/2", "logs/5"]);
    assert!(plan(&m, "etcd", &stores, &data2)
        .unwrap_err()
        .contains("is attached to etcd/2"));
    assert_eq!(
        run_all(&mut m, &c)[..3],
        ["data-storage-attached", "logs-storage-attached", "install"]
    );

    // --destroy-storage: removed with the unit.
    destroy_with(&mut m, &c);
    lifecycle::remove_unit(&mut m, &c);
    run_all(&mut m, &c);
    assert_eq!(unit_gone(&mut m, &c), ["data/2", "logs/5"]);
    assert!(!m.storage.instances.contains_key("data/2"));
    assert_eq!(m.storage.instances["logs/3"].status, Status::Detached);
}

#[test]
fn listing_as_juju_storage_prints_it() {
    let mut m = model();
    let a = unit_with(&mut m, "etcd", &["data=2G"], &[]);
    run_all(&mut m, &a);
    let t = listing::tabular(&m);
    assert_eq!(
        t,
        "Unit    Storage ID  Type        Pool    Size     Status    Message\n\
         etcd/0  data/0      filesystem  rootfs  2.0 GiB  attached\n\
         etcd/0  logs/1      filesystem  rootfs  1.0 GiB  attached\n"
    );
    assert_eq!(listing::humanize_mib(512), "512 MiB");
    assert_eq!(listing::humanize_mib(10240), "10 GiB");
    let v = serde_json::to_value(listing::list(&m)).expect("json");
    assert_eq!(
        v["storage"]["data/0"]["attachments"]["units"]["etcd/0"]["location"],
        "/srv/data"
    );
    assert_eq!(
        v["filesystems"]["0"]["attachments"]["machines"]["0"]["mount-point"],
        "/srv/data"
    );
}

#[test]
fn a_refresh_that_adds_a_required_store_gives_every_unit_its_instances() {
    let mut m = model();
    // A charm revision without storage, one unit on it.
    m.apps.get_mut("other").unwrap().meta.storage.clear();
    let u = unit_with(&mut m, "other", &[], &[]);
    run_all(&mut m, &u);
    assert!(attached_to(&m, &u, None).is_empty());
    // The next revision declares `data` (one required) and `logs` (range 1-3).
    let meta = CharmMeta {
        storage: meta(),
        ..CharmMeta::default()
    };
    lifecycle::records::refreshed(&mut m, "other", "/y".into(), 2, meta.clone());
    let mut ids = attached_to(&m, &u, None);
    sort_ids(&mut ids);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.iter().any(|i| store_of(i) == "data") && ids.iter().any(|i| store_of(i) == "logs"));
    for id in &ids {
        mounted(&mut m, id, true);
    }
    let ran = run_all(&mut m, &u);
    assert_eq!(
        ran.iter()
            .filter(|h| h.ends_with("-storage-attached"))
            .count(),
        2,
        "{ran:?}"
    );
    assert_eq!(ran[0], "upgrade-charm", "{ran:?}");
    // Refreshing again to the same stores adds nothing.
    lifecycle::records::refreshed(&mut m, "other", "/z".into(), 3, meta);
    assert_eq!(attached_to(&m, &u, None).len(), 2);
}

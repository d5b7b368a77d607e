//! Juju charm storage end to end with the storage-probe charm: storage attached before
//! `install`, `storage-get`/`storage-list`, `storage-add` at run time, `-storage-detaching` in
//! Juju's order on removal, a detached volume kept with its data and given to a new unit with
//! `add-unit --attach-storage`, and `remove-unit --destroy-storage`. Needs root.

mod common;
use common::{repo_root, Sandbox};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

fn charm() -> String {
    repo_root()
        .join("tests/charms/storage-probe")
        .to_string_lossy()
        .into_owned()
}

/// The hook names a unit ran, in order.
fn hooks(sb: &Sandbox, unit: &str) -> Vec<String> {
    sb.probe_log(unit, "hooks.log")
        .iter()
        .map(|l| l.split('|').next().unwrap_or_default().to_string())
        .collect()
}

/// The hooks.log line of `hook` on `unit` (fields: hook, id, location, kind).
fn hook_line(sb: &Sandbox, unit: &str, hook: &str) -> Vec<String> {
    sb.probe_log(unit, "hooks.log")
        .into_iter()
        .find(|l| l.starts_with(&format!("{hook}|")))
        .map(|l| l.split('|').map(String::from).collect())
        .unwrap_or_default()
}

fn wait_hook(sb: &Sandbox, unit: &str, hook: &str) {
    sb.eventually(
        &format!("{hook} on {unit}"),
        Duration::from_secs(90),
        || hooks(sb, unit).iter().any(|h| h == hook).then_some(()),
    );
}

fn storage(sb: &Sandbox) -> Value {
    serde_json::from_str(&sb.ok(&["storage", "--format", "json"])).expect("storage json")
}

fn pos(v: &[String], hook: &str) -> usize {
    v.iter()
        .position(|h| h == hook)
        .unwrap_or_else(|| panic!("{hook} not in {v:?}"))
}

/// Juju's storage resolver runs before install and before the teardown branch
/// (`[internal/]worker/uniter/storage/resolver.go`, `[internal/]worker/uniter/resolver.go`
/// `nextOp`); ids come from the model-wide `stores` sequence (state/storage.go
/// `newStorageInstanceId`); the tools follow `jujuc/storage-get.go`, `storage-list.go`,
/// `storage-add.go`; removal and reattachment follow cmd/juju/application/removeunit.go and
/// addunit.go.
#[test]
fn storage_attached_detached_and_reattached() {
    let sb = Sandbox::new("storage");
    sb.ok(&["deploy", &charm(), "-n", "2", "--storage", "data=rootfs,2G"]);
    sb.wait_active(2);
    let s = storage(&sb);
    let ids: Vec<&String> = s["storage"].as_object().expect("storage").keys().collect();
    assert_eq!(ids, ["data/0", "data/2", "logs/1", "logs/3"], "{s}");
    assert_eq!(
        s["storage"]["data/0"]["attachments"]["units"]["storage-probe/0"]["location"], "/srv/data",
        "{s}"
    );
    assert_eq!(
        s["storage"]["data/0"]["status"]["current"], "attached",
        "{s}"
    );
    assert_eq!(s["filesystems"]["0"]["size"], 2048, "{s}");
    let table = sb.ok(&["storage"]);
    assert!(
        table.starts_with("Unit             Storage ID  Type        Pool    Size     Status    Message\nstorage-probe/0  data/0      filesystem  rootfs  2.0 GiB  attached\n"),
        "{table}"
    );

    // Every store gets storage-attached before install, with Juju's environment.
    let u0 = "storage-probe/0";
    let h = hooks(&sb, u0);
    assert_eq!(
        &h[..3],
        ["data-storage-attached", "logs-storage-attached", "install"],
        "{h:?}"
    );
    assert_eq!(
        hook_line(&sb, u0, "data-storage-attached"),
        ["data-storage-attached", "data/0", "/srv/data", "filesystem"]
    );
    assert_eq!(
        hook_line(&sb, u0, "logs-storage-attached"),
        [
            "logs-storage-attached",
            "logs/1",
            "/var/lib/juju/storage/logs/1",
            "filesystem"
        ]
    );
    assert_eq!(
        sb.probe_log(u0, "get-data-0"),
        ["kind: filesystem", "location: /srv/data"]
    );
    assert_eq!(sb.probe_log(u0, "location-data-0"), ["/srv/data"]);
    assert_eq!(
        sb.probe_log(u0, "get-data-0.json"),
        [r#"{"kind":"filesystem","location":"/srv/data"}"#]
    );
    assert_eq!(
        sb.probe_log(u0, "list-install.json"),
        [r#"["data/0","logs/1"]"#]
    );
    assert_eq!(sb.probe_log(u0, "list-install-data"), ["data/0"]);

    // Outside a storage hook -s is needed; a bad or unknown id is a usage error.
    let (code, _, err) = sb.exec(u0, "storage-get");
    assert_eq!(
        (code, err.as_str()),
        (2, "ERROR no storage instance specified\n")
    );
    let (code, _, err) = sb.exec(u0, "storage-get -s data/2");
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = sb.exec(u0, "storage-get -s nope");
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "ERROR invalid value \"nope\" for option -s: invalid storage ID \"nope\"\n"
        )
    );
    let (code, _, err) = sb.exec(u0, "storage-get -s data/0 size");
    assert_eq!(
        (code, err.as_str()),
        (1, "ERROR invalid storage attribute \"size\"\n")
    );
    let (code, _, err) = sb.exec(u0, "storage-add");
    assert_eq!(
        (code, err.as_str()),
        (2, "ERROR storage add requires a storage directive\n")
    );
    let (code, _, err) = sb.exec(u0, "storage-add logs=2G");
    assert_eq!(
        (code, err.as_str()),
        (2, "ERROR only count can be specified for \"logs\"\n")
    );

    // storage-add is committed when the context exits; the new volume then gets its hook.
    let (code, out, err) = sb.exec(u0, "storage-add logs=1 && storage-list logs");
    assert_eq!((code, out.as_str()), (0, "logs/1\n"), "{err}");
    sb.eventually("logs/4 attached", Duration::from_secs(60), || {
        (sb.probe_log(u0, "location-logs-4") == ["/var/lib/juju/storage/logs/4"]).then_some(())
    });
    let (_, out, _) = sb.exec(u0, "storage-list");
    assert_eq!(out, "data/0\nlogs/1\nlogs/4\n");
    let (code, _, _) = sb.ssh(u0, "test -s /var/lib/juju/storage/logs/4/owners");
    assert_eq!(code, 0);

    // Removal: the dying unit runs storage-detaching first, before its relation teardown and
    // stop; remove is last. Its volumes are detached and kept.
    let u1 = "storage-probe/1";
    sb.ssh(u1, "touch /var/lib/probe/hold-remove");
    assert_eq!(
        sb.ok(&["remove-unit", u1]),
        "will remove unit storage-probe/1\n- will detach storage data/2\n- will detach storage logs/3\n"
    );
    wait_hook(&sb, u1, "remove");
    let h = hooks(&sb, u1);
    let (detach, departed, stop) = (
        pos(&h, "data-storage-detaching"),
        pos(&h, "peer-relation-departed"),
        pos(&h, "stop"),
    );
    assert!(detach < departed && departed < stop, "{h:?}");
    assert_eq!(
        hook_line(&sb, u1, "data-storage-detaching"),
        [
            "data-storage-detaching",
            "data/2",
            "/srv/data",
            "filesystem"
        ]
    );
    sb.ssh(u1, "rm -f /var/lib/probe/hold-remove");
    sb.eventually("storage-probe/1 gone", Duration::from_secs(60), || {
        (!sb.units("storage-probe").contains(&u1.to_string())).then_some(())
    });
    let s = storage(&sb);
    assert_eq!(
        s["storage"]["data/2"]["status"]["current"], "detached",
        "{s}"
    );
    assert!(s["storage"]["data/2"].get("attachments").is_none(), "{s}");
    let table = sb.ok(&["storage"]);
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.trim_start().starts_with("data/2")),
        "{table}"
    );

    // --attach-storage gives the volume, its data intact, to a new unit, before its install.
    let out = sb.run(&[
        "add-unit",
        "storage-probe",
        "-n",
        "2",
        "--attach-storage",
        "data/2",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--attach-storage cannot be used with -n")
    );
    sb.ok(&[
        "add-unit",
        "storage-probe",
        "--attach-storage",
        "data/2",
        "--storage",
        "logs=2",
    ]);
    sb.wait_active(2);
    let u2 = "storage-probe/2";
    let h = hooks(&sb, u2);
    assert!(
        pos(&h, "data-storage-attached") < pos(&h, "install"),
        "{h:?}"
    );
    let (_, owners, _) = sb.ssh(u2, "cat /srv/data/owners");
    assert_eq!(owners, "storage-probe/1\nstorage-probe/2\n");
    let s = storage(&sb);
    assert_eq!(
        s["storage"]["data/2"]["attachments"]["units"][u2]["location"], "/srv/data",
        "{s}"
    );
    assert!(
        s["storage"]["logs/6"]["attachments"]["units"][u2].is_object(),
        "new logs volumes from the sequence: {s}"
    );

    // --destroy-storage removes the unit's volumes and their data.
    assert_eq!(
        sb.ok(&["remove-unit", u2, "--destroy-storage"]),
        "will remove unit storage-probe/2\n- will remove storage data/2\n- will remove storage logs/5\n- will remove storage logs/6\n"
    );
    sb.eventually("data/2 destroyed", Duration::from_secs(90), || {
        storage(&sb)["storage"]
            .get("data/2")
            .is_none()
            .then_some(())
    });
    assert!(!sb.home.join("storage/data-2").exists());
    assert!(
        sb.home.join("storage/logs-3").exists(),
        "logs/3 stays detached"
    );
    // The volumes are the owner's alone on the host (their content is the machines').
    for d in ["storage", "storage/logs-3", "storage/data-0"] {
        let mode = std::fs::metadata(sb.home.join(d))
            .expect(d)
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{d}");
    }
}

/// The same verbs and hooks in 2.9 mode (cmd/juju/application/deploy.go and addunit.go have
/// the same `--storage`/`--attach-storage` flags at 2.9): a size under `minimum-size` refused,
/// a read-only store (state/filesystem.go `FilesystemMountPoint` for a `multiple` one) and a
/// detached volume given to another application's unit.
#[test]
fn storage_in_juju29_mode() {
    let sb = Sandbox::with_agent_version("storage29", Some("2.9.44"));
    let out = sb.run(&["deploy", &charm(), "--storage", "data=rootfs,256M"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("less than its minimum-size 512M"),
        "{out:?}"
    );
    sb.ok(&["deploy", &charm(), "--storage", "logs=2"]);
    sb.wait_active(1);
    let u = "storage-probe/0";
    let h = hooks(&sb, u);
    assert_eq!(
        &h[..4],
        [
            "data-storage-attached",
            "logs-storage-attached",
            "logs-storage-attached",
            "install"
        ],
        "{h:?}"
    );
    let (_, out, _) = sb.exec(u, "storage-list --format json logs");
    assert_eq!(out, "[\"logs/1\",\"logs/2\"]\n");
    // A read-only store added at run time is mounted read-only, at `<location>/<id>`.
    let (code, _, err) = sb.exec(u, "storage-add conf");
    assert_eq!(code, 0, "{err}");
    sb.eventually("conf/3 attached", Duration::from_secs(60), || {
        (sb.probe_log(u, "location-conf-3") == ["/etc/probe-conf/conf/3"]).then_some(())
    });
    let (code, _, err) = sb.ssh(u, "touch /etc/probe-conf/conf/3/x");
    assert!(code != 0 && err.contains("Read-only file system"), "{err}");
    // A detached volume goes to another application's new unit with `deploy --attach-storage`.
    assert_eq!(
        sb.ok(&["remove-unit", u]),
        "will remove unit storage-probe/0\n- will detach storage conf/3\n- will detach storage data/0\n- will detach storage logs/1\n- will detach storage logs/2\n"
    );
    sb.eventually("data/0 detached", Duration::from_secs(90), || {
        (storage(&sb)["storage"]["data/0"]["status"]["current"] == "detached").then_some(())
    });
    sb.ok(&["deploy", &charm(), "again", "--attach-storage", "data/0"]);
    sb.wait_active(1);
    let (_, owners, _) = sb.ssh("again/0", "cat /srv/data/owners");
    assert_eq!(owners, "storage-probe/0\nagain/0\n");
    assert_eq!(
        hook_line(&sb, "again/0", "data-storage-attached")[1],
        "data/0"
    );
}

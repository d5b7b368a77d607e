//! `storage-get`, `storage-list` and `storage-add` (jujuc/storage-get.go, storage-list.go,
//! storage-add.go, storage-id.go).

use super::{check, fails, prints, run_with, FakeEnv};

fn with_storage() -> FakeEnv {
    FakeEnv {
        storage: vec![
            ("data/0".into(), "/srv/data".into()),
            ("logs/1".into(), "/var/lib/juju/storage/logs/1".into()),
        ],
        ..FakeEnv::new()
    }
}

fn in_data_hook() -> FakeEnv {
    FakeEnv {
        hook_storage: Some("data/0".into()),
        ..with_storage()
    }
}

#[test]
fn storage_get_knows_kind_and_location() {
    check(
        in_data_hook,
        &[
            prints(&["storage-get"], "kind: filesystem\nlocation: /srv/data\n"),
            prints(
                &["storage-get", "--format", "yaml"],
                "kind: filesystem\nlocation: /srv/data\n",
            ),
            prints(
                &["storage-get", "--format=json"],
                "{\"kind\":\"filesystem\",\"location\":\"/srv/data\"}\n",
            ),
            prints(&["storage-get", "location"], "/srv/data\n"),
            prints(
                &["storage-get", "-s", "logs/1", "location"],
                "/var/lib/juju/storage/logs/1\n",
            ),
            prints(
                &["storage-get", "-s", "logs/1", "kind", "--format", "json"],
                "\"filesystem\"\n",
            ),
            fails(
                &["storage-get", "size"],
                1,
                "ERROR invalid storage attribute \"size\"\n",
            ),
            fails(
                &["storage-get", "kind", "location"],
                2,
                "ERROR unrecognized args: [\"location\"]\n",
            ),
            fails(
                &["storage-get", "-s", "data"],
                2,
                "ERROR invalid value \"data\" for option -s: invalid storage ID \"data\"\n",
            ),
            fails(
                &["storage-get", "-s", "data/9"],
                2,
                "ERROR invalid value \"data/9\" for option -s: storage \"data/9\" not found\n",
            ),
        ],
    );
    check(
        with_storage,
        &[
            fails(&["storage-get"], 2, "ERROR no storage instance specified\n"),
            prints(&["storage-get", "-s", "data/0", "kind"], "filesystem\n"),
        ],
    );
}

#[test]
fn storage_list_in_the_controller_s_order() {
    check(
        with_storage,
        &[
            prints(&["storage-list"], "data/0\nlogs/1\n"),
            prints(&["storage-list", "logs"], "logs/1\n"),
            prints(
                &["storage-list", "--format", "json"],
                "[\"data/0\",\"logs/1\"]\n",
            ),
            prints(&["storage-list", "nope"], ""),
            prints(&["storage-list", "nope", "--format", "json"], "[]\n"),
            fails(
                &["storage-list", "a", "b"],
                2,
                "ERROR unrecognized args: [\"b\"]\n",
            ),
        ],
    );
}

#[test]
fn storage_add_takes_only_counts() {
    let mut env = FakeEnv::new();
    let got = run_with(&mut env, &["storage-add", "logs", "data=2"], &[]);
    assert_eq!((got.0, got.2.as_str()), (0, ""));
    assert_eq!(
        env.storage_adds,
        [("logs".to_string(), 1), ("data".into(), 2)]
    );
    check(
        FakeEnv::new,
        &[
            fails(
                &["storage-add"],
                2,
                "ERROR storage add requires a storage directive\n",
            ),
            fails(
                &["storage-add", "logs=1G"],
                2,
                "ERROR only count can be specified for \"logs\"\n",
            ),
        ],
    );
}

//! Config, action and status tools.

use super::{check, fails, prints, run_ok, run_with, FakeEnv};
use serde_json::json;

fn configured() -> FakeEnv {
    let config = json!({"port": 2379, "ratio": 0.5, "debug": false, "name": "etcd", "token": null, "big": 1234567.0});
    let config = config
        .as_object()
        .expect("object")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    FakeEnv {
        config,
        ..FakeEnv::new()
    }
}

#[test]
fn config_get() {
    check(configured, &[
        prints(&["config-get"], "big: 1.234567e+06\ndebug: false\nname: etcd\nport: 2379\nratio: 0.5\n"),
        prints(&["config-get", "--all"], "big: 1.234567e+06\ndebug: false\nname: etcd\nport: 2379\nratio: 0.5\ntoken: null\n"),
        (&["config-get", "--format=json", "-a"], 0,
            "{\"big\":1234567,\"debug\":false,\"name\":\"etcd\",\"port\":2379,\"ratio\":0.5,\"token\":null}\n", ""),
        prints(&["config-get", "port"], "2379\n"),
        prints(&["config-get", "debug"], "False\n"),
        prints(&["config-get", "name"], "etcd\n"),
        prints(&["config-get", "--format=json", "name"], "\"etcd\"\n"),
        prints(&["config-get", "token"], ""),
        prints(&["config-get", "missing"], ""),
        prints(&["config-get", "--format=json", "missing"], "null\n"),
        fails(&["config-get", "--all", "port"], 2, "ERROR cannot use argument --all together with key \"port\"\n"),
        fails(&["config-get", "port", "x"], 2, "ERROR unrecognized args: [\"x\"]\n"),
    ]);
}

fn in_action() -> FakeEnv {
    FakeEnv {
        params: Some(json!({"file": {"kind": "xz", "level": 9}, "force": true})),
        ..FakeEnv::new()
    }
}

#[test]
fn action_get() {
    check(
        in_action,
        &[
            prints(
                &["action-get"],
                "file:\n  kind: xz\n  level: 9\nforce: true\n",
            ),
            prints(
                &["action-get", "--format=json"],
                "{\"file\":{\"kind\":\"xz\",\"level\":9},\"force\":true}\n",
            ),
            prints(&["action-get", "file.kind"], "xz\n"),
            prints(&["action-get", "file"], "kind: xz\nlevel: 9\n"),
            prints(&["action-get", "force"], "True\n"),
            prints(&["action-get", "file.nope"], ""),
            prints(&["action-get", "force.deeper"], ""),
            prints(&["action-get", "--format=json", "nope"], "null\n"),
            fails(
                &["action-get", "a", "b"],
                2,
                "ERROR unrecognized args: [\"b\"]\n",
            ),
        ],
    );
    check(
        || FakeEnv {
            params: Some(serde_json::Value::Null),
            ..FakeEnv::new()
        },
        &[(&["action-get"], 0, "{}\n", "")],
    );
    check(
        FakeEnv::new,
        &[(&["action-get"], 1, "", "ERROR not running an action\n")],
    );
}

#[test]
fn action_set_fail_log() {
    let mut env = in_action();
    run_ok(
        &mut env,
        &[
            "action-set",
            "a.b=1",
            "out=x=y",
            "empty=",
            "5-o-0.c1=hello world",
        ],
        &[],
    );
    let want: Vec<(String, String)> = [
        ("a.b", "1"),
        ("out", "x=y"),
        ("empty", ""),
        ("5-o-0.c1", "hello world"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(env.results, want);
    let key_err = |k: &str| {
        format!(
            "ERROR key \"{k}\" must start and end with lowercase alphanumeric, and contain only lowercase \
             alphanumeric, hyphens and periods\n"
        )
    };
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["action-set", "result"],
            "ERROR argument \"result\" must be of the form key...=value\n".into(),
        ),
        (vec!["action-set", "ok=1", "Foo=1"], key_err("Foo")),
        (vec!["action-set", "foo-=1"], key_err("foo-")),
        (vec!["action-set", "foo..bar=1"], key_err("")),
        (vec!["action-set", "foo_bar=1"], key_err("foo_bar")),
        (
            vec!["action-set", "stdout=1"],
            "ERROR cannot set reserved action key \"stdout\"\n".into(),
        ),
        (
            vec!["action-set", "a.stderr-encoding=1"],
            "ERROR cannot set reserved action key \"stderr-encoding\"\n".into(),
        ),
    ];
    for (args, err) in cases {
        let mut env = in_action();
        assert_eq!(
            run_with(&mut env, &args, &[]),
            (2, String::new(), err, None),
            "{args:?}"
        );
        assert!(
            env.results.is_empty(),
            "{args:?} set results before failing"
        );
    }
    let mut env = in_action();
    run_ok(&mut env, &["action-fail"], &[]);
    assert_eq!(
        env.failed.as_deref(),
        Some("action failed without reason given, check action for errors")
    );
    run_ok(&mut env, &["action-fail", "disk full"], &[]);
    assert_eq!(env.failed.as_deref(), Some("disk full"));
    run_ok(&mut env, &["action-log", "step", "1", "of", "3"], &[]);
    assert_eq!(env.action_logs, vec!["step 1 of 3".to_string()]);
    check(
        in_action,
        &[
            fails(
                &["action-fail", "a", "b"],
                2,
                "ERROR unrecognized args: [\"b\"]\n",
            ),
            fails(&["action-log"], 2, "ERROR no message specified\n"),
        ],
    );
}

#[test]
fn status_set_and_get() {
    let mut env = FakeEnv::new();
    run_ok(
        &mut env,
        &["status-set", "maintenance", "installing etcd"],
        &[],
    );
    run_ok(&mut env, &["status-set", "active"], &[]);
    let want = vec![
        (false, "maintenance".into(), "installing etcd".into()),
        (false, "active".into(), String::new()),
    ];
    assert_eq!(env.status_sets, want);
    let leader = || FakeEnv {
        leader: true,
        ..FakeEnv::new()
    };
    let mut env = leader();
    run_ok(
        &mut env,
        &["status-set", "--application", "blocked", "need 3 units"],
        &[],
    );
    assert_eq!(
        env.status_sets,
        vec![(true, "blocked".into(), "need 3 units".into())]
    );
    check(FakeEnv::new, &[
        fails(&["status-set"], 2, "ERROR invalid args, require <status> [message]\n"),
        (&["status-set", "error", "x"], 2, "",
            "ERROR invalid status \"error\", expected one of [maintenance blocked waiting active]\n"),
        fails(&["status-set", "active", "a", "b"], 2, "ERROR unrecognized args: [\"b\"]\n"),
        fails(&["status-set", "--application", "active"], 1, "ERROR this unit is not the leader\n"),
        prints(&["status-get"], "active\n"),
        prints(&["status-get", "--format=json"], "{\"status\":\"active\"}\n"),
        prints(&["status-get", "--include-data"], "message: ok\nstatus: active\nstatus-data: {}\n"),
        (&["status-get", "--include-data", "--format=json"], 0,
            "{\"message\":\"ok\",\"status\":\"active\",\"status-data\":{}}\n", ""),
        (&["status-get", "--application"], 1, "",
            "ERROR finding application status: this unit is not the leader\n"),
    ]);
    check(leader, &[
        prints(&["status-get", "--application"], "waiting\n"),
        (&["status-get", "--application", "--format=yaml"], 0,
            "application-status:\n  status: waiting\n  units:\n    etcd/0:\n      status: active\n", ""),
        (&["status-get", "--application", "--include-data", "--format=json"], 0,
            "{\"application-status\":{\"message\":\"2 of 3\",\"status\":\"waiting\",\"status-data\":{},\
             \"units\":{\"etcd/0\":{\"message\":\"ok\",\"status\":\"active\",\"status-data\":{}}}}}\n", ""),
    ]);
}

#[test]
fn application_version_set() {
    let mut env = FakeEnv::new();
    run_ok(&mut env, &["application-version-set", "3.5.17"], &[]);
    assert_eq!(env.version.as_deref(), Some("3.5.17"));
    check(
        FakeEnv::new,
        &[(
            &["application-version-set"],
            2,
            "",
            "ERROR no version specified\n",
        )],
    );
}

//! The `secret-*` tools against the fake environment and the real secret store: Juju's
//! argument errors (exit 2), run-time errors (exit 1), output formats, and what a hook's
//! changes do once committed.

use super::fake::MODEL_UUID;
use super::{check, fails, run_ok, run_with, FakeEnv};

fn leader() -> FakeEnv {
    FakeEnv {
        leader: true,
        ..FakeEnv::new()
    }
}

/// Adds a secret as the leader and commits; answers its bare id.
fn added(env: &mut FakeEnv, args: &[&str]) -> String {
    let (code, out, err, _) = run_with(env, args, &[]);
    assert_eq!(code, 0, "{args:?}: {err}");
    let prefix = format!("secret://{MODEL_UUID}/");
    let id = out.trim().strip_prefix(&prefix).expect(&out).to_string();
    assert_eq!(id.len(), 20, "{id}");
    env.commit_secrets().expect("commit");
    id
}

#[test]
fn arguments_are_checked_as_juju_s_init_does() {
    let id = "secret:cfcu75uffbas7amkm0d0";
    check(leader, &[
        fails(&["secret-add"], 2, "ERROR missing secret value or filename\n"),
        fails(&["secret-add", "ca=x"], 2, "ERROR key \"ca\" not valid\n"),
        fails(&["secret-add", "tls_cert=x"], 2, "ERROR key \"tls_cert\" not valid\n"),
        fails(&["secret-add", "key="], 2, "ERROR key value \"key=\" not valid\n"),
        fails(&["secret-add", "=abc"], 2, "ERROR key value \"=abc\" not valid\n"),
        fails(&["secret-add", "--owner", "model", "abc=1"], 2, "ERROR secret owner \"model\" not valid\n"),
        fails(&["secret-add", "--rotate", "often", "abc=1"], 2, "ERROR rotate policy \"often\" not valid\n"),
        fails(&["secret-add", "--expire", "soon", "abc=1"], 2, "ERROR expire time or duration \"soon\" not valid\n"),
        fails(&["secret-add", "--expire", "-1h", "abc=1"], 2, "ERROR negative expire duration \"-1h\" not valid\n"),
        fails(&["secret-add", "abc#file=/nope"], 2, "ERROR open /nope: no such file or directory\n"),
        fails(&["secret-set"], 2, "ERROR missing secret URI\n"),
        fails(&["secret-set", "bogus", "abc=1"], 2, "ERROR secret URI \"bogus\" not valid\n"),
        fails(&["secret-get"], 2, "ERROR require either a secret URI or label\n"),
        fails(&["secret-get", "http:x"], 2, "ERROR secret URI scheme \"http\" not valid\n"),
        fails(&["secret-get", id, "--peek", "--refresh"], 2, "ERROR specify one of --peek or --refresh but not both\n"),
        fails(&["secret-get", id, "--format", "smart"], 2, "ERROR invalid value \"smart\" for option --format: unknown format \"smart\"\n"),
        fails(&["secret-info-get"], 2, "ERROR require either a secret URI or label\n"),
        fails(&["secret-info-get", id, "--label", "x"], 2, "ERROR specify either a secret URI or label but not both\n"),
        fails(&["secret-grant", id], 2, "ERROR no relation id specified\n"),
        fails(&["secret-grant", id, "-r", "7", "--unit", "mysql"], 2, "ERROR unit \"mysql\" not valid\n"),
        fails(&["secret-grant", id, "-r", "7", "--unit", "pg/0"], 2, "ERROR cannot specify unit \"pg/0\" in relation to application \"mysql\"\n"),
        fails(&["secret-revoke", id], 2, "ERROR missing relation or application or unit\n"),
        fails(&["secret-revoke", id, "--app", "a", "--unit", "a/0"], 2, "ERROR specify only one of application or unit\n"),
        fails(&["secret-revoke", id, "-r", "7", "--app", "mysql"], 2, "ERROR do not specify both relation and app\n"),
        fails(&["secret-remove", id, "--revision", "x"], 2, "ERROR invalid value \"x\" for option --revision: strconv.ParseInt: parsing \"x\": invalid syntax\n"),
        // Run-time errors: exit 1.
        fails(&["secret-get", id], 1, "ERROR secret \"secret:cfcu75uffbas7amkm0d0\" not found\n"),
        fails(&["secret-get", "--label", "nope"], 1, "ERROR consumer label \"nope\" not found\n"),
        fails(&["secret-info-get", id], 1, "ERROR secret \"cfcu75uffbas7amkm0d0\" not found\n"),
    ]);
    check(
        FakeEnv::new,
        &[fails(
            &["secret-add", "abc=1"],
            1,
            "ERROR this unit is not the leader\n",
        )],
    );
}

#[test]
fn content_round_trips_in_every_form() {
    let mut env = leader();
    let files = [
        (
            "/run/ca.pem",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        ),
        ("-", "password: s3cret\nport: 2379\n"),
    ];
    let (code, out, err, _) = run_with(
        &mut env,
        &[
            "secret-add",
            "--label",
            "creds",
            "ca-cert#file=/run/ca.pem",
            "token=a=b",
            "raw#base64=AA==",
            "--file",
            "-",
        ],
        &files,
    );
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let id = out.trim().to_string();
    env.commit_secrets().expect("commit");
    check_get(&mut env, &["secret-get", &id, "token"], "a=b\n");
    check_get(&mut env, &["secret-get", &id, "raw#base64"], "AA==\n");
    check_get(
        &mut env,
        &["secret-get", &id, "port", "--format", "json"],
        "\"2379\"\n",
    );
    check_get(
        &mut env,
        &["secret-get", "--label", "creds", "--format", "json"],
        "{\"ca-cert\":\"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\",\"password\":\"s3cret\",\"port\":\"2379\",\"raw\":\"\\u0000\",\"token\":\"a=b\"}\n",
    );
    check_get(
        &mut env,
        &["secret-get", "--label", "creds"],
        "ca-cert: |\n  -----BEGIN CERTIFICATE-----\n  MIIB\n  -----END CERTIFICATE-----\npassword: s3cret\nport: \"2379\"\nraw: \"\\0\"\ntoken: a=b\n",
    );
    let got = run_with(&mut env, &["secret-get", &id, "nope"], &[]);
    assert_eq!(
        (got.0, got.2.as_str()),
        (1, "ERROR secret key value \"nope\" not found\n")
    );
}

#[track_caller]
fn check_get(env: &mut FakeEnv, args: &[&str], want: &str) {
    let (code, out, err, _) = run_with(env, args, &[]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, want, ""),
        "{args:?}"
    );
}

#[test]
fn revisions_are_tracked_peeked_and_refreshed() {
    let mut env = leader();
    let id = added(&mut env, &["secret-add", "value=one"]);
    // The hook that adds a secret reads its pending content.
    let (_, out, _, _) = run_with(&mut env, &["secret-add", "--owner", "unit", "other=x"], &[]);
    let pending = out.trim().to_string();
    check_get(&mut env, &["secret-get", &pending, "other"], "x\n");
    env.pending = Default::default();

    check_get(&mut env, &["secret-get", &id, "value"], "one\n");
    run_ok(&mut env, &["secret-set", &id, "value=two"], &[]);
    // Until the hook exits, the tracked revision stays what it read; --peek shows the change.
    check_get(&mut env, &["secret-get", &id, "value"], "one\n");
    check_get(&mut env, &["secret-get", &id, "value", "--peek"], "two\n");
    env.commit_secrets().expect("commit");
    check_get(
        &mut env,
        &["secret-get", &format!("secret:{id}"), "value"],
        "one\n",
    );
    check_get(&mut env, &["secret-get", &id, "value", "--peek"], "two\n");
    check_get(&mut env, &["secret-get", &id, "value"], "one\n");
    check_get(
        &mut env,
        &["secret-get", &id, "value", "--refresh"],
        "two\n",
    );
    check_get(
        &mut env,
        &["secret-get", &format!("{MODEL_UUID}/{id}"), "value"],
        "two\n",
    );
}

#[test]
fn metadata_and_ids() {
    let mut env = leader();
    check_get(&mut env, &["secret-ids"], "");
    check_get(&mut env, &["secret-ids", "--format", "json"], "null\n");
    check_get(&mut env, &["secret-ids", "--format", "yaml"], "[]\n");
    let id = added(
        &mut env,
        &[
            "secret-add",
            "--label",
            "tls",
            "--description",
            "the CA",
            "--rotate",
            "daily",
            "--expire",
            "2030-01-02T03:04:05",
            "abc=1",
        ],
    );
    check_get(&mut env, &["secret-ids"], &format!("{id}\n"));
    check_get(
        &mut env,
        &["secret-info-get", "--label", "tls"],
        &format!("{id}:\n  revision: 1\n  label: tls\n  owner: application\n  description: the CA\n  rotation: daily\n  expiry: 2030-01-02T03:04:05Z\n  rotates: 1970-01-02T00:16:40Z\n"),
    );
    check_get(
        &mut env,
        &["secret-info-get", &id, "--format", "json"],
        &format!("{{\"{id}\":{{\"revision\":1,\"label\":\"tls\",\"owner\":\"application\",\"description\":\"the CA\",\"rotation\":\"daily\",\"expiry\":\"2030-01-02T03:04:05Z\",\"rotates\":\"1970-01-02T00:16:40Z\"}}}}\n"),
    );
    // A non-leader sees none of its application's secrets as owner.
    env.leader = false;
    check_get(&mut env, &["secret-ids"], "");
    let got = run_with(&mut env, &["secret-info-get", &id], &[]);
    assert_eq!(
        (got.0, got.2),
        (1, format!("ERROR secret \"{id}\" not found\n"))
    );
}

#[test]
fn grants_revokes_and_refusals_at_commit() {
    let mut env = leader();
    let id = added(&mut env, &["secret-add", "abc=1"]);
    let as_mysql = |env: &mut FakeEnv| {
        env.secret_unit = Some("mysql/0".into());
        let got = run_with(env, &["secret-get", &id, "abc"], &[]);
        env.secret_unit = None;
        (got.0, got.1, got.2)
    };
    assert_eq!(
        as_mysql(&mut env),
        (1, String::new(), "ERROR permission denied\n".into())
    );
    run_ok(&mut env, &["secret-grant", &id, "-r", "7"], &[]);
    env.commit_secrets().expect("commit");
    // YAML, the default, quotes what would read back as a number.
    assert_eq!(as_mysql(&mut env), (0, "\"1\"\n".into(), String::new()));
    // The owner sees the grant in `access` (Juju 3.3+), as tags.
    check_get(
        &mut env,
        &["secret-info-get", &id],
        &format!("{id}:\n  revision: 1\n  label: \"\"\n  owner: application\n  rotation: never\n  access:\n  - target: application-mysql\n    scope: relation-mysql.db#etcd.db\n    role: view\n"),
    );
    run_ok(&mut env, &["secret-revoke", &id, "--app", "mysql"], &[]);
    env.commit_secrets().expect("commit");
    assert_eq!(as_mysql(&mut env).0, 1);
    let info = run_with(&mut env, &["secret-info-get", &id, "--format", "json"], &[]);
    assert!(!info.1.contains("access"), "{}", info.1);

    // A non-leader's change to its application's secret is taken, then refused at commit.
    env.leader = false;
    run_ok(&mut env, &["secret-set", &id, "abc=2"], &[]);
    assert_eq!(
        env.commit_secrets(),
        Err("\"etcd/0\" is not leader of \"etcd\"".into())
    );
    env.leader = true;
    // A label already used by another of the owner's secrets fails the hook; within one hook,
    // the tool refuses it at once.
    run_ok(&mut env, &["secret-add", "--label", "x", "abc=1"], &[]);
    let got = run_with(&mut env, &["secret-add", "--label", "x", "abc=2"], &[]);
    assert_eq!(
        (got.0, got.2.as_str()),
        (1, "ERROR secret with label \"x\" already exists\n")
    );
    env.commit_secrets().expect("commit");
    run_ok(&mut env, &["secret-set", &id, "--label", "x"], &[]);
    assert_eq!(
        env.commit_secrets(),
        Err("secret with label \"x\" already exists".into())
    );
    run_ok(&mut env, &["secret-remove", &id], &[]);
    env.commit_secrets().expect("commit");
    let got = run_with(&mut env, &["secret-get", &id], &[]);
    assert!(got.0 == 1 && got.2.contains("not found"), "{got:?}");
}

#[test]
fn goal_state_in_juju_s_shape() {
    use crate::tools::env::GoalStatus;
    let at = |status: &str, since: f64| GoalStatus {
        status: status.into(),
        since,
    };
    let mut env = FakeEnv::new();
    env.goal.units = [
        ("etcd/0".to_string(), at("active", 1_735_812_672.0)),
        ("etcd/1".to_string(), at("dying", 1_735_812_673.0)),
    ]
    .into();
    env.goal.relations = [(
        "db".to_string(),
        [
            ("mysql".to_string(), at("joined", 1_735_812_600.0)),
            ("mysql/0".to_string(), at("waiting", 1_735_812_601.0)),
        ]
        .into(),
    )]
    .into();
    check_get(
        &mut env,
        &["goal-state"],
        "units:\n  etcd/0:\n    status: active\n    since: 2025-01-02 10:11:12Z\n  etcd/1:\n    status: dying\n    since: 2025-01-02 10:11:13Z\nrelations:\n  db:\n    mysql:\n      status: joined\n      since: 2025-01-02 10:10:00Z\n    mysql/0:\n      status: waiting\n      since: 2025-01-02 10:10:01Z\n",
    );
    check_get(
        &mut env,
        &["goal-state", "--format=json"],
        "{\"units\":{\"etcd/0\":{\"status\":\"active\",\"since\":\"2025-01-02 10:11:12Z\"},\"etcd/1\":{\"status\":\"dying\",\"since\":\"2025-01-02 10:11:13Z\"}},\"relations\":{\"db\":{\"mysql\":{\"status\":\"joined\",\"since\":\"2025-01-02 10:10:00Z\"},\"mysql/0\":{\"status\":\"waiting\",\"since\":\"2025-01-02 10:10:01Z\"}}}}\n",
    );
    let empty = run_with(
        &mut FakeEnv::new(),
        &["goal-state", "--format", "json"],
        &[],
    );
    assert_eq!(empty.1, "{\"units\":{},\"relations\":{}}\n");
    check(
        FakeEnv::new,
        &[
            fails(
                &["goal-state", "x"],
                2,
                "ERROR unrecognized args: [\"x\"]\n",
            ),
            fails(
                &["goal-state", "--format", "smart"],
                2,
                "ERROR invalid value \"smart\" for option --format: unknown format \"smart\"\n",
            ),
        ],
    );
}

//! Leadership and relation tools.

use super::{check, run_with, settings, FakeEnv};

fn leader() -> FakeEnv {
    FakeEnv {
        leader: true,
        leader_data: settings(&[("cluster-token", "abc"), ("n", "3")]),
        ..FakeEnv::new()
    }
}

#[test]
fn is_leader_and_leader_get() {
    check(
        leader,
        &[
            (&["is-leader"], 0, "True\n", ""),
            (&["is-leader", "--format=json"], 0, "true\n", ""),
            (&["is-leader", "--format=yaml"], 0, "true\n", ""),
            (&["leader-get"], 0, "cluster-token: abc\n\"n\": \"3\"\n", ""),
            (
                &["leader-get", "-"],
                0,
                "cluster-token: abc\n\"n\": \"3\"\n",
                "",
            ),
            (
                &["leader-get", "--format=json"],
                0,
                "{\"cluster-token\":\"abc\",\"n\":\"3\"}\n",
                "",
            ),
            (&["leader-get", "cluster-token"], 0, "abc\n", ""),
            (&["leader-get", "missing"], 0, "", ""),
            (&["leader-get", "--format=json", "missing"], 0, "null\n", ""),
            (&["leader-get", "--format=yaml", "missing"], 0, "", ""),
            (&["leader-get", "a=b"], 2, "", "ERROR invalid key \"a=b\"\n"),
            (
                &["leader-get", "a", "b"],
                2,
                "",
                "ERROR unrecognized args: [\"b\"]\n",
            ),
        ],
    );
    check(
        FakeEnv::new,
        &[
            (&["is-leader"], 0, "False\n", ""),
            (&["leader-get"], 0, "{}\n", ""),
            (&["leader-get", "--format=json"], 0, "{}\n", ""),
        ],
    );
}

#[test]
fn leader_set() {
    let mut env = leader();
    assert_eq!(
        run_with(&mut env, &["leader-set", "a=1", "n=", " b = x y "], &[]).0,
        0
    );
    assert_eq!(
        env.leader_data,
        settings(&[("a", "1"), ("b", "x y"), ("cluster-token", "abc")])
    );
    check(
        leader,
        &[
            (
                &["leader-set", "novalue"],
                2,
                "",
                "ERROR expected \"key=value\", got \"novalue\"\n",
            ),
            (
                &["leader-set", "=v"],
                2,
                "",
                "ERROR expected \"key=value\", got \"=v\"\n",
            ),
            (
                &["leader-set", "a=1", "a=2"],
                2,
                "",
                "ERROR key \"a\" specified more than once\n",
            ),
        ],
    );
    check(
        FakeEnv::new,
        &[(
            &["leader-set", "a=1"],
            1,
            "",
            "ERROR cannot write leadership settings: cannot write settings: not the leader\n",
        )],
    );
}

#[test]
fn relation_get() {
    check(
        FakeEnv::in_db_hook,
        &[
            (&["relation-get"], 0, "port: \"3306\"\nuser: admin\n", ""),
            (&["relation-get", "user"], 0, "admin\n", ""),
            (&["relation-get", "missing"], 0, "", ""),
            (
                &["relation-get", "--format=json", "missing"],
                0,
                "null\n",
                "",
            ),
            (
                &["relation-get", "--format=json", "-"],
                0,
                "{\"port\":\"3306\",\"user\":\"admin\"}\n",
                "",
            ),
            (&["relation-get", "--app"], 0, "database: app\n", ""),
            (
                &["relation-get", "--app", "database", "mysql/0"],
                0,
                "app\n",
                "",
            ),
            (&["relation-get", "-", "etcd/0"], 0, "mine: \"yes\"\n", ""),
            (
                &["relation-get", "-r", "1", "-", "etcd/1"],
                0,
                "hostname: etcd-1\n",
                "",
            ),
            (
                &["relation-get", "-r", "cluster:1", "hostname", "etcd/1"],
                0,
                "etcd-1\n",
                "",
            ),
            (
                &["relation-get", "--app", "-", "etcd"],
                1,
                "",
                "ERROR permission denied\n",
            ),
            (
                &["relation-get", "-r", "9"],
                2,
                "",
                "ERROR invalid value \"9\" for option -r: relation not found\n",
            ),
            (
                &["relation-get", "-r", "db:x"],
                2,
                "",
                "ERROR invalid value \"db:x\" for option -r: invalid relation id\n",
            ),
            (
                &["relation-get", "--relation", "9"],
                2,
                "",
                "ERROR invalid value \"9\" for option --relation: relation not found\n",
            ),
            (
                &["relation-get", "a", "mysql/0", "extra"],
                2,
                "",
                "ERROR unrecognized args: [\"extra\"]\n",
            ),
        ],
    );
    check(
        FakeEnv::new,
        &[
            (&["relation-get"], 2, "", "ERROR no relation id specified\n"),
            (
                &["relation-get", "-r", "7"],
                2,
                "",
                "ERROR no unit or application specified\n",
            ),
            (
                &["relation-get", "-r", "7", "--app"],
                2,
                "",
                "ERROR no unit or application specified\n",
            ),
            (
                &["relation-get", "-r", "7", "user", "mysql/0"],
                0,
                "admin\n",
                "",
            ),
        ],
    );
    // With no remote unit (an app-level change) the remote application's data is read.
    let app_level = || FakeEnv {
        remote_unit: None,
        ..FakeEnv::in_db_hook()
    };
    check(app_level, &[(&["relation-get"], 0, "database: app\n", "")]);
}

#[test]
fn relation_set() {
    let mut env = FakeEnv::in_db_hook();
    assert_eq!(
        run_with(&mut env, &["relation-set", "a=1", "gone="], &[]).0,
        0
    );
    assert_eq!(
        run_with(&mut env, &["relation-set", "-r", "cluster:1", "b=2"], &[]).0,
        0
    );
    let expected = vec![
        (7, false, settings(&[("a", "1"), ("gone", "")])),
        (1, false, settings(&[("b", "2")])),
    ];
    assert_eq!(env.sets, expected);

    // --file (and stdin as `-`): a YAML map, overridden by the arguments; null values delete.
    let mut env = FakeEnv::in_db_hook();
    let file = "a: from-file\nport: 2379\nx: ~\nflag: true\n";
    let got = run_with(
        &mut env,
        &["relation-set", "--file", "s.yaml", "a=cli"],
        &[("s.yaml", file)],
    );
    assert_eq!(got.0, 0, "{got:?}");
    let got = run_with(&mut env, &["relation-set", "--file=-"], &[("-", "k: v\n")]);
    assert_eq!(got.0, 0, "{got:?}");
    let want = settings(&[("a", "cli"), ("flag", "true"), ("port", "2379"), ("x", "")]);
    assert_eq!(
        env.sets,
        vec![(7, false, want), (7, false, settings(&[("k", "v")]))]
    );

    // --app: leader only.
    let mut env = FakeEnv {
        leader: true,
        ..FakeEnv::in_db_hook()
    };
    assert_eq!(
        run_with(&mut env, &["relation-set", "--app", "k=v"], &[]).0,
        0
    );
    assert_eq!(env.sets, vec![(7, true, settings(&[("k", "v")]))]);
    check(
        FakeEnv::in_db_hook,
        &[
            (
                &["relation-set", "--app", "k=v"],
                1,
                "",
                "ERROR cannot write relation settings\n",
            ),
            (
                &["relation-set", "nokey"],
                2,
                "",
                "ERROR expected \"key=value\", got \"nokey\"\n",
            ),
            (
                &["relation-set", "--file", "none.yaml"],
                1,
                "",
                "ERROR open none.yaml: no such file or directory\n",
            ),
            (
                &["relation-set", "-r", "3", "a=b"],
                2,
                "",
                "ERROR invalid value \"3\" for option -r: relation not found\n",
            ),
            (
                &["relation-set", "--format", "json", "a=b"],
                0,
                "",
                "--format flag deprecated for command \"relation-set\"",
            ),
        ],
    );
    check(
        FakeEnv::new,
        &[(
            &["relation-set", "a=b"],
            2,
            "",
            "ERROR no relation id specified\n",
        )],
    );
    let null = run_with(
        &mut FakeEnv::in_db_hook(),
        &["relation-set", "--file", "f"],
        &[("f", "~\n")],
    );
    assert_eq!(null, (0, String::new(), String::new(), None));
    let bad = run_with(
        &mut FakeEnv::in_db_hook(),
        &["relation-set", "--file", "f"],
        &[("f", "- a\n")],
    );
    assert_eq!(bad.0, 1, "{bad:?}");
    assert!(bad.2.starts_with("ERROR yaml: "), "{bad:?}");
}

#[test]
fn relation_ids_and_list() {
    check(
        FakeEnv::in_db_hook,
        &[
            (&["relation-ids"], 0, "db:7\n", ""),
            (&["relation-ids", "cluster"], 0, "cluster:1\n", ""),
            (
                &["relation-ids", "--format=json", "cluster"],
                0,
                "[\"cluster:1\"]\n",
                "",
            ),
            (&["relation-ids", "nothing"], 0, "", ""),
            (&["relation-ids", "--format=json", "nothing"], 0, "[]\n", ""),
            (&["relation-ids", "--format=yaml", "nothing"], 0, "[]\n", ""),
            (&["relation-list"], 0, "mysql/0\n", ""),
            (
                &["relation-list", "--format=json"],
                0,
                "[\"mysql/0\"]\n",
                "",
            ),
            (&["relation-list", "--format=yaml"], 0, "- mysql/0\n", ""),
            (&["relation-list", "--app"], 0, "mysql\n", ""),
            (
                &["relation-list", "-r", "1", "--app", "--format=json"],
                0,
                "\"etcd\"\n",
                "",
            ),
            (
                &["relation-list", "x"],
                2,
                "",
                "ERROR unrecognized args: [\"x\"]\n",
            ),
        ],
    );
    check(
        FakeEnv::new,
        &[
            (
                &["relation-ids"],
                2,
                "",
                "ERROR no relation name specified\n",
            ),
            (
                &["relation-list"],
                2,
                "",
                "ERROR no relation id specified\n",
            ),
        ],
    );
}

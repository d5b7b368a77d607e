//! Leadership and relation tools.

use super::{check, fails, prints, run_ok, run_with, settings, FakeEnv};

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
            prints(&["is-leader"], "True\n"),
            prints(&["is-leader", "--format=json"], "true\n"),
            prints(&["is-leader", "--format=yaml"], "true\n"),
            prints(&["leader-get"], "cluster-token: abc\n\"n\": \"3\"\n"),
            prints(&["leader-get", "-"], "cluster-token: abc\n\"n\": \"3\"\n"),
            prints(
                &["leader-get", "--format=json"],
                "{\"cluster-token\":\"abc\",\"n\":\"3\"}\n",
            ),
            prints(&["leader-get", "cluster-token"], "abc\n"),
            prints(&["leader-get", "missing"], ""),
            prints(&["leader-get", "--format=json", "missing"], "null\n"),
            prints(&["leader-get", "--format=yaml", "missing"], ""),
            fails(&["leader-get", "a=b"], 2, "ERROR invalid key \"a=b\"\n"),
            fails(
                &["leader-get", "a", "b"],
                2,
                "ERROR unrecognized args: [\"b\"]\n",
            ),
        ],
    );
    check(
        FakeEnv::new,
        &[
            prints(&["is-leader"], "False\n"),
            prints(&["leader-get"], "{}\n"),
            prints(&["leader-get", "--format=json"], "{}\n"),
        ],
    );
}

#[test]
fn leader_set() {
    let mut env = leader();
    run_ok(&mut env, &["leader-set", "a=1", "n=", " b = x y "], &[]);
    assert_eq!(
        env.leader_data,
        settings(&[("a", "1"), ("b", "x y"), ("cluster-token", "abc")])
    );
    check(
        leader,
        &[
            fails(
                &["leader-set", "novalue"],
                2,
                "ERROR expected \"key=value\", got \"novalue\"\n",
            ),
            fails(
                &["leader-set", "=v"],
                2,
                "ERROR expected \"key=value\", got \"=v\"\n",
            ),
            fails(
                &["leader-set", "a=1", "a=2"],
                2,
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
            prints(&["relation-get"], "port: \"3306\"\nuser: admin\n"),
            prints(&["relation-get", "user"], "admin\n"),
            prints(&["relation-get", "missing"], ""),
            prints(&["relation-get", "--format=json", "missing"], "null\n"),
            prints(
                &["relation-get", "--format=json", "-"],
                "{\"port\":\"3306\",\"user\":\"admin\"}\n",
            ),
            prints(&["relation-get", "--app"], "database: app\n"),
            prints(&["relation-get", "--app", "database", "mysql/0"], "app\n"),
            prints(&["relation-get", "-", "etcd/0"], "mine: \"yes\"\n"),
            prints(
                &["relation-get", "-r", "1", "-", "etcd/1"],
                "hostname: etcd-1\n",
            ),
            prints(
                &["relation-get", "-r", "cluster:1", "hostname", "etcd/1"],
                "etcd-1\n",
            ),
            fails(
                &["relation-get", "--app", "-", "etcd"],
                1,
                "ERROR permission denied\n",
            ),
            fails(
                &["relation-get", "-r", "9"],
                2,
                "ERROR invalid value \"9\" for option -r: relation not found\n",
            ),
            fails(
                &["relation-get", "-r", "db:x"],
                2,
                "ERROR invalid value \"db:x\" for option -r: invalid relation id\n",
            ),
            fails(
                &["relation-get", "--relation", "9"],
                2,
                "ERROR invalid value \"9\" for option --relation: relation not found\n",
            ),
            fails(
                &["relation-get", "a", "mysql/0", "extra"],
                2,
                "ERROR unrecognized args: [\"extra\"]\n",
            ),
        ],
    );
    check(
        FakeEnv::new,
        &[
            fails(&["relation-get"], 2, "ERROR no relation id specified\n"),
            fails(
                &["relation-get", "-r", "7"],
                2,
                "ERROR no unit or application specified\n",
            ),
            fails(
                &["relation-get", "-r", "7", "--app"],
                2,
                "ERROR no unit or application specified\n",
            ),
            prints(&["relation-get", "-r", "7", "user", "mysql/0"], "admin\n"),
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
    run_ok(&mut env, &["relation-set", "a=1", "gone="], &[]);
    run_ok(&mut env, &["relation-set", "-r", "cluster:1", "b=2"], &[]);
    let expected = vec![
        (7, false, settings(&[("a", "1"), ("gone", "")])),
        (1, false, settings(&[("b", "2")])),
    ];
    assert_eq!(env.sets, expected);

    // --file (and stdin as `-`): a YAML map, overridden by the arguments; null values delete.
    let mut env = FakeEnv::in_db_hook();
    let file = "a: from-file\nport: 2379\nx: ~\nflag: true\n";
    run_ok(
        &mut env,
        &["relation-set", "--file", "s.yaml", "a=cli"],
        &[("s.yaml", file)],
    );
    run_ok(&mut env, &["relation-set", "--file=-"], &[("-", "k: v\n")]);
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
    run_ok(&mut env, &["relation-set", "--app", "k=v"], &[]);
    assert_eq!(env.sets, vec![(7, true, settings(&[("k", "v")]))]);
    check(
        FakeEnv::in_db_hook,
        &[
            fails(
                &["relation-set", "--app", "k=v"],
                1,
                "ERROR cannot write relation settings\n",
            ),
            fails(
                &["relation-set", "nokey"],
                2,
                "ERROR expected \"key=value\", got \"nokey\"\n",
            ),
            fails(
                &["relation-set", "--file", "none.yaml"],
                1,
                "ERROR open none.yaml: no such file or directory\n",
            ),
            fails(
                &["relation-set", "-r", "3", "a=b"],
                2,
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
            prints(&["relation-ids"], "db:7\n"),
            prints(&["relation-ids", "cluster"], "cluster:1\n"),
            prints(
                &["relation-ids", "--format=json", "cluster"],
                "[\"cluster:1\"]\n",
            ),
            prints(&["relation-ids", "nothing"], ""),
            prints(&["relation-ids", "--format=json", "nothing"], "[]\n"),
            prints(&["relation-ids", "--format=yaml", "nothing"], "[]\n"),
            prints(&["relation-list"], "mysql/0\n"),
            prints(&["relation-list", "--format=json"], "[\"mysql/0\"]\n"),
            prints(&["relation-list", "--format=yaml"], "- mysql/0\n"),
            prints(&["relation-list", "--app"], "mysql\n"),
            prints(
                &["relation-list", "-r", "1", "--app", "--format=json"],
                "\"etcd\"\n",
            ),
            fails(
                &["relation-list", "x"],
                2,
                "ERROR unrecognized args: [\"x\"]\n",
            ),
        ],
    );
    check(
        FakeEnv::new,
        &[
            fails(&["relation-ids"], 2, "ERROR no relation name specified\n"),
            fails(&["relation-list"], 2, "ERROR no relation id specified\n"),
        ],
    );
}

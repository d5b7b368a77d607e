//! Tests of the hook tools against an in-memory [`HookEnv`]: exact stdout, stderr and exit code.

mod config_action_status;
mod fake;
mod format_yaml;
mod leader_relation;
mod network_ports_state;
mod secrets;

pub(super) use fake::{settings, FakeEnv};

use super::run_tool;

/// Runs a tool (`args[0]`) with files; answers (code, stdout, stderr, output file).
pub(super) fn run_with(
    env: &mut FakeEnv,
    args: &[&str],
    files: &[(&str, &str)],
) -> (i32, String, String, Option<String>) {
    let rest: Vec<String> = args[1..].iter().map(|s| s.to_string()).collect();
    let files = files
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
    let out = run_tool(args[0], &rest, &files, env);
    let text = |b: Vec<u8>| String::from_utf8(b).expect("utf-8");
    (
        out.code,
        text(out.stdout),
        text(out.stderr),
        out.output_file,
    )
}

/// One row of a table: the command line, then the exact exit code, stdout and stderr.
pub(super) type Case<'a> = (&'a [&'a str], i32, &'a str, &'a str);

/// A case that exits 0 and prints `stdout`, nothing on stderr.
pub(super) const fn prints<'a>(args: &'a [&'a str], stdout: &'a str) -> Case<'a> {
    (args, 0, stdout, "")
}

/// A case that fails with exit `code` and prints `stderr`, nothing on stdout.
pub(super) const fn fails<'a>(args: &'a [&'a str], code: i32, stderr: &'a str) -> Case<'a> {
    (args, code, "", stderr)
}

/// Runs a tool with files and checks that it exits 0.
#[track_caller]
pub(super) fn run_ok(env: &mut FakeEnv, args: &[&str], files: &[(&str, &str)]) {
    let got = run_with(env, args, files);
    assert_eq!(got.0, 0, "{args:?}: {got:?}");
}

/// Runs every case against a fresh environment from `make`.
pub(super) fn check(make: fn() -> FakeEnv, cases: &[Case]) {
    for (args, code, stdout, stderr) in cases {
        let got = run_with(&mut make(), args, &[]);
        assert_eq!(
            (got.0, got.1.as_str(), got.2.as_str()),
            (*code, *stdout, *stderr),
            "{args:?}"
        );
    }
}

#[test]
fn tool_names_match_the_tools() {
    let mut names: Vec<&str> = super::TOOL_NAMES.to_vec();
    names.sort_unstable();
    assert_eq!(names, super::TOOL_NAMES, "TOOL_NAMES is sorted");
    for name in super::TOOL_NAMES {
        assert!(super::find(name).is_some(), "{name} has no implementation");
    }
}

#[test]
fn unknown_tool_help_and_flag_errors() {
    check(FakeEnv::new, &[
        fails(&["goal-stats"], 2, "ERROR unknown hook tool \"goal-stats\"\n"),
        fails(&["is-leader", "--bogus"], 2, "ERROR option provided but not defined: --bogus\n"),
        fails(&["is-leader", "-x"], 2, "ERROR option provided but not defined: -x\n"),
        fails(&["is-leader", "--format"], 2, "ERROR option needs an argument: --format\n"),
        fails(&["is-leader", "--format", "xml"], 2, "ERROR invalid value \"xml\" for option --format: unknown format \"xml\"\n"),
        fails(&["is-leader", "--=x"], 2, "ERROR empty flag in argument \"--=x\"\n"),
        fails(&["is-leader", "extra", "args"], 2, "ERROR unrecognized args: [\"extra\" \"args\"]\n"),
        (&["relation-list", "-r", "1", "--app=maybe"], 2, "",
            "ERROR invalid value \"maybe\" for option --app: strconv.ParseBool: parsing \"maybe\": invalid syntax\n"),
    ]);
    let (code, out, err, _) = run_with(&mut FakeEnv::new(), &["relation-get", "--help"], &[]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(out.starts_with("Usage: relation-get [options] [<key> [<unit id>]]\n\nSummary:\nget relation settings\n"), "{out}");
    assert!(out.contains("-r, --relation (= \"\")\n"), "{out}");
    assert_eq!(
        run_with(&mut FakeEnv::new(), &["leader-set", "-h"], &[]).0,
        0
    );
}

#[test]
fn flag_spellings() {
    // `--flag=value`, `-rN`, flags after positionals, `--` and `-` as positionals.
    check(
        FakeEnv::new,
        &[
            prints(
                &["relation-get", "--relation=db:7", "user", "mysql/0"],
                "admin\n",
            ),
            prints(&["relation-get", "-r7", "user", "mysql/0"], "admin\n"),
            (
                &[
                    "relation-get",
                    "user",
                    "mysql/0",
                    "-r",
                    "7",
                    "--format=json",
                ],
                0,
                "\"admin\"\n",
                "",
            ),
            prints(
                &["relation-get", "-r", "7", "--", "-", "mysql/0"],
                "port: \"3306\"\nuser: admin\n",
            ),
            (
                &[
                    "relation-get",
                    "-r",
                    "7",
                    "--format",
                    "yaml",
                    "-",
                    "mysql/0",
                ],
                0,
                "port: \"3306\"\nuser: admin\n",
                "",
            ),
        ],
    );
}

#[test]
fn output_file_carries_the_formatted_value() {
    let mut env = FakeEnv::new();
    let got = run_with(
        &mut env,
        &["is-leader", "-o", "/tmp/out", "--format", "json"],
        &[],
    );
    assert_eq!(
        got,
        (0, "false\n".into(), String::new(), Some("/tmp/out".into()))
    );
    let got = run_with(
        &mut env,
        &["config-get", "--output=rel.txt", "missing"],
        &[],
    );
    assert_eq!(
        got,
        (0, String::new(), String::new(), Some("rel.txt".into()))
    );
}

#[test]
fn wire_types_round_trip() {
    let req = super::ToolRequest {
        context_id: "etcd/0-install-1".into(),
        tool: "relation-set".into(),
        args: vec!["--file".into(), "-".into()],
        files: [("-".to_string(), b"a: b\n".to_vec())].into(),
    };
    let line = serde_json::to_string(&crate::api::Wire::Tool(req.clone())).expect("json");
    assert!(
        line.starts_with("{\"tool\":{\"context_id\":\"etcd/0-install-1\""),
        "{line}"
    );
    match serde_json::from_str(&line).expect("parse") {
        crate::api::Wire::Tool(back) => assert_eq!(back, req),
        _ => panic!("not a tool call"),
    }
    let out = super::ToolOutput {
        code: 2,
        stdout: b"x".to_vec(),
        stderr: b"ERROR y\n".to_vec(),
        output_file: None,
    };
    let resp: super::ToolResponse = out.into();
    let text = serde_json::to_string(&resp).expect("json");
    assert_eq!(
        text,
        r#"{"code":2,"stdout":"x","stderr":"ERROR y\n","output_file":null}"#
    );
    assert_eq!(super::ToolResponse::error(1, "bad").stderr, "ERROR bad\n");
}

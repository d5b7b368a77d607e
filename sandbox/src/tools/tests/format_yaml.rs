//! The formatters against outputs of yaml.v2 and `encoding/json` (expected texts are what the Go
//! libraries print for the same values).

use crate::tools::format::{render, yaml_float, Out};

fn s(v: &str) -> Out {
    Out::Str(v.into())
}

fn map(entries: &[(&str, Out)]) -> Out {
    Out::Map(
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

#[test]
fn smart_rules() {
    let cases: &[(Option<Out>, &str)] = &[
        (None, ""),
        (Some(s("")), ""),
        (Some(s("x y")), "x y\n"),
        (Some(Out::Strings(vec![])), ""),
        (Some(Out::Strings(vec!["a".into(), "b".into()])), "a\nb\n"),
        (Some(Out::Bool(true)), "True\n"),
        (Some(Out::Int(3)), "3\n"),
        (Some(Out::List(vec![s("a")])), "- a\n"),
        (Some(map(&[])), "{}\n"),
    ];
    for (v, want) in cases {
        assert_eq!(render("smart", v.as_ref()), *want, "{v:?}");
    }
    assert_eq!(render("yaml", None), "");
    assert_eq!(render("json", None), "null\n");
}

#[test]
fn yaml_string_styles() {
    let cases: &[(&str, &str)] = &[
        ("plain", "k: plain\n"),
        ("", "k: \"\"\n"),
        ("true", "k: \"true\"\n"),
        ("yes", "k: \"yes\"\n"),
        ("No", "k: \"No\"\n"),
        ("~", "k: \"~\"\n"),
        ("3306", "k: \"3306\"\n"),
        ("1.5", "k: \"1.5\"\n"),
        ("1e3", "k: \"1e3\"\n"),
        ("0x1F", "k: \"0x1F\"\n"),
        ("08", "k: \"08\"\n"),
        ("1_000", "k: \"1_000\"\n"),
        ("12:30", "k: \"12:30\"\n"),
        ("2024-01-02", "k: \"2024-01-02\"\n"),
        (".5", "k: \".5\"\n"),
        ("1.2.3", "k: 1.2.3\n"),
        ("10.40.3.11", "k: 10.40.3.11\n"),
        ("00:16:3e:aa:bb:cc", "k: 00:16:3e:aa:bb:cc\n"),
        ("http://10.0.0.1:2379", "k: http://10.0.0.1:2379\n"),
        ("-x", "k: -x\n"),
        ("- x", "k: '- x'\n"),
        ("a: b", "k: 'a: b'\n"),
        ("a #b", "k: 'a #b'\n"),
        ("#x", "k: '#x'\n"),
        ("it's", "k: it's\n"),
        ("'q'", "k: '''q'''\n"),
        (" lead", "k: ' lead'\n"),
        ("tab\there", "k: \"tab\\there\"\n"),
        ("a\nb", "k: |-\n  a\n  b\n"),
        ("a\nb\n", "k: |\n  a\n  b\n"),
        ("a\n\nb", "k: |-\n  a\n\n  b\n"),
        ("trailing \nx", "k: \"trailing \\nx\"\n"),
        ("é ü", "k: é ü\n"),
    ];
    for (value, want) in cases {
        assert_eq!(
            render("yaml", Some(&map(&[("k", s(value))]))),
            *want,
            "{value:?}"
        );
    }
    assert_eq!(render("yaml", Some(&s("a\nb"))), "|-\n  a\n  b\n");
    assert_eq!(render("yaml", Some(&s("yes"))), "\"yes\"\n");
}

#[test]
fn yaml_long_lines_fold_at_80_columns() {
    let words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore";
    let want =
        "message: lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor\n  \
                incididunt ut labore\n";
    assert_eq!(render("yaml", Some(&map(&[("message", s(words))]))), want);
}

#[test]
fn yaml_collections_and_key_order() {
    let v = map(&[
        ("b10", Out::Int(1)),
        ("b9", Out::Int(2)),
        (
            "a",
            Out::List(vec![
                map(&[("x", Out::Null), ("y", Out::List(vec![]))]),
                Out::Strings(vec!["p".into()]),
            ]),
        ),
        ("A", map(&[])),
        ("_u", Out::Bool(false)),
    ]);
    let want = "_u: false\nA: {}\na:\n- x: null\n  \"y\": []\n- - p\nb9: 2\nb10: 1\n";
    assert_eq!(render("yaml", Some(&v)), want);
    let json = "{\"A\":{},\"_u\":false,\"a\":[{\"x\":null,\"y\":[]},[\"p\"]],\"b10\":1,\"b9\":2}\n";
    assert_eq!(render("json", Some(&v)), json);
}

#[test]
fn numbers_as_go_prints_them() {
    let cases: &[(f64, &str, &str)] = &[
        (0.5, "0.5", "0.5"),
        (1.0, "1", "1"),
        (100000.0, "100000", "100000"),
        (1234567.0, "1.234567e+06", "1234567"),
        (0.0001, "0.0001", "0.0001"),
        (0.00001, "1e-05", "0.00001"),
        (1e-7, "1e-07", "1e-7"),
        (-2.5e21, "-2.5e+21", "-2.5e+21"),
        (f64::INFINITY, ".inf", ""),
    ];
    for (f, yaml, json) in cases {
        assert_eq!(yaml_float(*f), *yaml, "{f}");
        if !json.is_empty() {
            assert_eq!(crate::tools::format::json(&Out::Float(*f)), *json, "{f}");
        }
    }
}

#[test]
fn json_escapes_like_go() {
    let v = s("<a href=\"x\">&\u{2028}\t\u{1}é");
    assert_eq!(
        render("json", Some(&v)),
        "\"\\u003ca href=\\\"x\\\"\\u003e\\u0026\\u2028\\t\\u0001é\"\n"
    );
}

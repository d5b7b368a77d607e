//! The `--format smart|yaml|json` formatters of juju/cmd (`output.go`), over a value type that
//! keeps the Go distinctions the formatters care about.
//!
//! - smart: nil prints nothing; a string prints itself and a newline (nothing when empty); a
//!   `[]string` prints one item per line; a bool prints `True`/`False`; anything else is YAML.
//! - yaml: nil prints nothing; otherwise gopkg.in/yaml.v2 output (see [`super::yaml`]) ending in
//!   exactly one newline.
//! - json: Go's `encoding/json` (sorted map keys, HTML-safe escapes) and a newline; nil is `null`.

use super::env::Settings;
use serde_json::Value;

/// A value as a Go hook tool would hand it to its formatter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Out {
    /// Go `nil`.
    Null,
    /// A bool.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float64.
    Float(f64),
    /// A string.
    Str(String),
    /// A Go `time.Time`, already in RFC 3339: yaml.v2 writes it plain, JSON as a string.
    Time(String),
    /// A Go `[]string` (smart prints it one item per line).
    Strings(Vec<String>),
    /// Any other list.
    List(Vec<Out>),
    /// A Go map: keys are sorted on output (bytewise for JSON, yaml.v2's natural order for YAML).
    Map(Vec<(String, Out)>),
    /// A Go struct: fields in declared order, each with its JSON and YAML name.
    Struct(Vec<Field>),
}

/// One field of an [`Out::Struct`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    /// Name in JSON output.
    pub json: &'static str,
    /// Name in YAML output.
    pub yaml: &'static str,
    /// The value.
    pub value: Out,
}

impl Out {
    /// A string map, as relation, leader and state settings are.
    pub fn settings(s: &Settings) -> Out {
        Out::Map(
            s.iter()
                .map(|(k, v)| (k.clone(), Out::Str(v.clone())))
                .collect(),
        )
    }

    /// A JSON value (config, action params) as the Go side would hold it.
    pub fn from_json(v: &Value) -> Out {
        match v {
            Value::Null => Out::Null,
            Value::Bool(b) => Out::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Out::Int(i),
                None => Out::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => Out::Str(s.clone()),
            Value::Array(a) => Out::List(a.iter().map(Out::from_json).collect()),
            Value::Object(m) => Out::Map(
                m.iter()
                    .map(|(k, v)| (k.clone(), Out::from_json(v)))
                    .collect(),
            ),
        }
    }
}

/// The formatter names `--format` accepts (gnuflag checks the value while parsing).
pub(crate) fn check_format(name: &str) -> Result<(), String> {
    match name {
        "smart" | "yaml" | "json" => Ok(()),
        _ => Err(format!("unknown format {}", super::args::go_quote(name))),
    }
}

/// The formatter names of a tool that has no `smart` (`secret-get`, `goal-state`, …).
pub(crate) fn check_yaml_json(name: &str) -> Result<(), String> {
    match name {
        "yaml" | "json" => Ok(()),
        _ => Err(format!("unknown format {}", super::args::go_quote(name))),
    }
}

/// Formats a value (`None` is Go's nil) with the named formatter.
pub(crate) fn render(format: &str, v: Option<&Out>) -> String {
    match format {
        "json" => v.map_or_else(|| "null".to_string(), json) + "\n",
        "yaml" => v.map(yaml).unwrap_or_default(),
        _ => v.map(smart).unwrap_or_default(),
    }
}

fn smart(v: &Out) -> String {
    let s = match v {
        Out::Null => String::new(),
        Out::Str(s) => s.clone(),
        Out::Strings(items) => items.join("\n"),
        Out::Bool(true) => "True".into(),
        Out::Bool(false) => "False".into(),
        other => return yaml(other),
    };
    if s.is_empty() {
        s
    } else {
        s + "\n"
    }
}

/// juju/cmd's `FormatYaml`: yaml.v2 output with the trailing newlines cut to one.
fn yaml(v: &Out) -> String {
    if *v == Out::Null {
        return String::new();
    }
    let mut s = super::yaml::to_yaml(v);
    while s.len() > 1 && s.ends_with('\n') {
        s.pop();
    }
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

/// Go's `json.Marshal`.
pub(crate) fn json(v: &Out) -> String {
    let mut out = String::new();
    write_json(&mut out, v);
    out
}

fn write_json(out: &mut String, v: &Out) {
    match v {
        Out::Null => out.push_str("null"),
        Out::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Out::Int(i) => out.push_str(&i.to_string()),
        Out::Float(f) => out.push_str(&json_float(*f)),
        Out::Str(s) | Out::Time(s) => json_string(out, s),
        Out::Strings(items) => write_json(
            out,
            &Out::List(items.iter().cloned().map(Out::Str).collect()),
        ),
        Out::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Out::Map(entries) => {
            let mut sorted: Vec<&(String, Out)> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            write_object(out, sorted.into_iter().map(|(k, v)| (k.as_str(), v)));
        }
        Out::Struct(fields) => write_object(out, fields.iter().map(|f| (f.json, &f.value))),
    }
}

fn write_object<'a>(out: &mut String, entries: impl Iterator<Item = (&'a str, &'a Out)>) {
    out.push('{');
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(out, k);
        out.push(':');
        write_json(out, v);
    }
    out.push('}');
}

/// A JSON string with Go's escapes (`<`, `>`, `&`, U+2028 and U+2029 included).
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if let Some(e) = super::args::short_escape(c) {
            out.push_str(e);
            continue;
        }
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Shortest decimal digits and decimal exponent of a finite, non-zero `|f|`: `(digits, exp)`
/// with `|f| = 0.d1d2d3… × 10^(exp+1)`.
fn digits(f: f64) -> (String, i32) {
    let e = format!("{:e}", f.abs());
    let (mant, exp) = e.split_once('e').expect("exponent");
    (mant.replace('.', ""), exp.parse().expect("exponent number"))
}

/// `d.ddde±XX` as Go's `strconv` `'e'` format writes it.
fn e_format(neg: bool, d: &str, exp: i32) -> String {
    let mut s = String::from(if neg { "-" } else { "" });
    s.push_str(&d[..1]);
    if d.len() > 1 {
        s.push('.');
        s.push_str(&d[1..]);
    }
    s.push_str(&format!(
        "e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    ));
    s
}

/// Go's `encoding/json` float: `'f'` format, `'e'` below 1e-6 or from 1e21 (as `1e-7`).
fn json_float(f: f64) -> String {
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        return format!("{f}");
    }
    let (d, exp) = digits(f);
    let s = e_format(f < 0.0, &d, exp);
    match s.strip_suffix(&format!("e-0{}", exp.abs())) {
        Some(head) if exp > -10 => format!("{head}e-{}", exp.abs()),
        _ => s,
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` as yaml.v2 writes floats (`.inf`, `.nan`).
pub(crate) fn yaml_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let (d, exp) = digits(f);
    if !(-4..6).contains(&exp) {
        return e_format(f < 0.0, &d, exp);
    }
    let sign = if f < 0.0 { "-" } else { "" };
    if exp < 0 {
        return format!("{sign}0.{}{d}", "0".repeat((-exp - 1) as usize));
    }
    let int_len = exp as usize + 1;
    if d.len() <= int_len {
        format!("{sign}{d}{}", "0".repeat(int_len - d.len()))
    } else {
        format!("{sign}{}.{}", &d[..int_len], &d[int_len..])
    }
}

//! YAML exactly as gopkg.in/yaml.v2 (v2.4.0, Juju's) writes it: the sandbox's one YAML
//! emitter, for what hook tools and the command line print.
//!
//! yaml.v2 picks a style per string: literal (`|-`) when it holds a newline, plain when it would
//! read back as a string, double-quoted otherwise (`"true"`, `"1"`, `""`). Its libyaml-derived
//! emitter then falls back to single or double quotes when plain or literal is impossible, wraps
//! long lines at 80 columns, indents by 2, writes sequences inside mappings without indentation
//! and empty collections as `[]` and `{}`. Map keys are sorted in yaml.v2's natural order.

use super::format::{yaml_float, Out};
use super::yaml_emit::Emitter;
use std::cmp::Ordering;

/// The YAML document for a value, as `yaml.Marshal` returns it.
pub(crate) fn to_yaml(v: &Out) -> String {
    Emitter::document(&node(v))
}

/// A JSON value as yaml.v2 writes it: the command line's `--format yaml`, as Juju's commands
/// print theirs (maps in yaml.v2's natural key order).
pub(crate) fn json_to_yaml(v: &serde_json::Value) -> String {
    to_yaml(&Out::from_json(v))
}

/// The scalar style yaml.v2 asks the emitter for (it may fall back to a quoted one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    /// Unquoted.
    Plain,
    /// `'…'`.
    Single,
    /// `"…"` with escapes.
    Double,
    /// `|` block.
    Literal,
}

/// What the emitter writes: yaml.v2's events as a tree.
pub(super) enum Node {
    /// A scalar and the style asked for.
    Scalar(String, Style),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in output order.
    Map(Vec<(Node, Node)>),
}

fn node(v: &Out) -> Node {
    let plain = |s: String| Node::Scalar(s, Style::Plain);
    match v {
        Out::Null => plain("null".into()),
        Out::Bool(b) => plain(b.to_string()),
        Out::Int(i) => plain(i.to_string()),
        Out::Float(f) => plain(yaml_float(*f)),
        Out::Str(s) => string(s),
        Out::Time(t) => plain(t.clone()),
        Out::Strings(items) => Node::Seq(items.iter().map(|s| string(s)).collect()),
        Out::List(items) => Node::Seq(items.iter().map(node).collect()),
        Out::Map(entries) => {
            let mut sorted: Vec<&(String, Out)> = entries.iter().collect();
            sorted.sort_by(|a, b| natural(&a.0, &b.0));
            Node::Map(
                sorted
                    .into_iter()
                    .map(|(k, v)| (string(k), node(v)))
                    .collect(),
            )
        }
        Out::Struct(fields) => Node::Map(
            fields
                .iter()
                .map(|f| (string(f.yaml), node(&f.value)))
                .collect(),
        ),
    }
}

/// yaml.v2's `stringv` style choice.
fn string(s: &str) -> Node {
    let style = if s.contains('\n') {
        Style::Literal
    } else if resolves_to_string(s) && !base60_float(s) {
        Style::Plain
    } else {
        Style::Double
    };
    Node::Scalar(s.to_string(), style)
}

/// yaml.v2's `keyList.Less` for string keys: letters after other runes, digit runs by value.
fn natural(a: &str, b: &str) -> Ordering {
    let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    for i in 0..ar.len().min(br.len()) {
        if ar[i] == br[i] {
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let nonzero_before = ar[..i]
                .iter()
                .rev()
                .take_while(|c| c.is_ascii_digit())
                .any(|c| *c != '0');
            if nonzero_before {
                (an, bn) = (1, 1);
            }
        }
        let run = |r: &[char], n: &mut i64| {
            let len = r[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            for c in &r[i..i + len] {
                *n = n.wrapping_mul(10).wrapping_add(i64::from(*c as u8 - b'0'));
            }
            i + len
        };
        let (ai, bi) = (run(&ar, &mut an), run(&br, &mut bn));
        return an.cmp(&bn).then(ai.cmp(&bi)).then(ar[i].cmp(&br[i]));
    }
    ar.len().cmp(&br.len())
}

/// Whether yaml.v2's `resolve` reads the plain scalar back as a string.
fn resolves_to_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "n", "N", "no",
        "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "~", "null", "Null", "NULL",
        ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF", "<<",
    ];
    let Some(first) = s.chars().next() else {
        return false;
    };
    if SPECIAL.contains(&s) {
        return false;
    }
    match first {
        '.' => s.parse::<f64>().is_err(),
        '0'..='9' if timestamp(s) => false,
        '0'..='9' | '+' | '-' => {
            let plain = s.replace('_', "");
            !(go_int(&plain) || yaml_style_float(&plain))
        }
        _ => true,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` or `ParseUint(s, 0, 64)` succeeding.
fn go_int(s: &str) -> bool {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    match u128::from_str_radix(digits, radix) {
        Ok(n) if !digits.starts_with('+') => n <= if neg { 1 << 63 } else { u128::from(u64::MAX) },
        _ => false,
    }
}

/// yaml.v2's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn yaml_style_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mant_ok = match mant.split_once('.') {
        Some(("", frac)) => !frac.is_empty() && all_digits(frac),
        Some((int, frac)) => !int.is_empty() && all_digits(int) && all_digits(frac),
        None => !mant.is_empty() && all_digits(mant),
    };
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mant_ok && exp_ok
}

/// yaml.v2's timestamp formats: `2006-1-2`, `2006-1-2 15:4:5.999999999` and
/// `2006-1-2T15:4:5.999999999Z07:00` (`T` or `t`).
fn timestamp(s: &str) -> bool {
    // One or two digits (exactly two when `two`), at most `max`.
    fn num(s: &str, max: u32, two: bool) -> Option<u32> {
        let len_ok = if two {
            s.len() == 2
        } else {
            (1..=2).contains(&s.len())
        };
        let n: u32 = s
            .parse()
            .ok()
            .filter(|_| len_ok && s.bytes().all(|b| b.is_ascii_digit()))?;
        (n <= max).then_some(n)
    }
    let date_end = s.find([' ', 'T', 't']).unwrap_or(s.len());
    let date: Vec<&str> = s[..date_end].split('-').collect();
    let date_ok = date.len() == 3
        && date[0].len() == 4
        && date[0].bytes().all(|b| b.is_ascii_digit())
        && num(date[1], 12, false).is_some_and(|m| m >= 1)
        && num(date[2], 31, false).is_some_and(|d| d >= 1);
    if !date_ok || date_end == s.len() {
        return date_ok;
    }
    let sep = s.as_bytes()[date_end];
    let mut time = &s[date_end + 1..];
    if sep != b' ' {
        // A zone is required: `Z` or `±hh:mm`.
        if let Some(t) = time.strip_suffix('Z') {
            time = t;
        } else if time.len() > 6 && matches!(time.as_bytes()[time.len() - 6], b'+' | b'-') {
            let zone: Vec<&str> = time[time.len() - 5..].split(':').collect();
            if zone.len() != 2
                || num(zone[0], 23, true).is_none()
                || num(zone[1], 59, true).is_none()
            {
                return false;
            }
            time = &time[..time.len() - 6];
        } else {
            return false;
        }
    }
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let parts: Vec<&str> = hms.split(':').collect();
    parts.len() == 3
        && num(parts[0], 23, false).is_some()
        && num(parts[1], 59, false).is_some()
        && num(parts[2], 59, false).is_some()
        && !frac.is_empty()
        && frac.len() <= 9
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// yaml.v2's `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
fn base60_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (body, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut parts = body.split(':');
    let head = parts.next().unwrap_or("");
    let sexagesimal: Vec<&str> = parts.collect();
    head.starts_with(|c: char| c.is_ascii_digit())
        && head.bytes().all(|b| b.is_ascii_digit() || b == b'_')
        && !sexagesimal.is_empty()
        && sexagesimal.iter().all(|p| {
            let b = p.as_bytes();
            match b.len() {
                1 => b[0].is_ascii_digit(),
                2 => (b'0'..=b'5').contains(&b[0]) && b[1].is_ascii_digit(),
                _ => false,
            }
        })
        && frac.bytes().all(|b| b.is_ascii_digit() || b == b'_')
}

//! Command-line parsing as juju/gnuflag does it for the hook tools, plus the small argument
//! helpers every tool shares (`CheckEmpty`, `keyvalues.Parse`, Go's `%q`).
//!
//! gnuflag rules reproduced here: flags and positional arguments may be interspersed; `--` ends
//! the flags; `-` and the empty string are positional; `--name value` and `--name=value` for long
//! flags; `-r 3`, `-r3` and clusters such as `-ab` for one-letter flags; a bool flag takes no
//! value unless written `--flag=value`. Errors use Juju's "option" wording.

use super::env::Settings;
use std::collections::BTreeMap;

/// Whether a flag takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A switch; `--flag=false` may still set it explicitly.
    Bool,
    /// Takes a string value.
    Value,
}

/// How a value flag's value is checked while parsing (gnuflag's `Value.Set`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Any string.
    None,
    /// A formatter name: `smart`, `yaml` or `json`.
    Format,
    /// A formatter name of a tool without `smart`: `yaml` or `json`.
    YamlJson,
    /// A relation id (`7` or `name:7`) that must name a live relation.
    Relation,
    /// A storage id (`data/0`) that must name storage attached to the unit.
    Storage,
}

/// One flag a tool accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flag {
    /// Every name it answers to; the first is its key in [`Parsed`].
    pub names: &'static [&'static str],
    /// Switch or value.
    pub kind: Kind,
    /// What parsing checks.
    pub check: Check,
    /// Default shown by `--help`.
    pub default: &'static str,
    /// One line for `--help`.
    pub usage: &'static str,
}

/// Why parsing stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// `-h` or `--help`.
    Help,
    /// A bad flag or value; the message as Juju prints it.
    Usage(String),
}

/// The flags that were given (by key) and the positional arguments.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    values: BTreeMap<&'static str, String>,
    /// Positional arguments, in order.
    pub args: Vec<String>,
}

impl Parsed {
    /// The last value given for a flag.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Whether a bool flag is set.
    pub fn on(&self, key: &str) -> bool {
        self.value(key) == Some("true")
    }
}

/// gnuflag's spelling of a flag in messages: `-r`, `--relation`.
fn with_minus(name: &str) -> String {
    if name.len() > 1 {
        format!("--{name}")
    } else {
        format!("-{name}")
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {}: invalid syntax",
            go_quote(v)
        )),
    }
}

/// Parses `args` against `flags`; `check` validates each value flag's value as it is met.
pub(crate) fn parse(
    flags: &[Flag],
    args: &[String],
    check: &mut dyn FnMut(&Flag, &str) -> Result<(), String>,
) -> Result<Parsed, ParseError> {
    let mut parsed = Parsed::default();
    let mut i = 0;
    // The rest of a cluster of one-letter flags (or `=value` of a long flag).
    let mut pending = String::new();
    loop {
        let (name, long) = if let Some(c) = pending.chars().next() {
            pending.drain(..c.len_utf8());
            (c.to_string(), false)
        } else if i == args.len() {
            break;
        } else {
            let a = &args[i];
            i += 1;
            if a == "-" || !a.starts_with('-') {
                parsed.args.push(a.clone());
                continue;
            }
            if a == "--" {
                parsed.args.extend(args[i..].iter().cloned());
                break;
            }
            if let Some(long) = a.strip_prefix("--") {
                match long.find('=') {
                    Some(0) => {
                        let msg = format!("empty flag in argument {}", go_quote(a));
                        return Err(ParseError::Usage(msg));
                    }
                    Some(eq) => {
                        pending = long[eq..].to_string();
                        (long[..eq].to_string(), true)
                    }
                    None => (long.to_string(), true),
                }
            } else {
                let rest = &a[1..];
                let c = rest.chars().next().expect("non-empty");
                pending = rest[c.len_utf8()..].to_string();
                (c.to_string(), false)
            }
        };
        let Some(flag) = flags.iter().find(|f| f.names.contains(&name.as_str())) else {
            if name == "help" || name == "h" {
                return Err(ParseError::Help);
            }
            let msg = format!("option provided but not defined: {}", with_minus(&name));
            return Err(ParseError::Usage(msg));
        };
        if flag.kind == Kind::Bool && !pending.starts_with('=') {
            parsed.values.insert(flag.names[0], "true".into());
            continue;
        }
        let value = if !pending.is_empty() {
            let v = std::mem::take(&mut pending);
            if long {
                v[1..].to_string()
            } else {
                v
            }
        } else if i < args.len() {
            i += 1;
            args[i - 1].clone()
        } else {
            let msg = format!("option needs an argument: {}", with_minus(&name));
            return Err(ParseError::Usage(msg));
        };
        let stored = match flag.kind {
            Kind::Bool => parse_bool(&value).map(|b| b.to_string()),
            Kind::Value => check(flag, &value).map(|()| value.clone()),
        };
        match stored {
            Ok(v) => {
                parsed.values.insert(flag.names[0], v);
            }
            Err(e) => {
                let msg = format!(
                    "invalid value {} for option {}: {e}",
                    go_quote(&value),
                    with_minus(&name)
                );
                return Err(ParseError::Usage(msg));
            }
        }
    }
    Ok(parsed)
}

/// The backslash escapes Go's `%q` and `encoding/json` share: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`,
/// `\f`.
pub(crate) fn short_escape(c: char) -> Option<&'static str> {
    Some(match c {
        '"' => "\\\"",
        '\\' => "\\\\",
        '\n' => "\\n",
        '\r' => "\\r",
        '\t' => "\\t",
        '\u{8}' => "\\b",
        '\u{c}' => "\\f",
        _ => return None,
    })
}

/// Go's `%q` of a string.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if let Some(e) = short_escape(c) {
            out.push_str(e);
            continue;
        }
        match c {
            '\u{7}' => out.push_str("\\a"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub(crate) fn go_quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// juju/cmd's `CheckEmpty`.
pub(crate) fn check_empty(args: &[String]) -> Result<(), String> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(format!("unrecognized args: {}", go_quote_list(args)))
    }
}

/// juju/utils' `keyvalues.Parse(args, true)`: `key=value` pairs, trimmed, empty values allowed.
pub(crate) fn key_values(args: &[String]) -> Result<Settings, String> {
    let mut out = Settings::new();
    for kv in args {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(format!("expected \"key=value\", got {}", go_quote(kv)));
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            return Err(format!("expected \"key=value\", got \"{k}={v}\""));
        }
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("key {} specified more than once", go_quote(k)));
        }
    }
    Ok(out)
}

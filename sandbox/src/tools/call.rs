//! What every tool body works with: the [`Call`] in progress, how it fails, the shared flags
//! and the argument helpers of juju/cmd and juju/utils.

use super::args::{self, Check, Flag, Kind, Parsed};
use super::env::{HookEnv, Settings, ToolError};
use super::format::{self, Out};
use super::ToolOutput;
use std::collections::BTreeMap;

/// One hook tool: its help, flags and body.
pub(crate) struct Tool {
    /// Command name.
    pub name: &'static str,
    /// Positional arguments, for `--help`.
    pub args: &'static str,
    /// One line for `--help`.
    pub purpose: &'static str,
    /// Flags it accepts.
    pub flags: &'static [Flag],
    /// Checks the arguments (Juju's `Init`), then runs.
    pub run: fn(&mut Call) -> Res,
}

/// How a tool fails.
#[derive(Debug)]
pub(crate) enum Fail {
    /// Bad arguments (exit 2).
    Usage(String),
    /// Failure while running (exit 1).
    Run(String),
}

impl From<ToolError> for Fail {
    fn from(e: ToolError) -> Self {
        Fail::Run(e.0)
    }
}

/// A tool body's result.
pub(crate) type Res = Result<(), Fail>;

/// Shorthand for a usage failure.
pub(crate) fn usage(msg: impl Into<String>) -> Fail {
    Fail::Usage(msg.into())
}

/// Shorthand for a run-time failure.
pub(crate) fn fail(msg: impl Into<String>) -> Fail {
    Fail::Run(msg.into())
}

/// `--format` and `-o/--output`, on every tool that prints a value.
pub(crate) const FORMAT: Flag = checked(
    &["format"],
    Check::Format,
    "smart",
    "Specify output format (json|smart|yaml)",
);
/// See [`FORMAT`].
pub(crate) const OUTPUT: Flag = value(&["o", "output"], "", "Specify an output file");
/// The deprecated `--format` of tools that print nothing.
pub(crate) const OLD_FORMAT: Flag = value(&["format"], "", "deprecated format flag");
/// `-r/--relation`.
pub(crate) const RELATION: Flag = checked(
    &["r", "relation"],
    Check::Relation,
    "",
    "Specify a relation by id",
);

/// A bool flag.
pub(crate) const fn switch(names: &'static [&'static str], usage: &'static str) -> Flag {
    Flag {
        names,
        kind: Kind::Bool,
        check: Check::None,
        default: "false",
        usage,
    }
}

/// A string flag.
pub(crate) const fn value(
    names: &'static [&'static str],
    default: &'static str,
    usage: &'static str,
) -> Flag {
    checked(names, Check::None, default, usage)
}

/// A string flag whose value parsing checks.
pub(crate) const fn checked(
    names: &'static [&'static str],
    check: Check,
    default: &'static str,
    usage: &'static str,
) -> Flag {
    Flag {
        names,
        kind: Kind::Value,
        check,
        default,
        usage,
    }
}

/// One tool call in progress.
pub(crate) struct Call<'a> {
    /// The controller's side of the hook context.
    pub env: &'a mut dyn HookEnv,
    /// Files the client read for `--file`.
    pub files: &'a BTreeMap<String, Vec<u8>>,
    /// The tool.
    pub tool: &'static Tool,
    /// Parsed flags and positional arguments.
    pub flags: Parsed,
    /// The relation id from `-r`, else the hook's relation, else -1.
    pub relation: i64,
    /// What is printed.
    pub out: ToolOutput,
}

impl Call<'_> {
    /// Positional arguments.
    pub fn args(&self) -> &[String] {
        &self.flags.args
    }

    /// The relation id, or the usage error of a tool that needs one.
    pub fn need_relation(&self) -> Result<i64, Fail> {
        if self.relation == -1 {
            Err(usage("no relation id specified"))
        } else {
            Ok(self.relation)
        }
    }

    /// The `--format` in effect: as given, else the tool's default.
    pub fn format(&self) -> &str {
        self.flags.value("format").unwrap_or_else(|| {
            let flag = self.tool.flags.iter().find(|f| f.names[0] == "format");
            flag.map_or("smart", |f| f.default)
        })
    }

    /// Writes a value (`None` is nil) with `--format`, to `-o/--output` when given.
    pub fn write(&mut self, v: Option<Out>) -> Res {
        let text = format::render(self.format(), v.as_ref());
        self.out.stdout.extend(text.into_bytes());
        if let Some(path) = self.flags.value("o").filter(|p| !p.is_empty()) {
            self.out.output_file = Some(path.to_string());
        }
        Ok(())
    }

    /// Warns on stderr about the deprecated `--format` of tools that print nothing.
    pub fn warn_old_format(&mut self) {
        if self.flags.value("format").is_some_and(|f| !f.is_empty()) {
            let msg = format!(
                "--format flag deprecated for command {}",
                args::go_quote(self.tool.name)
            );
            self.out.stderr.extend(msg.into_bytes());
        }
    }

    /// Settings from `--file` (a YAML map of strings; `-` is stdin) overridden by `overrides`.
    pub fn file_settings(&self, overrides: Settings) -> Result<Settings, Fail> {
        let Some(path) = self.flags.value("file").filter(|p| !p.is_empty()) else {
            return Ok(overrides);
        };
        let data = self
            .files
            .get(path)
            .ok_or_else(|| fail(format!("open {path}: no such file or directory")))?;
        let mut settings = Settings::new();
        if !String::from_utf8_lossy(data).trim().is_empty() {
            // Like yaml.v2 into a `map[string]string`: scalars keep their text, nulls are "".
            let parsed: Option<BTreeMap<String, Option<String>>> =
                serde_yaml_ng::from_slice(data).map_err(|e| fail(format!("yaml: {e}")))?;
            let pairs = parsed.unwrap_or_default().into_iter();
            settings.extend(pairs.map(|(k, v)| (k, v.unwrap_or_default())));
        }
        settings.extend(overrides);
        Ok(settings)
    }
}

/// `key=value` arguments, or the usage error.
pub(crate) fn key_values(args: &[String]) -> Result<Settings, Fail> {
    args::key_values(args).map_err(Fail::Usage)
}

/// No arguments left, or the usage error.
pub(crate) fn check_empty(args: &[String]) -> Res {
    args::check_empty(args).map_err(Fail::Usage)
}

/// The one optional positional argument; any more is the usage error.
pub(crate) fn optional_arg(args: &[String]) -> Result<Option<String>, Fail> {
    let (first, rest) = match args.split_first() {
        Some((first, rest)) => (Some(first.clone()), rest),
        None => (None, args),
    };
    check_empty(rest)?;
    Ok(first)
}

/// One key of a settings map, the whole map for `""`, nil when missing.
pub(crate) fn select(settings: &Settings, key: &str) -> Option<Out> {
    if key.is_empty() {
        return Some(Out::settings(settings));
    }
    settings.get(key).map(|v| Out::Str(v.clone()))
}

/// The optional `<key>` argument of the `*-get` tools (`-` means all).
pub(crate) fn get_key(args: &[String]) -> (String, &[String]) {
    match args.split_first() {
        Some((k, rest)) if k != "-" => (k.clone(), rest),
        Some((_, rest)) => (String::new(), rest),
        None => (String::new(), args),
    }
}

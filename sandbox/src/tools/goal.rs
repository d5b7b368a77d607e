//! `goal-state` (juju/juju `jujuc/goal-state.go`): `--format yaml|json` (default yaml), no
//! arguments; `since` in juju/cmd's `FormatTime(t, true)` form, `2006-01-02 15:04:05Z`.

use super::args::Check;
use super::env::GoalStatus;
use super::format::{Field, Out};
use super::{check_empty, checked, Call, Res, Tool, OUTPUT};
use std::collections::BTreeMap;

/// The goal-state tool.
pub(crate) const TOOLS: &[Tool] = &[Tool {
    name: "goal-state",
    args: "",
    purpose: "Print the status of the charm's peers and related units.",
    flags: &[
        checked(
            &["format"],
            Check::YamlJson,
            "yaml",
            "Specify output format (json|yaml)",
        ),
        OUTPUT,
    ],
    run: goal_state,
}];

/// `2006-01-02 15:04:05Z` in UTC.
pub(crate) fn go_time(t: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t as i64).map_or_else(
        |_| String::new(),
        |t| {
            format!(
                "{}-{:02}-{:02} {:02}:{:02}:{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        },
    )
}

fn field(name: &'static str, value: Out) -> Field {
    Field {
        json: name,
        yaml: name,
        value,
    }
}

fn statuses(m: &BTreeMap<String, GoalStatus>) -> Out {
    Out::Map(
        m.iter()
            .map(|(name, s)| {
                let mut fields = vec![field("status", Out::Str(s.status.clone()))];
                let since = go_time(s.since);
                if !since.is_empty() {
                    fields.push(field("since", Out::Str(since)));
                }
                (name.clone(), Out::Struct(fields))
            })
            .collect(),
    )
}

fn goal_state(c: &mut Call) -> Res {
    check_empty(c.args())?;
    let gs = c.env.goal_state()?;
    let relations = gs
        .relations
        .iter()
        .map(|(ep, m)| (ep.clone(), statuses(m)))
        .collect();
    c.write(Some(Out::Struct(vec![
        field("units", statuses(&gs.units)),
        field("relations", Out::Map(relations)),
    ])))
}

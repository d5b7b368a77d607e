//! `status-set`, `status-get`, `application-version-set` (juju/juju `jujuc/status-set.go`,
//! `status-get.go`, `application-version-set.go`).

use super::args::go_quote;
use super::env::StatusInfo;
use super::format::Out;
use super::{check_empty, optional_arg, switch, usage, Call, Res, Tool, FORMAT, OUTPUT};

/// The status tools.
pub(crate) const TOOLS: &[Tool] = &[
    Tool {
        name: "status-set",
        args: "<maintenance | blocked | waiting | active> [message]",
        purpose: "set status information",
        flags: &[switch(
            &["application"],
            "set this status for the application to which the unit belongs if the unit is the leader",
        )],
        run: status_set,
    },
    Tool {
        name: "status-get",
        args: "[--include-data] [--application]",
        purpose: "print status information",
        flags: &[
            FORMAT,
            OUTPUT,
            switch(&["include-data"], "print all status data"),
            switch(&["application"], "print status for all units of this application if this unit is the leader"),
        ],
        run: status_get,
    },
    Tool {
        name: "application-version-set",
        args: "<new-version>",
        purpose: "specify which version of the application is deployed",
        flags: &[],
        run: application_version_set,
    },
];

/// The statuses a charm may set, in Juju's order.
const VALID: &[&str] = &["maintenance", "blocked", "waiting", "active"];

fn status_set(c: &mut Call) -> Res {
    let Some((status, rest)) = c.args().split_first() else {
        return Err(usage("invalid args, require <status> [message]"));
    };
    if !VALID.contains(&status.as_str()) {
        return Err(usage(format!(
            "invalid status {}, expected one of [{}]",
            go_quote(status),
            VALID.join(" ")
        )));
    }
    let message = optional_arg(rest)?.unwrap_or_default();
    let (status, application) = (status.clone(), c.flags.on("application"));
    Ok(c.env.status_set(application, &status, &message)?)
}

/// `{status}` or, with data, `{message, status, status-data}` (Juju keeps no data here: `{}`).
fn details(info: &StatusInfo, include_data: bool) -> Vec<(String, Out)> {
    let mut d = vec![("status".to_string(), Out::Str(info.status.clone()))];
    if include_data {
        d.push(("message".into(), Out::Str(info.message.clone())));
        d.push(("status-data".into(), Out::Map(vec![])));
    }
    d
}

fn status_get(c: &mut Call) -> Res {
    check_empty(c.args())?;
    let include_data = c.flags.on("include-data");
    let plain = !include_data && c.format() == "smart";
    if c.flags.on("application") {
        let (app, units) = c.env.application_status_get()?;
        if plain {
            return c.write(Some(Out::Str(app.status)));
        }
        let mut d = details(&app, include_data);
        let units = units
            .iter()
            .map(|(u, s)| (u.clone(), Out::Map(details(s, include_data))))
            .collect();
        d.push(("units".into(), Out::Map(units)));
        return c.write(Some(Out::Map(vec![(
            "application-status".into(),
            Out::Map(d),
        )])));
    }
    let unit = c.env.status_get()?;
    if plain {
        return c.write(Some(Out::Str(unit.status)));
    }
    c.write(Some(Out::Map(details(&unit, include_data))))
}

fn application_version_set(c: &mut Call) -> Res {
    let Some((version, rest)) = c.args().split_first() else {
        return Err(usage("no version specified"));
    };
    check_empty(rest)?;
    let version = version.clone();
    Ok(c.env.application_version_set(&version)?)
}

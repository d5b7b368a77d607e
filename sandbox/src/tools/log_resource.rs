//! `juju-log`, `resource-get` and `juju-reboot` (juju/juju `jujuc/juju-log.go`,
//! `resource-get.go`, `reboot.go`).

use super::{check_empty, fail, switch, usage, value, Call, Res, Tool, OLD_FORMAT};

/// The log, resource and reboot tools.
pub(crate) const TOOLS: &[Tool] = &[
    Tool {
        name: "juju-log",
        args: "<message>",
        purpose: "write a message to the juju log",
        flags: &[
            switch(&["debug"], "log at debug level"),
            value(
                &["l", "log-level"],
                "INFO",
                "Send log message at the given level",
            ),
            OLD_FORMAT,
        ],
        run: juju_log,
    },
    Tool {
        name: "resource-get",
        args: "<resource name>",
        purpose: "get the path to the locally cached resource file",
        flags: &[],
        run: resource_get,
    },
    Tool {
        name: "juju-reboot",
        args: "",
        purpose: "Reboot the host machine.",
        flags: &[switch(
            &["now"],
            "reboot immediately, killing the invoking process",
        )],
        run: juju_reboot,
    },
];

/// loggo's `ParseLevel` (case-insensitive, `WARN` for `WARNING`).
fn parse_level(level: &str) -> Option<&'static str> {
    match level.to_uppercase().as_str() {
        "TRACE" => Some("TRACE"),
        "DEBUG" => Some("DEBUG"),
        "INFO" => Some("INFO"),
        "WARN" | "WARNING" => Some("WARNING"),
        "ERROR" => Some("ERROR"),
        "CRITICAL" => Some("CRITICAL"),
        _ => None,
    }
}

/// Logs the words joined by spaces, prefixed with the hook's relation (`db:3: `) if any.
fn juju_log(c: &mut Call) -> Res {
    if c.args().is_empty() {
        return Err(usage("no message specified"));
    }
    let message = c.args().join(" ");
    c.warn_old_format();
    let given = c.flags.value("l").unwrap_or("INFO").to_string();
    let level = match (c.flags.on("debug"), parse_level(&given)) {
        (true, _) => "DEBUG",
        (false, Some(level)) => level,
        (false, None) if given.is_empty() => "INFO",
        (false, None) => {
            let warning = format!(
                "Specified log level of {} is not valid",
                super::args::go_quote(&given)
            );
            c.env.juju_log("WARNING", &warning)?;
            "INFO"
        }
    };
    let prefix = c
        .env
        .current_relation()
        .and_then(|id| {
            c.env
                .relation_endpoint(id)
                .map(|name| format!("{name}:{id}: "))
        })
        .unwrap_or_default();
    Ok(c.env.juju_log(level, &format!("{prefix}{message}"))?)
}

/// Prints the file's path with no newline.
fn resource_get(c: &mut Call) -> Res {
    let Some((name, rest)) = c.args().split_first() else {
        return Err(usage("missing required resource name"));
    };
    check_empty(rest)?;
    let name = name.clone();
    let path = c.env.resource_get(&name)?;
    c.out.stdout.extend(path.into_bytes());
    Ok(())
}

fn juju_reboot(c: &mut Call) -> Res {
    check_empty(c.args())?;
    Err(fail("juju-reboot is not supported in the sandbox"))
}

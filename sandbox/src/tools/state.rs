//! `state-get`, `state-set`, `state-delete`: the unit's server-side key/value store (juju/juju
//! `jujuc/state-get.go`, `state-set.go`, `state-delete.go`).

use super::args::go_quote;
use super::format::Out;
use super::{
    check_empty, fail, get_key, key_values, optional_arg, select, switch, value, Call, Res, Tool,
    FORMAT, OUTPUT,
};

/// The state tools.
pub(crate) const TOOLS: &[Tool] = &[
    Tool {
        name: "state-get",
        args: "[<key>]",
        purpose: "print server-side-state value",
        flags: &[
            FORMAT,
            OUTPUT,
            switch(
                &["strict"],
                "Return an error if the requested key does not exist",
            ),
        ],
        run: state_get,
    },
    Tool {
        name: "state-set",
        args: "key=value [key=value ...]",
        purpose: "set server-side-state values",
        flags: &[value(&["file"], "", "file containing key-value pairs")],
        run: state_set,
    },
    Tool {
        name: "state-delete",
        args: "<key>",
        purpose: "delete server-side-state key value pairs",
        flags: &[],
        run: state_delete,
    },
];

/// A missing key prints an empty string (JSON `""`), or fails with `--strict`.
fn state_get(c: &mut Call) -> Res {
    let (key, rest) = get_key(c.args());
    check_empty(rest)?;
    let state = c.env.state_get()?;
    let value = match select(&state, &key) {
        Some(v) => v,
        None if c.flags.on("strict") => return Err(fail(format!("{} not found", go_quote(&key)))),
        None => Out::Str(String::new()),
    };
    c.write(Some(value))
}

fn state_set(c: &mut Call) -> Res {
    let overrides = key_values(c.args())?;
    let settings = c.file_settings(overrides)?;
    Ok(c.env.state_set(settings)?)
}

fn state_delete(c: &mut Call) -> Res {
    match optional_arg(c.args())? {
        Some(key) if !key.is_empty() => Ok(c.env.state_delete(&key)?),
        Some(_) | None => Ok(()),
    }
}

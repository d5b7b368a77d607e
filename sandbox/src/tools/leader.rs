//! `is-leader`, `leader-get`, `leader-set` (juju/juju `jujuc/is-leader.go`, `leader-get.go`,
//! `leader-set.go`).

use super::format::Out;
use super::{
    check_empty, fail, get_key, key_values, select, usage, Call, Res, Tool, FORMAT, OUTPUT,
};

/// The leadership tools.
pub(crate) const TOOLS: &[Tool] = &[
    Tool {
        name: "is-leader",
        args: "",
        purpose: "print application leadership status",
        flags: &[FORMAT, OUTPUT],
        run: is_leader,
    },
    Tool {
        name: "leader-get",
        args: "[<key>]",
        purpose: "print application leadership settings",
        flags: &[FORMAT, OUTPUT],
        run: leader_get,
    },
    Tool {
        name: "leader-set",
        args: "<key>=<value> [...]",
        purpose: "write application leadership settings",
        flags: &[],
        run: leader_set,
    },
];

fn is_leader(c: &mut Call) -> Res {
    check_empty(c.args())?;
    let leader = c
        .env
        .is_leader()
        .map_err(|e| fail(format!("leadership status unknown: {e}")))?;
    c.write(Some(Out::Bool(leader)))
}

fn leader_get(c: &mut Call) -> Res {
    let (key, rest) = get_key(c.args());
    if key.contains('=') {
        return Err(usage(format!(
            "invalid key {}",
            super::args::go_quote(&key)
        )));
    }
    check_empty(rest)?;
    let settings = c
        .env
        .leader_get()
        .map_err(|e| fail(format!("cannot read leadership settings: {e}")))?;
    c.write(select(&settings, &key))
}

/// Writes at once; the environment's error for a non-leader is Juju's whole message.
fn leader_set(c: &mut Call) -> Res {
    let settings = key_values(c.args())?;
    Ok(c.env.leader_set(settings)?)
}

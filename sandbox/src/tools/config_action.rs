//! `config-get` and the action tools `action-get`, `action-set`, `action-fail`, `action-log`
//! (juju/juju `jujuc/config-get.go`, `action-*.go`).

use super::args::go_quote;
use super::format::Out;
use super::{check_empty, fail, optional_arg, switch, usage, Call, Res, Tool, FORMAT, OUTPUT};

/// The config and action tools.
pub(crate) const TOOLS: &[Tool] = &[
    Tool {
        name: "config-get",
        args: "[<key>]",
        purpose: "print application configuration",
        flags: &[FORMAT, OUTPUT, switch(&["a", "all"], "print all keys")],
        run: config_get,
    },
    Tool {
        name: "action-get",
        args: "[<key>[.<key>.<key>...]]",
        purpose: "get action parameters",
        flags: &[FORMAT, OUTPUT],
        run: action_get,
    },
    Tool {
        name: "action-set",
        args: "<key>=<value> [<key>=<value> ...]",
        purpose: "Set action results.",
        flags: &[],
        run: action_set,
    },
    Tool {
        name: "action-fail",
        args: "[\"<failure message>\"]",
        purpose: "set action fail status with message",
        flags: &[],
        run: action_fail,
    },
    Tool {
        name: "action-log",
        args: "<message>",
        purpose: "record a progress message for the current action",
        flags: &[],
        run: action_log,
    },
];

/// Result keys Juju keeps for itself.
const RESERVED_KEYS: &[&str] = &["stdout", "stdout-encoding", "stderr", "stderr-encoding"];

fn config_get(c: &mut Call) -> Res {
    let key = c.args().first().cloned().unwrap_or_default();
    let all = c.flags.on("a");
    if !key.is_empty() && all {
        return Err(usage(format!(
            "cannot use argument --all together with key {}",
            go_quote(&key)
        )));
    }
    check_empty(c.args().get(1..).unwrap_or_default())?;
    let config = c.env.config()?;
    let value = if key.is_empty() {
        let kept = config.iter().filter(|(_, v)| all || !v.is_null());
        Out::Map(kept.map(|(k, v)| (k.clone(), Out::from_json(v))).collect())
    } else {
        config.get(&key).map_or(Out::Null, Out::from_json)
    };
    c.write((value != Out::Null).then_some(value))
}

fn action_get(c: &mut Call) -> Res {
    let keys: Vec<String> = match optional_arg(c.args())? {
        Some(first) => first.split('.').map(String::from).collect(),
        None => vec![],
    };
    let params = c
        .env
        .action_params()
        .ok_or_else(|| fail("not running an action"))?;
    let answer = if keys.is_empty() {
        Some(if params.is_null() {
            Out::Map(vec![])
        } else {
            Out::from_json(&params)
        })
    } else {
        keys.iter()
            .try_fold(&params, |v, k| v.as_object().and_then(|m| m.get(k)))
            .map(Out::from_json)
            .filter(|v| *v != Out::Null)
    };
    c.write(answer)
}

/// Juju's action key rule (`charm.GetActionNameRule`): `^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$`.
fn valid_key(k: &str) -> bool {
    let b = k.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && alnum(&b[0])
        && alnum(&b[b.len() - 1])
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

fn action_set(c: &mut Call) -> Res {
    let mut pairs = vec![];
    for arg in c.args() {
        let Some((key, value)) = arg.split_once('=') else {
            return Err(usage(format!(
                "argument {} must be of the form key...=value",
                go_quote(arg)
            )));
        };
        for k in key.split('.') {
            if !valid_key(k) {
                return Err(usage(format!(
                    "key {} must start and end with lowercase alphanumeric, and contain only lowercase \
                     alphanumeric, hyphens and periods",
                    go_quote(k)
                )));
            }
            if RESERVED_KEYS.contains(&k) {
                return Err(usage(format!(
                    "cannot set reserved action key {}",
                    go_quote(k)
                )));
            }
        }
        pairs.push((key.to_string(), value.to_string()));
    }
    for (key, value) in pairs {
        c.env.action_set(&key, &value)?;
    }
    Ok(())
}

fn action_fail(c: &mut Call) -> Res {
    let message = optional_arg(c.args())?
        .unwrap_or_else(|| "action failed without reason given, check action for errors".into());
    Ok(c.env.action_fail(&message)?)
}

fn action_log(c: &mut Call) -> Res {
    if c.args().is_empty() {
        return Err(usage("no message specified"));
    }
    let message = c.args().join(" ");
    Ok(c.env.action_log(&message)?)
}

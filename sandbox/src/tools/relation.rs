//! `relation-get`, `relation-set`, `relation-ids`, `relation-list` (juju/juju
//! `jujuc/relation-*.go`).

use super::env::Databag;
use super::format::Out;
use super::{
    check_empty, fail, get_key, key_values, select, switch, usage, value, Call, Res, Tool, FORMAT,
    OLD_FORMAT, OUTPUT, RELATION,
};

/// The relation tools.
pub(crate) const TOOLS: &[Tool] = &[
    Tool {
        name: "relation-get",
        args: "[<key> [<unit id>]]",
        purpose: "get relation settings",
        flags: &[FORMAT, OUTPUT, RELATION, APP_GET],
        run: relation_get,
    },
    Tool {
        name: "relation-set",
        args: "key=value [key=value ...]",
        purpose: "Set relation settings.",
        flags: &[
            RELATION,
            value(&["file"], "", "file containing key-value pairs"),
            switch(
                &["app"],
                "pick whether you are setting \"application\" settings or \"unit\" settings",
            ),
            OLD_FORMAT,
        ],
        run: relation_set,
    },
    Tool {
        name: "relation-ids",
        args: "[<name>]",
        purpose: "list all relation ids with the given relation name",
        flags: &[FORMAT, OUTPUT],
        run: relation_ids,
    },
    Tool {
        name: "relation-list",
        args: "",
        purpose: "list relation units",
        flags: &[
            FORMAT,
            OUTPUT,
            RELATION,
            switch(
                &["app"],
                "List remote application instead of participating units",
            ),
        ],
        run: relation_list,
    },
];

const APP_GET: super::Flag = switch(
    &["app"],
    "Get the relation data for the overall application, not just a unit",
);

/// Juju's application name rule: `^[a-z][a-z0-9]*(-[a-z0-9]*[a-z][a-z0-9]*)*$`.
fn valid_app(name: &str) -> bool {
    let mut parts = name.split('-');
    let first = parts.next().unwrap_or("");
    let ok = |p: &str| {
        p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    first.starts_with(|c: char| c.is_ascii_lowercase())
        && ok(first)
        && parts.all(|p| ok(p) && p.bytes().any(|b| b.is_ascii_lowercase()))
}

/// Juju's unit name rule: `<application>/<number>`; answers the application.
fn unit_app(name: &str) -> Option<&str> {
    let (app, num) = name.split_once('/')?;
    (valid_app(app) && !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit())).then_some(app)
}

fn relation_get(c: &mut Call) -> Res {
    let id = c.need_relation()?;
    let (key, rest) = get_key(c.args());
    let mut app = c.flags.on("app");
    let (target, rest) = match rest.split_first() {
        Some((given, rest)) if app => {
            let name = if valid_app(given) {
                given.as_str()
            } else {
                unit_app(given).unwrap_or_default()
            };
            (name.to_string(), rest)
        }
        Some((given, rest)) => (given.clone(), rest),
        None if app => (
            c.env
                .remote_app()
                .ok_or_else(|| usage("no unit or application specified"))?,
            rest,
        ),
        None => match (c.env.remote_unit(), c.env.remote_app()) {
            (Some(unit), _) => (unit, rest),
            (None, Some(remote_app)) => {
                app = true;
                (remote_app, rest)
            }
            (None, None) => return Err(usage("no unit or application specified")),
        },
    };
    check_empty(rest)?;
    let bag = if app {
        Databag::App(target)
    } else {
        Databag::Unit(target)
    };
    let settings = c.env.relation_get(id, &bag)?;
    c.write(select(&settings, &key))
}

fn relation_set(c: &mut Call) -> Res {
    let id = c.need_relation()?;
    let overrides = key_values(c.args())?;
    c.warn_old_format();
    let settings = c.file_settings(overrides)?;
    let app = c.flags.on("app");
    if app
        && !c
            .env
            .is_leader()
            .map_err(|e| fail(format!("cannot determine leadership status: {e}")))?
    {
        return Err(fail("cannot write relation settings"));
    }
    Ok(c.env.relation_set(id, app, settings)?)
}

fn relation_ids(c: &mut Call) -> Res {
    let current = c
        .env
        .current_relation()
        .and_then(|id| c.env.relation_endpoint(id));
    let (name, rest) = match c.args().split_first() {
        Some((name, rest)) => (name.clone(), rest),
        None => (
            current.ok_or_else(|| usage("no relation name specified"))?,
            c.args(),
        ),
    };
    check_empty(rest)?;
    let ids = c.env.relation_ids(&name)?;
    c.write(Some(Out::Strings(ids)))
}

fn relation_list(c: &mut Call) -> Res {
    let id = c.need_relation()?;
    check_empty(c.args())?;
    let out = if c.flags.on("app") {
        Out::Str(c.env.relation_remote_app(id)?)
    } else {
        Out::Strings(c.env.relation_list(id)?)
    };
    c.write(Some(out))
}

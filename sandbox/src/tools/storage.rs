//! `storage-get`, `storage-list`, `storage-add` (juju/juju `jujuc/storage-get.go`,
//! `storage-list.go`, `storage-add.go`, `storage-id.go`).

use super::args::{go_quote, Check};
use super::env::{HookEnv, Settings};
use super::format::Out;
use super::{checked, fail, optional_arg, usage, Call, Res, Tool, FORMAT, OUTPUT};

/// The storage tools.
pub(crate) const TOOLS: &[Tool] = &[
    Tool {
        name: "storage-get",
        args: "[<key>]",
        purpose: "print information for storage instance with specified id",
        flags: &[
            FORMAT,
            OUTPUT,
            checked(
                &["s"],
                Check::Storage,
                "",
                "specify a storage instance by id",
            ),
        ],
        run: storage_get,
    },
    Tool {
        name: "storage-list",
        args: "[<storage-name>]",
        purpose: "list storage attached to the unit",
        flags: &[FORMAT, OUTPUT],
        run: storage_list,
    },
    Tool {
        name: "storage-add",
        args: "<charm storage name>[=count] ...",
        purpose: "add storage instances",
        flags: &[],
        run: storage_add,
    },
];

/// `-s`'s check (storage-id.go `Set`): a well-formed id of storage attached to this unit.
pub(crate) fn check_id(env: &dyn HookEnv, value: &str) -> Result<(), String> {
    if !crate::controller::storage::valid_id(value) {
        return Err(format!("invalid storage ID {}", go_quote(value)));
    }
    env.storage_get(value).map(|_| ()).map_err(|e| e.0)
}

/// Only `kind` and `location`; no key prints both.
fn storage_get(c: &mut Call) -> Res {
    let id = match c.flags.value("s").filter(|s| !s.is_empty()) {
        Some(s) => s.to_string(),
        None => c
            .env
            .hook_storage()
            .ok_or_else(|| usage("no storage instance specified"))?,
    };
    let key = optional_arg(c.args())?.unwrap_or_default();
    let info = c.env.storage_get(&id)?;
    let values = Settings::from([
        ("kind".to_string(), info.kind),
        ("location".to_string(), info.location),
    ]);
    if key.is_empty() {
        return c.write(Some(Out::settings(&values)));
    }
    match values.get(&key) {
        Some(v) => c.write(Some(Out::Str(v.clone()))),
        None => Err(fail(format!(
            "invalid storage attribute {}",
            go_quote(&key)
        ))),
    }
}

/// The ids in the controller's order; json prints `[]` for none.
fn storage_list(c: &mut Call) -> Res {
    let name = optional_arg(c.args())?.unwrap_or_default();
    let ids = c.env.storage_list(&name)?;
    c.write(Some(Out::Strings(ids)))
}

fn storage_add(c: &mut Call) -> Res {
    let adds = crate::controller::storage::parse_storage_add(c.args()).map_err(usage)?;
    Ok(c.env.storage_add(adds)?)
}

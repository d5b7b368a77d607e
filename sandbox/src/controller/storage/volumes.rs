//! The host side of storage: each instance's owner-only directory under
//! `$SANDBOX_HOME/storage/`, bound into its unit's machine at boot or while it runs, and
//! deleted when the instance is destroyed.

use super::super::{private, Shared, State};
use super::Status;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The host directory backing instance `id` (`data/0` → `storage/data-0`).
pub fn dir(home: &Path, id: &str) -> PathBuf {
    home.join("storage").join(id.replace('/', "-"))
}

/// The binds of `unit`'s machine for its storage (host dir, mount point, read-only); the
/// provisioner makes the directories (0700, in a 0700 `storage/`) once the lock is released.
pub fn boot_binds(
    home: &Path,
    model: &super::super::model::Model,
    unit: &str,
) -> Vec<(PathBuf, String, bool)> {
    super::attached_to(model, unit, None)
        .into_iter()
        .map(|id| {
            let inst = &model.storage.instances[&id];
            (dir(home, &id), inst.location.clone(), inst.read_only)
        })
        .collect()
}

/// Instances being bound now (so a second commit does not bind them twice).
static BINDING: Mutex<BTreeSet<(PathBuf, String)>> = Mutex::new(BTreeSet::new());

/// Binds `unit`'s pending instances that are not yet in its running machine (a `storage-add`
/// just committed), each in the background; its `-storage-attached` is queued once it is in.
pub fn bind_new(sh: &Arc<Shared>, st: &State, unit: &str) {
    let Some(handle) = st
        .model
        .units
        .get(unit)
        .and_then(|u| st.model.machines.get(&u.machine))
        .filter(|m| m.state == crate::controller::model::MachineState::Started)
        .and_then(|m| m.handle.clone())
    else {
        return;
    };
    let todo: Vec<(String, String, bool)> = super::attached_to(&st.model, unit, None)
        .into_iter()
        .map(|id| &st.model.storage.instances[&id])
        .filter(|i| i.status == Status::Pending && !i.mounted)
        .map(|i| (i.id.clone(), i.location.clone(), i.read_only))
        .collect();
    for (id, location, read_only) in todo {
        let key = (sh.home.clone(), id.clone());
        if !BINDING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone())
        {
            continue;
        }
        let (sh, handle) = (sh.clone(), handle.clone());
        std::thread::spawn(move || {
            let d = dir(&sh.home, &id);
            let r = private::dir(&d)
                .map_err(anyhow::Error::from)
                .and_then(|()| handle.bind_in(&d, &location, read_only));
            let mut st = sh.lock();
            match r {
                Ok(()) => {
                    super::mounted(&mut st.model, &id, true);
                    sh.log_line("controller", "INFO", &format!("attached storage {id}"));
                }
                Err(e) => sh.log_line(
                    "controller",
                    "ERROR",
                    &format!("cannot attach storage {id} to its machine: {e:#}"),
                ),
            }
            BINDING
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
            sh.commit(&st);
        });
    }
}

/// `unit` is gone: detach its instances, deleting those marked for destruction with their data
/// (in the background: the model no longer has them).
pub fn unit_gone(sh: &Arc<Shared>, st: &mut State, unit: &str) {
    let doomed = super::unit_gone(&mut st.model, unit);
    if doomed.is_empty() {
        return;
    }
    let sh = sh.clone();
    std::thread::spawn(move || {
        for id in doomed {
            let d = dir(&sh.home, &id);
            match std::fs::remove_dir_all(&d) {
                Ok(()) => sh.log_line("controller", "INFO", &format!("destroyed storage {id}")),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => sh.log_line(
                    "controller",
                    "ERROR",
                    &format!("cannot delete {} of storage {id}: {e}", d.display()),
                ),
            }
        }
    });
}

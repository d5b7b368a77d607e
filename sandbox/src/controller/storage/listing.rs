//! `sandbox storage`: the model's storage as `juju storage` prints it (cmd/juju/storage/
//! `list.go`, `listformatters.go`, `filesystemlistformatters.go`): a table of instances, or
//! YAML/JSON with `storage:` and `filesystems:`.

use super::super::model::Model;
use super::{sort_ids, Instance, Status};
use serde::Serialize;
use std::collections::BTreeMap;

/// `juju storage --format yaml|json`.
#[derive(Debug, Serialize)]
pub struct Listing {
    /// Instances by id.
    pub storage: BTreeMap<String, StorageInfo>,
    /// Filesystems by number.
    pub filesystems: BTreeMap<String, FilesystemInfo>,
}

/// One instance (`StorageInfo`).
#[derive(Debug, Serialize)]
pub struct StorageInfo {
    /// `filesystem`.
    pub kind: String,
    /// `alive`.
    pub life: String,
    /// Status and since.
    pub status: EntityStatus,
    /// Whether it outlives its unit.
    pub persistent: bool,
    /// Its unit, when attached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachments: Option<Attachments>,
}

/// `current` and `since`.
#[derive(Debug, Serialize)]
pub struct EntityStatus {
    /// e.g. `attached`.
    pub current: String,
    /// `02 Jan 2006 15:04:05Z`.
    pub since: String,
}

/// The units an instance is attached to.
#[derive(Debug, Serialize)]
pub struct Attachments {
    /// Unit → attachment.
    pub units: BTreeMap<String, UnitAttachment>,
}

/// One unit's attachment.
#[derive(Debug, Serialize)]
pub struct UnitAttachment {
    /// Machine number.
    pub machine: String,
    /// Mount point.
    pub location: String,
    /// `alive` or `dying`.
    pub life: String,
}

/// One filesystem (`FilesystemInfo`).
#[derive(Debug, Serialize)]
pub struct FilesystemInfo {
    /// The backing directory's name.
    #[serde(rename = "provider-id")]
    pub provider_id: String,
    /// Its storage instance.
    pub storage: String,
    /// Its machine attachment, when attached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachments: Option<FilesystemAttachments>,
    /// Pool.
    pub pool: String,
    /// Size in MiB.
    pub size: u64,
    /// `alive`.
    pub life: String,
    /// Status and since.
    pub status: EntityStatus,
}

/// A filesystem's attachments.
#[derive(Debug, Serialize)]
pub struct FilesystemAttachments {
    /// Machine → mount.
    pub machines: BTreeMap<String, MachineAttachment>,
    /// Unit → attachment.
    pub units: BTreeMap<String, UnitAttachment>,
}

/// A filesystem mounted on a machine.
#[derive(Debug, Serialize)]
pub struct MachineAttachment {
    /// Mount point.
    #[serde(rename = "mount-point")]
    pub mount_point: String,
    /// Read-only.
    #[serde(rename = "read-only")]
    pub read_only: bool,
    /// `alive`.
    pub life: String,
}

fn unit_attachment(m: &Model, i: &Instance) -> Option<(String, UnitAttachment)> {
    let unit = i.unit.as_ref()?;
    let u = m.units.get(unit)?;
    let life = match u.life {
        super::super::model::Life::Alive => "alive",
        super::super::model::Life::Dying => "dying",
    };
    Some((
        unit.clone(),
        UnitAttachment {
            machine: u.machine.to_string(),
            location: i.location.clone(),
            life: life.into(),
        },
    ))
}

fn status(i: &Instance) -> EntityStatus {
    EntityStatus {
        current: i.status.as_str().into(),
        since: crate::status::since(i.since),
    }
}

/// The YAML/JSON listing.
pub fn list(m: &Model) -> Listing {
    let mut storage = BTreeMap::new();
    let mut filesystems = BTreeMap::new();
    for i in m.storage.instances.values() {
        let att = unit_attachment(m, i);
        storage.insert(
            i.id.clone(),
            StorageInfo {
                kind: i.kind.clone(),
                life: "alive".into(),
                status: status(i),
                persistent: true,
                attachments: att.as_ref().map(|(u, a)| Attachments {
                    units: BTreeMap::from([(u.clone(), clone_att(a))]),
                }),
            },
        );
        filesystems.insert(
            i.filesystem.to_string(),
            FilesystemInfo {
                provider_id: i.id.replace('/', "-"),
                storage: i.id.clone(),
                attachments: att.map(|(u, a)| FilesystemAttachments {
                    machines: BTreeMap::from([(
                        a.machine.clone(),
                        MachineAttachment {
                            mount_point: i.location.clone(),
                            read_only: i.read_only,
                            life: "alive".into(),
                        },
                    )]),
                    units: BTreeMap::from([(u, a)]),
                }),
                pool: i.pool.clone(),
                size: i.size,
                life: "alive".into(),
                status: EntityStatus {
                    current: match i.status {
                        Status::Pending | Status::Detached => i.status.as_str().into(),
                        Status::Attached | Status::Detaching => "attached".into(),
                    },
                    since: crate::status::since(i.since),
                },
            },
        );
    }
    Listing {
        storage,
        filesystems,
    }
}

fn clone_att(a: &UnitAttachment) -> UnitAttachment {
    UnitAttachment {
        machine: a.machine.clone(),
        location: a.location.clone(),
        life: a.life.clone(),
    }
}

/// go-humanize's `IBytes` of a size in MiB (`1.0 GiB`, `512 MiB`, `10 GiB`).
pub fn humanize_mib(mib: u64) -> String {
    if mib == 0 {
        return String::new();
    }
    let bytes = mib as f64 * 1024.0 * 1024.0;
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let e = (bytes.ln() / 1024f64.ln()).floor().min(6.0) as i32;
    let val = (bytes / 1024f64.powi(e) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1} {}", units[e as usize])
    } else {
        format!("{val:.0} {}", units[e as usize])
    }
}

/// The table: `Unit  Storage ID  Type  Pool  Size  Status  Message`, by unit (detached
/// storage, with no unit, first), then by id; empty when there is none.
pub fn tabular(m: &Model) -> String {
    let mut ids: Vec<String> = m.storage.instances.keys().cloned().collect();
    sort_ids(&mut ids);
    let mut rows: Vec<(String, String)> = ids
        .into_iter()
        .map(|id| {
            (
                m.storage.instances[&id].unit.clone().unwrap_or_default(),
                id,
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    if rows.is_empty() {
        return String::new();
    }
    let mut table = vec![[
        "Unit",
        "Storage ID",
        "Type",
        "Pool",
        "Size",
        "Status",
        "Message",
    ]
    .map(String::from)
    .to_vec()];
    for (unit, id) in rows {
        let i = &m.storage.instances[&id];
        table.push(vec![
            unit,
            id.clone(),
            i.kind.clone(),
            i.pool.clone(),
            humanize_mib(i.size),
            i.status.as_str().into(),
            String::new(),
        ]);
    }
    crate::status::table(&table)
}

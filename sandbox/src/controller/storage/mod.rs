//! Juju charm storage (filesystem kind) as pure changes to the model: the `storage:` metadata,
//! `--storage` directives, storage instances `<store>/<n>` from one model-wide sequence, which
//! `-storage-attached`/`-storage-detaching` hooks are due, and what is kept or destroyed when a
//! unit goes (juju/charm `meta.go`, state/storage.go, `[internal/]worker/uniter/storage/`).
//!
//! Each instance is backed by an owner-only directory on the host (`storage_dir`), bound into
//! its unit's machine at the mount point: at boot (nspawn `--bind`) or, for one added to a
//! running machine, through systemd-nspawn's propagation directory (`Machine::bind_in`). A
//! volume is detachable, like a cloud volume: `remove-unit` keeps it, detached, with its data,
//! and `add-unit --attach-storage` gives it to a new unit; `--destroy-storage` removes it.

use super::model::{now, Event, Model};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Where Juju mounts a store declared without `location` (core/paths `storageDir`).
pub const DEFAULT_ROOT: &str = "/var/lib/juju/storage";
/// The pool the sandbox backs volumes with (Juju's default for a filesystem).
pub const POOL: &str = "rootfs";
/// Juju's size when neither the directive nor the charm gives one: 1 GiB.
const DEFAULT_SIZE_MIB: u64 = 1024;

/// One store of a charm's `storage:` metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreMeta {
    /// `filesystem` or `block`.
    pub kind: String,
    /// `location`, if given.
    pub location: Option<String>,
    /// Whether `multiple` was given (the mount point is then `<location>/<id>`).
    pub multiple: bool,
    /// The range's minimum (1 for a singleton).
    pub count_min: u32,
    /// The range's maximum (`None`: no upper bound).
    pub count_max: Option<u32>,
    /// `minimum-size` in MiB (0 when not given).
    pub minimum_size: u64,
    /// `read-only`.
    pub read_only: bool,
    /// `shared`.
    pub shared: bool,
}

/// Life of a storage instance, as `juju storage` shows its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Made, not yet in its unit's machine.
    Pending,
    /// In its unit's machine.
    Attached,
    /// Its unit is dying and runs (or ran) `-storage-detaching`.
    Detaching,
    /// Kept with its data, attached to no unit.
    Detached,
}

impl Status {
    /// The word `juju storage` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Attached => "attached",
            Status::Detaching => "detaching",
            Status::Detached => "detached",
        }
    }
}

/// One storage instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// `<store>/<n>`.
    pub id: String,
    /// The store name.
    pub store: String,
    /// `filesystem`.
    pub kind: String,
    /// Pool name.
    pub pool: String,
    /// Size in MiB.
    pub size: u64,
    /// The unit it is attached to.
    pub unit: Option<String>,
    /// The unit it was last attached to (kept when detached).
    pub owner: String,
    /// Mount point in the unit's machine.
    pub location: String,
    /// Whether it is mounted read-only.
    pub read_only: bool,
    /// Status.
    pub status: Status,
    /// When the status last changed.
    pub since: f64,
    /// Whether its `-storage-attached` hook committed for the current unit.
    pub hooked: bool,
    /// Whether it is bound into the current unit's machine.
    pub mounted: bool,
    /// Remove it (and its data) when its unit goes (`remove-unit --destroy-storage`).
    pub destroy: bool,
    /// Its filesystem number (`juju storage --format yaml`'s `filesystems:` key).
    pub filesystem: u64,
}

/// The model's storage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Storage {
    /// Instances by id.
    pub instances: BTreeMap<String, Instance>,
    /// The model-wide `stores` sequence: the next instance number, over every store and app.
    pub next: u64,
    /// The next filesystem number.
    pub next_filesystem: u64,
}

/// A `--storage` directive: pool, count and size, each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directive {
    /// Pool.
    pub pool: Option<String>,
    /// Count.
    pub count: Option<u32>,
    /// Size in MiB.
    pub size: Option<u64>,
}

/// Parses `storage:` of metadata.yaml (juju/charm `meta.go` `parseStorage`).
pub fn parse_meta(v: &Value) -> anyhow::Result<BTreeMap<String, StoreMeta>> {
    let mut out = BTreeMap::new();
    let Some(map) = v.as_object() else {
        anyhow::ensure!(
            v.is_null(),
            "metadata.yaml: storage must be a map of stores"
        );
        return Ok(out);
    };
    for (name, spec) in map {
        let bad = |what: String| anyhow::anyhow!("metadata.yaml: storage {name:?}: {what}");
        let kind = match spec["type"].as_str() {
            Some(k @ ("filesystem" | "block")) => k.to_string(),
            Some(k) => return Err(bad(format!("unknown type {k:?}: use filesystem or block"))),
            None => return Err(bad("type must be specified".into())),
        };
        let location = spec["location"].as_str().map(str::to_string);
        if kind == "block" && location.is_some() {
            return Err(bad("location may not be specified for type: block".into()));
        }
        if let Some(l) = &location {
            let plain = l
                .split('/')
                .skip(1)
                .all(|c| !c.is_empty() && c != "." && c != "..");
            if !l.starts_with('/') || !plain || l.contains(':') {
                return Err(bad(format!(
                    "location {l:?} must be an absolute path without '.', '..', '//' or ':'"
                )));
            }
            if l == DEFAULT_ROOT || l.starts_with(&format!("{DEFAULT_ROOT}/")) {
                return Err(bad(format!(
                    "location {l:?} may not be inside {DEFAULT_ROOT}, Juju's own storage directory"
                )));
            }
        }
        let multiple = !spec["multiple"].is_null();
        let (count_min, count_max) = if multiple {
            let range = match &spec["multiple"]["range"] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(bad("multiple needs a range, e.g. 1-3".into())),
            };
            parse_range(&range).map_err(bad)?
        } else {
            (1, Some(1))
        };
        let minimum_size = match &spec["minimum-size"] {
            Value::Null => 0,
            Value::String(s) => parse_size(s).map_err(bad)?,
            Value::Number(n) => parse_size(&n.to_string()).map_err(bad)?,
            _ => return Err(bad("minimum-size must be a size, e.g. 1G".into())),
        };
        out.insert(
            name.clone(),
            StoreMeta {
                kind,
                location,
                multiple,
                count_min,
                count_max,
                minimum_size,
                read_only: spec["read-only"].as_bool().unwrap_or(false),
                shared: spec["shared"].as_bool().unwrap_or(false),
            },
        );
    }
    Ok(out)
}

/// `m`, `m-n`, `m+` or `m-` (the last two: no upper bound).
fn parse_range(s: &str) -> Result<(u32, Option<u32>), String> {
    let bad = || format!("invalid range {s:?}: use m, m-n, m+ or m-");
    let num = |t: &str| t.parse::<u32>().map_err(|_| bad());
    let (min, max) = if let Some(m) = s.strip_suffix(['+', '-']) {
        (num(m)?, None)
    } else if let Some((a, b)) = s.split_once('-') {
        (num(a)?, Some(num(b)?))
    } else {
        let n = num(s)?;
        (n, Some(n))
    };
    if max.is_some_and(|m| m < min) {
        return Err(bad());
    }
    Ok((min, max))
}

/// A size as Juju takes it: a number with an optional multiplier M, G, T, P, E, Z or Y (powers
/// of 1024, optionally followed by `iB` or `B`), in MiB; no multiplier means MiB.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || format!("invalid size {s:?}: use a number and M, G, T or P, e.g. 2G");
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let pow = "MGTPEZY".find(c.to_ascii_uppercase()).ok_or_else(bad)?;
            (&t[..i], 1024f64.powi(pow as i32))
        }
        _ => (t, 1.0),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    if !n.is_finite() || n < 0.0 {
        return Err(bad());
    }
    Ok((n * mult).ceil() as u64)
}

/// Parses a directive: a comma list of POOL, COUNT and SIZE in any order (storage/constraints.go
/// `ParseConstraints`).
pub fn parse_directive(s: &str) -> Result<Directive, String> {
    let mut d = Directive::default();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        if part.bytes().all(|b| b.is_ascii_digit()) {
            let n: u32 = part
                .parse()
                .map_err(|_| format!("count {part:?} is too large"))?;
            if n == 0 {
                return Err(format!(
                    "storage directive {s:?}: count must be greater than zero"
                ));
            }
            d.count = Some(n);
        } else if part.starts_with(|c: char| c.is_ascii_digit()) {
            d.size = Some(parse_size(part)?);
        } else if part.starts_with(|c: char| c.is_ascii_alphabetic()) {
            d.pool = Some(part.to_string());
        } else {
            return Err(format!(
                "storage directive {s:?}: {part:?} is not a pool, a count or a size"
            ));
        }
    }
    Ok(d)
}

/// Parses the `--storage <store>=<directive>` of `deploy` and `add-unit` (a later one for the
/// same store wins).
pub fn parse_storage_flags(flags: &[String]) -> Result<BTreeMap<String, Directive>, String> {
    flags
        .iter()
        .map(|s| {
            let (name, directive) = s.split_once('=').ok_or_else(|| {
                format!("--storage {s:?}: expected <store>=<directive>, e.g. data=rootfs,2G")
            })?;
            Ok((name.to_string(), parse_directive(directive)?))
        })
        .collect()
}

/// Parses `storage-add` arguments: `<store>[=<count>]` (jujuc/storage-add.go).
pub fn parse_storage_add(args: &[String]) -> Result<Vec<(String, u32)>, String> {
    if args.is_empty() {
        return Err("storage add requires a storage directive".into());
    }
    args.iter()
        .map(|a| match a.split_once('=') {
            None => Ok((a.clone(), 1)),
            Some((name, count)) => match count.parse::<u32>() {
                Ok(n) if n > 0 => Ok((name.to_string(), n)),
                _ => Err(format!("only count can be specified for {name:?}")),
            },
        })
        .collect()
}

/// Whether `s` is a storage id: `<store>/<n>` (names.IsValidStorage).
pub fn valid_id(s: &str) -> bool {
    let Some((name, n)) = s.split_once('/') else {
        return false;
    };
    let name_ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    name_ok && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
}

/// The store name of a storage id.
pub fn store_of(id: &str) -> &str {
    id.split('/').next().unwrap_or(id)
}

/// The mount point of instance `id` of a store (state/filesystem.go `FilesystemMountPoint`).
pub fn mount_point(meta: &StoreMeta, id: &str) -> String {
    match (&meta.location, meta.multiple) {
        (Some(l), false) => l.clone(),
        (Some(l), true) => format!("{}/{id}", l.trim_end_matches('/')),
        (None, _) => format!("{DEFAULT_ROOT}/{id}"),
    }
}

/// Orders ids as Juju's listings do: by store, then by number.
pub fn sort_ids(ids: &mut [String]) {
    ids.sort_by_key(|id| {
        let (s, n) = id.split_once('/').unwrap_or((id, ""));
        (s.to_string(), n.parse::<u64>().unwrap_or(u64::MAX))
    });
}

/// The storage a `deploy` or `add-unit` asks for: `--storage` directives by store and
/// `--attach-storage` ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Directives by store.
    pub directives: BTreeMap<String, Directive>,
    /// Detached instances to attach.
    pub attach: Vec<String>,
}

impl Wanted {
    /// Parses the flags for `num_units` new units; `--attach-storage` only goes with one
    /// (cmd/juju/application/addunit.go).
    pub fn parse(
        storage: &[String],
        attach: Vec<String>,
        num_units: u32,
    ) -> Result<Wanted, String> {
        if !attach.is_empty() && num_units != 1 {
            return Err("--attach-storage cannot be used with -n".into());
        }
        Ok(Wanted {
            directives: parse_storage_flags(storage)?,
            attach,
        })
    }
}

/// What a new unit of `app` gets: new instances (store, directive) and detached ones to attach,
/// checked against the charm before anything changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Stores and how many new instances of each, with pool and size.
    pub new: Vec<(String, u32, String, u64)>,
    /// Detached instances to attach.
    pub attach: Vec<String>,
}

/// Refuses what the sandbox cannot back: block storage and shared storage.
pub fn check_supported(name: &str, meta: &StoreMeta) -> Result<(), String> {
    if meta.kind == "block" {
        return Err(format!(
            "charm storage {name:?} is of type block: the sandbox backs only filesystem storage; declare it as type: filesystem"
        ));
    }
    if meta.shared {
        return Err(format!(
            "charm storage {name:?} is shared: shared storage is not supported for machine charms"
        ));
    }
    Ok(())
}

/// Plans the storage of a new unit of `app` from `--storage` directives and `--attach-storage`
/// ids; every store gets its count (the directive's, else the range minimum), less the
/// instances attached to it.
pub fn plan(
    model: &Model,
    app: &str,
    stores: &BTreeMap<String, StoreMeta>,
    wanted: &Wanted,
) -> Result<Plan, String> {
    let (directives, attach) = (&wanted.directives, &wanted.attach);
    for name in directives.keys() {
        if !stores.contains_key(name) {
            let known: Vec<&String> = stores.keys().collect();
            return Err(format!(
                "charm storage {name:?} not found: the charm's stores are {known:?}"
            ));
        }
    }
    let mut attached: BTreeMap<&str, u32> = BTreeMap::new();
    for id in attach {
        let inst = model.storage.instances.get(id).ok_or_else(|| {
            format!("storage {id} not found: see `sandbox storage` for the model's storage")
        })?;
        if inst.status != Status::Detached {
            return Err(format!(
                "storage {id} is attached to {}: only detached storage can be attached to a new unit",
                inst.unit.as_deref().unwrap_or(&inst.owner)
            ));
        }
        let Some(meta) = stores.get(&inst.store) else {
            return Err(format!(
                "storage {id} cannot be attached: the charm of {app:?} has no store {:?}",
                inst.store
            ));
        };
        if meta.kind != inst.kind {
            return Err(format!(
                "storage {id} is a {}, store {:?} wants a {}",
                inst.kind, inst.store, meta.kind
            ));
        }
        *attached.entry(store_of(id)).or_default() += 1;
    }
    let mut plan = Plan {
        new: vec![],
        attach: attach.to_vec(),
    };
    for (name, meta) in stores {
        check_supported(name, meta)?;
        let d = directives.get(name).cloned().unwrap_or_default();
        let pool = d.pool.clone().unwrap_or_else(|| POOL.into());
        if pool != POOL {
            return Err(format!(
                "storage pool {pool:?} not found: the sandbox has one pool, {POOL:?}"
            ));
        }
        let count = d.count.unwrap_or(meta.count_min);
        let have = attached.get(name.as_str()).copied().unwrap_or(0);
        let total = count.max(have);
        if total < meta.count_min || meta.count_max.is_some_and(|m| total > m) {
            return Err(format!(
                "charm storage {name:?}: {total} instances is not in its range {}",
                range_text(meta)
            ));
        }
        let size = d.size.unwrap_or(meta.minimum_size.max(DEFAULT_SIZE_MIB));
        if size < meta.minimum_size {
            return Err(format!(
                "charm storage {name:?}: size {size}M is less than its minimum-size {}M",
                meta.minimum_size
            ));
        }
        if total > have {
            plan.new.push((name.clone(), total - have, pool, size));
        }
    }
    Ok(plan)
}

fn range_text(meta: &StoreMeta) -> String {
    match meta.count_max {
        Some(m) if m == meta.count_min => m.to_string(),
        Some(m) => format!("{}-{m}", meta.count_min),
        None => format!("{}+", meta.count_min),
    }
}

/// Makes one instance of `store` for `unit`, from the model-wide sequence.
fn create(model: &mut Model, unit: &str, store: &str, pool: &str, size: u64) -> String {
    let meta = model.apps[super::model::app_of(unit)].meta.storage[store].clone();
    let id = format!("{store}/{}", model.storage.next);
    model.storage.next += 1;
    let filesystem = model.storage.next_filesystem;
    model.storage.next_filesystem += 1;
    model.storage.instances.insert(
        id.clone(),
        Instance {
            id: id.clone(),
            store: store.into(),
            kind: meta.kind.clone(),
            pool: pool.into(),
            size,
            unit: Some(unit.into()),
            owner: unit.into(),
            location: mount_point(&meta, &id),
            read_only: meta.read_only,
            status: Status::Pending,
            since: now(),
            hooked: false,
            mounted: false,
            destroy: false,
            filesystem,
        },
    );
    id
}

/// Gives a new (not yet installed) unit its planned storage: `-storage-attached` for each
/// instance is queued before `install`, as on a Juju machine.
pub fn give_new_unit(model: &mut Model, unit: &str, plan: &Plan) -> Vec<String> {
    let mut ids = vec![];
    for id in &plan.attach {
        let meta = model.apps[super::model::app_of(unit)].meta.storage[store_of(id)].clone();
        if let Some(inst) = model.storage.instances.get_mut(id) {
            inst.unit = Some(unit.into());
            inst.owner = unit.into();
            inst.location = mount_point(&meta, id);
            inst.read_only = meta.read_only;
            inst.status = Status::Pending;
            inst.since = now();
            inst.hooked = false;
            inst.mounted = false;
            inst.destroy = false;
            ids.push(id.clone());
        }
    }
    for (store, count, pool, size) in &plan.new {
        for _ in 0..*count {
            ids.push(create(model, unit, store, pool, *size));
        }
    }
    if let Some(u) = model.units.get_mut(unit) {
        let at = u
            .queue
            .iter()
            .position(|e| *e == Event::Install)
            .unwrap_or(0);
        for (i, id) in ids.iter().enumerate() {
            u.queue
                .insert(at + i, Event::StorageAttached { id: id.clone() });
        }
    }
    ids
}

/// Checks a hook's `storage-add` (with what it already added) against the charm's ranges.
pub fn check_add(
    model: &Model,
    unit: &str,
    pending: &[(String, u32)],
    adds: &[(String, u32)],
) -> Result<(), String> {
    let stores = &model.apps[super::model::app_of(unit)].meta.storage;
    for (name, _) in adds {
        let meta = stores
            .get(name)
            .ok_or_else(|| format!("charm storage {name:?} not found"))?;
        check_supported(name, meta)?;
        let have = attached_to(model, unit, Some(name)).len() as u32;
        let more: u32 = pending
            .iter()
            .chain(adds)
            .filter(|(n, _)| n == name)
            .map(|(_, c)| c)
            .sum();
        if meta.count_max.is_some_and(|m| have + more > m) {
            return Err(format!(
                "adding storage {name:?} to {unit}: {} instances is more than its range {} allows",
                have + more,
                range_text(meta)
            ));
        }
    }
    Ok(())
}

/// Commits a hook's `storage-add`: new pending instances, to be bound into the running machine
/// (`storage-attached` follows once they are).
pub fn commit_adds(model: &mut Model, unit: &str, adds: &[(String, u32)]) {
    for (store, count) in adds {
        let Some(meta) = model.apps[super::model::app_of(unit)]
            .meta
            .storage
            .get(store)
        else {
            continue;
        };
        let size = meta.minimum_size.max(DEFAULT_SIZE_MIB);
        for _ in 0..*count {
            create(model, unit, store, POOL, size);
        }
    }
}

/// After a refresh: each unit gets the instances its charm's stores now require and it lacks
/// (a store new in this revision), as Juju adds them when the charm changes (state
/// `addUnitStorageOps` for the new charm's directives, juju/juju PR 6313); like a hook's
/// `storage-add`, they are bound into the running machine and `storage-attached` follows.
pub fn refreshed(model: &mut Model, app: &str) {
    let stores = model.apps[app].meta.storage.clone();
    for unit in model.units_of(app) {
        let adds: Vec<(String, u32)> = stores
            .iter()
            .filter(|(name, meta)| check_supported(name, meta).is_ok())
            .filter_map(|(name, meta)| {
                let have = attached_to(model, &unit, Some(name)).len() as u32;
                (meta.count_min > have).then(|| (name.clone(), meta.count_min - have))
            })
            .collect();
        commit_adds(model, &unit, &adds);
    }
}

/// Ids attached (or attaching) to `unit`, optionally of one store, in the controller's order.
pub fn attached_to(model: &Model, unit: &str, store: Option<&str>) -> Vec<String> {
    let mut ids: Vec<String> = model
        .storage
        .instances
        .values()
        .filter(|i| i.unit.as_deref() == Some(unit))
        .filter(|i| store.is_none_or(|s| i.store == s))
        .map(|i| i.id.clone())
        .collect();
    sort_ids(&mut ids);
    ids
}

/// What the hook tools see of the unit's storage: the instances in its machine, of store
/// `name` unless empty.
pub fn visible(model: &Model, unit: &str, name: &str) -> Vec<String> {
    let store = (!name.is_empty()).then_some(name);
    attached_to(model, unit, store)
        .into_iter()
        .filter(|id| model.storage.instances[id].mounted)
        .collect()
}

/// `storage-get`'s view of instance `id` of `unit`.
pub fn info(model: &Model, unit: &str, id: &str) -> Result<crate::tools::env::StorageInfo, String> {
    let inst = model
        .storage
        .instances
        .get(id)
        .filter(|i| i.unit.as_deref() == Some(unit) && i.mounted)
        .ok_or_else(|| format!("storage {id:?} not found"))?;
    Ok(crate::tools::env::StorageInfo {
        kind: inst.kind.clone(),
        location: inst.location.clone(),
    })
}

/// A newly bound instance is attached; its `-storage-attached` runs (after install when the
/// unit is installed already; before it otherwise, where [`give_new_unit`] queued it).
pub fn mounted(model: &mut Model, id: &str, queue_hook: bool) {
    let Some(inst) = model.storage.instances.get_mut(id) else {
        return;
    };
    inst.mounted = true;
    if inst.status == Status::Pending {
        inst.status = Status::Attached;
        inst.since = now();
    }
    let unit = inst.unit.clone();
    let alive = |u: &&mut super::model::Unit| u.life == super::model::Life::Alive;
    let unit = unit.and_then(|u| model.units.get_mut(&u)).filter(alive);
    if let (true, Some(u)) = (queue_hook, unit) {
        let running = super::lifecycle::is_running(u);
        super::lifecycle::push(u, Event::StorageAttached { id: id.into() }, running);
    }
}

/// `unit` starts dying: each instance whose `-storage-attached` committed runs
/// `-storage-detaching`, first, before the relation teardown and `stop`, as Juju's storage
/// resolver runs before the teardown branch (`[internal/]worker/uniter/resolver.go` `nextOp`).
pub fn unit_dying(model: &mut Model, unit: &str) {
    let ids = attached_to(model, unit, None);
    let mut hooks = vec![];
    for id in ids {
        let inst = model.storage.instances.get_mut(&id).expect("instance");
        if inst.hooked {
            inst.status = Status::Detaching;
            inst.since = now();
            hooks.push(Event::StorageDetaching { id });
        }
    }
    if let Some(u) = model.units.get_mut(unit) {
        let at = usize::from(super::lifecycle::is_running(u));
        for (i, ev) in hooks.into_iter().enumerate() {
            u.queue.insert((at + i).min(u.queue.len()), ev);
        }
    }
}

/// `remove-unit --destroy-storage`: `unit`'s instances go with it, data and all.
pub fn destroy_with(model: &mut Model, unit: &str) {
    for inst in model.storage.instances.values_mut() {
        if inst.unit.as_deref() == Some(unit) {
            inst.destroy = true;
        }
    }
}

/// Bookkeeping after a storage hook committed on `unit`.
pub fn hook_done(model: &mut Model, unit: &str, ev: &Event) {
    match ev {
        Event::StorageAttached { id } => {
            if let Some(i) = model.storage.instances.get_mut(id) {
                if i.unit.as_deref() == Some(unit) {
                    i.hooked = true;
                }
            }
        }
        Event::StorageDetaching { id } => {
            if let Some(i) = model.storage.instances.get_mut(id) {
                i.hooked = false;
            }
        }
        _ => {}
    }
}

/// `unit` is gone (after `remove`, or by force): its instances are detached and kept, or, marked
/// `destroy`, removed; answers the ids whose backing directories are to be deleted.
pub fn unit_gone(model: &mut Model, unit: &str) -> Vec<String> {
    let ids: Vec<String> = model
        .storage
        .instances
        .values()
        .filter(|i| i.unit.as_deref() == Some(unit))
        .map(|i| i.id.clone())
        .collect();
    let mut destroyed = vec![];
    for id in ids {
        let inst = model.storage.instances.get_mut(&id).expect("instance");
        if inst.destroy {
            model.storage.instances.remove(&id);
            destroyed.push(id);
        } else {
            inst.unit = None;
            inst.status = Status::Detached;
            inst.since = now();
            inst.hooked = false;
            inst.mounted = false;
        }
    }
    destroyed
}

/// `JUJU_STORAGE_*` of a storage hook (runner/context `HookVars`).
pub fn hook_env(model: &Model, ev: &Event) -> Vec<(String, String)> {
    let (Event::StorageAttached { id } | Event::StorageDetaching { id }) = ev else {
        return vec![];
    };
    let Some(inst) = model.storage.instances.get(id) else {
        return vec![];
    };
    vec![
        ("JUJU_STORAGE_ID".into(), id.clone()),
        ("JUJU_STORAGE_LOCATION".into(), inst.location.clone()),
        ("JUJU_STORAGE_KIND".into(), inst.kind.clone()),
    ]
}

/// Juju's hook name of a storage event.
pub fn hook_name(ev: &Event) -> Option<String> {
    match ev {
        Event::StorageAttached { id } => Some(format!("{}-storage-attached", store_of(id))),
        Event::StorageDetaching { id } => Some(format!("{}-storage-detaching", store_of(id))),
        _ => None,
    }
}

/// The storage id of a storage event.
pub fn event_storage(ev: &Event) -> Option<&str> {
    match ev {
        Event::StorageAttached { id } | Event::StorageDetaching { id } => Some(id),
        _ => None,
    }
}

pub mod listing;
pub mod volumes;

#[cfg(test)]
mod tests;

/// After `unit`'s machine booted with its instances bound ([`volumes::boot_binds`]): they are
/// in place.
pub fn machine_started(model: &mut Model, unit: &str) {
    for id in attached_to(model, unit, None) {
        mounted(model, &id, false);
    }
}

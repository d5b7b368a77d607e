//! Juju 3.x charm secrets as pure changes to a [`Store`]: what the `secret-*` hook tools may see
//! and do ([`handle`]), what a hook's buffered changes do when it exits 0 ([`commit`]), and which
//! secret hooks are due ([`due`]). No IO: the controller passes in who calls and the time.
//!
//! Followed: juju/juju `worker/uniter/runner/context/secrets.go` (changes buffered in the hook
//! context, a same-hook duplicate label refused at once), `apiserver/common/secrets/access.go`
//! (`CanRead`: every unit of the owning application and the grantees; `CanManage`: the owner
//! unit, or the leader for an application-owned secret), `apiserver/facades/agent/secretsmanager`
//! (`getConsumedRevision`: the first read tracks the latest revision, `--peek` reads it once,
//! `--refresh` moves the tracking; owners are consumers too, as from 3.1.7), the uniter's secrets
//! resolver (`secret-changed` once per new revision to each reader; `secret-remove` to the owner
//! for each revision no reader tracks any more; rotation and expiry retried after 5 minutes).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Key → base64-encoded value, as Juju stores a revision's content.
pub type Content = BTreeMap<String, String>;

/// Juju's `RotateRetryDelay` and `ExpireRetryDelay`: a rotation or expiry the owner did not act
/// on is told again after this many seconds.
pub const RETRY_SECONDS: f64 = 300.0;

/// The rotate policies of core/secrets/rotate.go with their interval in seconds.
pub const ROTATE_POLICIES: &[(&str, f64)] = &[
    ("never", 0.0),
    ("hourly", 3600.0),
    ("daily", 86400.0),
    ("weekly", 7.0 * 86400.0),
    ("monthly", 30.0 * 86400.0),
    ("quarterly", 90.0 * 86400.0),
    ("yearly", 365.0 * 86400.0),
];

/// Every secret of the model, by bare 20-character id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Store {
    /// The secrets.
    pub secrets: BTreeMap<String, Secret>,
}

/// One secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    /// The owner: an application name (`etcd`) or a unit name (`etcd/0`).
    pub owner: String,
    /// The owner's label ("" when none).
    pub label: String,
    /// Free text.
    pub description: String,
    /// Rotate policy ("" is never).
    pub rotate: String,
    /// When `secret-rotate` is due next.
    pub next_rotate: Option<f64>,
    /// The latest revision.
    pub latest: u32,
    /// Revisions still kept.
    pub revisions: BTreeMap<u32, Revision>,
    /// Grantee (an application or a unit name) → the relation the grant is scoped to.
    pub grants: BTreeMap<String, i64>,
    /// Units that have read the secret, by unit name.
    pub consumers: BTreeMap<String, Consumer>,
    /// Revisions the owner has been told it may remove.
    pub obsolete_told: BTreeSet<u32>,
}

/// One revision of a secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    /// The content.
    pub content: Content,
    /// When it expires.
    pub expire: Option<f64>,
    /// When `secret-expired` is due (again) for it.
    pub expire_due: Option<f64>,
}

/// A unit that read a secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Consumer {
    /// Its own label for the secret ("" when none).
    pub label: String,
    /// The revision it reads.
    pub tracked: u32,
    /// The last revision it was sent `secret-changed` for.
    pub changed_told: u32,
}

/// Metadata given to `secret-add` and `secret-set`; `None` leaves it as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meta {
    /// `--label`.
    pub label: Option<String>,
    /// `--description`.
    pub description: Option<String>,
    /// `--expire`, as seconds since the epoch.
    pub expire: Option<f64>,
    /// `--rotate`.
    pub rotate: Option<String>,
}

impl Meta {
    fn is_empty(&self) -> bool {
        *self == Meta::default()
    }
}

/// Which secret a tool names: an id (any form `ParseURI` takes), a label, or both.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Target {
    /// The id as given.
    pub id: Option<String>,
    /// `--label`.
    pub label: Option<String>,
}

/// A `secret-*` tool's request, its arguments already checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `secret-add`.
    Add {
        /// The content.
        content: Content,
        /// Its metadata.
        meta: Meta,
        /// `--owner unit`.
        unit_owned: bool,
    },
    /// `secret-set`.
    Set {
        /// The secret's id.
        id: String,
        /// New content, if any.
        content: Option<Content>,
        /// New metadata.
        meta: Meta,
    },
    /// `secret-get`.
    Get {
        /// Which secret.
        target: Target,
        /// `--peek`.
        peek: bool,
        /// `--refresh`.
        refresh: bool,
    },
    /// `secret-info-get`.
    Info(Target),
    /// `secret-ids`.
    Ids,
    /// `secret-grant`.
    Grant {
        /// The secret's id.
        id: String,
        /// The relation.
        relation: i64,
        /// `--unit`.
        unit: Option<String>,
    },
    /// `secret-revoke`.
    Revoke {
        /// The secret's id.
        id: String,
        /// The grantee: an application or a unit.
        grantee: String,
    },
    /// `secret-remove`.
    Remove {
        /// The secret's id.
        id: String,
        /// `--revision` (all when `None`).
        revision: Option<u32>,
    },
}

/// What a [`Call`] answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Nothing to print.
    Done,
    /// `secret-add`'s URI.
    Uri(String),
    /// Content (values still base64-encoded).
    Content(Content),
    /// Bare ids.
    Ids(Vec<String>),
    /// `secret-info-get`: (bare id, what is shown).
    Info(String, Info),
}

/// `secret-info-get`'s view of a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    /// The latest revision.
    pub revision: u32,
    /// The owner label.
    pub label: String,
    /// `application` or `unit`.
    pub owner: String,
    /// The description.
    pub description: String,
    /// The rotate policy (`never` when unset).
    pub rotation: String,
    /// The latest revision's expiry.
    pub expiry: Option<f64>,
    /// The next rotation.
    pub rotates: Option<f64>,
    /// The grants in force (3.3+ `access`): (target tag, scope tag), each with role `view`.
    pub access: Vec<(String, String)>,
}

/// Who calls, as the controller knows it at the time of the call.
#[derive(Debug, Clone, Default)]
pub struct Who {
    /// The calling unit.
    pub unit: String,
    /// Whether it leads its application.
    pub leader: bool,
    /// The model's uuid (`secret-add` prints `secret://<uuid>/<id>`, as Juju ≥ 3.1.3).
    pub model_uuid: String,
    /// Seconds since the epoch.
    pub now: f64,
    /// The relations the unit is in → the remote application of each.
    pub remote_apps: BTreeMap<i64, String>,
    /// Every relation of the model that is alive (a grant lasts as long as its relation), with
    /// its tag as Juju prints it (`relation-wordpress.db#mysql.server`).
    pub live_relations: BTreeMap<i64, String>,
}

impl Who {
    fn app(&self) -> &str {
        app_of(&self.unit)
    }
    /// Whether the unit sees the secret as its owner (leaders: the application's secrets too).
    fn owns(&self, s: &Secret) -> bool {
        s.owner == self.unit || (s.owner == self.app() && self.leader)
    }
    /// `CanRead`: the owner unit, every unit of the owning application, and the grantees.
    fn can_read(&self, s: &Secret) -> bool {
        s.owner == self.unit
            || s.owner == self.app()
            || [self.unit.as_str(), self.app()].iter().any(|g| {
                s.grants
                    .get(*g)
                    .is_some_and(|r| self.live_relations.contains_key(r))
            })
    }
}

fn app_of(unit: &str) -> &str {
    unit.split('/').next().unwrap_or(unit)
}

/// The changes a hook made, committed when it exits 0.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pending {
    ops: Vec<Op>,
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Create {
        id: String,
        owner: String,
        content: Content,
        meta: Meta,
    },
    Update {
        id: String,
        content: Option<Content>,
        meta: Meta,
    },
    Grant {
        id: String,
        grantee: String,
        relation: i64,
    },
    Revoke {
        id: String,
        grantee: String,
    },
    Remove {
        id: String,
        revision: Option<u32>,
    },
}

impl Pending {
    fn created(&self, id: &str) -> Option<(&String, &Content, &Meta)> {
        self.ops.iter().find_map(|op| match op {
            Op::Create {
                id: i,
                owner,
                content,
                meta,
            } if i == id => Some((owner, content, meta)),
            _ => None,
        })
    }
    /// The content the hook last set for a secret, if it set any.
    fn new_content(&self, id: &str) -> Option<&Content> {
        self.ops.iter().rev().find_map(|op| match op {
            Op::Update {
                id: i,
                content: Some(c),
                ..
            } if i == id => Some(c),
            Op::Create { id: i, content, .. } if i == id => Some(content),
            _ => None,
        })
    }
}

/// A secret hook to queue on a unit (an application owner means its leader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// A unit name, or an application name for its leader.
    pub to: String,
    /// Which hook.
    pub hook: Hook,
    /// The secret's bare id.
    pub id: String,
}

/// The secret hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `secret-changed`.
    Changed,
    /// `secret-rotate`.
    Rotate,
    /// `secret-expired` for a revision.
    Expired(u32),
    /// `secret-remove` for a revision.
    Remove(u32),
}

/// The bare id of any form Juju's `ParseURI` takes: `secret:<id>`, `secret://<uuid>/<id>`,
/// `<uuid>/<id>` or `<id>`.
pub fn parse_id(text: &str) -> Result<String, String> {
    let invalid = || format!("secret URI {} not valid", go_quote(text));
    let rest = match text.split_once(':') {
        Some(("secret", rest)) => rest.trim_start_matches("//"),
        Some((scheme, _)) => {
            return Err(format!("secret URI scheme {} not valid", go_quote(scheme)))
        }
        None => text,
    };
    let id = rest.rsplit('/').next().unwrap_or(rest);
    let ok = id.len() == 20
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b));
    if ok {
        Ok(id.to_string())
    } else {
        Err(invalid())
    }
}

/// Go's `%q` of a string (enough for ids, labels and keys).
fn go_quote(s: &str) -> String {
    format!("{s:?}")
}

/// A new id: 12 random bytes in the xid alphabet (`0-9a-v`), 20 characters.
pub fn new_id() -> String {
    let mut bytes = [0u8; 12];
    let mut f = std::fs::File::open("/dev/urandom").expect("/dev/urandom");
    std::io::Read::read_exact(&mut f, &mut bytes).expect("random bytes from /dev/urandom");
    encode_id(&bytes)
}

fn encode_id(bytes: &[u8; 12]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut acc: u128 = 0;
    for b in bytes {
        acc = (acc << 8) | u128::from(*b);
    }
    // 96 bits → 20 five-bit digits (the last one padded with zeros), as base32hex does.
    acc <<= 4;
    (0..20)
        .rev()
        .map(|i| ALPHABET[((acc >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// The form `JUJU_SECRET_ID` takes for a secret of this model.
pub fn local_uri(id: &str) -> String {
    format!("secret:{id}")
}

fn not_found(id: &str) -> String {
    format!("secret {} not found", go_quote(&local_uri(id)))
}

/// Answers one tool call. Reads act at once (Juju's controller records a reader when it reads);
/// changes are buffered in `pending` until [`commit`].
pub fn handle(
    store: &mut Store,
    pending: &mut Pending,
    who: &Who,
    call: Call,
) -> Result<Answer, String> {
    match call {
        Call::Add {
            content,
            meta,
            unit_owned,
        } => {
            if !unit_owned && !who.leader {
                return Err("this unit is not the leader".into());
            }
            if let Some(label) = meta.label.as_deref() {
                let clash = pending
                    .ops
                    .iter()
                    .any(|op| matches!(op, Op::Create { meta, .. } if meta.label.as_deref() == Some(label)));
                if clash {
                    return Err(format!(
                        "secret with label {} already exists",
                        go_quote(label)
                    ));
                }
            }
            let owner = if unit_owned {
                who.unit.clone()
            } else {
                who.app().to_string()
            };
            let id = new_id();
            pending.ops.push(Op::Create {
                id: id.clone(),
                owner,
                content,
                meta,
            });
            Ok(Answer::Uri(format!("secret://{}/{id}", who.model_uuid)))
        }
        Call::Set { id, content, meta } => {
            let id = parse_id(&id)?;
            if content.is_some() || !meta.is_empty() {
                pending.ops.push(Op::Update { id, content, meta });
            }
            Ok(Answer::Done)
        }
        Call::Get {
            target,
            peek,
            refresh,
        } => get(store, pending, who, &target, peek, refresh).map(Answer::Content),
        Call::Info(target) => {
            let id = owned_target(store, pending, who, &target)?;
            Ok(Answer::Info(id.clone(), info(store, pending, who, &id)))
        }
        Call::Ids => {
            let mut ids: Vec<String> = store
                .secrets
                .iter()
                .filter(|(_, s)| who.owns(s))
                .map(|(id, _)| id.clone())
                .collect();
            ids.extend(pending.ops.iter().filter_map(|op| match op {
                Op::Create { id, .. } => Some(id.clone()),
                _ => None,
            }));
            Ok(Answer::Ids(ids))
        }
        Call::Grant { id, relation, unit } => {
            let id = owned(store, pending, who, &id)?;
            let app = who
                .remote_apps
                .get(&relation)
                .cloned()
                .ok_or_else(|| format!("relation {relation} not found"))?;
            let grantee = unit.unwrap_or(app);
            pending.ops.push(Op::Grant {
                id,
                grantee,
                relation,
            });
            Ok(Answer::Done)
        }
        Call::Revoke { id, grantee } => {
            let id = owned(store, pending, who, &id)?;
            pending.ops.push(Op::Revoke { id, grantee });
            Ok(Answer::Done)
        }
        Call::Remove { id, revision } => {
            let id = parse_id(&id)?;
            pending.ops.push(Op::Remove { id, revision });
            Ok(Answer::Done)
        }
    }
}

/// The bare id of a secret this unit sees as its owner (this hook's new ones too).
fn owned(store: &Store, pending: &Pending, who: &Who, id: &str) -> Result<String, String> {
    let id = parse_id(id)?;
    let seen =
        pending.created(&id).is_some() || store.secrets.get(&id).is_some_and(|s| who.owns(s));
    if seen {
        Ok(id)
    } else {
        Err(format!("secret {} not found", go_quote(&id)))
    }
}

/// [`owned`] by id or by owner label.
fn owned_target(
    store: &Store,
    pending: &Pending,
    who: &Who,
    target: &Target,
) -> Result<String, String> {
    if let Some(id) = &target.id {
        return owned(store, pending, who, id);
    }
    let label = target.label.as_deref().unwrap_or_default();
    let created = pending.ops.iter().find_map(|op| match op {
        Op::Create { id, meta, .. } if meta.label.as_deref() == Some(label) => Some(id.clone()),
        _ => None,
    });
    created
        .or_else(|| {
            store
                .secrets
                .iter()
                .find(|(_, s)| who.owns(s) && s.label == label)
                .map(|(id, _)| id.clone())
        })
        .ok_or_else(|| format!("secret {} not found", go_quote(label)))
}

fn info(store: &Store, pending: &Pending, who: &Who, id: &str) -> Info {
    if let Some((owner, _, meta)) = pending.created(id) {
        return Info {
            revision: 1,
            label: meta.label.clone().unwrap_or_default(),
            owner: owner_kind(owner).into(),
            description: meta.description.clone().unwrap_or_default(),
            rotation: meta.rotate.clone().unwrap_or_else(|| "never".into()),
            expiry: meta.expire,
            rotates: None,
            access: Vec::new(),
        };
    }
    let s = &store.secrets[id];
    Info {
        revision: s.latest,
        label: s.label.clone(),
        owner: owner_kind(&s.owner).into(),
        description: s.description.clone(),
        rotation: if s.rotate.is_empty() {
            "never".into()
        } else {
            s.rotate.clone()
        },
        expiry: s.revisions.get(&s.latest).and_then(|r| r.expire),
        rotates: s.next_rotate,
        access: access(s, who),
    }
}

/// `SecretGrants(uri, RoleView)` as `secret-info-get` shows it: each grant whose relation is
/// still alive, its grantee as a unit or application tag (state/secrets.go, jujuc
/// `secret-info-get.go` `accessInfo`).
fn access(s: &Secret, who: &Who) -> Vec<(String, String)> {
    s.grants
        .iter()
        .filter_map(|(grantee, rel)| {
            let scope = who.live_relations.get(rel)?;
            let target = match grantee.split_once('/') {
                Some((app, n)) => format!("unit-{app}-{n}"),
                None => format!("application-{grantee}"),
            };
            Some((target, scope.clone()))
        })
        .collect()
}

fn owner_kind(owner: &str) -> &'static str {
    if owner.contains('/') {
        "unit"
    } else {
        "application"
    }
}

/// `secret-get`: the pending content of a secret made in this hook; else the tracked revision
/// (the latest on a first read), the latest with `--peek`, and with `--refresh` the latest, now
/// tracked. Given an id and a label, the label is set (the owner's, or this reader's own).
fn get(
    store: &mut Store,
    pending: &Pending,
    who: &Who,
    target: &Target,
    peek: bool,
    refresh: bool,
) -> Result<Content, String> {
    let id = match &target.id {
        Some(id) => parse_id(id)?,
        None => {
            let label = target.label.as_deref().unwrap_or_default();
            let by_consumer = store
                .secrets
                .iter()
                .find(|(_, s)| s.consumers.get(&who.unit).is_some_and(|c| c.label == label));
            let by_owner = || {
                store
                    .secrets
                    .iter()
                    .find(|(_, s)| who.owns(s) && s.label == label)
            };
            match by_consumer.or_else(by_owner) {
                Some((id, _)) => id.clone(),
                None => match owned_target(store, pending, who, target) {
                    Ok(id) => id,
                    Err(_) => return Err(format!("consumer label {} not found", go_quote(label))),
                },
            }
        }
    };
    if let Some((_, content, _)) = pending.created(&id) {
        return Ok(pending.new_content(&id).unwrap_or(content).clone());
    }
    let s = store.secrets.get_mut(&id).ok_or_else(|| not_found(&id))?;
    if !who.can_read(s) {
        return Err("permission denied".into());
    }
    if let (Some(_), Some(label)) = (&target.id, &target.label) {
        if who.owns(s) {
            s.label = label.clone();
        } else {
            s.consumers.entry(who.unit.clone()).or_default().label = label.clone();
        }
    }
    let latest = s.latest;
    let c = s.consumers.entry(who.unit.clone()).or_default();
    if c.tracked == 0 || refresh {
        c.tracked = latest;
        c.changed_told = c.changed_told.max(latest);
    }
    let rev = if peek || refresh { latest } else { c.tracked };
    if peek || refresh {
        if let Some(new) = pending.new_content(&id) {
            return Ok(new.clone());
        }
    }
    s.revisions
        .get(&rev)
        .map(|r| r.content.clone())
        .ok_or_else(|| {
            format!(
                "secret {} revision {rev} not found",
                go_quote(&local_uri(&id))
            )
        })
}

/// Applies a hook's buffered changes, all or none: any that the controller refuses fails the
/// hook with its message (a non-leader changing its application's secret, a label another
/// secret of the owner has, a secret that does not exist).
pub fn commit(store: &mut Store, pending: &Pending, who: &Who) -> Result<(), String> {
    let mut next = store.clone();
    for op in &pending.ops {
        apply(&mut next, op, who)?;
    }
    *store = next;
    Ok(())
}

fn manage<'a>(store: &'a mut Store, who: &Who, id: &str) -> Result<&'a mut Secret, String> {
    let s = store.secrets.get_mut(id).ok_or_else(|| not_found(id))?;
    if s.owner == who.unit || (s.owner == who.app() && who.leader) {
        Ok(s)
    } else if s.owner == who.app() {
        Err(format!(
            "{} is not leader of {}",
            go_quote(&who.unit),
            go_quote(who.app())
        ))
    } else {
        Err("permission denied".into())
    }
}

fn check_label(store: &Store, owner: &str, id: &str, label: Option<&str>) -> Result<(), String> {
    match label {
        Some(l)
            if !l.is_empty()
                && store
                    .secrets
                    .iter()
                    .any(|(i, s)| i != id && s.owner == owner && s.label == l) =>
        {
            Err(format!("secret with label {} already exists", go_quote(l)))
        }
        _ => Ok(()),
    }
}

fn apply(store: &mut Store, op: &Op, who: &Who) -> Result<(), String> {
    match op {
        Op::Create {
            id,
            owner,
            content,
            meta,
        } => {
            check_label(store, owner, id, meta.label.as_deref())?;
            let mut s = Secret {
                owner: owner.clone(),
                ..Default::default()
            };
            update(&mut s, Some(content), meta, who.now);
            store.secrets.insert(id.clone(), s);
        }
        Op::Update { id, content, meta } => {
            let owner = manage(store, who, id)?.owner.clone();
            check_label(store, &owner, id, meta.label.as_deref())?;
            let s = manage(store, who, id)?;
            update(s, content.as_ref(), meta, who.now);
        }
        Op::Grant {
            id,
            grantee,
            relation,
        } => {
            manage(store, who, id)?
                .grants
                .insert(grantee.clone(), *relation);
        }
        Op::Revoke { id, grantee } => {
            manage(store, who, id)?.grants.remove(grantee);
        }
        Op::Remove { id, revision } => {
            let s = manage(store, who, id)?;
            match revision {
                Some(r) => {
                    s.revisions.remove(r);
                    if s.revisions.is_empty() {
                        store.secrets.remove(id);
                    }
                }
                None => {
                    store.secrets.remove(id);
                }
            }
        }
    }
    Ok(())
}

/// Sets metadata and, when given, adds a revision with the content.
fn update(s: &mut Secret, content: Option<&Content>, meta: &Meta, now: f64) {
    if let Some(l) = &meta.label {
        s.label = l.clone();
    }
    if let Some(d) = &meta.description {
        s.description = d.clone();
    }
    let policy_changed = meta.rotate.as_ref().is_some_and(|r| *r != s.rotate);
    if let Some(r) = &meta.rotate {
        s.rotate = if r == "never" {
            String::new()
        } else {
            r.clone()
        };
    }
    if let Some(c) = content {
        s.latest += 1;
        s.revisions.insert(
            s.latest,
            Revision {
                content: c.clone(),
                expire: None,
                expire_due: None,
            },
        );
    }
    if let Some(e) = meta.expire {
        if let Some(r) = s.revisions.get_mut(&s.latest) {
            r.expire = Some(e);
            r.expire_due = Some(e);
        }
    }
    // A new revision counts as the rotation; a new policy starts its interval now.
    if content.is_some() || policy_changed {
        s.next_rotate = interval(&s.rotate).map(|i| now + i);
    }
}

/// The interval of a rotate policy; `None` for never (or none).
fn interval(policy: &str) -> Option<f64> {
    ROTATE_POLICIES
        .iter()
        .find(|(p, _)| *p == policy)
        .map(|(_, i)| *i)
        .filter(|i| *i > 0.0)
}

/// The secret hooks due at `now`, each marked as told: `secret-changed` for readers behind a
/// new revision, `secret-remove` for revisions no reader tracks, `secret-rotate` and
/// `secret-expired` whose time has come (again).
pub fn due(store: &mut Store, now: f64) -> Vec<Notice> {
    let mut out = vec![];
    for (id, s) in &mut store.secrets {
        let notice = |to: &str, hook| Notice {
            to: to.to_string(),
            hook,
            id: id.clone(),
        };
        for (unit, c) in &mut s.consumers {
            if s.latest > c.tracked && s.latest > c.changed_told {
                c.changed_told = s.latest;
                out.push(notice(unit, Hook::Changed));
            }
        }
        let tracked: BTreeSet<u32> = s.consumers.values().map(|c| c.tracked).collect();
        for r in s.revisions.keys() {
            if *r < s.latest && !tracked.contains(r) && s.obsolete_told.insert(*r) {
                out.push(notice(&s.owner, Hook::Remove(*r)));
            }
        }
        if s.next_rotate.is_some_and(|t| t <= now) {
            s.next_rotate = Some(now + RETRY_SECONDS);
            out.push(notice(&s.owner, Hook::Rotate));
        }
        for (r, rev) in &mut s.revisions {
            if rev.expire_due.is_some_and(|t| t <= now) {
                rev.expire_due = Some(now + RETRY_SECONDS);
                out.push(notice(&s.owner, Hook::Expired(*r)));
            }
        }
    }
    out
}

/// A unit is gone: its own secrets go with it, and it reads no other any more (so the owner may
/// be told a revision it read is obsolete).
pub fn forget_unit(store: &mut Store, unit: &str) {
    store.secrets.retain(|_, s| s.owner != unit);
    for s in store.secrets.values_mut() {
        s.consumers.remove(unit);
        s.grants.remove(unit);
    }
}

/// The label a unit's secret hook shows in `JUJU_SECRET_LABEL`: its own reader label, else,
/// for the owner's units, the owner's label (another application's unit does not see it).
pub fn label_for(store: &Store, id: &str, unit: &str) -> String {
    let Some(s) = store.secrets.get(id) else {
        return String::new();
    };
    let own = s.owner == unit || s.owner == app_of(unit);
    s.consumers
        .get(unit)
        .map(|c| c.label.clone())
        .filter(|l| !l.is_empty())
        .or_else(|| own.then(|| s.label.clone()))
        .unwrap_or_default()
}

/// `text` with every secret value the store and a hook's pending changes hold (three bytes or
/// longer) replaced by `<redacted>`, for what a hook printed or logged before it reaches the log.
pub fn scrub(store: &Store, pending: Option<&Pending>, text: &str) -> String {
    use base64::Engine;
    let stored = store
        .secrets
        .values()
        .flat_map(|s| s.revisions.values())
        .map(|r| &r.content);
    let new = pending
        .into_iter()
        .flat_map(|p| &p.ops)
        .filter_map(|op| match op {
            Op::Create { content, .. }
            | Op::Update {
                content: Some(content),
                ..
            } => Some(content),
            _ => None,
        });
    let mut values: Vec<String> = stored
        .chain(new)
        .flat_map(|c| c.values())
        .filter_map(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .filter_map(|v| String::from_utf8(v).ok())
        .map(|v| v.trim().to_string())
        .filter(|v| v.len() >= 3)
        .collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = text.to_string();
    for v in values {
        out = out.replace(&v, "<redacted>");
    }
    out
}

#[cfg(test)]
mod tests;

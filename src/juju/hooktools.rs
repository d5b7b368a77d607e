/*!
The real hook tools: one function per tool ([`HookTools`] methods), each passing
`--format=json` where the tool offers it; [`run`] is the single spawn point.

No value that may be a private key goes on a command line (where `/proc/<pid>/cmdline` shows
it to every local user): `relation-set`, `secret-add` and `secret-set` read their settings from
an owner-only file (`--file`, a YAML map, as Juju's tools take it). `leader-set` has no such flag
in Juju (it only parses `key=value` arguments, `jujuc/leader-set.go`): it carries no private key
under Juju 3 (they are in secrets); only the Juju 2.9 fallback puts the CA keys there.
*/

use super::context::PEER_ENDPOINT;
use super::{HookToolError, Juju, JujuError, Level, SecretOwner, Settings};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Runs one hook tool and returns its stdout: the only process spawn of a Juju tool.
pub fn run(tool: &str, args: &[String]) -> Result<String, HookToolError> {
    let _span = tracing::debug_span!("tool", what = tool).entered();
    let err = |code, stderr: String, missing| HookToolError {
        tool: tool.to_string(),
        args: args.to_vec(),
        code,
        stderr,
        missing,
    };
    let out = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            err(
                None,
                e.to_string(),
                e.kind() == std::io::ErrorKind::NotFound,
            )
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        return Err(err(out.status.code(), stderr, false));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The real hook tools. Answers that cannot change within one hook (`config-get`,
/// `relation-ids`, `network-get`: Juju fixes them for the hook's context) are asked once.
///
/// The peer relation's id is also kept between hooks, in a file in the unit's charm
/// directory (where ops keeps its own state, `.unit-state.db`): Juju creates the peer relation
/// with the application, runs its `-relation-created` before `start` and never breaks it while
/// the unit lives (no `-relation-broken` for peers), so its id is the unit's for life. Client
/// relations come and go between hooks: their ids are always asked. The file is read once per
/// hook. A failed `relation-get` or `relation-list` on the kept id removes the file (and what
/// was read of it), so Juju is asked again.
///
/// A remote unit's relation data is asked once too: Juju reads it once per hook and answers
/// from that (its uniter's relation cache), so observe's passes and the facts exporter share one
/// read. This unit's own data is always asked (it shows this hook's own `relation-set`s).
///
/// `update-status` also takes, from the hook before it, the answers Juju announces with a hook
/// before they change ([`HookTools::reading_kept`], [`HookTools::keep_answers`]).
#[derive(Debug, Clone)]
pub struct HookTools {
    answers: std::cell::RefCell<Vec<(Vec<String>, String)>>,
    /// Where this hook's answers are kept for the next `update-status`.
    kept_file: Option<PathBuf>,
    /// Where the peer relation's id is kept (none outside a charm directory).
    peer_id_file: Option<PathBuf>,
    /// The kept peer relation id as read in this hook (`None`: not read yet).
    peer_id: std::cell::RefCell<Option<Option<String>>>,
    /// This unit (`$JUJU_UNIT_NAME`); without it no relation data is taken for a remote unit's.
    unit: Option<String>,
    /// `is-leader` answered true in this hook: the leader settings are then always asked.
    leader: std::cell::Cell<bool>,
}

/// The file in the charm directory that keeps the peer relation's id.
const PEER_ID_FILE: &str = ".etcd-charm-peer-relation";

/// The file in the charm directory that keeps a hook's answers for the next `update-status`.
const KEPT_FILE: &str = ".etcd-charm-kept-answers.json";

impl Default for HookTools {
    /// The tools of this hook; the peer relation's id is kept in `$JUJU_CHARM_DIR`.
    fn default() -> Self {
        let dir = std::env::var_os("JUJU_CHARM_DIR").filter(|d| !d.is_empty());
        let unit = std::env::var("JUJU_UNIT_NAME")
            .ok()
            .filter(|u| !u.is_empty());
        let mut tools = HookTools::new(
            dir.as_ref().map(|d| PathBuf::from(d).join(PEER_ID_FILE)),
            unit,
        );
        tools.kept_file = dir.map(|d| PathBuf::from(d).join(KEPT_FILE));
        tools
    }
}

impl HookTools {
    fn new(peer_id_file: Option<PathBuf>, unit: Option<String>) -> Self {
        HookTools {
            answers: Default::default(),
            kept_file: None,
            peer_id_file,
            peer_id: Default::default(),
            unit,
            leader: Default::default(),
        }
    }

    /// For `update-status` (`yes`): starts from the answers the hook before kept. Juju runs a
    /// hook before any of them changes, and `update-status` only when no other hook is due
    /// (its uniter's resolver): `config-changed` for the options, `leader-settings-changed` on
    /// the other units (the leader writes them itself, or an action or `juju exec` on it does:
    /// the leader asks them every time, see [`Juju::is_leader`]),
    /// `-relation-created`/`-broken` for relation ids, `-joined`/`-departed` for the units in
    /// a relation and `-changed` for their data. So `update-status` sees what the hook before
    /// saw, as it would had it run just after it, and asks only `is-leader`, this unit's own
    /// data, secrets and etcd. A file that cannot be read or parsed is no answer.
    pub fn reading_kept(self, yes: bool) -> Self {
        if let Some(kept) = self.kept_file.as_ref().filter(|_| yes).and_then(read_kept) {
            self.answers.borrow_mut().extend(kept);
        }
        self
    }

    /// Keeps this hook's keepable answers for the next `update-status` (written aside with
    /// mode 0600, then renamed; a failure only means it asks Juju). `forget` (a failed hook, or
    /// `-relation-broken`, in which Juju before 3.4.4 still lists the relation) removes the
    /// file instead.
    pub fn keep_answers(&self, forget: bool) {
        let Some(file) = &self.kept_file else {
            return;
        };
        let answers = self.answers.borrow();
        let leader = self.leader.get();
        let kept: Vec<_> = answers
            .iter()
            .filter(|(k, out)| keepable(k, out) && !(leader && k[0] == "leader-get"))
            .collect();
        if forget || kept.is_empty() {
            let _ = std::fs::remove_file(file);
            return;
        }
        if let Ok(text) = serde_json::to_vec(&kept) {
            replace_file(file, &text, 0o600);
        }
    }

    /// The peer relation's id kept by an earlier hook, if it is well formed: the file is read
    /// at the first call of the hook only.
    fn kept_peer_id(&self) -> Option<String> {
        let known = self.peer_id.borrow().clone();
        known.unwrap_or_else(|| {
            let read = self.read_peer_id();
            *self.peer_id.borrow_mut() = Some(read.clone());
            read
        })
    }

    fn read_peer_id(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.peer_id_file.as_ref()?).ok()?;
        let id = text.trim();
        let number = id.strip_prefix(PEER_ENDPOINT)?.strip_prefix(':')?;
        let digits = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| id.to_string())
    }

    /// Keeps the peer relation's id (written aside, then renamed: never half a file); a
    /// failure only means the next hook asks again.
    fn keep_peer_id(&self, id: &str) {
        let Some(file) = &self.peer_id_file else {
            return;
        };
        *self.peer_id.borrow_mut() = Some(Some(id.to_string()));
        replace_file(file, format!("{id}\n").as_bytes(), 0o666);
    }

    /// Forgets the kept peer relation id after a tool failed on `relation_id`.
    fn failed_on(&self, relation_id: &str) {
        if let (Some(file), Some(kept)) = (&self.peer_id_file, self.kept_peer_id()) {
            if kept == relation_id {
                let _ = std::fs::remove_file(file);
                *self.peer_id.borrow_mut() = Some(None);
            }
        }
    }

    /// [`run`], or its answer from earlier in this hook; failures are not kept.
    fn once(&self, tool: &str, args: Vec<String>) -> Result<String, HookToolError> {
        let mut key = args;
        key.insert(0, tool.to_string());
        let known = self
            .answers
            .borrow()
            .iter()
            .find(|(k, _)| *k == key)
            .cloned();
        if let Some((_, out)) = known {
            return Ok(out);
        }
        let out = run(tool, &key[1..])?;
        self.answers.borrow_mut().push((key, out.clone()));
        Ok(out)
    }
}

/// Replaces `file` with `bytes`: written aside (created with `mode`, less the umask), then
/// renamed, so it is never half a file; on failure the aside file is removed and `file` left.
fn replace_file(file: &std::path::Path, bytes: &[u8], mode: u32) {
    let aside = file.with_extension("new");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&aside)
        .and_then(|mut f| f.write_all(bytes));
    if written
        .and_then(|()| std::fs::rename(&aside, file))
        .is_err()
    {
        let _ = std::fs::remove_file(&aside);
    }
}

/// True for an answer the next `update-status` may take: the options, the leader settings,
/// relation ids and units, and the data of remote units on the peer relation (consumers'
/// databags are always asked: one may hold credentials, as `s3` does). Nothing that holds a
/// private key is kept (the leader settings of Juju 2.9, which has no secrets).
fn keepable(key: &[String], out: &str) -> bool {
    let peer = key.windows(2).any(|w| {
        w[0] == "-r"
            && w[1]
                .strip_prefix(PEER_ENDPOINT)
                .is_some_and(|r| r.starts_with(':'))
    });
    let tool = key.first().map(String::as_str);
    let kept = match tool {
        Some("config-get" | "leader-get" | "relation-ids" | "relation-list") => true,
        Some("relation-get") => peer,
        _ => false,
    };
    kept && !out.contains("PRIVATE KEY")
}

/// The answers kept in `file`, if it reads as such.
fn read_kept(file: &PathBuf) -> Option<Vec<(Vec<String>, String)>> {
    let kept: Vec<(Vec<String>, String)> =
        serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
    Some(
        kept.into_iter()
            .filter(|(k, out)| keepable(k, out))
            .collect(),
    )
}

/// `relation-set -r <id> [--app] --file <file>`: values (such as `client_key`) go through a
/// file, never the command line.
fn relation_set(relation_id: &str, settings: &Settings, app: bool) -> Result<(), JujuError> {
    let file = SettingsFile::new("relation-set", settings)?;
    let mut a = args(["-r", relation_id, "--file", &file.arg()]);
    if app {
        a.insert(2, "--app".to_string());
    }
    run("relation-set", &a).map(drop).map_err(Into::into)
}

fn args<const N: usize>(a: [&str; N]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// `flags…` then the free text after `--`, so a message starting with `-` is not taken for a
/// flag (Juju's tools stop parsing flags at `--`).
fn free_text(flags: &[&str], text: &str) -> Vec<String> {
    let words = flags.iter().copied().chain(["--", text]);
    words.map(str::to_string).collect()
}

fn key_values<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> Vec<String> {
    pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

fn json<T: serde::de::DeserializeOwned>(tool: &str, out: &str) -> Result<T, JujuError> {
    serde_json::from_str(out).map_err(|e| JujuError::BadOutput {
        tool: tool.to_string(),
        reason: e.to_string(),
    })
}

/// The `units` of `goal-state`'s JSON, each with its status.
fn goal_units(out: &Value) -> BTreeMap<String, String> {
    let units = out.get("units").and_then(Value::as_object);
    let status = |v: &Value| v.get("status")?.as_str().map(str::to_string);
    units
        .into_iter()
        .flatten()
        .filter_map(|(unit, v)| Some((unit.clone(), status(v)?)))
        .collect()
}

/// Keeps the string values of a JSON map; other values are dropped (they never come from Juju).
fn string_map(value: Value) -> Settings {
    match value {
        Value::Object(map) => map
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
            .collect(),
        _ => Settings::new(),
    }
}

/// An owner-only (0600) file holding settings for a tool's `--file`, removed when dropped.
struct SettingsFile(PathBuf);

impl SettingsFile {
    /// Writes `settings` as a YAML map (JSON, which is YAML, so every value stays a quoted
    /// string) to a new file in the temporary directory, created with mode 0600 in one step.
    fn new(tool: &str, settings: &Settings) -> Result<SettingsFile, HookToolError> {
        let content = serde_json::to_string(settings).unwrap_or_default();
        let dir = std::env::temp_dir();
        let mut last = None;
        for attempt in 0..8 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let name = format!(
                "etcd-charm-{tool}-{}-{nanos}-{attempt}.yaml",
                std::process::id()
            );
            let path = dir.join(name);
            // `create_new`: never an existing file or a symlink planted there.
            let opened = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path);
            match opened {
                Ok(mut f) => {
                    let file = SettingsFile(path);
                    f.write_all(content.as_bytes())
                        .and_then(|()| f.sync_all())
                        .map_err(|e| file_error(tool, &file.0, e))?;
                    return Ok(file);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(file_error(tool, &path, e)),
            }
        }
        let e = last.unwrap_or_else(|| std::io::ErrorKind::AlreadyExists.into());
        Err(file_error(tool, &dir, e))
    }

    /// The file's path, as the tool's argument.
    fn arg(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for SettingsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A settings file that could not be written, as the tool's error (it was not run).
fn file_error(tool: &str, path: &std::path::Path, e: std::io::Error) -> HookToolError {
    HookToolError {
        tool: tool.to_string(),
        args: vec!["--file".to_string(), path.display().to_string()],
        code: None,
        stderr: format!("cannot write its settings file: {e}"),
        missing: false,
    }
}

/// Runs a leadership tool: a missing tool means a Juju without leader election.
fn leadership(tool: &str, a: Vec<String>) -> Result<String, JujuError> {
    run(tool, &a).map_err(no_leadership)
}

/// A leadership tool's failure: a missing tool means a Juju without leader election.
fn no_leadership(e: HookToolError) -> JujuError {
    match e.missing {
        true => JujuError::NoLeadership,
        false => JujuError::Tool(e),
    }
}

/// Picks the first address out of `network-get --format=json` output.
pub fn address_from_network_get(v: &Value) -> Option<String> {
    let first_str = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    if let Some(a) = first_str(v.pointer("/ingress-addresses/0")) {
        return Some(a);
    }
    let addr = v.pointer("/bind-addresses/0/addresses/0")?;
    first_str(addr.get("value")).or_else(|| first_str(addr.get("address")))
}

impl Juju for HookTools {
    fn config_get(&self) -> Result<serde_json::Map<String, Value>, JujuError> {
        let out = self.once("config-get", args(["--all", "--format=json"]))?;
        json("config-get", &out)
    }

    /// On the leader, leader settings kept from an earlier hook are dropped: no hook tells it
    /// of a change an action or `juju exec` made there, so it asks.
    fn is_leader(&self) -> Result<bool, JujuError> {
        let leader = json(
            "is-leader",
            &leadership("is-leader", args(["--format=json"]))?,
        )?;
        if leader && !self.leader.replace(true) {
            self.answers
                .borrow_mut()
                .retain(|(k, _)| k[0] != "leader-get");
        }
        Ok(leader)
    }

    fn leader_get(&self) -> Result<Settings, JujuError> {
        let out = self.once("leader-get", args(["--format=json"]));
        Ok(string_map(json(
            "leader-get",
            &out.map_err(no_leadership)?,
        )?))
    }

    fn leader_set(&self, settings: &Settings) -> Result<(), JujuError> {
        // The settings as read before are no longer the answer (the next leader-get asks).
        self.answers
            .borrow_mut()
            .retain(|(k, _)| k[0] != "leader-get");
        // Juju's leader-set reads only `key=value` arguments (no `--file`, no stdin): no private
        // key goes here but under Juju 2.9, which has no secrets (see `machine::tls`).
        leadership("leader-set", key_values(settings)).map(drop)
    }

    fn relation_ids(&self, endpoint: &str) -> Result<Vec<String>, JujuError> {
        let peers = endpoint == PEER_ENDPOINT;
        if let Some(id) = self.kept_peer_id().filter(|_| peers) {
            return Ok(vec![id]);
        }
        let out = self.once("relation-ids", args(["--format=json", endpoint]))?;
        let ids: Vec<String> = json("relation-ids", &out)?;
        if let [id] = ids.as_slice() {
            if peers {
                self.keep_peer_id(id);
            }
        }
        Ok(ids)
    }

    fn relation_list(&self, relation_id: &str) -> Result<Vec<String>, JujuError> {
        let a = args(["--format=json", "-r", relation_id]);
        let out = self
            .once("relation-list", a)
            .inspect_err(|_| self.failed_on(relation_id))?;
        json("relation-list", &out)
    }

    fn relation_get(&self, relation_id: &str, unit: &str) -> Result<Settings, JujuError> {
        let a = args(["--format=json", "-r", relation_id, "-", unit]);
        let out = match self.unit.as_deref().is_some_and(|own| own != unit) {
            true => self.once("relation-get", a),
            false => run("relation-get", &a),
        };
        let out = out.inspect_err(|_| self.failed_on(relation_id))?;
        Ok(string_map(json("relation-get", &out)?))
    }

    fn relation_get_app(&self, relation_id: &str, app: &str) -> Result<Settings, JujuError> {
        let a = args(["--format=json", "-r", relation_id, "--app", "-", app]);
        Ok(string_map(json("relation-get", &run("relation-get", &a)?)?))
    }

    fn relation_set(&self, relation_id: &str, settings: &Settings) -> Result<(), JujuError> {
        relation_set(relation_id, settings, false)
    }

    fn relation_set_app(&self, relation_id: &str, settings: &Settings) -> Result<(), JujuError> {
        relation_set(relation_id, settings, true)
    }

    fn status_set(&self, status: &str, message: &str) -> Result<(), JujuError> {
        run("status-set", &free_text(&[status], message))?;
        Ok(())
    }

    fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        };
        if let Err(e) = run("juju-log", &free_text(&["--log-level", level], message)) {
            eprintln!("{level}: {message} (juju-log failed: {e})");
        }
    }

    fn address(&self, binding: &str) -> Result<Option<String>, JujuError> {
        match self.once("network-get", args([binding, "--format=json"])) {
            Ok(out) => {
                let v: Value = json("network-get", &out)?;
                if let Some(a) = address_from_network_get(&v) {
                    return Ok(Some(a));
                }
            }
            Err(e) => self.log(Level::Debug, &format!("{e}; trying unit-get")),
        }
        let out = self.once("unit-get", args(["private-address", "--format=json"]))?;
        let addr: Option<String> = json("unit-get", &out)?;
        Ok(addr.filter(|a| !a.is_empty()))
    }

    fn resource_get(&self, name: &str) -> Result<String, JujuError> {
        Ok(run("resource-get", &args([name]))?.trim().to_string())
    }

    fn application_version_set(&self, version: &str) -> Result<(), JujuError> {
        run("application-version-set", &args([version]))?;
        Ok(())
    }

    fn open_port(&self, port: u16) -> Result<(), JujuError> {
        run("open-port", &[format!("{port}/tcp")])?;
        Ok(())
    }

    fn close_port(&self, port: u16) -> Result<(), JujuError> {
        run("close-port", &[format!("{port}/tcp")])?;
        Ok(())
    }

    fn opened_ports(&self) -> Result<Vec<u16>, JujuError> {
        let out: Value = json(
            "opened-ports",
            &run("opened-ports", &args(["--format=json"]))?,
        )?;
        let entries = out.as_array().cloned().unwrap_or_default();
        let tcp = |v: &Value| v.as_str()?.strip_suffix("/tcp")?.parse().ok();
        Ok(entries.iter().filter_map(tcp).collect())
    }

    fn action_get(&self) -> Result<Value, JujuError> {
        json("action-get", &run("action-get", &args(["--format=json"]))?)
    }

    fn action_set(&self, results: &[(String, String)]) -> Result<(), JujuError> {
        let a = key_values(results.iter().map(|(k, v)| (k, v)));
        run("action-set", &a)?;
        Ok(())
    }

    fn action_fail(&self, message: &str) -> Result<(), JujuError> {
        run("action-fail", &free_text(&[], message))?;
        Ok(())
    }

    fn action_log(&self, message: &str) -> Result<(), JujuError> {
        run("action-log", &free_text(&[], message))?;
        Ok(())
    }

    fn secret_add(
        &self,
        content: &Settings,
        owner: SecretOwner,
        label: Option<&str>,
    ) -> Result<String, JujuError> {
        // The content goes through a file, never the command line.
        let file = SettingsFile::new("secret-add", content)?;
        let owner = match owner {
            SecretOwner::Application => "application",
            SecretOwner::Unit => "unit",
        };
        let mut a = args(["--owner", owner, "--file", &file.arg()]);
        if let Some(label) = label {
            a.extend(args(["--label", label]));
        }
        Ok(run("secret-add", &a)?.trim().to_string())
    }

    fn secret_get(&self, id: &str, refresh: bool) -> Result<Settings, JujuError> {
        let mut a = args(["--format=json", id]);
        if refresh {
            a.push("--refresh".into());
        }
        Ok(string_map(json("secret-get", &run("secret-get", &a)?)?))
    }

    fn secret_set(&self, id: &str, content: &Settings) -> Result<(), JujuError> {
        let file = SettingsFile::new("secret-set", content)?;
        run("secret-set", &args([id, "--file", &file.arg()]))?;
        Ok(())
    }

    fn secret_grant(
        &self,
        id: &str,
        relation_id: &str,
        unit: Option<&str>,
    ) -> Result<(), JujuError> {
        let mut a = args([id, "-r", relation_id]);
        if let Some(unit) = unit {
            a.extend(args(["--unit", unit]));
        }
        run("secret-grant", &a)?;
        Ok(())
    }

    fn secret_ids(&self) -> Result<Vec<String>, JujuError> {
        let out = run("secret-ids", &args(["--format=json"]))?;
        // `null` when there is none.
        let ids: Option<Vec<String>> = json("secret-ids", &out)?;
        Ok(ids.unwrap_or_default())
    }

    fn secret_remove(&self, id: &str) -> Result<(), JujuError> {
        run("secret-remove", &args([id]))?;
        Ok(())
    }

    fn goal_units(&self) -> Result<BTreeMap<String, String>, JujuError> {
        let out = run("goal-state", &args(["--format=json"]))?;
        Ok(goal_units(&json("goal-state", &out)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_comes_after_the_end_of_flags() {
        assert_eq!(
            free_text(&["blocked"], "-1 is not a port"),
            ["blocked", "--", "-1 is not a port"]
        );
        assert_eq!(
            free_text(&["--log-level", "INFO"], "--x"),
            ["--log-level", "INFO", "--", "--x"]
        );
    }

    #[test]
    fn missing_tool_is_typed_not_a_panic() {
        let e = run("no-such-hook-tool-xyz", &args(["a"])).unwrap_err();
        assert!(e.missing);
        assert_eq!(e.code, None);
        assert_eq!(
            leadership("no-such-hook-tool-xyz", vec![]),
            Err(JujuError::NoLeadership)
        );
    }

    #[test]
    fn failed_tool_keeps_code_and_stderr() {
        let a = args(["-c", "echo 'ERROR not the leader' >&2; exit 1"]);
        let e = run("sh", &a).unwrap_err();
        assert_eq!(e.code, Some(1));
        assert_eq!(e.stderr, "ERROR not the leader\n");
        assert!(e
            .to_string()
            .contains("(exit code 1): ERROR not the leader"));
    }

    #[test]
    fn errors_never_show_private_keys() {
        let e = HookToolError {
            tool: "leader-set".into(),
            args: args(["tls-ca=PEM", "tls-ca-key=SECRET", "client_key=SECRET"]),
            code: Some(1),
            stderr: String::new(),
            missing: false,
        };
        let shown = e.to_string();
        assert!(shown.contains("tls-ca=PEM tls-ca-key=<redacted> client_key=<redacted>"));
        assert!(!shown.contains("SECRET"));
    }

    #[test]
    fn network_get_addresses() {
        let v: Value = serde_json::from_str(
            r#"{"bind-addresses":[{"addresses":[{"value":"10.0.0.2"}]}],"ingress-addresses":["10.0.0.3"]}"#,
        )
        .unwrap();
        assert_eq!(address_from_network_get(&v).as_deref(), Some("10.0.0.3"));
        let v: Value =
            serde_json::from_str(r#"{"bind-addresses":[{"addresses":[{"address":"10.0.0.2"}]}]}"#)
                .unwrap();
        assert_eq!(address_from_network_get(&v).as_deref(), Some("10.0.0.2"));
    }

    #[test]
    fn settings_file_is_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let pem = "-----BEGIN PRIVATE KEY-----\nAB\"C\n-----END PRIVATE KEY-----\n";
        let settings = Settings::from([
            ("client_key".into(), pem.into()),
            ("port".into(), "2379".into()),
            ("gone".into(), String::new()),
        ]);
        let file = SettingsFile::new("relation-set", &settings).unwrap();
        let path = file.0.clone();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // Read back as a YAML map of strings, as Juju's relation-set reads it.
        let text = std::fs::read_to_string(&path).unwrap();
        let back: Settings = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(back, settings);
        assert!(!file.arg().contains("PRIVATE"));
        drop(file);
        assert!(!path.exists());
    }

    #[test]
    fn goal_state_units_with_their_status() {
        let out = serde_json::json!({
            "units": {
                "etcd/0": {"status": "active", "since": "2026-12-04 10:11:12Z"},
                "etcd/3": {"status": "waiting", "since": "2026-12-04 10:11:13Z"},
                "etcd/1": {"status": "dying"},
            },
            "relations": {"db": {"app": {"status": "joined"}}},
        });
        let units = goal_units(&out);
        let want = [
            ("etcd/0", "active"),
            ("etcd/1", "dying"),
            ("etcd/3", "waiting"),
        ];
        let want = want.map(|(u, s)| (u.to_string(), s.to_string()));
        assert_eq!(units, BTreeMap::from(want));
        assert!(goal_units(&serde_json::json!({"units": null})).is_empty());
    }

    #[test]
    fn secret_ids_in_every_form() {
        let id = "cfcu75uffbas7amkm0d0";
        for uri in [
            "secret:cfcu75uffbas7amkm0d0",
            "secret://5b1e1f2a-uuid/cfcu75uffbas7amkm0d0",
            "5b1e1f2a-uuid/cfcu75uffbas7amkm0d0",
            "cfcu75uffbas7amkm0d0\n",
        ] {
            assert_eq!(super::super::secret_bare_id(uri), id, "{uri}");
        }
    }

    #[test]
    fn an_answer_is_asked_once_a_failure_again() {
        let tools = HookTools::default();
        let first = tools.once("date", args(["+%N"])).unwrap();
        assert_eq!(tools.once("date", args(["+%N"])).unwrap(), first);
        assert_ne!(tools.once("date", args(["+%N%N"])).unwrap(), first);
        assert!(tools.once("sh", args(["-c", "exit 3"])).is_err());
        assert_eq!(tools.answers.borrow().len(), 2);
    }

    #[test]
    fn the_peer_relation_id_is_kept_between_hooks_and_forgotten_on_failure() {
        let dir = std::env::temp_dir().join(format!("hooktools-peer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tools = || HookTools::new(Some(dir.join(PEER_ID_FILE)), None);
        // Nothing kept: Juju is asked (no relation-ids on this host).
        assert!(tools().relation_ids(PEER_ENDPOINT).is_err());
        tools().keep_peer_id("cluster:7");
        assert_eq!(tools().relation_ids(PEER_ENDPOINT).unwrap(), ["cluster:7"]);
        // Only the peer endpoint's id is kept.
        assert!(tools().relation_ids("db").is_err());
        // A failure on another relation keeps it; one on the kept id forgets it.
        assert!(tools().relation_get("db:3", "etcd/0").is_err());
        assert_eq!(tools().kept_peer_id().as_deref(), Some("cluster:7"));
        assert!(tools().relation_list("cluster:7").is_err());
        assert_eq!(tools().kept_peer_id(), None);
        // A malformed file is not an answer.
        for bad in ["db:7", "cluster:", "cluster:7 x", "cluster:x"] {
            std::fs::write(dir.join(PEER_ID_FILE), bad).unwrap();
            assert_eq!(tools().kept_peer_id(), None, "{bad}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_kept_peer_relation_id_is_read_once_per_hook() {
        let dir = std::env::temp_dir().join(format!("hooktools-once-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(PEER_ID_FILE);
        std::fs::write(&file, "cluster:7\n").unwrap();
        let tools = HookTools::new(Some(file.clone()), None);
        assert_eq!(tools.relation_ids(PEER_ENDPOINT).unwrap(), ["cluster:7"]);
        // Changed behind this hook's back: the hook goes on with what it read.
        std::fs::write(&file, "cluster:8\n").unwrap();
        for _ in 0..3 {
            assert_eq!(tools.relation_ids(PEER_ENDPOINT).unwrap(), ["cluster:7"]);
        }
        // A tool failing on it forgets it in this hook too (and removes the file).
        assert!(tools.relation_list("cluster:7").is_err());
        assert!(!file.exists());
        assert_eq!(tools.kept_peer_id(), None);
        // Juju is asked again (no relation-ids on this host); a later hook reads the file anew.
        assert!(tools.relation_ids(PEER_ENDPOINT).is_err());
        std::fs::write(&file, "cluster:9\n").unwrap();
        let next = HookTools::new(Some(file), None);
        assert_eq!(next.relation_ids(PEER_ENDPOINT).unwrap(), ["cluster:9"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_remote_units_relation_data_is_asked_once_its_own_always() {
        let tools = HookTools::new(None, Some("etcd/1".into()));
        let get = |unit: &str| {
            args([
                "relation-get",
                "--format=json",
                "-r",
                "cluster:1",
                "-",
                unit,
            ])
        };
        // What an earlier relation-get of etcd/0's data in this hook answered.
        let answer = r#"{"defragmented":"1700000000 etcd1"}"#.to_string();
        tools.answers.borrow_mut().push((get("etcd/0"), answer));
        let data = tools.relation_get("cluster:1", "etcd/0").unwrap();
        assert_eq!(data["defragmented"], "1700000000 etcd1");
        // This unit's own data is asked (no relation-get on this host), nor is a failure kept.
        assert!(tools.relation_get("cluster:1", "etcd/1").is_err());
        assert!(tools.relation_get("cluster:1", "etcd/2").is_err());
        assert_eq!(tools.answers.borrow().len(), 1);
        // Without this unit's name nothing is taken for a remote unit's.
        let unnamed = HookTools::new(None, None);
        unnamed
            .answers
            .borrow_mut()
            .push((get("etcd/0"), "{}".into()));
        assert!(unnamed.relation_get("cluster:1", "etcd/0").is_err());
    }

    #[test]
    fn update_status_takes_the_answers_the_hook_before_kept() {
        let dir = std::env::temp_dir().join(format!("hooktools-kept-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(KEPT_FILE);
        let tools = |update_status: bool| {
            let mut t = HookTools::new(None, Some("etcd/1".into()));
            t.kept_file = Some(file.clone());
            t.reading_kept(update_status)
        };
        let key = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let answer = |t: &HookTools, k: &[&str], out: &str| {
            t.answers.borrow_mut().push((key(k), out.to_string()))
        };
        let hook = tools(false);
        answer(
            &hook,
            &["config-get", "--all", "--format=json"],
            r#"{"port":2379}"#,
        );
        answer(
            &hook,
            &["relation-ids", "--format=json", "db"],
            r#"["db:4"]"#,
        );
        answer(
            &hook,
            &["relation-list", "--format=json", "-r", "cluster:1"],
            r#"["etcd/0"]"#,
        );
        let peer = [
            "relation-get",
            "--format=json",
            "-r",
            "cluster:1",
            "-",
            "etcd/0",
        ];
        answer(&hook, &peer, r#"{"ingress-address":"10.0.0.1"}"#);
        // Never kept: a consumer's databag, any key, an address.
        let consumer = ["relation-get", "--format=json", "-r", "s3:9", "-", "s3/0"];
        answer(&hook, &consumer, r#"{"secret-key":"x"}"#);
        let key_pem = r#"{"tls-ca-key":"-----BEGIN PRIVATE KEY-----"}"#;
        answer(&hook, &["leader-get", "--format=json"], key_pem);
        answer(&hook, &["network-get", "cluster", "--format=json"], "{}");
        hook.keep_answers(false);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("PRIVATE")
                && !text.contains("secret-key")
                && !text.contains("network-get")
        );
        // Another hook asks Juju (none here); update-status takes the kept answers.
        assert!(tools(false).config_get().is_err());
        let status = tools(true);
        assert_eq!(status.config_get().unwrap()["port"], 2379);
        assert_eq!(status.relation_ids("db").unwrap(), ["db:4"]);
        assert_eq!(status.relation_list("cluster:1").unwrap(), ["etcd/0"]);
        assert_eq!(
            status.relation_get("cluster:1", "etcd/0").unwrap()["ingress-address"],
            "10.0.0.1"
        );
        assert!(status.relation_get("s3:9", "s3/0").is_err());
        assert!(status.leader_get().is_err());
        // A leader-set drops the settings read before; -relation-broken forgets the file.
        answer(&status, &["leader-get", "--format=json"], r#"{"a":"1"}"#);
        let _ = status.leader_set(&Settings::from([("a".into(), "2".into())]));
        assert!(status
            .answers
            .borrow()
            .iter()
            .all(|(k, _)| k[0] != "leader-get"));
        // The leader keeps no leader settings: an action or `juju exec` may change them unseen.
        answer(&status, &["leader-get", "--format=json"], r#"{"a":"2"}"#);
        status.leader.set(true);
        status.keep_answers(false);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("config-get") && !text.contains("leader-get"));
        status.keep_answers(true);
        assert!(!file.exists());
        // Garbage is no answer.
        std::fs::write(&file, "not json").unwrap();
        assert!(tools(true).config_get().is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn non_string_values_are_dropped() {
        let v = serde_json::json!({"a": "1", "b": 2});
        assert_eq!(string_map(v), Settings::from([("a".into(), "1".into())]));
    }
}

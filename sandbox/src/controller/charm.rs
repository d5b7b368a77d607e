//! Charms: unpacking a `.charm` zip or copying a directory, and reading its YAML files.

use super::model::{CharmMeta, EndpointMeta};
use anyhow::{bail, Context};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One entry of a charm archive or directory, by its path relative to the charm's root.
enum Entry {
    Dir,
    File { data: Vec<u8>, mode: u32 },
    Symlink { target: String },
}

/// Unpacks (zip) or copies (dir) the charm at `src` into `dest`, keeping symlinks and exec bits.
///
/// Every entry lands inside `dest`: a path with `..`, an absolute path, an entry under a symlink
/// or a symlink that points outside the charm is refused with an error naming the entry.
/// Directories and files are written first, symlinks last. Files are kept owner-only; the
/// machine gets the usual modes back (see [`crate::machine::Machine::copy_private_dir_in`]).
pub fn stage(src: &Path, dest: &Path) -> anyhow::Result<()> {
    let entries = if src.is_dir() {
        read_dir_entries(src)?
    } else {
        read_zip_entries(src)?
    };
    if dest.exists() {
        std::fs::remove_dir_all(dest)?;
    }
    super::private::dir(dest)?;
    let refuse = |name: &str, why: &str| {
        anyhow::anyhow!(
            "charm {} refused: entry {name:?} {why}; fix the charm and deploy it again",
            src.display()
        )
    };
    let mut paths = std::collections::BTreeSet::new();
    for (name, _) in &entries {
        let rel = safe_rel_path(name)
            .ok_or_else(|| refuse(name, "is not a plain relative path inside the charm"))?;
        if !paths.insert(rel) {
            return Err(refuse(name, "appears twice"));
        }
    }
    let links: Vec<(String, String)> = entries
        .iter()
        .filter_map(|(n, e)| match e {
            Entry::Symlink { target } => Some((n.clone(), target.clone())),
            _ => None,
        })
        .collect();
    for (name, _) in &links {
        let rel = safe_rel_path(name).expect("checked");
        if paths.iter().any(|p| p != &rel && p.starts_with(&rel)) {
            return Err(refuse(
                name,
                "is a symlink that other entries would be written through",
            ));
        }
    }
    for (name, entry) in &entries {
        let out = dest.join(safe_rel_path(name).expect("checked"));
        match entry {
            Entry::Dir => super::private::dir(&out)
                .map_err(|e| refuse(name, &format!("cannot be made a directory: {e}")))?,
            Entry::File { data, mode } => {
                if let Some(parent) = out.parent() {
                    super::private::dir(parent)
                        .map_err(|e| refuse(name, &format!("has no directory to go in: {e}")))?;
                }
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(super::private::owner_only(*mode) | 0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&out)
                    .map_err(|e| refuse(name, &format!("cannot be written: {e}")))?;
                f.write_all(data)?;
            }
            Entry::Symlink { .. } => {}
        }
    }
    for (name, target) in &links {
        let rel = safe_rel_path(name).expect("checked");
        if !link_stays_inside(&rel, target) {
            return Err(refuse(
                name,
                &format!("is a symlink to {target:?}, outside the charm"),
            ));
        }
        let out = dest.join(&rel);
        if let Some(parent) = out.parent() {
            super::private::dir(parent)
                .map_err(|e| refuse(name, &format!("has no directory to go in: {e}")))?;
        }
        std::os::unix::fs::symlink(target, &out)
            .map_err(|e| refuse(name, &format!("cannot be linked: {e}")))?;
    }
    Ok(())
}

/// `name` as a relative path of normal components only (`./` prefixes are fine).
fn safe_rel_path(name: &str) -> Option<PathBuf> {
    let mut rel = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            std::path::Component::Normal(n) => rel.push(n),
            std::path::Component::CurDir => {}
            _ => return None,
        }
    }
    (!rel.as_os_str().is_empty()).then_some(rel)
}

/// Whether a symlink at `link` (relative to the charm root) to `target` resolves inside the
/// charm: a relative target whose `..` components all come first and climb no higher than the
/// link's own directory. The rest only descends, so even through other (checked) links it
/// stays inside.
fn link_stays_inside(link: &Path, target: &str) -> bool {
    let t = Path::new(target);
    if target.is_empty() || t.is_absolute() {
        return false;
    }
    let depth = link.components().count() - 1;
    let mut ups = 0;
    let mut descended = false;
    for c in t.components() {
        match c {
            std::path::Component::ParentDir if !descended => ups += 1,
            std::path::Component::Normal(_) => descended = true,
            std::path::Component::CurDir => {}
            _ => return false,
        }
    }
    ups <= depth
}

/// The entries of a charm directory, without following its symlinks.
fn read_dir_entries(src: &Path) -> anyhow::Result<Vec<(String, Entry)>> {
    let mut out = vec![];
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = src.join(&rel);
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read the charm directory {}", dir.display()))?
            .collect::<Result<_, _>>()?;
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let path = rel.join(e.file_name());
            let name = path.to_string_lossy().into_owned();
            let md = std::fs::symlink_metadata(e.path())?;
            let ft = md.file_type();
            if ft.is_symlink() {
                let target = std::fs::read_link(e.path())?;
                out.push((
                    name,
                    Entry::Symlink {
                        target: target.to_string_lossy().into_owned(),
                    },
                ));
            } else if ft.is_dir() {
                out.push((name, Entry::Dir));
                stack.push(path);
            } else if ft.is_file() {
                use std::os::unix::fs::PermissionsExt;
                let data = std::fs::read(e.path())
                    .with_context(|| format!("cannot read {}", e.path().display()))?;
                let mode = md.permissions().mode();
                out.push((name, Entry::File { data, mode }));
            } else {
                bail!(
                    "charm {} refused: entry {name:?} is neither a file, a directory nor a symlink",
                    src.display()
                );
            }
        }
    }
    Ok(out)
}

/// The entries of a `.charm` zip.
fn read_zip_entries(src: &Path) -> anyhow::Result<Vec<(String, Entry)>> {
    let file = std::fs::File::open(src).with_context(|| {
        format!(
            "cannot open charm {}: give a charm directory or a .charm file",
            src.display()
        )
    })?;
    let mut zip = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a .charm (zip) file", src.display()))?;
    let mut out = vec![];
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i)?;
        let name = entry.name().to_string();
        let mode = entry.unix_mode().unwrap_or(0o644);
        if entry.is_dir() {
            out.push((name.trim_end_matches('/').to_string(), Entry::Dir));
            continue;
        }
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data)?;
        if mode & 0o170000 == 0o120000 {
            let target = String::from_utf8(data).map_err(|_| {
                anyhow::anyhow!(
                    "charm {} refused: entry {name:?} is a symlink whose target is not UTF-8",
                    src.display()
                )
            })?;
            out.push((name, Entry::Symlink { target }));
        } else {
            out.push((name, Entry::File { data, mode }));
        }
    }
    Ok(out)
}

fn read_yaml(dir: &Path, name: &str) -> anyhow::Result<Option<Value>> {
    let p = dir.join(name);
    match std::fs::read_to_string(&p) {
        Ok(s) => Ok(Some(serde_yaml_ng::from_str::<Value>(&s).with_context(
            || format!("{name} in the charm is not valid YAML"),
        )?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Reads metadata.yaml, config.yaml and actions.yaml of a staged charm.
pub fn read_meta(dir: &Path) -> anyhow::Result<CharmMeta> {
    let md = read_yaml(dir, "metadata.yaml")?
        .context("the charm has no metadata.yaml: is this a charm directory?")?;
    let name = md["name"]
        .as_str()
        .context("metadata.yaml has no name")?
        .to_string();
    let mut endpoints = BTreeMap::new();
    for role in ["provides", "requires", "peers"] {
        if let Some(map) = md[role].as_object() {
            for (ep, spec) in map {
                let interface = match spec {
                    Value::String(s) => s.clone(),
                    v => v["interface"].as_str().unwrap_or_default().to_string(),
                };
                endpoints.insert(
                    ep.clone(),
                    EndpointMeta {
                        role: role.into(),
                        interface,
                        scope: super::lifecycle::subordinate::endpoint_scope(spec),
                    },
                );
            }
        }
    }
    super::lifecycle::subordinate::add_juju_info(&mut endpoints);
    let mut resources = BTreeMap::new();
    if let Some(map) = md["resources"].as_object() {
        for (n, spec) in map {
            resources.insert(
                n.clone(),
                spec["filename"].as_str().unwrap_or(n).to_string(),
            );
        }
    }
    let options = read_yaml(dir, "config.yaml")?
        .and_then(|c| c["options"].as_object().cloned())
        .map(|m| m.into_iter().collect())
        .unwrap_or_default();
    let actions = read_yaml(dir, "actions.yaml")?
        .and_then(|c| c.as_object().cloned())
        .map(|m| m.into_iter().collect())
        .unwrap_or_default();
    let storage = super::storage::parse_meta(&md["storage"])?;
    Ok(CharmMeta {
        name,
        endpoints,
        resources,
        options,
        actions,
        subordinate: md["subordinate"].as_bool().unwrap_or(false),
        storage,
    })
}

/// Parses a config value given as text by the option's declared type, as `juju config` does.
pub fn parse_option(meta: &CharmMeta, key: &str, raw: &str) -> anyhow::Result<Value> {
    let Some(opt) = meta.options.get(key) else {
        let known: Vec<&String> = meta.options.keys().collect();
        bail!("unknown option {key:?}: the charm's options are {known:?}");
    };
    let ty = opt["type"].as_str().unwrap_or("string");
    let bad = || anyhow::anyhow!("option {key:?} expected {ty}, got {raw:?}");
    Ok(match ty {
        "int" => Value::from(raw.trim().parse::<i64>().map_err(|_| bad())?),
        "float" => Value::from(raw.trim().parse::<f64>().map_err(|_| bad())?),
        "boolean" => Value::from(match raw.trim() {
            "true" | "True" | "TRUE" | "1" | "t" | "T" => true,
            "false" | "False" | "FALSE" | "0" | "f" | "F" => false,
            _ => return Err(bad()),
        }),
        _ => Value::from(raw),
    })
}

/// The effective config: defaults overlaid with the user's values; options with neither are null.
pub fn effective_config(
    meta: &CharmMeta,
    set: &BTreeMap<String, Value>,
) -> BTreeMap<String, Value> {
    meta.options
        .iter()
        .map(|(k, opt)| {
            let v = set
                .get(k)
                .cloned()
                .unwrap_or_else(|| opt.get("default").cloned().unwrap_or(Value::Null));
            (k.clone(), v)
        })
        .collect()
}

/// Where charms are staged inside the sandbox home.
pub fn staged_dir(home: &Path, app: &str, rev: u32) -> PathBuf {
    home.join("charms").join(format!("{app}-{rev}"))
}

#[cfg(test)]
mod tests {
    use super::stage;
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use zip::write::SimpleFileOptions;

    enum Z<'a> {
        File(&'a str, u32),
        Link(&'a str, &'a str),
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("charm-stage-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch");
        d
    }

    fn zip_of(dir: &Path, entries: &[Z]) -> PathBuf {
        let path = dir.join("test.charm");
        let mut w = zip::ZipWriter::new(std::fs::File::create(&path).expect("zip"));
        let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for e in entries {
            match e {
                Z::File(name, mode) => {
                    w.start_file(*name, opts.unix_permissions(*mode))
                        .expect("file");
                    w.write_all(b"#!/bin/sh\n").expect("write");
                }
                Z::Link(name, target) => w.add_symlink(*name, *target, opts).expect("link"),
            }
        }
        w.finish().expect("finish");
        path
    }

    fn staged(dir: &Path, entries: &[Z]) -> Result<PathBuf, String> {
        let src = zip_of(dir, entries);
        let dest = dir.join("staged");
        stage(&src, &dest)
            .map(|()| dest)
            .map_err(|e| format!("{e:#}"))
    }

    #[test]
    fn a_zip_symlink_escape_is_refused_before_anything_is_written_through_it() {
        let dir = scratch("escape");
        let err = staged(
            &dir,
            &[Z::Link("lib", "../../.."), Z::File("lib/etc/evil", 0o644)],
        )
        .expect_err("escape");
        assert!(
            err.contains("entry \"lib\" is a symlink that other entries would be written through"),
            "{err}"
        );
        let err = staged(
            &dir,
            &[Z::File("dispatch", 0o755), Z::Link("hooks", "../..")],
        )
        .expect_err("escape");
        assert!(
            err.contains("entry \"hooks\" is a symlink to \"../..\", outside the charm"),
            "{err}"
        );
        for (link, target) in [
            ("x", "/etc/passwd"),
            ("a/b", "../../x"),
            ("y", "hooks/../.."),
        ] {
            let err = staged(&dir, &[Z::Link(link, target)]).expect_err(link);
            assert!(err.contains(&format!("entry {link:?}")), "{err}");
        }
        let err = staged(&dir, &[Z::File("../outside", 0o644)]).expect_err("dotdot");
        assert!(
            err.contains("entry \"../outside\" is not a plain relative path"),
            "{err}"
        );
        assert!(!dir.join("outside").exists() && !dir.join("etc").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn files_and_inside_symlinks_are_staged_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("ok");
        let dest = staged(
            &dir,
            &[
                Z::Link("hooks/install", "../dispatch"),
                Z::File("dispatch", 0o755),
                Z::File("metadata.yaml", 0o644),
                Z::Link("self", "."),
            ],
        )
        .expect("staged");
        let mode = |p: &str| {
            std::fs::symlink_metadata(dest.join(p))
                .expect(p)
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(
            (mode("dispatch"), mode("metadata.yaml"), mode("hooks")),
            (0o700, 0o600, 0o700)
        );
        assert_eq!(
            std::fs::read_link(dest.join("hooks/install")).expect("link"),
            Path::new("../dispatch")
        );
        // A directory charm is copied the same way, its symlinks as they are.
        let again = dir.join("again");
        stage(&dest, &again).expect("dir");
        assert_eq!(
            std::fs::read_link(again.join("self")).expect("link"),
            Path::new(".")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

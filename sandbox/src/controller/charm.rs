//! Charms: unpacking a `.charm` zip or copying a directory, and reading its YAML files.

use super::model::{CharmMeta, EndpointMeta};
use anyhow::{bail, Context};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Unpacks (zip) or copies (dir) the charm at `src` into `dest`, keeping symlinks and exec bits.
pub fn stage(src: &Path, dest: &Path) -> anyhow::Result<()> {
    if dest.exists() {
        std::fs::remove_dir_all(dest)?;
    }
    std::fs::create_dir_all(dest)?;
    if src.is_dir() {
        let st = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", src.display()))
            .arg(dest)
            .status()
            .context("cannot run cp")?;
        if !st.success() {
            bail!("cannot copy the charm from {}", src.display());
        }
        return Ok(());
    }
    let file = std::fs::File::open(src).with_context(|| {
        format!(
            "cannot open charm {}: give a charm directory or a .charm file",
            src.display()
        )
    })?;
    let mut zip = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a .charm (zip) file", src.display()))?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i)?;
        let Some(rel) = entry.enclosed_name() else {
            bail!("unsafe path in charm: {}", entry.name())
        };
        let out = dest.join(rel);
        let mode = entry.unix_mode().unwrap_or(0o644);
        if entry.is_dir() {
            std::fs::create_dir_all(&out)?;
            continue;
        }
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data)?;
        if mode & 0o170000 == 0o120000 {
            std::os::unix::fs::symlink(String::from_utf8_lossy(&data).to_string(), &out)?;
        } else {
            std::fs::write(&out, &data)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&out, std::fs::Permissions::from_mode(mode & 0o7777))?;
        }
    }
    Ok(())
}

fn read_yaml(dir: &Path, name: &str) -> anyhow::Result<Option<Value>> {
    let p = dir.join(name);
    match std::fs::read_to_string(&p) {
        Ok(s) => Ok(Some(serde_yaml::from_str::<Value>(&s).with_context(
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
                    },
                );
            }
        }
    }
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
    Ok(CharmMeta {
        name,
        endpoints,
        resources,
        options,
        actions,
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

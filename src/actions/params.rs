/*!
Every action's parameters, checked again at run time.

Juju validates params against `actions.yaml` when the action is queued; the charm checks them
once more here (an older Juju, a hand-edited `actions.yaml`, a direct `dispatch` run) and fails
the action with a message naming the parameter and what it takes. [`SPECS`] mirrors
`actions.yaml`; a unit test keeps the two in step.
*/

use serde_json::{Map, Value};

/// The type of one parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `type: boolean`.
    Bool,
    /// `type: integer` with `minimum`.
    Int {
        /// The smallest value accepted.
        min: i64,
    },
    /// `type: string`.
    Str,
    /// `type: string` with `enum`.
    OneOf(&'static [&'static str]),
}

/// One parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    /// Its name, e.g. `keep-previous`.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Listed in `required`.
    pub required: bool,
    /// Its default (JSON text), if any.
    pub default: Option<&'static str>,
}

/// One action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionSpec {
    /// The action's name.
    pub name: &'static str,
    /// Its parameters.
    pub params: &'static [ParamSpec],
}

const fn p(name: &'static str, kind: Kind, default: Option<&'static str>) -> ParamSpec {
    ParamSpec {
        name,
        kind,
        required: false,
        default,
    }
}

/// The default snapshot directory (owned by the charm, mode 0700).
pub const SNAPSHOT_DIR: &str = "/var/lib/etcd-charm/snapshots";

/// Every action of the charm, as `actions.yaml` declares it.
pub const SPECS: &[ActionSpec] = &[
    ActionSpec {
        name: "health",
        params: &[],
    },
    ActionSpec {
        name: "member-list",
        params: &[],
    },
    ActionSpec {
        name: "snapshot",
        params: &[p(
            "target",
            Kind::Str,
            Some("\"/var/lib/etcd-charm/snapshots\""),
        )],
    },
    ActionSpec {
        name: "restore",
        params: &[
            p("path", Kind::Str, None),
            p("resource", Kind::Bool, Some("false")),
            p("sha256", Kind::Str, None),
            p("backup-id", Kind::Str, None),
            p("keep-previous", Kind::Bool, Some("true")),
        ],
    },
    ActionSpec {
        name: "compact",
        params: &[
            p("revision", Kind::Int { min: 1 }, None),
            p("physical", Kind::Bool, Some("false")),
        ],
    },
    ActionSpec {
        name: "defrag",
        params: &[p("all", Kind::Bool, Some("false"))],
    },
    ActionSpec {
        name: "alarm-list",
        params: &[],
    },
    ActionSpec {
        name: "alarm-disarm",
        params: &[p(
            "alarm",
            Kind::OneOf(&["all", "nospace", "corrupt"]),
            Some("\"all\""),
        )],
    },
    ActionSpec {
        name: "rebuild-cluster",
        params: &[
            ParamSpec {
                name: "force",
                kind: Kind::Bool,
                required: true,
                default: None,
            },
            p("keep-previous", Kind::Bool, Some("true")),
        ],
    },
    ActionSpec {
        name: "create-backup",
        params: &[],
    },
    ActionSpec {
        name: "list-backups",
        params: &[],
    },
    ActionSpec {
        name: "rotate-ca",
        params: &[],
    },
];

/// The spec of an action, by name.
pub fn spec(name: &str) -> Option<&'static ActionSpec> {
    SPECS.iter().find(|s| s.name == name)
}

/// Validated params, defaults filled in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params(Map<String, Value>);

impl Params {
    /// A boolean param (false when absent).
    pub fn flag(&self, name: &str) -> bool {
        self.0.get(name).and_then(Value::as_bool).unwrap_or(false)
    }

    /// An integer param.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.0.get(name).and_then(Value::as_i64)
    }

    /// A string param; empty counts as absent.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn check(action: &str, p: &ParamSpec, v: &Value) -> Result<Value, String> {
    let bad = |what: &str| {
        format!(
            "parameter {} of {action} must be {what}, got {}",
            p.name,
            shown(v)
        )
    };
    match p.kind {
        Kind::Bool => match v {
            Value::Bool(_) => Ok(v.clone()),
            _ => Err(bad("true or false")),
        },
        Kind::Int { min } => {
            let n = match v {
                Value::Number(n) => n
                    .as_i64()
                    .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
                _ => None,
            };
            match n {
                Some(n) if n >= min => Ok(Value::from(n)),
                _ => Err(bad(&format!("an integer of at least {min}"))),
            }
        }
        Kind::Str => match v {
            Value::String(_) => Ok(v.clone()),
            _ => Err(bad("a string")),
        },
        Kind::OneOf(options) => match v.as_str() {
            Some(s) if options.contains(&s) => Ok(v.clone()),
            _ => Err(bad(&format!("one of {}", options.join(", ")))),
        },
    }
}

/// Checks `raw` (the `action-get` map) against `spec`: unknown keys, types, required params;
/// fills in defaults. The error names the parameter and what it takes.
pub fn validate(spec: &ActionSpec, raw: &Value) -> Result<Params, String> {
    let empty = Map::new();
    let given = match raw {
        Value::Object(m) => m,
        Value::Null => &empty,
        other => return Err(format!("parameters must be a map, got {other}")),
    };
    let takes = || match spec.params.is_empty() {
        true => format!("{} takes no parameters", spec.name),
        false => {
            let names: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
            format!("{} takes {}", spec.name, names.join(", "))
        }
    };
    let mut unknown: Vec<&str> = given
        .keys()
        .filter(|k| !spec.params.iter().any(|p| p.name == k.as_str()))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        unknown.sort();
        return Err(format!(
            "unknown parameter {}: {}",
            unknown.join(", "),
            takes()
        ));
    }
    let mut out = Map::new();
    for p in spec.params {
        match given.get(p.name).filter(|v| !v.is_null()) {
            Some(v) => {
                out.insert(p.name.to_string(), check(spec.name, p, v)?);
            }
            None if p.required => {
                return Err(format!("parameter {} of {} is required", p.name, spec.name))
            }
            None => {
                if let Some(d) = p.default {
                    let d: Value = serde_json::from_str(d).expect("valid default");
                    out.insert(p.name.to_string(), d);
                }
            }
        }
    }
    Ok(Params(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn get(name: &str) -> &'static ActionSpec {
        spec(name).unwrap()
    }

    #[test]
    fn defaults_are_filled() {
        let p = validate(get("restore"), &json!({"path": "/x.db"})).unwrap();
        assert_eq!(p.text("path"), Some("/x.db"));
        assert!(p.flag("keep-previous"));
        assert!(!p.flag("resource"));
        assert_eq!(p.text("sha256"), None);
        let p = validate(get("snapshot"), &json!({})).unwrap();
        assert_eq!(p.text("target"), Some(SNAPSHOT_DIR));
        let p = validate(get("alarm-disarm"), &Value::Null).unwrap();
        assert_eq!(p.text("alarm"), Some("all"));
    }

    #[test]
    fn unknown_keys_wrong_types_and_missing_required_params_are_named() {
        let e = validate(get("snapshot"), &json!({"tagret": "/x"})).unwrap_err();
        assert_eq!(e, "unknown parameter tagret: snapshot takes target");
        let e = validate(get("health"), &json!({"verbose": true})).unwrap_err();
        assert_eq!(e, "unknown parameter verbose: health takes no parameters");
        let e = validate(get("compact"), &json!({"revision": "abc"})).unwrap_err();
        assert_eq!(
            e,
            "parameter revision of compact must be an integer of at least 1, got \"abc\""
        );
        let e = validate(get("compact"), &json!({"revision": 0})).unwrap_err();
        assert!(e.contains("at least 1, got 0"), "{e}");
        let e = validate(get("defrag"), &json!({"all": "yes"})).unwrap_err();
        assert_eq!(
            e,
            "parameter all of defrag must be true or false, got \"yes\""
        );
        let e = validate(get("rebuild-cluster"), &json!({})).unwrap_err();
        assert_eq!(e, "parameter force of rebuild-cluster is required");
        let e = validate(get("alarm-disarm"), &json!({"alarm": "NOSPACE"})).unwrap_err();
        assert!(e.contains("one of all, nospace, corrupt"), "{e}");
    }

    #[test]
    fn integers_given_as_whole_floats_are_accepted() {
        let p = validate(get("compact"), &json!({"revision": 12.0})).unwrap();
        assert_eq!(p.int("revision"), Some(12));
    }

    /// An action in actions.yaml: name, params with their fields, required, closed.
    type YamlAction = (String, Vec<(String, Map<String, Value>)>, Vec<String>, bool);

    /// A tiny reader for the regular layout of actions.yaml: `name:` at column 0, `params:` with
    /// two spaces, each param with four, its `type`/`default`/`enum`/`minimum` with six, and
    /// `required: [..]` / `additionalProperties: false` with two.
    fn yaml_actions(text: &str) -> Vec<YamlAction> {
        let mut out: Vec<YamlAction> = Vec::new();
        let mut in_params = false;
        for line in text.lines() {
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            let (key, value) = line.trim().split_once(':').unwrap_or((line.trim(), ""));
            let value = value.trim();
            match indent {
                0 => {
                    out.push((key.to_string(), Vec::new(), Vec::new(), false));
                    in_params = false;
                }
                2 => {
                    let a = out.last_mut().unwrap();
                    in_params = key == "params";
                    match key {
                        "required" => {
                            a.2 = value
                                .trim_matches(['[', ']'])
                                .split(',')
                                .map(|s| s.trim().to_string())
                                .filter(|s| !s.is_empty())
                                .collect()
                        }
                        "additionalProperties" => a.3 = value == "false",
                        _ => {}
                    }
                }
                4 if in_params => out
                    .last_mut()
                    .unwrap()
                    .1
                    .push((key.to_string(), Map::new())),
                6 if in_params => {
                    let v: Value = match key {
                        "enum" => Value::Array(
                            value
                                .trim_matches(['[', ']'])
                                .split(',')
                                .map(|s| Value::from(s.trim()))
                                .collect(),
                        ),
                        _ => serde_json::from_str(value).unwrap_or(Value::from(value)),
                    };
                    let params = &mut out.last_mut().unwrap().1;
                    params.last_mut().unwrap().1.insert(key.to_string(), v);
                }
                _ => {}
            }
        }
        out
    }

    #[test]
    fn actions_yaml_matches_the_specs() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/actions.yaml");
        let yaml = yaml_actions(&std::fs::read_to_string(path).unwrap());
        let names: Vec<&str> = yaml.iter().map(|a| a.0.as_str()).collect();
        let specs: Vec<&str> = SPECS.iter().map(|s| s.name).collect();
        assert_eq!(names, specs, "actions in actions.yaml vs SPECS");
        for (name, params, required, closed) in &yaml {
            let spec = get(name);
            assert!(closed, "{name}: additionalProperties: false is missing");
            let yaml_names: Vec<&str> = params.iter().map(|p| p.0.as_str()).collect();
            let spec_names: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
            assert_eq!(yaml_names, spec_names, "{name}: params");
            for (pname, fields) in params {
                let p = spec.params.iter().find(|p| p.name == pname).unwrap();
                let ty = fields["type"].as_str().unwrap();
                let want = match p.kind {
                    Kind::Bool => "boolean",
                    Kind::Int { min } => {
                        assert_eq!(fields["minimum"], json!(min), "{name}.{pname}: minimum");
                        "integer"
                    }
                    Kind::Str => "string",
                    Kind::OneOf(options) => {
                        assert_eq!(fields["enum"], json!(options), "{name}.{pname}: enum");
                        "string"
                    }
                };
                assert_eq!(ty, want, "{name}.{pname}: type");
                let default = p.default.map(|d| serde_json::from_str::<Value>(d).unwrap());
                assert_eq!(
                    fields.get("default").cloned(),
                    default,
                    "{name}.{pname}: default"
                );
                assert!(
                    fields.contains_key("description"),
                    "{name}.{pname}: description"
                );
                assert_eq!(
                    required.contains(pname),
                    p.required,
                    "{name}.{pname}: required"
                );
            }
        }
    }

    #[test]
    fn every_action_has_its_link() {
        for s in SPECS {
            let link = format!("{}/actions/{}", env!("CARGO_MANIFEST_DIR"), s.name);
            let target = std::fs::read_link(&link).unwrap_or_else(|e| panic!("{link}: {e}"));
            assert_eq!(target.to_str(), Some("../bin/etcd-charm"), "{link}");
        }
    }
}

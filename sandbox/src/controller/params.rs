//! Action params: checked against the charm's actions.yaml schema when queued, defaults filled
//! in, as Juju does at enqueue time.

use serde_json::{Map, Value};

/// Validates `params` for `action` against its actions.yaml entry and fills in defaults.
pub fn validate(action: &str, spec: &Value, params: &Value) -> Result<Value, String> {
    let empty = Map::new();
    let given = params.as_object().unwrap_or(&empty);
    let props = spec["params"].as_object().cloned().unwrap_or_default();
    let schema = Value::Object(Map::from_iter([
        ("type".to_string(), Value::from("object")),
        ("properties".to_string(), Value::Object(props)),
        (
            "required".to_string(),
            spec.get("required")
                .cloned()
                .unwrap_or(Value::Array(vec![])),
        ),
        (
            "additionalProperties".to_string(),
            spec.get("additionalProperties")
                .cloned()
                .unwrap_or(Value::Bool(true)),
        ),
    ]));
    let filled = fill_defaults(&schema, &Value::Object(given.clone()));
    check(&schema, &filled, "")
        .map_err(|e| format!("validation failed for action {action:?}: {e}"))?;
    Ok(filled)
}

fn fill_defaults(schema: &Value, v: &Value) -> Value {
    let (Some(props), Some(obj)) = (schema["properties"].as_object(), v.as_object()) else {
        return v.clone();
    };
    let mut out = obj.clone();
    for (k, s) in props {
        match out.get(k) {
            Some(sub) => {
                let sub = fill_defaults(s, sub);
                out.insert(k.clone(), sub);
            }
            None => {
                if let Some(d) = s.get("default") {
                    out.insert(k.clone(), d.clone());
                }
            }
        }
    }
    Value::Object(out)
}

fn type_ok(ty: &str, v: &Value) -> bool {
    match ty {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "null" => v.is_null(),
        _ => true,
    }
}

fn check(schema: &Value, v: &Value, path: &str) -> Result<(), String> {
    let at = if path.is_empty() {
        "(root)".to_string()
    } else {
        path.to_string()
    };
    match &schema["type"] {
        Value::String(t) if !type_ok(t, v) => {
            return Err(format!("{at}: expected {t}, given {}", kind(v)))
        }
        Value::Array(ts) if !ts.iter().any(|t| type_ok(t.as_str().unwrap_or(""), v)) => {
            return Err(format!("{at}: expected one of {ts:?}, given {}", kind(v)))
        }
        _ => {}
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(v) {
            return Err(format!(
                "{at}: must be one of {}",
                Value::Array(options.clone())
            ));
        }
    }
    if let Some(n) = v.as_f64() {
        if schema["minimum"].as_f64().is_some_and(|m| n < m) {
            return Err(format!(
                "{at}: must be greater than or equal to {}",
                schema["minimum"]
            ));
        }
        if schema["maximum"].as_f64().is_some_and(|m| n > m) {
            return Err(format!(
                "{at}: must be less than or equal to {}",
                schema["maximum"]
            ));
        }
    }
    if let Some(s) = v.as_str() {
        if schema["minLength"]
            .as_u64()
            .is_some_and(|m| (s.chars().count() as u64) < m)
        {
            return Err(format!(
                "{at}: string length must be at least {}",
                schema["minLength"]
            ));
        }
    }
    if let Some(obj) = v.as_object() {
        let props = schema["properties"].as_object();
        for r in schema["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap_or_default();
            if !obj.contains_key(r) {
                return Err(format!("{r} is required"));
            }
        }
        for (k, sub) in obj {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            match props.and_then(|m| m.get(k)) {
                Some(s) => check(s, sub, &p)?,
                None if schema["additionalProperties"] == Value::Bool(false) => {
                    return Err(format!("additional property \"{k}\" is not allowed"))
                }
                None => {}
            }
        }
    }
    Ok(())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> Value {
        json!({"params": {"target": {"type": "string", "default": "/x"}, "n": {"type": "integer", "minimum": 1}},
               "required": ["n"], "additionalProperties": false})
    }

    #[test]
    fn fills_defaults_and_accepts_good_params() {
        assert_eq!(
            validate("a", &spec(), &json!({"n": 2})).unwrap(),
            json!({"n": 2, "target": "/x"})
        );
    }

    #[test]
    fn rejects_unknown_missing_and_mistyped() {
        assert!(validate("a", &spec(), &json!({"n": 2, "zzz": 1}))
            .unwrap_err()
            .contains("\"zzz\" is not allowed"));
        assert!(validate("a", &spec(), &json!({}))
            .unwrap_err()
            .contains("n is required"));
        assert!(validate("a", &spec(), &json!({"n": "two"}))
            .unwrap_err()
            .contains("n: expected integer"));
        assert!(validate("a", &spec(), &json!({"n": 0}))
            .unwrap_err()
            .contains("greater than or equal"));
    }
}

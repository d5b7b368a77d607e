//! The `secret-*` tools of Juju 3.x (juju/juju `jujuc/secret-add.go`, `secret-set.go`,
//! `secret-get.go`, `secret-info-get.go`, `secret-ids.go`, `secret-grant.go`, `secret-revoke.go`,
//! `secret-remove.go`; content rules of `core/secrets/createsecret.go`). Arguments are checked
//! here as each command's `Init` does (exit 2); the environment answers the rest (exit 1).
//! Values can come from files (`key#file=path`, `--file path`, `-` for standard input), which
//! the client reads, so they never need to be on a command line.

use super::args::{go_quote, Check, Flag};
use super::format::{Field, Out};
use super::{check_empty, checked, fail, switch, usage, value, Call, Fail, Res, Tool, RELATION};
use crate::secrets::{parse_id, Answer, Call as Req, Content, Meta, Target, ROTATE_POLICIES};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use std::collections::BTreeMap;

/// `--format yaml|json` (default yaml), as the secret tools take it.
const YAML_FORMAT: Flag = checked(
    &["format"],
    Check::YamlJson,
    "yaml",
    "Specify output format (json|yaml)",
);
const OUTPUT: Flag = super::OUTPUT;
const LABEL: Flag = value(
    &["label"],
    "",
    "a label used to identify the secret in hooks",
);

/// Flags `secret-add` and `secret-set` share (`secretUpsertCommand`).
const UPSERT: &[Flag] = &[
    value(&["file"], "", "a YAML file containing secret key values"),
    LABEL,
    value(&["description"], "", "the secret description"),
    value(
        &["expire"],
        "",
        "either a duration or time when the secret should expire",
    ),
    value(&["rotate"], "", "the secret rotation policy"),
    value(
        &["owner"],
        "application",
        "the owner of the secret, either the application or unit",
    ),
];

/// Largest value, and largest whole secret, in bytes (Juju 3.3.3 to 3.6.9).
const MAX_VALUE: usize = 8 * 1024;
const MAX_SECRET: usize = 64 * 1024;

/// The secret tools.
pub(crate) const TOOLS: &[Tool] = &[
    Tool {
        name: "secret-add",
        args: "[key[#base64|#file]=value...]",
        purpose: "add a new secret",
        flags: UPSERT,
        run: secret_add,
    },
    Tool {
        name: "secret-set",
        args: "<ID> [key[#base64|#file]=value...]",
        purpose: "update an existing secret",
        flags: UPSERT,
        run: secret_set,
    },
    Tool {
        name: "secret-get",
        args: "<ID> [key[#base64]]",
        purpose: "get the content of a secret",
        flags: &[
            YAML_FORMAT,
            OUTPUT,
            LABEL,
            switch(&["peek"], "get the latest revision just this time"),
            switch(
                &["refresh"],
                "get the latest revision and also get this same revision for subsequent calls",
            ),
        ],
        run: secret_get,
    },
    Tool {
        name: "secret-info-get",
        args: "<ID>",
        purpose: "get a secret's metadata info",
        flags: &[
            YAML_FORMAT,
            OUTPUT,
            value(&["label"], "", "a label used to identify the secret"),
        ],
        run: secret_info_get,
    },
    Tool {
        name: "secret-ids",
        args: "",
        purpose: "print secret ids",
        flags: &[super::FORMAT, OUTPUT],
        run: secret_ids,
    },
    Tool {
        name: "secret-grant",
        args: "<ID>",
        purpose: "grant access to a secret",
        flags: &[RELATION, value(&["unit"], "", "the unit to grant access")],
        run: secret_grant,
    },
    Tool {
        name: "secret-revoke",
        args: "<ID>",
        purpose: "revoke access to a secret",
        flags: &[
            RELATION,
            value(
                &["app", "application"],
                "",
                "the application to revoke access",
            ),
            value(&["unit"], "", "the unit to revoke access"),
        ],
        run: secret_revoke,
    },
    Tool {
        name: "secret-remove",
        args: "<ID>",
        purpose: "remove an existing secret",
        flags: &[value(&["revision"], "0", "remove the specified revision")],
        run: secret_remove,
    },
];

/// Juju's key rule: `^([a-z](?:-?[a-z0-9]){2,})$`.
fn valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_lowercase) {
        return false;
    }
    let (mut groups, mut i) = (0, 1);
    while i < b.len() {
        if b[i] == b'-' {
            i += 1;
        }
        match b.get(i) {
            Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit() => groups += 1,
            _ => return false,
        }
        i += 1;
    }
    groups >= 2
}

/// Checks a key (without its suffix) and stores the value: as given for `#base64`, else encoded.
fn put(content: &mut Content, key: &str, value: &[u8]) -> Result<(), Fail> {
    let (key, encoded) = match key.strip_suffix("#base64") {
        Some(k) => (k, String::from_utf8_lossy(value).into_owned()),
        None => (key, B64.encode(value)),
    };
    if !valid_key(key) {
        return Err(usage(format!("key {} not valid", go_quote(key))));
    }
    content.insert(key.to_string(), encoded);
    Ok(())
}

/// `CreateSecretData` over the arguments, then the `--file` map over them (it wins), then the
/// size limits.
fn content(c: &Call, args: &[String]) -> Result<Content, Fail> {
    let mut out = Content::new();
    for arg in args {
        // The base64 padding is cut before looking for the `=` (a `key=` is no pair).
        let stripped = arg.trim_end_matches('=');
        let Some(idx) = stripped.find('=').filter(|i| *i > 0) else {
            return Err(usage(format!("key value {} not valid", go_quote(arg))));
        };
        let (key, val) = (&arg[..idx], &arg[idx + 1..]);
        match key.strip_suffix("#file") {
            Some(k) => put(&mut out, k, client_file(c, val)?)?,
            None => put(&mut out, key, val.as_bytes())?,
        }
    }
    if let Some(path) = c.flags.value("file").filter(|p| !p.is_empty()) {
        let data = client_file(c, path)?;
        let map: BTreeMap<String, serde_json::Value> = serde_yaml_ng::from_slice(data)
            .map_err(|e| usage(format!("cannot read secret data from {path}: {e}")))?;
        for (k, v) in map {
            let text = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => String::new(),
                other => super::json_to_yaml(&other).trim_end().to_string(),
            };
            put(&mut out, &k, text.as_bytes())?;
        }
    }
    let mut total = 0;
    for (k, v) in &out {
        let raw = B64.decode(v).map(|d| d.len()).unwrap_or(v.len());
        if raw > MAX_VALUE {
            return Err(usage(format!(
                "secret content for key {} too large: {raw} bytes",
                go_quote(k)
            )));
        }
        total += raw;
    }
    if total > MAX_SECRET {
        return Err(usage(format!("secret content too large: {total} bytes")));
    }
    Ok(out)
}

/// A file the client read for this call (`-` is standard input).
fn client_file<'a>(c: &'a Call, path: &str) -> Result<&'a [u8], Fail> {
    c.files
        .get(path)
        .map(Vec::as_slice)
        .ok_or_else(|| usage(format!("open {path}: no such file or directory")))
}

/// `--label`, `--description`, `--expire`, `--rotate` and `--owner`, checked as
/// `secretUpsertCommand.Init` does; answers the metadata and whether the unit owns it.
fn meta(c: &Call, now: f64) -> Result<(Meta, bool), Fail> {
    let given = |k: &str| c.flags.value(k).filter(|v| !v.is_empty()).map(String::from);
    let expire = match given("expire") {
        None => None,
        Some(spec) => Some(expire_time(&spec, now)?),
    };
    let rotate = given("rotate");
    if let Some(r) = &rotate {
        if !ROTATE_POLICIES.iter().any(|(p, _)| p == r) {
            return Err(usage(format!("rotate policy {} not valid", go_quote(r))));
        }
    }
    let owner = c.flags.value("owner").unwrap_or("application");
    if owner != "application" && owner != "unit" {
        return Err(usage(format!("secret owner {} not valid", go_quote(owner))));
    }
    let m = Meta {
        label: given("label"),
        description: given("description"),
        expire,
        rotate,
    };
    Ok((m, owner == "unit"))
}

/// `--expire`: RFC 3339, `2006-01-02T15:04:05` (UTC), or a Go duration from now.
fn expire_time(spec: &str, now: f64) -> Result<f64, Fail> {
    use time::format_description::well_known::Rfc3339;
    let rfc = |s: &str| time::OffsetDateTime::parse(s, &Rfc3339).ok();
    if let Some(t) = rfc(spec).or_else(|| rfc(&format!("{spec}Z"))) {
        return Ok(t.unix_timestamp() as f64);
    }
    match go_duration(spec) {
        Some(d) if d > 0.0 => Ok(now + d),
        Some(_) => Err(usage(format!(
            "negative expire duration {} not valid",
            go_quote(spec)
        ))),
        None => Err(usage(format!(
            "expire time or duration {} not valid",
            go_quote(spec)
        ))),
    }
}

/// Go's `time.ParseDuration`, in seconds.
fn go_duration(s: &str) -> Option<f64> {
    let (sign, mut rest) = match s.strip_prefix('-') {
        Some(r) => (-1.0, r),
        None => (1.0, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0.0);
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .filter(|n| *n > 0)?;
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += num * scale;
        rest = &rest[unit..];
    }
    Some(sign * total)
}

/// The environment's answer to a request; its error is a run-time failure.
fn ask(c: &mut Call, req: Req) -> Result<Answer, Fail> {
    Ok(c.env.secret(req)?)
}

/// The secret id argument, parsed as `ParseURI` does.
fn id_arg(arg: Option<&String>) -> Result<String, Fail> {
    let id = arg.ok_or_else(|| usage("missing secret URI"))?;
    parse_id(id).map_err(Fail::Usage)?;
    Ok(id.clone())
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn secret_add(c: &mut Call) -> Res {
    if c.args().is_empty() && c.flags.value("file").is_none_or(str::is_empty) {
        return Err(usage("missing secret value or filename"));
    }
    let (meta, unit_owned) = meta(c, now())?;
    let args = c.args().to_vec();
    let content = content(c, &args)?;
    if content.is_empty() {
        return Err(fail("empty secret value not valid"));
    }
    let req = Req::Add {
        content,
        meta,
        unit_owned,
    };
    if let Answer::Uri(uri) = ask(c, req)? {
        c.out.stdout.extend(format!("{uri}\n").into_bytes());
    }
    Ok(())
}

/// `--owner` is taken and ignored, as Juju's `secret-set` does.
fn secret_set(c: &mut Call) -> Res {
    let id = id_arg(c.args().first())?;
    let (meta, _) = meta(c, now())?;
    let args = c.args()[1..].to_vec();
    let has_file = c.flags.value("file").is_some_and(|f| !f.is_empty());
    let content = if args.is_empty() && !has_file {
        None
    } else {
        Some(content(c, &args)?)
    };
    ask(c, Req::Set { id, content, meta })?;
    Ok(())
}

/// The optional id argument (checked) and `--label`.
fn target(c: &Call) -> Result<Target, Fail> {
    let id = match c.args().first() {
        Some(a) => Some(id_arg(Some(a))?),
        None => None,
    };
    let label = c.flags.value("label").filter(|l| !l.is_empty());
    Ok(Target {
        id,
        label: label.map(String::from),
    })
}

fn secret_get(c: &mut Call) -> Res {
    let args = c.args().to_vec();
    let Target { id, label } = target(c)?;
    if id.is_none() && label.is_none() {
        return Err(usage("require either a secret URI or label"));
    }
    let (peek, refresh) = (c.flags.on("peek"), c.flags.on("refresh"));
    if peek && refresh {
        return Err(usage("specify one of --peek or --refresh but not both"));
    }
    let key = args.get(1).cloned();
    check_empty(args.get(2..).unwrap_or_default())?;
    let req = Req::Get {
        target: Target { id, label },
        peek,
        refresh,
    };
    let Answer::Content(content) = ask(c, req)? else {
        return Ok(());
    };
    let decode =
        |v: &String| String::from_utf8_lossy(&B64.decode(v).unwrap_or_default()).into_owned();
    let out = match key {
        None => Out::Map(
            content
                .iter()
                .map(|(k, v)| (k.clone(), Out::Str(decode(v))))
                .collect(),
        ),
        Some(k) => {
            let (name, raw) = match k.strip_suffix("#base64") {
                Some(n) => (n, true),
                None => (k.as_str(), false),
            };
            let v = content
                .get(name)
                .ok_or_else(|| fail(format!("secret key value {} not found", go_quote(name))))?;
            Out::Str(if raw { v.clone() } else { decode(v) })
        }
    };
    c.write(Some(out))
}

/// Go's `time.Time` as yaml.v2 and encoding/json print it (RFC 3339, UTC).
fn rfc3339(t: f64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp(t as i64)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn secret_info_get(c: &mut Call) -> Res {
    let args = c.args().to_vec();
    let Target { id, label } = target(c)?;
    match (&id, &label) {
        (None, None) => return Err(usage("require either a secret URI or label")),
        (Some(_), Some(_)) => {
            return Err(usage("specify either a secret URI or label but not both"))
        }
        _ => {}
    }
    check_empty(args.get(1..).unwrap_or_default())?;
    let Answer::Info(id, info) = ask(c, Req::Info(Target { id, label }))? else {
        return Ok(());
    };
    let field = |name: &'static str, value: Out| Field {
        json: name,
        yaml: name,
        value,
    };
    let mut fields = vec![
        field("revision", Out::Int(i64::from(info.revision))),
        field("label", Out::Str(info.label)),
        field("owner", Out::Str(info.owner)),
    ];
    // `omitempty` fields.
    let text = |s: String| Some(s).filter(|s| !s.is_empty()).map(Out::Str);
    let time = |t: Option<f64>| t.map(|t| Out::Time(rfc3339(t)));
    let optional = [
        ("description", text(info.description)),
        ("rotation", text(info.rotation)),
        ("expiry", time(info.expiry)),
        ("rotates", time(info.rotates)),
    ];
    for (name, v) in optional {
        fields.extend(v.map(|v| field(name, v)));
    }
    if !info.access.is_empty() {
        let grants = info.access.into_iter().map(|(target, scope)| {
            Out::Struct(vec![
                field("target", Out::Str(target)),
                field("scope", Out::Str(scope)),
                field("role", Out::Str("view".into())),
            ])
        });
        fields.push(field("access", Out::List(grants.collect())));
    }
    c.write(Some(Out::Map(vec![(id, Out::Struct(fields))])))
}

/// Juju prints a nil slice when there are none: nothing (smart), `[]` (yaml), `null` (json).
fn secret_ids(c: &mut Call) -> Res {
    check_empty(c.args())?;
    let Answer::Ids(ids) = ask(c, Req::Ids)? else {
        return Ok(());
    };
    if ids.is_empty() && c.format() == "json" {
        return c.write(None);
    }
    c.write(Some(Out::Strings(ids)))
}

fn secret_grant(c: &mut Call) -> Res {
    let id = id_arg(c.args().first())?;
    check_empty(&c.args()[1..])?;
    let relation = c.need_relation()?;
    let unit = c
        .flags
        .value("unit")
        .filter(|u| !u.is_empty())
        .map(String::from);
    if let Some(u) = &unit {
        if !valid_unit(u) {
            return Err(usage(format!("unit {} not valid", go_quote(u))));
        }
        let app = c.env.relation_remote_app(relation)?;
        if u.split('/').next() != Some(app.as_str()) {
            return Err(usage(format!(
                "cannot specify unit {} in relation to application {}",
                go_quote(u),
                go_quote(&app)
            )));
        }
    }
    ask(c, Req::Grant { id, relation, unit })?;
    Ok(())
}

/// `app/N`, as `names.IsValidUnit` takes it.
fn valid_unit(u: &str) -> bool {
    u.split_once('/').is_some_and(|(a, n)| {
        !a.is_empty()
            && a.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
    })
}

fn secret_revoke(c: &mut Call) -> Res {
    let id = id_arg(c.args().first())?;
    check_empty(&c.args()[1..])?;
    let given = |k: &str| c.flags.value(k).filter(|v| !v.is_empty()).map(String::from);
    let (app, unit, explicit_rel) = (given("app"), given("unit"), given("r").is_some());
    if app.is_some() && unit.is_some() {
        return Err(usage("specify only one of application or unit"));
    }
    if app.is_some() && explicit_rel {
        return Err(usage("do not specify both relation and app"));
    }
    let grantee = match (app, unit) {
        (Some(a), _) => a,
        (_, Some(u)) => u,
        _ if c.relation != -1 => c.env.relation_remote_app(c.relation)?,
        _ => return Err(usage("missing relation or application or unit")),
    };
    ask(c, Req::Revoke { id, grantee })?;
    Ok(())
}

fn secret_remove(c: &mut Call) -> Res {
    let id = id_arg(c.args().first())?;
    check_empty(&c.args()[1..])?;
    let text = c.flags.value("revision").unwrap_or("0");
    let revision: u32 = text.parse().map_err(|_| {
        usage(format!(
            "invalid value {} for option --revision: strconv.ParseInt: parsing {}: invalid syntax",
            go_quote(text),
            go_quote(text)
        ))
    })?;
    let revision = (revision > 0).then_some(revision);
    ask(c, Req::Remove { id, revision })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{go_duration, valid_key};

    #[test]
    fn keys_follow_juju_s_rule() {
        for ok in ["abc", "tls-cert", "a1b", "a-b-c", "token"] {
            assert!(valid_key(ok), "{ok}");
        }
        for bad in ["ca", "tls_cert", "Token", "a.b", "key-", "1ab", "a--b", ""] {
            assert!(!valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn durations_as_go_parses_them() {
        assert_eq!(go_duration("24h"), Some(86400.0));
        assert_eq!(go_duration("1h30m"), Some(5400.0));
        assert_eq!(go_duration("-1h"), Some(-3600.0));
        assert_eq!(go_duration("500ms"), Some(0.5));
        assert_eq!(go_duration("x"), None);
        assert_eq!(go_duration("10"), None);
    }
}

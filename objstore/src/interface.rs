//! The s3 interface's provider data (`s3-credentials`, plain-key form, as s3-integrator writes
//! it in its application databag) as a [`Config`] and a key prefix.

use crate::{Config, Error, UrlStyle};
use std::collections::BTreeMap;

/// What a requirer needs from the provider's databag.
#[derive(Debug, Clone)]
pub struct S3Info {
    /// The store and credentials.
    pub config: Config,
    /// The `path` (key prefix), slashes trimmed; empty when the provider sent none.
    pub path: String,
}

/// Reads the provider's application databag. Strings are trimmed, `endpoint` loses trailing
/// slashes, `bucket` and `path` their slashes (as charmed-etcd does); `tls-ca-chain` is a JSON
/// list of PEM strings. Missing required keys are named in the error.
pub fn from_databag(data: &BTreeMap<String, String>) -> Result<S3Info, Error> {
    let get = |k: &str| {
        data.get(k)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let missing: Vec<&str> = ["access-key", "secret-key", "bucket", "endpoint"]
        .into_iter()
        .filter(|k| get(k).is_empty())
        .collect();
    if !missing.is_empty() {
        return Err(Error::Config(format!(
            "the s3-credentials relation has no {} yet: set them on the s3 provider (s3-integrator)",
            missing.join(", ")
        )));
    }
    let ca = get("tls-ca-chain");
    let ca_chain = if ca.is_empty() {
        vec![]
    } else {
        serde_json::from_str::<Vec<String>>(&ca).map_err(|_| {
            Error::Config(
                "tls-ca-chain on the s3-credentials relation is not a JSON list of PEM strings"
                    .into(),
            )
        })?
    };
    Ok(S3Info {
        config: Config {
            endpoint: get("endpoint").trim_end_matches('/').to_string(),
            bucket: get("bucket").trim_matches('/').to_string(),
            region: get("region"),
            url_style: UrlStyle::from_interface(&get("s3-uri-style"))?,
            access_key: get("access-key"),
            secret_key: get("secret-key"),
            ca_chain,
        },
        path: get("path").trim_matches('/').to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bag(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_plain_key_form_is_normalised() {
        let info = from_databag(&bag(&[
            ("access-key", " GK1 "),
            ("secret-key", "s"),
            ("bucket", "/b/"),
            ("endpoint", "http://10.0.0.5:3900/"),
            ("region", "garage"),
            ("path", "/etcd/backups/"),
            ("s3-uri-style", "host"),
            (
                "tls-ca-chain",
                r#"["-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----"]"#,
            ),
        ]))
        .unwrap();
        let c = &info.config;
        assert_eq!(
            (
                c.access_key.as_str(),
                c.bucket.as_str(),
                c.endpoint.as_str()
            ),
            ("GK1", "b", "http://10.0.0.5:3900")
        );
        assert_eq!(
            (info.path.as_str(), c.url_style),
            ("etcd/backups", UrlStyle::VirtualHost)
        );
        assert_eq!(c.ca_chain.len(), 1);
    }

    #[test]
    fn missing_keys_are_named_and_a_bad_ca_chain_refused() {
        let e = from_databag(&bag(&[("bucket", "b"), ("secret-key", " ")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "object store configuration: the s3-credentials relation has no access-key, \
             secret-key, endpoint yet: set them on the s3 provider (s3-integrator)"
        );
        let e = from_databag(&bag(&[
            ("access-key", "a"),
            ("secret-key", "s"),
            ("bucket", "b"),
            ("endpoint", "e"),
            ("tls-ca-chain", "PEM"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("not a JSON list"), "{e}");
    }
}

//! What went wrong, in words an operator can act on. No variant holds a URL (they carry
//! signatures) or a secret.

use std::path::Path;

/// An object-store failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot work; nothing was sent.
    #[error("object store configuration: {0}")]
    Config(String),
    /// No connection, or no answer in time.
    #[error("the object store at {endpoint} is unreachable ({cause}): check the endpoint and that the store runs and is reachable from this machine")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The transport's words.
        cause: String,
    },
    /// The TLS handshake failed.
    #[error("TLS with the object store at {endpoint} failed ({cause}): check that the endpoint is https and that tls-ca-chain holds the CA of its certificate")]
    Tls {
        /// The endpoint.
        endpoint: String,
        /// rustls' words.
        cause: String,
    },
    /// The store refused the credentials or their permissions.
    #[error("the object store at {endpoint} refused the credentials ({detail}): check access-key and secret-key, and that the key may read and write bucket `{bucket}`")]
    Credentials {
        /// The endpoint.
        endpoint: String,
        /// The bucket.
        bucket: String,
        /// The store's code and message.
        detail: String,
    },
    /// The signature was made for another region than the bucket's.
    #[error("the object store at {endpoint} says the region is wrong ({detail}): set region to the bucket's region")]
    Region {
        /// The endpoint.
        endpoint: String,
        /// The store's code and message.
        detail: String,
    },
    /// The bucket does not exist.
    #[error("bucket `{bucket}` does not exist at {endpoint}: create it, or set bucket to an existing one")]
    NoSuchBucket {
        /// The endpoint.
        endpoint: String,
        /// The bucket.
        bucket: String,
    },
    /// The object does not exist.
    #[error("object `{key}` does not exist in bucket `{bucket}`")]
    NotFound {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// Content and checksum disagree, at the store or after a transfer; nothing was kept.
    #[error("object `{key}` failed its integrity check: {detail}")]
    Verify {
        /// The key.
        key: String,
        /// What differed.
        detail: String,
    },
    /// Any other error answer.
    #[error("the object store at {endpoint} answered {status} {code} for `{key}`: {message}")]
    Status {
        /// The endpoint.
        endpoint: String,
        /// The key (or prefix) of the request.
        key: String,
        /// The HTTP status.
        status: u16,
        /// The S3 error code, if any.
        code: String,
        /// The store's message.
        message: String,
    },
    /// An answer that is not S3's.
    #[error("{0}: check that the endpoint is an S3 API")]
    Protocol(String),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// The error for an S3 error answer (`message` already free of the access key).
    pub(crate) fn from_s3(
        status: u16,
        code: &str,
        message: &str,
        endpoint: &str,
        bucket: &str,
        key: &str,
    ) -> Error {
        let detail = match (code, message) {
            ("", "") => format!("HTTP {status}"),
            ("", m) => format!("HTTP {status}: {m}"),
            (c, "") => c.to_string(),
            (c, m) => format!("{c}: {m}"),
        };
        let endpoint = endpoint.to_string();
        match code {
            "NoSuchBucket" => Error::NoSuchBucket {
                endpoint,
                bucket: bucket.into(),
            },
            "NoSuchKey" => Error::NotFound {
                bucket: bucket.into(),
                key: key.into(),
            },
            "AuthorizationHeaderMalformed"
            | "AuthorizationQueryParametersError"
            | "InvalidRegion"
            | "PermanentRedirect" => Error::Region { endpoint, detail },
            "BadDigest" | "InvalidDigest" | "XAmzContentSHA256Mismatch" => Error::Verify {
                key: key.into(),
                detail: format!("the store refused the content ({detail})"),
            },
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "AccessDenied"
            | "InvalidToken"
            | "ExpiredToken"
            | "InvalidSecurity" => Error::Credentials {
                endpoint,
                bucket: bucket.into(),
                detail,
            },
            _ if status == 401 || status == 403 => Error::Credentials {
                endpoint,
                bucket: bucket.into(),
                detail,
            },
            _ if status == 404 && code.is_empty() => Error::NotFound {
                bucket: bucket.into(),
                key: key.into(),
            },
            _ => Error::Status {
                endpoint,
                key: key.into(),
                status,
                code: code.into(),
                message: message.into(),
            },
        }
    }

    /// The error for a request that got no answer.
    pub(crate) fn from_transport(e: reqwest::Error, endpoint: &str, key: &str) -> Error {
        let e = e.without_url();
        let cause = causes(&e);
        let endpoint = endpoint.to_string();
        if tls_failure(&e) {
            Error::Tls { endpoint, cause }
        } else if e.is_connect() || e.is_timeout() {
            Error::Unreachable { endpoint, cause }
        } else {
            Error::Status {
                endpoint,
                key: key.into(),
                status: 0,
                code: "transport".into(),
                message: cause,
            }
        }
    }
}

/// `e` and its sources, outermost first. An `io::Error` is followed by the error it wraps: its
/// own `source` skips that one.
fn chain<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        out.push(err);
        cur = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    out
}

/// The error and its sources, innermost last, without repeats.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for err in chain(e) {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// Whether a rustls error is among `e`'s sources.
fn tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    chain(e).iter().any(|err| err.is::<rustls::Error>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(status: u16, code: &str) -> Error {
        Error::from_s3(status, code, "msg", "http://h:1", "b", "p/k")
    }

    #[test]
    fn codes_map_to_what_the_operator_must_fix() {
        assert!(matches!(
            s3(404, "NoSuchBucket"),
            Error::NoSuchBucket { .. }
        ));
        assert!(matches!(s3(404, "NoSuchKey"), Error::NotFound { .. }));
        assert!(matches!(
            s3(403, "InvalidAccessKeyId"),
            Error::Credentials { .. }
        ));
        assert!(matches!(
            s3(403, "SignatureDoesNotMatch"),
            Error::Credentials { .. }
        ));
        assert!(matches!(s3(403, ""), Error::Credentials { .. }));
        assert!(matches!(
            s3(400, "AuthorizationHeaderMalformed"),
            Error::Region { .. }
        ));
        assert!(matches!(s3(400, "BadDigest"), Error::Verify { .. }));
        assert!(matches!(s3(404, ""), Error::NotFound { .. }));
        assert!(matches!(
            s3(500, "InternalError"),
            Error::Status { status: 500, .. }
        ));
    }

    #[test]
    fn messages_say_what_to_do() {
        let m = s3(403, "AccessDenied").to_string();
        assert!(m.contains("check access-key and secret-key"), "{m}");
        assert!(m.contains("AccessDenied: msg"), "{m}");
        let m = s3(404, "NoSuchBucket").to_string();
        assert_eq!(
            m,
            "bucket `b` does not exist at http://h:1: create it, or set bucket to an existing one"
        );
    }

    #[test]
    fn tls_errors_are_found_inside_io_errors() {
        let inner = std::io::Error::other(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        assert!(tls_failure(&inner));
        assert!(tls_failure(&std::io::Error::other(inner)));
        assert!(!tls_failure(&std::io::Error::other("refused")));
    }

    #[test]
    fn causes_are_joined_once() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "connect error")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("Connection refused"));
        assert_eq!(causes(&e), "connect error: Connection refused");
    }
}

//! A small S3 client for the etcd charm's backups, on reqwest (rustls, ring) and rusty-s3's
//! SigV4 signing.
//!
//! It does what a backup needs and no more: put an object from a file (one `PUT` up to
//! [`Store::part_size`], multipart above), get an object to a file, list a prefix
//! (ListObjectsV2, every page), head and delete; path-style or virtual-host addressing, any
//! region, an optional CA chain (the s3 interface's `tls-ca-chain`). It runs on any tokio
//! runtime, the charm's current-thread one included; file IO is plain blocking IO between
//! requests, one part at a time, so memory stays at one part whatever the file's size.
//! [`interface::from_databag`] turns the s3 interface's provider data into a [`Config`].
//!
//! **Integrity.** Every request body is sent with its `Content-MD5` as a signed header, so the
//! store itself refuses a body that changed on the way (`BadDigest`). Each object also carries
//! the SHA-256 of the whole file as the user metadata `x-amz-meta-sha256`. After an upload
//! [`Store::put_file`] reads the object's metadata back (`HEAD`) and requires the file's size and
//! SHA-256 there; [`Store::get_file`] hashes what it receives and keeps the file only when it
//! matches that SHA-256 and size, so a corrupt or foreign object never lands at the destination
//! path. ETags are not compared: they are MD5s only on some stores and without SSE-KMS.
//!
//! **Secrets.** Requests are signed in the query string, and those URLs never reach an error or
//! a log (the crate logs nothing); the access key ID is replaced by `<access-key>` in every
//! message the store sends back.

mod error;
pub mod interface;
mod xml;

pub use error::Error;

use md5::Md5;
use reqwest::{Method, Response, StatusCode};
use rusty_s3::actions::{
    AbortMultipartUpload, CompleteMultipartUpload, CreateMultipartUpload, DeleteObject, GetObject,
    HeadObject, ListObjectsV2, PutObject, UploadPart,
};
use rusty_s3::{Bucket, Credentials, S3Action};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long a signed request stays valid: the store checks it when the request starts.
const SIGNATURE_TTL: Duration = Duration::from_secs(15 * 60);
/// S3's largest part count for one multipart upload.
const MAX_PARTS: u64 = 10_000;
/// S3's smallest part, except the last.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// The part size [`Store::new`] starts with.
pub const DEFAULT_PART_SIZE: u64 = 16 * 1024 * 1024;
/// The user metadata under which every object carries the SHA-256 (hex) of its content.
pub const SHA256_META: &str = "sha256";

/// How bucket names go into URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlStyle {
    /// `https://endpoint/bucket/key` (Garage, MinIO, Ceph: the s3 interface's `path`).
    Path,
    /// `https://bucket.endpoint/key` (AWS: the s3 interface's `host`).
    VirtualHost,
}

impl UrlStyle {
    /// The s3 interface's `s3-uri-style` value: `path` or `host`; empty means path-style.
    pub fn from_interface(value: &str) -> Result<UrlStyle, Error> {
        match value.trim() {
            "" | "path" => Ok(UrlStyle::Path),
            "host" | "virtual" | "virtual-host" => Ok(UrlStyle::VirtualHost),
            other => Err(Error::Config(format!(
                "s3-uri-style `{other}` is neither `path` nor `host`: set it to one of them"
            ))),
        }
    }
}

/// Where the store is and how to sign for it.
#[derive(Clone)]
pub struct Config {
    /// `http(s)://host[:port]`; without a scheme, `https://` is assumed.
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// The region to sign for; empty means `us-east-1`.
    pub region: String,
    /// Path-style or virtual-host addressing.
    pub url_style: UrlStyle,
    /// The access key ID.
    pub access_key: String,
    /// The secret key.
    pub secret_key: String,
    /// PEM certificates to trust besides the system's (the s3 interface's `tls-ca-chain`).
    pub ca_chain: Vec<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("url_style", &self.url_style)
            .field("ca_chain", &self.ca_chain.len())
            .finish_non_exhaustive()
    }
}

/// An object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was written, as the store prints it (RFC 3339).
    pub last_modified: String,
}

/// An object's metadata (`HEAD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Its size in bytes.
    pub size: u64,
    /// Its user metadata (`x-amz-meta-<name>`), names in lower case.
    pub metadata: BTreeMap<String, String>,
}

/// What an upload or download moved, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Requests that carried content: 1 for a single `PUT`, else the part count.
    pub parts: u64,
}

/// A client for one bucket.
pub struct Store {
    bucket: Bucket,
    creds: Credentials,
    endpoint: String,
    http: reqwest::Client,
    tls: rustls::ClientConfig,
    resolve: Vec<(String, SocketAddr)>,
    part_size: u64,
    list_page: Option<usize>,
}

impl Store {
    /// A client for `cfg`'s bucket; checks the configuration, sends nothing.
    pub fn new(cfg: &Config) -> Result<Store, Error> {
        let endpoint = normalise_endpoint(&cfg.endpoint)?;
        let url: reqwest::Url = endpoint.parse().map_err(|_| {
            Error::Config(format!(
                "endpoint `{endpoint}` is not a URL: set it to http(s)://host[:port]"
            ))
        })?;
        let bucket_name = cfg.bucket.trim().trim_matches('/').to_string();
        if bucket_name.is_empty() {
            return Err(Error::Config("no bucket is set: set `bucket`".into()));
        }
        let region = match cfg.region.trim() {
            "" => "us-east-1".to_string(),
            r => r.to_string(),
        };
        let style = match cfg.url_style {
            UrlStyle::Path => rusty_s3::UrlStyle::Path,
            UrlStyle::VirtualHost => rusty_s3::UrlStyle::VirtualHost,
        };
        let bucket = Bucket::new(url.clone(), style, bucket_name, region)
            .map_err(|e| Error::Config(format!("endpoint `{endpoint}`: {e}")))?;
        if cfg.access_key.trim().is_empty() || cfg.secret_key.is_empty() {
            return Err(Error::Config(
                "the access key or the secret key is empty: set both".into(),
            ));
        }
        let tls = tls_config(url.scheme() == "https", &cfg.ca_chain)?;
        let http = http_client(tls.clone(), &[])?;
        Ok(Store {
            bucket,
            creds: Credentials::new(cfg.access_key.trim(), cfg.secret_key.clone()),
            endpoint,
            http,
            tls,
            resolve: Vec::new(),
            part_size: DEFAULT_PART_SIZE,
            list_page: None,
        })
    }

    /// Sets the part size of multipart uploads (at least [`MIN_PART_SIZE`]); files up to it go
    /// in one `PUT`.
    pub fn with_part_size(mut self, bytes: u64) -> Store {
        self.part_size = bytes.max(MIN_PART_SIZE);
        self
    }

    /// Sends requests for `host` to `addr` without asking DNS (as curl's `--resolve`; the URL's
    /// port is kept): virtual-host addressing where DNS has no name for the bucket.
    pub fn resolve(mut self, host: &str, addr: SocketAddr) -> Result<Store, Error> {
        self.resolve.push((host.to_string(), addr));
        self.http = http_client(self.tls.clone(), &self.resolve)?;
        Ok(self)
    }

    /// Asks for at most `keys` keys per listing page (the store's default, 1000 on S3, without).
    pub fn with_list_page(mut self, keys: usize) -> Store {
        self.list_page = Some(keys.max(1));
        self
    }

    /// The part size of multipart uploads.
    pub fn part_size(&self) -> u64 {
        self.part_size
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        self.bucket.name()
    }

    /// Checks that the endpoint answers, the credentials are accepted and the bucket exists,
    /// with a one-key listing.
    pub async fn check(&self) -> Result<(), Error> {
        let mut list = ListObjectsV2::new(&self.bucket, Some(&self.creds));
        list.with_max_keys(1);
        let resp = self.send(Method::GET, &mut list, None, "").await?;
        self.body(resp, "").await.map(|_| ())
    }

    /// Uploads `file` as `key` with `metadata` (names without `x-amz-meta-`, lower case), then
    /// reads the object's metadata back and requires the file's size and SHA-256 there (else the
    /// object is deleted again). The file must not change meanwhile.
    pub async fn put_file(
        &self,
        key: &str,
        file: &Path,
        metadata: &[(&str, &str)],
    ) -> Result<Transfer, Error> {
        let io = |e| Error::io(file, e);
        let size = std::fs::metadata(file).map_err(io)?.len();
        // A first pass for the SHA-256 that goes into the metadata, sent before the content.
        let sha256 = sha256_file(file)?;
        let mut meta: Vec<(String, String)> = metadata
            .iter()
            .map(|(k, v)| {
                (
                    format!("x-amz-meta-{}", k.to_ascii_lowercase()),
                    v.to_string(),
                )
            })
            .collect();
        meta.push((format!("x-amz-meta-{SHA256_META}"), sha256.clone()));
        let mut reader = File::open(file).map_err(io)?;
        let part_size = part_size_for(size, self.part_size);
        let parts = if size <= part_size {
            let mut body = Vec::with_capacity(size as usize);
            reader.read_to_end(&mut body).map_err(io)?;
            let mut put = PutObject::new(&self.bucket, Some(&self.creds), key);
            sign_meta(&mut put, &meta);
            self.send_body(Method::PUT, &mut put, body, key).await?;
            1
        } else {
            let mut src = Source {
                key,
                path: file,
                reader,
                size,
                part_size,
            };
            self.multipart(&mut src, &meta).await?
        };
        let head = self.head(key).await?.ok_or_else(|| Error::Verify {
            key: key.into(),
            detail: "the object is missing right after its upload".into(),
        })?;
        if let Err(e) = verify(key, &head, size, &sha256) {
            // What the store holds is not the file: leave nothing that looks like it.
            let _ = self.delete(key).await;
            return Err(e);
        }
        Ok(Transfer {
            size,
            sha256,
            parts,
        })
    }

    async fn multipart(
        &self,
        src: &mut Source<'_>,
        meta: &[(String, String)],
    ) -> Result<u64, Error> {
        let key = src.key;
        let mut create = CreateMultipartUpload::new(&self.bucket, Some(&self.creds), key);
        sign_meta(&mut create, meta);
        let resp = self.send(Method::POST, &mut create, None, key).await?;
        let text = self.body(resp, key).await?;
        let upload_id = CreateMultipartUpload::parse_response(&text)
            .map_err(|e| self.unexpected("CreateMultipartUpload", &e))?
            .upload_id()
            .to_string();
        let result = self.upload_parts(src, &upload_id).await;
        match result {
            Ok(n) => Ok(n),
            Err(e) => {
                // Best effort: an aborted upload frees its parts; the first error is the news.
                let mut abort =
                    AbortMultipartUpload::new(&self.bucket, Some(&self.creds), key, &upload_id);
                let _ = self.send(Method::DELETE, &mut abort, None, key).await;
                Err(e)
            }
        }
    }

    async fn upload_parts(&self, src: &mut Source<'_>, upload_id: &str) -> Result<u64, Error> {
        let (key, size, part_size) = (src.key, src.size, src.part_size);
        let mut etags = Vec::new();
        let mut sent = 0u64;
        let mut number: u16 = 0;
        while sent < size {
            number += 1;
            let len = part_size.min(size - sent);
            let mut body = vec![0u8; len as usize];
            src.reader
                .read_exact(&mut body)
                .map_err(|e| Error::io(src.path, e))?;
            let mut part = UploadPart::new(&self.bucket, Some(&self.creds), key, number, upload_id);
            let resp = self.send_body(Method::PUT, &mut part, body, key).await?;
            let etag = resp
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| self.unexpected("UploadPart", &"no ETag in the answer"))?
                .to_string();
            etags.push(etag);
            sent += len;
        }
        let complete = CompleteMultipartUpload::new(
            &self.bucket,
            Some(&self.creds),
            key,
            upload_id,
            etags.iter().map(String::as_str),
        );
        let url = complete.sign(SIGNATURE_TTL);
        let body = complete.body();
        let resp = self
            .request(Method::POST, url, Vec::new(), Some(body.into_bytes()), key)
            .await?;
        // CompleteMultipartUpload may answer 200 with an error in its body.
        let text = self.body(resp, key).await?;
        if let Some(err) = xml::error(&text) {
            return Err(self.s3_error(StatusCode::OK, err, key));
        }
        Ok(etags.len() as u64)
    }

    /// Downloads `key` to `dest`: streamed into `dest.part`, which becomes `dest` only once its
    /// size and SHA-256 match the object's metadata. An object without the SHA-256 metadata (not
    /// written by [`Store::put_file`]) is refused.
    pub async fn get_file(&self, key: &str, dest: &Path) -> Result<Transfer, Error> {
        let mut get = GetObject::new(&self.bucket, Some(&self.creds), key);
        let resp = self.send(Method::GET, &mut get, None, key).await?;
        let resp = self.ok(resp, key).await?;
        let head = head_of(resp.headers());
        let expected = head
            .metadata
            .get(SHA256_META)
            .cloned()
            .ok_or_else(|| Error::Verify {
                key: key.into(),
                detail: format!(
                    "it has no `{SHA256_META}` metadata: it was not written by this charm"
                ),
            })?;
        let part = partial_path(dest);
        let checked = self.stream_to(resp, &part, key).await.and_then(|got| {
            if got.size != head.size {
                return Err(Error::Verify {
                    key: key.into(),
                    detail: format!("{} of its {} bytes arrived", got.size, head.size),
                });
            }
            check_sha(key, &expected, &got.sha256).map(|_| got)
        });
        let got = match checked {
            Ok(got) => got,
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                return Err(e);
            }
        };
        std::fs::rename(&part, dest).map_err(|e| Error::io(dest, e))?;
        Ok(got)
    }

    async fn stream_to(
        &self,
        mut resp: Response,
        part: &Path,
        key: &str,
    ) -> Result<Transfer, Error> {
        let mut out = File::create(part).map_err(|e| Error::io(part, e))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport(e, key))? {
            hasher.update(&chunk);
            size += chunk.len() as u64;
            out.write_all(&chunk).map_err(|e| Error::io(part, e))?;
        }
        out.sync_all().map_err(|e| Error::io(part, e))?;
        Ok(Transfer {
            size,
            sha256: hex(&hasher.finalize()),
            parts: 1,
        })
    }

    /// Every object whose key starts with `prefix`, sorted by key, over as many pages as the
    /// store sends.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>, Error> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut list = ListObjectsV2::new(&self.bucket, Some(&self.creds));
            if !prefix.is_empty() {
                list.with_prefix(prefix);
            }
            if let Some(t) = &token {
                list.with_continuation_token(t.clone());
            }
            if let Some(n) = self.list_page {
                list.with_max_keys(n);
            }
            let resp = self.send(Method::GET, &mut list, None, prefix).await?;
            let text = self.body(resp, prefix).await?;
            let page = ListObjectsV2::parse_response(&text)
                .map_err(|e| self.unexpected("ListObjectsV2", &e))?;
            out.extend(page.contents.into_iter().map(|c| Listed {
                key: c.key,
                size: c.size,
                last_modified: c.last_modified,
            }));
            match page.next_continuation_token {
                Some(t) if !t.is_empty() && token.as_deref() != Some(t.as_str()) => token = Some(t),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// An object's size and user metadata; `None` when there is no such object.
    pub async fn head(&self, key: &str) -> Result<Option<Head>, Error> {
        let mut head = HeadObject::new(&self.bucket, Some(&self.creds), key);
        let resp = self.send(Method::HEAD, &mut head, None, key).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = self.ok(resp, key).await?;
        Ok(Some(head_of(resp.headers())))
    }

    /// Deletes an object; deleting one that does not exist is not an error (as in S3).
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        let mut del = DeleteObject::new(&self.bucket, Some(&self.creds), key);
        let resp = self.send(Method::DELETE, &mut del, None, key).await?;
        self.body(resp, key).await.map(|_| ())
    }

    async fn send_body<'a, A: S3Action<'a>>(
        &self,
        method: Method,
        action: &mut A,
        body: Vec<u8>,
        key: &str,
    ) -> Result<Response, Error> {
        use base64::Engine;
        let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&body));
        action.headers_mut().insert("content-md5", md5);
        let resp = self.send(method, action, Some(body), key).await?;
        self.ok(resp, key).await
    }

    /// Signs `action` and sends it with every header it signed.
    async fn send<'a, A: S3Action<'a>>(
        &self,
        method: Method,
        action: &mut A,
        body: Option<Vec<u8>>,
        key: &str,
    ) -> Result<Response, Error> {
        let url = action.sign(SIGNATURE_TTL);
        let headers = action
            .headers_mut()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.request(method, url, headers, body, key).await
    }

    async fn request(
        &self,
        method: Method,
        url: reqwest::Url,
        headers: Vec<(String, String)>,
        body: Option<Vec<u8>>,
        key: &str,
    ) -> Result<Response, Error> {
        let mut req = self.http.request(method, url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        req.send().await.map_err(|e| self.transport(e, key))
    }

    /// The response if it is a success, else the store's error.
    async fn ok(&self, resp: Response, key: &str) -> Result<Response, Error> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let code = resp
            .headers()
            .get("x-amz-error-code")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let text = resp.text().await.unwrap_or_default();
        let err = xml::error(&text).unwrap_or(xml::S3Error {
            code: code.unwrap_or_default(),
            message: String::new(),
        });
        Err(self.s3_error(status, err, key))
    }

    /// The body of a successful response, else the store's error.
    async fn body(&self, resp: Response, key: &str) -> Result<String, Error> {
        let resp = self.ok(resp, key).await?;
        resp.text().await.map_err(|e| self.transport(e, key))
    }

    fn s3_error(&self, status: StatusCode, err: xml::S3Error, key: &str) -> Error {
        let message = err.message.replace(self.creds.key(), "<access-key>");
        Error::from_s3(
            status.as_u16(),
            &err.code,
            &message,
            &self.endpoint,
            self.bucket.name(),
            key,
        )
    }

    fn transport(&self, e: reqwest::Error, key: &str) -> Error {
        Error::from_transport(e, &self.endpoint, key)
    }

    fn unexpected(&self, what: &str, e: &dyn fmt::Display) -> Error {
        Error::Protocol(format!(
            "the store at {} sent an answer to {what} that is not S3's: {e}",
            self.endpoint
        ))
    }
}

/// A file on its way up in parts.
struct Source<'a> {
    key: &'a str,
    path: &'a Path,
    reader: File,
    size: u64,
    part_size: u64,
}

/// `path` and `name` joined as an object key: the s3 interface's `path` with its slashes
/// trimmed (charmed-etcd's normalisation), then `/`, then `name`; just `name` without a path.
pub fn object_key(path: &str, name: &str) -> String {
    match path.trim().trim_matches('/') {
        "" => name.to_string(),
        p => format!("{p}/{name}"),
    }
}

/// The endpoint with a scheme and without trailing slashes.
fn normalise_endpoint(endpoint: &str) -> Result<String, Error> {
    let e = endpoint.trim().trim_end_matches('/');
    if e.is_empty() {
        return Err(Error::Config(
            "no endpoint is set: set it to http(s)://host[:port]".into(),
        ));
    }
    Ok(if e.contains("://") {
        e.to_string()
    } else {
        format!("https://{e}")
    })
}

/// The part size for a file of `size` bytes: `preferred`, or larger so that the upload fits in
/// S3's 10 000 parts.
fn part_size_for(size: u64, preferred: u64) -> u64 {
    preferred.max(size.div_ceil(MAX_PARTS))
}

fn sign_meta<'a, A: S3Action<'a>>(action: &mut A, meta: &[(String, String)]) {
    for (k, v) in meta {
        action.headers_mut().insert(k.clone(), v.clone());
    }
}

fn head_of(headers: &reqwest::header::HeaderMap) -> Head {
    let size = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let metadata = headers
        .iter()
        .filter_map(|(k, v)| {
            let name = k.as_str().strip_prefix("x-amz-meta-")?;
            Some((name.to_string(), v.to_str().ok()?.to_string()))
        })
        .collect();
    Head { size, metadata }
}

/// Requires `size` and the SHA-256 `sha256` in an object's metadata.
fn verify(key: &str, head: &Head, size: u64, sha256: &str) -> Result<(), Error> {
    if head.size != size {
        return Err(Error::Verify {
            key: key.into(),
            detail: format!("the store holds {} bytes, {size} were sent", head.size),
        });
    }
    match head.metadata.get(SHA256_META) {
        Some(stored) => check_sha(key, stored, sha256),
        None => Err(Error::Verify {
            key: key.into(),
            detail: format!("the store dropped its `{SHA256_META}` metadata"),
        }),
    }
}

fn check_sha(key: &str, expected: &str, got: &str) -> Result<(), Error> {
    if expected.eq_ignore_ascii_case(got) {
        Ok(())
    } else {
        Err(Error::Verify {
            key: key.into(),
            detail: format!("its content has SHA-256 {got}, its metadata says {expected}"),
        })
    }
}

/// SHA-256 (hex) of a file, read in 1 MiB pieces.
pub fn sha256_file(path: &Path) -> Result<String, Error> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// The HTTP client: bounded connect and read waits, no redirects (a redirect means a wrong
/// region or endpoint, which the error says).
fn http_client(
    tls: rustls::ClientConfig,
    resolve: &[(String, SocketAddr)],
) -> Result<reqwest::Client, Error> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(120))
        .redirect(reqwest::redirect::Policy::none())
        .use_preconfigured_tls(tls);
    for (host, addr) in resolve {
        b = b.resolve(host, *addr);
    }
    b.build()
        .map_err(|e| Error::Config(format!("HTTP client: {}", e.without_url())))
}

/// rustls with ring, trusting `ca_chain` and, for an https endpoint, the system's CAs.
fn tls_config(https: bool, ca_chain: &[String]) -> Result<rustls::ClientConfig, Error> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are not fatal: a custom CA may be all that is needed, and
    // a missing root shows up as a certificate error naming the remedy.
    if https {
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
    }
    for (i, pem) in ca_chain.iter().enumerate() {
        let certs: Vec<CertificateDer> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| Error::Config(format!("tls-ca-chain entry {}: not PEM: {e}", i + 1)))?;
        if certs.is_empty() {
            return Err(Error::Config(format!(
                "tls-ca-chain entry {} holds no PEM certificate",
                i + 1
            )));
        }
        for c in certs {
            roots.add(c).map_err(|e| {
                Error::Config(format!(
                    "tls-ca-chain entry {}: not a CA certificate: {e}",
                    i + 1
                ))
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config {
            endpoint: "http://127.0.0.1:3900/".into(),
            bucket: "/b/".into(),
            region: String::new(),
            url_style: UrlStyle::Path,
            access_key: "GKexample".into(),
            secret_key: "s3cr3t".into(),
            ca_chain: vec![],
        }
    }

    #[test]
    fn keys_join_the_interface_path_trimmed() {
        assert_eq!(object_key("/backups/", "x"), "backups/x");
        assert_eq!(object_key("a/b", "x"), "a/b/x");
        assert_eq!(object_key("", "x"), "x");
        assert_eq!(object_key(" / ", "x"), "x");
    }

    #[test]
    fn endpoints_get_a_scheme_and_lose_trailing_slashes() {
        assert_eq!(
            normalise_endpoint("s3.example.com/").unwrap(),
            "https://s3.example.com"
        );
        assert_eq!(normalise_endpoint(" http://h:1 ").unwrap(), "http://h:1");
        assert!(normalise_endpoint("  ").is_err());
    }

    #[test]
    fn uri_styles_follow_the_interface() {
        assert_eq!(UrlStyle::from_interface("").unwrap(), UrlStyle::Path);
        assert_eq!(UrlStyle::from_interface("path").unwrap(), UrlStyle::Path);
        assert_eq!(
            UrlStyle::from_interface("host").unwrap(),
            UrlStyle::VirtualHost
        );
        let e = UrlStyle::from_interface("sideways")
            .unwrap_err()
            .to_string();
        assert!(e.contains("neither `path` nor `host`"), "{e}");
    }

    #[test]
    fn part_size_grows_to_fit_ten_thousand_parts() {
        assert_eq!(part_size_for(1, DEFAULT_PART_SIZE), DEFAULT_PART_SIZE);
        let huge = 400 * 1024 * 1024 * 1024u64;
        let p = part_size_for(huge, DEFAULT_PART_SIZE);
        assert!(p > DEFAULT_PART_SIZE && huge.div_ceil(p) <= MAX_PARTS);
    }

    #[test]
    fn addressing_styles_build_the_right_urls() {
        let path = Store::new(&cfg()).unwrap();
        assert_eq!(
            path.bucket.object_url("p/k").unwrap().as_str(),
            "http://127.0.0.1:3900/b/p/k"
        );
        assert_eq!(path.bucket.region(), "us-east-1");
        let host = Store::new(&Config {
            endpoint: "https://s3.example.com".into(),
            url_style: UrlStyle::VirtualHost,
            region: "eu-west-1".into(),
            ..cfg()
        })
        .unwrap();
        assert_eq!(
            host.bucket.object_url("p/k").unwrap().as_str(),
            "https://b.s3.example.com/p/k"
        );
    }

    #[test]
    fn bad_configuration_is_named() {
        let e = |c: Config| Store::new(&c).err().unwrap().to_string();
        assert!(e(Config {
            bucket: " ".into(),
            ..cfg()
        })
        .contains("bucket"));
        assert!(e(Config {
            secret_key: String::new(),
            ..cfg()
        })
        .contains("secret key"));
        assert!(e(Config {
            endpoint: "ftp://x".into(),
            ..cfg()
        })
        .contains("endpoint"));
        let bad_ca = Config {
            endpoint: "https://x".into(),
            ca_chain: vec!["not a certificate".into()],
            ..cfg()
        };
        assert!(e(bad_ca).contains("tls-ca-chain entry 1"));
    }

    #[test]
    fn a_ca_chain_in_pem_is_accepted() {
        let ca = rcgen_free_ca();
        Store::new(&Config {
            endpoint: "https://x".into(),
            ca_chain: vec![ca],
            ..cfg()
        })
        .unwrap();
    }

    /// A self-signed CA certificate (fixture made once with openssl).
    fn rcgen_free_ca() -> String {
        include_str!("../tests/fixtures/ca.pem").to_string()
    }

    #[test]
    fn debug_output_never_shows_the_keys() {
        let d = format!("{:?}", cfg());
        assert!(!d.contains("s3cr3t") && !d.contains("GKexample"), "{d}");
    }

    #[test]
    fn verification_needs_size_and_sha256() {
        let mut h = Head {
            size: 3,
            metadata: BTreeMap::from([(SHA256_META.to_string(), "ab".to_string())]),
        };
        assert!(verify("k", &h, 3, "AB").is_ok());
        assert!(verify("k", &h, 4, "ab")
            .unwrap_err()
            .to_string()
            .contains("3 bytes"));
        assert!(verify("k", &h, 3, "cd")
            .unwrap_err()
            .to_string()
            .contains("SHA-256 cd"));
        h.metadata.clear();
        assert!(verify("k", &h, 3, "ab").is_err());
    }

    #[test]
    fn partial_downloads_sit_beside_the_destination() {
        assert_eq!(
            partial_path(Path::new("/a/b.db")),
            Path::new("/a/b.db.part")
        );
    }

    #[test]
    fn sha256_of_a_file() {
        let dir = std::env::temp_dir().join(format!("objstore-sha-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("abc");
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(
            sha256_file(&f).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

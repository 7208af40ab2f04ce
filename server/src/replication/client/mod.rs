//! The registry client: `RemoteRegistry`, any OCI Distribution registry over HTTP(S) as a
//! `Content` (replication and the proxy cache), plus what adapters need beyond it (`catalog`,
//! `ping`, authenticated requests to other paths such as Harbor's REST API).
//!
//! - `auth`: `WWW-Authenticate` parsing, the Bearer token flow and the per-scope token cache.
//! - `transport`: sending with authentication, retries with backoff, status and error mapping,
//!   bounded reads.
//! - `blobs`: streamed, verified downloads; monolithic or chunked streamed uploads; mounts.
//! - `manifests`: manifests, tags, the catalog and referrers (API and tag-schema fallback).
//!
//! Invariants:
//! - **Authentication is what real clients do**: a request goes out without credentials until
//!   the registry's challenge says how (Bearer: a token from the realm for exactly the scopes the
//!   request needs, cached per scope until shortly before it expires; Basic: the credentials on
//!   every request). A secret never reaches a log: `RemoteRegistry`'s `Debug` shows the URL
//!   and user only and authorization headers are marked sensitive (`auth::tests`).
//! - **Nothing unbounded is read into memory**: manifests up to 4 MiB, listings and error
//!   bodies bounded (`transport::read_limited`); blobs stream both ways, never buffered whole
//!   and never written to a temporary file.
//! - **Downloads are verified while they stream**: `get_blob`'s stream ends with an error
//!   (`io::ErrorKind::InvalidData` carrying `ContentError::Invalid`) when the bytes do not hash
//!   to the digest or do not have the size announced, so a caller never commits bad data
//!   (`replication_client::berth_digest_mismatch_on_download_is_detected`); manifests are checked
//!   against the digest asked for or the registry's `Docker-Content-Digest`.
//! - **Only replayable requests are retried** (no body or a body in memory): 3 attempts on 5xx,
//!   429 and connection errors, 0.5 s doubling, `Retry-After` honoured up to 10 s. A streamed
//!   upload is sent once: a broken connection or a stall is `Transient` and the caller retries
//!   the whole blob. Its last body holds the final bytes until the source stream has ended, so
//!   a source that fails its own verification never reaches the registry whole.
//! - **Errors say what went wrong** (`transport`): 401 → `Unauthorized` naming the registry and
//!   the user, 403 → `Denied`, 404 → `NotFound`, TLS failures → `Other` with "TLS" in the
//!   message, connection refused → `Transient` with the address.
//!
//! Errors of the streams `get_blob` returns carry a `ContentError` inside the `io::Error`;
//! `content_error` recovers it (the copy maps a failed stream with it).

mod auth;
mod blobs;
mod manifests;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use url::Url;

use super::adapter::Endpoint;
use super::content::{Content, ContentError, ContentResult, Descriptor, Manifest};
use crate::registry::digest::Digest;
use crate::storage::ByteStream;

pub use manifests::MANIFEST_ACCEPT;

/// Largest manifest read (the OCI spec's recommended limit, and what this registry accepts).
pub const MAX_MANIFEST: usize = crate::registry::manifest::MAX_MANIFEST_SIZE;
/// Largest JSON page of a listing (`_catalog`, `tags/list`, referrers, REST API pages).
pub const MAX_LISTING_PAGE: usize = 16 * 1024 * 1024;
/// Most entries a listing collects over all its pages.
pub const MAX_LISTING_ENTRIES: usize = 1_000_000;

/// How a request that failed for a transient reason is retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// Delay before the second attempt; doubled for each further one.
    pub base_delay: Duration,
    /// Longest wait honoured from a `Retry-After` header.
    pub max_retry_after: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 3,
            base_delay: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(10),
        }
    }
}

/// The credentials of an endpoint. No `Debug`: they must never reach a log.
#[derive(Clone)]
pub(crate) enum Credential {
    None,
    Basic {
        user: String,
        password: String,
    },
    /// `credential_type = oauth`: the secret is a bearer token sent as is.
    Token(String),
}

/// Any OCI Distribution registry over HTTP(S). Cheap to clone: clones share the connection pool
/// and the token cache.
#[derive(Clone)]
pub struct RemoteRegistry {
    http: reqwest::Client,
    /// Base URL without a trailing slash.
    base: String,
    /// The endpoint's name, for messages.
    name: String,
    cred: Credential,
    auth: Arc<auth::AuthState>,
    chunk_size: Option<u64>,
    retry: Retry,
    page_size: u32,
    /// Small requests: the whole exchange. Blob streams: the wait for the response head and
    /// the longest pause of the data.
    timeout: Duration,
}

impl std::fmt::Debug for RemoteRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteRegistry")
            .field("name", &self.name)
            .field("url", &self.base)
            .field("user", &self.user())
            .finish_non_exhaustive()
    }
}

/// A response of `RemoteRegistry::api` (any status), its body read (bounded).
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ApiResponse {
    /// The body as JSON of type `T` (`ContentError::Invalid` when it is not).
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> ContentResult<T> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ContentError::Invalid(format!("unexpected response ({}): {e}", self.status)))
    }
    /// The target of the `Link: <…>; rel="next"` header, as sent (often a path).
    pub fn next_link(&self) -> Option<String> {
        transport::next_link(&self.headers)
    }
}

impl RemoteRegistry {
    /// A client for `endpoint`: its URL (`http://` or `https://`), credentials (`basic`, or
    /// `oauth` for a bearer token), `insecure` (no certificate verification) and
    /// `ca_certificate` (PEM, trusted in addition to the system roots).
    pub fn new(endpoint: &Endpoint) -> ContentResult<RemoteRegistry> {
        let base = endpoint.url.trim().trim_end_matches('/').to_string();
        let url = Url::parse(&base)
            .map_err(|e| ContentError::Other(format!("registry URL {:?} is not valid: {e}", endpoint.url)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ContentError::Other(format!(
                "registry URL {:?} must be http:// or https:// with a host",
                endpoint.url
            )));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(ContentError::Other(format!(
                "registry URL {:?} must not have credentials, a query or a fragment",
                endpoint.url
            )));
        }
        let cred =
            match (endpoint.credential_type.to_ascii_lowercase().as_str(), endpoint.access_key.is_empty()) {
                ("oauth", _) if !endpoint.access_secret.is_empty() => {
                    Credential::Token(endpoint.access_secret.clone())
                }
                ("basic" | "", false) => Credential::Basic {
                    user: endpoint.access_key.clone(),
                    password: endpoint.access_secret.clone(),
                },
                ("basic" | "" | "oauth", _) => Credential::None,
                (other, _) => {
                    return Err(ContentError::Other(format!(
                        "unknown credential type {other:?} (basic or oauth)"
                    )))
                }
            };
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .tcp_keepalive(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(90))
            .danger_accept_invalid_certs(endpoint.insecure);
        if !endpoint.ca_certificate.trim().is_empty() {
            let certs = reqwest::Certificate::from_pem_bundle(endpoint.ca_certificate.as_bytes())
                .map_err(|e| ContentError::Other(format!("the CA certificate is not valid PEM: {e}")))?;
            if certs.is_empty() {
                return Err(ContentError::Other("the CA certificate holds no certificate".into()));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let http = b
            .build()
            .map_err(|e| ContentError::Other(format!("TLS setup for registry {}: {e}", endpoint.name)))?;
        Ok(RemoteRegistry {
            http,
            base,
            name: if endpoint.name.is_empty() { endpoint.url.clone() } else { endpoint.name.clone() },
            cred,
            auth: Arc::new(auth::AuthState::default()),
            chunk_size: None,
            retry: Retry::default(),
            page_size: 1000,
            timeout: Duration::from_secs(60),
        })
    }

    /// Uploads blobs larger than `chunk_size` in `PATCH` chunks of that size (Harbor's
    /// `copy_by_chunk`); `None`: one streamed `PUT` per blob.
    pub fn with_chunk_size(mut self, chunk_size: Option<u64>) -> Self {
        self.chunk_size = chunk_size.filter(|c| *c > 0);
        self
    }

    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = Retry { attempts: retry.attempts.max(1), ..retry };
        self
    }

    /// Entries asked for per page of `_catalog`, `tags/list` (`n`) and REST listings.
    pub fn with_page_size(mut self, n: u32) -> Self {
        self.page_size = n.clamp(1, 10_000);
        self
    }

    /// The limit for a small request, and for a blob stream the longest wait for the response
    /// head and the longest pause of its data (default 60 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The base URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The user name of Basic credentials (empty otherwise).
    pub fn user(&self) -> &str {
        match &self.cred {
            Credential::Basic { user, .. } => user,
            _ => "",
        }
    }

    /// `GET /v2/` with authentication: `Ok` when the registry answers 200 (reachable, speaks
    /// the Distribution API and accepts the credentials).
    pub async fn ping(&self) -> ContentResult<()> {
        let resp = self.send(&self.req(Method::GET, "/v2/", vec![])?).await?;
        match resp.status() {
            StatusCode::OK => Ok(()),
            StatusCode::NOT_FOUND => Err(ContentError::Other(format!(
                "{} does not answer the registry API (GET /v2/ is 404): is the URL right?",
                self.base
            ))),
            _ => Err(self.status_error(resp, "GET /v2/").await),
        }
    }

    /// Every repository of `_catalog` (paged with `n` and `Link`).
    pub async fn catalog(&self) -> ContentResult<Vec<String>> {
        self.catalog_pages().await
    }

    /// A request to any path of the registry (`path` starts with `/`, may hold a query) with the
    /// endpoint's credentials sent directly (Basic, or the bearer token): for REST APIs such as
    /// Harbor's `/api/v2.0`. Retried like any replayable request; every status is returned.
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> ContentResult<ApiResponse> {
        let mut req = self.req(method.clone(), path, vec![])?;
        req.direct_auth = true;
        if let Some(b) = body {
            req.headers.insert(reqwest::header::CONTENT_TYPE, "application/json".parse().expect("static"));
            req.body = Some(Bytes::from(serde_json::to_vec(b).expect("JSON value serialises")));
        }
        let resp = self.send(&req).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = self.read_limited(resp, MAX_LISTING_PAGE, &format!("{method} {path}")).await?;
        Ok(ApiResponse { status, headers, body })
    }

    /// `GET path` through `api`, the body parsed as JSON; a non-2xx status becomes the
    /// matching `ContentError` (404 → `NotFound`).
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> ContentResult<T> {
        let resp = self.api(Method::GET, path, None).await?;
        if !resp.status.is_success() {
            return Err(self.api_error(&resp, &format!("GET {path}")));
        }
        resp.json()
    }

    /// The `ContentError` for a non-2xx `ApiResponse` of `what`.
    pub fn api_error(&self, resp: &ApiResponse, what: &str) -> ContentError {
        self.error_for(resp.status, &transport::error_message(&resp.body), what)
    }
}

/// The `ContentError` an I/O error of a stream from this client carries (a digest or size
/// mismatch: `Invalid`; a broken connection: `Transient`); any other I/O error is `Transient`.
pub fn content_error(e: &std::io::Error) -> ContentError {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<ContentError>()) {
        Some(c) => c.clone(),
        None if e.kind() == std::io::ErrorKind::InvalidData => ContentError::Invalid(e.to_string()),
        None => ContentError::Transient(e.to_string()),
    }
}

#[async_trait]
impl Content for RemoteRegistry {
    /// The base URL and the credentials (the user and a hash of the secret).
    fn registry_key(&self) -> String {
        let who = match &self.cred {
            Credential::None => String::new(),
            Credential::Basic { user, password } => {
                let h = Sha256::digest(format!("{user}\0{password}").as_bytes());
                format!("{user}:{}", &crate::registry::digest::hex(&h)[..16])
            }
            Credential::Token(t) => {
                let h = Sha256::digest(t.as_bytes());
                format!("token:{}", &crate::registry::digest::hex(&h)[..16])
            }
        };
        format!("{}#{who}", self.base)
    }

    async fn head_manifest(&self, repo: &str, reference: &str) -> ContentResult<Option<Descriptor>> {
        self.head_manifest_impl(repo, reference).await
    }

    async fn get_manifest(&self, repo: &str, reference: &str) -> ContentResult<Option<Manifest>> {
        self.get_manifest_impl(repo, reference).await
    }

    async fn put_manifest(&self, repo: &str, reference: &str, manifest: &Manifest) -> ContentResult<()> {
        self.put_manifest_impl(repo, reference, manifest).await
    }

    async fn delete_manifest(&self, repo: &str, digest: &Digest) -> ContentResult<bool> {
        self.delete_manifest_impl(repo, digest).await
    }

    async fn blob_exists(&self, repo: &str, digest: &Digest) -> ContentResult<Option<u64>> {
        self.blob_exists_impl(repo, digest).await
    }

    async fn get_blob(&self, repo: &str, digest: &Digest) -> ContentResult<(u64, ByteStream)> {
        self.get_blob_impl(repo, digest).await
    }

    async fn put_blob(&self, repo: &str, digest: &Digest, size: u64, data: ByteStream) -> ContentResult<()> {
        self.put_blob_impl(repo, digest, size, data).await
    }

    async fn mount_blob(&self, from_repo: &str, repo: &str, digest: &Digest) -> ContentResult<bool> {
        self.mount_blob_impl(from_repo, repo, digest).await
    }

    async fn tags(&self, repo: &str) -> ContentResult<Vec<String>> {
        self.tags_impl(repo).await
    }

    async fn referrers(&self, repo: &str, subject: &Digest) -> ContentResult<Vec<Descriptor>> {
        self.referrers_impl(repo, subject).await
    }
}

/// `repo` checked against the OCI name grammar (a name from a remote listing must not be able
/// to point a request at another path).
fn check_repo(repo: &str) -> ContentResult<()> {
    if crate::registry::path::valid_name(repo) {
        Ok(())
    } else {
        Err(ContentError::Invalid(format!("invalid repository name {repo:?}")))
    }
}

/// `reference` checked: a tag or a digest.
fn check_reference(reference: &str) -> ContentResult<()> {
    if crate::registry::path::valid_tag(reference) || reference.parse::<Digest>().is_ok() {
        Ok(())
    } else {
        Err(ContentError::Invalid(format!("invalid reference {reference:?} (a tag or a digest)")))
    }
}

fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

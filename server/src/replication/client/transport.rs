//! Sending a request: authentication (`auth`), one more try after a challenge, retries with
//! backoff for replayable requests, and the mapping of HTTP statuses and connection errors to
//! `ContentError`s whose messages say what went wrong and where (a 401 with
//! `error="insufficient_scope"` to a client with credentials is `Denied`). Bounded reads.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, LINK, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use url::Url;

use super::auth::parse_challenges;
use super::{Credential, RemoteRegistry};
use crate::replication::content::{ContentError, ContentResult};

/// Largest error body read for a message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A request that can be sent again: no body, or a body in memory.
pub(super) struct Req {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    /// Token scopes it needs (`repository:a/b:pull`); empty for `/v2/`.
    pub scopes: Vec<String>,
    /// Limit of the whole exchange; `None` (blob downloads): only the wait for the response
    /// head is bounded, the body's pauses are bounded by the reader.
    pub timeout: Option<Duration>,
    /// Send the credentials themselves (REST APIs, the token realm), no challenge handling.
    pub direct_auth: bool,
}

impl Req {
    pub fn new(method: Method, url: Url, scopes: Vec<String>, timeout: Duration) -> Req {
        Req {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            scopes,
            timeout: Some(timeout),
            direct_auth: false,
        }
    }
}

/// The target of a `Link: <…>; rel="next"` header.
pub(super) fn next_link(headers: &HeaderMap) -> Option<String> {
    headers.get_all(LINK).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        next.then(|| target.to_string())
    })
}

/// A readable message from an error body: the OCI/Harbor `errors` list, else the text.
pub(super) fn error_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(errs) = v.get("errors").and_then(|e| e.as_array()) {
            let parts: Vec<String> = errs
                .iter()
                .take(5)
                .map(|e| {
                    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
                    let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
                    match (code.is_empty(), msg.is_empty()) {
                        (false, false) => format!("{code}: {msg}"),
                        (true, _) => msg.to_string(),
                        (false, true) => code.to_string(),
                    }
                })
                .collect();
            if !parts.is_empty() {
                return parts.join("; ");
            }
        }
        if let Some(m) = v.get("message").and_then(|m| m.as_str()) {
            return m.to_string();
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    text.chars().take(300).collect()
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(v))
}

fn retryable_status(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT || s.is_server_error()
}

/// Every message of an error's source chain, without repeats.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

fn io_kinds(e: &(dyn std::error::Error + 'static)) -> Vec<std::io::ErrorKind> {
    let mut out = vec![];
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            out.push(io.kind());
        }
        cur = c.source();
    }
    out
}

fn is_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(inner) = c.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            if inner.downcast_ref::<rustls::Error>().is_some() {
                return true;
            }
        }
        cur = c.source();
    }
    let s = chain(e).to_ascii_lowercase();
    s.contains("certificate") || s.contains("tls handshake") || s.contains("invalidcontenttype")
}

impl RemoteRegistry {
    /// `base + path` (`path` starts with `/`, may hold a query).
    pub(super) fn endpoint_url(&self, path: &str) -> ContentResult<Url> {
        Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| ContentError::Other(format!("bad URL {}{path}: {e}", self.base)))
    }

    /// A `Location` or `Link` target resolved against the base URL; it must stay on the
    /// registry's origin (the credentials go with it).
    pub(super) fn resolve(&self, target: &str) -> ContentResult<Url> {
        let base = Url::parse(&self.base).map_err(|e| ContentError::Other(e.to_string()))?;
        let url = base.join(target).map_err(|e| {
            ContentError::Other(format!("registry {:?} sent a bad URL {target:?}: {e}", self.name))
        })?;
        if url.origin() != base.origin() {
            return Err(ContentError::Other(format!(
                "registry {:?} sent a URL on another origin ({}); refusing to send credentials there",
                self.name,
                url.origin().ascii_serialization()
            )));
        }
        Ok(url)
    }

    pub(super) fn req(&self, method: Method, path: &str, scopes: Vec<String>) -> ContentResult<Req> {
        Ok(Req::new(method, self.endpoint_url(path)?, scopes, self.timeout))
    }

    /// Sends `req` with its authorization; after a 401 with a usable challenge, once more with
    /// fresh authorization (`auth`). Returns the last response, whatever its status.
    pub(super) async fn send(&self, req: &Req) -> ContentResult<Response> {
        let mut extra_scopes = vec![];
        let auth = self.authorization(&req.scopes, &extra_scopes, req.direct_auth).await?;
        let resp = self.send_raw(req, auth.as_ref()).await?;
        if resp.status() != StatusCode::UNAUTHORIZED
            || req.direct_auth
            || !self.learn_challenge(&resp, &req.scopes, auth.is_some(), &mut extra_scopes)
        {
            return Ok(resp);
        }
        drop(resp);
        let auth = self.authorization(&req.scopes, &extra_scopes, false).await?;
        self.send_raw(req, auth.as_ref()).await
    }

    /// Sends `req` with `auth`; after a 5xx, 429 or connection error, again with backoff (up to
    /// `retry.attempts` in all). Returns the last response, whatever its status.
    pub(super) async fn send_raw(&self, req: &Req, auth: Option<&HeaderValue>) -> ContentResult<Response> {
        let mut attempt = 0u32;
        loop {
            let mut b = self.http.request(req.method.clone(), req.url.clone()).headers(req.headers.clone());
            if let Some(a) = auth {
                b = b.header(AUTHORIZATION, a.clone());
            }
            if let Some(t) = req.timeout {
                b = b.timeout(t);
            }
            if let Some(body) = &req.body {
                b = b.body(body.clone());
            } else if matches!(req.method, Method::POST | Method::PUT | Method::PATCH) {
                b = b.header(reqwest::header::CONTENT_LENGTH, 0);
            }
            let sent = match req.timeout {
                Some(_) => b.send().await,
                None => match tokio::time::timeout(self.timeout, b.send()).await {
                    Ok(r) => r,
                    Err(_) => {
                        let e = ContentError::Transient(format!(
                            "registry {:?}: no answer to {} {} within {:?}",
                            self.name,
                            req.method,
                            req.url.path(),
                            self.timeout
                        ));
                        if attempt + 1 < self.retry.attempts {
                            self.backoff(attempt, None).await;
                            attempt += 1;
                            continue;
                        }
                        return Err(e);
                    }
                },
            };
            match sent {
                Err(e) => {
                    let err = self.transport_error(&e, &req.url);
                    if err.is_transient() && attempt + 1 < self.retry.attempts {
                        tracing::debug!(registry = %self.name, error = %err, "retrying");
                        self.backoff(attempt, None).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(err);
                }
                Ok(resp) if retryable_status(resp.status()) && attempt + 1 < self.retry.attempts => {
                    let wait = retry_after(resp.headers());
                    tracing::debug!(registry = %self.name, status = %resp.status(), "retrying");
                    drop(resp);
                    self.backoff(attempt, wait).await;
                    attempt += 1;
                }
                Ok(resp) => return Ok(resp),
            }
        }
    }

    async fn backoff(&self, attempt: u32, retry_after: Option<Duration>) {
        let delay = match retry_after {
            Some(d) => d.min(self.retry.max_retry_after),
            None => self.retry.base_delay.saturating_mul(1u32 << attempt.min(16)),
        };
        tokio::time::sleep(delay).await;
    }

    /// What a failed exchange (no HTTP status) means.
    pub(super) fn transport_error(&self, e: &reqwest::Error, url: &Url) -> ContentError {
        let host = format!("{}:{}", url.host_str().unwrap_or(""), url.port_or_known_default().unwrap_or(0));
        let msg = chain(e);
        if is_tls(e) {
            return ContentError::Other(format!(
                "TLS error talking to registry {:?} at {host}: {msg} (give the endpoint the CA \
                 certificate, or mark it insecure to skip verification)",
                self.name
            ));
        }
        let kinds = io_kinds(e);
        if kinds.contains(&std::io::ErrorKind::ConnectionRefused) {
            return ContentError::Transient(format!(
                "cannot connect to registry {:?} at {host}: connection refused",
                self.name
            ));
        }
        if e.is_timeout() {
            return ContentError::Transient(format!("registry {:?} at {host} timed out: {msg}", self.name));
        }
        if e.is_connect() {
            return ContentError::Transient(format!(
                "cannot connect to registry {:?} at {host}: {msg}",
                self.name
            ));
        }
        if e.is_builder() || e.is_redirect() {
            return ContentError::Other(format!("registry {:?}: {msg}", self.name));
        }
        // Reset, closed or truncated connections, HTTP/2 stream errors: worth another try.
        ContentError::Transient(format!("registry {:?} at {host}: {msg}", self.name))
    }

    /// The error for an unexpected status of `what` (the body's message included).
    /// A 401 whose challenge says `insufficient_scope` to a client with credentials is a
    /// refusal of the right (`Denied`), not of the credentials.
    pub(super) async fn status_error(&self, resp: Response, what: &str) -> ContentError {
        let status = resp.status();
        let scope_refused = status == StatusCode::UNAUTHORIZED
            && !matches!(self.cred, Credential::None)
            && resp
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(parse_challenges)
                .any(|c| c.param("error") == Some("insufficient_scope"));
        let body = self.read_prefix(resp, MAX_ERROR_BODY).await;
        let msg = error_message(&body);
        if scope_refused {
            return ContentError::Denied(format!(
                "{what}: registry {:?} denied it to {} (insufficient scope): {msg}",
                self.name,
                self.who()
            ));
        }
        self.error_for(status, &msg, what)
    }

    pub(super) fn error_for(&self, status: StatusCode, msg: &str, what: &str) -> ContentError {
        let msg = if msg.is_empty() { status.canonical_reason().unwrap_or("") } else { msg };
        let name = &self.name;
        match status.as_u16() {
            401 => ContentError::Unauthorized(format!(
                "registry {name:?} ({}) refused {} ({what}): {msg}",
                self.base,
                self.who()
            )),
            403 => {
                ContentError::Denied(format!("{what}: registry {name:?} denied it to {}: {msg}", self.who()))
            }
            404 => ContentError::NotFound(format!("{what}: {msg}")),
            408 | 429 | 500..=599 => {
                ContentError::Transient(format!("{what}: registry {name:?} answered {status}: {msg}"))
            }
            400 | 409 | 411..=418 | 422 => {
                ContentError::Invalid(format!("{what}: registry {name:?} refused it ({status}): {msg}"))
            }
            405 => {
                ContentError::Other(format!("{what}: registry {name:?} does not allow it ({status}): {msg}"))
            }
            _ => ContentError::Other(format!("{what}: registry {name:?} answered {status}: {msg}")),
        }
    }

    /// The whole body, refused (`Invalid`) when longer than `limit`.
    pub(super) async fn read_limited(
        &self,
        mut resp: Response,
        limit: usize,
        what: &str,
    ) -> ContentResult<Bytes> {
        if resp.content_length().is_some_and(|l| l > limit as u64) {
            return Err(ContentError::Invalid(format!(
                "{what}: registry {:?} sent more than {limit} bytes",
                self.name
            )));
        }
        let url = resp.url().clone();
        let mut buf = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport_error(&e, &url))? {
            if buf.len() + chunk.len() > limit {
                return Err(ContentError::Invalid(format!(
                    "{what}: registry {:?} sent more than {limit} bytes",
                    self.name
                )));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    /// At most `limit` bytes of the body (for error messages; errors give what was read).
    async fn read_prefix(&self, mut resp: Response, limit: usize) -> Bytes {
        let mut buf = BytesMut::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            let room = limit - buf.len();
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if buf.len() >= limit {
                break;
            }
        }
        buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links() {
        let mut h = HeaderMap::new();
        h.insert(LINK, "</v2/_catalog?n=2&last=b>; rel=\"next\"".parse().unwrap());
        assert_eq!(next_link(&h).as_deref(), Some("/v2/_catalog?n=2&last=b"));
        h.insert(
            LINK,
            "<https://h/a?page=1>; rel=\"prev\" , <https://h/a?page=3>; rel=next".parse().unwrap(),
        );
        assert_eq!(next_link(&h).as_deref(), Some("https://h/a?page=3"));
        h.insert(LINK, "<https://h/a?page=1>; rel=\"prev\"".parse().unwrap());
        assert_eq!(next_link(&h), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn error_messages() {
        let oci = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(error_message(oci), "MANIFEST_UNKNOWN: manifest unknown");
        assert_eq!(error_message(b"  404 page not found\n"), "404 page not found");
        assert_eq!(error_message(br#"{"message":"nope"}"#), "nope");
        assert_eq!(error_message(&[b'x'; 1000]).len(), 300);
    }
}

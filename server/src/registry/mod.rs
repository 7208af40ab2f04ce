//! The embedded OCI registry: Distribution spec v1.1 under `/v2/`.
//!
//! Every `/v2/…` request goes through `dispatch`, which parses the path (`path::parse`) into a
//! `Route` and calls one handler per (method, route). Each handler states the access it needs
//! with an explicit `authorize(…)` call: a bearer token's `access` list, or RBAC (`rbac`)
//! for Basic credentials and anonymous callers. What an operation does once authorized (push,
//! pull, delete, upload) is in `internal`, which `replication::local` calls too.
//!
//! Invariants:
//! - **Content is hashed while it streams in, never in a second pass** (SHA-256; a client that
//!   names a sha512 digest pays one extra read at the end). The hash state of an upload lives
//!   in its database row, so a chunked upload may continue on any replica.
//! - **A manifest is stored only when everything it references is in the repository**
//!   (non-distributable layers excepted); metadata changes happen in one transaction after the
//!   content is durable in storage.
//! - **The registry never touches the portal's session store**: `/v2` is mounted outside the
//!   session layer.

pub mod digest;
pub mod error;
pub(crate) mod internal;
pub mod manifest;
pub mod meta;
pub mod path;

mod blobs;
mod catalog;
mod manifests;
mod proxied;
mod referrers;
mod uploads;

pub use blobs::parse_range;
use blobs::*;
use catalog::*;
use manifests::*;
use referrers::*;
#[cfg(test)]
pub(crate) use uploads::parse_content_range;
use uploads::*;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde_json::json;

use crate::audit::Event;
use crate::auth::{authenticate_basic, basic_credentials, BasicAuthError};
use crate::client::ClientCtx;
use crate::rbac::{self, Act, Principal, ProjectAccess, Resource};
use crate::state::AppState;
use crate::token;
use digest::{Algorithm, Digest, UploadHasher};
use error::{Code, OciError, OciResult};
use path::{Reference, Route};

const API_VERSION: (&str, &str) = ("docker-distribution-api-version", "registry/2.0");

/// Default and maximum page size of `_catalog` and `tags/list`.
const DEFAULT_PAGE: i64 = 1000;
const MAX_PAGE: i64 = 10_000;

/// Most `?tag=` parameters one manifest push may carry (the spec asks for at least 10).
const MAX_QUERY_TAGS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    /// The token-scope actions a challenge asks for.
    fn scope_actions(self) -> &'static [&'static str] {
        match self {
            Action::Pull => &["pull"],
            Action::Push => &["pull", "push"],
            Action::Delete => &["delete"],
        }
    }

    fn token_action(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }
}

/// How a registry request authenticated.
#[derive(Debug, Clone)]
pub enum Credential {
    Anonymous,
    /// Basic credentials straight on `/v2` (a user or a robot): RBAC is evaluated live.
    Basic(Principal),
    /// A bearer token from `/service/token`: only its `access` list counts.
    Token(std::sync::Arc<token::Claims>),
}

/// The caller of a registry request.
#[derive(Debug, Clone)]
pub struct RegistryCaller {
    pub cred: Credential,
    pub ctx: ClientCtx,
}

impl RegistryCaller {
    /// The name audit rows carry.
    fn name(&self) -> &str {
        match &self.cred {
            Credential::Anonymous => "anonymous",
            Credential::Basic(p) => p.name(),
            Credential::Token(c) if c.anonymous() => "anonymous",
            Credential::Token(c) => &c.sub,
        }
    }

    fn event(&self, operation: &str, resource_type: &str, resource: String, project_id: i64) -> Event {
        self.actor().event(operation, resource_type, resource, project_id)
    }

    /// The caller as `internal`'s operations name it in audit rows.
    fn actor(&self) -> internal::Actor<'_> {
        internal::Actor { name: self.name(), ip: &self.ctx.ip }
    }
}

/// 401 with a Bearer challenge for `scope` (one or more space-separated scopes).
fn challenge_error(
    state: &AppState,
    ctx: &ClientCtx,
    code: Code,
    msg: &str,
    scope: Option<&str>,
    error: Option<&str>,
) -> OciError {
    let mut e = OciError::new(code, msg);
    e.challenge = Some(token::challenge(state, ctx, scope, error, Some(msg)));
    e
}

async fn caller(state: &AppState, parts: &Parts) -> OciResult<RegistryCaller> {
    let ctx = ClientCtx::from_parts(&state.config, parts);
    let auth = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    if let Some((scheme, tok)) = auth.split_once(' ') {
        if scheme.eq_ignore_ascii_case("bearer") {
            return match state.tokens.verify(state, tok.trim()) {
                Ok(claims) => Ok(RegistryCaller { cred: Credential::Token(claims), ctx }),
                Err(e) => Err(challenge_error(
                    state,
                    &ctx,
                    Code::Unauthorized,
                    &e.to_string(),
                    None,
                    Some("invalid_token"),
                )),
            };
        }
    }
    let creds = match basic_credentials(&parts.headers) {
        Ok(c) => c,
        Err(_) => {
            return Err(challenge_error(state, &ctx, Code::Unauthorized, "malformed credentials", None, None))
        }
    };
    let Some((user, pass)) = creds else { return Ok(RegistryCaller { cred: Credential::Anonymous, ctx }) };
    match authenticate_basic(state, &user, &pass, &ctx).await {
        Ok(p) => Ok(RegistryCaller { cred: Credential::Basic(p), ctx }),
        // A locked name answers 401 UNAUTHORIZED with the lockout message, not 429: podman,
        // skopeo and buildah print a 401's message but only "too many requests to registry"
        // for any 429 (containers/image `httpResponseToError`); docker prints both.
        Err(e @ BasicAuthError::Locked(s)) => {
            Err(challenge_error(state, &ctx, Code::Unauthorized, &e.to_string(), None, None)
                .header(header::RETRY_AFTER, HeaderValue::from(s)))
        }
        Err(e @ BasicAuthError::Busy) => Err(OciError::new(Code::TooManyRequests, e.to_string())
            .header(header::RETRY_AFTER, HeaderValue::from_static("1"))),
        Err(BasicAuthError::Db(e)) => Err(e.into()),
        Err(BasicAuthError::Unavailable(m)) => {
            Err(OciError::new(Code::Unavailable, m)
                .header(header::RETRY_AFTER, HeaderValue::from_static("5")))
        }
        Err(e) => Err(challenge_error(state, &ctx, Code::Unauthorized, &e.to_string(), None, None)),
    }
}

/// The single permission check of every repository handler.
async fn authorize(
    state: &AppState,
    who: &RegistryCaller,
    repo: &str,
    action: Action,
) -> OciResult<meta::ProjectRef> {
    authorize_for(state, who, repo, action, None).await
}

/// `authorize` with further scopes to name in a challenge (the source of a mount).
async fn authorize_for(
    state: &AppState,
    who: &RegistryCaller,
    repo: &str,
    action: Action,
    extra_scope: Option<String>,
) -> OciResult<meta::ProjectRef> {
    let project = meta::project_of(&state.db, repo).await?;
    let allowed = match (&project, &who.cred) {
        (None, _) => false,
        (Some(p), Credential::Token(c)) => c.allows(repo, p.id, action.token_action()),
        (Some(p), cred) => {
            let principal = match cred {
                Credential::Basic(pr) => Some(pr),
                _ => None,
            };
            let access = ProjectAccess { id: p.id, public: p.public };
            match action {
                Action::Pull => {
                    rbac::allowed(&state.db, principal, access, Resource::Repository, Act::Pull).await?
                }
                Action::Push => {
                    rbac::allowed(&state.db, principal, access, Resource::Repository, Act::Push).await?
                }
                Action::Delete => rbac::registry_delete_allowed(&state.db, principal, access).await?,
            }
        }
    };
    if allowed {
        let project = project.expect("allowed implies a project");
        // A proxy-cache project's content comes only from its upstream (Harbor refuses every
        // push into one): blob uploads, mounts into it and manifest PUTs end here.
        if action == Action::Push && project.registry_id.is_some() {
            let msg = crate::api::projects::proxy_push_refusal(meta::project_name(repo));
            return Err(OciError::new(Code::Denied, msg));
        }
        return Ok(project);
    }
    let mut scope = token::scope_string(repo, action.scope_actions());
    if let Some(extra) = extra_scope {
        scope.push(' ');
        scope.push_str(&extra);
    }
    // What every refusal says (Harbor's words): docker prints it and stops at once, instead of
    // retrying a push for ~50 s after a bare `unauthorized`.
    let refusal = format!("unauthorized to access repository: {repo}, action: {}", action.token_action());
    // A refusal with the scope and `insufficient_scope`: 401 asks the client to fetch a better
    // token, 403 says no token would help.
    let insufficient = |code: Code| {
        Err(challenge_error(state, &who.ctx, code, &refusal, Some(&scope), Some("insufficient_scope")))
    };
    match (&project, &who.cred) {
        // No credentials at all: a plain challenge, so the client fetches a token first.
        (_, Credential::Anonymous) => Err(challenge_error(
            state,
            &who.ctx,
            Code::Unauthorized,
            "authentication required",
            Some(&scope),
            None,
        )),
        // An anonymous token (a client that never logged in) is told it lacks the scope, with
        // the repository and action: asked to log in rather than told what exists.
        (_, Credential::Token(c)) if c.anonymous() => insufficient(Code::Unauthorized),
        // A signed-in caller pushing to a project that does not exist: 404 NAME_UNKNOWN, which
        // clients do not retry (Harbor answers the same).
        (None, _) => {
            Err(OciError::new(Code::NameUnknown, format!("project {:?} not found", meta::project_name(repo))))
        }
        // A token without a right the client asked for and was refused: 401, as distribution
        // answers (docker then stops instead of retrying).
        (_, Credential::Token(c)) if c.refused(repo, action.token_action()) => {
            insufficient(Code::Unauthorized)
        }
        // A right never asked for: 403 with a challenge, so clients that re-ask for a token only
        // after a 403 (oras) do. Basic credentials without the right: the same.
        (_, Credential::Token(_)) | (Some(_), Credential::Basic(_)) => insufficient(Code::Denied),
    }
}

/// `repo:tag` or `repo@digest`, as audit rows name artifacts.
fn artifact_ref(name: &str, reference: &Reference) -> String {
    match reference {
        Reference::Tag(t) => format!("{name}:{t}"),
        Reference::Digest(d) => format!("{name}@{d}"),
    }
}

/// Pushes need `<project>/<repository>`. A bare name is answered as Harbor does (its project
/// would be the name itself, which cannot exist): 404 NAME_UNKNOWN, which clients do not retry
/// (a 400 made docker retry for ~50 s).
fn repo_in_project(name: &str) -> OciResult<()> {
    if !name.contains('/') {
        return Err(OciError::new(
            Code::NameUnknown,
            format!("project {name:?} not found: repository names are <project>/<repository>"),
        ));
    }
    Ok(())
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn with_api_version(mut r: Response) -> Response {
    r.headers_mut().insert(API_VERSION.0, HeaderValue::from_static(API_VERSION.1));
    r
}

/// `/v2/` and `/v2`: 200 for any valid credentials, else 401 with the Bearer challenge that
/// sends clients to the token service.
pub async fn base(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    with_api_version(base_response(&state, &parts).await.unwrap_or_else(IntoResponse::into_response))
}

async fn base_response(state: &AppState, parts: &Parts) -> OciResult<Response> {
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return Err(method_not_allowed("GET, HEAD"));
    }
    let who = caller(state, parts).await?;
    if matches!(who.cred, Credential::Anonymous) {
        return Err(challenge_error(
            state,
            &who.ctx,
            Code::Unauthorized,
            "authentication required",
            None,
            None,
        ));
    }
    Ok((StatusCode::OK, axum::Json(json!({}))).into_response())
}

/// 405 in the OCI error format, naming the methods the endpoint has.
fn method_not_allowed(allow: &'static str) -> OciError {
    OciError::new(Code::Unsupported, "method not allowed on this endpoint")
        .header(header::ALLOW, HeaderValue::from_static(allow))
}

/// `/v2/{*rest}`: parses the path and hands the request to its handler.
pub async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    // Handlers borrow the head and consume the body separately (a `&Request` cannot be held
    // across an await: the body is not `Sync`).
    let (parts, body) = req.into_parts();
    let (body, unread) = Returnable::wrap(body);
    let parsed = path::parse(parts.uri.path().strip_prefix("/v2/").unwrap_or(""));
    let resource = match &parsed {
        Ok(Route::Base) => "base",
        Ok(Route::Catalog) => "catalog",
        Ok(Route::Tags { .. }) => "tags",
        Ok(Route::Manifest { .. }) => "manifest",
        Ok(Route::Blob { .. }) => "blob",
        Ok(Route::UploadStart { .. } | Route::Upload { .. }) => "upload",
        Ok(Route::Referrers { .. }) => "referrers",
        Err(_) => "invalid",
    };
    let result = match parsed {
        Ok(Route::Base) => base_response(&state, &parts).await,
        Ok(route) => handle(&state, route, &parts, body).await,
        Err(e) => Err(e.into()),
    };
    let mut resp = result.unwrap_or_else(IntoResponse::into_response);
    count_operation(resource, &parts.method, &resp);
    // A refusal answered before the body was read (401 on a PATCH of a layer): read the rest
    // first, bounded, so the client's sending completes and it reads the answer. Closing with
    // unread data resets the connection, and Go's client (docker) then loses the response.
    let left = unread.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(rest) = left {
        let expects_continue = parts
            .headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        // A client waiting for `100 Continue` has sent nothing: it reads the answer as it is.
        if expects_continue || !drain(rest).await {
            resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    with_api_version(resp)
}

/// `berth_registry_operations_total` and, for content served, `berth_registry_bytes_sent_total`
/// (the declared length of a successful blob or manifest GET; no-ops without a recorder).
fn count_operation(resource: &'static str, method: &axum::http::Method, resp: &Response) {
    let status = resp.status();
    crate::metrics::count_operation(resource, crate::metrics::method(method), status.as_u16());
    if *method == axum::http::Method::GET && status.is_success() && matches!(resource, "blob" | "manifest") {
        let len =
            resp.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if let Some(n) = len {
            crate::metrics::count_bytes(true, n);
        }
    }
}

/// At most this much of an unread request body is read and discarded after a refusal, for at
/// most `DRAIN_TIME`; a longer body gets `Connection: close` instead.
const DRAIN_MAX: usize = 8 * 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads and discards a body, bounded by `DRAIN_MAX` and `DRAIN_TIME`; true when it ended.
async fn drain(mut body: Body) -> bool {
    use http_body::Body as _;
    let deadline = tokio::time::Instant::now() + DRAIN_TIME;
    let mut read = 0usize;
    loop {
        let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx));
        match tokio::time::timeout_at(deadline, frame).await {
            Ok(None) => return true,
            Ok(Some(Ok(f))) => {
                read += f.data_ref().map_or(0, |d| d.len());
                if read > DRAIN_MAX {
                    return false;
                }
            }
            Ok(Some(Err(_))) | Err(_) => return false,
        }
    }
}

/// A request body that, when a handler drops it unfinished, goes back to the dispatcher (which
/// drains it after a refusal).
struct Returnable {
    inner: Option<Body>,
    slot: Arc<Mutex<Option<Body>>>,
    /// Reading failed (disconnect, body timeout): nothing more will come.
    failed: bool,
    /// Bytes read (`berth_registry_bytes_received_total`, counted once at the end).
    read: u64,
}

impl Returnable {
    fn wrap(body: Body) -> (Body, Arc<Mutex<Option<Body>>>) {
        let slot = Arc::new(Mutex::new(None));
        (Body::new(Returnable { inner: Some(body), slot: slot.clone(), failed: false, read: 0 }), slot)
    }
}

impl http_body::Body for Returnable {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = match self.inner.as_mut() {
            Some(b) => std::pin::Pin::new(b).poll_frame(cx),
            None => return std::task::Poll::Ready(None),
        };
        match &polled {
            std::task::Poll::Ready(Some(Err(_))) => self.failed = true,
            std::task::Poll::Ready(Some(Ok(f))) => self.read += f.data_ref().map_or(0, |d| d.len() as u64),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.as_ref().map(http_body::Body::size_hint).unwrap_or_default()
    }
}

impl Drop for Returnable {
    fn drop(&mut self) {
        if self.read > 0 {
            crate::metrics::count_bytes(false, self.read);
        }
        if let Some(b) = self.inner.take() {
            if !self.failed && !http_body::Body::is_end_stream(&b) {
                *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(b);
            }
        }
    }
}

fn query_pairs(parts: &Parts) -> Vec<(String, String)> {
    parts
        .uri
        .query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn query<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

async fn handle(state: &AppState, route: Route, parts: &Parts, body: Body) -> OciResult<Response> {
    let pairs = query_pairs(parts);
    let headers = &parts.headers;
    let who = caller(state, parts).await?;
    match (route, parts.method.clone()) {
        (Route::Catalog, Method::GET) => catalog(state, &who, &pairs).await,
        (Route::Tags { name }, Method::GET) => tags_list(state, &who, &name, &pairs).await,
        (Route::Manifest { name, reference }, m @ (Method::GET | Method::HEAD)) => {
            get_manifest(state, &who, &name, &reference, m == Method::HEAD).await
        }
        (Route::Manifest { name, reference }, Method::PUT) => {
            put_manifest(state, &who, &name, &reference, headers, &pairs, body).await
        }
        (Route::Manifest { name, reference }, Method::DELETE) => {
            delete_manifest(state, &who, &name, &reference).await
        }
        (Route::Blob { name, digest }, m @ (Method::GET | Method::HEAD)) => {
            get_blob(state, &who, &name, &digest, headers, m == Method::HEAD).await
        }
        (Route::Blob { name, digest }, Method::DELETE) => delete_blob(state, &who, &name, &digest).await,
        (Route::UploadStart { name }, Method::POST) => start_upload(state, &who, &name, &pairs, body).await,
        (Route::Upload { name, id }, Method::GET) => upload_status(state, &who, &name, &id).await,
        (Route::Upload { name, id }, Method::PATCH) => {
            patch_upload(state, &who, &name, &id, headers, body).await
        }
        (Route::Upload { name, id }, Method::PUT) => {
            finish_upload(state, &who, &name, &id, headers, &pairs, body).await
        }
        (Route::Upload { name, id }, Method::DELETE) => cancel_upload(state, &who, &name, &id).await,
        (Route::Referrers { name, digest }, Method::GET) => {
            referrers(state, &who, &name, &digest, &pairs).await
        }
        _ => Err(OciError::new(Code::Unsupported, "method not allowed on this endpoint")),
    }
}

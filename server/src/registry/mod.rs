//! The embedded OCI registry: Distribution spec v1.1 under `/v2/`.
//!
//! Every `/v2/…` request goes through `dispatch`, which parses the path (`path::parse`) into a
//! `Route` and calls one handler per (method, route). Each handler states the access it needs
//! with an explicit `authorize(…)` call: a bearer token's `access` list, or RBAC (`rbac`)
//! for Basic credentials and anonymous callers.
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
pub mod manifest;
pub mod meta;
pub mod path;

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
        Event::new(self.name(), operation, resource_type, resource).ip(&self.ctx.ip).project(project_id)
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
        return Ok(project.expect("allowed implies a project"));
    }
    let mut scope = token::scope_string(repo, action.scope_actions());
    if let Some(extra) = extra_scope {
        scope.push(' ');
        scope.push_str(&extra);
    }
    // What every refusal says (Harbor's words): docker prints it and stops at once, instead of
    // retrying a push for ~50 s after a bare `unauthorized`.
    let refusal = format!("unauthorized to access repository: {repo}, action: {}", action.token_action());
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
        (_, Credential::Token(c)) if c.anonymous() => Err(challenge_error(
            state,
            &who.ctx,
            Code::Unauthorized,
            &refusal,
            Some(&scope),
            Some("insufficient_scope"),
        )),
        // A signed-in caller pushing to a project that does not exist: 404 NAME_UNKNOWN, which
        // clients do not retry (Harbor answers the same).
        (None, _) => {
            Err(OciError::new(Code::NameUnknown, format!("project {:?} not found", meta::project_name(repo))))
        }
        // A token without a right the client asked for and was refused: 401, as distribution
        // answers (docker then stops instead of retrying).
        (_, Credential::Token(c)) if c.refused(repo, action.token_action()) => Err(challenge_error(
            state,
            &who.ctx,
            Code::Unauthorized,
            &refusal,
            Some(&scope),
            Some("insufficient_scope"),
        )),
        // A right never asked for: 403 with a challenge, so clients that re-ask for a token only
        // after a 403 (oras) do.
        (_, Credential::Token(_)) => Err(challenge_error(
            state,
            &who.ctx,
            Code::Denied,
            &refusal,
            Some(&scope),
            Some("insufficient_scope"),
        )),
        // Basic credentials without the right.
        (Some(_), Credential::Basic(_)) => Err(challenge_error(
            state,
            &who.ctx,
            Code::Denied,
            &refusal,
            Some(&scope),
            Some("insufficient_scope"),
        )),
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
    let result = match path::parse(parts.uri.path().strip_prefix("/v2/").unwrap_or("")) {
        Ok(Route::Base) => base_response(&state, &parts).await,
        Ok(route) => handle(&state, route, &parts, body).await,
        Err(e) => Err(e.into()),
    };
    let mut resp = result.unwrap_or_else(IntoResponse::into_response);
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
}

impl Returnable {
    fn wrap(body: Body) -> (Body, Arc<Mutex<Option<Body>>>) {
        let slot = Arc::new(Mutex::new(None));
        (Body::new(Returnable { inner: Some(body), slot: slot.clone(), failed: false }), slot)
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
        if let std::task::Poll::Ready(Some(Err(_))) = &polled {
            self.failed = true;
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

// ---------------------------------------------------------------- pagination

fn page_params(pairs: &[(String, String)]) -> OciResult<(i64, Option<String>)> {
    let n = match query(pairs, "n") {
        None | Some("") => DEFAULT_PAGE,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| OciError::new(Code::PaginationNumberInvalid, format!("invalid n {v:?}")))?
            .min(MAX_PAGE),
    };
    Ok((n, query(pairs, "last").filter(|l| !l.is_empty()).map(str::to_string)))
}

fn next_link(path: &str, n: i64, last: &str) -> HeaderValue {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("n", &n.to_string())
        .append_pair("last", last)
        .finish();
    hv(&format!("<{path}?{q}>; rel=\"next\""))
}

async fn catalog(state: &AppState, who: &RegistryCaller, pairs: &[(String, String)]) -> OciResult<Response> {
    // Tokens need `registry:catalog:*` (system admins only); Basic callers see the projects
    // they may see.
    let viewer = match &who.cred {
        Credential::Token(c) if c.allows_catalog() => None,
        Credential::Basic(p) => Some(p),
        Credential::Token(c) if !c.anonymous() => {
            return Err(challenge_error(
                state,
                &who.ctx,
                Code::Denied,
                "the catalog is for system admins",
                Some("registry:catalog:*"),
                Some("insufficient_scope"),
            ))
        }
        _ => {
            return Err(challenge_error(
                state,
                &who.ctx,
                Code::Unauthorized,
                "authentication required",
                Some("registry:catalog:*"),
                None,
            ))
        }
    };
    let (n, last) = page_params(pairs)?;
    let repos =
        if n == 0 { vec![] } else { meta::catalog(&state.db, viewer, n + 1, last.as_deref()).await? };
    let more = repos.len() as i64 > n;
    let repos: Vec<_> = repos.into_iter().take(n as usize).collect();
    let mut resp = axum::Json(json!({ "repositories": repos })).into_response();
    if more {
        if let Some(l) = repos.last() {
            resp.headers_mut().insert(header::LINK, next_link("/v2/_catalog", n, l));
        }
    }
    Ok(resp)
}

async fn tags_list(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    pairs: &[(String, String)],
) -> OciResult<Response> {
    authorize(state, who, name, Action::Pull).await?;
    if !meta::repository_exists(&state.db, name).await? {
        return Err(OciError::new(Code::NameUnknown, format!("repository {name:?} not found")));
    }
    let (n, last) = page_params(pairs)?;
    let tags = if n == 0 { vec![] } else { meta::tags(&state.db, name, n + 1, last.as_deref()).await? };
    let more = tags.len() as i64 > n;
    let tags: Vec<_> = tags.into_iter().take(n as usize).collect();
    let mut resp = axum::Json(json!({ "name": name, "tags": tags })).into_response();
    if more {
        if let Some(l) = tags.last() {
            resp.headers_mut().insert(header::LINK, next_link(&format!("/v2/{name}/tags/list"), n, l));
        }
    }
    Ok(resp)
}

// ---------------------------------------------------------------- manifests

async fn get_manifest(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    reference: &Reference,
    head: bool,
) -> OciResult<Response> {
    let project = authorize(state, who, name, Action::Pull).await?;
    let m = meta::find_manifest(&state.db, name, reference)
        .await?
        .ok_or_else(|| OciError::new(Code::ManifestUnknown, format!("manifest {reference} unknown")))?;
    let body = if head { Bytes::new() } else { state.storage.read_all(&m.digest.blob_key()).await? };
    if !head {
        state.pulls.record(m.artifact_id);
        state.audit.record(who.event("pull", "artifact", artifact_ref(name, reference), project.id));
    }
    let d = m.digest.to_string();
    let mut resp = Response::new(if head { Body::empty() } else { Body::from(body) });
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, hv(&m.media_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(m.size));
    h.insert("docker-content-digest", hv(&d));
    h.insert(header::ETAG, hv(&format!("\"{d}\"")));
    Ok(resp)
}

async fn put_manifest(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    reference: &Reference,
    headers: &HeaderMap,
    pairs: &[(String, String)],
    body: Body,
) -> OciResult<Response> {
    repo_in_project(name)?;
    let project = authorize(state, who, name, Action::Push).await?;
    // A push by digest may tag in the same request: `?tag=a&tag=b` (distribution-spec, "Pushing
    // Manifests"); each accepted tag comes back in an `OCI-Tag` header.
    let query_tags: Vec<&str> = pairs.iter().filter(|(k, _)| k == "tag").map(|(_, v)| v.as_str()).collect();
    if !query_tags.is_empty() {
        if let Reference::Tag(_) = reference {
            return Err(OciError::new(
                Code::TagInvalid,
                "tag query parameters are for a push by digest (PUT /v2/<name>/manifests/<digest>?tag=…)",
            ));
        }
        if query_tags.len() > MAX_QUERY_TAGS {
            return Err(OciError::new(
                Code::TagInvalid,
                format!("at most {MAX_QUERY_TAGS} tag query parameters per request"),
            )
            .status(StatusCode::URI_TOO_LONG));
        }
        if let Some(bad) = query_tags.iter().find(|t| !path::valid_tag(t)) {
            return Err(OciError::new(Code::TagInvalid, format!("invalid tag {bad:?}")));
        }
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = read_limited(body, manifest::MAX_MANIFEST_SIZE).await?;
    let digest = match reference {
        Reference::Digest(d) => {
            let actual = Digest::of(d.algorithm, &body);
            if &actual != d {
                return Err(OciError::new(
                    Code::DigestInvalid,
                    "manifest digest does not match the reference",
                )
                .detail(json!({ "expected": d.to_string(), "actual": actual.to_string() })));
            }
            actual
        }
        // A push by tag is hashed with sha256, unless the client names the digest it expects
        // (`?digest=sha512:…`, as regclient and olareg do for tagged manifests with another
        // algorithm, distribution-spec issue #494): then with that digest's algorithm, and the
        // body must match it.
        Reference::Tag(_) => match pairs.iter().find(|(k, _)| k == "digest") {
            None => Digest::sha256(&body),
            Some((_, want)) => {
                let want: Digest = want
                    .parse()
                    .map_err(|e: digest::DigestError| OciError::new(Code::DigestInvalid, e.to_string()))?;
                let actual = Digest::of(want.algorithm, &body);
                if actual != want {
                    return Err(OciError::new(
                        Code::DigestInvalid,
                        "manifest digest does not match the digest query parameter",
                    )
                    .detail(json!({ "expected": want.to_string(), "actual": actual.to_string() })));
                }
                actual
            }
        },
    };
    let parsed = manifest::parse(content_type.as_deref(), &body)
        .map_err(|m| OciError::new(Code::ManifestInvalid, m))?;
    // Everything referenced must be here.
    let mut blob_sizes = 0u64;
    for b in &parsed.blobs {
        match meta::blob_in_repo(&state.db, name, &b.digest).await? {
            Some(size) if size == b.size => blob_sizes += size,
            Some(size) => {
                return Err(OciError::new(
                    Code::ManifestInvalid,
                    format!("blob {} has size {size}, the manifest says {}", b.digest, b.size),
                ))
            }
            None => {
                return Err(OciError::new(Code::ManifestBlobUnknown, format!("blob {} unknown", b.digest))
                    .detail(json!({ "digest": b.digest.to_string() })))
            }
        }
    }
    for m in &parsed.manifests {
        if !meta::manifest_exists(&state.db, name, &m.digest).await? {
            return Err(OciError::new(Code::ManifestBlobUnknown, format!("manifest {} unknown", m.digest))
                .detail(json!({ "digest": m.digest.to_string() })));
        }
    }
    let size = body.len() as u64;
    // Reserved before the bytes are written: GC cannot be deleting this content meanwhile.
    let gen = meta::reserve_blob(&state.db, &digest, size, "manifest").await?;
    state.storage.put(&digest.blob_key(), body).await?;
    let mut tags: Vec<&str> = match reference {
        Reference::Tag(t) => vec![t.as_str()],
        Reference::Digest(_) => query_tags,
    };
    let mut seen = std::collections::HashSet::new();
    tags.retain(|t| seen.insert(*t));
    meta::put_manifest(&state.db, project.id, name, &digest, size, &parsed, blob_sizes, &tags, gen).await?;
    tracing::info!(repository = name, %digest, tags = ?tags, "manifest pushed");
    if tags.is_empty() {
        let resource = format!("{name}@{digest}");
        state.audit.record(who.event("create", "artifact", resource, project.id).detail(digest.to_string()));
    }
    for t in &tags {
        let resource = format!("{name}:{t}");
        state.audit.record(who.event("create", "artifact", resource, project.id).detail(digest.to_string()));
    }
    let d = digest.to_string();
    let mut resp = StatusCode::CREATED.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, hv(&format!("/v2/{name}/manifests/{d}")));
    h.insert("docker-content-digest", hv(&d));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    if let Some(s) = &parsed.subject {
        h.insert("oci-subject", hv(&s.digest.to_string()));
    }
    if let Reference::Digest(_) = reference {
        for t in &tags {
            h.append("oci-tag", hv(t));
        }
    }
    Ok(resp)
}

async fn delete_manifest(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    reference: &Reference,
) -> OciResult<Response> {
    let project = authorize(state, who, name, Action::Delete).await?;
    let kind = match reference {
        Reference::Tag(t) => {
            if !meta::delete_tag(&state.db, name, t).await? {
                return Err(OciError::new(Code::ManifestUnknown, format!("tag {t:?} unknown")));
            }
            "tag"
        }
        Reference::Digest(_) => {
            let m = meta::find_manifest(&state.db, name, reference).await?.ok_or_else(|| {
                OciError::new(Code::ManifestUnknown, format!("manifest {reference} unknown"))
            })?;
            // Its accessories and the children it frees go with it (one transaction).
            let deleted = meta::delete_artifact(&state.db, m.artifact_id).await?;
            for d in deleted.iter().skip(1) {
                state.audit.record(who.event(
                    "delete",
                    "artifact",
                    format!("{name}@{}", d.digest),
                    project.id,
                ));
            }
            "artifact"
        }
    };
    tracing::info!(repository = name, %reference, "manifest deleted");
    state.audit.record(who.event("delete", kind, artifact_ref(name, reference), project.id));
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn read_limited(body: Body, limit: usize) -> OciResult<Bytes> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| OciError::new(Code::ManifestInvalid, format!("reading the body failed: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(OciError::new(
                Code::ManifestInvalid,
                format!("manifest larger than {} MiB", limit / (1024 * 1024)),
            )
            .status(StatusCode::PAYLOAD_TOO_LARGE));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

// ---------------------------------------------------------------- blobs

/// Parses `Range: bytes=a-b | a- | -n` for an object of `size` bytes.
pub fn parse_range(value: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // multiple ranges: serve the whole object
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let r = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || size == 0 {
            return Some(Err(()));
        }
        (size.saturating_sub(n), size)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() { size } else { b.parse::<u64>().ok()?.saturating_add(1).min(size) };
        if start >= size || start >= end {
            return Some(Err(()));
        }
        (start, end)
    };
    Some(Ok(r))
}

async fn get_blob(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    digest: &Digest,
    headers: &HeaderMap,
    head: bool,
) -> OciResult<Response> {
    authorize(state, who, name, Action::Pull).await?;
    let size = meta::blob_in_repo(&state.db, name, digest)
        .await?
        .ok_or_else(|| OciError::new(Code::BlobUnknown, format!("blob {digest} unknown")))?;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(|v| parse_range(v, size));
    let d = digest.to_string();
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, size),
        Some(Ok((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e),
        Some(Err(())) => {
            return Err(OciError::new(Code::RangeInvalid, "requested range not satisfiable")
                .header(header::CONTENT_RANGE, hv(&format!("bytes */{size}"))))
        }
    };
    let body = if head {
        Body::empty()
    } else {
        let stream =
            state.storage.read(&digest.blob_key(), Some((start, end))).await.map_err(|e| match e {
                crate::storage::StorageError::NotFound => {
                    tracing::error!(%digest, "blob recorded in the database is missing from storage");
                    OciError::new(Code::BlobUnknown, format!("blob {digest} unknown"))
                }
                other => other.into(),
            })?;
        Body::from_stream(stream)
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert("docker-content-digest", hv(&d));
    h.insert(header::ETAG, hv(&format!("\"{d}\"")));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=31536000"));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(header::CONTENT_RANGE, hv(&format!("bytes {start}-{}/{size}", end - 1)));
    }
    Ok(resp)
}

async fn delete_blob(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    digest: &Digest,
) -> OciResult<Response> {
    let project = authorize(state, who, name, Action::Delete).await?;
    if !meta::unlink_blob(&state.db, name, digest).await? {
        return Err(OciError::new(Code::BlobUnknown, format!("blob {digest} unknown")));
    }
    state.audit.record(who.event("delete", "blob", format!("{name}@{digest}"), project.id));
    Ok(StatusCode::ACCEPTED.into_response())
}

// ---------------------------------------------------------------- uploads

fn upload_key(id: &str) -> String {
    format!("uploads/{id}/data")
}

fn upload_response(status: StatusCode, name: &str, id: &str, size: u64) -> Response {
    let mut resp = status.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, hv(&format!("/v2/{name}/blobs/uploads/{id}")));
    h.insert(header::RANGE, hv(&format!("0-{}", size.saturating_sub(1))));
    h.insert("docker-upload-uuid", hv(id));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    resp
}

fn blob_created(name: &str, digest: &Digest) -> Response {
    let d = digest.to_string();
    let mut resp = StatusCode::CREATED.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, hv(&format!("/v2/{name}/blobs/{d}")));
    h.insert("docker-content-digest", hv(&d));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    resp
}

fn digest_param(pairs: &[(String, String)]) -> OciResult<Option<Digest>> {
    query(pairs, "digest")
        .map(|d| d.parse::<Digest>().map_err(|e| OciError::new(Code::DigestInvalid, e.to_string())))
        .transpose()
}

async fn start_upload(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    pairs: &[(String, String)],
    body: Body,
) -> OciResult<Response> {
    repo_in_project(name)?;
    let from_scope = query(pairs, "from")
        .filter(|f| query(pairs, "mount").is_some() && path::valid_name(f))
        .map(|f| token::scope_string(f, &["pull"]));
    authorize_for(state, who, name, Action::Push, from_scope).await?;
    // Cross-repository mount: 201 when the caller may read the source and it has the blob.
    if let (Some(mount), Some(from)) = (query(pairs, "mount"), query(pairs, "from")) {
        let digest: Digest = mount
            .parse()
            .map_err(|e: digest::DigestError| OciError::new(Code::DigestInvalid, e.to_string()))?;
        if path::valid_name(from)
            && authorize(state, who, from, Action::Pull).await.is_ok()
            && meta::mount_blob(&state.db, from, name, &digest).await?
        {
            tracing::info!(repository = name, from, %digest, "blob mounted");
            return Ok(blob_created(name, &digest));
        }
        // Otherwise fall through to a normal upload session (202), as the spec says.
    }
    let id = uuid::Uuid::new_v4().to_string();
    meta::create_upload(&state.db, &id, name, &UploadHasher::new().save()).await?;
    if let Some(digest) = digest_param(pairs)? {
        // Monolithic upload in one POST.
        return complete(state, name, &id, 0, &UploadHasher::new().save(), Some(body), &digest).await;
    }
    Ok(upload_response(StatusCode::ACCEPTED, name, &id, 0))
}

async fn load_upload(state: &AppState, name: &str, id: &str) -> OciResult<meta::Upload> {
    meta::get_upload(&state.db, name, id).await?.ok_or_else(|| {
        OciError::new(Code::BlobUploadUnknown, "upload unknown (finished, cancelled or expired)")
    })
}

async fn upload_status(state: &AppState, who: &RegistryCaller, name: &str, id: &str) -> OciResult<Response> {
    authorize(state, who, name, Action::Push).await?;
    let up = load_upload(state, name, id).await?;
    Ok(upload_response(StatusCode::NO_CONTENT, name, id, up.size))
}

/// `Content-Range: <start>-<end>` (also accepts a `bytes ` / `bytes=` prefix).
pub(crate) fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let v = v.trim();
    let v = v.strip_prefix("bytes=").or_else(|| v.strip_prefix("bytes ")).unwrap_or(v);
    let (a, b) = v.split_once('-')?;
    let b = b.split('/').next()?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// Appends a request body to an upload under a lease, hashing as it streams, and commits
/// the new size and hash state. Returns (new size, hash state).
async fn append(
    state: &AppState,
    id: &str,
    offset: u64,
    hash_state: &[u8],
    body: Body,
) -> OciResult<(u64, Vec<u8>)> {
    if !meta::lease_upload(&state.db, id, offset).await? {
        return Err(OciError::new(
            Code::RangeInvalid,
            "another request is writing this upload, or the offset is stale",
        ));
    }
    let hasher = UploadHasher::restore(hash_state)
        .ok_or_else(|| OciError::internal("stored upload hash state is corrupt"))?;
    let hasher = Arc::new(Mutex::new(hasher));
    let h = hasher.clone();
    // Renew the lease while the body streams; if it is lost (database unreachable for longer
    // than the lease), stop writing: another request may own the upload by now.
    let renewal = LeaseRenewal::start(state, id, offset);
    let lost = renewal.lost.clone();
    let expected = axum::body::HttpBody::size_hint(&body).exact();
    let stream = Coalesce::new(body.into_data_stream(), expected).map_err(std::io::Error::other).and_then(
        move |chunk| {
            let r = if lost.load(Ordering::Relaxed) {
                Err(std::io::Error::other("the upload's lease was lost"))
            } else {
                h.lock().unwrap_or_else(|p| p.into_inner()).update(&chunk);
                Ok(chunk)
            };
            std::future::ready(r)
        },
    );
    let result = state.storage.append(&upload_key(id), offset, Box::pin(stream)).await;
    match result {
        Ok(size) => {
            let saved = hasher.lock().unwrap_or_else(|p| p.into_inner()).save();
            if !meta::commit_append(&state.db, id, offset, size, &saved).await? {
                return Err(lease_lost());
            }
            Ok((size, saved))
        }
        // A lost lease may belong to another request by now: not ours to release.
        Err(_) if renewal.is_lost() => Err(lease_lost()),
        Err(e) => {
            let _ = meta::release_upload(&state.db, id).await;
            Err(e.into())
        }
    }
}

/// Reads of an upload body that returned less than this are followed by a short pause.
const COALESCE_BELOW: usize = 64 * 1024;
const COALESCE_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

/// Read coalescing for upload bodies. A client that sends slower than we can take it (almost
/// every client: the network, TLS or its own disk is slower than hashing and writing here) hands
/// over ~10–20 KiB per socket read, and every read costs a park and a wake-up of the worker,
/// which on a VM are the most expensive thing the push does (a third of the server's CPU per GiB
/// on the benchmark machine). After a small read we wait 1 ms before the next one, so the kernel
/// gathers more into the socket buffer (which TCP keeps open meanwhile: 1 ms is far below its
/// size at any rate); a read that is already large is never delayed, so a fast client is not
/// slowed down, and neither is the end of a body whose length is known (small blobs, manifests).
struct Coalesce<S> {
    inner: S,
    /// Bytes still to come, when the request said (Content-Length).
    remaining: Option<u64>,
    pause: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S> Coalesce<S> {
    fn new(inner: S, expected: Option<u64>) -> Self {
        Coalesce { inner, remaining: expected, pause: None }
    }
}

impl<S, E> futures::Stream for Coalesce<S>
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::future::Future;
        if let Some(p) = self.pause.as_mut() {
            std::task::ready!(p.as_mut().poll(cx));
            self.pause = None;
        }
        let item = std::task::ready!(std::pin::Pin::new(&mut self.inner).poll_next(cx));
        if let Some(Ok(chunk)) = &item {
            let len = chunk.len() as u64;
            self.remaining = self.remaining.map(|r| r.saturating_sub(len));
            if chunk.len() < COALESCE_BELOW && self.remaining != Some(0) {
                self.pause = Some(Box::pin(tokio::time::sleep(COALESCE_PAUSE)));
            }
        }
        std::task::Poll::Ready(item)
    }
}

fn lease_lost() -> OciError {
    OciError::new(
        Code::RangeInvalid,
        "the upload's lease was lost while writing (the database was unreachable); resume from the upload's status",
    )
}

/// Renews an upload's lease every [`meta::LEASE_RENEW_MS`] while a request holds it, until
/// dropped (the request ended, or its future was dropped). `lost` turns true, and renewing
/// stops, when the lease expired meanwhile and may belong to another request.
struct LeaseRenewal {
    task: tokio::task::JoinHandle<()>,
    lost: Arc<AtomicBool>,
}

impl LeaseRenewal {
    fn start(state: &AppState, id: &str, size: u64) -> LeaseRenewal {
        let (db, id, lost) = (state.db.clone(), id.to_string(), Arc::new(AtomicBool::new(false)));
        let flag = lost.clone();
        let task = tokio::spawn(async move {
            let every = std::time::Duration::from_millis(meta::LEASE_RENEW_MS);
            loop {
                tokio::time::sleep(every).await;
                match meta::renew_upload_lease(&db, &id, size).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(upload = %id, "upload lease lost; the request stops writing");
                        flag.store(true, Ordering::Relaxed);
                        return;
                    }
                    // Unreachable database: try again; the lease outlives two missed renewals.
                    Err(e) => tracing::warn!(upload = %id, error = %e, "could not renew an upload lease"),
                }
            }
        });
        LeaseRenewal { task, lost }
    }

    fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }
}

impl Drop for LeaseRenewal {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn patch_upload(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> OciResult<Response> {
    authorize(state, who, name, Action::Push).await?;
    let up = load_upload(state, name, id).await?;
    check_content_range(headers, name, id, up.size)?;
    let (size, _) = append(state, id, up.size, &up.hash_state, body).await?;
    Ok(upload_response(StatusCode::ACCEPTED, name, id, size))
}

/// A chunk's `Content-Range` must start at the upload's committed size: 416 otherwise, before a
/// byte is written (with the upload's `Range` and `Location`, so the client can resume).
fn check_content_range(headers: &HeaderMap, name: &str, id: &str, size: u64) -> OciResult<()> {
    let Some(cr) = headers.get(header::CONTENT_RANGE) else { return Ok(()) };
    let (start, end) = cr
        .to_str()
        .ok()
        .and_then(parse_content_range)
        .ok_or_else(|| OciError::new(Code::RangeInvalid, "malformed Content-Range"))?;
    if start != size || end < start {
        let mut e = OciError::new(Code::RangeInvalid, format!("chunk must start at offset {size}"));
        e.headers.push((header::RANGE, hv(&format!("0-{}", size.saturating_sub(1)))));
        e.headers.push((header::LOCATION, hv(&format!("/v2/{name}/blobs/uploads/{id}"))));
        return Err(e);
    }
    Ok(())
}

async fn finish_upload(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    id: &str,
    headers: &HeaderMap,
    pairs: &[(String, String)],
    body: Body,
) -> OciResult<Response> {
    authorize(state, who, name, Action::Push).await?;
    let digest = digest_param(pairs)?
        .ok_or_else(|| OciError::new(Code::DigestInvalid, "the digest query parameter is required"))?;
    let up = load_upload(state, name, id).await?;
    let has_body =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).map(|v| v != "0").unwrap_or(true);
    if has_body {
        check_content_range(headers, name, id, up.size)?;
    }
    let body = has_body.then_some(body);
    complete(state, name, id, up.size, &up.hash_state, body, &digest).await
}

/// Appends an optional last chunk, verifies the digest and moves the data into place.
async fn complete(
    state: &AppState,
    name: &str,
    id: &str,
    offset: u64,
    hash_state: &[u8],
    body: Option<Body>,
    digest: &Digest,
) -> OciResult<Response> {
    let (size, hash_state) = match body {
        Some(b) => append(state, id, offset, hash_state, b).await?,
        None => (offset, hash_state.to_vec()),
    };
    // The data file exists even for an empty blob.
    if size == 0 && state.storage.stat(&upload_key(id)).await?.is_none() {
        state.storage.put(&upload_key(id), Bytes::new()).await?;
    }
    let actual = match digest.algorithm {
        Algorithm::Sha256 => UploadHasher::restore(&hash_state)
            .ok_or_else(|| OciError::internal("stored upload hash state is corrupt"))?
            .finish(),
        Algorithm::Sha512 => {
            // Rare: one extra streamed read to hash with the algorithm the client chose.
            // Exactly the committed bytes: the data file may be longer after a failed request.
            let stream = take_exactly(state.storage.read(&upload_key(id), None).await?, size);
            Digest::of_stream(Algorithm::Sha512, stream).await.map_err(crate::storage::StorageError::Io)?
        }
    };
    if &actual != digest {
        return Err(OciError::new(Code::DigestInvalid, "the uploaded content does not match the digest")
            .detail(json!({ "expected": digest.to_string(), "actual": actual.to_string() })));
    }
    if !meta::lease_upload(&state.db, id, size).await? {
        return Err(OciError::new(Code::BlobUploadInvalid, "the upload is being written by another request"));
    }
    // Moving a large blob into place (an S3 copy) may take longer than one lease.
    let _renewal = LeaseRenewal::start(state, id, size);
    // Reserve the blob row before the content moves into place: from here GC leaves it alone;
    // when GC is deleting this very content the client is told to retry (the upload stays).
    let gen = match meta::reserve_blob(&state.db, digest, size, "blob").await {
        Ok(gen) => gen,
        Err(e) => {
            let _ = meta::release_upload(&state.db, id).await;
            return Err(e.into());
        }
    };
    let key = digest.blob_key();
    let moved = async {
        if state.storage.stat(&key).await? == Some(size) {
            // Already stored (by another upload of the same content): ours is redundant.
            state.storage.delete(&upload_key(id)).await?;
        } else {
            // Absent, or of the wrong size (damaged): exactly the committed bytes go in place.
            state.storage.commit(&upload_key(id), &key, size).await?;
        }
        Ok::<_, OciError>(())
    }
    .await;
    if let Err(e) = moved {
        let _ = meta::release_upload(&state.db, id).await;
        return Err(e);
    }
    if let Err(e) = meta::record_blob(&state.db, name, digest, gen).await {
        // GC swept the reservation (the window was exceeded): the data may be gone with it, so
        // this session is over; the client uploads again.
        let _ = meta::delete_upload(&state.db, id).await;
        return Err(e.into());
    }
    meta::delete_upload(&state.db, id).await?;
    tracing::info!(repository = name, %digest, size, "blob pushed");
    Ok(blob_created(name, digest))
}

/// The first `n` bytes of a stream; an error when it ends sooner.
fn take_exactly(stream: crate::storage::ByteStream, n: u64) -> crate::storage::ByteStream {
    Box::pin(futures::stream::unfold((stream, n), |(mut s, left)| async move {
        if left == 0 {
            return None;
        }
        match s.next().await {
            Some(Ok(mut chunk)) => {
                if chunk.len() as u64 > left {
                    chunk.truncate(left as usize);
                }
                let left = left - chunk.len() as u64;
                Some((Ok(chunk), (s, left)))
            }
            Some(Err(e)) => Some((Err(e), (s, 0))),
            None => Some((
                Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "upload data is short")),
                (s, 0),
            )),
        }
    }))
}

async fn cancel_upload(state: &AppState, who: &RegistryCaller, name: &str, id: &str) -> OciResult<Response> {
    authorize(state, who, name, Action::Push).await?;
    load_upload(state, name, id).await?;
    meta::delete_upload(&state.db, id).await?;
    state.storage.delete(&upload_key(id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------- referrers

async fn referrers(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    digest: &Digest,
    pairs: &[(String, String)],
) -> OciResult<Response> {
    authorize(state, who, name, Action::Pull).await?;
    let filter = query(pairs, "artifactType").filter(|t| !t.is_empty());
    let found = meta::referrers(&state.db, name, digest, filter).await?;
    let mut manifests = Vec::with_capacity(found.len());
    for r in found {
        // The spec's artifactType: the manifest's own, else an image manifest's config media
        // type; an index without one has none (the field is omitted, never "").
        let artifact_type = if !r.artifact_type.is_empty() {
            Some(r.artifact_type.clone())
        } else if r.media_type == manifest::OCI_MANIFEST || r.media_type == manifest::DOCKER_MANIFEST {
            let d: Digest = r.digest.parse().map_err(|_| OciError::internal("stored digest is invalid"))?;
            manifest::config_media_type(&state.storage.read_all(&d.blob_key()).await?)
        } else {
            None
        };
        if filter.is_some() && artifact_type.as_deref() != filter {
            continue;
        }
        manifests.push((r, artifact_type));
    }
    let manifests: Vec<_> = manifests
        .into_iter()
        .map(|(r, artifact_type)| {
            let mut d = json!({
                "mediaType": r.media_type,
                "digest": r.digest,
                "size": r.size,
            });
            if let Some(t) = artifact_type {
                d["artifactType"] = json!(t);
            }
            if let Ok(serde_json::Value::Object(a)) =
                serde_json::from_str::<serde_json::Value>(&r.annotations)
            {
                if !a.is_empty() {
                    d["annotations"] = serde_json::Value::Object(a);
                }
            }
            d
        })
        .collect();
    let body = json!({ "schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": manifests });
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(manifest::OCI_INDEX));
    if filter.is_some() {
        resp.headers_mut().insert("oci-filters-applied", HeaderValue::from_static("artifactType"));
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Ok((0, 10))));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok((90, 100))));
        assert_eq!(parse_range("bytes=-10", 100), Some(Ok((90, 100))));
        assert_eq!(parse_range("bytes=95-200", 100), Some(Ok((95, 100))));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=5-4", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=x-y", 100), None);
    }

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes=100-199"), Some((100, 199)));
        assert_eq!(parse_content_range("bytes 100-199/300"), Some((100, 199)));
        assert_eq!(parse_content_range("nope"), None);
    }

    #[tokio::test]
    async fn coalescing_keeps_every_byte_in_order_and_never_pauses_after_a_known_end() {
        use futures::StreamExt;
        let chunks: Vec<Bytes> = vec![
            Bytes::from(vec![1u8; 100]),
            Bytes::from(vec![2u8; COALESCE_BELOW]),
            Bytes::from(vec![3u8; 10]),
        ];
        let total: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        for expected in [Some(total), None] {
            let inner = futures::stream::iter(chunks.clone().into_iter().map(Ok::<_, std::io::Error>));
            let mut s = Coalesce::new(inner, expected);
            let mut got = Vec::new();
            let mut pauses = Vec::new();
            while let Some(c) = s.next().await {
                got.push(c.unwrap());
                pauses.push(s.pause.is_some());
            }
            assert_eq!(got, chunks);
            // small read → pause; large read → none; the last small read pauses only when the
            // length is unknown (its end could not be told apart from a slow client).
            assert_eq!(pauses, vec![true, false, expected.is_none()], "expected length {expected:?}");
        }
    }
}

//! Server side of the portal: implements `app::backend::PortalBackend` on the same service
//! functions the REST API uses, and guards server-function posts against cross-site requests.
//!
//! The portal talks to the server through Leptos server functions (`/portal/fn/<name>`), not
//! through the REST API. Server functions are cookie-authenticated writes, so instead of the
//! REST API's `X-Harbor-CSRF-Token` they are protected by Fetch Metadata / Origin checks
//! (`same_origin_guard`) plus the `SameSite=Lax` session cookie; both work for plain
//! (JavaScript-free) form posts too.

use std::sync::Arc;

use app::backend::PortalBackend;
use app::error::PortalError;
use app::model::{
    ApiReply, ArtifactPage, ArtifactView, GcOverview, GcRunView, GcScheduleView, ProjectPage, ProjectView,
    RepoPage, RepoView, UsageView, UserView,
};
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

use crate::accounts::User;
use crate::api::error::ApiError;
use crate::auth;
use crate::projects::{self, ListQuery};
use crate::state::AppState;

pub struct Backend {
    state: AppState,
    /// The REST API (`/api/v2.0` routes) the portal's reads and writes go through.
    api: axum::Router,
}

impl Backend {
    pub fn shared(state: AppState) -> Arc<dyn PortalBackend> {
        let api = crate::api::v2_routes().with_state(state.clone());
        Arc::new(Backend { state, api })
    }
}

/// Headers of the browser's request the REST handlers may look at (client address and
/// external URL behind a trusted proxy, user agent). Never `Authorization` or `Cookie`: the
/// caller is the session, passed along as it is.
const FORWARDED: [header::HeaderName; 2] = [header::HOST, header::USER_AGENT];
const FORWARDED_X: [&str; 3] = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"];

/// A REST error body's message (`{"errors":[{"code","message"}]}`).
fn rest_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect())
}

fn user_view(u: &User) -> UserView {
    UserView {
        id: u.id,
        username: u.username.clone(),
        realname: u.realname.clone(),
        email: u.email.clone(),
        sysadmin: u.sysadmin,
    }
}

fn portal_error(e: ApiError) -> PortalError {
    match e {
        ApiError::Unauthorized(_) => PortalError::Unauthorized,
        ApiError::TooManyRequests { retry_after, locked: true, .. } => PortalError::Locked(retry_after),
        ApiError::TooManyRequests { retry_after, locked: false, .. } => PortalError::Busy(retry_after),
        ApiError::Forbidden(_) => PortalError::Forbidden,
        ApiError::BadRequest(m) | ApiError::Conflict(m) | ApiError::NotFound(m) => PortalError::Invalid(m),
        ApiError::Internal(err) => {
            tracing::error!(error = ?err, "portal request failed");
            PortalError::Server("internal server error; see the server log".into())
        }
        other => PortalError::Server(other.to_string()),
    }
}

async fn session() -> Result<Session, PortalError> {
    leptos_axum::extract::<Session>().await.map_err(|e| PortalError::Server(format!("no session: {e}")))
}

impl Backend {
    async fn user(&self) -> Result<Option<User>, PortalError> {
        let s = session().await?;
        auth::session_user(&self.state, &s).await.map_err(portal_error)
    }

    /// `user` may list `res` in project `p` (the same RBAC as the REST API).
    async fn require(
        &self,
        user: User,
        p: &projects::Project,
        res: crate::rbac::Resource,
    ) -> Result<(), PortalError> {
        let access = crate::rbac::ProjectAccess { id: p.id, public: p.public };
        let who = crate::rbac::Principal::User(user);
        let ok = crate::rbac::allowed(&self.state.db, Some(&who), access, res, crate::rbac::Act::List)
            .await
            .map_err(|e| portal_error(e.into()))?;
        if ok {
            Ok(())
        } else {
            Err(PortalError::Forbidden)
        }
    }

    /// The signed-in system admin, or the error the page shows.
    async fn admin(&self) -> Result<User, PortalError> {
        let user = self.user().await?.ok_or(PortalError::Unauthorized)?;
        if !user.sysadmin {
            return Err(PortalError::Forbidden);
        }
        Ok(user)
    }

    /// An audit row for an action of `user` in the portal.
    fn audit(&self, user: &User, operation: &str, resource_type: &str, resource: String, detail: String) {
        let ctx = leptos::prelude::use_context::<axum::http::request::Parts>()
            .map(|p| crate::client::ClientCtx::from_parts(&self.state.config, &p));
        let mut e =
            crate::audit::Event::new(&user.username, operation, resource_type, resource).detail(detail);
        if let Some(ctx) = ctx {
            e = e.ip(&ctx.ip);
        }
        self.state.audit.record(e);
    }
}

fn gc_run_view(j: &crate::jobs::Job) -> GcRunView {
    let h = crate::api::gc::history(j);
    let params: serde_json::Value = serde_json::from_str(&j.parameters).unwrap_or_default();
    // A finished run's numbers are in its result; a live one's in its progress.
    let n = if h.result.is_object() && h.result.get("bytes").is_some() { &h.result } else { &h.progress };
    let u = |k: &str| n.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    GcRunView {
        id: j.id,
        job_kind: j.job_kind.clone(),
        status: h.job_status.clone(),
        dry_run: params["dry_run"].as_bool().unwrap_or(false),
        delete_untagged: params["delete_untagged"].as_bool().unwrap_or(false),
        created_by: j.created_by.clone(),
        created_at: j.created_at,
        started_at: j.started_at,
        finished_at: j.finished_at,
        phase: h.progress.get("phase").and_then(|v| v.as_str()).unwrap_or("").to_string(),
        done: h.progress.get("done").and_then(|v| v.as_u64()).unwrap_or(0),
        total: h.progress.get("total").and_then(|v| v.as_u64()).unwrap_or(0),
        blobs: u("blobs"),
        manifests: u("manifests"),
        artifacts: u("artifacts"),
        uploads: u("uploads"),
        bytes: u("bytes"),
        error: j.error.clone(),
    }
}

#[async_trait::async_trait]
impl PortalBackend for Backend {
    async fn rest(
        &self,
        method: String,
        path: String,
        body: Option<String>,
    ) -> Result<ApiReply, PortalError> {
        use tower::ServiceExt;
        let method = match method.as_str() {
            "GET" => Method::GET,
            "POST" => Method::POST,
            "PUT" => Method::PUT,
            "PATCH" => Method::PATCH,
            "DELETE" => Method::DELETE,
            other => return Err(PortalError::Invalid(format!("method {other} is not allowed"))),
        };
        if !path.starts_with('/') || path.starts_with("//") {
            return Err(PortalError::Invalid(format!("invalid API path {path:?}")));
        }
        let mut req = Request::builder()
            .method(method)
            .uri(&path)
            .header("x-is-resource-name", "true")
            .body(match body {
                Some(b) => axum::body::Body::from(b),
                None => axum::body::Body::empty(),
            })
            .map_err(|e| PortalError::Invalid(format!("invalid API path {path:?}: {e}")))?;
        if axum::body::HttpBody::size_hint(req.body()).exact() != Some(0) {
            req.headers_mut()
                .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
        }
        if let Some(parts) = leptos::prelude::use_context::<axum::http::request::Parts>() {
            for name in FORWARDED {
                if let Some(v) = parts.headers.get(&name) {
                    req.headers_mut().insert(name, v.clone());
                }
            }
            for name in FORWARDED_X {
                if let Some(v) = parts.headers.get(name) {
                    req.headers_mut().insert(name, v.clone());
                }
            }
            if let Some(ci) = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>() {
                req.extensions_mut().insert(*ci);
            }
        }
        req.extensions_mut().insert(session().await?);
        req.extensions_mut().insert(crate::auth::PortalCall);
        let res = self.api.clone().oneshot(req).await.unwrap_or_else(|e| match e {});
        let status = res.status();
        let total = res
            .headers()
            .get("x-total-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok());
        let retry_after = res
            .headers()
            .get(axum::http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let bytes = axum::body::to_bytes(res.into_body(), 32 << 20)
            .await
            .map_err(|e| PortalError::Server(format!("reading the API's answer: {e}")))?;
        if status.is_success() {
            return Ok(ApiReply {
                status: status.as_u16(),
                total,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        let message = rest_message(&bytes);
        Err(match status {
            StatusCode::UNAUTHORIZED => PortalError::Unauthorized,
            StatusCode::FORBIDDEN => PortalError::Forbidden,
            // Session calls check no password: a 429 here is a full queue, not a lockout.
            StatusCode::TOO_MANY_REQUESTS => PortalError::Busy(retry_after.unwrap_or(1)),
            s if s.is_client_error() => PortalError::Invalid(message),
            _ => PortalError::Server(message),
        })
    }

    async fn current_user(&self) -> Result<Option<UserView>, PortalError> {
        Ok(self.user().await?.as_ref().map(user_view))
    }

    async fn login(&self, username: String, password: String) -> Result<UserView, PortalError> {
        if username.is_empty() || password.is_empty() {
            return Err(PortalError::InvalidCredentials);
        }
        let s = session().await?;
        let ctx = leptos::prelude::use_context::<axum::http::request::Parts>()
            .map(|p| crate::client::ClientCtx::from_parts(&self.state.config, &p))
            .unwrap_or_else(|| {
                crate::client::ClientCtx::resolve(&self.state.config, None, &Default::default())
            });
        let (user, _csrf) =
            auth::login_session(&self.state, &s, &username, &password, &ctx).await.map_err(|e| match e {
                // The only 401 a login gives: wrong name or password.
                ApiError::Unauthorized(_) => PortalError::InvalidCredentials,
                other => portal_error(other),
            })?;
        Ok(user_view(&user))
    }

    async fn logout(&self) -> Result<(), PortalError> {
        session().await?.flush().await.map_err(|e| portal_error(e.into()))
    }

    async fn list_projects(
        &self,
        name: String,
        page: u64,
        page_size: u64,
    ) -> Result<ProjectPage, PortalError> {
        let user = self.user().await?.ok_or(PortalError::Unauthorized)?;
        let (page, page_size) = crate::api::Pagination { page: Some(page), page_size: Some(page_size) }
            .resolve()
            .map_err(portal_error)?;
        let q = ListQuery { name: Some(name), page, page_size, ..Default::default() };
        let user_id = user.id;
        let who = crate::rbac::Principal::User(user);
        let (items, total) =
            projects::list_visible(&self.state.db, Some(&who), &q).await.map_err(portal_error)?;
        // Storage of the listed projects only, in one query; the user's roles in another.
        let ids: Vec<i64> = items.iter().map(|p| p.id).collect();
        let usage =
            crate::usage::usage(&self.state.db, Some(&ids)).await.map_err(|e| portal_error(e.into()))?;
        let roles =
            projects::roles_of(&self.state.db, user_id, &ids).await.map_err(|e| portal_error(e.into()))?;
        let views = items
            .into_iter()
            .map(|p| ProjectView {
                storage_bytes: usage.get(&p.id).copied().unwrap_or(0),
                role_id: roles.get(&p.id).map(|r| r.id()).unwrap_or(0),
                id: p.id,
                name: p.name,
                public: p.public,
                owner_name: p.owner_name,
                created_at: p.created_at,
                repo_count: p.repo_count,
            })
            .collect();
        Ok(ProjectPage { items: views, total, page, page_size })
    }

    async fn list_repositories(
        &self,
        project: String,
        name: String,
        page: u64,
        page_size: u64,
    ) -> Result<RepoPage, PortalError> {
        let user = self.user().await?.ok_or(PortalError::Unauthorized)?;
        let db = &self.state.db;
        let err = |e: sqlx::Error| portal_error(e.into());
        let p = projects::get_by_name(db, &project)
            .await
            .map_err(err)?
            .ok_or_else(|| PortalError::Invalid(format!("project {project} not found")))?;
        self.require(user, &p, crate::rbac::Resource::Repository).await?;
        let mut sql = crate::db::query::Sql::new();
        sql.push("r.project_id = ?", crate::db::query::Bind::I(p.id));
        if !name.is_empty() {
            sql.push("lower(r.name) LIKE ? ESCAPE '\\'", crate::db::query::contains(&name));
        }
        let (rows, total) = crate::artifacts::list_repositories(
            db,
            &sql,
            " ORDER BY r.updated_at DESC, r.id DESC",
            page,
            page_size,
        )
        .await
        .map_err(err)?;
        Ok(RepoPage {
            project: p.name,
            public: p.public,
            items: rows
                .into_iter()
                .map(|r| RepoView {
                    name: r.name,
                    artifact_count: r.artifact_count,
                    pull_count: r.pull_count,
                    updated_at: r.updated_at,
                })
                .collect(),
            total,
            page,
            page_size,
        })
    }

    async fn list_artifacts(
        &self,
        repository: String,
        page: u64,
        page_size: u64,
    ) -> Result<ArtifactPage, PortalError> {
        let user = self.user().await?.ok_or(PortalError::Unauthorized)?;
        let db = &self.state.db;
        let err = |e: sqlx::Error| portal_error(e.into());
        let not_found = || PortalError::Invalid(format!("repository {repository} not found"));
        let repo = crate::artifacts::get_repository(db, &repository, false)
            .await
            .map_err(err)?
            .ok_or_else(not_found)?;
        let p = projects::get(db, repo.project_id).await.map_err(err)?.ok_or_else(not_found)?;
        self.require(user, &p, crate::rbac::Resource::Artifact).await?;
        let q = crate::api::query::Query::default();
        let (rows, total) = crate::artifacts::list_artifacts(db, repo.id, &q, &[], page, page_size)
            .await
            .map_err(portal_error)?;
        let ids: Vec<i64> = rows.iter().map(|a| a.id).collect();
        let mut tags = crate::artifacts::tags_of(db, &ids).await.map_err(err)?;
        let mut platforms = std::collections::HashMap::new();
        for a in
            rows.iter().filter(|a| a.media_type.contains("index") || a.media_type.contains("manifest.list"))
        {
            let list: Vec<String> = crate::artifacts::references(db, a)
                .await
                .map_err(err)?
                .into_iter()
                .filter_map(|(_, p, _)| {
                    let p: serde_json::Value = serde_json::from_str(&p).ok()?;
                    let parts: Vec<&str> =
                        ["os", "architecture", "variant"].iter().filter_map(|k| p[*k].as_str()).collect();
                    (!parts.is_empty()).then(|| parts.join("/"))
                })
                .collect();
            let mut list = list;
            list.sort();
            list.dedup();
            platforms.insert(a.id, list);
        }
        Ok(ArtifactPage {
            repository: repo.name,
            registry: self.state.config.registry_host(),
            items: rows
                .into_iter()
                .map(|a| {
                    let index = a.media_type.contains("index") || a.media_type.contains("manifest.list");
                    ArtifactView {
                        kind: if index {
                            "INDEX".into()
                        } else {
                            crate::artifacts::kind(&a.media_type, &a.artifact_type).into()
                        },
                        tags: tags.remove(&a.id).unwrap_or_default().into_iter().map(|t| t.name).collect(),
                        platforms: platforms.remove(&a.id).unwrap_or_default(),
                        digest: a.digest,
                        media_type: a.media_type,
                        size: a.size,
                        pushed_at: a.pushed_at,
                        pulled_at: a.pulled_at,
                    }
                })
                .collect(),
            total,
            page,
            page_size,
        })
    }

    async fn gc_overview(&self) -> Result<GcOverview, PortalError> {
        self.admin().await?;
        let db = &self.state.db;
        let err = |e: sqlx::Error| portal_error(e.into());
        let (jobs, _) = crate::jobs::list(db, "gc", 0, 20).await.map_err(err)?;
        let schedule = crate::jobs::get_schedule(db, "gc").await.map_err(err)?.map(|s| GcScheduleView {
            kind: crate::api::gc::schedule_kind(&s.cron).to_string(),
            delete_untagged: s.parameters.contains("\"delete_untagged\":true"),
            cron: s.cron,
            next_run: s.next_run,
        });
        let (live, deleting) = crate::gc::total_usage(db).await.map_err(err)?;
        let usage = crate::usage::usage(db, None).await.map_err(err)?;
        let names: std::collections::HashMap<i64, String> =
            sqlx::query_as::<_, (i64, String)>("SELECT id, name FROM projects")
                .fetch_all(&db.pool)
                .await
                .map_err(err)?
                .into_iter()
                .collect();
        let mut projects: Vec<UsageView> = usage
            .into_iter()
            .filter(|(_, bytes)| *bytes > 0)
            .map(|(id, bytes)| UsageView {
                project: names.get(&id).cloned().unwrap_or_else(|| id.to_string()),
                bytes,
            })
            .collect();
        projects.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.project.cmp(&b.project)));
        projects.truncate(20);
        Ok(GcOverview {
            runs: jobs.iter().map(gc_run_view).collect(),
            schedule,
            total_bytes: live + deleting,
            projects,
        })
    }

    async fn gc_start(&self, dry_run: bool, delete_untagged: bool) -> Result<i64, PortalError> {
        let user = self.admin().await?;
        let params = crate::gc::GcParams { dry_run, delete_untagged, workers: None };
        let id =
            crate::api::gc::start_run(&self.state, &user.username, &params).await.map_err(portal_error)?;
        let detail = serde_json::to_string(&params).unwrap_or_default();
        self.audit(&user, "create", "gc", format!("gc/{id}"), detail);
        Ok(id)
    }

    async fn gc_stop(&self, id: i64) -> Result<(), PortalError> {
        let user = self.admin().await?;
        use crate::jobs::StopOutcome;
        let job = crate::jobs::get(&self.state.db, id).await.map_err(|e| portal_error(e.into()))?;
        if job.as_ref().is_none_or(|j| j.kind != "gc") {
            return Err(PortalError::Invalid(format!("garbage collection {id} not found")));
        }
        match crate::jobs::request_stop(&self.state.db, id).await.map_err(|e| portal_error(e.into()))? {
            StopOutcome::Stopped | StopOutcome::Stopping => {
                self.audit(&user, "stop", "gc", format!("gc/{id}"), String::new());
                Ok(())
            }
            _ => Err(PortalError::Invalid(format!("garbage collection {id} is not running"))),
        }
    }

    async fn gc_schedule(
        &self,
        kind: String,
        cron: String,
        delete_untagged: bool,
    ) -> Result<(), PortalError> {
        let user = self.admin().await?;
        if kind == "Manual" {
            return Err(PortalError::Invalid("use Run garbage collection to run now".into()));
        }
        let schedule = crate::api::gc::ScheduleObj { kind, cron, next_scheduled_time: None };
        let params = crate::gc::GcParams { dry_run: false, delete_untagged, workers: None };
        let set =
            crate::api::gc::apply_schedule(&self.state, &schedule, &params).await.map_err(portal_error)?;
        self.audit(&user, "update", "gc_schedule", "gc".into(), set.unwrap_or_else(|| "none".into()));
        Ok(())
    }
}

/// Refuses cross-site writes to portal routes (`auth::cross_site`).
pub async fn same_origin_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    if auth::cross_site(&state.config, peer, req.headers()) {
        ApiError::Forbidden("cross-site request refused".into()).into_response()
    } else {
        next.run(req).await
    }
}

/// Leptos answers every server-function error with a 500. The client reads the error from the
/// body whatever the status, but a 500 says "server bug" to load balancers, logs and monitoring:
/// a wrong password or a bad cron expression is the caller's error. So the status follows the
/// error: 401 (sign in / bad credentials), 429 (locked), 403, 400; only `Server` stays a 500.
pub async fn server_fn_status(req: Request, next: Next) -> Response {
    let is_fn = req.uri().path().starts_with("/portal/fn/");
    let res = next.run(req).await;
    if !is_fn || res.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "error body too large").into_response();
    };
    if let Ok(e) = serde_json::from_slice::<PortalError>(&bytes) {
        parts.status = match e {
            PortalError::Unauthorized | PortalError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            PortalError::Locked(_) | PortalError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            PortalError::Forbidden => StatusCode::FORBIDDEN,
            PortalError::Invalid(_) => StatusCode::BAD_REQUEST,
            PortalError::Server(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

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
use app::model::{ProjectPage, ProjectView, UserView};
use axum::extract::{Request, State};
use axum::http::{header, Method};
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
}

impl Backend {
    pub fn shared(state: AppState) -> Arc<dyn PortalBackend> {
        Arc::new(Backend { state })
    }
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
        ApiError::TooManyRequests { retry_after, .. } => PortalError::Locked(retry_after),
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
}

#[async_trait::async_trait]
impl PortalBackend for Backend {
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
        let who = crate::rbac::Principal::User(user);
        let (items, total) =
            projects::list_visible(&self.state.db, Some(&who), &q).await.map_err(portal_error)?;
        Ok(ProjectPage {
            items: items
                .into_iter()
                .map(|p| ProjectView {
                    id: p.id,
                    name: p.name,
                    public: p.public,
                    owner_name: p.owner_name,
                    created_at: p.created_at,
                })
                .collect(),
            total,
            page,
            page_size,
        })
    }
}

/// Refuses cross-site writes to portal routes: `Sec-Fetch-Site` must be `same-origin` or `none`
/// when the browser sends it; otherwise an `Origin` header must name this host.
pub async fn same_origin_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let h = req.headers();
    let allowed = if let Some(site) = h.get("sec-fetch-site") {
        matches!(site.as_bytes(), b"same-origin" | b"none")
    } else if let Some(origin) = h.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let origin_host = url::Url::parse(origin).ok().map(|u| match u.port() {
            Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
            None => u.host_str().unwrap_or_default().to_string(),
        });
        let host = h.get("x-forwarded-host").or_else(|| h.get(header::HOST)).and_then(|v| v.to_str().ok());
        origin == state.config.external_base() || (origin_host.is_some() && origin_host.as_deref() == host)
    } else {
        // Neither header: not a browser (browsers send Origin on every cross-origin POST).
        true
    };
    if allowed {
        next.run(req).await
    } else {
        ApiError::Forbidden("cross-site request refused".into()).into_response()
    }
}

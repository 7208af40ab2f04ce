//! Every route, grouped by client, in one place:
//!
//! | prefix | client | module |
//! |---|---|---|
//! | `/api/v2.0/…` | scripts, CI, Harbor tooling (Basic auth or session + CSRF header) | `api` |
//! | `/c/login`, `/c/log_out` | Harbor-style portal login (form post) | `api::session` |
//! | `/c/oidc/login`, `/c/oidc/callback`, `/c/oidc/onboard` | OpenID Connect sign-in (browser) | `api::oidc` |
//! | `/portal/fn/…` | the portal's server functions (session + same-origin check) | `app::server_fns`, `portal` |
//! | `/pkg/…` | wasm, JS and CSS of the portal | static files from `portal.site_root` |
//! | everything else | the portal's pages, server-rendered by Leptos | `app::pages` |
//!
//! | `/v2/…` | docker, podman, skopeo, oras (OCI Distribution v1.1) | `registry` |
//! | `/service/token`, `/service/token/jwks` | the same clients, for bearer tokens | `token` |

use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::http::{header, HeaderName, HeaderValue, Request, StatusCode};
use axum::middleware::{self, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_sessions::cookie::{Key, SameSite};
use tower_sessions::{Expiry, SessionManagerLayer};
use tracing::Level;

use crate::api;
use crate::api::error::ApiError;
use crate::portal;
use crate::registry;
use crate::state::AppState;
use crate::token;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let leptos_options = state.leptos.clone();
    let routes = generate_route_list(app::App);
    let backend = portal::Backend::shared(state.clone());
    let context = move || provide_context(backend.clone());

    let portal = Router::new()
        .leptos_routes_with_context(&state, routes, context, {
            let o = leptos_options.clone();
            move || app::shell(o.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(app::shell))
        .layer(from_fn_with_state(state.clone(), portal::same_origin_guard))
        .layer(middleware::from_fn(portal::server_fn_status));

    let pkg_dir = std::path::Path::new(&*leptos_options.site_root).join("pkg");
    let assets = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        ))
        .service(ServeDir::new(pkg_dir).precompressed_gzip().precompressed_br());

    let timeout = time::Duration::seconds(state.config.session.timeout.as_secs() as i64);
    let sessions = SessionManagerLayer::new(state.sessions.clone())
        .with_name("sid")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.config.secure_cookie())
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(timeout))
        .with_always_save(true)
        .with_signed(Key::from(&state.secrets.session_key));

    // The registry and the token service are mounted outside the session layer: they never
    // read portal sessions.
    let registry = Router::new()
        .route("/v2", any(registry::base))
        .route("/v2/", any(registry::base))
        .route("/v2/{*rest}", any(registry::dispatch))
        .route("/service/token", get(token::get_token).post(token::post_token))
        .route("/service/token/jwks", get(token::jwks))
        .route("/.well-known/jwks.json", get(token::jwks));

    let metric = state.config.metric.clone();
    let mut registry = registry;
    if metric.enabled {
        crate::metrics::install();
        if metric.port == 0 {
            registry = registry.route(&metric.path, get(crate::metrics::handler));
        }
    }

    let app = Router::new()
        .nest("/api/v2.0", api::v2_routes())
        .nest("/c", api::c_routes())
        .nest_service("/pkg", assets)
        .merge(portal)
        .layer(sessions)
        .layer(middleware::from_fn(session_save_failure))
        .merge(registry)
        .route("/language", get(switch_language))
        .with_state(state);
    let app = if metric.enabled { app.layer(middleware::from_fn(crate::metrics::track)) } else { app };
    app.layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request<_>| {
                            let id = req
                                .extensions()
                                .get::<RequestId>()
                                .and_then(|r| r.header_value().to_str().ok())
                                .unwrap_or("-");
                            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
                        })
                        .on_response(DefaultOnResponse::new().level(Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(CatchPanicLayer::custom(|_| {
                    tracing::error!("handler panicked");
                    axum::response::IntoResponse::into_response(ApiError::internal(anyhow::anyhow!("panic")))
                })),
        )
}

/// How long in-flight requests may run after SIGTERM before the server stops anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// tower-sessions answers a bare, empty 500 when saving the session fails after the handler
/// ran (Redis restarting between the load and the save). That is the session store being
/// unavailable, not a bug: answer a retryable 503 in the REST error format instead. Handler
/// 500s always carry an error body, so they are told apart by the empty body.
async fn session_save_failure(req: Request<Body>, next: middleware::Next) -> Response {
    let res = next.run(req).await;
    if res.status() == StatusCode::INTERNAL_SERVER_ERROR && res.body().size_hint().exact() == Some(0) {
        tracing::warn!("the session store failed to save the session; answering 503");
        return ApiError::Unavailable("the session store is unavailable; retry later".into()).into_response();
    }
    res
}

#[derive(serde::Deserialize)]
struct LanguageQuery {
    lang: String,
    #[serde(default)]
    redirect: String,
}

/// `GET /language?lang=zh-CN&redirect=/harbor/projects`: remembers the portal language in the
/// `berth-lang` cookie (a year) and goes back to the page (same-site paths only). A preference,
/// not an authenticated action: no session needed, nothing to protect with CSRF.
async fn switch_language(axum::extract::Query(q): axum::extract::Query<LanguageQuery>) -> Response {
    let Some(lang) = app::i18n::Lang::from_tag(&q.lang) else {
        return ApiError::BadRequest(format!("unknown language {:?}; use en-US or zh-CN", q.lang))
            .into_response();
    };
    let target = if app::server_fns::auth::is_local_path(&q.redirect) {
        q.redirect.as_str()
    } else {
        "/harbor/projects"
    };
    let cookie = format!("{}={}; Path=/; Max-Age=31536000; SameSite=Lax", app::i18n::COOKIE, lang.tag());
    let mut res = axum::response::Redirect::to(target).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

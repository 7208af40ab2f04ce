//! The portal: Leptos components, pages and server functions shared by SSR (`ssr` feature,
//! compiled into `server`) and hydration (`hydrate` feature, compiled to wasm by `frontend`).
//!
//! **This crate has no server-only dependency outside the `ssr` feature**, and it never touches
//! the database. **Pages reach the server one way: the REST API**, relayed in-process by the
//! `api` server function (`server_fns::api`, `PortalBackend::rest`, implemented in `server`);
//! the only other server functions start and end the session (`server_fns::auth`) or turn a
//! JavaScript-free form post into one relayed REST call (`server_fns::gc`). The REST API's
//! JSON types are defined once, here, in `rest`; the server's handlers answer with them.

#![recursion_limit = "512"]

pub mod components;
pub mod error;
pub mod i18n;
pub mod pages;
pub mod rest;
pub mod server_fns;

#[cfg(feature = "ssr")]
pub mod backend;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{Redirect, Route, Router, Routes};
use leptos_router::{path, SsrMode};

/// The HTML document around the app, rendered on the server only. Type-erased (`AnyView`): the
/// server instantiates leptos_axum's handlers with this type, and the concrete view type's name
/// runs to megabytes, which went into every binary's debug info (~850 MB each).
pub fn shell(options: LeptosOptions) -> AnyView {
    // The language of this response, from the `berth-lang` cookie (see `i18n`).
    #[cfg(feature = "ssr")]
    let lang = use_context::<http::request::Parts>()
        .and_then(|p| {
            p.headers
                .get(http::header::COOKIE)
                .and_then(|v| v.to_str().ok())
                .map(i18n::Lang::from_cookie_header)
        })
        .unwrap_or_default();
    #[cfg(not(feature = "ssr"))]
    let lang = i18n::Lang::default();
    provide_context(lang);
    view! {
        <!DOCTYPE html>
        <html lang=lang.tag()>
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="stylesheet" href="/pkg/berth.css" />
                <link rel="icon" type="image/svg+xml" href="/pkg/favicon.svg" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
    .into_any()
}

/// The portal. Type-erased like `shell`, for the same reason: the server's route rendering is
/// generic over this type.
#[component]
pub fn App() -> AnyView {
    provide_meta_context();
    // Hydrating: the server wrote the page's language into <html lang>.
    #[cfg(feature = "hydrate")]
    {
        let tag = document().document_element().and_then(|e| e.get_attribute("lang")).unwrap_or_default();
        provide_context(i18n::Lang::from_tag(&tag).unwrap_or_default());
    }
    // Marks the document once the wasm has hydrated it (end-to-end tests wait for this).
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Title text="Berth" />
        <Router>
            <Routes fallback=pages::not_found::NotFound>
                <Route path=path!("/") view=|| view! { <Redirect path="/harbor/projects" /> } />
                <Route path=path!("/account/sign-in") view=pages::sign_in::SignIn ssr=SsrMode::Async />
                <Route path=path!("/harbor/projects") view=pages::projects::Projects ssr=SsrMode::Async />
                <Route path=path!("/harbor/projects/:project") view=pages::project::ProjectSummary ssr=SsrMode::Async />
                <Route path=path!("/harbor/projects/:project/summary") view=pages::project::ProjectSummary ssr=SsrMode::Async />
                <Route path=path!("/harbor/projects/:project/members") view=pages::project::ProjectMembers ssr=SsrMode::Async />
                <Route
                    path=path!("/harbor/projects/:project/robot-account")
                    view=pages::robots::ProjectRobots
                    ssr=SsrMode::Async
                />
                <Route path=path!("/harbor/projects/:project/logs") view=pages::project::ProjectLogs ssr=SsrMode::Async />
                <Route path=path!("/harbor/projects/:project/configs") view=pages::project::ProjectConfig ssr=SsrMode::Async />
                <Route path=path!("/harbor/projects/:project/labels") view=pages::labels::ProjectLabels ssr=SsrMode::Async />
                <Route path=path!("/harbor/projects/:project/policy") view=pages::policy::ProjectPolicy ssr=SsrMode::Async />
                <Route path=path!("/harbor/projects/:project/webhook") view=pages::webhooks::ProjectWebhooks ssr=SsrMode::Async />
                <Route
                    path=path!("/harbor/projects/:project/repositories")
                    view=pages::repositories::ProjectRepositories
                    ssr=SsrMode::Async
                />
                <Route
                    path=path!("/harbor/projects/:project/repositories/*repo")
                    view=pages::repositories::RepositoryRoute
                    ssr=SsrMode::Async
                />
                <Route path=path!("/account/sign-up") view=pages::account::SignUp ssr=SsrMode::Async />
                <Route path=path!("/harbor/account") view=pages::account::Account ssr=SsrMode::Async />
                <Route path=path!("/harbor/users") view=pages::admin::Users ssr=SsrMode::Async />
                <Route path=path!("/harbor/groups") view=pages::groups::Groups ssr=SsrMode::Async />
                <Route path=path!("/harbor/logs") view=pages::admin::AuditLogs ssr=SsrMode::Async />
                <Route path=path!("/harbor/configs") view=pages::admin::Configuration ssr=SsrMode::Async />
                <Route path=path!("/harbor/labels") view=pages::labels::AdminLabels ssr=SsrMode::Async />
                <Route path=path!("/harbor/project-quotas") view=pages::quotas::ProjectQuotas ssr=SsrMode::Async />
                <Route path=path!("/harbor/registries") view=pages::registries::Registries ssr=SsrMode::Async />
                <Route path=path!("/harbor/replications") view=pages::replications::Replications ssr=SsrMode::Async />
                <Route
                    path=path!("/harbor/clearing-job/gc")
                    view=pages::gc::GarbageCollection
                    ssr=SsrMode::Async
                />
                <Route
                    path=path!("/harbor/clearing-job/audit-log-purge")
                    view=pages::purge::LogRotation
                    ssr=SsrMode::Async
                />
                <Route
                    path=path!("/harbor/job-service-dashboard")
                    view=pages::jobservice::JobServiceDashboard
                    ssr=SsrMode::Async
                />
            </Routes>
        </Router>
    }
    .into_any()
}

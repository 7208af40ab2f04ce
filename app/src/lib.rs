//! The portal: Leptos components, pages and server functions shared by SSR (`ssr` feature,
//! compiled into `server`) and hydration (`hydrate` feature, compiled to wasm by `frontend`).
//!
//! **This crate has no server-only dependency outside the `ssr` feature**, and it never touches
//! the database: server functions call the `PortalBackend` trait (see `backend`), which `server`
//! implements on top of the same service functions the REST API uses.

#![recursion_limit = "256"]

pub mod components;
pub mod error;
pub mod model;
pub mod pages;
pub mod server_fns;

#[cfg(feature = "ssr")]
pub mod backend;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{Redirect, Route, Router, Routes};
use leptos_router::{path, SsrMode};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
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
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
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
                <Route
                    path=path!("/harbor/clearing-job/gc")
                    view=pages::gc::GarbageCollection
                    ssr=SsrMode::Async
                />
            </Routes>
        </Router>
    }
}

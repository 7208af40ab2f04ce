use leptos::prelude::*;

use crate::i18n::t;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <main class="centered">
            <div class="card narrow">
                <h1>{t("Page not found")}</h1>
                <p class="muted">{t("The page you asked for does not exist.")}</p>
                <a class="btn btn-primary" href="/harbor/projects">{t("Go to projects")}</a>
            </div>
        </main>
    }
}

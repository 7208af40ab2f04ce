//! Pieces every signed-in page uses: the sign-in requirement, error alerts, the pager and the
//! current location.

use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::hooks::{use_location, use_query_map};

use crate::error::PortalError;
use crate::i18n::{fill, t};
use crate::model::UserView;
use crate::server_fns::auth::encode_component;

/// Path and query of the current page (`/harbor/projects?name=x`).
pub fn current_path() -> impl Fn() -> String + Copy {
    let location = use_location();
    move || {
        let search = location.search.get();
        let search = search.trim_start_matches('?');
        let path = location.pathname.get();
        if search.is_empty() {
            path
        } else {
            format!("{path}?{search}")
        }
    }
}

/// The page body for a signed-in user; without a session, a redirect to sign in that comes
/// back to `back`; any other failure, its message.
pub fn signed_in<V: IntoView + 'static>(
    user: Result<Option<UserView>, PortalError>,
    back: &str,
    body: impl FnOnce(UserView) -> V,
) -> AnyView {
    match user {
        Ok(Some(u)) => body(u).into_any(),
        Ok(None) | Err(PortalError::Unauthorized) => {
            view! { <Redirect path=format!("/account/sign-in?redirect_url={}", encode_component(back)) /> }
                .into_any()
        }
        Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
    }
}

/// A failed call's message, in the page's language where it is one of ours.
#[component]
pub fn ErrorAlert(error: PortalError) -> impl IntoView {
    view! { <p class="alert alert-error" role="alert">{error.localized()}</p> }
}

/// "N item(s)", previous / next links and "page X of Y" under a list. `count` is the text with
/// `{}` for the total; `link` makes the URL of a page.
pub fn pager(
    total: i64,
    page: u64,
    page_size: u64,
    count: &str,
    link: impl Fn(u64) -> String,
) -> impl IntoView {
    let pages = (total as u64).div_ceil(page_size).max(1);
    view! {
        <nav class="pager" aria-label=t("Pagination")>
            <span class="muted">{fill(count, &[&total])}</span>
            {(page > 1).then(|| view! { <a class="btn btn-ghost" href=link(page - 1)>{t("‹ Previous")}</a> })}
            <span>{fill(t("Page {} of {}"), &[&page, &pages])}</span>
            {(page < pages).then(|| view! { <a class="btn btn-ghost" href=link(page + 1)>{t("Next ›")}</a> })}
        </nav>
    }
}

/// The `page` query parameter (1 when absent or not a number).
pub fn page_param() -> impl Fn() -> u64 + Copy {
    let query = use_query_map();
    move || query.read().get("page").and_then(|p| p.parse::<u64>().ok()).unwrap_or(1).max(1)
}

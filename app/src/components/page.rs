//! Pieces every signed-in page uses: the sign-in requirement, error alerts, the pager and the
//! current location.

use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::hooks::{use_location, use_query_map};

use crate::error::PortalError;
use crate::i18n::{fill, t};
use crate::rest::UserResp;
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
    user: Result<Option<UserResp>, PortalError>,
    back: &str,
    body: impl FnOnce(UserResp) -> V,
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

/// The "Loading…" placeholder of every `Suspense`.
pub fn loading() -> impl IntoView {
    view! { <p class="loading" aria-busy="true">{t("Loading…")}</p> }
}

/// A page for signed-in users: loads the session's user, sends anyone else to sign in (and
/// back here afterwards), then renders `body`.
#[component]
pub fn Signed<F, V>(body: F) -> impl IntoView
where
    F: Fn(UserResp) -> V + Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    let user = Resource::new(|| (), |_| crate::server_fns::auth::current_user());
    let here = current_path();
    view! {
        <Suspense fallback=loading>
            {move || {
                let body = body.clone();
                Suspend::new(async move { signed_in(user.await, &here(), body) })
            }}
        </Suspense>
    }
}

/// The outcome of the latest write on a page: nothing, a success note, or the server's
/// message. An expired session goes to sign in (once) and comes back to this page afterwards.
#[component]
pub fn Outcome(#[prop(into)] result: Signal<Option<Result<String, PortalError>>>) -> impl IntoView {
    let here = current_path();
    let navigate = leptos_router::hooks::use_navigate();
    Effect::new(move |_| {
        if let Some(Err(PortalError::Unauthorized)) = result.get() {
            let back = untrack(here);
            navigate(
                &format!("/account/sign-in?error=expired&redirect_url={}", encode_component(&back)),
                Default::default(),
            );
        }
    });
    move || {
        match result.get() {
        None | Some(Err(PortalError::Unauthorized)) => ().into_any(),
        Some(Ok(note)) if note.is_empty() => ().into_any(),
        Some(Ok(note)) => view! { <p class="alert alert-ok" role="status" data-testid="outcome">{note}</p> }.into_any(),
        Some(Err(e)) => {
            view! { <p class="alert alert-error" role="alert" data-testid="outcome-error">{e.localized()}</p> }.into_any()
        }
    }
    }
}

/// A button that asks before it acts: the first press shows the question with Confirm and
/// Cancel (keyboard focus moves to Cancel), Confirm runs `on_confirm`.
#[component]
pub fn Confirm(
    /// The button's text (`Delete`).
    label: &'static str,
    /// The question (`Delete tag v1?`).
    question: String,
    on_confirm: Callback<()>,
    #[prop(optional)] testid: &'static str,
    /// The button's accessible name when `label` is a symbol (`×`).
    #[prop(optional, into)]
    aria_label: Option<String>,
) -> impl IntoView {
    let open = RwSignal::new(false);
    let cancel_ref = NodeRef::<leptos::html::Button>::new();
    let trigger_ref = NodeRef::<leptos::html::Button>::new();
    // Keyboard: opening moves the focus to Cancel (the safe choice); closing without confirming
    // (Cancel or Escape) gives it back to the button that opened the question.
    Effect::new(move |was_open: Option<bool>| {
        let is_open = open.get();
        if is_open {
            if let Some(b) = cancel_ref.get() {
                let _ = b.focus();
            }
        } else if was_open == Some(true) {
            if let Some(b) = trigger_ref.get() {
                let _ = b.focus();
            }
        }
        is_open
    });
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Escape" {
            ev.prevent_default();
            open.set(false);
        }
    };
    view! {
        <span class="confirm">
            <Show
                when=move || open.get()
                fallback=move || view! {
                    <button type="button" class="btn btn-danger-ghost" data-testid=testid aria-label=aria_label.clone() node_ref=trigger_ref on:click=move |_| open.set(true)>{label}</button>
                }
            >
                <span class="confirm-box" role="alertdialog" aria-label=question.clone() on:keydown=on_key>
                    <span>{question.clone()}</span>
                    <button type="button" class="btn btn-danger" data-testid="confirm-yes" on:click=move |_| { open.set(false); on_confirm.run(()); }>{t("Confirm")}</button>
                    <button type="button" class="btn" data-testid="confirm-cancel" node_ref=cancel_ref on:click=move |_| open.set(false)>{t("Cancel")}</button>
                </span>
            </Show>
        </span>
    }
}

/// A read-only text and a button that copies it to the clipboard (the text stays selectable
/// without JavaScript).
#[component]
pub fn CopyField(
    value: String,
    label: &'static str,
    #[prop(optional)] testid: &'static str,
) -> impl IntoView {
    let copied = RwSignal::new(false);
    let text = value.clone();
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            if let Some(w) = web_sys::window() {
                let _ = w.navigator().clipboard().write_text(&text);
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &text;
        copied.set(true);
    };
    view! {
        <span class="copy-field">
            <input type="text" readonly value=value.clone() aria-label=label data-testid=testid />
            <button type="button" class="btn btn-ghost" on:click=copy>
                {move || if copied.get() { t("Copied") } else { t("Copy") }}
            </button>
        </span>
    }
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

/// One page of a list: the table `table` makes of the items with the pager under it, the
/// `empty` text when there are none, or the error.
pub fn listing<T: 'static, V: IntoView + 'static>(
    result: Result<crate::server_fns::api::Listing<T>, PortalError>,
    page: u64,
    page_size: u64,
    empty: &'static str,
    link: impl Fn(u64) -> String + 'static,
    table: impl FnOnce(Vec<T>) -> V,
) -> AnyView {
    match result {
        Ok(l) if !l.items.is_empty() => {
            let total = l.total;
            view! { {table(l.items)} {pager(total, page, page_size, t("{} item(s)"), link)} }.into_any()
        }
        Ok(_) => view! { <div class="empty-state"><p>{empty}</p></div> }.into_any(),
        Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
    }
}

/// The `page` query parameter (1 when absent or not a number).
pub fn page_param() -> impl Fn() -> u64 + Copy {
    let query = use_query_map();
    move || query.read().get("page").and_then(|p| p.parse::<u64>().ok()).unwrap_or(1).max(1)
}

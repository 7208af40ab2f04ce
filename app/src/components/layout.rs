use leptos::prelude::*;
use leptos_router::components::A;

use crate::components::page::current_path;
use crate::i18n::{lang, switch_href, t, Lang};
use crate::rest::UserResp;
use crate::server_fns::auth::Logout;

/// The signed-in frame: top bar with brand and user menu, side navigation, content.
#[component]
pub fn AppShell(user: UserResp, children: Children) -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    let initial = user.username.chars().next().unwrap_or('?').to_uppercase().to_string();
    // Without JavaScript the browser follows `#main` and focuses it (tabindex=-1); once hydrated
    // the router would take the click over, so the link focuses the content itself.
    let main_ref = NodeRef::<leptos::html::Main>::new();
    let here = current_path();
    let skip = move |ev: leptos::ev::MouseEvent| {
        if let Some(m) = main_ref.get() {
            ev.prevent_default();
            let _ = m.focus();
        }
    };
    view! {
        <a class="skip-link" href="#main" on:click=skip>{t("Skip to content")}</a>
        <header class="topbar">
            <a class="brand" href="/harbor/projects" aria-label=t("Berth home")>
                <span class="brand-mark" aria-hidden="true">"⚓"</span>
                <span class="brand-name">"Berth"</span>
            </a>
            <div class="topbar-spacer"></div>
            <LangSwitch />
            <div class="user-menu">
                <span class="avatar" aria-hidden="true">{initial}</span>
                <a class="user-name" href="/harbor/account" data-testid="current-user" title=t("Account")>{user.username.clone()}</a>
                {user.sysadmin_flag.then(|| view! { <span class="badge badge-admin">{t("Admin")}</span> })}
                <ActionForm action=logout attr:class="inline-form">
                    <button type="submit" class="btn btn-ghost">{t("Log out")}</button>
                </ActionForm>
            </div>
        </header>
        <div class="frame">
            <nav class="sidenav" aria-label=t("Main")>
                <A href="/harbor/projects">{t("Projects")}</A>
                {user.sysadmin_flag.then(|| view! {
                    <p class="nav-section">{t("Administration")}</p>
                    <A href="/harbor/users">{t("Users")}</A>
                    <A href="/harbor/groups">{t("Groups")}</A>
                    <A href="/harbor/registries">{t("Registries")}</A>
                    <A href="/harbor/replications">{t("Replications")}</A>
                    <A href="/harbor/labels">{t("Labels")}</A>
                    <A href="/harbor/project-quotas">{t("Project Quotas")}</A>
                    <A href="/harbor/logs">{t("Audit log")}</A>
                    // Both tabs of Clean Up (garbage collection, log rotation) mark the entry.
                    <a href="/harbor/clearing-job/gc"
                        aria-current=move || here().starts_with("/harbor/clearing-job/").then_some("page")>{t("Clean Up")}</a>
                    <A href="/harbor/job-service-dashboard">{t("Job Service Dashboard")}</A>
                    <A href="/harbor/configs">{t("Configuration")}</A>
                })}
            </nav>
            <main id="main" class="content" tabindex="-1" node_ref=main_ref>{children()}</main>
        </div>
    }
}

/// Links to the other languages; each sets the `berth-lang` cookie on the server and comes back
/// to this page (a full load, so the server renders it in the new language).
#[component]
pub fn LangSwitch() -> impl IntoView {
    let current = lang();
    let here = current_path();
    view! {
        <nav class="lang-switch" aria-label=t("Language")>
            {Lang::ALL.into_iter().map(|l| {
                if l == current {
                    view! { <span class="lang-current" lang=l.tag() aria-current="true">{l.native_name()}</span> }.into_any()
                } else {
                    view! {
                        <a href=move || switch_href(l, &here()) rel="external" lang=l.tag() hreflang=l.tag()
                           data-testid=format!("lang-{}", l.tag())>{l.native_name()}</a>
                    }.into_any()
                }
            }).collect_view()}
        </nav>
    }
}

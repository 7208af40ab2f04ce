use leptos::prelude::*;
use leptos_router::components::A;

use crate::model::UserView;
use crate::server_fns::auth::Logout;

/// The signed-in frame: top bar with brand and user menu, side navigation, content.
#[component]
pub fn AppShell(user: UserView, children: Children) -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    let initial = user.username.chars().next().unwrap_or('?').to_uppercase().to_string();
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="topbar">
            <a class="brand" href="/harbor/projects" aria-label="Berth home">
                <span class="brand-mark" aria-hidden="true">"⚓"</span>
                <span class="brand-name">"Berth"</span>
            </a>
            <div class="topbar-spacer"></div>
            <div class="user-menu">
                <span class="avatar" aria-hidden="true">{initial}</span>
                <span class="user-name" data-testid="current-user">{user.username.clone()}</span>
                {user.sysadmin.then(|| view! { <span class="badge badge-admin">"Admin"</span> })}
                <ActionForm action=logout attr:class="inline-form">
                    <button type="submit" class="btn btn-ghost">"Log out"</button>
                </ActionForm>
            </div>
        </header>
        <div class="frame">
            <nav class="sidenav" aria-label="Main">
                <A href="/harbor/projects">"Projects"</A>
                {user.sysadmin.then(|| view! {
                    <p class="nav-section">"Administration"</p>
                    <A href="/harbor/clearing-job/gc">"Garbage Collection"</A>
                })}
            </nav>
            <main id="main" class="content">{children()}</main>
        </div>
    }
}

//! The sign-in page (`/account/sign-in`): the local form (a plain form post without
//! JavaScript), errors passed back in the URL (`?error=`), the sign-up link, and in OIDC mode
//! the "log in with <provider>" button (`/c/oidc/login`).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::layout::LangSwitch;
use crate::error::PortalError;
use crate::i18n::{fill, t};
use crate::server_fns::auth::encode_component;
use crate::server_fns::auth::Login;

#[component]
pub fn SignIn() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let info = Resource::new(
        || (),
        |_| crate::server_fns::api::get::<crate::rest::SystemInfo>("/systeminfo".into()),
    );
    let query = use_query_map();
    let redirect_url = move || query.read().get("redirect_url").unwrap_or_default();
    // Error after a plain (non-JavaScript) form post: carried in the URL.
    let url_error = move || {
        let q = query.read();
        match q.get("error").as_deref() {
            Some("credentials") => Some(PortalError::InvalidCredentials.localized()),
            Some("locked") => {
                let s = q.get("retry").and_then(|s| s.parse().ok()).unwrap_or(0);
                Some(PortalError::Locked(s).localized())
            }
            Some("busy") => {
                let s = q.get("retry").and_then(|s| s.parse().ok()).unwrap_or(1);
                Some(PortalError::Busy(s).localized())
            }
            Some("expired") => Some(t("Your session has expired. Please sign in again.").to_string()),
            Some("error") | Some("") => Some(t("Sign-in failed.").to_string()),
            // A message passed back by another sign-in path (the OIDC callback), shown as text.
            Some(other) => {
                Some(fill(t("Sign-in failed: {}"), &[&other.chars().take(300).collect::<String>()]))
            }
            None => None,
        }
    };
    let error = move || match login.value().get() {
        Some(Err(e)) => Some(e.localized()),
        Some(Ok(())) => None,
        None => url_error(),
    };
    view! {
        <Title text=t("Sign in · Berth") />
        <main class="signin">
            <section class="signin-card" aria-labelledby="signin-title">
                <div class="signin-brand">
                    <span class="brand-mark" aria-hidden="true">"⚓"</span>
                    <h1 id="signin-title">"Berth"</h1>
                </div>
                <p class="muted">{t("Enterprise container registry")}</p>
                // OIDC mode: the provider's button first; the local form stays for the admin (Harbor's layout).
                <Suspense>
                    {move || Suspend::new(async move {
                        info.await.ok().filter(|i| i.auth_mode == "oidc_auth").map(|i| {
                            let back = redirect_url();
                            let href = if back.is_empty() {
                                "/c/oidc/login".to_string()
                            } else {
                                format!("/c/oidc/login?redirect_url={}", encode_component(&back))
                            };
                            let name = if i.oidc_provider_name.is_empty() { "OIDC".to_string() } else { i.oidc_provider_name.clone() };
                            view! {
                                <a class="btn btn-primary btn-block oidc-login" href=href rel="external" data-testid="oidc-login">
                                    {fill(t("LOG IN WITH {}"), &[&name])}
                                </a>
                                <p class="muted small centered">{t("or with a local account")}</p>
                            }
                        })
                    })}
                </Suspense>
                <ActionForm action=login attr:class="form" attr:data-testid="login-form">
                    <label for="username">{t("Username")}</label>
                    <input id="username" name="username" type="text" autocomplete="username" required autofocus />
                    <label for="password">{t("Password")}</label>
                    <input id="password" name="password" type="password" autocomplete="current-password" required />
                    <input type="hidden" name="redirect_url" prop:value=redirect_url />
                    <button type="submit" class="btn btn-primary btn-block" disabled=move || login.pending().get()>
                        {move || if login.pending().get() { t("Signing in…") } else { t("Log in") }}
                    </button>
                </ActionForm>
                {move || error().map(|e| view! { <p class="alert alert-error" role="alert">{e}</p> })}
                {move || query.read().get("registered").map(|_| view! {
                    <p class="alert alert-ok" role="status">{t("Your account was created. Sign in with it.")}</p>
                })}
                <Suspense>
                    {move || Suspend::new(async move {
                        info.await.ok().filter(|i| i.self_registration).map(|_| view! {
                            <p class="muted signup-link">{t("No account yet?")} " " <a href="/account/sign-up" data-testid="signup-link">{t("Sign up")}</a></p>
                        })
                    })}
                </Suspense>
                <LangSwitch />
            </section>
        </main>
    }
}

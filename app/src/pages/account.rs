//! The user's own account: profile, password and, for OIDC users, the CLI secret
//! (`/harbor/account`), and self-registration
//! (`/account/sign-up`, when a system admin allows it).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;

use crate::components::layout::{AppShell, LangSwitch};
use crate::components::page::{loading, ErrorAlert, Outcome, Signed};
use crate::error::PortalError;
use crate::i18n::t;
use crate::pages::cli_secret::CliSecret;
use crate::pages::project::{perform, OutcomeSignal, Reload};
use crate::rest::users::{PasswordReq, UserCreationReq, UserProfile};
use crate::rest::UserResp;
use crate::rest::{SystemInfo, UserResp as User};
use crate::server_fns::api;

pub const PASSWORD_RULE: &str =
    "8–128 characters with at least one upper-case letter, one lower-case letter and one digit.";

#[component]
pub fn Account() -> impl IntoView {
    // Resources before any `Suspend` (see `pages::project::ProjectFrame`).
    let reload: Reload = RwSignal::new(0);
    let profile = Resource::new(move || reload.get(), |_| api::get::<User>("/users/current".into()));
    view! {
        <Title text=t("Account · Berth") />
        <Signed body=move |u: UserResp| view! { <AppShell user=u.clone()><AccountBody me=u profile reload /></AppShell> } />
    }
}

#[component]
fn AccountBody(me: UserResp, profile: Resource<Result<User, PortalError>>, reload: Reload) -> impl IntoView {
    let outcome: OutcomeSignal = RwSignal::new(None);
    let id = me.user_id;
    let (old, new, again) =
        (RwSignal::new(String::new()), RwSignal::new(String::new()), RwSignal::new(String::new()));
    let change = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if new.get_untracked() != again.get_untracked() {
            outcome.set(Some(Err(PortalError::Invalid(t("The new passwords do not match.").into()))));
            return;
        }
        let body = api::body(&PasswordReq {
            old_password: Some(old.get_untracked()),
            new_password: new.get_untracked(),
        });
        old.set(String::new());
        new.set(String::new());
        again.set(String::new());
        perform(
            outcome,
            reload,
            t("Password changed. Other sessions of this account have ended.").into(),
            api::send("PUT", format!("/users/{id}/password"), Some(body)),
        );
    };
    view! {
        <div class="page-head"><h1>{t("Account")}</h1></div>
        <Outcome result=outcome />
        <div class="panels">
            <Suspense fallback=loading>
                {move || Suspend::new(async move {
                    match profile.await {
                        Ok(u) => {
                            // OIDC users: their CLI secret (`pages::cli_secret`).
                            let cli = u.oidc_user_meta.clone().map(|meta| view! { <CliSecret meta outcome reload /> });
                            view! { <ProfileForm u outcome reload /> {cli} }.into_any()
                        }
                        Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                    }
                })}
            </Suspense>
            <form class="card form-card" on:submit=change data-testid="password-form">
                <h2>{t("Change password")}</h2>
                <label for="pw-old">{t("Current password")}</label>
                <input id="pw-old" type="password" required autocomplete="current-password" bind:value=old />
                <label for="pw-new">{t("New password")}</label>
                <input id="pw-new" type="password" required autocomplete="new-password" bind:value=new />
                <label for="pw-again">{t("Confirm new password")}</label>
                <input id="pw-again" type="password" required autocomplete="new-password" bind:value=again />
                <p class="muted small">{t(PASSWORD_RULE)}</p>
                <div><button type="submit" class="btn btn-primary" data-testid="password-save">{t("Change password")}</button></div>
            </form>
        </div>
    }
}

#[component]
fn ProfileForm(u: User, outcome: OutcomeSignal, reload: Reload) -> impl IntoView {
    let (email, real, comment) =
        (RwSignal::new(u.email.clone()), RwSignal::new(u.realname.clone()), RwSignal::new(u.comment.clone()));
    let id = u.user_id;
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = api::body(&UserProfile {
            email: Some(email.get_untracked().trim().to_string()),
            realname: Some(real.get_untracked().trim().to_string()),
            comment: Some(comment.get_untracked()),
        });
        perform(outcome, reload, t("Saved.").into(), api::send("PUT", format!("/users/{id}"), Some(body)));
    };
    view! {
        <form class="card form-card" on:submit=save data-testid="profile-form">
            <h2>{t("Profile")}</h2>
            <label for="p-user">{t("Username")}</label>
            <input id="p-user" type="text" readonly value=u.username.clone() />
            <label for="p-email">{t("Email")}</label>
            <input id="p-email" type="email" required value=u.email.clone() bind:value=email />
            <label for="p-real">{t("Full name")}</label>
            <input id="p-real" type="text" value=u.realname.clone() bind:value=real data-testid="profile-realname" />
            <label for="p-comment">{t("Comment")}</label>
            <input id="p-comment" type="text" value=u.comment.clone() bind:value=comment />
            <div><button type="submit" class="btn btn-primary" data-testid="profile-save">{t("Save")}</button></div>
        </form>
    }
}

#[component]
pub fn SignUp() -> impl IntoView {
    let info = Resource::new(|| (), |_| api::get::<SystemInfo>("/systeminfo".into()));
    let outcome: OutcomeSignal = RwSignal::new(None);
    let (name, email, real, pw, again) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    let navigate = use_navigate();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if pw.get_untracked() != again.get_untracked() {
            outcome.set(Some(Err(PortalError::Invalid(t("The new passwords do not match.").into()))));
            return;
        }
        let body = api::body(&UserCreationReq {
            username: name.get_untracked().trim().to_string(),
            email: email.get_untracked().trim().to_string(),
            realname: real.get_untracked().trim().to_string(),
            password: pw.get_untracked(),
            comment: String::new(),
            sysadmin_flag: false,
        });
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match api::send("POST", "/users".into(), Some(body)).await {
                Ok(_) => navigate("/account/sign-in?registered=1", Default::default()),
                Err(e) => outcome.set(Some(Err(e))),
            }
        });
    };
    view! {
        <Title text=t("Sign up · Berth") />
        <main class="signin">
            <section class="signin-card" aria-labelledby="signup-title">
                <div class="signin-brand">
                    <span class="brand-mark" aria-hidden="true">"⚓"</span>
                    <h1 id="signup-title">{t("Sign up")}</h1>
                </div>
                <Suspense fallback=loading>
                    {move || {
                        let submit = submit.clone();
                        Suspend::new(async move {
                            match info.await {
                                Ok(i) if i.self_registration => view! {
                                    <form class="form" on:submit=submit data-testid="signup-form">
                                        <label for="su-name">{t("Username")}</label>
                                        <input id="su-name" type="text" required autocomplete="username" bind:value=name />
                                        <label for="su-email">{t("Email")}</label>
                                        <input id="su-email" type="email" required autocomplete="email" bind:value=email />
                                        <label for="su-real">{t("Full name")}</label>
                                        <input id="su-real" type="text" autocomplete="name" bind:value=real />
                                        <label for="su-pw">{t("Password")}</label>
                                        <input id="su-pw" type="password" required autocomplete="new-password" bind:value=pw />
                                        <label for="su-again">{t("Confirm password")}</label>
                                        <input id="su-again" type="password" required autocomplete="new-password" bind:value=again />
                                        <p class="muted small">{t(PASSWORD_RULE)}</p>
                                        <button type="submit" class="btn btn-primary btn-block" data-testid="signup-submit">{t("Sign up")}</button>
                                    </form>
                                }.into_any(),
                                Ok(_) => view! { <p class="alert alert-error" role="alert">{t("Self-registration is disabled. Ask an administrator for an account.")}</p> }.into_any(),
                                Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                            }
                        })
                    }}
                </Suspense>
                <Outcome result=outcome />
                <p class="muted"><A href="/account/sign-in">{t("Back to sign in")}</A></p>
                <LangSwitch />
            </section>
        </main>
    }
}

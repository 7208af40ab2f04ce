//! Administration (system admins): users, the audit log, configuration and system info.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use crate::components::format::time_str;
use crate::components::layout::AppShell;
use crate::components::page::{listing, loading, page_param, Confirm, ErrorAlert, Outcome, Signed};
use crate::components::quota::{join_limit, split_limit, LimitFields};
use crate::error::PortalError;
use crate::i18n::{fill, t};
use crate::pages::auth_config::AuthConfigForm;
use crate::pages::ldap_users::LdapUserImport;
use crate::pages::project::{audit_resource, perform, AuditLogView, OutcomeSignal, Reload};
use crate::rest::users::{SysadminReq, UserCreationReq};
use crate::rest::UserResp;
use crate::rest::{Configurations, SystemInfo, UserResp as User};
use crate::server_fns::api::{self, Listing};
use crate::server_fns::auth::encode_component;

const PAGE_SIZE: u64 = 15;

/// The page body for system admins; a clear refusal for everyone else.
#[component]
pub(crate) fn AdminOnly<F, V>(body: F) -> impl IntoView
where
    F: Fn(UserResp) -> V + Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    view! {
        <Signed body=move |u: UserResp| {
            if u.sysadmin_flag {
                let inner = body(u.clone());
                view! { <AppShell user=u>{inner}</AppShell> }.into_any()
            } else {
                view! {
                    <AppShell user=u>
                        <p class="alert alert-error" role="alert">{t("Only system administrators may open this page.")}</p>
                    </AppShell>
                }.into_any()
            }
        } />
    }
}

// ---------------------------------------------------------------- users

#[component]
pub fn Users() -> impl IntoView {
    // Resources before any `Suspend` (see `pages::project::ProjectFrame`).
    let query = use_query_map();
    let name = move || query.read().get("name").unwrap_or_default();
    let page = page_param();
    let reload: Reload = RwSignal::new(0);
    let users = Resource::new(
        move || (name(), page(), reload.get()),
        |(n, pg, _)| {
            let q = if n.is_empty() {
                String::new()
            } else {
                format!("&q={}", encode_component(&format!("username=~{n}")))
            };
            api::list::<User>(format!("/users?page={pg}&page_size={PAGE_SIZE}{q}"))
        },
    );
    let info = Resource::new(|| (), |_| api::get::<SystemInfo>("/systeminfo".into()));
    view! {
        <Title text=t("Users · Berth") />
        <AdminOnly body=move |u: UserResp| view! { <UsersBody me=u users info reload /> } />
    }
}

#[component]
fn UsersBody(
    me: UserResp,
    users: Resource<Result<Listing<User>, PortalError>>,
    info: Resource<Result<SystemInfo, PortalError>>,
    reload: Reload,
) -> impl IntoView {
    let query = use_query_map();
    let name = move || query.read().get("name").unwrap_or_default();
    let page = page_param();
    let outcome: OutcomeSignal = RwSignal::new(None);
    let show_form = RwSignal::new(false);
    let (u_name, u_email, u_real, u_pw, u_admin) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(false),
    );
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let username = u_name.get_untracked().trim().to_string();
        let body = api::body(&UserCreationReq {
            username: username.clone(),
            email: u_email.get_untracked().trim().to_string(),
            realname: u_real.get_untracked().trim().to_string(),
            password: u_pw.get_untracked(),
            comment: String::new(),
            sysadmin_flag: u_admin.get_untracked(),
        });
        u_pw.set(String::new());
        leptos::task::spawn_local(async move {
            match api::send("POST", "/users".into(), Some(body)).await {
                Ok(_) => {
                    outcome.set(Some(Ok(fill(t("Created user {}."), &[&username]))));
                    show_form.set(false);
                    u_name.set(String::new());
                    u_email.set(String::new());
                    u_real.set(String::new());
                    u_admin.set(false);
                }
                Err(e) => outcome.set(Some(Err(e))),
            }
            reload.update(|v| *v += 1);
        });
    };
    view! {
        <div class="page-head">
            <h1>{t("Users")}</h1>
            // Local accounts only in database mode (Harbor's rule); LDAP users are imported.
            <Suspense>
                {move || Suspend::new(async move {
                    let mode = info.await.map(|i| i.auth_mode).unwrap_or_default();
                    (mode == "db_auth" || mode.is_empty()).then(|| view! {
                        <button type="button" class="btn btn-primary" on:click=move |_| show_form.update(|s| *s = !*s)
                            aria-expanded=move || show_form.get().to_string() data-testid="user-new">{t("New user")}</button>
                    })
                })}
            </Suspense>
        </div>
        <Suspense>
            {move || Suspend::new(async move {
                let ldap = info.await.is_ok_and(|i| i.auth_mode == "ldap_auth");
                ldap.then(|| view! { <LdapUserImport outcome reload /> })
            })}
        </Suspense>
        <Show when=move || show_form.get()>
            <form class="card form-card" on:submit=create data-testid="user-form">
                <h2>{t("New user")}</h2>
                <label for="nu-name">{t("Username")}</label>
                <input id="nu-name" type="text" required autocomplete="off" bind:value=u_name />
                <label for="nu-email">{t("Email")}</label>
                <input id="nu-email" type="email" required bind:value=u_email />
                <label for="nu-real">{t("Full name")}</label>
                <input id="nu-real" type="text" bind:value=u_real />
                <label for="nu-pw">{t("Password")}</label>
                <input id="nu-pw" type="password" required autocomplete="new-password" bind:value=u_pw />
                <p class="muted small">{t("8–128 characters with at least one upper-case letter, one lower-case letter and one digit.")}</p>
                <label class="check"><input type="checkbox" bind:checked=u_admin />{t(" System administrator")}</label>
                <div class="actions">
                    <button type="submit" class="btn btn-primary" data-testid="user-create">{t("Create")}</button>
                    <button type="button" class="btn" on:click=move |_| show_form.set(false)>{t("Cancel")}</button>
                </div>
            </form>
        </Show>
        <Form method="GET" action="" attr:class="toolbar" attr:role="search">
            <label class="visually-hidden" for="user-search">{t("Filter users by name")}</label>
            <input id="user-search" type="search" name="name" placeholder=t("Filter by name") value=name() />
            <button type="submit" class="btn">{t("Search")}</button>
        </Form>
        <Outcome result=outcome />
        <Transition fallback=loading>
            {move || {
                let me = me.clone();
                Suspend::new(async move {
                    let keep = if name().is_empty() { String::new() } else { format!("name={}&", encode_component(&name())) };
                    listing(users.await, page(), PAGE_SIZE, t("No users match."), move |p| format!("?{keep}page={p}"), move |items| view! {
                                <div class="table-wrap">
                                    <table class="table" data-testid="user-table">
                                        <thead><tr>
                                            <th scope="col">{t("Username")}</th>
                                            <th scope="col">{t("Administrator")}</th>
                                            <th scope="col">{t("Email")}</th>
                                            <th scope="col">{t("Full name")}</th>
                                            <th scope="col">{t("Creation time")}</th>
                                            <th scope="col">{t("Actions")}</th>
                                        </tr></thead>
                                        <tbody>
                                            {items.into_iter().map(|u| {
                                                let id = u.user_id;
                                                let admin = u.sysadmin_flag;
                                                let (n1, n2) = (u.username.clone(), u.username.clone());
                                                let toggle = move |_| {
                                                    let note = if admin { fill(t("{} is no longer an administrator."), &[&n1]) } else { fill(t("{} is now an administrator."), &[&n1]) };
                                                    perform(outcome, reload, note, api::send("PUT", format!("/users/{id}/sysadmin"), Some(api::body(&SysadminReq { sysadmin_flag: !admin }))));
                                                };
                                                let remove = Callback::new(move |_| {
                                                    perform(outcome, reload, fill(t("Deleted user {}."), &[&n2]), api::send("DELETE", format!("/users/{id}"), None));
                                                });
                                                let own = u.user_id == me.user_id;
                                                view! {
                                                    <tr data-testid="user-row" data-name=u.username.clone()>
                                                        <td class="strong">{u.username.clone()}</td>
                                                        <td data-testid="user-admin">{if admin { t("Yes") } else { t("No") }}</td>
                                                        <td>{u.email.clone()}</td>
                                                        <td>{u.realname.clone()}</td>
                                                        <td>{time_str(&u.creation_time)}</td>
                                                        <td class="actions">
                                                            {(!own).then(|| view! {
                                                                <button type="button" class="btn btn-ghost" on:click=toggle data-testid="user-toggle-admin">
                                                                    {if admin { t("Revoke administrator") } else { t("Make administrator") }}
                                                                </button>
                                                                <Confirm label=t("Delete") question=fill(t("Delete user {}?"), &[&u.username]) on_confirm=remove testid="user-delete" />
                                                            })}
                                                        </td>
                                                    </tr>
                                                }
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                        })
                })
            }}
        </Transition>
    }
}

// ---------------------------------------------------------------- audit log

#[component]
pub fn AuditLogs() -> impl IntoView {
    let logs = audit_resource(|| "/audit-logs".to_string());
    view! {
        <Title text=t("Logs · Berth") />
        <AdminOnly body=move |_| view! {
            <div class="page-head"><h1>{t("Audit log")}</h1></div>
            <AuditLogView logs />
        } />
    }
}

// ---------------------------------------------------------------- configuration and system info

#[component]
pub fn Configuration() -> impl IntoView {
    let reload: Reload = RwSignal::new(0);
    let data = Resource::new(
        move || reload.get(),
        |_| async move {
            let c: Configurations = api::get("/configurations".into()).await?;
            let i: SystemInfo = api::get("/systeminfo".into()).await?;
            Ok::<_, PortalError>((c, i))
        },
    );
    view! {
        <Title text=t("Configuration · Berth") />
        <AdminOnly body=move |_| view! { <ConfigBody data reload /> } />
    }
}

#[component]
fn ConfigBody(
    data: Resource<Result<(Configurations, SystemInfo), PortalError>>,
    reload: Reload,
) -> impl IntoView {
    let outcome: OutcomeSignal = RwSignal::new(None);
    view! {
        <div class="page-head"><h1>{t("Configuration")}</h1></div>
        <Outcome result=outcome />
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                match data.await {
                    Ok((c, i)) => view! { <ConfigForms c i outcome reload /> }.into_any(),
                    Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ConfigForms(c: Configurations, i: SystemInfo, outcome: OutcomeSignal, reload: Reload) -> impl IntoView {
    let restriction = RwSignal::new(c.project_creation_restriction.value.clone());
    let self_reg = RwSignal::new(c.self_registration.value);
    let token = RwSignal::new(c.token_expiration.value.to_string());
    let robot = RwSignal::new(c.robot_token_duration.value.to_string());
    let (quota_n, quota_u) = split_limit(c.storage_per_project.value);
    let (quota_n, quota_u) = (RwSignal::new(quota_n), RwSignal::new(quota_u.to_string()));
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(quota) = join_limit(&quota_n.get_untracked(), &quota_u.get_untracked()) else {
            outcome.set(Some(Err(PortalError::Invalid(
                t("The limit must be -1 or a number of at least 0.").into(),
            ))));
            return;
        };
        let num = |s: String| {
            s.trim()
                .parse::<i64>()
                .map(serde_json::Value::from)
                .unwrap_or_else(|_| serde_json::Value::String(s))
        };
        let body = serde_json::json!({
            "project_creation_restriction": restriction.get_untracked(),
            "self_registration": self_reg.get_untracked(),
            "token_expiration": num(token.get_untracked()),
            "robot_token_duration": num(robot.get_untracked()),
            "storage_per_project": quota,
        });
        perform(
            outcome,
            reload,
            t("Saved.").to_string(),
            api::send("PUT", "/configurations".into(), Some(body)),
        );
    };
    view! {
        <AuthConfigForm c=c.clone() outcome reload />
        <div class="panels">
            <form class="card form-card" on:submit=save data-testid="config-form">
                <h2>{t("System settings")}</h2>
                <label class="check"><input type="checkbox" checked=c.self_registration.value bind:checked=self_reg data-testid="config-self-registration" />{t(" Allow self-registration")}</label>
                <label for="creation">{t("Project creation")}</label>
                <select id="creation" bind:value=restriction data-testid="config-creation">
                    <option value="everyone" selected=c.project_creation_restriction.value == "everyone">{t("Everyone")}</option>
                    <option value="adminonly" selected=c.project_creation_restriction.value == "adminonly">{t("Administrators only")}</option>
                </select>
                <label for="token-exp">{t("Token expiration (minutes)")}</label>
                <input id="token-exp" type="number" min="1" max="10080" required value=c.token_expiration.value.to_string() bind:value=token data-testid="config-token" />
                <label for="robot-exp">{t("Robot account expiration (days; -1 never)")}</label>
                <input id="robot-exp" type="number" min="-1" required value=c.robot_token_duration.value.to_string() bind:value=robot />
                <LimitFields id="config-default-quota" label=t("Default project quota (storage per project)") number=quota_n unit=quota_u />
                <div><button type="submit" class="btn btn-primary" data-testid="config-save">{t("Save")}</button></div>
            </form>
            <section class="card" aria-labelledby="sysinfo-h" data-testid="system-info">
                <h2 id="sysinfo-h">{t("System info")}</h2>
                <dl class="facts">
                    <dt>{t("Version")}</dt><dd>{i.harbor_version.clone()}</dd>
                    <dt>{t("External URL")}</dt><dd>{i.external_url.clone()}</dd>
                    <dt>{t("Registry")}</dt><dd>{i.registry_url.clone()}</dd>
                    <dt>{t("Storage")}</dt><dd>{i.registry_storage_provider_name.clone()}</dd>
                    <dt>{t("Database")}</dt><dd>{i.database_type.clone()}</dd>
                    <dt>{t("Session store")}</dt><dd>{i.session_store.clone()}</dd>
                </dl>
            </section>
        </div>
    }
}

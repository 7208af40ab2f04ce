//! Administration → Groups (`/harbor/groups`, system admins): user groups (`/usergroups`)
//! listed with paging and a name filter (a plain GET form, so it works without JavaScript),
//! created (LDAP by DN, HTTP or OIDC by name), renamed and deleted; in LDAP mode groups can be
//! found in the directory (`/ldap/groups/search`) and imported.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use crate::components::page::{listing, loading, page_param, Confirm, ErrorAlert, Outcome};
use crate::error::PortalError;
use crate::i18n::{fill, t};
use crate::pages::admin::AdminOnly;
use crate::pages::project::{perform, OutcomeSignal, Reload};
use crate::rest::usergroups::UserGroup;
use crate::rest::SystemInfo;
use crate::server_fns::api::{self, Listing, PAGE_SIZE};
use crate::server_fns::auth::encode_component;

/// Harbor's group types (`group_type`).
pub const GROUP_TYPES: [(i64, &str); 3] = [(1, "LDAP"), (2, "HTTP"), (3, "OIDC")];

pub fn group_type_name(ty: i64) -> &'static str {
    GROUP_TYPES.iter().find(|(v, _)| *v == ty).map(|(_, n)| *n).unwrap_or("Unknown")
}

/// The group type that goes with an auth mode (LDAP groups in LDAP mode, OIDC in OIDC mode,
/// HTTP otherwise).
pub fn default_group_type(auth_mode: &str) -> i64 {
    match auth_mode {
        "ldap_auth" => 1,
        "oidc_auth" => 3,
        _ => 2,
    }
}

#[component]
pub fn Groups() -> impl IntoView {
    // Resources before any `Suspend` (see `pages::project::ProjectFrame`).
    let query = use_query_map();
    let name = move || query.read().get("name").unwrap_or_default();
    let page = page_param();
    let reload: Reload = RwSignal::new(0);
    let groups = Resource::new(
        move || (name(), page(), reload.get()),
        |(n, pg, _)| {
            let q =
                if n.is_empty() { String::new() } else { format!("&group_name={}", encode_component(&n)) };
            api::list::<UserGroup>(format!("/usergroups?page={pg}&page_size={PAGE_SIZE}{q}"))
        },
    );
    let info = Resource::new(|| (), |_| api::get::<SystemInfo>("/systeminfo".into()));
    view! {
        <Title text=t("Groups · Berth") />
        <AdminOnly body=move |_| view! {
            <Suspense fallback=loading>
                {move || Suspend::new(async move {
                    let mode = info.await.map(|i| i.auth_mode).unwrap_or_default();
                    view! { <GroupsBody mode groups reload /> }
                })}
            </Suspense>
        } />
    }
}

#[component]
fn GroupsBody(
    mode: String,
    groups: Resource<Result<Listing<UserGroup>, PortalError>>,
    reload: Reload,
) -> impl IntoView {
    let query = use_query_map();
    let name = move || query.read().get("name").unwrap_or_default();
    let page = page_param();
    let outcome: OutcomeSignal = RwSignal::new(None);
    let show_form = RwSignal::new(false);
    let editing: RwSignal<Option<i64>> = RwSignal::new(None);
    let g_type = RwSignal::new(default_group_type(&mode).to_string());
    let (g_name, g_dn) = (RwSignal::new(String::new()), RwSignal::new(String::new()));
    let open_new = move |_| {
        editing.set(None);
        g_name.set(String::new());
        g_dn.set(String::new());
        show_form.update(|s| *s = !*s);
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let group_name = g_name.get_untracked().trim().to_string();
        let ty: i64 = g_type.get_untracked().parse().unwrap_or(2);
        let body = api::body(&UserGroup {
            id: 0,
            group_name: group_name.clone(),
            group_type: ty,
            ldap_group_dn: if ty == 1 { g_dn.get_untracked().trim().to_string() } else { String::new() },
        });
        let (method, path, note) = match editing.get_untracked() {
            Some(id) => ("PUT", format!("/usergroups/{id}"), fill(t("Saved group {}."), &[&group_name])),
            None => ("POST", "/usergroups".to_string(), fill(t("Created group {}."), &[&group_name])),
        };
        leptos::task::spawn_local(async move {
            match api::send(method, path, Some(body)).await {
                Ok(_) => {
                    outcome.set(Some(Ok(note)));
                    show_form.set(false);
                    editing.set(None);
                }
                Err(e) => outcome.set(Some(Err(e))),
            }
            reload.update(|v| *v += 1);
        });
    };
    let is_ldap = move || g_type.get() == "1";
    let ldap_mode = mode == "ldap_auth";
    view! {
        <div class="page-head">
            <h1>{t("Groups")}</h1>
            <button type="button" class="btn btn-primary" on:click=open_new
                aria-expanded=move || show_form.get().to_string() data-testid="group-new">{t("New group")}</button>
        </div>
        <Show when=move || show_form.get()>
            <form class="card form-card" on:submit=submit data-testid="group-form">
                <h2>{move || if editing.get().is_some() { t("Edit group") } else { t("New group") }}</h2>
                <label for="g-type">{t("Group type")}</label>
                <select id="g-type" bind:value=g_type disabled=move || editing.get().is_some() data-testid="group-type">
                    {GROUP_TYPES.map(|(v, l)| view! { <option value=v.to_string() selected=g_type.get_untracked() == v.to_string()>{t(l)}</option> }).collect_view()}
                </select>
                <label for="g-name">{t("Group name")}</label>
                <input id="g-name" type="text" required=move || !is_ldap() autocomplete="off" bind:value=g_name data-testid="group-name" />
                <Show when=is_ldap>
                    <label for="g-dn">{t("LDAP group DN")}</label>
                    <input id="g-dn" type="text" required autocomplete="off" placeholder="cn=devs,ou=groups,dc=example,dc=com"
                        disabled=move || editing.get().is_some() bind:value=g_dn data-testid="group-dn" />
                </Show>
                <div class="actions">
                    <button type="submit" class="btn btn-primary" data-testid="group-save">{t("Save")}</button>
                    <button type="button" class="btn" on:click=move |_| show_form.set(false)>{t("Cancel")}</button>
                </div>
            </form>
        </Show>
        {ldap_mode.then(|| view! { <LdapGroupImport outcome reload /> })}
        <Form method="GET" action="" attr:class="toolbar" attr:role="search">
            <label class="visually-hidden" for="group-search">{t("Filter groups by name")}</label>
            <input id="group-search" type="search" name="name" placeholder=t("Filter by name") value=name() />
            <button type="submit" class="btn">{t("Search")}</button>
        </Form>
        <Outcome result=outcome />
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                let keep = if name().is_empty() { String::new() } else { format!("name={}&", encode_component(&name())) };
                listing(groups.await, page(), PAGE_SIZE, t("No groups match."), move |p| format!("?{keep}page={p}"), move |items| view! {
                    <div class="table-wrap">
                        <table class="table" data-testid="group-table">
                            <thead><tr>
                                <th scope="col">{t("Group name")}</th>
                                <th scope="col">{t("Group type")}</th>
                                <th scope="col">{t("LDAP group DN")}</th>
                                <th scope="col">{t("Actions")}</th>
                            </tr></thead>
                            <tbody>
                                {items.into_iter().map(|g| {
                                    let id = g.id;
                                    let (n1, n2) = (g.group_name.clone(), g.group_name.clone());
                                    let (ty, dn) = (g.group_type, g.ldap_group_dn.clone());
                                    let edit = move |_| {
                                        editing.set(Some(id));
                                        g_type.set(ty.to_string());
                                        g_name.set(n1.clone());
                                        g_dn.set(dn.clone());
                                        show_form.set(true);
                                    };
                                    let remove = Callback::new(move |_| {
                                        perform(outcome, reload, fill(t("Deleted group {}."), &[&n2]), api::send("DELETE", format!("/usergroups/{id}"), None));
                                    });
                                    view! {
                                        <tr data-testid="group-row" data-name=g.group_name.clone()>
                                            <td class="strong">{g.group_name.clone()}</td>
                                            <td data-testid="group-type-text">{t(group_type_name(g.group_type))}</td>
                                            <td class="wrap">{g.ldap_group_dn.clone()}</td>
                                            <td class="actions">
                                                <button type="button" class="btn btn-ghost" on:click=edit data-testid="group-edit"
                                                    aria-label=fill(t("Edit group {}"), &[&g.group_name])>{t("Edit")}</button>
                                                <Confirm label=t("Delete") question=fill(t("Delete group {}?"), &[&g.group_name]) on_confirm=remove testid="group-delete" />
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                })
            })}
        </Transition>
    }
}

/// LDAP mode: find groups in the directory by name (`/ldap/groups/search?groupname=`) and
/// import one (`POST /usergroups` with its DN).
#[component]
fn LdapGroupImport(outcome: OutcomeSignal, reload: Reload) -> impl IntoView {
    let term = RwSignal::new(String::new());
    let found: RwSignal<Option<Result<Vec<UserGroup>, PortalError>>> = RwSignal::new(None);
    let search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let q = term.get_untracked().trim().to_string();
        leptos::task::spawn_local(async move {
            let r =
                api::get::<Vec<UserGroup>>(format!("/ldap/groups/search?groupname={}", encode_component(&q)))
                    .await;
            found.set(Some(r));
        });
    };
    view! {
        <section class="card form-card" aria-labelledby="ldap-groups-h" data-testid="ldap-group-import">
            <h2 id="ldap-groups-h">{t("Import from LDAP")}</h2>
            <form class="toolbar" role="search" on:submit=search>
                <label class="visually-hidden" for="ldap-group-term">{t("Group name in the directory")}</label>
                <input id="ldap-group-term" type="search" placeholder=t("Group name in the directory") bind:value=term />
                <button type="submit" class="btn">{t("Search LDAP")}</button>
            </form>
            {move || found.get().map(|r| match r {
                Ok(list) if list.is_empty() => view! { <p class="muted">{t("No LDAP groups match.")}</p> }.into_any(),
                Ok(list) => view! {
                    <ul class="stack" data-testid="ldap-group-results">
                        {list.into_iter().map(|g| {
                            let label = if g.group_name.is_empty() { g.ldap_group_dn.clone() } else { g.group_name.clone() };
                            let note = fill(t("Created group {}."), &[&label]);
                            let body = api::body(&UserGroup { id: 0, group_name: g.group_name.clone(), group_type: 1, ldap_group_dn: g.ldap_group_dn.clone() });
                            let import = move |_| perform(outcome, reload, note.clone(), api::send("POST", "/usergroups".into(), Some(body.clone())));
                            view! {
                                <li>
                                    <span class="strong">{label.clone()}</span> " " <span class="muted">{g.ldap_group_dn.clone()}</span> " "
                                    <button type="button" class="btn btn-ghost" on:click=import aria-label=fill(t("Import {}"), &[&label])>{t("Import")}</button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any(),
                Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
            })}
        </section>
    }
}

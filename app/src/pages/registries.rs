//! Administration → Registries (`/harbor/registries`, system admins): the registry endpoints
//! replication and proxy-cache projects talk to. List (name, status, URL, type, insecure,
//! description), a create/edit form (type from `/replication/adapters`; the access secret is
//! never shown back, left empty on edit it is kept), **Test connection**
//! (`POST /registries/ping`, with the form's values) and delete (the server refuses with its
//! message while a rule or project uses the endpoint).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::format::time_str;
use crate::components::page::{listing, loading, page_param, Confirm, Outcome};
use crate::error::PortalError;
use crate::i18n::{fill, t, tv};
use crate::pages::admin::AdminOnly;
use crate::pages::project::{perform, perform_recorded, OutcomeSignal, Reload};
use crate::rest::registries::{Registry, RegistryCredentialReq, RegistryPing, RegistryReq, RegistryUpdate};
use crate::server_fns::api::{self, Listing};

pub const PATH: &str = "/harbor/registries";
const PAGE_SIZE: u64 = 15;

#[component]
pub fn Registries() -> impl IntoView {
    // Resources before any `Suspend` (see `pages::project::ProjectFrame`).
    let page = page_param();
    let reload: Reload = RwSignal::new(0);
    let registries = Resource::new(
        move || (page(), reload.get()),
        |(pg, _)| api::list::<Registry>(format!("/registries?page={pg}&page_size={PAGE_SIZE}")),
    );
    let adapters = Resource::new(|| (), |_| api::get::<Vec<String>>("/replication/adapters".into()));
    view! {
        <Title text=t("Registries · Berth") />
        <AdminOnly body=move |_| view! { <RegistriesBody registries adapters reload /> } />
    }
}

/// What the form edits: a new endpoint or a stored one.
#[derive(Clone, PartialEq)]
enum Editing {
    New,
    Edit(Box<Registry>),
}

#[component]
fn RegistriesBody(
    registries: Resource<Result<Listing<Registry>, PortalError>>,
    adapters: Resource<Result<Vec<String>, PortalError>>,
    reload: Reload,
) -> impl IntoView {
    let page = page_param();
    let outcome: OutcomeSignal = RwSignal::new(None);
    let editing = RwSignal::new(None::<Editing>);
    view! {
        <div class="page-head">
            <h1>{t("Registries")}</h1>
            <button type="button" class="btn btn-primary" data-testid="registry-new"
                on:click=move |_| editing.set(Some(Editing::New))>{t("New endpoint")}</button>
        </div>
        <p class="muted">{t("Registry endpoints are the other registries replication rules and proxy-cache projects talk to.")}</p>
        <Outcome result=outcome />
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                let types = adapters.await.unwrap_or_default();
                let close = Callback::new(move |_| editing.set(None));
                move || editing.get().map(|e| view! { <RegistryForm editing=e types=types.clone() outcome reload close /> })
            })}
        </Transition>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                listing(registries.await, page(), PAGE_SIZE, t("No registry endpoints yet."), |p| format!("?page={p}"), move |items| view! {
                    <RegistryTable items editing outcome reload />
                })
            })}
        </Transition>
    }
}

#[component]
fn RegistryTable(
    items: Vec<Registry>,
    editing: RwSignal<Option<Editing>>,
    outcome: OutcomeSignal,
    reload: Reload,
) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="registry-table">
                <thead><tr>
                    <th scope="col">{t("Name")}</th>
                    <th scope="col">{t("Status")}</th>
                    <th scope="col">{t("Endpoint URL")}</th>
                    <th scope="col">{t("Provider")}</th>
                    <th scope="col">{t("Verify remote certificate")}</th>
                    <th scope="col">{t("Description")}</th>
                    <th scope="col">{t("Creation time")}</th>
                    <th scope="col">{t("Actions")}</th>
                </tr></thead>
                <tbody>
                    {items.into_iter().map(|r| {
                        let (id, name) = (r.id, r.name.clone());
                        let remove = Callback::new(move |_| {
                            perform(outcome, reload, fill(t("Deleted endpoint {}."), &[&name]), api::send("DELETE", format!("/registries/{id}"), None));
                        });
                        let test = move |_| {
                            perform_recorded(outcome, reload, t("Connection tested successfully.").to_string(),
                                api::send("POST", "/registries/ping".into(), Some(api::body(&RegistryPing { id: Some(id), ..Default::default() }))));
                        };
                        let status_class = match r.status.as_str() {
                            "healthy" => "badge badge-success",
                            "unhealthy" => "badge badge-error",
                            _ => "badge badge-stopped",
                        };
                        let edit_with = r.clone();
                        view! {
                            <tr data-testid="registry-row" data-name=r.name.clone()>
                                <td class="strong">{r.name.clone()}</td>
                                <td><span class=status_class data-testid="registry-status">{tv(&r.status)}</span></td>
                                <td class="wrap">{r.url.clone()}</td>
                                <td>{r.kind.clone()}</td>
                                <td>{if r.insecure { t("No") } else { t("Yes") }}</td>
                                <td>{r.description.clone()}</td>
                                <td>{time_str(&r.creation_time)}</td>
                                <td><div class="actions">
                                    <button type="button" class="btn btn-ghost" data-testid="registry-test" on:click=test>{t("Test connection")}</button>
                                    <button type="button" class="btn btn-ghost" data-testid="registry-edit"
                                        on:click=move |_| editing.set(Some(Editing::Edit(Box::new(edit_with.clone()))))>{t("Edit")}</button>
                                    <Confirm label=t("Delete") question=fill(t("Delete endpoint {}?"), &[&r.name]) on_confirm=remove testid="registry-delete" />
                                </div></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn RegistryForm(
    editing: Editing,
    /// The registry types the server knows (`/replication/adapters`).
    types: Vec<String>,
    outcome: OutcomeSignal,
    reload: Reload,
    close: Callback<()>,
) -> impl IntoView {
    let stored = match &editing {
        Editing::Edit(r) => Some((**r).clone()),
        Editing::New => None,
    };
    let s = stored.clone();
    let kind = RwSignal::new(
        s.as_ref().map(|r| r.kind.clone()).unwrap_or_else(|| types.first().cloned().unwrap_or_default()),
    );
    let name = RwSignal::new(s.as_ref().map(|r| r.name.clone()).unwrap_or_default());
    let description = RwSignal::new(s.as_ref().map(|r| r.description.clone()).unwrap_or_default());
    let url = RwSignal::new(s.as_ref().map(|r| r.url.clone()).unwrap_or_default());
    let access_key = RwSignal::new(s.as_ref().map(|r| r.credential.access_key.clone()).unwrap_or_default());
    // Never filled from the server: empty on edit keeps the stored secret.
    let access_secret = RwSignal::new(String::new());
    let verify = RwSignal::new(!s.as_ref().map(|r| r.insecure).unwrap_or(false));
    // The latest "Test connection" of this form: its result, shown next to the button.
    let tested = RwSignal::new(None::<Result<(), PortalError>>);
    let testing = RwSignal::new(false);
    let id = stored.as_ref().map(|r| r.id);
    let stored_url = stored.as_ref().map(|r| r.url.clone());
    let opt = |s: String| if s.is_empty() { None } else { Some(s) };

    let test = move |_| {
        let (k, u, key, secret) = (
            kind.get_untracked(),
            url.get_untracked().trim().to_string(),
            access_key.get_untracked(),
            access_secret.get_untracked(),
        );
        let cred_type = Some(if key.is_empty() { String::new() } else { "basic".to_string() });
        // A stored endpoint whose URL is unchanged is tested with its stored secret unless a new
        // one is typed; otherwise everything comes from the form.
        let req = match (id, stored_url.as_deref()) {
            (Some(id), Some(su)) if su == u => RegistryPing {
                id: Some(id),
                kind: Some(k),
                credential_type: cred_type,
                access_key: Some(key),
                access_secret: opt(secret),
                insecure: Some(!verify.get_untracked()),
                ..Default::default()
            },
            _ => RegistryPing {
                kind: Some(k),
                url: Some(u),
                credential_type: cred_type,
                access_key: Some(key),
                access_secret: Some(secret),
                insecure: Some(!verify.get_untracked()),
                ..Default::default()
            },
        };
        testing.set(true);
        tested.set(None);
        leptos::task::spawn_local(async move {
            let r = api::send("POST", "/registries/ping".into(), Some(api::body(&req))).await;
            tested.set(Some(r.map(|_| ())));
            testing.set(false);
        });
    };
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (k, n, d, u, key, secret) = (
            kind.get_untracked(),
            name.get_untracked().trim().to_string(),
            description.get_untracked(),
            url.get_untracked().trim().to_string(),
            access_key.get_untracked().trim().to_string(),
            access_secret.get_untracked(),
        );
        let cred_type = if key.is_empty() { String::new() } else { "basic".to_string() };
        let insecure = !verify.get_untracked();
        let call = match id {
            None => api::send(
                "POST",
                "/registries".into(),
                Some(api::body(&RegistryReq {
                    name: n.clone(),
                    kind: k,
                    url: u,
                    description: d,
                    credential: Some(RegistryCredentialReq {
                        kind: cred_type,
                        access_key: key,
                        access_secret: secret,
                    }),
                    insecure,
                    ca_certificate: None,
                })),
            ),
            Some(id) => api::send(
                "PUT",
                format!("/registries/{id}"),
                Some(api::body(&RegistryUpdate {
                    name: Some(n.clone()),
                    description: Some(d),
                    url: Some(u),
                    credential_type: Some(cred_type),
                    access_key: Some(key),
                    access_secret: opt(secret),
                    insecure: Some(insecure),
                    ca_certificate: None,
                })),
            ),
        };
        let note = if id.is_some() {
            fill(t("Saved endpoint {}."), &[&n])
        } else {
            fill(t("Created endpoint {}."), &[&n])
        };
        leptos::task::spawn_local(async move {
            match call.await {
                Ok(_) => {
                    outcome.set(Some(Ok(note)));
                    close.run(());
                }
                Err(e) => outcome.set(Some(Err(e))),
            }
            reload.update(|v| *v += 1);
        });
    };
    let title = if id.is_some() { t("Edit endpoint") } else { t("New endpoint") };
    let editing_stored = id.is_some();
    view! {
        <form class="card form-card" on:submit=save data-testid="registry-form">
            <h2>{title}</h2>
            <label for="reg-type">{t("Provider")}</label>
            <select id="reg-type" data-testid="registry-type" disabled=editing_stored
                on:change=move |ev| kind.set(event_target_value(&ev)) prop:value=move || kind.get()>
                {types.into_iter().map(|k| {
                    let selected = k == kind.get_untracked();
                    view! { <option value=k.clone() selected=selected>{k.clone()}</option> }
                }).collect_view()}
            </select>
            <label for="reg-name">{t("Name")}</label>
            <input id="reg-name" type="text" required maxlength="255" autocomplete="off" bind:value=name data-testid="registry-name" />
            <label for="reg-desc">{t("Description")}</label>
            <input id="reg-desc" type="text" bind:value=description />
            <label for="reg-url">{t("Endpoint URL")}</label>
            <input id="reg-url" type="url" required placeholder="https://registry.example.com" bind:value=url data-testid="registry-url" />
            <label for="reg-key">{t("Access ID")}</label>
            <input id="reg-key" type="text" autocomplete="off" bind:value=access_key data-testid="registry-key" />
            <label for="reg-secret">{t("Access secret")}</label>
            <input id="reg-secret" type="password" autocomplete="new-password" bind:value=access_secret data-testid="registry-secret"
                placeholder=if editing_stored { t("Unchanged") } else { "" } />
            {editing_stored.then(|| view! { <p class="muted small">{t("The stored secret is never shown; leave the field empty to keep it.")}</p> })}
            <label class="check"><input type="checkbox" bind:checked=verify data-testid="registry-verify" />{t(" Verify remote certificate")}</label>
            <div class="actions">
                <button type="button" class="btn" on:click=test disabled=move || testing.get() data-testid="registry-ping">{t("Test connection")}</button>
                <button type="submit" class="btn btn-primary" data-testid="registry-save">{if editing_stored { t("Save") } else { t("Create") }}</button>
                <button type="button" class="btn" on:click=move |_| close.run(())>{t("Cancel")}</button>
            </div>
            {move || match tested.get() {
                None if testing.get() => view! { <p class="muted small" aria-busy="true">{t("Testing…")}</p> }.into_any(),
                None => ().into_any(),
                Some(Ok(())) => view! { <p class="alert alert-ok" role="status" data-testid="registry-ping-result">{t("Connection tested successfully.")}</p> }.into_any(),
                Some(Err(e)) => view! { <p class="alert alert-error" role="alert" data-testid="registry-ping-result">{fill(t("Connection failed: {}"), &[&e.localized()])}</p> }.into_any(),
            }}
        </form>
    }
}

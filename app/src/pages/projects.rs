use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use leptos_router::hooks::use_navigate;

use crate::components::format::{bytes, time_str};
use crate::components::layout::AppShell;
use crate::components::page::{page_param, pager, signed_in, Confirm, ErrorAlert, Outcome};
use crate::components::quota::QuotaBar;
use crate::error::PortalError;
use crate::i18n::{fill, t};
use crate::pages::project::{perform, OutcomeSignal, Reload};
use crate::rest::projects::{ProjectMetadata, ProjectReq};
use crate::rest::registries::Registry;
use crate::rest::{ProjectResp, ProjectSummary, UserResp};
use crate::server_fns::api::{self, seg, Listing, PAGE_SIZE};
use crate::server_fns::auth::{current_user, encode_component};

/// The registry types a proxy-cache project can pull through from (Harbor's list, of the
/// types this server has).
pub const PROXY_TYPES: [&str; 2] = ["docker-registry", "harbor"];

/// A project's quota in the list: used and limit bytes (`None` when its summary could not be read).
type Quota = Option<(i64, i64)>;

/// A page of the list: its number, the projects and their quotas.
type ProjectPage = (u64, Listing<ProjectResp>, Vec<Quota>);

#[component]
pub fn Projects() -> impl IntoView {
    let query = use_query_map();
    let name = move || query.read().get("name").unwrap_or_default();
    let page = page_param();
    let user = Resource::new(|| (), |_| current_user());
    let outcome: OutcomeSignal = RwSignal::new(None);
    let reload: Reload = RwSignal::new(0);
    let projects = Resource::new(
        move || (name(), page(), reload.get()),
        |(n, p, _)| async move {
            let path = format!("/projects?name={}&page={p}&page_size={PAGE_SIZE}", encode_component(&n));
            let list = api::list::<ProjectResp>(path).await?;
            // Each project's quota, from its summary (readable by whoever sees the project; the
            // `/quotas` list is the system admin's only).
            let mut quotas = Vec::with_capacity(list.items.len());
            for pr in &list.items {
                let s = api::get::<ProjectSummary>(format!("/projects/{}/summary", seg(&pr.name))).await;
                quotas.push(s.ok().map(|s| (s.quota.used.storage, s.quota.hard.storage)));
            }
            Ok::<_, PortalError>((p, list, quotas))
        },
    );

    view! {
        <Title text=t("Projects · Berth") />
        <Suspense fallback=|| view! { <p class="loading" aria-busy="true">{t("Loading…")}</p> }>
            {move || Suspend::new(async move {
                // Back to this very listing (search and page included) after signing in.
                let (n, p) = (name(), page());
                let mut here = String::from("/harbor/projects");
                if !n.is_empty() || p > 1 {
                    here.push_str(&format!("?name={}&page={p}", encode_component(&n)));
                }
                signed_in(user.await, &here, |u| view! { <ProjectsBody user=u name=n projects=projects outcome reload /> })
            })}
        </Suspense>
    }
}

#[component]
fn ProjectsBody(
    user: UserResp,
    name: String,
    projects: Resource<Result<ProjectPage, PortalError>>,
    outcome: OutcomeSignal,
    reload: Reload,
) -> impl IntoView {
    let search_value = name.clone();
    let show_form = RwSignal::new(false);
    let (p_name, p_public) = (RwSignal::new(String::new()), RwSignal::new(false));
    // Proxy cache (system admins): the project pulls through from a registry endpoint.
    let (p_proxy, p_registry) = (RwSignal::new(false), RwSignal::new(String::new()));
    let endpoints = RwSignal::new(None::<Result<Vec<Registry>, PortalError>>);
    let load_endpoints = move || {
        if endpoints.get_untracked().is_none() {
            leptos::task::spawn_local(async move {
                let r = api::list::<Registry>("/registries?page=1&page_size=100".into()).await.map(|l| {
                    l.items.into_iter().filter(|r| PROXY_TYPES.contains(&r.kind.as_str())).collect::<Vec<_>>()
                });
                if let Ok(Some(first)) = r.as_ref().map(|v| v.first()) {
                    p_registry.set(first.id.to_string());
                }
                endpoints.set(Some(r));
            });
        }
    };
    let navigate = use_navigate();
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let name = p_name.get_untracked().trim().to_string();
        let metadata =
            ProjectMetadata { public: Some(p_public.get_untracked().to_string()), ..Default::default() };
        let registry_id =
            if p_proxy.get_untracked() { p_registry.get_untracked().parse::<i64>().ok() } else { None };
        if p_proxy.get_untracked() && registry_id.is_none() {
            outcome.set(Some(Err(PortalError::Invalid(t("Choose the registry endpoint to proxy.").into()))));
            return;
        }
        let body = api::body(&ProjectReq {
            project_name: Some(name.clone()),
            public: None,
            metadata: Some(metadata),
            registry_id,
            storage_limit: None,
        });
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match api::send("POST", "/projects".into(), Some(body)).await {
                Ok(_) => navigate(&format!("/harbor/projects/{name}/summary"), Default::default()),
                Err(e) => outcome.set(Some(Err(e))),
            }
        });
    };
    let sysadmin = user.sysadmin_flag;
    view! {
        <AppShell user=user>
            <div class="page-head">
                <h1>{t("Projects")}</h1>
                <button type="button" class="btn btn-primary" on:click=move |_| show_form.update(|s| *s = !*s)
                    aria-expanded=move || show_form.get().to_string() data-testid="project-new">{t("New project")}</button>
            </div>
            <Show when=move || show_form.get()>
                <form class="card form-card" on:submit=create.clone() data-testid="project-form">
                    <h2>{t("New project")}</h2>
                    <label for="np-name">{t("Project name")}</label>
                    <input id="np-name" type="text" required maxlength="255" autocomplete="off"
                        pattern="[a-z0-9]([a-z0-9._\\-]*[a-z0-9])?" title=t("Lower-case letters, digits and . _ -, starting and ending with a letter or digit.")
                        bind:value=p_name data-testid="project-name" />
                    <p class="muted small">{t("Lower-case letters, digits and . _ -, starting and ending with a letter or digit.")}</p>
                    <label class="check"><input type="checkbox" bind:checked=p_public data-testid="project-public" />{t(" Public: anyone may pull images from this project, without logging in")}</label>
                    {sysadmin.then(|| view! {
                        <label class="check"><input type="checkbox" bind:checked=p_proxy data-testid="project-proxy"
                            on:change=move |_| load_endpoints() />{t(" Proxy Cache: pull through from a registry endpoint and keep what was pulled")}</label>
                        <Show when=move || p_proxy.get()>
                            <label for="np-registry">{t("Registry endpoint")}</label>
                            {move || match endpoints.get() {
                                None => view! { <p class="muted small" aria-busy="true">{t("Loading…")}</p> }.into_any(),
                                Some(Err(e)) => view! { <ErrorAlert error=e /> }.into_any(),
                                Some(Ok(list)) if list.is_empty() => view! {
                                    <p class="muted small" data-testid="project-no-endpoint">{t("No registry endpoint of type docker-registry or harbor: create one under Administration → Registries.")}</p>
                                }.into_any(),
                                Some(Ok(list)) => view! {
                                    <select id="np-registry" data-testid="project-registry" on:change=move |ev| p_registry.set(event_target_value(&ev))>
                                        {list.into_iter().map(|r| view! { <option value=r.id.to_string()>{format!("{} · {}", r.name, r.url)}</option> }).collect_view()}
                                    </select>
                                }.into_any(),
                            }}
                        </Show>
                    })}
                    <div class="actions">
                        <button type="submit" class="btn btn-primary" data-testid="project-create">{t("Create")}</button>
                        <button type="button" class="btn" on:click=move |_| show_form.set(false)>{t("Cancel")}</button>
                    </div>
                </form>
            </Show>
            <Outcome result=outcome />
            <Form method="GET" action="/harbor/projects" attr:class="toolbar" attr:role="search">
                <label class="visually-hidden" for="project-search">{t("Filter projects by name")}</label>
                <input id="project-search" type="search" name="name" placeholder=t("Filter by name") value=search_value />
                <button type="submit" class="btn">{t("Search")}</button>
            </Form>
            <Transition fallback=|| view! { <p class="loading" aria-busy="true">{t("Loading…")}</p> }>
                {move || { let name = name.clone(); Suspend::new(async move {
                    match projects.await {
                        Ok((number, p, quotas)) => view! { <ProjectTable page=p quotas number name=name.clone() sysadmin outcome reload /> }.into_any(),
                        Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                    }
                })}}
            </Transition>
        </AppShell>
    }
}

#[component]
fn ProjectTable(
    page: Listing<ProjectResp>,
    /// Each project's quota (used, limit), in the list's order.
    quotas: Vec<Quota>,
    /// The page number shown.
    number: u64,
    name: String,
    sysadmin: bool,
    outcome: OutcomeSignal,
    reload: Reload,
) -> impl IntoView {
    if page.items.is_empty() {
        return view! {
            <div class="empty-state">
                <p>{t("No projects match.")}</p>
            </div>
        }
        .into_any();
    }
    let filter = if name.is_empty() { String::new() } else { format!("name={}&", encode_component(&name)) };
    let link = move |p: u64| format!("?{filter}page={p}");
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="project-table">
                <thead>
                    <tr>
                        <th scope="col">{t("Project name")}</th>
                        <th scope="col">{t("Access level")}</th>
                        <th scope="col">{t("Owner")}</th>
                        <th scope="col" class="num">{t("Repositories")}</th>
                        <th scope="col" class="num">{t("Storage")}</th>
                        <th scope="col">{t("Quota")}</th>
                        <th scope="col">{t("Creation time")}</th>
                        <th scope="col">{t("Actions")}</th>
                    </tr>
                </thead>
                <tbody>
                    {page.items.into_iter().zip(quotas).map(|(p, quota)| {
                        let pname = p.name.clone();
                        let remove = Callback::new(move |_| {
                            perform(outcome, reload, fill(t("Deleted project {}."), &[&pname]), api::send("DELETE", format!("/projects/{}", seg(&pname)), None));
                        });
                        // Project admins and system admins may delete a project, once it is empty.
                        let deletable = (sysadmin || p.current_user_role_id == 1) && p.repo_count == 0;
                        view! {
                        <tr data-testid="project-row" data-name=p.name.clone()>
                            <td class="strong">
                                <a href=format!("/harbor/projects/{}/repositories", p.name)>{p.name.clone()}</a>
                                {p.registry_id.map(|_| view! { " " <span class="badge badge-proxy" data-testid="project-proxy-badge">{t("Proxy Cache")}</span> })}
                            </td>
                            <td>
                                {if p.public() {
                                    view! { <span class="badge badge-public">{t("Public")}</span> }.into_any()
                                } else {
                                    view! { <span class="badge badge-private">{t("Private")}</span> }.into_any()
                                }}
                            </td>
                            <td>{p.owner_name.clone()}</td>
                            <td class="num" data-testid="repo-count">{p.repo_count}</td>
                            <td class="num" data-testid="storage">{bytes(p.storage_used.unwrap_or(0))}</td>
                            <td>{quota.map(|(used, hard)| view! { <QuotaBar used hard /> })}</td>
                            <td>{time_str(&p.creation_time)}</td>
                            <td>
                                {deletable.then(|| view! {
                                    <Confirm label=t("Delete") question=fill(t("Delete project {}?"), &[&p.name]) on_confirm=remove testid="project-delete" />
                                })}
                            </td>
                        </tr>
                    }}).collect_view()}
                </tbody>
            </table>
        </div>
        {pager(page.total, number, PAGE_SIZE, t("{} project(s)"), link)}
    }
    .into_any()
}

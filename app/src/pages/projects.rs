use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use crate::components::format::{bytes, datetime};
use crate::components::layout::AppShell;
use crate::components::page::{page_param, pager, signed_in, ErrorAlert};
use crate::error::PortalError;
use crate::i18n::t;
use crate::model::{ProjectPage, UserView};
use crate::server_fns::auth::{current_user, encode_component};
use crate::server_fns::projects::list_projects;

#[component]
pub fn Projects() -> impl IntoView {
    let query = use_query_map();
    let name = move || query.read().get("name").unwrap_or_default();
    let page = page_param();
    let user = Resource::new(|| (), |_| current_user());
    let projects = Resource::new(move || (name(), page()), |(n, p)| list_projects(n, p));

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
                signed_in(user.await, &here, |u| view! { <ProjectsBody user=u name=n projects=projects /> })
            })}
        </Suspense>
    }
}

#[component]
fn ProjectsBody(
    user: UserView,
    name: String,
    projects: Resource<Result<ProjectPage, PortalError>>,
) -> impl IntoView {
    let search_value = name.clone();
    view! {
        <AppShell user=user>
            <div class="page-head">
                <h1>{t("Projects")}</h1>
            </div>
            <Form method="GET" action="/harbor/projects" attr:class="toolbar" attr:role="search">
                <label class="visually-hidden" for="project-search">{t("Filter projects by name")}</label>
                <input id="project-search" type="search" name="name" placeholder=t("Filter by name") value=search_value />
                <button type="submit" class="btn">{t("Search")}</button>
            </Form>
            <Suspense fallback=|| view! { <p class="loading" aria-busy="true">{t("Loading…")}</p> }>
                {move || { let name = name.clone(); Suspend::new(async move {
                    match projects.await {
                        Ok(p) => view! { <ProjectTable page=p name=name.clone() /> }.into_any(),
                        Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                    }
                })}}
            </Suspense>
        </AppShell>
    }
}

#[component]
fn ProjectTable(page: ProjectPage, name: String) -> impl IntoView {
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
                        <th scope="col">{t("Creation time")}</th>
                    </tr>
                </thead>
                <tbody>
                    {page.items.into_iter().map(|p| view! {
                        <tr>
                            <td class="strong"><a href=format!("/harbor/projects/{}/repositories", p.name)>{p.name.clone()}</a></td>
                            <td>
                                {if p.public {
                                    view! { <span class="badge badge-public">{t("Public")}</span> }.into_any()
                                } else {
                                    view! { <span class="badge badge-private">{t("Private")}</span> }.into_any()
                                }}
                            </td>
                            <td>{p.owner_name.clone()}</td>
                            <td class="num" data-testid="repo-count">{p.repo_count}</td>
                            <td class="num" data-testid="storage">{bytes(p.storage_bytes)}</td>
                            <td>{datetime(p.created_at)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        {pager(page.total, page.page, page.page_size, t("{} project(s)"), link)}
    }
    .into_any()
}

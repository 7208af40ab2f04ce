//! A project's repositories (`/harbor/projects/:project/repositories`) and a repository's
//! artifacts (`/harbor/projects/:project/repositories/*repo`) with tags and pull commands.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::components::format::{bytes, datetime};
use crate::components::layout::AppShell;
use crate::components::page::{current_path, page_param, pager, signed_in, ErrorAlert};
use crate::i18n::{t, tv};
use crate::model::{ArtifactPage, RepoPage};
use crate::server_fns::auth::{current_user, encode_component};
use crate::server_fns::projects::{list_artifacts, list_repositories};

#[component]
pub fn ProjectRepositories() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let project = move || params.read().get("project").unwrap_or_default();
    let name = move || query.read().get("name").unwrap_or_default();
    let page = page_param();
    let user = Resource::new(|| (), |_| current_user());
    let repos = Resource::new(move || (project(), name(), page()), |(p, n, pg)| list_repositories(p, n, pg));
    let here = current_path();
    view! {
        <Title text=t("Repositories · Berth") />
        <Suspense fallback=|| view! { <p class="loading" aria-busy="true">{t("Loading…")}</p> }>
            {move || Suspend::new(async move {
                signed_in(user.await, &here(), |u| view! {
                    <AppShell user=u>
                        <nav class="crumbs" aria-label=t("Breadcrumb")>
                            <a href="/harbor/projects">{t("Projects")}</a>
                            " / "
                            <span>{project()}</span>
                        </nav>
                        <div class="page-head"><h1>{project()}</h1></div>
                        <Form method="GET" action="" attr:class="toolbar" attr:role="search">
                            <label class="visually-hidden" for="repo-search">{t("Filter repositories by name")}</label>
                            <input id="repo-search" type="search" name="name" placeholder=t("Filter by name") value=name() />
                            <button type="submit" class="btn">{t("Search")}</button>
                        </Form>
                        <Suspense fallback=|| view! { <p class="loading" aria-busy="true">{t("Loading…")}</p> }>
                            {move || Suspend::new(async move {
                                match repos.await {
                                    Ok(p) => view! { <RepoTable page=p name=name() /> }.into_any(),
                                    Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                                }
                            })}
                        </Suspense>
                    </AppShell>
                })
            })}
        </Suspense>
    }
}

#[component]
fn RepoTable(page: RepoPage, name: String) -> impl IntoView {
    if page.items.is_empty() {
        return view! {
            <div class="empty-state"><p>{t("No repositories yet. Push an image to create one.")}</p></div>
        }
        .into_any();
    }
    let project = page.project.clone();
    let filter = if name.is_empty() { String::new() } else { format!("name={}&", encode_component(&name)) };
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="repo-table">
                <thead>
                    <tr>
                        <th scope="col">{t("Name")}</th>
                        <th scope="col" class="num">{t("Artifacts")}</th>
                        <th scope="col" class="num">{t("Pulls")}</th>
                        <th scope="col">{t("Last modified")}</th>
                    </tr>
                </thead>
                <tbody>
                    {page.items.into_iter().map(|r| {
                        let href = format!("/harbor/projects/{}/repositories/{}", project, r.name.strip_prefix(&format!("{project}/")).unwrap_or(&r.name));
                        view! {
                            <tr>
                                <td class="strong"><a href=href>{r.name.clone()}</a></td>
                                <td class="num" data-testid="artifact-count">{r.artifact_count}</td>
                                <td class="num" data-testid="pull-count">{r.pull_count}</td>
                                <td>{datetime(r.updated_at)}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        {pager(page.total, page.page, page.page_size, t("{} item(s)"), move |p| format!("?{filter}page={p}"))}
    }
    .into_any()
}

#[component]
pub fn RepositoryArtifacts() -> impl IntoView {
    let params = use_params_map();
    let project = move || params.read().get("project").unwrap_or_default();
    let repo = move || format!("{}/{}", project(), params.read().get("repo").unwrap_or_default());
    let page = page_param();
    let user = Resource::new(|| (), |_| current_user());
    let artifacts = Resource::new(move || (repo(), page()), |(r, pg)| list_artifacts(r, pg));
    let here = current_path();
    view! {
        <Title text=t("Artifacts · Berth") />
        <Suspense fallback=|| view! { <p class="loading" aria-busy="true">{t("Loading…")}</p> }>
            {move || Suspend::new(async move {
                signed_in(user.await, &here(), |u| view! {
                    <AppShell user=u>
                        <nav class="crumbs" aria-label=t("Breadcrumb")>
                            <a href="/harbor/projects">{t("Projects")}</a>
                            " / "
                            <a href=format!("/harbor/projects/{}/repositories", project())>{project()}</a>
                            " / "
                            <span>{repo()}</span>
                        </nav>
                        <div class="page-head"><h1>{repo()}</h1></div>
                        <Suspense fallback=|| view! { <p class="loading" aria-busy="true">{t("Loading…")}</p> }>
                            {move || Suspend::new(async move {
                                match artifacts.await {
                                    Ok(p) => view! { <ArtifactTable page=p /> }.into_any(),
                                    Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                                }
                            })}
                        </Suspense>
                    </AppShell>
                })
            })}
        </Suspense>
    }
}

#[component]
fn ArtifactTable(page: ArtifactPage) -> impl IntoView {
    if page.items.is_empty() {
        return view! { <div class="empty-state"><p>{t("No artifacts in this repository.")}</p></div> }
            .into_any();
    }
    let base = format!("{}/{}", page.registry, page.repository);
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="artifact-table">
                <thead>
                    <tr>
                        <th scope="col">{t("Digest")}</th>
                        <th scope="col">{t("Tags")}</th>
                        <th scope="col">{t("Type")}</th>
                        <th scope="col" class="num">{t("Size")}</th>
                        <th scope="col">{t("Push time")}</th>
                        <th scope="col">{t("Pull time")}</th>
                        <th scope="col">{t("Pull command")}</th>
                    </tr>
                </thead>
                <tbody>
                    {page.items.into_iter().map(|a| {
                        let short = a.digest.split(':').nth(1).map(|h| format!("sha256:{}", &h[..h.len().min(12)])).unwrap_or_else(|| a.digest.clone());
                        // By tag when there is one, by digest otherwise.
                        let command = match a.tags.first() {
                            Some(tag) => format!("docker pull {base}:{tag}"),
                            None => format!("docker pull {base}@{}", a.digest),
                        };
                        view! {
                            <tr data-testid="artifact-row" data-digest=a.digest.clone()>
                                <td><code title=a.digest.clone()>{short}</code></td>
                                <td>
                                    {if a.tags.is_empty() {
                                        view! { <span class="muted">"—"</span> }.into_any()
                                    } else {
                                        a.tags.iter().map(|tg| view! { <span class="badge badge-tag">{tg.clone()}</span> " " }).collect_view().into_any()
                                    }}
                                </td>
                                <td>{tv(&a.kind)}</td>
                                <td class="num">{bytes(a.size)}</td>
                                <td>{datetime(a.pushed_at)}</td>
                                <td>{if a.pulled_at > 0 { datetime(a.pulled_at) } else { "—".to_string() }}</td>
                                <td><CopyField value=command /></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        {pager(page.total, page.page, page.page_size, t("{} item(s)"), |p| format!("?page={p}"))}
    }
    .into_any()
}

/// A read-only text and a button that copies it to the clipboard (the text stays selectable
/// without JavaScript).
#[component]
fn CopyField(value: String) -> impl IntoView {
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
            <input type="text" readonly value=value.clone() aria-label=t("Pull command") data-testid="pull-command" />
            <button type="button" class="btn btn-ghost" on:click=copy>
                {move || if copied.get() { t("Copied") } else { t("Copy") }}
            </button>
        </span>
    }
}

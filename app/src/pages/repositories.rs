//! A project's repositories (`/harbor/projects/:project/repositories`) and a repository's
//! artifacts (`/harbor/projects/:project/repositories/*repo`) with tags and pull commands.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::components::format::{bytes, time_str};
use crate::components::page::{loading, page_param, pager, Confirm, CopyField, ErrorAlert, Outcome};
use crate::error::PortalError;
use crate::i18n::{fill, t, tv};
use crate::pages::labels::{usable_labels, ArtifactLabels};
use crate::pages::project::{perform, project_param, OutcomeSignal, ProjectCtx, ProjectFrame, Reload};
use crate::rest::artifacts::TagReq;
use crate::rest::{Artifact, Label, Repository};
use crate::server_fns::api::{self, repo_path, seg, Listing, PAGE_SIZE};
use crate::server_fns::auth::encode_component;

#[component]
pub fn ProjectRepositories() -> impl IntoView {
    let query = use_query_map();
    let name = move || query.read().get("name").unwrap_or_default();
    let page = page_param();
    let project = project_param();
    let reload: Reload = RwSignal::new(0);
    let repos = Resource::new(
        move || (project(), name(), page(), reload.get()),
        |(p, n, pg, _)| async move {
            let filter = if n.is_empty() {
                String::new()
            } else {
                format!("q={}&", encode_component(&format!("name=~{n}")))
            };
            let path = format!(
                "/projects/{}/repositories?{filter}sort=-update_time&page={pg}&page_size={PAGE_SIZE}",
                seg(&p)
            );
            api::list::<Repository>(path).await.map(|l| RepoPage { project: p, number: pg, list: l })
        },
    );
    view! {
        <Title text=t("Repositories · Berth") />
        <ProjectFrame tab="repositories" body=move |ctx: ProjectCtx| view! { <RepositoriesBody ctx repos reload /> } />
    }
}

/// One page of a project's repositories.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct RepoPage {
    project: String,
    number: u64,
    list: Listing<Repository>,
}

/// One page of a repository's artifacts, with the host clients pull from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct ArtifactPage {
    repository: String,
    registry: String,
    number: u64,
    list: Listing<Artifact>,
    /// The labels usable on the project's artifacts (global, then the project's).
    labels: Vec<Label>,
    /// The label the list is filtered by (`?label=<id>`).
    label: Option<i64>,
}

#[component]
fn RepositoriesBody(
    ctx: ProjectCtx,
    repos: Resource<Result<RepoPage, PortalError>>,
    reload: Reload,
) -> impl IntoView {
    let query = use_query_map();
    let name = move || query.read().get("name").unwrap_or_default();
    let outcome: OutcomeSignal = RwSignal::new(None);
    let can_delete = ctx.can("repository", "delete");
    view! {
        <Form method="GET" action="" attr:class="toolbar" attr:role="search">
            <label class="visually-hidden" for="repo-search">{t("Filter repositories by name")}</label>
            <input id="repo-search" type="search" name="name" placeholder=t("Filter by name") value=name() />
            <button type="submit" class="btn">{t("Search")}</button>
        </Form>
        <Outcome result=outcome />
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match repos.await {
                    Ok(p) => view! { <RepoTable page=p name=name() can_delete outcome reload /> }.into_any(),
                    Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn RepoTable(
    page: RepoPage,
    name: String,
    can_delete: bool,
    outcome: OutcomeSignal,
    reload: Reload,
) -> impl IntoView {
    if page.list.items.is_empty() {
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
                        {can_delete.then(|| view! { <th scope="col">{t("Actions")}</th> })}
                    </tr>
                </thead>
                <tbody>
                    {page.list.items.into_iter().map(|r| {
                        let href = format!("/harbor/projects/{}/repositories/{}", project, r.name.strip_prefix(&format!("{project}/")).unwrap_or(&r.name));
                        let full = r.name.clone();
                        let remove = Callback::new(move |_| {
                            perform(outcome, reload, fill(t("Deleted {}."), &[&full]), api::send("DELETE", repo_path(&full), None));
                        });
                        view! {
                            <tr data-testid="repo-row" data-name=r.name.clone()>
                                <td class="strong"><a href=href>{r.name.clone()}</a></td>
                                <td class="num" data-testid="artifact-count">{r.artifact_count}</td>
                                <td class="num" data-testid="pull-count">{r.pull_count}</td>
                                <td>{time_str(&r.update_time)}</td>
                                {can_delete.then(|| view! {
                                    <td><Confirm label=t("Delete") question=fill(t("Delete repository {} and all its artifacts?"), &[&r.name]) on_confirm=remove testid="repo-delete" /></td>
                                })}
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        {pager(page.list.total, page.number, PAGE_SIZE, t("{} item(s)"), move |p| format!("?{filter}page={p}"))}
    }
    .into_any()
}

/// `/harbor/projects/:project/repositories/*repo`: the repository's artifacts, or one
/// artifact when the path ends in `/artifacts/<digest>` (a digest has a `:`, which no
/// repository name can).
#[component]
pub fn RepositoryRoute() -> impl IntoView {
    let params = use_params_map();
    let rest = move || params.read().get("repo").unwrap_or_default();
    let query = use_query_map();
    let project = project_param();
    let page = page_param();
    move || {
        let r = rest();
        let full = format!("{}/{}", project(), r);
        // Resources are created here, before any `Suspend` (see `ProjectFrame`).
        match r.rsplit_once("/artifacts/") {
            Some((repo, digest)) if digest.contains(':') => {
                let (repo, digest) = (repo.to_string(), digest.to_string());
                let reload: Reload = RwSignal::new(0);
                let detail = crate::pages::artifact::detail_resource(
                    format!("{}/{repo}", project()),
                    digest.clone(),
                    reload,
                );
                view! {
                    <Title text=t("Artifact · Berth") />
                    <ProjectFrame tab="repositories" body=move |ctx: ProjectCtx| {
                        view! { <crate::pages::artifact::ArtifactDetail ctx repo=repo.clone() digest=digest.clone() detail reload /> }
                    } />
                }
                .into_any()
            }
            _ => {
                let reload: Reload = RwSignal::new(0);
                let label = move || query.read().get("label").and_then(|l| l.parse::<i64>().ok());
                let artifacts = Resource::new(
                    move || (full.clone(), page(), label(), reload.get()),
                    |(r, pg, label, _)| async move {
                        // Harbor's filter by label: `q=labels=(id)`.
                        let filter = label
                            .map(|id| format!("&q={}", encode_component(&format!("labels=({id})"))))
                            .unwrap_or_default();
                        let path = format!(
                            "{}/artifacts?with_label=true{filter}&page={pg}&page_size={PAGE_SIZE}",
                            repo_path(&r)
                        );
                        let list = api::list::<Artifact>(path).await?;
                        let info: crate::rest::SystemInfo = api::get("/systeminfo".into()).await?;
                        let registry = info.registry_url.unwrap_or_default();
                        let project = r.split_once('/').map(|x| x.0).unwrap_or(&r).to_string();
                        let labels = usable_labels(&project).await?;
                        Ok::<_, PortalError>(ArtifactPage {
                            repository: r,
                            registry,
                            number: pg,
                            list,
                            labels,
                            label,
                        })
                    },
                );
                view! {
                    <Title text=t("Artifacts · Berth") />
                    <ProjectFrame tab="repositories" body=move |ctx: ProjectCtx| view! { <ArtifactsBody ctx repo=r.clone() artifacts reload /> } />
                }
                .into_any()
            }
        }
    }
}

#[component]
fn ArtifactsBody(
    ctx: ProjectCtx,
    repo: String,
    artifacts: Resource<Result<ArtifactPage, PortalError>>,
    reload: Reload,
) -> impl IntoView {
    let project = ctx.name();
    let full = format!("{project}/{repo}");
    let outcome: OutcomeSignal = RwSignal::new(None);
    let perms = ArtifactPerms {
        add_tag: ctx.can("tag", "create"),
        delete_tag: ctx.can("tag", "delete"),
        delete: ctx.can("artifact", "delete"),
        add_label: ctx.can("artifact-label", "create"),
        remove_label: ctx.can("artifact-label", "delete"),
    };
    view! {
        <nav class="crumbs" aria-label=t("Repository")>
            <a href=format!("/harbor/projects/{project}/repositories")>{t("Repositories")}</a>
            " / "
            <span>{full.clone()}</span>
        </nav>
        <h2 class="repo-title">{full.clone()}</h2>
        <Outcome result=outcome />
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match artifacts.await {
                    Ok(p) => view! { {label_filter(&p.labels, p.label)} <ArtifactTable page=p perms outcome reload /> }.into_any(),
                    Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The writes the user may make on a repository's artifacts.
#[derive(Clone, Copy, Debug)]
struct ArtifactPerms {
    add_tag: bool,
    delete_tag: bool,
    delete: bool,
    add_label: bool,
    remove_label: bool,
}

#[component]
fn ArtifactTable(
    page: ArtifactPage,
    perms: ArtifactPerms,
    outcome: OutcomeSignal,
    reload: Reload,
) -> impl IntoView {
    if page.list.items.is_empty() {
        let text = if page.label.is_some() {
            t("No artifact has this label.")
        } else {
            t("No artifacts in this repository.")
        };
        return view! { <div class="empty-state" data-testid="artifacts-empty"><p>{text}</p></div> }
            .into_any();
    }
    let base = format!("{}/{}", page.registry, page.repository);
    let repository = page.repository.clone();
    let any_action = perms.add_tag || perms.delete;
    let usable = page.labels.clone();
    let keep = page.label.map(|l| format!("label={l}&")).unwrap_or_default();
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="artifact-table">
                <thead>
                    <tr>
                        <th scope="col">{t("Digest")}</th>
                        <th scope="col">{t("Tags")}</th>
                        <th scope="col">{t("Type")}</th>
                        <th scope="col">{t("Labels")}</th>
                        <th scope="col" class="num">{t("Size")}</th>
                        <th scope="col">{t("Push time")}</th>
                        <th scope="col">{t("Pull time")}</th>
                        <th scope="col">{t("Pull command")}</th>
                        {any_action.then(|| view! { <th scope="col">{t("Actions")}</th> })}
                    </tr>
                </thead>
                <tbody>
                    {page.list.items.into_iter().map(|a| {
                        let repo = repository.clone();
                        let tags = a.tag_names();
                        let platforms = a.platforms();
                        let art_path = format!("{}/artifacts/{}", repo_path(&repo), a.digest);
                        let detail = format!("/harbor/projects/{}/repositories/{}/artifacts/{}",
                            repo.split_once('/').map(|x| x.0).unwrap_or(""), repo.split_once('/').map(|x| x.1).unwrap_or(""), a.digest);
                        let short = crate::pages::artifact::short(&a.digest);
                        // By tag when there is one, by digest otherwise.
                        let command = match tags.first() {
                            Some(tag) => format!("docker pull {base}:{tag}"),
                            None => format!("docker pull {base}@{}", a.digest),
                        };
                        view! {
                            <tr data-testid="artifact-row" data-digest=a.digest.clone()>
                                <td><a href=detail data-testid="artifact-link"><code title=a.digest.clone()>{short}</code></a></td>
                                <td>
                                    {if tags.is_empty() {
                                        view! { <span class="muted">"—"</span> }.into_any()
                                    } else {
                                        tags.iter().map(|tg| {
                                            let tag = tg.clone();
                                            let path = format!("{art_path}/tags/{}", seg(&tag));
                                            let note = fill(t("Removed tag {}."), &[&tag]);
                                            let remove = Callback::new(move |_| perform(outcome, reload, note.clone(), api::send("DELETE", path.clone(), None)));
                                            view! {
                                                <span class="badge badge-tag" data-testid="tag">{tg.clone()}
                                                    {perms.delete_tag.then(|| view! {
                                                        <Confirm label="×" question=fill(t("Remove tag {}?"), &[&tag]) aria_label=fill(t("Remove tag {}"), &[&tag]) on_confirm=remove testid="tag-remove" />
                                                    })}
                                                </span>
                                                " "
                                            }
                                        }).collect_view().into_any()
                                    }}
                                </td>
                                <td>
                                    {tv(&a.kind)}
                                    {a.is_index().then(|| view! { " · " {tv("INDEX")} })}
                                    {(!platforms.is_empty()).then(|| view! {
                                        <br /><span class="muted small" data-testid="platforms">{platforms.join(", ")}</span>
                                    })}
                                </td>
                                <td class="wrap">
                                    <ArtifactLabels path=art_path.clone() attached=a.labels.clone().unwrap_or_default() usable=usable.clone()
                                        can_add=perms.add_label can_remove=perms.remove_label outcome reload />
                                </td>
                                <td class="num">{bytes(a.size)}</td>
                                <td>{time_str(&a.push_time)}</td>
                                <td>{time_str(&a.pull_time)}</td>
                                <td><CopyField value=command label=t("Pull command") testid="pull-command" /></td>
                                {any_action.then(|| view! { <td class="actions"><ArtifactActions path=art_path.clone() digest=a.digest.clone() perms outcome reload /></td> })}
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        {pager(page.list.total, page.number, PAGE_SIZE, t("{} item(s)"), move |p| format!("?{keep}page={p}"))}
    }
    .into_any()
}

/// The artifact list's filter by label (`?label=<id>`, a plain GET form).
fn label_filter(labels: &[Label], current: Option<i64>) -> impl IntoView {
    let options: Vec<(i64, String)> = labels.iter().map(|l| (l.id, l.name.clone())).collect();
    view! {
        <Form method="GET" action="" attr:class="toolbar" attr:role="search" attr:data-testid="label-filter">
            <label class="visually-hidden" for="artifact-label-filter">{t("Filter by label")}</label>
            <select id="artifact-label-filter" name="label" data-testid="label-filter-select">
                <option value="">{t("All labels")}</option>
                {options.into_iter().map(|(id, name)| view! {
                    <option value=id.to_string() selected=current == Some(id)>{name}</option>
                }).collect_view()}
            </select>
            <button type="submit" class="btn" data-testid="label-filter-apply">{t("Filter")}</button>
        </Form>
    }
}

/// Add a tag (a small form that opens in place) and delete the artifact (with confirmation).
#[component]
fn ArtifactActions(
    path: String,
    digest: String,
    perms: ArtifactPerms,
    outcome: OutcomeSignal,
    reload: Reload,
) -> impl IntoView {
    let adding = RwSignal::new(false);
    let tag = RwSignal::new(String::new());
    let tag_path = format!("{path}/tags");
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let name = tag.get_untracked().trim().to_string();
        adding.set(false);
        tag.set(String::new());
        perform(
            outcome,
            reload,
            fill(t("Added tag {}."), &[&name]),
            api::send("POST", tag_path.clone(), Some(api::body(&TagReq { name: name.clone() }))),
        );
    };
    let short = crate::pages::artifact::short(&digest);
    let remove = Callback::new(move |_| {
        perform(outcome, reload, fill(t("Deleted {}."), &[&digest]), api::send("DELETE", path.clone(), None));
    });
    view! {
        {perms.add_tag.then(|| view! {
            <Show when=move || adding.get() fallback=move || view! {
                <button type="button" class="btn btn-ghost" on:click=move |_| adding.set(true) data-testid="tag-add">{t("Add tag")}</button>
            }>
                <form class="inline-form tag-form" on:submit=add.clone()>
                    <label class="visually-hidden" for="new-tag">{t("New tag")}</label>
                    <input id="new-tag" type="text" required autofocus pattern="[A-Za-z0-9_][A-Za-z0-9._-]{0,127}" placeholder=t("New tag") bind:value=tag data-testid="tag-input" />
                    <button type="submit" class="btn btn-primary" data-testid="tag-save">{t("Add")}</button>
                    <button type="button" class="btn" on:click=move |_| adding.set(false)>{t("Cancel")}</button>
                </form>
            </Show>
        })}
        {perms.delete.then(|| view! {
            <Confirm label=t("Delete") question=fill(t("Delete artifact {}? Its tags, signatures and SBOMs go with it."), &[&short]) on_confirm=remove testid="artifact-delete" />
        })}
    }
}

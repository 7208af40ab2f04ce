//! A project's pages under `/harbor/projects/:project/…`, each a tab of [`ProjectFrame`]:
//! summary, repositories (`pages::repositories`), members, robot accounts (`pages::robots`), logs and
//! configuration. What the user may do comes from `/users/current/permissions` for the
//! project: buttons for writes the user may not make are not shown (and the API refuses them
//! anyway).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

use crate::components::format::{bytes, time_str};
use crate::components::layout::AppShell;
use crate::components::page::{listing, loading, page_param, Confirm, ErrorAlert, Outcome};
use crate::components::quota::{join_limit, split_limit, LimitFields, QuotaBar};
use crate::error::PortalError;
use crate::i18n::{fill, t, tv};
use crate::pages::members::AddGroupMember;
use crate::rest::projects::{MemberReq, MemberUser, RoleReq};
use crate::rest::UserResp;
use crate::rest::{self, AuditLogResp as AuditLog, Perms, ProjectMember as Member, ROLES};
use crate::server_fns::api::{self, seg, Listing};
use crate::server_fns::auth::encode_component;

/// Page size of the project's lists.
pub(crate) const PAGE_SIZE: u64 = 15;

/// The project a tab shows, and what the signed-in user may do in it.
#[derive(Clone, Debug)]
pub struct ProjectCtx {
    pub project: rest::ProjectResp,
    pub perms: Perms,
    pub user: UserResp,
}

impl ProjectCtx {
    pub fn can(&self, resource: &str, action: &str) -> bool {
        self.perms.can(resource, action)
    }
    pub fn name(&self) -> String {
        self.project.name.clone()
    }
}

async fn load_project(name: String) -> Result<(rest::ProjectResp, Perms), PortalError> {
    let p: rest::ProjectResp = api::get(format!("/projects/{}", seg(&name))).await?;
    let perms: Vec<rest::Permission> =
        api::get(format!("/users/current/permissions?scope=/project/{}&relative=true", p.project_id)).await?;
    Ok((p, Perms(perms)))
}

/// Bumps a counter that list resources depend on, so they load again after a write.
pub type Reload = RwSignal<u32>;
/// The latest write's outcome (see `Outcome`).
pub type OutcomeSignal = RwSignal<Option<Result<String, PortalError>>>;

/// Runs a write in the browser; then shows `note` (or the error) and, after a success, reloads.
/// A refused write changed nothing: no reload, which would re-render the page under the user
/// (and close a confirmation they opened meanwhile).
pub fn perform(
    outcome: OutcomeSignal,
    reload: Reload,
    note: String,
    call: impl std::future::Future<Output = Result<serde_json::Value, PortalError>> + 'static,
) {
    run_write(outcome, reload, note, call, false)
}

/// `perform` for a call whose failure is recorded too (a connection test stores the endpoint's
/// status either way): reloads after a failure as well.
pub fn perform_recorded(
    outcome: OutcomeSignal,
    reload: Reload,
    note: String,
    call: impl std::future::Future<Output = Result<serde_json::Value, PortalError>> + 'static,
) {
    run_write(outcome, reload, note, call, true)
}

fn run_write(
    outcome: OutcomeSignal,
    reload: Reload,
    note: String,
    call: impl std::future::Future<Output = Result<serde_json::Value, PortalError>> + 'static,
    always: bool,
) {
    leptos::task::spawn_local(async move {
        let r = call.await;
        let reload_now = always || r.is_ok();
        outcome.set(Some(r.map(|_| note)));
        if reload_now {
            reload.update(|v| *v += 1);
        }
    });
}

pub const TABS: [(&str, &str); 9] = [
    ("summary", "Summary"),
    ("repositories", "Repositories"),
    ("members", "Members"),
    ("labels", "Labels"),
    ("policy", "Policy"),
    ("robot-account", "Robot Accounts"),
    ("webhook", "Webhooks"),
    ("logs", "Logs"),
    ("configs", "Configuration"),
];

/// The `:project` route parameter.
pub fn project_param() -> impl Fn() -> String + Copy + Send + Sync + 'static {
    let params = use_params_map();
    move || params.read().get("project").unwrap_or_default()
}

/// Header, breadcrumb and tabs of a project page; `body` renders the tab.
///
/// Hydration needs every resource created before the first `.await` of a `Suspend` (in the
/// page component), and one `Suspend` awaiting them: nested `Suspense`s whose resources are
/// created inside another `Suspend` hydrate in a nondeterministic order (Leptos panics with
/// "unreachable" in `tachys::hydration`). So tab pages create their resources up front and
/// hand them to `body`.
#[component]
pub fn ProjectFrame<F, V>(tab: &'static str, body: F) -> impl IntoView
where
    F: Fn(ProjectCtx) -> V + Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    let name = project_param();
    let user = Resource::new(|| (), |_| crate::server_fns::auth::current_user());
    let data = Resource::new(name, load_project);
    let here = crate::components::page::current_path();
    view! {
        <Suspense fallback=loading>
            {move || {
                let body = body.clone();
                Suspend::new(async move {
                    let user = user.await;
                    let data = data.await;
                    crate::components::page::signed_in(user, &here(), move |user| {
                        let inner = match data {
                            Ok((project, perms)) => {
                                let ctx = ProjectCtx { project, perms, user: user.clone() };
                                view! { <ProjectHead ctx=ctx.clone() tab=tab /> {body(ctx)} }.into_any()
                            }
                            Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                        };
                        view! { <AppShell user=user>{inner}</AppShell> }
                    })
                })
            }}
        </Suspense>
    }
}

#[component]
fn ProjectHead(ctx: ProjectCtx, tab: &'static str) -> impl IntoView {
    let p = ctx.project.clone();
    let visible = move |id: &str| match id {
        "members" => ctx.can("member", "list"),
        "robot-account" => ctx.can("robot", "list"),
        "logs" => ctx.can("log", "list"),
        "labels" => ctx.can("label", "list"),
        "policy" => ctx.can("immutable-tag", "list") || ctx.can("tag-retention", "list"),
        "webhook" => ctx.can("notification-policy", "list"),
        _ => true,
    };
    view! {
        <nav class="crumbs" aria-label=t("Breadcrumb")>
            <a href="/harbor/projects">{t("Projects")}</a>
            " / "
            <span>{p.name.clone()}</span>
        </nav>
        <div class="page-head">
            <h1>
                {p.name.clone()} " "
                {if p.public() {
                    view! { <span class="badge badge-public">{t("Public")}</span> }.into_any()
                } else {
                    view! { <span class="badge badge-private">{t("Private")}</span> }.into_any()
                }}
                {p.registry_id.map(|_| view! { " " <span class="badge badge-proxy" data-testid="proxy-badge">{t("Proxy Cache")}</span> })}
            </h1>
        </div>
        <nav class="tabs" aria-label=t("Project")>
            {TABS.into_iter().filter(|(id, _)| visible(id)).map(|(id, label)| {
                let href = format!("/harbor/projects/{}/{id}", p.name);
                view! {
                    <a href=href aria-current=(id == tab).then_some("page") data-testid=format!("tab-{id}")>{t(label)}</a>
                }
            }).collect_view()}
        </nav>
    }
}

// ---------------------------------------------------------------- summary

#[component]
pub fn ProjectSummary() -> impl IntoView {
    let name = project_param();
    let summary =
        Resource::new(name, |n| api::get::<rest::ProjectSummary>(format!("/projects/{}/summary", seg(&n))));
    view! {
        <Title text=t("Project · Berth") />
        <ProjectFrame tab="summary" body=move |ctx: ProjectCtx| view! { <SummaryBody ctx summary /> } />
    }
}

#[component]
fn SummaryBody(
    ctx: ProjectCtx,
    summary: Resource<Result<rest::ProjectSummary, PortalError>>,
) -> impl IntoView {
    let show_members = ctx.can("member", "list");
    let p = ctx.project.clone();
    view! {
        <Suspense fallback=loading>
            {move || {
                let p = p.clone();
                Suspend::new(async move {
                    match summary.await {
                        Ok(s) => view! {
                            <div class="panels" data-testid="summary">
                                <section class="card">
                                    <h2>{t("Repositories")}</h2>
                                    <p><span class="stat-value" data-testid="summary-repos">{s.repo_count}</span></p>
                                </section>
                                <section class="card">
                                    <h2>{t("Storage")}</h2>
                                    <p><span class="stat-value" data-testid="summary-storage">{bytes(s.quota.used.storage)}</span></p>
                                    <h3 class="small muted">{t("Quota used")}</h3>
                                    <QuotaBar used=s.quota.used.storage hard=s.quota.hard.storage testid="summary-quota" />
                                </section>
                                <section class="card">
                                    <h2>{t("Project")}</h2>
                                    <dl class="facts">
                                        <dt>{t("Access level")}</dt>
                                        <dd>{if p.public() { t("Public") } else { t("Private") }}</dd>
                                        <dt>{t("Owner")}</dt>
                                        <dd>{p.owner_name.clone()}</dd>
                                        <dt>{t("Creation time")}</dt>
                                        <dd>{time_str(&p.creation_time)}</dd>
                                        {p.registry_id.map(|id| view! {
                                            <dt>{t("Proxy Cache")}</dt>
                                            <dd data-testid="summary-proxy">{fill(t("of registry endpoint #{}"), &[&id])}</dd>
                                        })}
                                    </dl>
                                </section>
                                {show_members.then(|| view! {
                                    <section class="card">
                                        <h2>{t("Members")}</h2>
                                        <dl class="facts" data-testid="summary-members">
                                            <dt>{t("Project Admin")}</dt><dd>{s.project_admin_count}</dd>
                                            <dt>{t("Maintainer")}</dt><dd>{s.maintainer_count}</dd>
                                            <dt>{t("Developer")}</dt><dd>{s.developer_count}</dd>
                                            <dt>{t("Guest")}</dt><dd>{s.guest_count}</dd>
                                            <dt>{t("Limited Guest")}</dt><dd>{s.limited_guest_count}</dd>
                                        </dl>
                                    </section>
                                })}
                            </div>
                        }.into_any(),
                        Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

// ---------------------------------------------------------------- members

#[component]
pub fn ProjectMembers() -> impl IntoView {
    let name = project_param();
    let page = page_param();
    let reload: Reload = RwSignal::new(0);
    let members = Resource::new(
        move || (name(), reload.get(), page()),
        |(n, _, pg)| {
            api::list::<Member>(format!("/projects/{}/members?page={pg}&page_size={PAGE_SIZE}", seg(&n)))
        },
    );
    view! {
        <Title text=t("Members · Berth") />
        <ProjectFrame tab="members" body=move |ctx: ProjectCtx| view! { <MembersBody ctx members reload /> } />
    }
}

fn role_options(selected: i64) -> impl IntoView {
    ROLES.into_iter().map(move |(id, name)| view! { <option value=id.to_string() selected=id == selected>{t(name)}</option> }).collect_view()
}

#[component]
fn MembersBody(
    ctx: ProjectCtx,
    members: Resource<Result<Listing<Member>, PortalError>>,
    reload: Reload,
) -> impl IntoView {
    let name = ctx.name();
    let page = page_param();
    let outcome: OutcomeSignal = RwSignal::new(None);
    let new_user = RwSignal::new(String::new());
    let new_role = RwSignal::new("2".to_string());
    let add_name = name.clone();
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let username = new_user.get_untracked().trim().to_string();
        let role: i64 = new_role.get_untracked().parse().unwrap_or(2);
        let body = api::body(&MemberReq {
            role_id: role,
            member_user: Some(MemberUser { user_id: None, username: Some(username.clone()) }),
            member_group: None,
        });
        let note = fill(t("Added {} as {}."), &[&username, &t(rest::role_name(role))]);
        new_user.set(String::new());
        perform(
            outcome,
            reload,
            note,
            api::send("POST", format!("/projects/{}/members", seg(&add_name)), Some(body)),
        );
    };
    let (can_add, can_update, can_delete) =
        (ctx.can("member", "create"), ctx.can("member", "update"), ctx.can("member", "delete"));
    let me = ctx.user.username.clone();
    view! {
        {can_add.then(|| view! {
            <form class="toolbar toolbar-wide" on:submit=add data-testid="member-add">
                <label class="visually-hidden" for="member-name">{t("Username")}</label>
                <input id="member-name" type="text" required placeholder=t("Username") bind:value=new_user />
                <label class="visually-hidden" for="member-role">{t("Role")}</label>
                <select id="member-role" bind:value=new_role>{role_options(2)}</select>
                <button type="submit" class="btn btn-primary">{t("Add member")}</button>
            </form>
            <AddGroupMember project=name.clone() outcome reload />
        })}
        <Outcome result=outcome />
        <Transition fallback=loading>
            {move || {
                let name = name.clone();
                let me = me.clone();
                Suspend::new(async move {
                    listing(members.await, page(), PAGE_SIZE, t("No members."), |p| format!("?page={p}"), move |items| view! {
                            <div class="table-wrap">
                                <table class="table" data-testid="member-table">
                                    <thead><tr>
                                        <th scope="col">{t("Name")}</th>
                                        <th scope="col">{t("Type")}</th>
                                        <th scope="col">{t("Role")}</th>
                                        <th scope="col">{t("Actions")}</th>
                                    </tr></thead>
                                    <tbody>
                                        {items.into_iter().map(|m| {
                                            let path = format!("/projects/{}/members/{}", seg(&name), m.id);
                                            let del_path = path.clone();
                                            let who = m.entity_name.clone();
                                            let who2 = who.clone();
                                            let group = m.entity_type == "g";
                                            let own = !group && m.entity_name == me;
                                            let change = move |ev: leptos::ev::Event| {
                                                let role: i64 = event_target_value(&ev).parse().unwrap_or(0);
                                                let note = fill(t("{} is now {}."), &[&who, &t(rest::role_name(role))]);
                                                perform(outcome, reload, note, api::send("PUT", path.clone(), Some(api::body(&RoleReq { role_id: role }))));
                                            };
                                            let remove = Callback::new(move |_| {
                                                perform(outcome, reload, fill(t("Removed {}."), &[&who2]), api::send("DELETE", del_path.clone(), None));
                                            });
                                            view! {
                                                <tr data-testid="member-row" data-name=m.entity_name.clone() data-type=m.entity_type.clone()>
                                                    <td class="strong">{m.entity_name.clone()}</td>
                                                    <td data-testid="member-type">
                                                        {if group {
                                                            view! { <span class="badge badge-tag" data-testid="member-group-badge">{t("Group")}</span> }.into_any()
                                                        } else {
                                                            t("User").into_any()
                                                        }}
                                                    </td>
                                                    <td>
                                                        {if can_update && !own {
                                                            view! {
                                                                <select aria-label=fill(t("Role of {}"), &[&m.entity_name]) on:change=change data-testid="member-role">
                                                                    {role_options(m.role_id)}
                                                                </select>
                                                            }.into_any()
                                                        } else {
                                                            view! { <span data-testid="member-role-text">{t(rest::role_name(m.role_id))}</span> }.into_any()
                                                        }}
                                                    </td>
                                                    <td>
                                                        {(can_delete && !own).then(|| view! {
                                                            <Confirm label=t("Remove") question=fill(t("Remove {} from the project?"), &[&m.entity_name]) on_confirm=remove testid="member-remove" />
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

// ---------------------------------------------------------------- logs

#[component]
pub fn ProjectLogs() -> impl IntoView {
    let name = project_param();
    let logs = audit_resource(move || format!("/projects/{}/logs", seg(&name())));
    view! {
        <Title text=t("Logs · Berth") />
        <ProjectFrame tab="logs" body=move |_| view! { <AuditLogView logs /> } />
    }
}

/// The audit rows at `base()` (`/audit-logs` or a project's `/logs`) for the filters and page
/// in the page's query.
pub fn audit_resource(
    base: impl Fn() -> String + Send + Sync + 'static,
) -> Resource<Result<Listing<AuditLog>, PortalError>> {
    let query = use_query_map();
    let page = page_param();
    Resource::new(
        move || (base(), FILTERS.map(|k| query.read().get(k).unwrap_or_default()), page()),
        |(base, [user, op, rtype, res, from, to], pg)| {
            let mut q = Vec::new();
            if !user.is_empty() {
                q.push(format!("username={user}"));
            }
            if !op.is_empty() {
                q.push(format!("operation={op}"));
            }
            if !rtype.is_empty() {
                q.push(format!("resource_type={rtype}"));
            }
            if !res.is_empty() {
                q.push(format!("resource=~{res}"));
            }
            let (from, to) = (api_time(&from), api_time(&to));
            if from.is_some() || to.is_some() {
                q.push(format!("op_time=[{}~{}]", from.unwrap_or_default(), to.unwrap_or_default()));
            }
            api::list::<AuditLog>(format!(
                "{base}?page={pg}&page_size={PAGE_SIZE}&q={}",
                encode_component(&q.join(","))
            ))
        },
    )
}

/// The audit log filters, kept in the page's query.
const FILTERS: [&str; 6] = ["username", "operation", "resource_type", "resource", "from", "to"];

/// Operations an audit row may have, for the filter.
pub const OPERATIONS: [&str; 7] = ["create", "update", "delete", "push", "pull", "login", "stop"];
/// Resource types an audit row may have, for the filter.
pub const RESOURCE_TYPES: [&str; 10] = [
    "project",
    "repository",
    "artifact",
    "tag",
    "member",
    "robot",
    "user",
    "configuration",
    "gc",
    "gc_schedule",
];

/// `<input type="datetime-local">` (`2026-11-22T14:05`) as the API's time (`2026-11-22 14:05:00`),
/// read as UTC.
fn api_time(local: &str) -> Option<String> {
    let (d, h) = local.split_once('T')?;
    Some(format!("{d} {}:00", h.get(..5)?))
}

/// An audit log with its filters in the page's query (`username`, `operation`,
/// `resource_type`, `resource`, `from`, `to`), so a filtered view can be linked to and works
/// without JavaScript.
#[component]
pub fn AuditLogView(logs: Resource<Result<Listing<AuditLog>, PortalError>>) -> impl IntoView {
    let query = use_query_map();
    let page = page_param();
    let get = move |k: &str| query.read().get(k).unwrap_or_default();
    let filters = move || FILTERS.map(get);
    let keep = move || {
        let f = filters();
        FILTERS
            .iter()
            .zip(f)
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}&", encode_component(&v)))
            .collect::<String>()
    };
    view! {
        <Form method="GET" action="" attr:class="filters" attr:role="search" attr:data-testid="log-filters">
            <label>{t("User")}<input type="text" name="username" value=get("username") /></label>
            <label>{t("Operation")}
                <select name="operation">
                    <option value="">{t("All")}</option>
                    {OPERATIONS.map(|o| view! { <option value=o selected=get("operation") == o>{tv(o)}</option> }).collect_view()}
                </select>
            </label>
            <label>{t("Resource type")}
                <select name="resource_type">
                    <option value="">{t("All")}</option>
                    {RESOURCE_TYPES.map(|o| view! { <option value=o selected=get("resource_type") == o>{tv(o)}</option> }).collect_view()}
                </select>
            </label>
            <label>{t("Resource")}<input type="text" name="resource" value=get("resource") /></label>
            <label>{t("From (UTC)")}<input type="datetime-local" name="from" value=get("from") /></label>
            <label>{t("To (UTC)")}<input type="datetime-local" name="to" value=get("to") /></label>
            <button type="submit" class="btn">{t("Search")}</button>
        </Form>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                let keep = keep();
                listing(logs.await, page(), PAGE_SIZE, t("No log entries match."), move |p| format!("?{keep}page={p}"), move |items| view! {
                            <div class="table-wrap">
                                <table class="table" data-testid="log-table">
                                    <thead><tr>
                                        <th scope="col">{t("User")}</th>
                                        <th scope="col">{t("Resource")}</th>
                                        <th scope="col">{t("Resource type")}</th>
                                        <th scope="col">{t("Operation")}</th>
                                        <th scope="col">{t("Result")}</th>
                                        <th scope="col">{t("Time")}</th>
                                        <th scope="col">{t("Client address")}</th>
                                    </tr></thead>
                                    <tbody>
                                        {items.into_iter().map(|l| view! {
                                            <tr data-testid="log-row" data-operation=l.operation.clone() data-resource=l.resource.clone()>
                                                <td>{l.username.clone()}</td>
                                                <td class="wrap" title=l.detail.clone()>{l.resource.clone()}</td>
                                                <td>{tv(&l.resource_type)}</td>
                                                <td>{tv(&l.operation)}</td>
                                                <td>{if l.success { t("Succeeded") } else { t("Failed") }}</td>
                                                <td>{time_str(&l.op_time)}</td>
                                                <td>{l.client_ip.clone()}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                    })
            })}
        </Transition>
    }
}

// ---------------------------------------------------------------- configuration

#[component]
pub fn ProjectConfig() -> impl IntoView {
    let name = project_param();
    let reload: Reload = RwSignal::new(0);
    let summary = Resource::new(
        move || (name(), reload.get()),
        |(n, _)| api::get::<rest::ProjectSummary>(format!("/projects/{}/summary", seg(&n))),
    );
    view! {
        <Title text=t("Configuration · Berth") />
        <ProjectFrame tab="configs" body=move |ctx: ProjectCtx| view! { <ConfigBody ctx summary reload /> } />
    }
}

#[component]
fn ConfigBody(
    ctx: ProjectCtx,
    summary: Resource<Result<rest::ProjectSummary, PortalError>>,
    reload: Reload,
) -> impl IntoView {
    let name = ctx.name();
    let outcome: OutcomeSignal = RwSignal::new(None);
    let public = RwSignal::new(ctx.project.public());
    let can_edit = ctx.can("metadata", "update");
    let can_delete = ctx.can("project", "delete");
    let save_name = name.clone();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let v = if public.get_untracked() { "true" } else { "false" };
        perform(
            outcome,
            reload,
            t("Saved.").to_string(),
            api::send(
                "PUT",
                format!("/projects/{}/metadatas/public", seg(&save_name)),
                Some(serde_json::json!({ "public": v })),
            ),
        );
    };
    let navigate = use_navigate();
    let del_name = name.clone();
    let delete = Callback::new(move |_| {
        let path = format!("/projects/{}", seg(&del_name));
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match api::send("DELETE", path, None).await {
                Ok(_) => navigate("/harbor/projects", Default::default()),
                Err(e) => outcome.set(Some(Err(e))),
            }
        });
    });
    let repos = ctx.project.repo_count;
    let (project_id, sysadmin) = (ctx.project.project_id, ctx.user.sysadmin_flag);
    view! {
        <Outcome result=outcome />
        <form class="card form-card" on:submit=save data-testid="project-config">
            <h2>{t("Project registry")}</h2>
            <label class="check">
                <input type="checkbox" checked=ctx.project.public() bind:checked=public disabled=!can_edit data-testid="config-public" />
                {t(" Public: anyone may pull images from this project, without logging in")}
            </label>
            {can_edit.then(|| view! { <div><button type="submit" class="btn btn-primary" data-testid="config-save">{t("Save")}</button></div> })}
        </form>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match summary.await {
                    Ok(s) => view! { <QuotaForm project_id sysadmin used=s.quota.used.storage hard=s.quota.hard.storage outcome reload /> }.into_any(),
                    Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                }
            })}
        </Transition>
        {can_delete.then(|| view! {
            <section class="card form-card danger-zone" data-testid="project-delete">
                <h2>{t("Delete project")}</h2>
                {if repos > 0 {
                    view! { <p class="muted">{fill(t("The project still has {} repositories; delete them first."), &[&repos])}</p> }.into_any()
                } else {
                    view! {
                        <p class="muted">{t("The project is empty and can be deleted.")}</p>
                        <Confirm label=t("Delete project") question=fill(t("Delete project {}?"), &[&name]) on_confirm=delete testid="project-delete-button" />
                    }.into_any()
                }}
            </section>
        })}
    }
}

/// The project's storage quota: the bar, and for system admins the limit's fields
/// (`PUT /quotas/{id}`; the quota's id comes from `GET /quotas?reference_id=`).
#[component]
fn QuotaForm(
    project_id: i64,
    sysadmin: bool,
    used: i64,
    hard: i64,
    outcome: OutcomeSignal,
    reload: Reload,
) -> impl IntoView {
    let (n, u) = split_limit(hard);
    let number = RwSignal::new(n);
    let unit = RwSignal::new(u.to_string());
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(limit) = join_limit(&number.get_untracked(), &unit.get_untracked()) else {
            outcome.set(Some(Err(PortalError::Invalid(
                t("The limit must be -1 or a number of at least 0.").into(),
            ))));
            return;
        };
        perform(outcome, reload, t("Saved.").to_string(), async move {
            let quotas: Vec<crate::rest::quotas::Quota> =
                api::get(format!("/quotas?reference=project&reference_id={project_id}")).await?;
            let q =
                quotas.first().ok_or_else(|| PortalError::Server(t("The project has no quota.").into()))?;
            let body = api::body(&crate::rest::quotas::QuotaUpdateReq {
                hard: crate::rest::projects::ResourceAmount { storage: limit },
            });
            api::send("PUT", format!("/quotas/{}", q.id), Some(body)).await
        });
    };
    view! {
        <form class="card form-card" on:submit=save data-testid="project-quota">
            <h2>{t("Project quota")}</h2>
            <QuotaBar used hard testid="config-quota" />
            {if sysadmin {
                view! {
                    <LimitFields id="quota-limit" label=t("Storage limit") number unit />
                    <div><button type="submit" class="btn btn-primary" data-testid="quota-save">{t("Save quota")}</button></div>
                }.into_any()
            } else {
                view! { <p class="muted small">{t("Only system administrators may change the quota.")}</p> }.into_any()
            }}
        </form>
    }
}

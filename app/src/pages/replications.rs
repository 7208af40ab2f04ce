//! Administration → Replications (`/harbor/replications`, system admins): the replication
//! rules (list, the editor of `pages::replication_rule`, Replicate, delete), below them the
//! executions of the selected rule (`?rule=<id>`: status, trigger, times, success rate, Stop)
//! and the tasks of the selected execution (`&execution=<id>`: each artifact copied or deleted,
//! with a link to its log). **Live progress**: while an execution or task shown is pending or
//! in progress the page refreshes them every 2 s (in the browser only), as the GC page does.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::components::format::{datetime, duration, parse_rfc3339};
use crate::components::page::{listing, loading, page_param, Confirm, ErrorAlert, Outcome};
use crate::error::PortalError;
use crate::i18n::{fill, t, tv};
use crate::pages::admin::AdminOnly;
use crate::pages::project::{perform, OutcomeSignal, Reload};
use crate::pages::replication_rule::{is_push, trigger_label, RuleEditor, FLATTENING};
use crate::rest::registries::Registry;
use crate::rest::replication::{
    ReplicationExecution, ReplicationPolicy, ReplicationTask, StartReplicationExecution,
};
use crate::server_fns::api::{self, Listing};

pub const PATH: &str = "/harbor/replications";
const PAGE_SIZE: u64 = 15;

type Maybe<T> = Result<Option<Listing<T>>, PortalError>;

/// Unix ms of an API time; `None` for Harbor's zero time or anything unreadable.
fn when(s: &str) -> Option<i64> {
    parse_rfc3339(s).filter(|ms| *ms > 0)
}

fn active(status: &str) -> bool {
    matches!(status, "Pending" | "InProgress")
}

fn status_badge(status: &str) -> &'static str {
    match status {
        "Succeed" => "badge badge-success",
        "Failed" => "badge badge-error",
        "InProgress" => "badge badge-running",
        "Pending" => "badge badge-pending",
        _ => "badge badge-stopped",
    }
}

fn query_id(key: &'static str) -> impl Fn() -> Option<i64> + Copy + Send + Sync + 'static {
    let query = use_query_map();
    move || query.read().get(key).and_then(|v| v.parse::<i64>().ok())
}

#[component]
pub fn Replications() -> impl IntoView {
    // Resources before any `Suspend` (see `pages::project::ProjectFrame`).
    let page = page_param();
    let rule = query_id("rule");
    let execution = query_id("execution");
    let reload: Reload = RwSignal::new(0);
    let tick = RwSignal::new(0u64);
    // Here, not in the body: choosing a rule or an execution (the query) renders the body anew,
    // and "Started replication of …" must survive that.
    let outcome: OutcomeSignal = RwSignal::new(None);
    let policies = Resource::new(
        move || (page(), reload.get()),
        |(pg, _)| {
            api::list::<ReplicationPolicy>(format!("/replication/policies?page={pg}&page_size={PAGE_SIZE}"))
        },
    );
    // Not reloaded with the rules: a reload would re-create an open editor and lose its input.
    let registries =
        Resource::new(|| (), |_| api::list::<Registry>("/registries?page=1&page_size=100".into()));
    let executions = Resource::new(
        move || (rule(), reload.get(), tick.get()),
        |(rule, _, _)| async move {
            match rule {
                Some(id) => api::list::<ReplicationExecution>(format!(
                    "/replication/executions?policy_id={id}&page=1&page_size={PAGE_SIZE}"
                ))
                .await
                .map(Some),
                None => Ok(None),
            }
        },
    );
    let tasks = Resource::new(
        move || (execution(), reload.get(), tick.get()),
        |(exec, _, _)| async move {
            match exec {
                Some(id) => api::list::<ReplicationTask>(format!(
                    "/replication/executions/{id}/tasks?page=1&page_size=100"
                ))
                .await
                .map(Some),
                None => Ok(None),
            }
        },
    );
    view! {
        <Title text=t("Replications · Berth") />
        <AdminOnly body=move |_| view! { <ReplicationsBody policies registries executions tasks reload tick outcome /> } />
    }
}

#[component]
fn ReplicationsBody(
    policies: Resource<Result<Listing<ReplicationPolicy>, PortalError>>,
    registries: Resource<Result<Listing<Registry>, PortalError>>,
    executions: Resource<Maybe<ReplicationExecution>>,
    tasks: Resource<Maybe<ReplicationTask>>,
    reload: Reload,
    tick: RwSignal<u64>,
    outcome: OutcomeSignal,
) -> impl IntoView {
    // Live progress: poll while an execution or a task shown is pending or in progress.
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(
            move || {
                let busy_execs = executions
                    .get_untracked()
                    .and_then(|r| r.ok().flatten())
                    .is_some_and(|l| l.items.iter().any(|e| active(&e.status)));
                let busy_tasks = tasks
                    .get_untracked()
                    .and_then(|r| r.ok().flatten())
                    .is_some_and(|l| l.items.iter().any(|t| active(&t.status)));
                if busy_execs || busy_tasks {
                    tick.update(|t| *t += 1);
                }
            },
            std::time::Duration::from_secs(2),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    let page = page_param();
    let rule = query_id("rule");
    // The rule in the editor: `Some(None)` a new one.
    let editing = RwSignal::new(None::<Option<ReplicationPolicy>>);
    view! {
        <div class="page-head">
            <h1>{t("Replications")}</h1>
            <button type="button" class="btn btn-primary" data-testid="rule-new"
                on:click=move |_| editing.set(Some(None))>{t("New replication rule")}</button>
        </div>
        <Outcome result=outcome />
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match registries.await {
                    Ok(regs) => {
                        let close = Callback::new(move |_| editing.set(None));
                        move || editing.get().map(|rule| {
                            if regs.items.is_empty() {
                                view! { <p class="alert alert-error" role="alert">{t("Create a registry endpoint first (Administration → Registries).")}</p> }.into_any()
                            } else {
                                view! { <RuleEditor rule registries=regs.items.clone() outcome reload close /> }.into_any()
                            }
                        })
                    }.into_any(),
                    Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                }
            })}
        </Transition>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                listing(policies.await, page(), PAGE_SIZE, t("No replication rules yet."), |p| format!("?page={p}"), move |items| view! {
                    <RuleTable items selected=rule() editing outcome reload />
                })
            })}
        </Transition>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match executions.await {
                    Ok(Some(l)) => view! { <Executions list=l rule=rule().unwrap_or(0) outcome reload /> }.into_any(),
                    Ok(None) => view! { <p class="muted">{t("Select a rule to see its executions.")}</p> }.into_any(),
                    Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                }
            })}
        </Transition>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match tasks.await {
                    Ok(Some(l)) => view! { <Tasks list=l /> }.into_any(),
                    Ok(None) => ().into_any(),
                    Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// A registry as a rule shows it: `Local` for this one.
fn registry_name(r: Option<&Registry>) -> String {
    match r {
        Some(r) if r.id != 0 => r.name.clone(),
        _ => t("Local").to_string(),
    }
}

#[component]
fn RuleTable(
    items: Vec<ReplicationPolicy>,
    selected: Option<i64>,
    editing: RwSignal<Option<Option<ReplicationPolicy>>>,
    outcome: OutcomeSignal,
    reload: Reload,
) -> impl IntoView {
    let navigate = use_navigate();
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="rule-table">
                <thead><tr>
                    <th scope="col">{t("Name")}</th>
                    <th scope="col">{t("Status")}</th>
                    <th scope="col">{t("Source registry")}</th>
                    <th scope="col">{t("Replication mode")}</th>
                    <th scope="col">{t("Destination")}</th>
                    <th scope="col">{t("Trigger mode")}</th>
                    <th scope="col">{t("Override")}</th>
                    <th scope="col">{t("Actions")}</th>
                </tr></thead>
                <tbody>
                    {items.into_iter().map(|p| {
                        let (id, name) = (p.id, p.name.clone());
                        let push = is_push(&p);
                        let flatten = FLATTENING.iter().find(|(v, _)| Some(*v) == p.dest_namespace_replace_count.or(Some(-1)))
                            .map(|(_, l)| t(l).to_string()).unwrap_or_default();
                        let ns = if p.dest_namespace.is_empty() { t("(source namespace)").to_string() } else { p.dest_namespace.clone() };
                        let dest = registry_name(p.dest_registry.as_ref());
                        let dest_detail = format!("{ns} · {flatten}");
                        let trigger = p.trigger.as_ref().map(|t| {
                            let cron = t.trigger_settings.as_ref().map(|s| s.cron.clone()).filter(|c| !c.is_empty() && t.kind == "scheduled");
                            match cron {
                                Some(c) => format!("{} ({c})", trigger_label(&t.kind)),
                                None => trigger_label(&t.kind),
                            }
                        }).unwrap_or_else(|| trigger_label("manual"));
                        let remove = Callback::new(move |_| {
                            perform(outcome, reload, fill(t("Deleted rule {}."), &[&name]), api::send("DELETE", format!("/replication/policies/{id}"), None));
                        });
                        let navigate = navigate.clone();
                        let n2 = p.name.clone();
                        let replicate = move |_| {
                            let navigate = navigate.clone();
                            let n = n2.clone();
                            leptos::task::spawn_local(async move {
                                let body = api::body(&StartReplicationExecution { policy_id: id });
                                match api::send("POST", "/replication/executions".into(), Some(body)).await {
                                    Ok(_) => {
                                        outcome.set(Some(Ok(fill(t("Started replication of {}."), &[&n]))));
                                        navigate(&format!("{PATH}?rule={id}"), Default::default());
                                    }
                                    Err(e) => outcome.set(Some(Err(e))),
                                }
                                reload.update(|v| *v += 1);
                            });
                        };
                        let edit_with = p.clone();
                        let is_selected = selected == Some(id);
                        view! {
                            <tr data-testid="rule-row" data-name=p.name.clone() class:selected=is_selected aria-current=is_selected.then_some("true")>
                                <td class="strong"><a href=format!("{PATH}?rule={id}") data-testid="rule-select">{p.name.clone()}</a></td>
                                <td>
                                    {if p.enabled {
                                        view! { <span class="badge badge-success">{t("Enabled")}</span> }.into_any()
                                    } else {
                                        view! { <span class="badge badge-stopped">{t("Disabled")}</span> }.into_any()
                                    }}
                                </td>
                                <td>{registry_name(p.src_registry.as_ref())}</td>
                                <td>{if push { t("Push-based") } else { t("Pull-based") }}</td>
                                <td>{dest}<br /><span class="muted small">{dest_detail}</span></td>
                                <td>{trigger}</td>
                                <td>{if p.override_existing { t("Yes") } else { t("No") }}</td>
                                <td><div class="actions">
                                    <button type="button" class="btn btn-ghost" data-testid="rule-replicate" on:click=replicate disabled=!p.enabled>{t("Replicate")}</button>
                                    <button type="button" class="btn btn-ghost" data-testid="rule-edit"
                                        on:click=move |_| editing.set(Some(Some(edit_with.clone())))>{t("Edit")}</button>
                                    <Confirm label=t("Delete") question=fill(t("Delete rule {}?"), &[&p.name]) on_confirm=remove testid="rule-delete" />
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
fn Executions(
    list: Listing<ReplicationExecution>,
    rule: i64,
    outcome: OutcomeSignal,
    reload: Reload,
) -> impl IntoView {
    let selected = query_id("execution");
    view! {
        <section aria-labelledby="exec-h">
            <h2 id="exec-h">{t("Executions")}</h2>
            {if list.items.is_empty() {
                view! { <div class="empty-state"><p>{t("This rule has not run yet.")}</p></div> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="table" data-testid="execution-table">
                            <thead><tr>
                                <th scope="col">{t("ID")}</th>
                                <th scope="col">{t("Status")}</th>
                                <th scope="col">{t("Trigger")}</th>
                                <th scope="col">{t("Started")}</th>
                                <th scope="col">{t("Duration")}</th>
                                <th scope="col">{t("Success rate")}</th>
                                <th scope="col"><span class="visually-hidden">{t("Actions")}</span></th>
                            </tr></thead>
                            <tbody>
                                {list.items.into_iter().map(|e| {
                                    let id = e.id;
                                    let start = when(&e.start_time);
                                    let end = when(&e.end_time);
                                    let took = start.zip(end).map(|(s, e)| duration(e - s));
                                    let done = e.succeed + e.failed + e.stopped;
                                    let rate = if e.total > 0 { format!("{:.0}%", e.succeed as f64 * 100.0 / e.total as f64) } else { "—".into() };
                                    let is_active = active(&e.status);
                                    let stop = move |_| {
                                        perform(outcome, reload, fill(t("Stopping execution {}."), &[&id]), api::send("PUT", format!("/replication/executions/{id}"), None));
                                    };
                                    let progress = fill(t("{} of {} done, {} failed"), &[&done, &e.total, &e.failed]);
                                    view! {
                                        <tr data-testid="execution-row" data-status=e.status.clone() aria-current=(selected() == Some(id)).then_some("true")>
                                            <td><a href=format!("{PATH}?rule={rule}&execution={id}") data-testid="execution-open">{id}</a></td>
                                            <td>
                                                <span class=status_badge(&e.status)>{tv(&e.status)}</span>
                                                {(!e.status_text.is_empty()).then(|| view! { <span class="muted small">{format!(" {}", e.status_text)}</span> })}
                                            </td>
                                            <td>{trigger_label(&e.trigger)}</td>
                                            <td>{start.map(datetime).unwrap_or_else(|| "—".into())}</td>
                                            <td>{took.unwrap_or_else(|| "—".into())}</td>
                                            <td data-testid="execution-rate">
                                                {is_active.then(|| view! { <progress max=e.total.max(1) value=done aria-label=progress.clone()></progress> })}
                                                <span>{rate}</span>
                                                <span class="muted small">{format!(" ({progress})")}</span>
                                            </td>
                                            <td>
                                                {is_active.then(|| view! { <button type="button" class="btn btn-ghost" data-testid="execution-stop" on:click=stop>{t("Stop")}</button> })}
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn Tasks(list: Listing<ReplicationTask>) -> impl IntoView {
    let exec = list.items.first().map(|t| t.execution_id);
    view! {
        <section aria-labelledby="tasks-h">
            <h2 id="tasks-h">{match exec {
                Some(id) => fill(t("Tasks of execution {}"), &[&id]),
                None => t("Tasks").to_string(),
            }}</h2>
            {if list.items.is_empty() {
                view! { <div class="empty-state"><p>{t("No tasks: nothing matched the rule's filters, or the execution has not started them yet.")}</p></div> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="table" data-testid="task-table">
                            <thead><tr>
                                <th scope="col">{t("ID")}</th>
                                <th scope="col">{t("Resource type")}</th>
                                <th scope="col">{t("Source")}</th>
                                <th scope="col">{t("Destination")}</th>
                                <th scope="col">{t("Operation")}</th>
                                <th scope="col">{t("Status")}</th>
                                <th scope="col">{t("Started")}</th>
                                <th scope="col">{t("Ended")}</th>
                            </tr></thead>
                            <tbody>
                                {list.items.into_iter().map(|task| {
                                    let log = format!("/api/v2.0/replication/executions/{}/tasks/{}/log", task.execution_id, task.id);
                                    view! {
                                        <tr data-testid="task-row" data-status=task.status.clone()>
                                            <td>{task.id}</td>
                                            <td>{tv(&task.resource_type)}</td>
                                            <td>{task.src_resource.clone()}</td>
                                            <td>{task.dst_resource.clone()}</td>
                                            <td>{tv(&task.operation)}</td>
                                            <td>
                                                <span class=status_badge(&task.status)>{tv(&task.status)}</span> " "
                                                <a href=log target="_blank" rel="external noopener" data-testid="task-log">{t("Log")}</a>
                                            </td>
                                            <td>{when(&task.start_time).map(datetime).unwrap_or_else(|| "—".into())}</td>
                                            <td>{when(&task.end_time).map(datetime).unwrap_or_else(|| "—".into())}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
    }
}

//! The run history of a project's retention policy (`/retentions/{id}/executions`, paged):
//! status, trigger, dry run, start and duration; a run opens to its tasks, one per repository
//! (artifacts looked at and retained), each with its log (`…/tasks/{tid}`, plain text) shown in
//! place. A pending or running run can be stopped.

use leptos::prelude::*;

use crate::components::format::{duration, parse_rfc3339, time_str};
use crate::components::page::{page_param, pager, ErrorAlert};
use crate::error::PortalError;
use crate::i18n::{fill, t, tv};
use crate::pages::project::{perform, OutcomeSignal, Reload};
use crate::pages::retention::{policy_id, RUNS_PAGE_SIZE};
use crate::rest::retention::{RetentionExecution, RetentionExecutionAction, RetentionExecutionTask};
use crate::rest::ProjectResp;
use crate::server_fns::api::{self, seg, Listing};

/// The badge class of a run's or task's status.
fn status_class(status: &str) -> &'static str {
    match status {
        "Succeed" | "Success" => "badge badge-success",
        "Error" | "Failed" => "badge badge-error",
        "Running" | "InProgress" => "badge badge-running",
        "Pending" | "Scheduled" => "badge badge-pending",
        _ => "badge badge-stopped",
    }
}

/// How long a run took (a dash while it runs).
fn took(start: &str, end: &str) -> String {
    match (parse_rfc3339(start), parse_rfc3339(end)) {
        (Some(s), Some(e)) if e >= s && e > 0 => duration(e - s),
        _ => "—".into(),
    }
}

/// What the history has open, kept across its reloads: the run whose tasks show (policy id, run
/// id), its tasks, and the log shown (task id, text).
#[derive(Clone, Copy)]
pub struct RunsView {
    open: RwSignal<Option<(i64, i64)>>,
    tasks: RwSignal<Option<Result<Vec<RetentionExecutionTask>, PortalError>>>,
    log: RwSignal<Option<(i64, Result<String, PortalError>)>>,
}

impl RunsView {
    /// The signals, and the effect that loads the open run's tasks, again after every `reload`
    /// and `tick` (the history polls while a run is busy). Create it once, outside the
    /// reloading view.
    pub fn new(reload: Reload, tick: Reload) -> RunsView {
        let v = RunsView { open: RwSignal::new(None), tasks: RwSignal::new(None), log: RwSignal::new(None) };
        Effect::new(move |_| {
            let (run, _, _) = (v.open.get(), reload.get(), tick.get());
            if let Some((policy_id, eid)) = run {
                leptos::task::spawn_local(async move {
                    let r = api::get::<Vec<RetentionExecutionTask>>(format!(
                        "/retentions/{policy_id}/executions/{eid}/tasks?page=1&page_size=100"
                    ))
                    .await;
                    if v.open.get_untracked() == Some((policy_id, eid)) {
                        v.tasks.set(Some(r));
                    }
                });
            }
        });
        v
    }
}

/// One page of the policy's runs (none without a policy).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunsPage {
    pub policy_id: Option<i64>,
    pub runs: Listing<RetentionExecution>,
    pub page: u64,
}

impl RunsPage {
    /// Whether a run is pending or running (the history then refreshes by itself).
    pub fn busy(&self) -> bool {
        self.runs.items.iter().any(|r| matches!(r.status.as_str(), "Pending" | "Running"))
    }
}

/// The run history of the project `name()`'s policy, loaded again when `reload` or `tick`
/// changes.
pub fn runs_resource(
    name: impl Fn() -> String + Copy + Send + Sync + 'static,
    reload: Reload,
    tick: Reload,
) -> Resource<Result<RunsPage, PortalError>> {
    let page = page_param();
    Resource::new(
        move || (name(), page(), reload.get(), tick.get()),
        |(n, page, _, _)| async move {
            let p: ProjectResp = api::get(format!("/projects/{}", seg(&n))).await?;
            let Some(id) = policy_id(&p) else {
                return Ok(RunsPage { policy_id: None, runs: Listing { items: vec![], total: 0 }, page });
            };
            let runs = api::list::<RetentionExecution>(format!(
                "/retentions/{id}/executions?page={page}&page_size={RUNS_PAGE_SIZE}"
            ))
            .await?;
            Ok(RunsPage { policy_id: Some(id), runs, page })
        },
    )
}

#[component]
pub fn RetentionRuns(
    runs: RunsPage,
    can_stop: bool,
    state: RunsView,
    outcome: OutcomeSignal,
    reload: Reload,
) -> impl IntoView {
    let RunsView { open, tasks, log } = state;
    let RunsPage { policy_id, runs, page } = runs;
    let Some(policy_id) = policy_id else { return ().into_any() };
    if runs.items.is_empty() {
        return view! {
            <h3>{t("Runs")}</h3>
            <div class="empty-state"><p>{t("The policy has not run yet.")}</p></div>
        }
        .into_any();
    }
    let total = runs.total;
    view! {
        <h3>{t("Runs")}</h3>
        <div class="table-wrap">
            <table class="table" data-testid="retention-runs">
                <thead><tr>
                    <th scope="col">{t("ID")}</th>
                    <th scope="col">{t("Status")}</th>
                    <th scope="col">{t("Trigger")}</th>
                    <th scope="col">{t("Dry run")}</th>
                    <th scope="col">{t("Start time")}</th>
                    <th scope="col">{t("Duration")}</th>
                    <th scope="col">{t("Actions")}</th>
                </tr></thead>
                <tbody>
                    {runs.items.into_iter().map(|r| {
                        let eid = r.id;
                        let active = matches!(r.status.as_str(), "Pending" | "Running");
                        let stop = move |_| perform(outcome, reload, t("Stopping the run.").to_string(),
                            api::send("PATCH", format!("/retentions/{policy_id}/executions/{eid}"),
                                Some(api::body(&RetentionExecutionAction { action: "stop".into() }))));
                        let toggle = move |_| {
                            log.set(None);
                            tasks.set(None);
                            open.update(|o| *o = if *o == Some((policy_id, eid)) { None } else { Some((policy_id, eid)) });
                        };
                        let tasks_id = format!("retention-tasks-{eid}");
                        view! {
                            <tr data-testid="retention-run" data-id=eid.to_string() data-status=r.status.clone() data-dry-run=r.dry_run.to_string()>
                                <td>{eid}</td>
                                <td><span class=status_class(&r.status) data-testid="retention-run-status">{tv(&r.status)}</span></td>
                                <td>{tv(&r.trigger)}</td>
                                <td>{if r.dry_run { t("Yes") } else { t("No") }}</td>
                                <td>{time_str(&r.start_time)}</td>
                                <td>{took(&r.start_time, &r.end_time)}</td>
                                <td><div class="actions">
                                    <button type="button" class="btn btn-ghost" data-testid="retention-run-open"
                                        aria-expanded=move || (open.get() == Some((policy_id, eid))).to_string() aria-controls=tasks_id.clone()
                                        on:click=toggle>{t("Tasks")}</button>
                                    {(can_stop && active).then(|| view! {
                                        <button type="button" class="btn btn-ghost" data-testid="retention-run-stop" on:click=stop>{t("Stop")}</button>
                                    })}
                                </div></td>
                            </tr>
                            <Show when=move || open.get() == Some((policy_id, eid))>
                                <tr class="subrow" id=format!("retention-tasks-{eid}")>
                                    <td colspan="7"><TaskList policy_id eid tasks log /></td>
                                </tr>
                            </Show>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        {pager(total, page, RUNS_PAGE_SIZE, t("{} run(s)"), |p| format!("?page={p}"))}
    }
    .into_any()
}

#[component]
fn TaskList(
    policy_id: i64,
    eid: i64,
    tasks: RwSignal<Option<Result<Vec<RetentionExecutionTask>, PortalError>>>,
    log: RwSignal<Option<(i64, Result<String, PortalError>)>>,
) -> impl IntoView {
    let show_log = move |tid: i64| {
        if log.get_untracked().is_some_and(|(id, _)| id == tid) {
            log.set(None);
            return;
        }
        leptos::task::spawn_local(async move {
            let r =
                api::api("GET".into(), format!("/retentions/{policy_id}/executions/{eid}/tasks/{tid}"), None)
                    .await
                    .map(|reply| reply.body);
            log.set(Some((tid, r)));
        });
    };
    move || {
        match tasks.get() {
        None => view! { <p class="loading" aria-busy="true">{t("Loading…")}</p> }.into_any(),
        Some(Err(e)) => view! { <ErrorAlert error=e /> }.into_any(),
        Some(Ok(list)) if list.is_empty() => {
            view! { <p class="muted" data-testid="retention-no-tasks">{t("No repository was processed.")}</p> }.into_any()
        }
        Some(Ok(list)) => view! {
            <table class="table" data-testid="retention-tasks">
                <caption class="visually-hidden">{fill(t("Tasks of run {}"), &[&eid])}</caption>
                <thead><tr>
                    <th scope="col">{t("Repository")}</th>
                    <th scope="col">{t("Status")}</th>
                    <th scope="col" class="num">{t("Artifacts")}</th>
                    <th scope="col" class="num">{t("Retained")}</th>
                    <th scope="col">{t("Start time")}</th>
                    <th scope="col">{t("Duration")}</th>
                    <th scope="col">{t("Log")}</th>
                </tr></thead>
                <tbody>
                    {list.into_iter().map(|task| {
                        let tid = task.id;
                        view! {
                            <tr data-testid="retention-task" data-repository=task.repository.clone()>
                                <td class="strong">{task.repository.clone()}</td>
                                <td><span class=status_class(&task.status)>{tv(&task.status)}</span></td>
                                <td class="num" data-testid="retention-task-total">{task.total}</td>
                                <td class="num" data-testid="retention-task-retained">{task.retained}</td>
                                <td>{time_str(&task.start_time)}</td>
                                <td>{took(&task.start_time, &task.end_time)}</td>
                                <td>
                                    <button type="button" class="btn btn-ghost" data-testid="retention-task-log"
                                        aria-expanded=move || log.get().is_some_and(|(id, _)| id == tid).to_string()
                                        on:click=move |_| show_log(tid)>{t("Log")}</button>
                                </td>
                            </tr>
                            {move || log.get().filter(|(id, _)| *id == tid).map(|(_, text)| view! {
                                <tr class="subrow"><td colspan="7">
                                    {match text {
                                        Ok(text) => view! { <pre class="log" data-testid="retention-log" tabindex="0" aria-label=t("Log")>{text}</pre> }.into_any(),
                                        Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                                    }}
                                </td></tr>
                            })}
                        }
                    }).collect_view()}
                </tbody>
            </table>
        }
        .into_any(),
    }
    }
}

//! Administration → Clean Up → Log Rotation (`/harbor/clearing-job/audit-log-purge`, Harbor's
//! audit log purge): the schedule, purge now (or a dry run that only counts), and the purge
//! history with each run's log; a pending or running purge can be stopped. The forms are
//! `server_fns::purge`'s, plain form posts that work without JavaScript; the page refreshes
//! itself every 2 s while a run is pending or running.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::format::{datetime, parse_rfc3339};
use crate::components::layout::AppShell;
use crate::components::page::{signed_in, ErrorAlert};
use crate::components::schedule::{ScheduleFields, ScheduleState};
use crate::error::PortalError;
use crate::i18n::{fill, t, tv};
use crate::pages::gc::CleanUpTabs;
use crate::rest::gc::{GcHistory, GcSchedule};
use crate::rest::purge::PurgeParams;
use crate::rest::UserResp;
use crate::server_fns::auth::current_user;
use crate::server_fns::purge::{
    busy as runs_busy, purge_runs, purge_schedule, schedule_params, split_hours, SchedulePurge, StartPurge,
    StopPurge, PURGE_OPERATIONS,
};

pub const PATH: &str = "/harbor/clearing-job/audit-log-purge";

type Runs = Resource<Result<Vec<GcHistory>, PortalError>>;
type Sched = Resource<Result<GcSchedule, PortalError>>;

#[component]
pub fn LogRotation() -> impl IntoView {
    let user = Resource::new(|| (), |_| current_user());
    // Actions and resources before any `Suspend` (see `pages::project::ProjectFrame`). The
    // history and the forms load apart, so that polling the history (while a run is pending or
    // running) never re-renders a form being filled in.
    let start = ServerAction::<StartPurge>::new();
    let stop = ServerAction::<StopPurge>::new();
    let schedule = ServerAction::<SchedulePurge>::new();
    let tick = RwSignal::new(0u64);
    let runs: Runs =
        Resource::new(move || (start.version().get(), stop.version().get(), tick.get()), |_| purge_runs());
    let sched: Sched = Resource::new(move || schedule.version().get(), |_| purge_schedule());
    view! {
        <Title text=t("Log Rotation · Berth") />
        <Suspense fallback=|| view! { <p class="loading" aria-busy="true">{t("Loading…")}</p> }>
            {move || Suspend::new(async move {
                signed_in(user.await, PATH, move |u| {
                    if u.sysadmin_flag {
                        view! { <PurgeBody user=u start stop schedule tick runs sched /> }.into_any()
                    } else {
                        view! {
                            <AppShell user=u>
                                <p class="alert alert-error" role="alert">{t("Only system administrators may open this page.")}</p>
                            </AppShell>
                        }.into_any()
                    }
                })
            })}
        </Suspense>
    }
}

#[component]
fn PurgeBody(
    user: UserResp,
    start: ServerAction<StartPurge>,
    stop: ServerAction<StopPurge>,
    schedule: ServerAction<SchedulePurge>,
    tick: RwSignal<u64>,
    runs: Runs,
    sched: Sched,
) -> impl IntoView {
    // Whether a run is pending or running, set by an effect (so in the browser, after hydration):
    // a value derived during rendering could be read on the server before `runs` resolved, and
    // hydration keeps the server's attribute (the button stayed enabled beside a pending run).
    let busy = RwSignal::new(false);
    Effect::new(move |_| busy.set(runs.get().and_then(|r| r.ok()).is_some_and(|r| runs_busy(&r))));
    // Live status: poll while a run is pending or running (in the browser only).
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(
            move || {
                if busy.get_untracked() {
                    tick.update(|t| *t += 1);
                }
            },
            std::time::Duration::from_secs(2),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    // The latest form's error (the texts come from the i18n table or the API).
    let action_error = move || {
        [start.value().get().and_then(|r| r.err()), stop.value().get().and_then(|r| r.err()), schedule.value().get().and_then(|r| r.err())]
            .into_iter()
            .flatten()
            .next()
            .map(|e| view! { <p class="alert alert-error" role="alert" data-testid="purge-error">{tv(&e.localized())}</p> })
    };
    view! {
        <AppShell user=user>
            <div class="page-head">
                <h1>{t("Clean Up")}</h1>
            </div>
            <CleanUpTabs active="log-rotation" />
            <p class="muted">
                {t("Log rotation deletes audit log records older than the time kept, for the operations selected, by hand or on a schedule. A dry run only counts them.")}
            </p>
            {action_error}
            <Transition fallback=|| view! { <p class="loading" aria-busy="true">{t("Loading…")}</p> }>
                {move || Suspend::new(async move {
                    match sched.await {
                        Ok(s) => view! { <PurgeForms schedule=s start=start save=schedule busy=busy.into() /> }.into_any(),
                        Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                    }
                })}
            </Transition>
            <Transition fallback=|| view! { <p class="loading" aria-busy="true">{t("Loading…")}</p> }>
                {move || Suspend::new(async move {
                    match runs.await {
                        Ok(r) => view! { <PurgeRuns runs=r stop=stop /> }.into_any(),
                        Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                    }
                })}
            </Transition>
        </AppShell>
    }
}

/// Keep records in N hours/days, and the operations to purge: the fields both forms share
/// (`prefix` keeps their ids apart).
#[component]
fn PurgeFields(prefix: &'static str, params: PurgeParams) -> impl IntoView {
    let (n, unit) = split_hours(params.audit_retention_hour);
    let ticked: Vec<String> = params.include_event_types.split(',').map(|s| s.trim().to_string()).collect();
    let (keep_id, unit_id) = (format!("{prefix}-keep"), format!("{prefix}-unit"));
    view! {
        <div class="field-row">
            <label for=keep_id.clone()>{t("Keep records in")}</label>
            <input id=keep_id name="retention" type="number" min="1" step="1" required value=n.to_string()
                data-testid=format!("{prefix}-keep") />
            <label for=unit_id.clone() class="visually-hidden">{t("Unit")}</label>
            <select id=unit_id name="unit" data-testid=format!("{prefix}-unit")>
                <option value="days" selected=unit == "days">{t("Days")}</option>
                <option value="hours" selected=unit == "hours">{t("Hours")}</option>
            </select>
        </div>
        <fieldset class="checks">
            <legend>{t("Included operations")}</legend>
            {PURGE_OPERATIONS.into_iter().map(|op| {
                let on = ticked.iter().any(|s| s == op);
                view! {
                    <label class="check">
                        <input type="checkbox" name=format!("op_{op}") checked=on data-testid=format!("{prefix}-op-{op}") />
                        {format!(" {}", tv(op))}
                    </label>
                }
            }).collect_view()}
        </fieldset>
    }
}

#[component]
fn PurgeForms(
    schedule: GcSchedule,
    start: ServerAction<StartPurge>,
    save: ServerAction<SchedulePurge>,
    busy: Signal<bool>,
) -> impl IntoView {
    let params = schedule_params(&schedule);
    let run_params = params.clone();
    let sched = schedule.schedule.clone();
    view! {
        <div class="panels">
            <section class="card" aria-labelledby="purge-sched-h">
                <h2 id="purge-sched-h">{t("Schedule to purge")}</h2>
                <ScheduleState schedule=sched.clone() testid="purge-next" />
                <ActionForm action=save attr:class="stack" attr:data-testid="purge-schedule-form">
                    <ScheduleFields schedule=sched id="purge" />
                    <PurgeFields prefix="sched" params=params />
                    <button type="submit" class="btn" data-testid="purge-schedule-save">{t("Save schedule")}</button>
                </ActionForm>
            </section>
            <section class="card" aria-labelledby="purge-run-h">
                <h2 id="purge-run-h">{t("Purge now")}</h2>
                <ActionForm action=start attr:class="stack" attr:data-testid="purge-run-form">
                    <PurgeFields prefix="run" params=run_params />
                    <label class="check">
                        <input type="checkbox" name="dry_run" data-testid="purge-dry-run" />
                        {t(" Dry run (count what would be purged, delete nothing)")}
                    </label>
                    <button type="submit" class="btn btn-primary" disabled=move || busy.get() data-testid="purge-run">
                        {move || if busy.get() { t("A run is in progress…") } else { t("Purge now") }}
                    </button>
                </ActionForm>
            </section>
        </div>
    }
}

trait PurgeRun {
    fn params_purge(&self) -> PurgeParams;
    fn purged(&self) -> u64;
}

impl PurgeRun for GcHistory {
    fn params_purge(&self) -> PurgeParams {
        serde_json::from_str(&self.job_parameters).unwrap_or_default()
    }

    /// Rows purged (or, dry, that would be): a finished run's from its result, a live one's
    /// from its progress.
    fn purged(&self) -> u64 {
        let n = if self.result.get("purged").is_some() { &self.result } else { &self.progress };
        n.get("purged").and_then(serde_json::Value::as_u64).unwrap_or(0)
    }
}

#[component]
fn PurgeRuns(runs: Vec<GcHistory>, stop: ServerAction<StopPurge>) -> impl IntoView {
    let last = runs.iter().find(|r| r.job_status == "Success").map(|r| {
        let at = datetime(parse_rfc3339(r.end_time.as_deref().unwrap_or(&r.update_time)).unwrap_or(0));
        if r.params_purge().dry_run {
            fill(t("{} (dry run)"), &[&at])
        } else {
            at
        }
    });
    let table = if runs.is_empty() {
        view! { <div class="empty-state"><p>{t("No purge has run yet.")}</p></div> }.into_any()
    } else {
        view! { <RunTable runs stop /> }.into_any()
    };
    view! {
        <section aria-labelledby="purge-hist-h">
            <h2 id="purge-hist-h">{t("Purge History")}</h2>
            <dl class="facts" data-testid="purge-status">
                <dt>{t("Last completed")}</dt>
                <dd>{last.unwrap_or_else(|| t("None").to_string())}</dd>
            </dl>
            {table}
        </section>
    }
}

#[component]
fn RunTable(runs: Vec<GcHistory>, stop: ServerAction<StopPurge>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="purge-history">
                <thead>
                    <tr>
                        <th scope="col">{t("Job ID")}</th>
                        <th scope="col">{t("Trigger")}</th>
                        <th scope="col">{t("Dry run")}</th>
                        <th scope="col">{t("Status")}</th>
                        <th scope="col">{t("Operations")}</th>
                        <th scope="col" class="num">{t("Purged")}</th>
                        <th scope="col">{t("Creation time")}</th>
                        <th scope="col">{t("Update time")}</th>
                        <th scope="col"><span class="visually-hidden">{t("Actions")}</span></th>
                    </tr>
                </thead>
                <tbody>
                    {runs.into_iter().map(|r| {
                        let p = r.params_purge();
                        let ops = p.include_event_types.split(',').filter(|s| !s.is_empty()).map(tv).collect::<Vec<_>>().join(", ");
                        let keep = {
                            let (n, unit) = split_hours(p.audit_retention_hour);
                            fill(if unit == "days" { t("older than {} days") } else { t("older than {} hours") }, &[&n])
                        };
                        let status_class = format!("badge badge-{}", r.job_status.to_lowercase());
                        let (id, active) = (r.id, r.active());
                        let created = parse_rfc3339(&r.creation_time).unwrap_or(0);
                        let updated = parse_rfc3339(&r.update_time).unwrap_or(0);
                        view! {
                            <tr data-testid="purge-row" data-status=r.job_status.clone() data-dry-run=p.dry_run.to_string()>
                                <td>{r.id}</td>
                                <td>{format!("{} · {}", tv(&r.job_kind), r.created_by)}</td>
                                <td>{if p.dry_run { t("Yes") } else { t("No") }}</td>
                                <td>
                                    <span class=status_class>{tv(&r.job_status)}</span>
                                    {(!r.error.is_empty()).then(|| view! { <span class="muted small">{format!(" {}", r.error)}</span> })}
                                </td>
                                <td>{ops}<span class="muted small">{format!(" ({keep})")}</span></td>
                                <td class="num" data-testid="purge-count">{r.purged()}</td>
                                <td>{if created > 0 { datetime(created) } else { "—".to_string() }}</td>
                                <td>{if updated > 0 { datetime(updated) } else { "—".to_string() }}</td>
                                <td class="actions">
                                    <a class="btn btn-ghost" href=format!("/api/v2.0/system/purgeaudit/{id}/log") target="_blank" rel="noopener"
                                        aria-label=fill(t("Log of purge {}"), &[&id])>{t("Log")}</a>
                                    {active.then(|| view! {
                                        <ActionForm action=stop attr:class="inline-form">
                                            <input type="hidden" name="id" value=id />
                                            <button type="submit" class="btn btn-ghost" data-testid="purge-stop">{t("Stop")}</button>
                                        </ActionForm>
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

//! Administration → Clean Up → Garbage Collection (the first tab; `pages::purge` is the
//! second, Log Rotation): storage usage, run now / dry run, schedule, history
//! with live progress (the page refreshes itself every 2 s while a run is pending or running).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::format::{bytes, datetime, duration, parse_rfc3339};
use crate::components::layout::AppShell;
use crate::components::page::{signed_in, ErrorAlert};
use crate::components::schedule::{ScheduleFields, ScheduleState};
use crate::i18n::{fill, t, tv};
use crate::rest::gc::GcHistory;
use crate::rest::UserResp;
use crate::server_fns::auth::current_user;
use crate::server_fns::gc::{gc_overview, GcOverview, ScheduleGc, StartGc, StopGc};

pub const PATH: &str = "/harbor/clearing-job/gc";

#[component]
pub fn GarbageCollection() -> impl IntoView {
    let user = Resource::new(|| (), |_| current_user());
    // Actions and resources before any `Suspend` (see `pages::project::ProjectFrame`).
    let start = ServerAction::<StartGc>::new();
    let stop = ServerAction::<StopGc>::new();
    let schedule = ServerAction::<ScheduleGc>::new();
    let tick = RwSignal::new(0u64);
    let overview = Resource::new(
        move || (start.version().get(), stop.version().get(), schedule.version().get(), tick.get()),
        |_| gc_overview(),
    );
    view! {
        <Title text=t("Garbage Collection · Berth") />
        <Suspense fallback=|| view! { <p class="loading" aria-busy="true">{t("Loading…")}</p> }>
            {move || Suspend::new(async move {
                signed_in(user.await, PATH, move |u| {
                    if u.sysadmin_flag {
                        view! { <GcBody user=u start stop schedule tick overview /> }.into_any()
                    } else {
                        view! {
                            <AppShell user=u>
                                <p class="alert alert-error" role="alert">{t("Only system administrators may manage garbage collection.")}</p>
                            </AppShell>
                        }.into_any()
                    }
                })
            })}
        </Suspense>
    }
}

/// The tabs of Administration → Clean Up (Harbor's page): garbage collection and log rotation.
pub const CLEAN_UP_TABS: [(&str, &str, &str); 2] =
    [("gc", PATH, "Garbage Collection"), ("log-rotation", crate::pages::purge::PATH, "Log Rotation")];

#[component]
pub fn CleanUpTabs(active: &'static str) -> impl IntoView {
    view! {
        <nav class="tabs" aria-label=t("Clean Up")>
            {CLEAN_UP_TABS.into_iter().map(|(id, href, label)| view! {
                <a href=href aria-current=(id == active).then_some("page") data-testid=format!("tab-{id}")>{t(label)}</a>
            }).collect_view()}
        </nav>
    }
}

#[component]
fn GcBody(
    user: UserResp,
    start: ServerAction<StartGc>,
    stop: ServerAction<StopGc>,
    schedule: ServerAction<ScheduleGc>,
    tick: RwSignal<u64>,
    overview: Resource<Result<GcOverview, crate::error::PortalError>>,
) -> impl IntoView {
    // Live progress: poll while a run is pending or running (in the browser only).
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(
            move || {
                let active = overview.get_untracked().and_then(|r| r.ok()).map(|o| o.busy()).unwrap_or(false);
                if active {
                    tick.update(|t| *t += 1);
                }
            },
            std::time::Duration::from_secs(2),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    let action_error = move || {
        [start.value().get().and_then(|r| r.err()), stop.value().get().and_then(|r| r.err()), schedule.value().get().and_then(|r| r.err())]
            .into_iter()
            .flatten()
            .next()
            .map(|e| view! { <p class="alert alert-error" role="alert" data-testid="gc-error">{e.localized()}</p> })
    };
    view! {
        <AppShell user=user>
            <div class="page-head">
                <h1>{t("Clean Up")}</h1>
            </div>
            <CleanUpTabs active="gc" />
            <p class="muted">
                {t("Deleting tags, artifacts and repositories is immediate but logical: the bytes stay until garbage collection. ")}
                {t("GC runs online — pushes and pulls continue — and never deletes what was used within its protection window.")}
            </p>
            {action_error}
            <Transition fallback=|| view! { <p class="loading" aria-busy="true">{t("Loading…")}</p> }>
                {move || Suspend::new(async move {
                    match overview.await {
                        Ok(o) => view! { <GcPanels overview=o start=start stop=stop schedule=schedule /> }.into_any(),
                        Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                    }
                })}
            </Transition>
        </AppShell>
    }
}

#[component]
fn GcPanels(
    overview: GcOverview,
    start: ServerAction<StartGc>,
    stop: ServerAction<StopGc>,
    schedule: ServerAction<ScheduleGc>,
) -> impl IntoView {
    let busy = overview.busy();
    let sched = overview.schedule.schedule.clone();
    let sched_untagged = overview.schedule.params().delete_untagged;
    view! {
        <div class="panels">
            <section class="card" aria-labelledby="usage-h">
                <h2 id="usage-h">{t("Storage")}</h2>
                <UsageChart overview=overview.clone() />
            </section>
            <section class="card" aria-labelledby="run-h">
                <h2 id="run-h">{t("Run now")}</h2>
                <ActionForm action=start attr:class="stack" attr:data-testid="gc-run-form">
                    <label class="check">
                        <input type="checkbox" name="delete_untagged" />
                        {t(" Delete untagged artifacts")}
                    </label>
                    <label class="check">
                        <input type="checkbox" name="dry_run" data-testid="gc-dry-run" />
                        {t(" Dry run (report what would be deleted, delete nothing)")}
                    </label>
                    <button type="submit" class="btn btn-primary" disabled=busy data-testid="gc-run">
                        {if busy { t("A run is in progress…") } else { t("Run garbage collection") }}
                    </button>
                </ActionForm>
            </section>
            <section class="card" aria-labelledby="sched-h">
                <h2 id="sched-h">{t("Schedule")}</h2>
                <ScheduleState schedule=sched.clone() testid="gc-next" />
                <ActionForm action=schedule attr:class="stack" attr:data-testid="gc-schedule-form">
                    <ScheduleFields schedule=sched id="gc" />
                    <label class="check">
                        <input type="checkbox" name="delete_untagged" checked=sched_untagged />
                        {t(" Delete untagged artifacts")}
                    </label>
                    <button type="submit" class="btn">{t("Save schedule")}</button>
                </ActionForm>
            </section>
        </div>
        <section aria-labelledby="hist-h">
            <h2 id="hist-h">{t("History")}</h2>
            <GcRuns runs=overview.runs stop=stop />
        </section>
    }
}

#[component]
fn UsageChart(overview: GcOverview) -> impl IntoView {
    let usage = overview.usage;
    let max = usage.projects.iter().map(|p| p.storage).max().unwrap_or(0).max(1);
    view! {
        <p class="stat" data-testid="storage-total">
            <span class="stat-value">{bytes(usage.total_storage)}</span>
            <span class="muted">{t(" stored in total (blobs and manifests, including garbage not yet collected)")}</span>
        </p>
        {if usage.projects.is_empty() {
            view! { <p class="muted">{t("No project stores anything yet.")}</p> }.into_any()
        } else {
            view! {
                <ul class="bars" aria-label=t("Storage used per project")>
                    {usage.projects.into_iter().map(|p| {
                        let pct = (p.storage as f64 / max as f64 * 100.0).max(1.0);
                        view! {
                            <li>
                                <span class="bar-label">{p.project_name.clone()}</span>
                                <span class="bar" aria-hidden="true"><span class="bar-fill" style=format!("width:{pct:.1}%")></span></span>
                                <span class="bar-value">{bytes(p.storage)}</span>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            }.into_any()
        }}
    }
}

#[component]
fn GcRuns(runs: Vec<GcHistory>, stop: ServerAction<StopGc>) -> impl IntoView {
    if runs.is_empty() {
        return view! { <div class="empty-state"><p>{t("No garbage collection has run yet.")}</p></div> }
            .into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="gc-history">
                <thead>
                    <tr>
                        <th scope="col">{t("ID")}</th>
                        <th scope="col">{t("Trigger")}</th>
                        <th scope="col">{t("Mode")}</th>
                        <th scope="col">{t("Status")}</th>
                        <th scope="col">{t("Progress")}</th>
                        <th scope="col">{t("Freed")}</th>
                        <th scope="col">{t("Started")}</th>
                        <th scope="col">{t("Duration")}</th>
                        <th scope="col"><span class="visually-hidden">{t("Actions")}</span></th>
                    </tr>
                </thead>
                <tbody>
                    {runs.into_iter().map(|r| {
                        let params = r.params();
                        let started_at = r.start_time.as_deref().and_then(parse_rfc3339).unwrap_or(0);
                        let finished_at = r.end_time.as_deref().and_then(parse_rfc3339).unwrap_or(0);
                        let (phase, done, total) = (r.phase().to_string(), r.progress_count("done"), r.progress_count("total"));
                        let status_class = format!("badge badge-{}", r.job_status.to_lowercase());
                        let mode = match (params.dry_run, params.delete_untagged) {
                            (true, true) => t("Dry run, untagged too"),
                            (true, false) => t("Dry run"),
                            (false, true) => t("Delete, untagged too"),
                            (false, false) => t("Delete"),
                        };
                        let freed_text = if params.dry_run {
                            t("would free {} · {} blobs, {} manifests, {} artifacts")
                        } else {
                            t("{} · {} blobs, {} manifests, {} artifacts")
                        };
                        let freed = fill(freed_text, &[&bytes(r.freed("bytes") as i64), &r.freed("blobs"), &r.freed("manifests"), &r.freed("artifacts")]);
                        let end = if finished_at > 0 { finished_at } else { 0 };
                        let took = (started_at > 0 && end > 0).then(|| duration(end - started_at));
                        let id = r.id;
                        let active = r.active();
                        view! {
                            <tr data-testid="gc-row" data-status=r.job_status.clone()>
                                <td>{r.id}</td>
                                <td>{format!("{} · {}", tv(&r.job_kind), r.created_by)}</td>
                                <td>{mode}</td>
                                <td>
                                    <span class=status_class>{tv(&r.job_status)}</span>
                                    {(!r.error.is_empty()).then(|| view! { <span class="muted small">{format!(" {}", r.error)}</span> })}
                                </td>
                                <td>
                                    {if active {
                                        let label = format!("{} {}/{}", tv(&phase), done, total);
                                        view! {
                                            <progress max=total.max(1) value=done aria-label=label.clone()></progress>
                                            <span class="small">{label}</span>
                                        }.into_any()
                                    } else {
                                        view! { <span class="small">{tv(&phase)}</span> }.into_any()
                                    }}
                                </td>
                                <td data-testid="gc-freed">{freed}</td>
                                <td>{if started_at > 0 { datetime(started_at) } else { "—".to_string() }}</td>
                                <td>{took.unwrap_or_else(|| "—".into())}</td>
                                <td class="actions">
                                    <a class="btn btn-ghost" href=format!("/api/v2.0/system/gc/{id}/log") target="_blank" rel="noopener">{t("Log")}</a>
                                    {active.then(|| view! {
                                        <ActionForm action=stop attr:class="inline-form">
                                            <input type="hidden" name="id" value=id />
                                            <button type="submit" class="btn btn-ghost">{t("Stop")}</button>
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
    .into_any()
}

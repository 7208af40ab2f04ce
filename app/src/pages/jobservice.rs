//! Administration → Job Service Dashboard (`/harbor/job-service-dashboard`, system admins;
//! Harbor's page of the same name): the pending jobs of each job type's queue (stop, pause,
//! resume — one type or all), the schedules, and the worker pools (one per replica's job
//! runner) with the job each worker runs; freeing a worker stops its job.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::format::{duration, time_str};
use crate::components::page::{loading, Confirm, ErrorAlert, Outcome};
use crate::error::PortalError;
use crate::i18n::{fill, t};
use crate::pages::admin::AdminOnly;
use crate::pages::project::{perform, OutcomeSignal, Reload};
use crate::rest::jobservice::{ActionRequest, JobQueue, ScheduleTask, SchedulerStatus, Worker, WorkerPool};
use crate::server_fns::api::{self, seg};

pub const PATH: &str = "/harbor/job-service-dashboard";

/// Schedules listed (one page: there is one per GC, purge and policy).
const SCHEDULES: u64 = 100;

/// Everything the dashboard shows, read at once.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Dashboard {
    pub queues: Vec<JobQueue>,
    pub schedules: Vec<ScheduleTask>,
    pub schedules_total: i64,
    pub paused: bool,
    pub pools: Vec<WorkerPool>,
    pub workers: Vec<Worker>,
}

async fn dashboard() -> Result<Dashboard, PortalError> {
    let queues = api::get::<Vec<JobQueue>>("/jobservice/queues".into()).await?;
    let schedules = api::list::<ScheduleTask>(format!("/schedules?page=1&page_size={SCHEDULES}")).await?;
    let paused = api::get::<SchedulerStatus>("/schedules/all/paused".into()).await?.paused;
    let pools = api::get::<Vec<WorkerPool>>("/jobservice/pools".into()).await?;
    let workers = if pools.is_empty() {
        vec![]
    } else {
        api::get::<Vec<Worker>>("/jobservice/pools/all/workers".into()).await?
    };
    Ok(Dashboard {
        queues,
        schedules: schedules.items,
        schedules_total: schedules.total,
        paused,
        pools,
        workers,
    })
}

#[component]
pub fn JobServiceDashboard() -> impl IntoView {
    // Resources before any `Suspend` (see `pages::project::ProjectFrame`).
    let reload: Reload = RwSignal::new(0);
    let data = Resource::new(move || reload.get(), |_| dashboard());
    view! {
        <Title text=t("Job Service Dashboard · Berth") />
        <AdminOnly body=move |_| view! { <DashboardBody data reload /> } />
    }
}

/// `PUT /jobservice/queues/{job_type}` with `action`.
fn act(outcome: OutcomeSignal, reload: Reload, job_type: String, action: &'static str) {
    let note = match (action, job_type.as_str()) {
        ("stop", "all") => t("Stopped the pending jobs of every queue.").to_string(),
        ("pause", "all") => t("Paused every queue.").to_string(),
        ("resume", "all") => t("Resumed every queue.").to_string(),
        ("stop", _) => fill(t("Stopped the pending jobs of {}."), &[&job_type]),
        ("pause", _) => fill(t("Paused {}."), &[&job_type]),
        _ => fill(t("Resumed {}."), &[&job_type]),
    };
    let body = api::body(&ActionRequest { action: action.into() });
    perform(
        outcome,
        reload,
        note,
        api::send("PUT", format!("/jobservice/queues/{}", seg(&job_type)), Some(body)),
    );
}

/// Frees workers: stops each job (`PUT /jobservice/jobs/{id}`).
fn free(outcome: OutcomeSignal, reload: Reload, jobs: Vec<String>) {
    let note = if jobs.len() == 1 {
        fill(t("Stopping job {}."), &[&jobs[0]])
    } else {
        fill(t("Stopping {} jobs."), &[&jobs.len()])
    };
    perform(outcome, reload, note, async move {
        for id in jobs {
            api::send("PUT", format!("/jobservice/jobs/{}", seg(&id)), None).await?;
        }
        Ok(serde_json::Value::Null)
    });
}

#[component]
fn DashboardBody(data: Resource<Result<Dashboard, PortalError>>, reload: Reload) -> impl IntoView {
    let outcome: OutcomeSignal = RwSignal::new(None);
    view! {
        <div class="page-head">
            <h1>{t("Job Service Dashboard")}</h1>
            <button type="button" class="btn" data-testid="jobs-refresh" on:click=move |_| reload.update(|v| *v += 1)>{t("Refresh")}</button>
        </div>
        <Outcome result=outcome />
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => view! {
                        <Queues queues=d.queues outcome reload />
                        <Schedules schedules=d.schedules total=d.schedules_total paused=d.paused />
                        <Pools pools=d.pools workers=d.workers outcome reload />
                    }.into_any(),
                    Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Queues(queues: Vec<JobQueue>, outcome: OutcomeSignal, reload: Reload) -> impl IntoView {
    let stop_all = Callback::new(move |_| act(outcome, reload, "all".into(), "stop"));
    view! {
        <section aria-labelledby="queues-h">
            <h2 id="queues-h">{t("Pending Jobs In Queues")}</h2>
            <p class="muted small">
                {t("Stop ends every pending job of the queue; pause keeps jobs of the type from starting (they still queue); resume lets them start again. Running jobs go on.")}
            </p>
            <div class="toolbar">
                <Confirm label=t("Stop all") question=t("Stop the pending jobs of every queue?").to_string() on_confirm=stop_all testid="queues-stop-all" />
                <button type="button" class="btn" data-testid="queues-pause-all" on:click=move |_| act(outcome, reload, "all".into(), "pause")>{t("Pause all")}</button>
                <button type="button" class="btn" data-testid="queues-resume-all" on:click=move |_| act(outcome, reload, "all".into(), "resume")>{t("Resume all")}</button>
            </div>
            {if queues.is_empty() {
                view! { <div class="empty-state"><p>{t("We could not find any job queue.")}</p></div> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="table" data-testid="queue-table">
                            <thead><tr>
                                <th scope="col">{t("Job Type")}</th>
                                <th scope="col" class="num">{t("Pending Count")}</th>
                                <th scope="col">{t("Latency")}</th>
                                <th scope="col">{t("Paused")}</th>
                                <th scope="col">{t("Actions")}</th>
                            </tr></thead>
                            <tbody>
                                {queues.into_iter().map(|q| {
                                    let kind = q.job_type.clone();
                                    let (k1, k2, k3) = (kind.clone(), kind.clone(), kind.clone());
                                    let stop = Callback::new(move |_| act(outcome, reload, k1.clone(), "stop"));
                                    view! {
                                        <tr data-testid="queue-row" data-type=kind.clone() data-paused=q.paused.to_string()>
                                            <th scope="row" class="strong">{kind.clone()}</th>
                                            <td class="num" data-testid="queue-count">{q.count}</td>
                                            <td>{if q.count > 0 { duration(q.latency * 1000) } else { "—".to_string() }}</td>
                                            <td data-testid="queue-paused">{if q.paused { t("Yes") } else { t("No") }}</td>
                                            <td class="actions">
                                                <Confirm label=t("Stop") question=fill(t("Stop the pending jobs of {}?"), &[&kind]) on_confirm=stop testid="queue-stop"
                                                    aria_label=fill(t("Stop the pending jobs of {}"), &[&kind]) />
                                                {if q.paused {
                                                    view! { <button type="button" class="btn btn-ghost" data-testid="queue-resume"
                                                        aria-label=fill(t("Resume {}"), &[&kind])
                                                        on:click=move |_| act(outcome, reload, k2.clone(), "resume")>{t("Resume")}</button> }.into_any()
                                                } else {
                                                    view! { <button type="button" class="btn btn-ghost" data-testid="queue-pause"
                                                        aria-label=fill(t("Pause {}"), &[&kind])
                                                        on:click=move |_| act(outcome, reload, k3.clone(), "pause")>{t("Pause")}</button> }.into_any()
                                                }}
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
fn Schedules(schedules: Vec<ScheduleTask>, total: i64, paused: bool) -> impl IntoView {
    view! {
        <section aria-labelledby="schedules-h">
            <h2 id="schedules-h">{t("Schedules")}</h2>
            <p class="muted small" data-testid="schedules-status">
                {if paused {
                    t("Schedules: paused (every queue is paused: scheduled jobs queue but do not start).")
                } else {
                    t("Schedules: running.")
                }}
            </p>
            {if schedules.is_empty() {
                view! { <div class="empty-state"><p>{t("We could not find any schedule.")}</p></div> }.into_any()
            } else {
                let more = (total > schedules.len() as i64).then(|| fill(t("The first {} of {} schedules."), &[&schedules.len(), &total]));
                view! {
                    <div class="table-wrap">
                        <table class="table" data-testid="schedule-table">
                            <thead><tr>
                                <th scope="col">{t("Vendor Type")}</th>
                                <th scope="col">{t("Vendor ID")}</th>
                                <th scope="col">{t("Cron")}</th>
                                <th scope="col">{t("Update time")}</th>
                            </tr></thead>
                            <tbody>
                                {schedules.into_iter().map(|s| view! {
                                    <tr data-testid="schedule-row" data-vendor=s.vendor_type.clone()>
                                        <td>{s.vendor_type.clone()}</td>
                                        <td>{if s.vendor_id > 0 { s.vendor_id.to_string() } else { "—".to_string() }}</td>
                                        <td><code>{s.cron.clone()}</code></td>
                                        <td>{time_str(&s.update_time)}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                    {more.map(|m| view! { <p class="muted small">{m}</p> })}
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn Pools(
    pools: Vec<WorkerPool>,
    workers: Vec<Worker>,
    outcome: OutcomeSignal,
    reload: Reload,
) -> impl IntoView {
    let busy: Vec<String> =
        workers.iter().filter(|w| !w.job_id.is_empty()).map(|w| w.job_id.clone()).collect();
    let none_busy = busy.is_empty();
    let free_all = Callback::new(move |_| free(outcome, reload, busy.clone()));
    view! {
        <section aria-labelledby="pools-h">
            <h2 id="pools-h">{t("Worker Pools")}</h2>
            <p class="muted small">{t("One pool per replica's job runner; its workers are the jobs it can run at once. Freeing a worker stops the job it runs.")}</p>
            {(!none_busy).then(|| view! {
                <div class="toolbar">
                    <Confirm label=t("Free all") question=t("Stop every running job to free all the workers?").to_string() on_confirm=free_all testid="workers-free-all" />
                </div>
            })}
            {if pools.is_empty() {
                view! { <div class="empty-state"><p>{t("We could not find any worker pool.")}</p></div> }.into_any()
            } else {
                pools.into_iter().map(|p| {
                    let mine: Vec<Worker> = workers.iter().filter(|w| w.pool_id == p.worker_pool_id).cloned().collect();
                    let heading = format!("pool-{}", p.pid);
                    view! {
                        <div class="card pool" data-testid="pool" data-pool=p.worker_pool_id.clone()>
                            <h3 id=heading.clone()>{fill(t("Worker pool {}"), &[&p.worker_pool_id])}</h3>
                            <dl class="facts">
                                <dt>{t("Host")}</dt><dd>{p.host.clone()}</dd>
                                <dt>{t("Pid")}</dt><dd>{p.pid}</dd>
                                <dt>{t("Started At")}</dt><dd>{time_str(&p.start_at)}</dd>
                                <dt>{t("Heartbeat At")}</dt><dd>{time_str(&p.heartbeat_at)}</dd>
                                <dt>{t("Concurrency")}</dt><dd>{p.concurrency}</dd>
                            </dl>
                            <div class="table-wrap">
                                <table class="table" data-testid="worker-table" aria-labelledby=heading>
                                    <thead><tr>
                                        <th scope="col">{t("Worker ID")}</th>
                                        <th scope="col">{t("Job Name")}</th>
                                        <th scope="col">{t("Job ID")}</th>
                                        <th scope="col">{t("Started At")}</th>
                                        <th scope="col">{t("Checked In At")}</th>
                                        <th scope="col">{t("Actions")}</th>
                                    </tr></thead>
                                    <tbody>
                                        {mine.into_iter().map(|w| {
                                            let idle = w.job_id.is_empty();
                                            let job = w.job_id.clone();
                                            let free_one = Callback::new(move |_| free(outcome, reload, vec![job.clone()]));
                                            view! {
                                                <tr data-testid="worker-row" data-job=w.job_id.clone()>
                                                    <td>{w.id.clone()}</td>
                                                    <td>{if idle { t("(idle)").to_string() } else { w.job_name.clone() }}</td>
                                                    <td>{if idle { "—".to_string() } else { w.job_id.clone() }}</td>
                                                    <td>{w.start_at.as_deref().map(|s| time_str(s).into_any()).unwrap_or_else(|| "—".into_any())}</td>
                                                    <td>{w.checkin_at.as_deref().map(|s| time_str(s).into_any()).unwrap_or_else(|| "—".into_any())}</td>
                                                    <td class="actions">
                                                        {(!idle).then(|| view! {
                                                            <a class="btn btn-ghost" href=format!("/api/v2.0/jobservice/jobs/{}/log", w.job_id) target="_blank" rel="noopener"
                                                                aria-label=fill(t("Log of job {}"), &[&w.job_id])>{t("Log")}</a>
                                                            <Confirm label=t("Free") question=fill(t("Stop job {} to free the worker?"), &[&w.job_id]) on_confirm=free_one testid="worker-free"
                                                                aria_label=fill(t("Free the worker of job {}"), &[&w.job_id]) />
                                                        })}
                                                    </td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        </div>
                    }
                }).collect_view().into_any()
            }}
        </section>
    }
}

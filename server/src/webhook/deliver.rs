//! Queuing webhook events and delivering them (see the module doc of `webhook`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::payload::{self, Emitted};
use super::StoredTarget;
use crate::db::now_ms;
use crate::jobs::{JobCtx, NewJob, Outcome};
use crate::state::AppState;

/// The job kind of a delivery.
pub const JOB: &str = "webhook";
/// A push that leaves a project at least this full also fires `QUOTA_WARNING` (Harbor's
/// `ResourcesWarningPercent`).
pub const WARNING_PERCENT: i64 = 85;
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What the audit writer needs to queue events: this registry's host for `resource_url`, and
/// the job runner to wake.
#[derive(Debug, Default)]
pub struct Hooks {
    host: OnceLock<String>,
    wake: OnceLock<Arc<tokio::sync::Notify>>,
}

impl Hooks {
    pub fn init(&self, external_url: &str, wake: Arc<tokio::sync::Notify>) {
        let host = url::Url::parse(external_url)
            .ok()
            .and_then(|u| {
                u.host_str().map(|h| match u.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_string(),
                })
            })
            .unwrap_or_default();
        let _ = self.host.set(host);
        let _ = self.wake.set(wake);
    }

    pub fn host(&self) -> &str {
        self.host.get().map(String::as_str).unwrap_or("")
    }

    /// Wakes this replica's job runner (after the transaction that queued deliveries commits).
    pub fn wake(&self) {
        if let Some(w) = self.wake.get() {
            w.notify_one();
        }
    }
}

#[derive(sqlx::FromRow)]
struct Enabled {
    id: i64,
    project_id: i64,
    event_types: String,
    targets: String,
}

struct Wanting {
    id: i64,
    project_id: i64,
    events: Vec<String>,
    targets: Vec<StoredTarget>,
}

/// Queues an execution (and a delivery job per target) for every enabled policy that wants one
/// of the events — those of the audit rows `audit` (`payload::from_audit`) and `extra` — inside
/// the caller's transaction. The number of executions queued. An audit row becomes an event only
/// when a policy wants it (a pull costs nothing here unless someone listens to pulls).
pub async fn queue_in(
    conn: &mut sqlx::AnyConnection,
    hooks: &Hooks,
    audit: &[crate::audit::Event],
    extra: &[Emitted],
) -> Result<usize, sqlx::Error> {
    let mut projects: Vec<i64> = extra.iter().map(|e| e.project_id).collect();
    projects
        .extend(audit.iter().filter(|e| payload::audit_event_type(e).is_some()).filter_map(|e| e.project_id));
    projects.sort_unstable();
    projects.dedup();
    if projects.is_empty() {
        return Ok(0);
    }
    let ids: Vec<String> = projects.iter().map(i64::to_string).collect();
    let rows: Vec<Enabled> = sqlx::query_as(&format!(
        "SELECT id, project_id, event_types, targets FROM webhook_policies WHERE enabled = 1 AND project_id IN ({})",
        ids.join(", ")
    ))
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let policies: Vec<Wanting> = rows
        .into_iter()
        .map(|r| Wanting {
            id: r.id,
            project_id: r.project_id,
            events: serde_json::from_str(&r.event_types).unwrap_or_default(),
            targets: serde_json::from_str(&r.targets).unwrap_or_default(),
        })
        .collect();
    let wants = |project: i64, event: &str| {
        policies.iter().any(|p| p.project_id == project && p.events.iter().any(|e| e == event))
    };
    let mut all: Vec<Emitted> = extra.iter().filter(|e| wants(e.project_id, e.event_type)).cloned().collect();
    // A push into a nearly full project also warns, when a policy wants to hear it.
    let mut warned = std::collections::HashSet::new();
    for a in audit {
        let (Some(kind), Some(project)) = (payload::audit_event_type(a), a.project_id) else { continue };
        let warn = kind == "PUSH_ARTIFACT" && wants(project, "QUOTA_WARNING") && warned.insert(project);
        if !wants(project, kind) && !warn {
            continue;
        }
        let Some(e) = payload::from_audit(a, hooks.host()) else { continue };
        if warn {
            let (hard, used) = crate::quota::limit_in(&mut *conn, project).await?;
            if hard > 0 && used.saturating_mul(100) >= hard.saturating_mul(WARNING_PERCENT) {
                let mut w = e.clone();
                w.event_type = "QUOTA_WARNING";
                w.data.insert(
                    "custom_attributes".into(),
                    json!({"Details": format!(
                        "quota usage reached {WARNING_PERCENT}%: storage limit {}, used {}",
                        crate::quota::human(hard),
                        crate::quota::human(used)
                    )}),
                );
                all.push(w);
            }
        }
        if wants(project, kind) {
            all.push(e);
        }
    }
    let mut repos: HashMap<String, Option<Value>> = HashMap::new();
    let mut queued = 0;
    let now = now_ms();
    for e in &all {
        let mut repository = None;
        for p in policies
            .iter()
            .filter(|p| p.project_id == e.project_id && p.events.iter().any(|x| x == e.event_type))
        {
            if repository.is_none() {
                if let Some(name) = &e.repository {
                    if !repos.contains_key(name) {
                        let row: Option<(i64, i64)> = sqlx::query_as(
                            "SELECT r.created_at, p.public FROM repositories r JOIN projects p ON p.id = r.project_id \
                             WHERE r.name = $1",
                        )
                        .bind(name)
                        .fetch_optional(&mut *conn)
                        .await?;
                        repos.insert(
                            name.clone(),
                            row.map(|(at, public)| payload::repository(name, at, public != 0)),
                        );
                    }
                    repository = repos.get(name).cloned().flatten();
                }
            }
            let body = payload::harbor(e, repository.clone());
            let execution: i64 = sqlx::query_scalar(
                "INSERT INTO webhook_executions (policy_id, event_type, event_id, payload, status, start_time) \
                 VALUES ($1, $2, $3, $4, 'Pending', $5) RETURNING id",
            )
            .bind(p.id)
            .bind(e.event_type)
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(body.to_string())
            .bind(now)
            .fetch_one(&mut *conn)
            .await?;
            for (i, t) in p.targets.iter().enumerate() {
                let params = json!({ "execution": execution, "target": i });
                let job = crate::jobs::enqueue_in(
                    &mut *conn,
                    &NewJob {
                        kind: JOB,
                        job_kind: "EVENT",
                        parameters: &params,
                        unique_key: None,
                        created_by: &e.operator,
                    },
                )
                .await?;
                sqlx::query(
                    "INSERT INTO webhook_tasks (execution_id, target_index, address, payload_format, job_id, status, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'Pending', $6, $6)",
                )
                .bind(execution)
                .bind(i as i64)
                .bind(&t.address)
                .bind(&t.payload_format)
                .bind(job)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
            queued += 1;
        }
    }
    if queued > 0 {
        metrics::counter!("berth_webhook_events_total").increment(queued as u64);
    }
    Ok(queued)
}

#[derive(sqlx::FromRow)]
struct TaskRow {
    id: i64,
    status: String,
    run_count: i64,
    execution_id: i64,
    event_id: String,
    payload: String,
    policy_id: i64,
    project_id: i64,
    targets: String,
}

/// The request a target gets for a stored payload: body and content type.
pub fn request_body(
    format: &str,
    payload: &Value,
    event_id: &str,
    project_id: i64,
    policy_id: i64,
) -> (Vec<u8>, &'static str) {
    if format == "CloudEvents" {
        (
            payload::cloudevent(payload, event_id, project_id, policy_id).to_string().into_bytes(),
            "application/cloudevents+json",
        )
    } else {
        (payload.to_string().into_bytes(), "application/json")
    }
}

/// The two HTTP clients deliveries use (TLS verified, and not for `skip_cert_verify`
/// targets), built once per `AppState` from `[webhook]`: a client keeps its connections alive
/// between deliveries to the same receiver.
pub struct Clients {
    verified: reqwest::Client,
    insecure: reqwest::Client,
}

impl Clients {
    pub fn new(cfg: &crate::config::WebhookConfig) -> Result<Clients, reqwest::Error> {
        let build = |insecure: bool| {
            reqwest::Client::builder()
                .timeout(cfg.http_timeout)
                .connect_timeout(cfg.http_timeout)
                // A receiver answers; it does not send the event elsewhere.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("berth-webhook/", env!("CARGO_PKG_VERSION")))
                .danger_accept_invalid_certs(insecure)
                .build()
        };
        Ok(Clients { verified: build(false)?, insecure: build(true)? })
    }

    fn get(&self, insecure: bool) -> &reqwest::Client {
        if insecure {
            &self.insecure
        } else {
            &self.verified
        }
    }
}

/// Sends one request to a target; `Ok` with the status line on a 2xx answer, `Err` with what
/// went wrong otherwise.
pub async fn send(
    state: &AppState,
    target: &StoredTarget,
    auth: &str,
    event_id: &str,
    body: Vec<u8>,
    content_type: &str,
) -> Result<String, String> {
    let c = state.webhook_clients.get(target.skip_cert_verify);
    let mut req = c
        .post(&target.address)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .header("X-Berth-Event-Id", event_id)
        .body(body);
    if !auth.is_empty() {
        req = req.header(reqwest::header::AUTHORIZATION, auth);
    }
    let started = Instant::now();
    let resp = req.send().await.map_err(|e| format!("POST {}: {}", target.address, error_chain(&e)))?;
    let status = resp.status();
    let took = started.elapsed().as_millis();
    if status.is_success() {
        return Ok(format!("POST {} answered {status} in {took} ms", target.address));
    }
    let mut text = resp.text().await.unwrap_or_default();
    if text.len() > 512 {
        let mut cut = 512;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    Err(format!("POST {} answered {status} in {took} ms: {}", target.address, text.trim()))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// The wait before attempt `n + 1` after `n` failed ones: the backoff doubled per failure.
pub fn backoff(base: Duration, failed: u32) -> Duration {
    let factor = 1u32.checked_shl(failed.saturating_sub(1)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(MAX_BACKOFF)
}

/// How an attempt ended, for the task and its execution (`Attempt::writes`).
#[derive(Clone)]
struct Attempt {
    task: i64,
    execution: i64,
    started: i64,
    status: &'static str,
    message: String,
    /// When the next attempt is due (ms), for `Pending`.
    next: i64,
}

impl Attempt {
    /// The task's status, run count and times, and the execution's status settled from its
    /// tasks, written in the job runner's end-of-run transaction (`Outcome::also`): a delivery
    /// costs the database two writes, its claim and its end.
    fn writes(self) -> crate::jobs::EndWrites {
        Box::new(move |conn| {
            let a = self.clone();
            Box::pin(async move { a.write(conn).await })
        })
    }

    async fn write(&self, conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
        let now = now_ms();
        let end = if matches!(self.status, "Success" | "Error" | "Stopped") { now } else { 0 };
        let ran = i64::from(self.status != "Stopped");
        sqlx::query(
            "UPDATE webhook_tasks SET status = $2, status_message = $3, next_attempt = $4, end_time = $5, \
             updated_at = $6, run_count = run_count + $7, \
             start_time = CASE WHEN start_time = 0 THEN $8 ELSE start_time END WHERE id = $1",
        )
        .bind(self.task)
        .bind(self.status)
        .bind(&self.message)
        .bind(self.next)
        .bind(end)
        .bind(now)
        .bind(ran)
        .bind(self.started)
        .execute(&mut *conn)
        .await?;
        let tasks: Vec<(String, String)> =
            sqlx::query_as("SELECT status, status_message FROM webhook_tasks WHERE execution_id = $1")
                .bind(self.execution)
                .fetch_all(&mut *conn)
                .await?;
        let any = |s: &str| tasks.iter().any(|(t, _)| t == s);
        let settled = if any("Pending") || any("Running") {
            "Running"
        } else if any("Error") {
            "Error"
        } else if any("Stopped") {
            "Stopped"
        } else {
            "Success"
        };
        let message = tasks.iter().find(|(t, _)| t == "Error").map(|(_, m)| m.clone()).unwrap_or_default();
        sqlx::query(
            "UPDATE webhook_executions SET status = $2, status_message = $3, end_time = $4 WHERE id = $1",
        )
        .bind(self.execution)
        .bind(settled)
        .bind(message)
        .bind(if settled == "Running" { 0 } else { now })
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// Runs one delivery job: one attempt, then success, a retry later, or giving up. Reads the
/// task, sends, and leaves every write to the runner's end-of-run transaction; while the
/// attempt runs, the task reads as `Running` from its job (`history::tasks`).
pub async fn run_job(state: &AppState, ctx: JobCtx) -> Outcome {
    match attempt(state, &ctx).await {
        Ok(o) => o,
        Err(e) => Outcome { status: "error", error: format!("database: {e}"), ..Default::default() },
    }
}

async fn attempt(state: &AppState, ctx: &JobCtx) -> Result<Outcome, sqlx::Error> {
    let done = |status: &'static str, error: String| Outcome { status, error, ..Default::default() };
    let params: Value = serde_json::from_str(&ctx.parameters).unwrap_or(Value::Null);
    let (Some(execution), Some(index)) = (params["execution"].as_i64(), params["target"].as_i64()) else {
        return Ok(done("error", "invalid parameters".into()));
    };
    let db = &state.db;
    let row: Option<TaskRow> = sqlx::query_as(
        "SELECT t.id, t.status, t.run_count, e.id AS execution_id, e.event_id, e.payload, e.policy_id, \
         p.project_id, p.targets \
         FROM webhook_tasks t JOIN webhook_executions e ON e.id = t.execution_id \
         JOIN webhook_policies p ON p.id = e.policy_id WHERE t.execution_id = $1 AND t.target_index = $2",
    )
    .bind(execution)
    .bind(index)
    .fetch_optional(&db.pool)
    .await?;
    let Some(task) = row else {
        ctx.log("the policy or its history was deleted; nothing to deliver");
        return Ok(done("success", String::new()));
    };
    if matches!(task.status.as_str(), "Success" | "Error" | "Stopped") {
        ctx.log(format!("task already {}", task.status));
        return Ok(done("success", String::new()));
    }
    let mut end = Attempt {
        task: task.id,
        execution: task.execution_id,
        started: now_ms(),
        status: "Stopped",
        message: "stopped".into(),
        next: 0,
    };
    if ctx.should_stop() {
        return Ok(Outcome { also: Some(end.writes()), ..done("stopped", String::new()) });
    }
    let run = task.run_count + 1;
    let targets: Vec<StoredTarget> = serde_json::from_str(&task.targets).unwrap_or_default();
    let result = match targets.get(index as usize) {
        None => Err("the policy no longer has this target".to_string()),
        Some(t) => match super::open_auth(&state.secrets.encryption_key, task.policy_id, t) {
            Err(e) => Err(format!("the auth header: {e}")),
            Ok(auth) => {
                let payload: Value = serde_json::from_str(&task.payload).unwrap_or(Value::Null);
                let (body, ct) = request_body(
                    &t.payload_format,
                    &payload,
                    &task.event_id,
                    task.project_id,
                    task.policy_id,
                );
                ctx.log(format!(
                    "attempt {run}: event {} to {} ({})",
                    task.event_id, t.address, t.payload_format
                ));
                send(state, t, &auth, &task.event_id, body, ct).await
            }
        },
    };
    let max = i64::from(state.config.webhook.max_attempts);
    let outcome = match result {
        Ok(line) => {
            ctx.log(&line);
            (end.status, end.message) = ("Success", String::new());
            metrics::counter!("berth_webhook_deliveries_total", "result" => "success").increment(1);
            Outcome { also: Some(end.writes()), ..done("success", String::new()) }
        }
        Err(e) if run < max => {
            let wait = backoff(state.config.webhook.retry_backoff, run as u32);
            let at = now_ms() + wait.as_millis() as i64;
            ctx.log(format!("{e}; attempt {} of {max} in {} ms", run + 1, wait.as_millis()));
            (end.status, end.message, end.next) = ("Pending", e.clone(), at);
            metrics::counter!("berth_webhook_deliveries_total", "result" => "retry").increment(1);
            // `retry` is the run's status in `berth_jobs_total`; the job itself goes back to pending.
            Outcome { retry_at: Some(at), also: Some(end.writes()), ..done("retry", e) }
        }
        Err(e) => {
            ctx.log(format!("{e}; gave up after {run} attempts"));
            (end.status, end.message) = ("Error", e.clone());
            metrics::counter!("berth_webhook_deliveries_total", "result" => "error").increment(1);
            Outcome { also: Some(end.writes()), ..done("error", e) }
        }
    };
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let b = Duration::from_secs(2);
        assert_eq!(backoff(b, 1), Duration::from_secs(2));
        assert_eq!(backoff(b, 2), Duration::from_secs(4));
        assert_eq!(backoff(b, 5), Duration::from_secs(32));
        assert_eq!(backoff(b, 9), Duration::from_secs(300));
        assert_eq!(backoff(b, 99), Duration::from_secs(300));
        let total: u64 = (1..10).map(|n| backoff(b, n).as_secs()).sum();
        assert_eq!(total, 810, "the nine waits of ten attempts: 13.5 minutes");
    }
}

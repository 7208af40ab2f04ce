//! Webhooks: a project's policies (`/projects/{p}/webhook/policies`, `api/webhook.rs`) name the
//! events they want and the HTTP targets to tell.
//!
//! - **Events** (`deliver`): artifact push, pull and delete come from the audit log's batches
//!   (`audit::AuditLog::flush`), quota, replication and retention events are handed to the same
//!   queue (`AuditLog::notify`). Matching policies get an execution with one task per target,
//!   queued as `webhook` jobs **in the transaction that writes the audit rows**: an event is
//!   queued exactly when its audit row is written, never on the request path.
//! - **Delivery** (`deliver::run_job`): a POST of Harbor's default payload or a CloudEvents
//!   1.0 structured event, the event's id in `X-Berth-Event-Id` (and the CloudEvents `id`) so a
//!   receiver can drop the duplicates that at-least-once delivery may bring (a replica killed
//!   mid-delivery: its job is taken back and delivered again by another). A failure is retried
//!   with exponential backoff (`[webhook]`); deliveries run in their own pool of slots with a
//!   timeout, so a slow receiver holds one slot, never the queue.
//! - **Secrets**: a target's auth header is stored encrypted and never listed back.

pub mod deliver;
pub mod history;
pub mod payload;

use app::rest::webhook::{WebhookPolicy, WebhookTargetObject};
use serde::{Deserialize, Serialize};

use crate::crypto;
use crate::db::{now_ms, rfc3339, Db};

/// Harbor's event types this server sends (scanning ones come with scanning).
pub const EVENT_TYPES: [&str; 7] = [
    "PUSH_ARTIFACT",
    "PULL_ARTIFACT",
    "DELETE_ARTIFACT",
    "QUOTA_EXCEED",
    "QUOTA_WARNING",
    "REPLICATION",
    "TAG_RETENTION",
];
pub const NOTIFY_TYPES: [&str; 1] = ["http"];
pub const FORMATS: [&str; 2] = ["Default", "CloudEvents"];
/// Executions kept per policy; older ones are swept with their tasks and jobs.
pub const KEEP_EXECUTIONS: i64 = 100;
const MAX_TARGETS: usize = 5;
const MAX_POLICIES: i64 = 100;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("a webhook policy named {0:?} already exists in this project")]
    Conflict(String),
    #[error("webhook policy not found")]
    NotFound,
    #[error("a project has at most {MAX_POLICIES} webhook policies")]
    TooMany,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A target as stored: the auth header sealed for its policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTarget {
    #[serde(rename = "type")]
    pub kind: String,
    pub address: String,
    #[serde(default)]
    pub auth_header: String,
    #[serde(default)]
    pub skip_cert_verify: bool,
    pub payload_format: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PolicyRow {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub description: String,
    #[sqlx(try_from = "crate::db::Flag")]
    pub enabled: bool,
    pub event_types: String,
    pub targets: String,
    pub creator: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const SELECT: &str = "SELECT id, project_id, name, description, enabled, event_types, targets, creator, \
    created_at, updated_at FROM webhook_policies";

impl PolicyRow {
    pub fn event_types(&self) -> Vec<String> {
        serde_json::from_str(&self.event_types).unwrap_or_default()
    }

    pub fn targets(&self) -> Vec<StoredTarget> {
        serde_json::from_str(&self.targets).unwrap_or_default()
    }

    /// The REST shape; auth headers are never listed back (`""`).
    pub fn to_rest(&self) -> WebhookPolicy {
        WebhookPolicy {
            id: self.id,
            name: self.name.clone(),
            description: self.description.clone(),
            project_id: self.project_id,
            targets: self
                .targets()
                .into_iter()
                .map(|t| WebhookTargetObject {
                    kind: t.kind,
                    address: t.address,
                    auth_header: String::new(),
                    skip_cert_verify: t.skip_cert_verify,
                    payload_format: t.payload_format,
                })
                .collect(),
            event_types: self.event_types(),
            creator: self.creator.clone(),
            creation_time: rfc3339(self.created_at),
            update_time: rfc3339(self.updated_at),
            enabled: self.enabled,
        }
    }
}

fn auth_purpose(policy_id: i64) -> String {
    format!("webhook_policies/{policy_id}/auth_header")
}

/// The plain auth header of a stored target.
pub fn open_auth(key: &[u8; 32], policy_id: i64, t: &StoredTarget) -> Result<String, crypto::CryptoError> {
    if t.auth_header.is_empty() {
        Ok(String::new())
    } else {
        crypto::decrypt(key, &auth_purpose(policy_id), &t.auth_header)
    }
}

/// A validated policy body; `targets` keep plain auth headers (`None`: keep the stored one).
#[derive(Debug, Clone)]
pub struct Draft {
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub event_types: Vec<String>,
    pub targets: Vec<(StoredTarget, Option<String>)>,
}

fn check_text(what: &str, s: &str, max: usize) -> Result<(), String> {
    if s.chars().count() > max {
        return Err(format!("{what} is longer than {max} characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{what} contains control characters"));
    }
    Ok(())
}

/// Checks a policy body (Harbor's rules, plus limits): a name, at least one known event type,
/// 1–5 http(s) targets.
pub fn validate(p: &WebhookPolicy) -> Result<Draft, String> {
    let name = p.name.trim();
    if name.is_empty() {
        return Err("the policy needs a name".into());
    }
    check_text("name", name, 256)?;
    if p.description.chars().count() > 1024 {
        return Err("description is longer than 1024 characters".into());
    }
    if p.event_types.is_empty() {
        return Err("the policy needs at least one event type".into());
    }
    let mut events = vec![];
    for e in &p.event_types {
        if !EVENT_TYPES.contains(&e.as_str()) {
            return Err(format!("unknown event type {e:?}; supported: {}", EVENT_TYPES.join(", ")));
        }
        if !events.contains(e) {
            events.push(e.clone());
        }
    }
    if p.targets.is_empty() {
        return Err("the policy needs a target".into());
    }
    if p.targets.len() > MAX_TARGETS {
        return Err(format!("a policy has at most {MAX_TARGETS} targets"));
    }
    let mut targets = vec![];
    for t in &p.targets {
        let kind = if t.kind.is_empty() { "http" } else { t.kind.as_str() };
        if !NOTIFY_TYPES.contains(&kind) {
            return Err(format!("unsupported notify type {kind:?}; supported: http"));
        }
        let format = if t.payload_format.is_empty() { "Default" } else { t.payload_format.as_str() };
        if !FORMATS.contains(&format) {
            return Err(format!("unsupported payload format {format:?}; supported: Default, CloudEvents"));
        }
        let address = t.address.trim();
        if address.len() > 2048 {
            return Err("the target address is longer than 2048 characters".into());
        }
        let url = url::Url::parse(address).map_err(|e| format!("the target address {address:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(format!("the target address {address:?} must be an http:// or https:// URL"));
        }
        if t.auth_header.len() > 4096 {
            return Err("the auth header is longer than 4096 bytes".into());
        }
        if !t.auth_header.is_empty() && axum::http::HeaderValue::from_str(&t.auth_header).is_err() {
            return Err("the auth header is not a valid HTTP header value".into());
        }
        targets.push((
            StoredTarget {
                kind: kind.to_string(),
                address: address.to_string(),
                auth_header: String::new(),
                skip_cert_verify: t.skip_cert_verify,
                payload_format: format.to_string(),
            },
            (!t.auth_header.is_empty()).then(|| t.auth_header.clone()),
        ));
    }
    Ok(Draft {
        name: name.to_string(),
        description: p.description.clone(),
        enabled: p.enabled,
        event_types: events,
        targets,
    })
}

/// The stored targets of a draft: new headers sealed; an empty header keeps the one stored for
/// the same address (so a listed policy can be sent back as it is), and is dropped when the
/// address changed (a header is never sent to an address it was not given for).
fn seal_targets(key: &[u8; 32], id: i64, d: &Draft, old: &[StoredTarget]) -> String {
    let targets: Vec<StoredTarget> = d
        .targets
        .iter()
        .map(|(t, header)| {
            let mut t = t.clone();
            t.auth_header = match header {
                Some(h) => crypto::encrypt(key, &auth_purpose(id), h),
                None => old
                    .iter()
                    .find(|o| o.address == t.address)
                    .map(|o| o.auth_header.clone())
                    .unwrap_or_default(),
            };
            t
        })
        .collect();
    serde_json::to_string(&targets).unwrap_or_else(|_| "[]".into())
}

/// One page of a project's policies (by id), optionally those whose name contains `name`.
pub async fn list(
    db: &Db,
    project_id: i64,
    name: Option<&str>,
    page: u64,
    size: u64,
) -> Result<(Vec<PolicyRow>, i64), sqlx::Error> {
    let like = format!("%{}%", crate::db::query::escape_like(name.unwrap_or("")));
    let total: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM webhook_policies WHERE project_id = $1 AND name LIKE $2 ESCAPE '\\'",
    )
    .bind(project_id)
    .bind(&like)
    .fetch_one(&db.pool)
    .await?;
    let offset = (page.max(1) - 1).saturating_mul(size);
    let rows = sqlx::query_as(&format!(
        "{SELECT} WHERE project_id = $1 AND name LIKE $2 ESCAPE '\\' ORDER BY id LIMIT {size} OFFSET {offset}"
    ))
    .bind(project_id)
    .bind(&like)
    .fetch_all(&db.pool)
    .await?;
    Ok((rows, total))
}

pub async fn get(db: &Db, project_id: i64, id: i64) -> Result<Option<PolicyRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE project_id = $1 AND id = $2"))
        .bind(project_id)
        .bind(id)
        .fetch_optional(&db.pool)
        .await
}

/// Every policy of a project (the last-trigger view).
pub async fn all_of(db: &Db, project_id: i64) -> Result<Vec<PolicyRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE project_id = $1 ORDER BY id"))
        .bind(project_id)
        .fetch_all(&db.pool)
        .await
}

fn conflict(e: sqlx::Error, name: &str) -> PolicyError {
    if crate::db::error::is_conflict(&e) {
        PolicyError::Conflict(name.to_string())
    } else {
        PolicyError::Db(e)
    }
}

pub async fn create(
    db: &Db,
    key: &[u8; 32],
    project_id: i64,
    creator: &str,
    d: &Draft,
) -> Result<i64, PolicyError> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO webhook_policies (project_id, name, description, enabled, event_types, targets, creator, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, '[]', $6, $7, $7) RETURNING id",
    )
    .bind(project_id)
    .bind(&d.name)
    .bind(&d.description)
    .bind(i64::from(d.enabled))
    .bind(serde_json::to_string(&d.event_types).unwrap_or_default())
    .bind(creator)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| conflict(e, &d.name))?;
    // The id is the sealed headers' associated data.
    sqlx::query("UPDATE webhook_policies SET targets = $2 WHERE id = $1")
        .bind(id)
        .bind(seal_targets(key, id, d, &[]))
        .execute(&mut *tx)
        .await?;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_policies WHERE project_id = $1")
        .bind(project_id)
        .fetch_one(&mut *tx)
        .await?;
    if n > MAX_POLICIES {
        return Err(PolicyError::TooMany);
    }
    tx.commit().await?;
    Ok(id)
}

pub async fn update(db: &Db, key: &[u8; 32], project_id: i64, id: i64, d: &Draft) -> Result<(), PolicyError> {
    let mut tx = db.begin_write().await?;
    let old: Option<String> =
        sqlx::query_scalar("SELECT targets FROM webhook_policies WHERE project_id = $1 AND id = $2")
            .bind(project_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(old) = old else { return Err(PolicyError::NotFound) };
    let old: Vec<StoredTarget> = serde_json::from_str(&old).unwrap_or_default();
    sqlx::query(
        "UPDATE webhook_policies SET name = $3, description = $4, enabled = $5, event_types = $6, targets = $7, \
         updated_at = $8 WHERE project_id = $1 AND id = $2",
    )
    .bind(project_id)
    .bind(id)
    .bind(&d.name)
    .bind(&d.description)
    .bind(i64::from(d.enabled))
    .bind(serde_json::to_string(&d.event_types).unwrap_or_default())
    .bind(seal_targets(key, id, d, &old))
    .bind(now_ms())
    .execute(&mut *tx)
    .await
    .map_err(|e| conflict(e, &d.name))?;
    tx.commit().await?;
    Ok(())
}

/// Removes executions (with their tasks and not yet started deliveries) matching `cond` on
/// `webhook_executions` (one bound parameter, `$1`). A delivery already running finds its task
/// gone and ends.
async fn delete_executions_in(
    conn: &mut sqlx::AnyConnection,
    cond: &str,
    arg: i64,
) -> Result<(), sqlx::Error> {
    let execs = format!("SELECT id FROM webhook_executions WHERE {cond}");
    let jobs = format!("SELECT job_id FROM webhook_tasks WHERE execution_id IN ({execs})");
    for sql in [
        format!("DELETE FROM job_logs WHERE job_id IN ({jobs})"),
        format!("DELETE FROM jobs WHERE id IN ({jobs}) AND status <> 'running'"),
        format!("DELETE FROM webhook_tasks WHERE execution_id IN ({execs})"),
        format!("DELETE FROM webhook_executions WHERE {cond}"),
    ] {
        sqlx::query(&sql).bind(arg).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Deletes a policy with its history; false when there was none.
pub async fn delete(db: &Db, project_id: i64, id: i64) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM webhook_policies WHERE project_id = $1 AND id = $2")
            .bind(project_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    if found.is_none() {
        return Ok(false);
    }
    delete_executions_in(&mut tx, "policy_id = $1", id).await?;
    sqlx::query("DELETE FROM webhook_policies WHERE id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(true)
}

/// Removes a project's policies inside the project's deletion.
pub async fn delete_in(conn: &mut sqlx::AnyConnection, project_id: i64) -> Result<(), sqlx::Error> {
    delete_executions_in(
        conn,
        "policy_id IN (SELECT id FROM webhook_policies WHERE project_id = $1)",
        project_id,
    )
    .await?;
    sqlx::query("DELETE FROM webhook_policies WHERE project_id = $1")
        .bind(project_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Keeps the newest `KEEP_EXECUTIONS` executions of each policy (with their tasks and jobs).
/// Runs with the job runner's housekeeping.
pub async fn sweep(db: &Db) -> Result<u64, sqlx::Error> {
    let over: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT policy_id, COUNT(*) FROM webhook_executions GROUP BY policy_id HAVING COUNT(*) > $1",
    )
    .bind(KEEP_EXECUTIONS)
    .fetch_all(&db.pool)
    .await?;
    let mut swept = 0;
    for (policy, n) in over {
        let oldest_kept: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM webhook_executions WHERE policy_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2",
        )
        .bind(policy)
        .bind(KEEP_EXECUTIONS - 1)
        .fetch_optional(&db.pool)
        .await?;
        let Some(oldest_kept) = oldest_kept else { continue };
        let mut tx = db.begin_write().await?;
        // Finished executions only: a delivery still retrying is never dropped.
        let cond = format!("policy_id = {policy} AND id < $1 AND status IN ('Success', 'Error', 'Stopped')");
        delete_executions_in(&mut tx, &cond, oldest_kept).await?;
        tx.commit().await?;
        swept += (n - KEEP_EXECUTIONS) as u64;
    }
    Ok(swept)
}

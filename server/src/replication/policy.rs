//! Replication policies (`replication_policies`): validation as Harbor's
//! (`src/controller/replication/model/model.go` `Validate`, `policy.go`), create, update,
//! delete, read and list, and each scheduled policy's cron schedule in `jobs`
//! (`schedule_kind`: one schedule per policy, fired once per cluster).
//!
//! Rules: a unique name (409); exactly one of `src_registry` (pull-based) and `dest_registry`
//! (push-based), naming a stored registry; filters as `filters::Filters::parse`; trigger
//! `manual`, `scheduled` (a cron whose seconds field is `0` and minutes field is not `*`, that
//! fires at some time) or `event_based` (push-based policies only: events are local pushes and
//! deletes); a valid destination namespace; `dest_namespace_replace_count` ≥ -1; `speed` ≥ -1
//! (KiB/s, -1 and 0 unlimited); `single_active_replication` defaults to on, and Harbor refuses it
//! on event-based policies. A policy is not deleted while one of its runs is active (412).

use serde_json::json;
use sqlx::FromRow;

use crate::db::query::{Bind, Sql, Stmt};
use crate::db::{now_ms, Db, Flag};
use crate::jobs;

use super::filters::{self, Filters, ReplicationFilter};
pub use app::rest::replication::{Registry, ReplicationPolicy, ReplicationTrigger, TriggerSettings};

/// Why a policy operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The policy has an active run.
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

fn invalid(m: impl Into<String>) -> PolicyError {
    PolicyError::Invalid(m.into())
}

/// A stored policy.
#[derive(Debug, Clone, FromRow)]
pub struct Policy {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub src_registry_id: Option<i64>,
    pub dest_registry_id: Option<i64>,
    pub dest_namespace: String,
    pub dest_namespace_replace_count: i64,
    pub trigger_type: String,
    pub trigger_cron: String,
    /// Harbor's filter array as JSON text.
    pub filters: String,
    #[sqlx(try_from = "Flag")]
    pub replicate_deletion: bool,
    #[sqlx(rename = "override", try_from = "Flag")]
    pub override_existing: bool,
    #[sqlx(try_from = "Flag")]
    pub enabled: bool,
    pub speed_kib: i64,
    #[sqlx(try_from = "Flag")]
    pub copy_by_chunk: bool,
    #[sqlx(try_from = "Flag")]
    pub single_active_replication: bool,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, name, description, src_registry_id, dest_registry_id, dest_namespace, \
    dest_namespace_replace_count, trigger_type, trigger_cron, filters, replicate_deletion, override, enabled, \
    speed_kib, copy_by_chunk, single_active_replication, created_by, created_at, updated_at";

impl Policy {
    /// Local → remote.
    pub fn push_based(&self) -> bool {
        self.dest_registry_id.is_some()
    }

    /// The remote registry's id.
    pub fn remote_id(&self) -> i64 {
        self.dest_registry_id.or(self.src_registry_id).unwrap_or(0)
    }

    pub fn filter_list(&self) -> Vec<ReplicationFilter> {
        serde_json::from_str(&self.filters).unwrap_or_default()
    }

    /// The compiled filters (validated when stored).
    pub fn compiled_filters(&self) -> Result<Filters, String> {
        Filters::parse(&self.filter_list())
    }
}

/// The name under which a policy's cron schedule is kept (`jobs` schedules fire a job of the
/// kind before the `/`).
pub fn schedule_kind(policy_id: i64) -> String {
    format!("{}/{policy_id}", super::execution::EXECUTION_JOB)
}

/// A validated request, ready to store.
#[derive(Debug, Clone)]
pub struct Valid {
    pub name: String,
    pub description: String,
    pub src_registry_id: Option<i64>,
    pub dest_registry_id: Option<i64>,
    pub dest_namespace: String,
    pub dest_namespace_replace_count: i64,
    pub trigger_type: String,
    pub trigger_cron: String,
    pub filters: String,
    pub replicate_deletion: bool,
    pub override_existing: bool,
    pub enabled: bool,
    pub speed_kib: i64,
    pub copy_by_chunk: bool,
    pub single_active_replication: bool,
}

/// Checks a cron as Harbor does for replication (and that it fires at some time).
pub fn check_cron(cron: &str) -> Result<(), String> {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    jobs::parse_cron(cron)?;
    if fields.len() == 6 && fields[0] != "0" {
        return Err("the first field (seconds) of the cron must be 0".into());
    }
    let minutes = if fields.len() == 6 { fields[1] } else { fields[0] };
    if minutes == "*" {
        return Err("* is not allowed in the minutes field of a replication schedule".into());
    }
    jobs::next_run(cron, now_ms()).map_err(|e| format!("{e}; the schedule must fire at some time"))?;
    Ok(())
}

/// Validates a request body (`POST` and `PUT` take the whole policy, as in Harbor).
pub async fn validate(db: &Db, p: &ReplicationPolicy) -> Result<Valid, PolicyError> {
    if p.name.trim().is_empty() {
        return Err(invalid("name is required"));
    }
    if p.name.len() > 255 {
        return Err(invalid("name is longer than 255 characters"));
    }
    let id_of = |r: &Option<Registry>| r.as_ref().map(|r| r.id).filter(|id| *id != 0);
    let (src, dest) = (id_of(&p.src_registry), id_of(&p.dest_registry));
    if src.is_some() == dest.is_some() {
        return Err(invalid(
            "exactly one of src_registry and dest_registry must name a registry (the other side is this registry)",
        ));
    }
    let remote = src.or(dest).unwrap_or_default();
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM registries WHERE id = $1")
        .bind(remote)
        .fetch_optional(&db.pool)
        .await?;
    if exists.is_none() {
        return Err(invalid(format!("registry {remote} does not exist")));
    }
    Filters::parse(&p.filters).map_err(invalid)?;
    if !p.dest_namespace.is_empty() && !crate::registry::path::valid_name(&p.dest_namespace) {
        return Err(invalid(format!("invalid destination namespace {:?}", p.dest_namespace)));
    }
    let replace_count = p.dest_namespace_replace_count.unwrap_or(-1);
    if !(-1..=127).contains(&replace_count) {
        return Err(invalid("dest_namespace_replace_count must be between -1 and 127"));
    }
    let trigger = p.trigger.clone().unwrap_or_default();
    let kind = if trigger.kind.is_empty() { "manual".to_string() } else { trigger.kind.clone() };
    let cron = trigger.trigger_settings.map(|s| s.cron.trim().to_string()).unwrap_or_default();
    match kind.as_str() {
        "manual" => {}
        "scheduled" => {
            if cron.is_empty() {
                return Err(invalid("a scheduled trigger needs trigger_settings.cron"));
            }
            check_cron(&cron).map_err(|e| invalid(format!("invalid cron for the scheduled trigger: {e}")))?;
        }
        "event_based" => {
            if dest.is_none() {
                return Err(invalid(
                    "an event_based trigger is only for push-based policies (with a dest_registry)",
                ));
            }
        }
        other => {
            return Err(invalid(format!(
                "invalid trigger type {other:?}: use manual, scheduled or event_based"
            )))
        }
    }
    let event = kind == "event_based";
    if event && p.single_active_replication == Some(true) {
        return Err(invalid("single_active_replication is not allowed for event_based triggers"));
    }
    let trigger_cron = if kind == "scheduled" { cron } else { String::new() };
    let speed = p.speed.unwrap_or(0);
    if speed < -1 {
        return Err(invalid("speed must be -1 (unlimited) or more (KiB/s)"));
    }
    Ok(Valid {
        name: p.name.clone(),
        description: p.description.clone(),
        src_registry_id: src,
        dest_registry_id: dest,
        dest_namespace: p.dest_namespace.clone(),
        dest_namespace_replace_count: replace_count,
        trigger_type: kind,
        trigger_cron,
        filters: serde_json::to_string(&p.filters).unwrap_or_else(|_| "[]".into()),
        replicate_deletion: p.replicate_deletion || p.deletion,
        override_existing: p.override_existing,
        enabled: p.enabled,
        speed_kib: speed.max(0),
        copy_by_chunk: p.copy_by_chunk.unwrap_or(false),
        single_active_replication: p.single_active_replication.unwrap_or(!event),
    })
}

/// Sets or removes the policy's schedule to match it.
async fn sync_schedule(db: &Db, id: i64, v: &Valid) -> Result<(), sqlx::Error> {
    let kind = schedule_kind(id);
    if v.enabled && v.trigger_type == "scheduled" {
        let params = json!({ "policy_id": id });
        jobs::set_schedule(db, &kind, Some((&v.trigger_cron, &params))).await
    } else {
        jobs::set_schedule(db, &kind, None).await
    }
}

fn name_taken(v: &Valid) -> PolicyError {
    PolicyError::Conflict(format!("a replication policy named {:?} already exists", v.name))
}

/// A policy's settings as (column, value) pairs: what `create` inserts and `update` replaces.
fn settings(v: &Valid) -> Vec<(&'static str, Bind)> {
    vec![
        ("name", v.name.as_str().into()),
        ("description", v.description.as_str().into()),
        ("src_registry_id", v.src_registry_id.into()),
        ("dest_registry_id", v.dest_registry_id.into()),
        ("dest_namespace", v.dest_namespace.as_str().into()),
        ("dest_namespace_replace_count", v.dest_namespace_replace_count.into()),
        ("trigger_type", v.trigger_type.as_str().into()),
        ("trigger_cron", v.trigger_cron.as_str().into()),
        ("filters", v.filters.as_str().into()),
        ("replicate_deletion", (v.replicate_deletion as i64).into()),
        ("override", (v.override_existing as i64).into()),
        ("enabled", (v.enabled as i64).into()),
        ("speed_kib", v.speed_kib.into()),
        ("copy_by_chunk", (v.copy_by_chunk as i64).into()),
        ("single_active_replication", (v.single_active_replication as i64).into()),
    ]
}

/// Stores a new policy (and its schedule); returns its id.
pub async fn create(db: &Db, v: &Valid, by: &str) -> Result<i64, PolicyError> {
    let now = now_ms();
    let (columns, values): (Vec<&str>, Vec<Bind>) = settings(v).into_iter().unzip();
    let mut s = Stmt::new("INSERT INTO replication_policies (");
    s.push(&columns.join(", ")).push(", created_by, created_at, updated_at) VALUES (");
    s.push_list(values.into_iter().chain([by.into(), now.into(), now.into()])).push(") RETURNING id");
    let mut tx = db.begin_write().await?;
    let r = s.query_scalar::<i64>().fetch_one(&mut *tx).await;
    let id: i64 = match r {
        Ok(id) => id,
        Err(e) if crate::db::error::is_conflict(&e) => return Err(name_taken(v)),
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;
    sync_schedule(db, id, v).await?;
    Ok(id)
}

/// Replaces a policy's settings (and its schedule).
pub async fn update(db: &Db, id: i64, v: &Valid) -> Result<(), PolicyError> {
    let mut s = Stmt::new("UPDATE replication_policies SET ");
    for (column, value) in settings(v) {
        s.push(column).push_bind(" = ?, ", value);
    }
    s.push_bind("updated_at = ?", now_ms()).push_bind(" WHERE id = ?", id);
    let mut tx = db.begin_write().await?;
    let r = s.query().execute(&mut *tx).await;
    match r {
        Ok(r) if r.rows_affected() == 0 => {
            return Err(PolicyError::NotFound(format!("replication policy {id} not found")))
        }
        Ok(_) => {}
        Err(e) if crate::db::error::is_conflict(&e) => return Err(name_taken(v)),
        Err(e) => return Err(e.into()),
    }
    // The row is locked by the UPDATE: a run's tasks read the policy as they run, so a run in
    // progress would otherwise switch direction or registry half-way.
    if active_runs(&mut tx, id).await? > 0 {
        return Err(PolicyError::Busy(format!(
            "replication policy {id} has a run in progress: stop it or wait for it to end before editing"
        )));
    }
    tx.commit().await?;
    sync_schedule(db, id, v).await?;
    Ok(())
}

/// Runs of the policy that are pending or in progress.
async fn active_runs(tx: &mut sqlx::AnyConnection, id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM replication_executions WHERE policy_id = $1 AND status IN ('Pending', 'InProgress')",
    )
    .bind(id)
    .fetch_one(tx)
    .await
}

/// Deletes a policy with its runs and their tasks (their jobs and logs stay in the job
/// history); refused while a run is pending or in progress.
pub async fn delete(db: &Db, id: i64) -> Result<Policy, PolicyError> {
    let mut tx = db.begin_write().await?;
    // The first statement writes: the policy row is locked before the check.
    let touched = sqlx::query("UPDATE replication_policies SET updated_at = updated_at WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if touched.rows_affected() == 0 {
        return Err(PolicyError::NotFound(format!("replication policy {id} not found")));
    }
    let policy: Policy = sqlx::query_as(&format!("SELECT {COLUMNS} FROM replication_policies WHERE id = $1"))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    if active_runs(&mut tx, id).await? > 0 {
        return Err(PolicyError::Busy(format!(
            "replication policy {id} has a run in progress: stop it or wait for it to end"
        )));
    }
    sqlx::query(
        "DELETE FROM replication_tasks WHERE execution_id IN \
         (SELECT id FROM replication_executions WHERE policy_id = $1)",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM replication_executions WHERE policy_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM replication_policies WHERE id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    jobs::set_schedule(db, &schedule_kind(id), None).await?;
    Ok(policy)
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Policy>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM replication_policies WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
}

/// The enabled event-based push policies (what an artifact event may start), in id order.
pub async fn event_based(db: &Db) -> Result<Vec<Policy>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM replication_policies WHERE trigger_type = 'event_based' AND enabled = 1 \
         AND dest_registry_id IS NOT NULL ORDER BY id"
    ))
    .fetch_all(&db.pool)
    .await
}

/// One page of policies matching `conds`, ordered by `order` (an `ORDER BY` clause), and the
/// total.
pub async fn list(
    db: &Db,
    conds: &Sql,
    order: &str,
    page: u64,
    size: u64,
) -> Result<(Vec<Policy>, i64), sqlx::Error> {
    let mut count = Stmt::new("SELECT COUNT(*) FROM replication_policies");
    count.where_(conds);
    let total: i64 = count.query_scalar().fetch_one(&db.pool).await?;
    let mut s = Stmt::new(&format!("SELECT {COLUMNS} FROM replication_policies"));
    s.where_(conds);
    s.push(order);
    s.push_bind(" LIMIT ?", size as i64).push_bind(" OFFSET ?", ((page - 1) * size) as i64);
    let rows = s.query_as::<Policy>().fetch_all(&db.pool).await?;
    Ok((rows, total))
}

/// A registry as a policy shows it (the registries API's `Registry`, secret masked): id 0 is
/// this registry ("Local", as Harbor names it).
pub async fn registry_view(db: &Db, id: Option<i64>, external_url: &str) -> Result<Registry, sqlx::Error> {
    let Some(id) = id else {
        return Ok(Registry {
            id: 0,
            name: "Local".into(),
            kind: "harbor".into(),
            url: external_url.to_string(),
            status: super::endpoints::HEALTHY.into(),
            creation_time: crate::db::ZERO_TIME.into(),
            update_time: crate::db::ZERO_TIME.into(),
            ..Default::default()
        });
    };
    Ok(match super::endpoints::get(db, id).await? {
        Some(r) => r.to_rest(),
        None => Registry {
            id,
            status: super::endpoints::UNKNOWN.into(),
            creation_time: crate::db::ZERO_TIME.into(),
            update_time: crate::db::ZERO_TIME.into(),
            ..Default::default()
        },
    })
}

/// The policy in Harbor's JSON.
pub async fn to_rest(db: &Db, p: &Policy, external_url: &str) -> Result<ReplicationPolicy, sqlx::Error> {
    let src = registry_view(db, p.src_registry_id, external_url).await?;
    let dest = registry_view(db, p.dest_registry_id, external_url).await?;
    Ok(ReplicationPolicy {
        id: p.id,
        name: p.name.clone(),
        description: p.description.clone(),
        src_registry: Some(src),
        dest_registry: Some(dest),
        dest_namespace: p.dest_namespace.clone(),
        dest_namespace_replace_count: Some(p.dest_namespace_replace_count),
        trigger: Some(ReplicationTrigger {
            kind: p.trigger_type.clone(),
            trigger_settings: Some(TriggerSettings { cron: p.trigger_cron.clone() }),
        }),
        filters: p.filter_list(),
        replicate_deletion: p.replicate_deletion,
        deletion: p.replicate_deletion,
        override_existing: p.override_existing,
        enabled: p.enabled,
        creation_time: Some(crate::db::rfc3339(p.created_at)),
        update_time: Some(crate::db::rfc3339(p.updated_at)),
        speed: Some(p.speed_kib),
        copy_by_chunk: Some(p.copy_by_chunk),
        single_active_replication: Some(p.single_active_replication),
    })
}

/// The destination repository of a source repository under this policy.
pub fn dest_repository(p: &Policy, repo: &str) -> Result<String, String> {
    filters::dest_repository(repo, &p.dest_namespace, p.dest_namespace_replace_count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crons_as_harbor() {
        assert!(check_cron("0 0 3 * * *").is_ok());
        assert!(check_cron("0 */15 * * * *").is_ok());
        assert!(check_cron("5 0 3 * * *").unwrap_err().contains("seconds"));
        assert!(check_cron("0 * * * * *").unwrap_err().contains("minutes"));
        assert!(check_cron("* * * * *").unwrap_err().contains("minutes"));
        assert!(check_cron("0 0 0 30 2 *").unwrap_err().contains("fire"));
        assert!(check_cron("nope").is_err());
    }
}

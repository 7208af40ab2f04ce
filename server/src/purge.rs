//! Audit log purge: Harbor's `PURGE_AUDIT` job (`/system/purgeaudit`), run by hand or on a cron
//! schedule through the job queue (one at a time cluster-wide: `unique_key` `purge_audit`).
//!
//! A run deletes the rows older than `audit_retention_hour` hours whose event type is selected
//! (`include_event_types`: operations such as `pull`, or an operation and resource type such as
//! `pull_artifact`; none selected purges nothing, as in Harbor), in batches of [`BATCH`] rows by
//! id so the write lock (SQLite) is held briefly and a stop takes effect between batches. A dry
//! run counts. (`audit.retention_days` in the configuration is the older, simpler purge: every
//! row older than N days, hourly.)

use app::rest::purge::PurgeParams;
use serde_json::json;

use crate::db::query::Stmt;
use crate::db::{now_ms, Db};
use crate::jobs::{JobCtx, Outcome};

pub const JOB: &str = "purge_audit";
/// Harbor's cap on `audit_retention_hour`.
pub const MAX_HOURS: i64 = 240_000;
/// Rows deleted per statement.
pub const BATCH: i64 = 10_000;
const MAX_TYPES: usize = 64;

/// The selected event types: (operation, resource type or any).
pub fn parse_types(s: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let mut out = vec![];
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let item = item.to_ascii_lowercase();
        let ok = item.len() <= 64
            && item.starts_with(|c: char| c.is_ascii_lowercase())
            && item.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !ok {
            return Err(format!(
                "include_event_types: {item:?} is not an event type such as pull_artifact or pull"
            ));
        }
        out.push(match item.split_once('_') {
            Some((op, res)) => (op.to_string(), Some(res.to_string())),
            None => (item, None),
        });
    }
    if out.len() > MAX_TYPES {
        return Err(format!("include_event_types: at most {MAX_TYPES} event types"));
    }
    Ok(out)
}

/// Validates a run's parameters (the 400's message).
pub fn check(p: &PurgeParams) -> Result<(), String> {
    if p.audit_retention_hour < 0 {
        return Err("audit_retention_hour must be 0 or more".into());
    }
    parse_types(&p.include_event_types).map(|_| ())
}

/// `AND (…)` selecting the event types.
fn push_types(q: &mut Stmt, types: &[(String, Option<String>)]) {
    q.push(" AND (");
    for (i, (op, res)) in types.iter().enumerate() {
        if i > 0 {
            q.push(" OR ");
        }
        match res {
            Some(r) => {
                q.push_bind("(operation = ?", op.as_str()).push_bind(" AND resource_type = ?)", r.as_str())
            }
            None => q.push_bind("operation = ?", op.as_str()),
        };
    }
    q.push(")");
}

/// Rows a run with `p` would purge now.
pub async fn count(db: &Db, p: &PurgeParams) -> Result<i64, sqlx::Error> {
    let types = parse_types(&p.include_event_types).map_err(sqlx::Error::Protocol)?;
    if types.is_empty() || p.audit_retention_hour <= 0 {
        return Ok(0);
    }
    let mut q = Stmt::new("SELECT COUNT(*) FROM audit_log WHERE op_time < ?");
    q.bind(cutoff(p));
    push_types(&mut q, &types);
    q.query_scalar().fetch_one(&db.pool).await
}

fn cutoff(p: &PurgeParams) -> i64 {
    now_ms() - p.audit_retention_hour.min(MAX_HOURS) * 3_600_000
}

pub async fn run_job(db: &Db, ctx: JobCtx) -> Outcome {
    match run(db, &ctx).await {
        Ok(o) => o,
        Err(e) => {
            ctx.log(format!("audit log purge failed: {e}"));
            Outcome { status: "error", result: ctx.progress(), error: e.to_string(), ..Default::default() }
        }
    }
}

async fn run(db: &Db, ctx: &JobCtx) -> Result<Outcome, sqlx::Error> {
    let p: PurgeParams = serde_json::from_str(&ctx.parameters).unwrap_or_default();
    let types = parse_types(&p.include_event_types).map_err(sqlx::Error::Protocol)?;
    let hours = p.audit_retention_hour.min(MAX_HOURS);
    ctx.log(format!(
        "purge audit log: retention {hours} hours, event types {:?}, dry run {}",
        p.include_event_types, p.dry_run
    ));
    if types.is_empty() || hours <= 0 {
        ctx.log("no event type selected or no retention: nothing to purge");
        return Ok(Outcome {
            status: "success",
            result: json!({ "purged": 0, "dry_run": p.dry_run }),
            error: String::new(),
            ..Default::default()
        });
    }
    if p.dry_run {
        let n = count(db, &p).await?;
        ctx.log(format!("[dry run] {n} audit rows would be purged"));
        return Ok(Outcome {
            status: "success",
            result: json!({ "purged": n, "dry_run": true }),
            error: String::new(),
            ..Default::default()
        });
    }
    let before = cutoff(&p);
    let mut total = 0i64;
    loop {
        if ctx.should_stop() || ctx.lost() {
            ctx.log(format!("stopped after purging {total} audit rows"));
            return Ok(Outcome {
                status: "stopped",
                result: json!({ "purged": total }),
                error: String::new(),
                ..Default::default()
            });
        }
        let mut q =
            Stmt::new("DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE op_time < ?");
        q.bind(before);
        push_types(&mut q, &types);
        q.push(" ORDER BY id LIMIT ?").bind(BATCH).push(")");
        let n = q.query().execute(&db.pool).await?.rows_affected() as i64;
        total += n;
        ctx.set_progress(json!({ "purged": total }));
        if n < BATCH {
            break;
        }
    }
    ctx.log(format!("purged {total} audit rows"));
    Ok(Outcome {
        status: "success",
        result: json!({ "purged": total, "dry_run": false }),
        error: String::new(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types() {
        assert_eq!(
            parse_types(" create_artifact, PULL ,delete_immutable_rule,,").unwrap(),
            [
                ("create".to_string(), Some("artifact".to_string())),
                ("pull".to_string(), None),
                ("delete".to_string(), Some("immutable_rule".to_string()))
            ]
        );
        assert!(parse_types("").unwrap().is_empty());
        assert!(parse_types("pull'; DROP TABLE audit_log").is_err());
        assert!(parse_types(&vec!["pull"; 65].join(",")).is_err());
        assert!(check(&PurgeParams { audit_retention_hour: -1, ..Default::default() }).is_err());
    }
}

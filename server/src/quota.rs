//! Project storage quotas, counted as Harbor counts them: **each blob once per project**.
//!
//! - **Charge.** A blob (layer, config or manifest) is charged to a project the first time it is
//!   linked to one of the project's repositories: upload completion (`meta::record_blob`), a
//!   cross-repository mount (`meta::mount_blob`), a manifest push and an artifact copy
//!   (`artifacts::write`, which charges everything the manifest references that is not charged
//!   yet). Replication and the proxy cache write through `registry::internal`, i.e. the same
//!   functions, so they are counted and refused the same way. `project_blobs` holds the set;
//!   `quota_usage` the sum (migration 0012).
//! - **Enforcement.** [`charge`] runs inside the writer's transaction, as its last statements:
//!   when the new bytes would take the project over its `hard` limit the write is refused with
//!   [`Exceeded`] (`/v2`: `DENIED`, HTTP 412, as Harbor) and the transaction rolls back. A push
//!   that adds no new bytes (everything charged already) is never refused, even over a limit
//!   lowered below the usage.
//! - **No hot row.** The used bytes are `SHARDS` rows per project; a charge adds to one chosen
//!   at random and a check reads their sum (no lock). Two pushes into one project collide on a
//!   row only when they pick the same shard, and then only from that statement to their commit.
//!   **Bound:** on PostgreSQL (READ COMMITTED) a check sees the charges committed before it, so
//!   the pushes that overshoot are those whose check ran before another's commit: the limit is
//!   exceeded by at most the bytes charged by transactions in flight at the same time (each
//!   push's own new blobs) — never by a blob charged after the others committed. On SQLite
//!   writers are serialised (`Db::begin_write`) and the limit is exact.
//! - **Release.** Deleting artifacts frees nothing at once (Harbor: the bytes come back with
//!   GC). GC's last step ([`release_unused`]) removes the charges no artifact of the project
//!   references any more and that were unused within the GC window, and subtracts them.
//! - **Repair.** [`repair`] recomputes a project's sum from its charged set (and charges blobs
//!   the project's artifacts reference that are missing from it); GC runs it for every project
//!   after the release, and `berth gc` with it.
//!
//! This replaces the cache of 0006 (`project_usage`, a usage recomputed from the artifacts and
//! bumped by every push — one row per project that every push into it locked): the sharded sum
//! is exact, cheap to read for every project list, and Harbor's semantics (counted at upload,
//! released by GC) are what the quota needs.

use std::collections::HashMap;

use crate::db::query::Stmt;
use crate::db::{now_ms, Db, DbKind};
use crate::registry::meta::MetaError;

/// Rows the used bytes of a project are spread over.
pub const SHARDS: i64 = 16;

/// The largest limit accepted (1 PiB, above Harbor's 1024 TiB).
pub const MAX_LIMIT: i64 = 1 << 50;

/// A push refused because the project's storage limit would be exceeded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "quota exceeded: project {project} storage limit {}, used {}, this push needs {}",
    human(*limit),
    human(*used),
    human(*needed)
)]
pub struct Exceeded {
    pub project: String,
    pub limit: i64,
    pub used: i64,
    pub needed: i64,
}

/// Bytes in binary units with one decimal ("10.0 MiB").
pub fn human(b: i64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if b.abs() < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64;
    let mut u = 0;
    while v.abs() >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// Whether a push needing `needed` new bytes fits: no limit (-1), nothing new, or within it.
pub fn admits(hard: i64, used: i64, needed: i64) -> bool {
    hard < 0 || needed <= 0 || used.saturating_add(needed) <= hard
}

/// A valid limit for the API: -1 (unlimited) or 0..=MAX_LIMIT bytes.
pub fn valid_limit(hard: i64) -> bool {
    hard == -1 || (0..=MAX_LIMIT).contains(&hard)
}

/// Creates the project's quota row (idempotent), inside the project's creating transaction.
pub(crate) async fn create_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    project_id: i64,
    hard: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO quotas (project_id, hard, created_at, updated_at) VALUES ($1, $2, $3, $3) \
         ON CONFLICT (project_id) DO NOTHING",
    )
    .bind(project_id)
    .bind(hard)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds `delta` bytes to one of the project's shards, chosen at random.
async fn add_usage(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    project_id: i64,
    delta: i64,
) -> Result<(), sqlx::Error> {
    let shard = (rand::random::<u64>() % SHARDS as u64) as i64;
    sqlx::query(
        "INSERT INTO quota_usage (project_id, shard, bytes) VALUES ($1, $2, $3) \
         ON CONFLICT (project_id, shard) DO UPDATE SET bytes = quota_usage.bytes + excluded.bytes",
    )
    .bind(project_id)
    .bind(shard)
    .bind(delta)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The project's limit and usage, in one statement ((-1, 0) without a quota row).
pub(crate) async fn limit_in<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    project_id: i64,
) -> Result<(i64, i64), sqlx::Error> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT q.hard, CAST(COALESCE((SELECT SUM(u.bytes) FROM quota_usage u WHERE u.project_id = q.project_id), 0) \
         AS BIGINT) FROM quotas q WHERE q.project_id = $1",
    )
    .bind(project_id)
    .fetch_optional(ex)
    .await?;
    Ok(row.unwrap_or((-1, 0)))
}

async fn exceeded<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    project_id: i64,
    limit: i64,
    used: i64,
    needed: i64,
) -> Result<Exceeded, sqlx::Error> {
    let project: Option<String> = sqlx::query_scalar("SELECT name FROM projects WHERE id = $1")
        .bind(project_id)
        .fetch_optional(ex)
        .await?;
    Ok(Exceeded { project: project.unwrap_or_else(|| project_id.to_string()), limit, used, needed })
}

/// Charges the project for those of `digests` (blobs or manifests with a `blobs` row) it is not
/// charged for yet, and marks the others used now; refuses with `MetaError::Quota` when the new
/// bytes do not fit. Call it inside the writer's transaction, after its other row locks
/// (charged rows are locked in digest order, then one shard).
pub(crate) async fn charge(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    project_id: i64,
    digests: &[&str],
    now: i64,
) -> Result<(), MetaError> {
    let mut digests: Vec<&str> = digests.to_vec();
    digests.sort_unstable();
    digests.dedup();
    let mut needed = 0i64;
    for d in digests {
        let touched =
            sqlx::query("UPDATE project_blobs SET last_used = $3 WHERE project_id = $1 AND digest = $2")
                .bind(project_id)
                .bind(d)
                .bind(now)
                .execute(&mut **tx)
                .await?;
        if touched.rows_affected() == 1 {
            continue;
        }
        let size: Option<i64> = sqlx::query_scalar(
            "INSERT INTO project_blobs (project_id, digest, size, last_used) \
             SELECT $1, digest, size, $3 FROM blobs WHERE digest = $2 \
             ON CONFLICT (project_id, digest) DO NOTHING RETURNING size",
        )
        .bind(project_id)
        .bind(d)
        .bind(now)
        .fetch_optional(&mut **tx)
        .await?;
        needed += size.unwrap_or(0);
    }
    if needed == 0 {
        return Ok(());
    }
    let (hard, used) = limit_in(&mut **tx, project_id).await?;
    if !admits(hard, used, needed) {
        return Err(MetaError::Quota(exceeded(&mut **tx, project_id, hard, used, needed).await?));
    }
    add_usage(tx, project_id, needed).await?;
    Ok(())
}

/// A cheap check before a blob's content is moved into place: refuses a blob of `size` bytes
/// the project is not charged for when it cannot fit now. The authoritative check is
/// [`charge`]'s, in the transaction that links the blob.
pub async fn precheck(db: &Db, project_id: i64, digest: &str, size: u64) -> Result<(), MetaError> {
    let row: Option<(i64, i64, i64)> = sqlx::query_as(
        "SELECT q.hard, CAST(COALESCE((SELECT SUM(u.bytes) FROM quota_usage u WHERE u.project_id = q.project_id), 0) \
         AS BIGINT), (SELECT COUNT(*) FROM project_blobs b WHERE b.project_id = q.project_id AND b.digest = $2) \
         FROM quotas q WHERE q.project_id = $1",
    )
    .bind(project_id)
    .bind(digest)
    .fetch_optional(&db.pool)
    .await?;
    let Some((hard, used, charged)) = row else { return Ok(()) };
    if charged > 0 || admits(hard, used, size as i64) {
        return Ok(());
    }
    Err(MetaError::Quota(exceeded(&db.pool, project_id, hard, used, size as i64).await?))
}

/// Used bytes of each of `projects` (or of every project that has any).
pub async fn used(db: &Db, projects: Option<&[i64]>) -> Result<HashMap<i64, i64>, sqlx::Error> {
    let mut q = Stmt::new("SELECT project_id, CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM quota_usage");
    match projects {
        Some([]) => return Ok(HashMap::new()),
        Some(ids) => {
            q.push(" WHERE project_id IN (").push_list(ids.iter().copied()).push(")");
        }
        None => {}
    }
    q.push(" GROUP BY project_id");
    let rows: Vec<(i64, i64)> = q.query_as().fetch_all(&db.pool).await?;
    Ok(rows.into_iter().collect())
}

/// A project's quota as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QuotaRow {
    pub id: i64,
    pub project_id: i64,
    pub project_name: String,
    pub owner_name: String,
    pub hard: i64,
    pub used: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const SELECT: &str = "SELECT q.id, q.project_id, p.name AS project_name, COALESCE(u.username, '') AS owner_name, \
     q.hard, CAST(COALESCE((SELECT SUM(qu.bytes) FROM quota_usage qu WHERE qu.project_id = q.project_id), 0) AS BIGINT) AS used, \
     q.created_at, q.updated_at FROM quotas q JOIN projects p ON p.id = q.project_id \
     LEFT JOIN users u ON u.id = p.owner_id";

/// Sort keys of `GET /quotas` (Harbor's `hard.storage`, `used.storage`, `-` for descending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Id,
    Hard(bool),
    Used(bool),
}

impl Sort {
    pub fn parse(s: Option<&str>) -> Option<Sort> {
        let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else { return Some(Sort::Id) };
        let (desc, key) = match s.strip_prefix('-') {
            Some(k) => (true, k),
            None => (false, s),
        };
        match key {
            "hard.storage" => Some(Sort::Hard(desc)),
            "used.storage" => Some(Sort::Used(desc)),
            _ => None,
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Sort::Id => " ORDER BY q.id",
            Sort::Hard(false) => " ORDER BY q.hard, q.id",
            Sort::Hard(true) => " ORDER BY q.hard DESC, q.id",
            Sort::Used(false) => " ORDER BY used, q.id",
            Sort::Used(true) => " ORDER BY used DESC, q.id",
        }
    }
}

/// `GET /quotas`: filtered by project id, sorted, one page; and the total.
pub async fn list(
    db: &Db,
    project_id: Option<i64>,
    sort: Sort,
    page: u64,
    page_size: u64,
) -> Result<(Vec<QuotaRow>, i64), sqlx::Error> {
    let mut count = Stmt::new("SELECT COUNT(*) FROM quotas q");
    let mut q = Stmt::new(SELECT);
    if let Some(id) = project_id {
        count.push(" WHERE q.project_id = ?").bind(id);
        q.push(" WHERE q.project_id = ?").bind(id);
    }
    let total: i64 = count.query_scalar().fetch_one(&db.pool).await?;
    q.push(sort.sql());
    q.push(" LIMIT ?").bind(page_size as i64).push(" OFFSET ?").bind(((page - 1) * page_size) as i64);
    Ok((q.query_as().fetch_all(&db.pool).await?, total))
}

pub async fn get(db: &Db, id: i64) -> Result<Option<QuotaRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE q.id = $1")).bind(id).fetch_optional(&db.pool).await
}

pub async fn of_project(db: &Db, project_id: i64) -> Result<Option<QuotaRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE q.project_id = $1"))
        .bind(project_id)
        .fetch_optional(&db.pool)
        .await
}

/// Sets a quota's hard limit; false when there is no such quota.
pub async fn set_hard(db: &Db, id: i64, hard: i64) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let r = sqlx::query("UPDATE quotas SET hard = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(hard)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(r.rows_affected() == 1)
}

/// Removes a project's quota rows (inside the project's deleting transaction).
pub(crate) async fn delete_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    project_id: i64,
) -> Result<(), sqlx::Error> {
    for table in ["quota_usage", "project_blobs", "quotas"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE project_id = $1"))
            .bind(project_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

const UNREFERENCED: &str =
    "NOT EXISTS (SELECT 1 FROM artifact_blobs ab JOIN artifacts a ON a.id = ab.artifact_id \
       JOIN repositories r ON r.id = a.repository_id \
       WHERE ab.digest = project_blobs.digest AND r.project_id = project_blobs.project_id) \
     AND NOT EXISTS (SELECT 1 FROM artifacts a JOIN repositories r ON r.id = a.repository_id \
       WHERE a.digest = project_blobs.digest AND r.project_id = project_blobs.project_id)";

/// GC's last step: releases the charges no artifact of their project references any more and
/// unused since `cutoff` (and those whose blob is gone), in batches. Returns (charges, bytes).
pub async fn release_unused(db: &Db, cutoff: i64) -> Result<(u64, i64), sqlx::Error> {
    let candidates: Vec<(i64, String)> = sqlx::query_as(&format!(
        "SELECT project_id, digest FROM project_blobs WHERE (last_used < $1 AND {UNREFERENCED}) \
         OR NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = project_blobs.digest) ORDER BY project_id, digest"
    ))
    .bind(cutoff)
    .fetch_all(&db.pool)
    .await?;
    let mut by_project: HashMap<i64, Vec<String>> = HashMap::new();
    for (p, d) in candidates {
        by_project.entry(p).or_default().push(d);
    }
    let (mut n, mut bytes) = (0u64, 0i64);
    let mut projects: Vec<_> = by_project.into_iter().collect();
    projects.sort_unstable_by_key(|(p, _)| *p);
    for (project_id, digests) in projects {
        for chunk in digests.chunks(500) {
            let mut tx = db.begin_write().await?;
            // PostgreSQL: lock the rows in digest order first (as pushes do), then re-check in a
            // second statement, whose snapshot sees every push that held them (see gc::sweep).
            if db.kind == DbKind::Postgres {
                let mut lock = Stmt::new("SELECT digest FROM project_blobs WHERE project_id = ?");
                lock.bind(project_id)
                    .push(" AND digest IN (")
                    .push_list(chunk)
                    .push(") ORDER BY digest FOR UPDATE");
                lock.query().fetch_all(&mut *tx).await?;
            }
            let mut del = Stmt::new("DELETE FROM project_blobs WHERE project_id = ?");
            del.bind(project_id).push(" AND digest IN (").push_list(chunk).push(") AND ((last_used < ?");
            del.bind(cutoff).push(&format!(
                " AND {UNREFERENCED}) OR NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = project_blobs.digest)) \
                 RETURNING size"
            ));
            let sizes: Vec<i64> = del.query_scalar().fetch_all(&mut *tx).await?;
            let freed: i64 = sizes.iter().sum();
            if freed != 0 {
                add_usage(&mut tx, project_id, -freed).await?;
            }
            tx.commit().await?;
            n += sizes.len() as u64;
            bytes += freed;
        }
    }
    Ok((n, bytes))
}

/// Recomputes a project's used bytes from its charged set, after charging the blobs its
/// artifacts reference that are missing from the set. Returns (before, after).
///
/// Exact with pushes running: the shards are deleted first (waiting for any push holding one
/// to commit), then the set is summed in a new statement; a push that commits later adds its
/// bytes to a shard after this transaction, and its charge was not in the sum.
pub async fn repair(db: &Db, project_id: i64) -> Result<(i64, i64), sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    for sql in [
        "INSERT INTO project_blobs (project_id, digest, size, last_used) \
         SELECT DISTINCT r.project_id, b.digest, b.size, $2 FROM repositories r JOIN artifacts a ON a.repository_id = r.id \
         JOIN artifact_blobs ab ON ab.artifact_id = a.id JOIN blobs b ON b.digest = ab.digest WHERE r.project_id = $1 \
         ON CONFLICT (project_id, digest) DO NOTHING",
        "INSERT INTO project_blobs (project_id, digest, size, last_used) \
         SELECT DISTINCT r.project_id, b.digest, b.size, $2 FROM repositories r JOIN artifacts a ON a.repository_id = r.id \
         JOIN blobs b ON b.digest = a.digest WHERE r.project_id = $1 \
         ON CONFLICT (project_id, digest) DO NOTHING",
    ] {
        sqlx::query(sql).bind(project_id).bind(now).execute(&mut *tx).await?;
    }
    let before: Vec<i64> =
        sqlx::query_scalar("DELETE FROM quota_usage WHERE project_id = $1 RETURNING bytes")
            .bind(project_id)
            .fetch_all(&mut *tx)
            .await?;
    let before: i64 = before.iter().sum();
    let after: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM project_blobs WHERE project_id = $1",
    )
    .bind(project_id)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO quota_usage (project_id, shard, bytes) VALUES ($1, 0, $2)")
        .bind(project_id)
        .bind(after)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((before, after))
}

/// [`repair`] for every project; returns the projects whose figure changed (id, before, after).
pub async fn repair_all(db: &Db) -> Result<Vec<(i64, i64, i64)>, sqlx::Error> {
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM projects ORDER BY id").fetch_all(&db.pool).await?;
    let mut changed = vec![];
    for id in ids {
        let (before, after) = repair(db, id).await?;
        if before != after {
            changed.push((id, before, after));
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_within_the_limit_only() {
        assert!(admits(-1, i64::MAX, 1 << 40), "unlimited");
        assert!(admits(100, 60, 40));
        assert!(!admits(100, 60, 41));
        assert!(admits(100, 200, 0), "nothing new is never refused");
        assert!(!admits(0, 0, 1));
        assert!(!admits(100, i64::MAX, 1), "no overflow");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1024), "1.0 KiB");
        assert_eq!(human(10 * 1024 * 1024), "10.0 MiB");
        assert_eq!(human(9_961_472 + 1024 * 100), "9.6 MiB");
        assert_eq!(human(3 << 40), "3.0 TiB");
    }

    #[test]
    fn message_names_limit_and_usage() {
        let e = Exceeded { project: "p1".into(), limit: 10 << 20, used: 10_276_045, needed: 1 << 20 };
        assert_eq!(
            e.to_string(),
            "quota exceeded: project p1 storage limit 10.0 MiB, used 9.8 MiB, this push needs 1.0 MiB"
        );
    }

    #[test]
    fn sort_keys() {
        assert_eq!(Sort::parse(None), Some(Sort::Id));
        assert_eq!(Sort::parse(Some("")), Some(Sort::Id));
        assert_eq!(Sort::parse(Some("hard.storage")), Some(Sort::Hard(false)));
        assert_eq!(Sort::parse(Some("-used.storage")), Some(Sort::Used(true)));
        assert_eq!(Sort::parse(Some("name")), None);
        assert_eq!(Sort::parse(Some("used.count")), None);
    }

    #[test]
    fn limits() {
        assert!(valid_limit(-1) && valid_limit(0) && valid_limit(MAX_LIMIT));
        assert!(!valid_limit(-2) && !valid_limit(MAX_LIMIT + 1));
    }
}

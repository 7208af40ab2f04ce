//! Orphaned upload data: objects under `uploads/` whose session row is gone — a crash between
//! deleting an upload's row and its data (GC's abandoned-upload phase, a cancel, a finished
//! upload), or a request still appending while its session was cancelled.
//!
//! **Why deleting them is safe on several replicas**: an upload's row is always created before
//! any of its data (`registry::uploads::start_upload` inserts the row, data comes with the
//! following requests) and upload ids are fresh UUIDs, never reused. So storage is listed
//! *first* and the rows are looked up *after*: data listed without a row had its row deleted,
//! and no session can ever own it again. On top of that only data untouched for
//! `gc.upload_max_age` is taken (the age an upload session is abandoned at), so a request
//! that is still writing is left alone whatever the clocks say.
//! Test: `gc.rs` `orphaned_upload_data_is_reclaimed` on every backend; the age source is
//! `Storage::list_meta` (storage suite).

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime};

use super::{Env, GcReport};
use crate::jobs::JobCtx;

/// Upload ids looked up per statement.
const CHUNK: usize = 500;

/// Finds upload data without a session that is older than `grace` and deletes it (or, dry,
/// only counts it) into `report.uploads` / `report.upload_bytes`.
pub(super) async fn reclaim(
    env: &Env,
    ctx: &JobCtx,
    grace: Duration,
    dry_run: bool,
    report: &mut GcReport,
) -> Result<(), anyhow::Error> {
    let verb = if dry_run { "would delete" } else { "deleted" };
    let old_before = SystemTime::now().checked_sub(grace).unwrap_or(SystemTime::UNIX_EPOCH);
    // Storage first, rows second (see the module doc).
    let mut by_id: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    let mut recent: HashSet<String> = HashSet::new();
    for o in env.storage.list_meta("uploads/").await? {
        let Some(id) = o.key.strip_prefix("uploads/").and_then(|r| r.split('/').next()) else { continue };
        if o.modified < old_before {
            by_id.entry(id.to_string()).or_default().push((o.key, o.size));
        } else {
            recent.insert(id.to_string());
        }
    }
    // Anything recent keeps its whole session directory.
    by_id.retain(|id, _| !recent.contains(id));
    let ids: Vec<&String> = by_id.keys().collect();
    let mut live: HashSet<String> = HashSet::new();
    for chunk in ids.chunks(CHUNK) {
        let mut q = crate::db::query::Stmt::new("SELECT id FROM uploads WHERE id IN (");
        q.push_list(chunk.iter().copied()).push(")");
        live.extend(q.query_scalar::<String>().fetch_all(&env.db.pool).await?);
    }
    for (id, objects) in by_id.iter().filter(|(id, _)| !live.contains(*id)) {
        let bytes: u64 = objects.iter().map(|o| o.1).sum();
        if !dry_run {
            let mut failed = None;
            for (key, _) in objects {
                if let Err(e) = env.storage.delete(key).await {
                    failed = Some(e);
                }
            }
            if let Some(e) = failed {
                report.errors += 1;
                ctx.log(format!("could not delete orphaned upload data {id}: {e} (the next run retries)"));
                continue;
            }
        }
        report.uploads += 1;
        report.upload_bytes += bytes;
        ctx.log(format!("{verb} orphaned upload data {id} ({bytes} bytes, no upload session)"));
    }
    Ok(())
}

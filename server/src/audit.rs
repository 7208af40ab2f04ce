//! The audit log: who pushed, pulled, deleted, logged in or changed what, when and from where.
//!
//! Rows are queued in memory (`AuditLog::record`, never blocking a request) and written in
//! batches by `AuditLog::run`, so a pull costs no database write of its own. Pulls are written
//! every half second; any other event (push, delete, login, administrative change — rare and
//! precious) wakes the writer at once, so a replica killed with `kill -9` loses at most the
//! pulls of its last half second. The queue is also flushed on clean shutdown (`serve`) and
//! before this replica lists the log, so a client reads its own operations. If the database is
//! down the queue keeps up to `MAX_PENDING` rows and retries; beyond that the oldest are
//! dropped and a warning says how many.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::db::query::{Bind, Sql, Stmt};
use crate::db::{now_ms, Db};

const MAX_PENDING: usize = 100_000;
const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// How long the writer, once woken, waits for more rows before inserting (group commit).
const GATHER: Duration = Duration::from_millis(25);
const ROWS_PER_INSERT: usize = 50;
const LOGIN_EVERY: Duration = Duration::from_secs(600);

/// One audit row.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow)]
pub struct Event {
    pub op_time: i64,
    pub username: String,
    /// `artifact`, `tag`, `repository`, `project`, `member`, `user`, `robot`, `configuration`.
    pub resource_type: String,
    /// E.g. `p1/app:1.0`, `p1/app@sha256:…`, `p1`, `alice`.
    pub resource: String,
    /// `create`, `pull`, `delete`, `update`, `login`.
    pub operation: String,
    #[sqlx(try_from = "crate::db::Flag")]
    pub success: bool,
    pub client_ip: String,
    pub project_id: Option<i64>,
    pub detail: String,
}

impl Event {
    pub fn new(username: &str, operation: &str, resource_type: &str, resource: impl Into<String>) -> Event {
        Event {
            op_time: now_ms(),
            username: username.to_string(),
            resource_type: resource_type.to_string(),
            resource: resource.into(),
            operation: operation.to_string(),
            success: true,
            client_ip: String::new(),
            project_id: None,
            detail: String::new(),
        }
    }

    pub fn project(mut self, id: i64) -> Event {
        self.project_id = Some(id);
        self
    }

    /// `project` when there is one (project robots; system robots have none).
    pub fn in_project(mut self, id: Option<i64>) -> Event {
        self.project_id = id;
        self
    }

    pub fn ip(mut self, ip: &str) -> Event {
        self.client_ip = ip.to_string();
        self
    }

    pub fn failed(mut self) -> Event {
        self.success = false;
        self
    }

    pub fn detail(mut self, d: impl Into<String>) -> Event {
        self.detail = d.into();
        self
    }
}

#[derive(Debug, Default)]
pub struct AuditLog {
    /// Oldest first; a full queue drops from the front in O(1).
    pending: Mutex<std::collections::VecDeque<Event>>,
    /// Last token-service login recorded per (account, address), to record one per session.
    logins: Mutex<std::collections::HashMap<(String, String), std::time::Instant>>,
    /// Serializes flushes so rows keep their order.
    flushing: tokio::sync::Mutex<()>,
    dropped: std::sync::atomic::AtomicU64,
    /// Wakes the writer for events that should not wait for the next tick.
    wake: tokio::sync::Notify,
    /// Syslog forwarding (`audit_forward`).
    pub forward: std::sync::Arc<crate::audit_forward::Forwarder>,
    /// Webhook events that are not audit rows (quota, replication, retention), queued with the
    /// next batch (`notify`).
    hooks: Mutex<Vec<crate::webhook::payload::Emitted>>,
    /// What queuing webhook events needs (`webhook::deliver`).
    pub webhooks: crate::webhook::deliver::Hooks,
}

impl AuditLog {
    pub fn record(&self, e: Event) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.len() >= MAX_PENDING {
            p.pop_front();
            self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        p.push_back(e);
        drop(p);
        // Group commit: the writer starts within `GATHER` and takes everything queued meanwhile,
        // so under load one transaction carries many rows, and a replica killed with `kill -9`
        // loses only the last few milliseconds of rows, not a timer's worth.
        self.wake.notify_one();
    }

    /// Queues a webhook event that has no audit row; it is queued for delivery with the next
    /// batch, in the same transaction.
    pub fn notify(&self, e: crate::webhook::payload::Emitted) {
        let mut h = self.hooks.lock().unwrap_or_else(|e| e.into_inner());
        if h.len() < MAX_PENDING {
            h.push(e);
        }
        drop(h);
        self.wake.notify_one();
    }

    /// True once per (account, address) per `LOGIN_EVERY`: clients fetch a token per push or
    /// pull, which would otherwise each count as a login.
    pub fn first_login_in_a_while(&self, name: &str, ip: &str) -> bool {
        let now = std::time::Instant::now();
        let mut m = self.logins.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() > 10_000 {
            m.retain(|_, t| now.duration_since(*t) < LOGIN_EVERY);
        }
        match m.get(&(name.to_string(), ip.to_string())) {
            Some(t) if now.duration_since(*t) < LOGIN_EVERY => false,
            _ => {
                m.insert((name.to_string(), ip.to_string()), now);
                true
            }
        }
    }

    /// Writes everything queued, and queues the webhook events of the batch in the same
    /// transaction; on failure the rows go back to the front of the queue.
    pub async fn flush(&self, db: &Db) -> Result<(), sqlx::Error> {
        let _turn = self.flushing.lock().await;
        let batch: Vec<Event> =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner())).into();
        let hooks = std::mem::take(&mut *self.hooks.lock().unwrap_or_else(|e| e.into_inner()));
        let dropped = self.dropped.swap(0, std::sync::atomic::Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(dropped, "audit queue overflowed while the database was unavailable");
        }
        if batch.is_empty() && hooks.is_empty() {
            return Ok(());
        }
        // Forwarded once stored (a batch the database refused comes back and is forwarded
        // then), or only forwarded when the database is skipped.
        let (target, skip) = self.forward.settings(db).await.unwrap_or_default();
        let result = insert(db, &batch, !skip, &self.webhooks, &hooks).await;
        if result.is_ok() && (skip || target.is_some()) {
            self.forward.send(&batch);
        }
        if result.is_err() {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let newer = std::mem::replace(&mut *p, batch.into());
            p.extend(newer);
            let excess = p.len().saturating_sub(MAX_PENDING);
            p.drain(..excess);
            drop(p);
            let mut h = self.hooks.lock().unwrap_or_else(|e| e.into_inner());
            let newer = std::mem::replace(&mut *h, hooks);
            h.extend(newer);
        }
        result
    }

    pub async fn run(
        self: std::sync::Arc<Self>,
        db: Db,
        beat: crate::supervisor::Beat,
    ) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.wake.notified() => {
                    // Gather what arrives in the next few milliseconds into the same insert: at
                    // most ~40 write transactions per second however many requests come in.
                    tokio::time::sleep(GATHER).await;
                }
            }
            match self.flush(&db).await {
                Ok(()) => beat.ok(),
                Err(e) => {
                    beat.failed(&e);
                    tracing::warn!(error = %e, "could not write audit rows; will retry");
                    // Not once per woken event while the database is down.
                    tokio::time::sleep(FLUSH_EVERY).await;
                }
            }
        }
    }
}

/// Writes the rows (unless `store` is false: `skip_audit_log_database`) and queues the webhook
/// events of the rows and of `extra`, in one transaction.
async fn insert(
    db: &Db,
    batch: &[Event],
    store: bool,
    webhooks: &crate::webhook::deliver::Hooks,
    extra: &[crate::webhook::payload::Emitted],
) -> Result<(), sqlx::Error> {
    let events =
        !extra.is_empty() || batch.iter().any(|e| crate::webhook::payload::audit_event_type(e).is_some());
    if !events && (!store || batch.is_empty()) {
        return Ok(());
    }
    let mut tx = db.begin_write().await?;
    let queued = crate::webhook::deliver::queue_in(&mut tx, webhooks, batch, extra).await?;
    if store {
        store_rows(&mut tx, batch).await?;
    }
    tx.commit().await?;
    if queued > 0 {
        webhooks.wake();
    }
    Ok(())
}

async fn store_rows(tx: &mut sqlx::AnyConnection, batch: &[Event]) -> Result<(), sqlx::Error> {
    for chunk in batch.chunks(ROWS_PER_INSERT) {
        let mut q = Stmt::new(
            "INSERT INTO audit_log (op_time, username, resource_type, resource, operation, success, \
             client_ip, project_id, detail) VALUES ",
        );
        for (i, e) in chunk.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ",(" });
            q.push_list([
                Bind::I(e.op_time),
                Bind::from(&e.username),
                Bind::from(&e.resource_type),
                Bind::from(&e.resource),
                Bind::from(&e.operation),
                Bind::I(i64::from(e.success)),
                Bind::from(&e.client_ip),
                Bind::OptI(e.project_id),
                Bind::from(&e.detail),
            ]);
            q.push(")");
        }
        q.query().execute(&mut *tx).await?;
    }
    Ok(())
}

/// A stored row.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Record {
    pub id: i64,
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub event: Event,
}

/// Counting stops here: an exact count of a million rows costs more than the page itself (≈70 ms
/// on PostgreSQL), and nobody pages through the whole log by number.
pub const COUNT_CAP: i64 = 10_000;

/// One page of the log.
#[derive(Debug)]
pub struct Listing {
    pub items: Vec<Record>,
    /// Matching rows, exact up to `COUNT_CAP`.
    pub total: i64,
    /// True when more than `COUNT_CAP` rows match (`total` is then `COUNT_CAP`).
    pub capped: bool,
    /// Whether a next page exists.
    pub more: bool,
}

/// Newest first, one page.
/// Newest first, one page. `conds` are SQL conditions on `audit_log` with their bind values
/// (see `api::audit::AUDIT_KEYS`).
pub async fn list(db: &Db, conds: &Sql, page: u64, page_size: u64) -> Result<Listing, sqlx::Error> {
    let mut count = Stmt::new("SELECT COUNT(*) FROM (SELECT 1 FROM audit_log");
    count.where_(conds).push(&format!(" LIMIT {}) t", COUNT_CAP + 1));
    let counted: i64 = count.query_scalar().fetch_one(&db.pool).await?;
    let offset = (page.max(1) - 1).saturating_mul(page_size);
    let mut list = Stmt::new(
        "SELECT id, op_time, username, resource_type, resource, operation, success, client_ip, project_id, \
         detail FROM audit_log",
    );
    list.where_(conds)
        .push(&format!(" ORDER BY op_time DESC, id DESC LIMIT {} OFFSET {offset}", page_size + 1));
    let mut rows = list.query_as::<Record>().fetch_all(&db.pool).await?;
    let more = rows.len() as u64 > page_size;
    rows.truncate(page_size as usize);
    let items = rows;
    Ok(Listing { items, total: counted.min(COUNT_CAP), capped: counted > COUNT_CAP, more })
}

/// Deletes rows older than `days` days; returns how many.
pub async fn purge(db: &Db, days: u64) -> Result<u64, sqlx::Error> {
    let cutoff = now_ms() - (days as i64).saturating_mul(86_400_000);
    let done = sqlx::query("DELETE FROM audit_log WHERE op_time < $1").bind(cutoff).execute(&db.pool).await?;
    Ok(done.rows_affected())
}

/// Purges hourly when a retention is configured (`audit.retention_days` > 0). Every replica
/// may run it: the delete is idempotent.
pub async fn purge_loop(db: Db, days: u64, beat: crate::supervisor::Beat) -> anyhow::Result<()> {
    if days == 0 {
        return Ok(());
    }
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match purge(&db, days).await {
            Ok(n) => {
                beat.ok();
                if n > 0 {
                    tracing::info!(deleted = n, days, "old audit rows purged");
                }
            }
            Err(e) => {
                beat.failed(&e);
                tracing::warn!(error = %e, "audit purge failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full queue (database down for long) keeps the newest `MAX_PENDING` rows and counts the
    /// dropped ones; dropping is O(1) per row (a `VecDeque`), not a shift of the whole queue.
    #[test]
    fn a_full_queue_drops_the_oldest() {
        let log = AuditLog::default();
        for i in 0..MAX_PENDING + 3 {
            log.record(Event::new("u", "pull", "artifact", format!("r{i}")));
        }
        let p = log.pending.lock().unwrap();
        assert_eq!(p.len(), MAX_PENDING);
        assert_eq!(p.front().unwrap().resource, "r3");
        assert_eq!(p.back().unwrap().resource, format!("r{}", MAX_PENDING + 2));
        assert_eq!(log.dropped.load(std::sync::atomic::Ordering::Relaxed), 3);
    }
}

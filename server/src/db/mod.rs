//! Database access: one `sqlx::Any` pool for SQLite (embedded default) and PostgreSQL.
//!
//! - `mod.rs`: the pool (`Db`), migrations, write transactions (`Db::begin_write`), times.
//! - `query`: the statement builder (`Stmt`, `Sql`): placeholders numbered by the builder,
//!   values always bound; Harbor's list filters and sorts as SQL.
//! - `error`: one classification of database errors (unavailable, locked, conflict) and the
//!   one `Retry-After` every surface sends with its 503.
//!
//! Invariants:
//! - **Every query is written once, with `$n` placeholders (numbered by `query::Stmt` when
//!   built from pieces), and runs on both databases.**
//! - **Every write transaction starts with `Db::begin_write`** (test
//!   `every_transaction_begins_through_begin_write`).
//! - **Times are stored as Unix milliseconds (`BIGINT`)**; conversion to RFC 3339 happens at
//!   the API edge (`now_ms`, `rfc3339`).
//! - **Migrations run at start** (and with `berth migrate`); the folder is chosen by URL scheme:
//!   `migrations/sqlite` or `migrations/postgres`, kept schema-identical (the integration test
//!   `server/tests/it/schema.rs` migrates both and compares tables, columns, keys and indexes).

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

use crate::config::DatabaseConfig;

pub mod error;
pub mod query;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

impl DbKind {
    pub fn name(self) -> &'static str {
        match self {
            DbKind::Sqlite => "sqlite",
            DbKind::Postgres => "postgresql",
        }
    }
}

/// The shared connection pool plus which database is behind it.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub kind: DbKind,
}

impl Db {
    /// Connects (creating the SQLite file and its directory when missing).
    pub async fn connect(cfg: &DatabaseConfig) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let kind = if cfg.url.starts_with("sqlite:") { DbKind::Sqlite } else { DbKind::Postgres };
        let mut url = cfg.url.clone();
        if kind == DbKind::Sqlite {
            let path = sqlite_path(&url);
            if path != ":memory:" {
                if let Some(dir) = std::path::Path::new(path).parent() {
                    if !dir.as_os_str().is_empty() {
                        std::fs::create_dir_all(dir).map_err(|e| {
                            anyhow::anyhow!("database.url: cannot create {}: {e}", dir.display())
                        })?;
                    }
                }
                if !url.contains("mode=") {
                    url.push_str(if url.contains('?') { "&mode=rwc" } else { "?mode=rwc" });
                }
            }
        }
        let opts = AnyConnectOptions::from_str(&url)?;
        let mut pool =
            AnyPoolOptions::new().max_connections(cfg.max_connections).acquire_timeout(cfg.acquire_timeout);
        if kind == DbKind::Sqlite {
            pool = pool.after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL lets readers proceed during a write; busy_timeout makes writers wait
                    // for each other instead of failing with SQLITE_BUSY.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            });
            pool = pool.after_release(|conn, _| Box::pin(release_sqlite(conn)));
        }
        let pool = pool.connect_with(opts).await?;
        Ok(Db { pool, kind })
    }

    /// Applies pending migrations; safe to run concurrently from several replicas on Postgres
    /// (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.kind {
            DbKind::Sqlite => &SQLITE_MIGRATIONS,
            DbKind::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`: the write lock is taken
    /// at the start (waiting up to `busy_timeout` for other writers). sqlx's `begin()` issues a
    /// deferred `BEGIN`, and a deferred transaction that reads before it writes fails at once
    /// with SQLITE_BUSY (no busy wait) when another writer — the audit writer, the pull
    /// counter, a job heartbeat — committed in between. **Every transaction that writes starts
    /// here**, never with `pool.begin()`. PostgreSQL waits on row locks by itself.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.kind {
            DbKind::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            DbKind::Postgres => self.pool.begin().await,
        }
    }

    /// A cheap round trip for health checks.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }
}

/// Whether a SQLite connection may go back to the pool. sqlx 0.8's SQLite `begin` has no
/// guard against cancellation (PostgreSQL's has): a request dropped while its `BEGIN IMMEDIATE`
/// runs — a client hanging up, a copy cancelling a sibling transfer — leaves the connection
/// inside a transaction that nothing will end, holding the write lock, so every other writer
/// waits out `busy_timeout` and answers 503 until the process exits. A dropped `Transaction`
/// queues its rollback instead; the ping lets the worker run it before the depth is read
/// again. A connection still in a transaction is closed, which rolls it back (test
/// `a_cancelled_begin_does_not_wedge_the_database`).
async fn release_sqlite(conn: &mut sqlx::AnyConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    conn.ping().await?;
    if conn.is_in_transaction() {
        tracing::warn!("a SQLite connection was left inside a transaction (a cancelled BEGIN); closing it");
        return Ok(false);
    }
    Ok(true)
}

fn sqlite_path(url: &str) -> &str {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    rest.split('?').next().unwrap_or(rest)
}

/// A 0/1 integer column read into a `bool` field of a `sqlx::FromRow` row type
/// (`#[sqlx(try_from = "crate::db::Flag")]`): flags are integers on both databases, since
/// SQLite has no boolean type, and the `Any` driver decodes `bool` only from a boolean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub i64);

impl sqlx::Type<sqlx::Any> for Flag {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <i64 as sqlx::Type<sqlx::Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <i64 as sqlx::Type<sqlx::Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Any> for Flag {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        <i64 as sqlx::Decode<'r, sqlx::Any>>::decode(value).map(Flag)
    }
}

impl From<Flag> for bool {
    fn from(f: Flag) -> bool {
        f.0 != 0
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or(Duration::ZERO);
    d.as_millis() as i64
}

/// RFC 3339 with millisecond precision, UTC (`2024-05-01T12:00:00.000Z`), Harbor's time format.
pub fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).unwrap_or_default()
}

/// Harbor's "never" (Go's zero `time.Time`): what Harbor's clients expect for a time never set
/// (an artifact never pulled), rather than `null`.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00.000Z";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(sqlite_path("sqlite://data/berth.db"), "data/berth.db");
        assert_eq!(sqlite_path("sqlite:///abs/x.db?mode=rwc"), "/abs/x.db");
        assert_eq!(sqlite_path("sqlite::memory:"), ":memory:");
    }

    #[test]
    fn times_format_like_harbor() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_714_564_800_123), "2024-05-01T12:00:00.123Z");
    }

    /// Invariant: every write transaction starts through `Db::begin_write` (`BEGIN IMMEDIATE`
    /// on SQLite), so none can fail with "database is locked" when it upgrades a read lock.
    #[test]
    fn every_transaction_begins_through_begin_write() {
        let mut found = Vec::new();
        for (p, text) in crate::source_files().iter().filter(|(p, _)| !p.ends_with("db/mod.rs")) {
            for (i, line) in text.lines().enumerate() {
                if line.contains(".begin()") || line.contains("begin_with(") {
                    found.push(format!("{}:{}: {}", p.display(), i + 1, line.trim()));
                }
            }
        }
        assert!(found.is_empty(), "transactions begun outside Db::begin_write:\n{}", found.join("\n"));
    }
}

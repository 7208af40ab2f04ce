//! Portal session storage. With `redis.url` set, sessions live in Redis
//! (tower-sessions-redis-store) and every replica sees them; otherwise they live in the
//! database's `sessions` table, so a single node keeps them across restarts.
//!
//! **No session state is kept in process memory**, so any replica can serve any request.

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions_redis_store::fred::prelude::Pool as RedisPool;
use tower_sessions_redis_store::RedisStore;

use crate::db::{now_ms, Db};

/// Session keys used across the code base.
pub const USER_ID: &str = "user_id";
/// The user's `password_changed_at` at login: the session ends when the password changes.
pub const AUTH_EPOCH: &str = "auth_epoch";
/// Per-session CSRF token, echoed by clients in `X-Harbor-CSRF-Token`.
pub const CSRF: &str = "csrf";
/// The user groups found at login (LDAP or OIDC), kept for the session (`User::groups`).
pub const GROUPS: &str = "groups";
/// Whether an admin group made the user a system admin at login (`User::admin_role_in_auth`).
pub const ADMIN_IN_AUTH: &str = "admin_in_auth";
/// OIDC sessions: the provider's ID token, encrypted (`identity::oidc`; the logout hint).
pub const OIDC_TOKEN: &str = "oidc_token";
/// An OIDC login between `/c/oidc/login` and the callback: state, nonce, PKCE verifier
/// (`identity::oidc::Pending`).
pub const OIDC_PENDING: &str = "oidc_pending";
/// A provider identity waiting for its username (`oidc_auto_onboard` off), encrypted.
pub const OIDC_ONBOARD: &str = "oidc_onboard";

/// Sessions in the database.
#[derive(Debug, Clone)]
pub struct SqlStore {
    db: Db,
}

impl SqlStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Deletes expired sessions; returns how many.
    pub async fn delete_expired(&self) -> Result<u64, sqlx::Error> {
        let r = sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(now_ms())
            .execute(&self.db.pool)
            .await?;
        Ok(r.rows_affected())
    }
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn expiry_ms(r: &Record) -> i64 {
    (r.expiry_date.unix_timestamp_nanos() / 1_000_000) as i64
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let data = rmp_serde::to_vec(record).map_err(|e| session_store::Error::Encode(e.to_string()))?;
        // Ids are 128 random bits; on the astronomically unlikely collision draw another.
        loop {
            let r = sqlx::query(
                "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
            )
            .bind(record.id.to_string())
            .bind(data.clone())
            .bind(expiry_ms(record))
            .execute(&self.db.pool)
            .await
            .map_err(backend)?;
            if r.rows_affected() == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data = rmp_serde::to_vec(record).map_err(|e| session_store::Error::Encode(e.to_string()))?;
        sqlx::query(
            "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
        )
        .bind(record.id.to_string())
        .bind(data)
        .bind(expiry_ms(record))
        .execute(&self.db.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let data: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT data FROM sessions WHERE id = $1 AND expires_at > $2")
                .bind(id.to_string())
                .bind(now_ms())
                .fetch_optional(&self.db.pool)
                .await
                .map_err(backend)?;
        data.map(|d| rmp_serde::from_slice(&d).map_err(|e| session_store::Error::Decode(e.to_string())))
            .transpose()
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.db.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

/// The store chosen at start from the configuration.
#[derive(Debug, Clone)]
pub enum Store {
    Sql(SqlStore),
    Redis(RedisStore<RedisPool>),
}

#[async_trait]
impl SessionStore for Store {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Store::Sql(s) => s.create(record).await,
            Store::Redis(s) => s.create(record).await,
        }
    }
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            Store::Sql(s) => s.save(record).await,
            Store::Redis(s) => s.save(record).await,
        }
    }
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Store::Sql(s) => s.load(id).await,
            Store::Redis(s) => s.load(id).await,
        }
    }
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Store::Sql(s) => s.delete(id).await,
            Store::Redis(s) => s.delete(id).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expired_sessions_are_not_loaded_and_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::config::DatabaseConfig {
            url: format!("sqlite://{}/s.db", dir.path().display()),
            ..Default::default()
        };
        let db = Db::connect(&cfg).await.unwrap();
        db.migrate().await.unwrap();
        let store = SqlStore::new(db);
        let mut live = Record {
            id: Id::default(),
            data: Default::default(),
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
        };
        live.data.insert(USER_ID.into(), serde_json::json!(1));
        store.create(&mut live).await.unwrap();
        let mut dead = live.clone();
        dead.id = Id::default();
        dead.expiry_date = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
        store.create(&mut dead).await.unwrap();
        assert_eq!(store.load(&live.id).await.unwrap().unwrap().data, live.data);
        assert!(store.load(&dead.id).await.unwrap().is_none());
        assert_eq!(store.delete_expired().await.unwrap(), 1);
        store.delete(&live.id).await.unwrap();
        assert!(store.load(&live.id).await.unwrap().is_none());
    }
}

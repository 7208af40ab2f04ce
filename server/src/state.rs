//! `AppState`: everything a request handler may use, built once at start by `AppState::build`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use tower_sessions_redis_store::fred::prelude::{
    ClientLike, Config as RedisConfig, Pool as RedisPool, ReconnectPolicy,
};
use tower_sessions_redis_store::fred::types::config::{ConnectionConfig, PerformanceConfig};
use tower_sessions_redis_store::RedisStore;

use crate::config::Config;
use crate::db::Db;
use crate::secrets::Secrets;
use crate::sessions::{SqlStore, Store};
use crate::storage::Storage;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub secrets: Arc<Secrets>,
    pub redis: Option<RedisPool>,
    pub sessions: Store,
    pub storage_root: PathBuf,
    pub storage: Arc<dyn Storage>,
    pub credentials: Arc<crate::auth::CredentialCache>,
    /// Failed logins per client address (bounds what one client makes the server store).
    pub login_budget: Arc<crate::auth::FailureBudget>,
    pub pulls: Arc<crate::registry::meta::PullRecorder>,
    pub audit: Arc<crate::audit::AuditLog>,
    pub tokens: Arc<crate::token::VerifiedTokens>,
    /// Wakes this replica's job runner when it queued a job.
    pub jobs_wake: Arc<tokio::sync::Notify>,
    /// How replication jobs reach registries and copy content (`replication::connector`;
    /// tests put a double here on their copy of the state).
    pub replication: Arc<dyn crate::replication::connector::Connector>,
    /// The background loops (`serve` starts them; `/api/v2.0/health` reports them).
    pub supervisor: Arc<crate::supervisor::Supervisor>,
    /// Proxy-cache projects: built upstreams, fetch slots, fetches in progress (per replica).
    pub proxy: Arc<crate::replication::proxy::ProxyCache>,
    /// The database part of the last metrics scrape (`metrics::render`).
    pub metrics_cache: Arc<crate::metrics::ScrapeCache>,
    /// The HTTP clients of webhook deliveries (`webhook::deliver::Clients`).
    pub webhook_clients: Arc<crate::webhook::deliver::Clients>,
    pub leptos: LeptosOptions,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(s: &AppState) -> Self {
        s.leptos.clone()
    }
}

impl AppState {
    /// Connects to the database (running migrations), loads or generates the shared secrets,
    /// creates the admin and `library` on first start, prepares storage and connects to Redis.
    pub async fn build(config: Config) -> anyhow::Result<AppState> {
        let db = Db::connect(&config.database)
            .await
            .map_err(|e| anyhow::anyhow!("database.url: cannot connect: {e}"))?;
        db.migrate().await.map_err(|e| anyhow::anyhow!("database migration failed: {e}"))?;
        let secrets = Secrets::load(&db, &config.secrets).await?;
        if crate::accounts::ensure_admin(&db, &config.admin.initial_password).await? {
            tracing::info!("created the initial admin account");
        }
        crate::projects::ensure_library(&db).await?;

        let storage_root = config.storage.path.clone();
        let storage = crate::storage::from_config(&config.storage)?;

        let (redis, sessions) = match &config.redis.url {
            Some(url) => {
                let pool = connect_redis(url).await?;
                (Some(pool.clone()), Store::Redis(RedisStore::new(pool)))
            }
            None => (None, Store::Sql(SqlStore::new(db.clone()))),
        };

        let leptos = LeptosOptions::builder()
            .output_name("berth")
            .site_root(config.site_root().to_string_lossy().to_string())
            .site_pkg_dir("pkg")
            .build();

        let audit: Arc<crate::audit::AuditLog> = Arc::default();
        let jobs_wake: Arc<tokio::sync::Notify> = Arc::default();
        audit.webhooks.init(&config.external_url, jobs_wake.clone());
        let webhook_clients = Arc::new(
            crate::webhook::deliver::Clients::new(&config.webhook)
                .map_err(|e| anyhow::anyhow!("webhook: cannot build the HTTP client: {e}"))?,
        );
        Ok(AppState {
            config: Arc::new(config),
            db,
            secrets: Arc::new(secrets),
            redis,
            sessions,
            storage_root,
            storage,
            credentials: Arc::new(crate::auth::CredentialCache::new(rand::random())),
            login_budget: Arc::default(),
            pulls: Arc::default(),
            audit: audit.clone(),
            tokens: Arc::default(),
            jobs_wake,
            replication: Arc::new(crate::replication::connector::Product),
            supervisor: Arc::default(),
            proxy: Arc::default(),
            metrics_cache: Arc::default(),
            webhook_clients,
            leptos,
        })
    }
}

async fn connect_redis(url: &str) -> anyhow::Result<RedisPool> {
    let cfg = RedisConfig::from_url(url).map_err(|e| anyhow::anyhow!("redis.url: {e}"))?;
    let conn = ConnectionConfig {
        connection_timeout: Duration::from_secs(3),
        internal_command_timeout: Duration::from_secs(3),
        ..Default::default()
    };
    // Keep reconnecting forever (capped at 2 s between attempts): Redis restarting must not
    // need a restart of this process.
    let policy = ReconnectPolicy::new_exponential(0, 100, 2_000, 2);
    // A command waits at most 5 s (queued while reconnecting, then sent): a Redis outage turns
    // into 503s instead of requests that hang for as long as it lasts.
    let perf = PerformanceConfig { default_command_timeout: Duration::from_secs(5), ..Default::default() };
    let pool = RedisPool::new(cfg, Some(perf), Some(conn), Some(policy), 4)
        .map_err(|e| anyhow::anyhow!("redis.url: {e}"))?;
    let mut tasks = pool.connect_pool();
    // Poll the clients' state rather than `wait_for_connect`: fred 10 reads the state and then
    // subscribes to the connect notification, so a client that connects (or fails) between the
    // two is waited for until its next reconnect. Seen once in CI: one replica of three waited
    // its whole 10 s for a Redis the other two had just connected to.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !pool.clients().iter().all(|c| c.is_connected()) {
        // A connection task only ends when its first connection failed (fail-fast).
        if let Some(i) = tasks.iter().position(|t| t.is_finished()) {
            let error = match tasks.swap_remove(i).await {
                Ok(Ok(())) => "connection closed".to_string(),
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            anyhow::bail!("redis.url: no connection to {url}: {error}");
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("redis.url: no connection to {url} within 10s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every start of a replica connects: the connect notification of a client that connects
    /// while the caller is about to wait for it must not be missed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_connects_every_time() {
        let url = std::env::var("TEST_BERTH_REDIS_URL").expect(
            "TEST_BERTH_REDIS_URL is not set: run the README's test command (scripts/test), which starts Redis",
        );
        for i in 0..40 {
            let started = std::time::Instant::now();
            let pool = connect_redis(&url).await.unwrap_or_else(|e| panic!("attempt {i}: {e:#}"));
            assert!(pool.clients().iter().all(|c| c.is_connected()));
            assert!(started.elapsed() < Duration::from_secs(2), "attempt {i} took {:?}", started.elapsed());
            pool.quit().await.unwrap();
        }
        // A port nobody listens on is refused at once, with the reason.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let started = std::time::Instant::now();
        let err = connect_redis(&format!("redis://127.0.0.1:{port}/0")).await.err().unwrap().to_string();
        assert!(
            err.starts_with(&format!("redis.url: no connection to redis://127.0.0.1:{port}/0: ")),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }
}

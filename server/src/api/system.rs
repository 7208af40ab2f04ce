//! Operations endpoints: ping, health (readiness with per-component status: core, database,
//! storage, redis and every supervised background loop, see `supervisor`), systeminfo.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};
use tower_sessions_redis_store::fred::prelude::ClientLike;

use crate::api::error::ApiError;
use crate::auth::Caller;
use crate::state::AppState;

pub use app::rest::SystemInfo;

#[utoipa::path(get, path = "/ping", tag = "ping", responses((status = 200, body = String)))]
pub async fn ping() -> &'static str {
    "Pong"
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

fn component(name: &str, result: Result<(), String>) -> Value {
    match result {
        Ok(()) => json!({ "name": name, "status": "healthy" }),
        Err(e) => json!({ "name": name, "status": "unhealthy", "error": e }),
    }
}

async fn with_timeout<F: std::future::Future<Output = Result<(), String>>>(f: F) -> Result<(), String> {
    tokio::time::timeout(CHECK_TIMEOUT, f).await.unwrap_or_else(|_| Err("timed out".into()))
}

/// Readiness: 200 when every dependency answers, 503 otherwise (same body shape as Harbor's
/// `/api/v2.0/health`); supervised background loops are listed too and only change the body. Load balancers use this; `/api/v2.0/ping` is the liveness probe.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, body = Object), (status = 503, body = Object)))]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let mut components = vec![json!({ "name": "core", "status": "healthy" })];
    let db = with_timeout(async { state.db.ping().await.map_err(|e| e.to_string()) }).await;
    components.push(component("database", db));
    let storage = with_timeout(storage_probe(state.storage.as_ref())).await;
    components.push(component("storage", storage));
    if let Some(redis) = &state.redis {
        let r =
            with_timeout(async { redis.ping::<String>(None).await.map(|_| ()).map_err(|e| e.to_string()) })
                .await;
        components.push(component("redis", r));
    }
    // Readiness is what requests need: the dependencies above. A background loop that keeps
    // failing (job runner, audit writer, purges, ...) makes the answer `unhealthy` and is named in
    // its components, but does not take the replica out of rotation: it still serves pushes and
    // pulls, and an hourly purge failing three times would otherwise empty a load balancer.
    let ready = components.iter().all(|c| c["status"] == "healthy");
    components.extend(state.supervisor.components());
    let healthy = components.iter().all(|c| c["status"] == "healthy");
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({ "status": if healthy { "healthy" } else { "unhealthy" }, "components": components });
    (status, Json(body))
}

/// Writes, reads back and removes a small object through the storage backend. Each probe has a
/// directory of its own (`_health/<uuid>/probe`): removing a probe removes only its directory,
/// never one a concurrent probe is writing into (shared `_health/` made probes fail each other).
async fn storage_probe(storage: &dyn crate::storage::Storage) -> Result<(), String> {
    let key = format!("_health/{}/probe", uuid::Uuid::new_v4().simple());
    let payload = bytes::Bytes::from_static(b"berth health probe");
    storage.put(&key, payload.clone()).await.map_err(|e| format!("write: {e}"))?;
    let back = storage.read_all(&key).await.map_err(|e| format!("read: {e}"));
    let _ = storage.delete(&key).await;
    if back? != payload {
        return Err("read back different bytes".into());
    }
    Ok(())
}

#[utoipa::path(get, path = "/systeminfo", tag = "systeminfo", responses((status = 200, body = Object)))]
pub async fn systeminfo(State(state): State<AppState>, caller: Result<Caller, ApiError>) -> Json<SystemInfo> {
    let c = &state.config;
    let settings =
        crate::settings::load(&state.db, c).await.unwrap_or_else(|_| crate::settings::Settings::defaults(c));
    let mut info = SystemInfo {
        auth_mode: settings.auth_mode.as_str().into(),
        primary_auth_mode: false,
        self_registration: settings.self_registration,
        harbor_version: concat!("v", env!("CARGO_PKG_VERSION"), "-berth").into(),
        banner_message: String::new(),
        // Harbor names the provider only in OIDC mode (the sign-in page's "log in with" button).
        oidc_provider_name: if settings.auth_mode == crate::settings::AuthMode::Oidc {
            settings.oidc.name.clone()
        } else {
            String::new()
        },
        ..Default::default()
    };
    // Anonymous callers (and failed credentials) see only what the sign-in page needs.
    if matches!(caller, Ok(Caller { principal: Some(_), .. })) {
        info = SystemInfo {
            external_url: Some(c.external_base().to_string()),
            registry_url: Some(c.registry_host()),
            project_creation_restriction: Some(settings.project_creation_restriction.clone()),
            has_ca_root: Some(false),
            read_only: Some(false),
            with_chartmuseum: Some(false),
            notification_enable: Some(false),
            registry_storage_provider_name: Some(c.storage.kind.clone()),
            database_type: Some(state.db.kind.name().into()),
            session_store: Some(if state.redis.is_some() { "redis" } else { "database" }.into()),
            current_time: Some(crate::db::rfc3339(crate::db::now_ms())),
            ..info
        };
    }
    Json(info)
}

/// `GET /api/v2.0/systeminfo/volumes` (system admins): total and free bytes of the filesystem
/// holding the blob store (Harbor's `SystemInfo`; free is what an unprivileged writer may use).
/// Harbor reports its local disk only; with S3 storage there is no such volume here: 404.
#[utoipa::path(get, path = "/systeminfo/volumes", tag = "systeminfo",
    responses((status = 200, body = Object), (status = 401), (status = 403), (status = 404)))]
pub async fn volumes(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require_sysadmin()?;
    if state.config.storage.kind != "filesystem" {
        return Err(ApiError::NotFound(format!(
            "the blob store is {}, not a local volume; its capacity is the provider's",
            state.config.storage.kind
        )));
    }
    let path = state.config.storage.path.clone();
    let (total, free) =
        tokio::task::spawn_blocking(move || capacity(&path)).await.map_err(ApiError::internal)?.map_err(
            |e| ApiError::internal(anyhow::anyhow!("statvfs {}: {e}", state.config.storage.path.display())),
        )?;
    Ok(Json(json!({ "storage": [{ "total": total, "free": free }] })))
}

/// (total, available) bytes of the filesystem holding `path`.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // the field types differ between platforms
pub fn capacity(path: &std::path::Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `st` is written by statvfs before it is read.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    let frsize = st.f_frsize as u64;
    Ok((st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize))
}

#[cfg(not(unix))]
pub fn capacity(_path: &std::path::Path) -> std::io::Result<(u64, u64)> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "volumes are reported on Unix only"))
}

#[cfg(test)]
mod tests {
    /// Concurrent probes (several load balancers, several replicas on one mount) never fail
    /// each other.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_storage_probes_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let storage = std::sync::Arc::new(crate::storage::fs::FsStorage::new(dir.path()).unwrap());
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let s = storage.clone();
                tokio::spawn(async move {
                    for _ in 0..1000 {
                        super::storage_probe(s.as_ref()).await?;
                    }
                    Ok::<_, String>(())
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    }
}

//! The listener: plain HTTP or rustls, graceful shutdown on SIGTERM/SIGINT (in-flight requests
//! get `SHUTDOWN_GRACE` to finish), and the periodic cleanup of expired sessions.

use std::net::SocketAddr;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use axum_server::Handle;

use crate::router::{router, SHUTDOWN_GRACE};
use crate::sessions::{SqlStore, Store};
use crate::state::AppState;

/// Serves until a shutdown signal. `on_listening` gets the bound address (port 0 resolves).
pub async fn serve(
    state: AppState,
    on_listening: impl FnOnce(SocketAddr) + Send + 'static,
) -> anyhow::Result<()> {
    let cfg = state.config.clone();
    let (pulls, audit, db) = (state.pulls.clone(), state.audit.clone(), state.db.clone());
    if let Store::Sql(store) = &state.sessions {
        tokio::spawn(expire_sessions(store.clone()));
    }
    tokio::spawn(state.pulls.clone().run(state.db.clone()));
    tokio::spawn(state.audit.clone().run(state.db.clone()));
    tokio::spawn(crate::audit::purge_loop(state.db.clone(), cfg.audit.retention_days));
    tokio::spawn(crate::accounts::purge_login_failures_loop(state.db.clone(), cfg.auth.clone()));
    tokio::spawn(crate::jobs::run_loop(state.clone(), state.jobs_wake.clone()));
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let handle = Handle::new();
    tokio::spawn(shutdown_on_signal(handle.clone()));
    {
        let handle = handle.clone();
        tokio::spawn(async move {
            if let Some(addr) = handle.listening().await {
                on_listening(addr);
            }
        });
    }
    match (&cfg.tls.cert, &cfg.tls.key) {
        (Some(cert), Some(key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|e| anyhow::anyhow!("tls.cert/tls.key: {e}"))?;
            axum_server::bind_rustls(cfg.listen, tls).handle(handle).serve(app).await?;
        }
        _ => {
            axum_server::bind(cfg.listen).handle(handle).serve(app).await?;
        }
    }
    // Counts and audit rows of the last second.
    if let Err(e) = pulls.flush(&db).await {
        tracing::warn!(error = %e, "could not record the last pulls");
    }
    if let Err(e) = audit.flush(&db).await {
        tracing::error!(error = %e, "could not write the last audit rows");
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_on_signal(handle: Handle) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown signal received; finishing in-flight requests");
    handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
}

async fn expire_sessions(store: SqlStore) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        match store.delete_expired().await {
            Ok(n) if n > 0 => tracing::debug!(deleted = n, "expired sessions removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "expired-session cleanup failed"),
        }
    }
}

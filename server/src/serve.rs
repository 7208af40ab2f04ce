//! The listener: plain HTTP or rustls, graceful shutdown on SIGTERM/SIGINT (in-flight requests
//! get `SHUTDOWN_GRACE` to finish), and the start of the background loops under the
//! supervisor (`start_loops`; among them the periodic cleanup of expired sessions).
//!
//! **No client can hold a connection for free** (`[http]`): a request head must arrive within
//! `header_read_timeout` of the connection waiting for it (hyper's timer, which also ends idle
//! keep-alive connections), a request body may pause at most `body_read_timeout`, and at most
//! `max_connections` are open at once — one more is answered 503 at once and closed
//! (`LimitAcceptor`), so a flood of half-sent requests cannot run the process out of file
//! descriptors.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum_server::accept::{Accept, DefaultAcceptor};
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::router::{router, SHUTDOWN_GRACE};
use crate::sessions::{SqlStore, Store};
use crate::state::AppState;
use crate::supervisor::Beat;

/// Serves until a shutdown signal. `on_listening` gets the bound address (port 0 resolves).
pub async fn serve(
    state: AppState,
    on_listening: impl FnOnce(SocketAddr) + Send + 'static,
) -> anyhow::Result<()> {
    let cfg = state.config.clone();
    let (pulls, audit, db) = (state.pulls.clone(), state.audit.clone(), state.db.clone());
    start_loops(&state);
    {
        // Temporary files a killed predecessor left behind (GC sweeps them too).
        let storage = state.storage.clone();
        tokio::spawn(async move {
            match storage.sweep_temp(crate::storage::TEMP_MAX_AGE).await {
                Ok(n) if n > 0 => tracing::info!(removed = n, "orphaned temporary files removed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not sweep temporary files"),
            }
        });
    }
    let body_timeout = cfg.http.body_read_timeout;
    if cfg.metric.enabled && cfg.metric.port != 0 {
        // Metrics on a port of their own: only `metric.path`, plain HTTP.
        let addr = SocketAddr::new(cfg.listen.ip(), cfg.metric.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("metric.port: cannot listen on {addr}: {e}"))?;
        let metrics_app = axum::Router::new()
            .route(&cfg.metric.path, axum::routing::get(crate::metrics::handler))
            .with_state(state.clone());
        tracing::info!(%addr, path = cfg.metric.path, "metrics listener");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, metrics_app).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    let app = router(state)
        .layer(axum::middleware::map_request(move |req: axum::extract::Request| async move {
            req.map(|b| Body::new(tower_http::timeout::TimeoutBody::new(body_timeout, b)))
        }))
        .into_make_service_with_connect_info::<SocketAddr>();
    let limit = LimitAcceptor::new(cfg.http.max_connections);
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
            let acceptor = RustlsAcceptor::new(tls).acceptor(limit.tls());
            let mut server = axum_server::bind(cfg.listen).acceptor(acceptor);
            configure_http(server.http_builder(), &cfg.http);
            server.handle(handle).serve(app).await?;
        }
        _ => {
            let mut server = axum_server::bind(cfg.listen).acceptor(limit);
            configure_http(server.http_builder(), &cfg.http);
            server.handle(handle).serve(app).await?;
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

/// Starts the background loops under the state's supervisor (restarted when they fail,
/// reported in `/api/v2.0/health`).
pub fn start_loops(state: &AppState) {
    let sup = &state.supervisor;
    if let Store::Sql(store) = &state.sessions {
        let store = store.clone();
        sup.spawn("session_expiry", move |beat| expire_sessions(store.clone(), beat));
    }
    let (db, pulls, audit) = (state.db.clone(), state.pulls.clone(), state.audit.clone());
    sup.spawn("pull_counter", move |beat| pulls.clone().run(db.clone(), beat));
    let db = state.db.clone();
    sup.spawn("audit_writer", move |beat| audit.clone().run(db.clone(), beat));
    let (db, days) = (state.db.clone(), state.config.audit.retention_days);
    sup.spawn("audit_purge", move |beat| crate::audit::purge_loop(db.clone(), days, beat));
    let (db, auth) = (state.db.clone(), state.config.auth.clone());
    sup.spawn("login_failure_purge", move |beat| {
        crate::accounts::purge_login_failures_loop(db.clone(), auth.clone(), beat)
    });
    let st = state.clone();
    sup.spawn("registry_health", move |beat| crate::replication::health::run(st.clone(), beat));
    let st = state.clone();
    sup.spawn("job_runner", move |beat| crate::jobs::run_loop(st.clone(), st.jobs_wake.clone(), beat));
    if state.config.metric.enabled {
        sup.spawn("metrics_upkeep", crate::metrics::upkeep_loop);
    }
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

async fn expire_sessions(store: SqlStore, beat: Beat) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        match store.delete_expired().await {
            Ok(n) => {
                beat.ok();
                if n > 0 {
                    tracing::debug!(deleted = n, "expired sessions removed");
                }
            }
            Err(e) => {
                beat.failed(&e);
                tracing::warn!(error = %e, "expired-session cleanup failed");
            }
        }
    }
}

fn configure_http(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    cfg: &crate::config::HttpConfig,
) {
    // hyper starts the header timer when the connection begins waiting for a request head, so
    // it bounds both a slowly sent head and an idle keep-alive connection. It needs a timer.
    builder.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(cfg.header_read_timeout);
    // HTTP/2 (prior knowledge or ALPN): dead peers are found by pings.
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Some(cfg.header_read_timeout))
        .keep_alive_timeout(Duration::from_secs(20));
}

/// The body of the answer an over-limit client reads before its connection is closed.
const REFUSAL_BODY: &str =
    r#"{"errors":[{"code":"UNAVAILABLE","message":"too many open connections; retry later","detail":null}]}"#;

/// Refusals answered at once at most (each holds its socket for a moment); beyond that an
/// over-limit connection is closed without an answer.
const MAX_REFUSALS: usize = 64;

/// Caps open connections: each accepted connection holds a permit until it is closed; one
/// more is answered 503 and closed (plain HTTP) or just closed (TLS, where a plain answer
/// would be noise), instead of the process running out of file descriptors.
#[derive(Clone)]
pub struct LimitAcceptor<A = DefaultAcceptor> {
    inner: A,
    permits: Arc<Semaphore>,
    refusals: Arc<Semaphore>,
    plain: bool,
    refused: Arc<std::sync::atomic::AtomicU64>,
}

impl LimitAcceptor {
    pub fn new(max_connections: usize) -> Self {
        LimitAcceptor {
            inner: DefaultAcceptor,
            permits: Arc::new(Semaphore::new(max_connections)),
            refusals: Arc::new(Semaphore::new(MAX_REFUSALS)),
            plain: true,
            refused: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    /// The same limit in front of a TLS handshake.
    fn tls(mut self) -> Self {
        self.plain = false;
        self
    }
}

impl<A, S> Accept<TcpStream, S> for LimitAcceptor<A>
where
    A: Accept<Counted, S> + Clone + Send + Sync + 'static,
    A::Future: Send + 'static,
    S: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<(A::Stream, A::Service)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Box::pin(self.inner.accept(Counted { inner: stream, _permit: permit }, service)),
            Err(_) => {
                let n = self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n.is_multiple_of(1000) {
                    tracing::warn!(
                        refused = n + 1,
                        "connection limit (http.max_connections) reached; refusing connections"
                    );
                }
                let (plain, refusals) = (self.plain, self.refusals.clone());
                Box::pin(async move {
                    if plain {
                        if let Ok(_slot) = refusals.try_acquire() {
                            refuse(stream).await;
                        }
                    }
                    Err(std::io::Error::other("connection limit reached"))
                })
            }
        }
    }
}

/// Answers 503 and closes: reads what the client already sent (so closing does not reset the
/// connection before the answer is read), writes the answer, closes the sending side.
async fn refuse(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tokio::time::timeout(Duration::from_millis(250), async {
        let mut buf = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf)).await;
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n\
             Connection: close\r\nContent-Length: {}\r\n\r\n{REFUSAL_BODY}",
            REFUSAL_BODY.len()
        );
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        // Wait briefly for the client to close after reading the answer.
        while stream.read(&mut buf).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// A connection counted against `http.max_connections` until it is dropped.
pub struct Counted {
    inner: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

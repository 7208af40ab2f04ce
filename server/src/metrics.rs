//! Prometheus metrics (`[metric]`, Harbor's `metric.enabled/port/path`), with the `metrics`
//! facade and `metrics-exporter-prometheus`'s recorder (no listener of its own: we serve the
//! text ourselves, on the main listener or on `metric.port`).
//!
//! - **Recorded as things happen** (`counter!`/`histogram!`, no-ops until [`install`] runs):
//!   `berth_http_requests_total{surface,method,status}` and
//!   `berth_http_request_duration_seconds{surface,method}` (time to the response head; [`track`]),
//!   `berth_registry_operations_total{resource,method,status}`,
//!   `berth_registry_bytes_received_total` / `_sent_total` (`registry`),
//!   `berth_tokens_issued_total{kind}` (`token`), `berth_jobs_total{kind,status}` and
//!   `berth_job_duration_seconds{kind,status}` (`jobs`), `berth_gc_freed_bytes_total`,
//!   `berth_gc_deleted_blobs_total` (`gc`).
//! - **Read at scrape time** from the database ([`render`], cached [`SCRAPE_TTL`] per
//!   process so a fast scraper cannot load the database): `berth_jobs_queued{kind,status}`,
//!   `berth_db_pool_connections{state}`, and Harbor's exporter names `harbor_up`,
//!   `harbor_project_total{public}`, `harbor_project_repo_total{project_name,public}`,
//!   `harbor_project_member_total{project_name}`, `harbor_project_quota_usage_byte` and
//!   `harbor_project_quota_byte{project_name}`, `harbor_artifact_pulled{project_name}`. Written
//!   as text at each scrape, so a deleted project leaves no stale series.
//!
//! Label values are bounded sets (surfaces, methods, status codes, job kinds) except project
//! names, one series per project as in Harbor's exporter.

use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::db::Db;
use crate::state::AppState;

/// The database part of a scrape is reused for this long.
pub const SCRAPE_TTL: Duration = Duration::from_secs(10);

const BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return the same handle).
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; berth's metrics go to it");
            }
            handle
        })
        .clone()
}

/// Which client a path belongs to (the `surface` label).
pub fn surface(path: &str) -> &'static str {
    if path == "/v2" || path.starts_with("/v2/") {
        "registry"
    } else if path.starts_with("/service/token") || path == "/.well-known/jwks.json" {
        "token"
    } else if path.starts_with("/api/") || path.starts_with("/c/") {
        "api"
    } else if path.starts_with("/pkg/") {
        "assets"
    } else {
        "portal"
    }
}

/// A bounded `method` label.
pub fn method(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: counts every request and times it to its response head.
pub async fn track(req: Request, next: Next) -> Response {
    let surface = surface(req.uri().path());
    let method = method(req.method());
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    if HANDLE.get().is_some() {
        REQUESTS.with(|m| {
            let mut m = m.borrow_mut();
            let (count, time) = m.entry((surface, method, status)).or_insert_with(|| {
                (
                    metrics::counter!("berth_http_requests_total", "surface" => surface, "method" => method,
                        "status" => status.to_string()),
                    metrics::histogram!("berth_http_request_duration_seconds", "surface" => surface, "method" => method),
                )
            });
            count.increment(1);
            time.record(start.elapsed().as_secs_f64());
        });
    }
    resp
}

type Labels = (&'static str, &'static str, u16);

// Handles of the hottest series, per thread: looking a series up in the recorder builds and
// hashes its key (label strings included) on every call, which cost ~8 % of the manifest GET
// rate at 10k requests/s (bench/metrics.sh). The label sets are bounded (surfaces, methods,
// resources, status codes), so the maps are too.
thread_local! {
    static REQUESTS: std::cell::RefCell<std::collections::HashMap<Labels, (metrics::Counter, metrics::Histogram)>> =
        Default::default();
    static OPERATIONS: std::cell::RefCell<std::collections::HashMap<Labels, metrics::Counter>> = Default::default();
    static BYTES: std::cell::OnceCell<(metrics::Counter, metrics::Counter)> = const { std::cell::OnceCell::new() };
}

/// Counts a registry operation (`berth_registry_operations_total`); nothing without a recorder.
pub fn count_operation(resource: &'static str, method: &'static str, status: u16) {
    if HANDLE.get().is_none() {
        return;
    }
    OPERATIONS.with(|m| {
        m.borrow_mut()
            .entry((resource, method, status))
            .or_insert_with(|| {
                metrics::counter!("berth_registry_operations_total", "resource" => resource, "method" => method,
                    "status" => status.to_string())
            })
            .increment(1)
    });
}

/// Adds to `berth_registry_bytes_sent_total` (`sent`) or `…_received_total`.
pub fn count_bytes(sent: bool, n: u64) {
    if HANDLE.get().is_none() {
        return;
    }
    BYTES.with(|b| {
        let (s, r) = b.get_or_init(|| {
            (
                metrics::counter!("berth_registry_bytes_sent_total"),
                metrics::counter!("berth_registry_bytes_received_total"),
            )
        });
        if sent { s } else { r }.increment(n);
    });
}

/// `GET metric.path`: the recorder's series and the scrape-time ones.
pub async fn handler(State(state): State<AppState>) -> Response {
    let Some(handle) = HANDLE.get() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    handle.run_upkeep();
    let mut text = handle.render();
    text.push_str(&scraped(&state.db, &state.metrics_cache).await);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// The database part of the last scrape and when it was read (one per state: per replica).
#[derive(Debug, Default)]
pub struct ScrapeCache(Mutex<Option<(Instant, String)>>);

/// The database part, cached `SCRAPE_TTL`.
async fn scraped(db: &Db, cache: &ScrapeCache) -> String {
    if let Some((at, text)) = cache.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        if at.elapsed() < SCRAPE_TTL {
            return text.clone();
        }
    }
    let text = match from_database(db).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the database did not answer");
            let mut t = String::new();
            family(&mut t, "harbor_up", "gauge", "Whether a component is up (1) or down (0).");
            let _ = writeln!(t, "harbor_up{{component=\"core\"}} 1\nharbor_up{{component=\"database\"}} 0");
            pool_lines(&mut t, db);
            return t;
        }
    };
    *cache.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), text.clone()));
    text
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value in the text format: `\`, `"` and newlines escaped.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn pool_lines(out: &mut String, db: &Db) {
    let (size, idle) = (db.pool.size() as usize, db.pool.num_idle());
    family(out, "berth_db_pool_connections", "gauge", "Database pool connections by state.");
    let _ = writeln!(
        out,
        "berth_db_pool_connections{{state=\"in_use\"}} {}\nberth_db_pool_connections{{state=\"idle\"}} {idle}",
        size.saturating_sub(idle)
    );
}

async fn from_database(db: &Db) -> Result<String, sqlx::Error> {
    let mut out = String::new();
    family(&mut out, "harbor_up", "gauge", "Whether a component is up (1) or down (0).");
    let _ = writeln!(out, "harbor_up{{component=\"core\"}} 1\nharbor_up{{component=\"database\"}} 1");
    pool_lines(&mut out, db);

    let queued: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT kind, status, COUNT(*) FROM jobs WHERE status IN ('pending', 'running') GROUP BY kind, status",
    )
    .fetch_all(&db.pool)
    .await?;
    family(&mut out, "berth_jobs_queued", "gauge", "Jobs pending or running, by kind.");
    for (kind, status, n) in queued {
        let _ = writeln!(
            out,
            "berth_jobs_queued{{kind=\"{}\",status=\"{}\"}} {n}",
            escape(&kind),
            escape(&status)
        );
    }

    let projects: Vec<(i64, String, crate::db::Flag, i64, i64, i64)> = sqlx::query_as(
        "SELECT p.id, p.name, p.public, \
         (SELECT COUNT(*) FROM repositories r WHERE r.project_id = p.id), \
         (SELECT COUNT(*) FROM project_members m WHERE m.project_id = p.id), \
         CAST(COALESCE((SELECT SUM(a.pull_count) FROM artifacts a JOIN repositories r ON r.id = a.repository_id \
             WHERE r.project_id = p.id), 0) AS BIGINT) \
         FROM projects p ORDER BY p.name",
    )
    .fetch_all(&db.pool)
    .await?;
    let public = projects.iter().filter(|p| bool::from(p.2)).count();
    family(&mut out, "harbor_project_total", "gauge", "Projects, by visibility.");
    let _ = writeln!(
        out,
        "harbor_project_total{{public=\"true\"}} {public}\nharbor_project_total{{public=\"false\"}} {}",
        projects.len() - public
    );
    family(&mut out, "harbor_project_repo_total", "gauge", "Repositories of each project.");
    for (_, name, p, repos, _, _) in &projects {
        let _ = writeln!(
            out,
            "harbor_project_repo_total{{project_name=\"{}\",public=\"{}\"}} {repos}",
            escape(name),
            bool::from(*p)
        );
    }
    family(&mut out, "harbor_project_member_total", "gauge", "Members (users and groups) of each project.");
    for (_, name, _, _, members, _) in &projects {
        let _ = writeln!(out, "harbor_project_member_total{{project_name=\"{}\"}} {members}", escape(name));
    }
    family(&mut out, "harbor_artifact_pulled", "gauge", "Pulls of the artifacts of each project.");
    for (_, name, _, _, _, pulls) in &projects {
        let _ = writeln!(out, "harbor_artifact_pulled{{project_name=\"{}\"}} {pulls}", escape(name));
    }

    let (quotas, _) = crate::quota::list(db, None, crate::quota::Sort::Id, 1, u32::MAX as u64).await?;
    family(
        &mut out,
        "harbor_project_quota_usage_byte",
        "gauge",
        "Storage each project uses (each blob once).",
    );
    for q in &quotas {
        let _ = writeln!(
            out,
            "harbor_project_quota_usage_byte{{project_name=\"{}\"}} {}",
            escape(&q.project_name),
            q.used
        );
    }
    family(&mut out, "harbor_project_quota_byte", "gauge", "Storage limit of each project (-1: unlimited).");
    for q in &quotas {
        let _ = writeln!(
            out,
            "harbor_project_quota_byte{{project_name=\"{}\"}} {}",
            escape(&q.project_name),
            q.hard
        );
    }
    Ok(out)
}

/// Keeps the recorder's histograms drained while nobody scrapes.
pub async fn upkeep_loop(beat: crate::supervisor::Beat) -> anyhow::Result<()> {
    loop {
        if let Some(h) = HANDLE.get() {
            h.run_upkeep();
        }
        beat.ok();
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surfaces_and_escaping() {
        assert_eq!(surface("/v2/"), "registry");
        assert_eq!(surface("/v2/p/app/manifests/v1"), "registry");
        assert_eq!(surface("/v2x"), "portal");
        assert_eq!(surface("/service/token"), "token");
        assert_eq!(surface("/api/v2.0/projects"), "api");
        assert_eq!(surface("/c/login"), "api");
        assert_eq!(surface("/pkg/app.wasm"), "assets");
        assert_eq!(surface("/harbor/projects"), "portal");
        assert_eq!(method(&Method::from_bytes(b"PROPFIND").unwrap()), "other");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}

//! Prometheus metrics (`[metric]`): off by default (the path is the portal's 404); on, a push
//! shows in the HTTP, registry, byte and token series, and Harbor's exporter names describe the
//! projects (repositories, members, quota usage and limit). The recorder is process-wide, so
//! counters are compared before and after, and projects have names no other test uses.
//! SQLite and PostgreSQL.

use crate::common::oci::{admin, push_image};
use crate::common::{api, TestApp};
use axum::http::{Method, StatusCode};
use serde_json::json;

const ON: &str = "[metric]\nenabled = true";

/// The value of the first sample whose line starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The sum of every sample of `name` whose labels contain all of `labels`.
fn sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn scrape(app: &TestApp) -> String {
    let r = app.get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    r.text()
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let app = TestApp::new(crate::common::DbChoice::Sqlite).await;
    let r = app.get("/metrics").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!r.text().contains("berth_http_requests_total"));
}

both_dbs!(a_push_shows_in_the_metrics_and_harbors_names_describe_projects, toml = ON, |app| {
    let name = format!("metrics-{}", uuid::Uuid::new_v4().simple());
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/projects",
        &admin(),
        json!({"project_name": name, "storage_limit": 1 << 30}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let before = scrape(&app).await;
    let put = |t: &str| {
        sum(t, "berth_http_requests_total", &["surface=\"registry\"", "method=\"PUT\"", "status=\"201\""])
    };
    let ops = |t: &str| {
        sum(
            t,
            "berth_registry_operations_total",
            &["resource=\"manifest\"", "method=\"PUT\"", "status=\"201\""],
        )
    };
    let received = |t: &str| sample(t, "berth_registry_bytes_received_total").unwrap_or(0.0);
    let sent = |t: &str| sample(t, "berth_registry_bytes_sent_total").unwrap_or(0.0);
    let layer = vec![7u8; 4096];
    let (digest, _) = push_image(&app, &format!("{name}/app"), "v1", &[&layer]).await;
    let r = app
        .call(
            Method::GET,
            &format!("/v2/{name}/app/blobs/{}", crate::common::oci::sha256(&layer)),
            &[("authorization", &admin())],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .call(
            Method::GET,
            &format!("/api/v2.0/projects/{name}/repositories/app/artifacts/{digest}"),
            &[("authorization", &admin())],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .call(Method::GET, "/service/token?service=harbor-registry&scope=repository:x/y:pull", &[], "")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // The database part of a scrape is cached per replica: wait it out.
    tokio::time::sleep(server::metrics::SCRAPE_TTL).await;
    let after = scrape(&app).await;
    assert!(put(&after) - put(&before) >= 1.0, "the manifest PUT is counted");
    assert!(ops(&after) - ops(&before) >= 1.0, "the registry operation is counted");
    assert!(received(&after) - received(&before) >= 4096.0, "the layer's bytes are counted as received");
    assert!(sent(&after) - sent(&before) >= 4096.0, "the blob GET's bytes are counted as sent");
    assert!(sum(&after, "berth_tokens_issued_total", &["kind=\"anonymous\""]) >= 1.0);
    assert!(
        sum(&after, "berth_http_request_duration_seconds_count", &["surface=\"api\"", "method=\"GET\""])
            >= 1.0
    );
    let p = format!("project_name=\"{name}\"");
    assert_eq!(
        sample(&after, &format!("harbor_project_repo_total{{{p},public=\"false\"}}")),
        Some(1.0),
        "{after}"
    );
    assert_eq!(sample(&after, &format!("harbor_project_member_total{{{p}}}")), Some(1.0));
    assert_eq!(sample(&after, &format!("harbor_project_quota_byte{{{p}}}")), Some((1u64 << 30) as f64));
    let used = sample(&after, &format!("harbor_project_quota_usage_byte{{{p}}}")).unwrap();
    assert!(used >= 4096.0, "{used}");
    assert!(sample(&after, "harbor_project_total{public=\"false\"}").unwrap() >= 1.0);
    assert_eq!(sample(&after, "harbor_up{component=\"database\"}"), Some(1.0));
    assert!(sample(&after, "berth_db_pool_connections{state=\"idle\"}").is_some());
    assert!(after.contains("# TYPE berth_jobs_queued gauge"));
});

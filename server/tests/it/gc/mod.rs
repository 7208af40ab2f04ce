//! Deletion and garbage collection through the real router: logical deletes, GC runs (dry and
//! real) through `/api/v2.0/system/gc`, the status protocol against racing pushes, abandoned
//! uploads, schedules firing once across replicas, the job queue taking back a dead replica's
//! job, and storage usage. GC runs on SQLite and PostgreSQL with filesystem storage and on
//! PostgreSQL with S3 (Garage). `sweep`: what a run deletes and keeps; `runs`: the API, the
//! job queue and pushes racing a run; `usage`: storage usage.

use crate::common::oci::{
    admin, close_upload, patch_upload, push_blob, push_image, put_manifest, sha256, start_upload, OCI_INDEX,
    OCI_MANIFEST,
};
use crate::common::{basic, TestApp};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

/// A window of 0: everything unreferenced is collectable at once.
const NOW: &str = "[gc]\nwindow = \"0s\"\n";

fn blob_key(digest: &str) -> String {
    let hex = digest.trim_start_matches("sha256:");
    format!("blobs/sha256/{}/{hex}/data", &hex[..2])
}

async fn stored(app: &TestApp, digest: &str) -> bool {
    app.state.storage.stat(&blob_key(digest)).await.unwrap().is_some()
}

async fn api(app: &TestApp, method: Method, path: &str, body: Value) -> crate::common::Resp {
    app.call(
        method,
        path,
        &[("authorization", &admin()), ("content-type", "application/json")],
        body.to_string(),
    )
    .await
}

/// Starts a GC through the API and runs it on this "replica"; returns the finished run.
async fn gc(app: &TestApp, dry_run: bool, delete_untagged: bool) -> Value {
    let r = api(
        app,
        Method::POST,
        "/api/v2.0/system/gc/schedule",
        json!({"schedule": {"type": "Manual"}, "parameters": {"dry_run": dry_run, "delete_untagged": delete_untagged}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let loc = r.header("location").unwrap().to_string();
    server::jobs::tick(&app.state, "test-worker").await.unwrap();
    let r = app.get_with(&loc, &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::OK);
    let run = r.json();
    assert_eq!(run["job_status"], "Success", "{run}");
    run
}

fn report(run: &Value) -> (u64, u64, u64, u64) {
    let r = &run["result"];
    (
        r["blobs"].as_u64().unwrap(),
        r["manifests"].as_u64().unwrap(),
        r["bytes"].as_u64().unwrap(),
        r["artifacts"].as_u64().unwrap(),
    )
}

async fn pull(app: &TestApp, repo: &str, reference: &str) -> crate::common::Resp {
    app.get_with(&format!("/v2/{repo}/manifests/{reference}"), &[("authorization", &admin())]).await
}

async fn blob(app: &TestApp, repo: &str, digest: &str) -> crate::common::Resp {
    app.get_with(&format!("/v2/{repo}/blobs/{digest}"), &[("authorization", &admin())]).await
}

mod runs;
mod sweep;
mod usage;

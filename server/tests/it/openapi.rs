//! The OpenAPI document: pinned by a snapshot (run with `UPDATE_SNAPSHOTS=1` to accept a change),
//! and every documented operation is routed (none falls through to "no such API endpoint").

use crate::common::{basic, TestApp, ADMIN_PASSWORD};
use axum::http::{Method, StatusCode};

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/openapi.json");

#[tokio::test]
async fn openapi_document_matches_the_snapshot_and_the_router() {
    let app = TestApp::new(crate::common::DbChoice::Sqlite).await;
    let r = app.get("/api/v2.0/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    assert_eq!(doc["openapi"].as_str().map(|v| v.starts_with("3.")), Some(true));
    let pretty = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    if std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::write(SNAPSHOT, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        committed == pretty,
        "the OpenAPI document changed; review it and run `UPDATE_SNAPSHOTS=1 cargo test -p server --test it openapi`"
    );

    // Every documented operation reaches a handler: a fallback answers "no such API endpoint"
    // (404) or 405, a handler anything else (here mostly 404s for missing objects, 400s).
    let admin = basic("admin", ADMIN_PASSWORD);
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "patch", "head"] {
            if item.get(method).is_none() {
                continue;
            }
            let concrete = path
                .replace("{project_name_or_id}", "library")
                .replace("{repository_name}", "none")
                .replace("{reference}", "latest")
                .replace("{tag_name}", "latest")
                .replace("{meta_name}", "public")
                .replace("{user_id}", "999")
                .replace("{robot_id}", "999")
                .replace("{mid}", "999")
                .replace("{gc_id}", "999")
                .replace("{addition}", "manifest");
            assert!(!concrete.contains('{'), "unhandled parameter in {path}");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = app
                .call(
                    m,
                    &format!("/api/v2.0{concrete}"),
                    &[("authorization", &admin), ("content-type", "application/json")],
                    "{}",
                )
                .await;
            assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            if r.status == StatusCode::NOT_FOUND && !r.body.is_empty() {
                assert_ne!(r.error_code() + &r.text(), "NOT_FOUNDno such API endpoint", "{method} {path}");
                assert!(!r.text().contains("no such API endpoint"), "{method} {path} is not routed");
            }
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} operations documented");
}

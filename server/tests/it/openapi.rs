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

    // Every path parameter is in the path's template (a query struct without
    // `#[into_params(parameter_in = Query)]` is documented as `in: path`), and every template
    // variable is documented.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            for p in &params {
                if p["in"] == "path" {
                    let name = p["name"].as_str().unwrap();
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: {name} documented as a path parameter"
                    );
                }
            }
            for var in path.split('{').skip(1).filter_map(|s| s.split('}').next()) {
                assert!(
                    params.iter().any(|p| p["in"] == "path" && p["name"] == var),
                    "{method} {path}: the path parameter {var} is not documented"
                );
            }
        }
    }

    // Every documented operation reaches a handler: a fallback answers "no such API endpoint"
    // (404) or 405, a handler anything else (here mostly 404s for missing objects, 400s).
    let admin = basic("admin", ADMIN_PASSWORD);
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "patch", "head"] {
            if item.get(method).is_none() {
                continue;
            }
            let concrete = concrete(path);
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

fn concrete(path: &str) -> String {
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
        .replace("{task_id}", "999")
        .replace("{id}", "999")
        .replace("{group_id}", "999")
        .replace("{label_id}", "999")
        .replace("{immutable_rule_id}", "999")
        .replace("{eid}", "999")
        .replace("{purge_id}", "999")
        .replace("{pool_id}", "all")
        .replace("{job_id}", "999")
        .replace("{job_type}", "all")
        .replace("{tid}", "999")
        .replace("{webhook_policy_id}", "999")
        .replace("{execution_id}", "999")
        .replace("{addition}", "manifest");
    assert!(!concrete.contains('{'), "unhandled parameter in {path}");
    concrete
}

/// Every routed path and method is in the OpenAPI document, except `api::UNDOCUMENTED`: on a
/// documented path every other method answers 405 (HEAD is GET's), and the undocumented routes
/// answer only their listed methods. (That no other path is routed undocumented is checked on
/// the router's source, `api::tests::only_the_listed_exceptions_are_routed_without_documentation`.)
#[tokio::test]
async fn every_routed_operation_is_documented_or_a_listed_exception() {
    let app = TestApp::new(crate::common::DbChoice::Sqlite).await;
    let doc = app.get("/api/v2.0/openapi.json").await.json();
    let mut routed: Vec<(String, Vec<String>)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            (path.clone(), item.as_object().unwrap().keys().map(|m| m.to_uppercase()).collect())
        })
        .collect();
    for (method, path) in server::api::UNDOCUMENTED {
        assert!(doc["paths"].get(path).is_none(), "{path} is listed as undocumented but is in the document");
        match routed.iter_mut().find(|(p, _)| p == path) {
            Some((_, methods)) => methods.push(method.to_string()),
            None => routed.push((path.to_string(), vec![method.to_string()])),
        }
    }
    let admin = basic("admin", ADMIN_PASSWORD);
    let mut checked = 0;
    for (path, methods) in &routed {
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"] {
            let expected = methods.iter().any(|m| m == method)
                || (method == "HEAD" && methods.iter().any(|m| m == "GET"));
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let r = app
                .call(
                    m,
                    &format!("/api/v2.0{}", concrete(path)),
                    &[("authorization", &admin), ("content-type", "application/json")],
                    "{}",
                )
                .await;
            if expected {
                assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is not routed");
                assert!(!r.text().contains("no such API endpoint"), "{method} {path} is not routed");
            } else {
                assert_eq!(
                    r.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is routed but not documented"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 7 * 40, "only {checked} path/method pairs checked");
}

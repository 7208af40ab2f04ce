//! Replication end to end between two in-process instances over HTTP: the registry endpoint
//! stored through `/registries`, the `harbor` adapter and registry client, `LocalRegistry` and
//! `copy`, checked by digest on the other side. NOT YET LISTED in `main.rs`: it needs the
//! registry client, adapters, local registry and copy work merged (the lead enables it with
//! `mod replication_e2e;`).

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::oci::{admin, push_image};
use crate::common::{api, DbChoice, TestApp};

/// A second instance served on a socket of 127.0.0.1, its external URL set to it (the token
/// realm its challenges name).
async fn peer() -> (TestApp, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let peer = TestApp::builder(DbChoice::Sqlite).toml(&format!("external_url = \"{url}\"")).build().await;
    let router = peer.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (peer, url)
}

async fn register(app: &TestApp, url: &str) -> i64 {
    let body = json!({"name": "peer", "type": "harbor", "url": url, "insecure": true,
        "credential": {"type": "basic", "access_key": "admin", "access_secret": crate::common::ADMIN_PASSWORD}});
    let r = api(app, Method::POST, "/api/v2.0/registries", &admin(), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap()
}

async fn run_to_end(app: &TestApp, policy: i64) -> Value {
    let r = api(app, Method::POST, "/api/v2.0/replication/executions", &admin(), json!({"policy_id": policy})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let exec = r.header("location").unwrap().to_string();
    let until = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        server::jobs::tick(&app.state, "e2e").await.unwrap();
        let e = api(app, Method::GET, &exec, &admin(), Value::Null).await.json();
        if !["Pending", "InProgress"].contains(&e["status"].as_str().unwrap()) {
            return e;
        }
        assert!(std::time::Instant::now() < until, "run did not end: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn manifest_digest(app: &TestApp, repo: &str, reference: &str) -> Option<String> {
    let r = app
        .call(Method::HEAD, &format!("/v2/{repo}/manifests/{reference}"), &[("authorization", &admin())], vec![])
        .await;
    (r.status == StatusCode::OK).then(|| r.header("docker-content-digest").unwrap().to_string())
}

both_dbs!(push_and_pull_between_two_instances, |app| {
    let (peer, url) = peer().await;
    let reg = register(&app, &url).await;

    // Push-based: library/app:v1 here → the peer, byte for byte (same digest).
    let (digest, _) = push_image(&app, "library/app", "v1", &[b"layer one", b"layer two"]).await;
    let body = json!({"name": "push", "dest_registry": {"id": reg}, "enabled": true, "override": true,
        "filters": [{"type": "name", "value": "library/app"}]});
    let r = api(&app, Method::POST, "/api/v2.0/replication/policies", &admin(), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let push: i64 = r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap();
    let e = run_to_end(&app, push).await;
    assert_eq!((e["status"].as_str(), e["succeed"].as_i64()), (Some("Succeed"), Some(1)), "{e}");
    assert_eq!(manifest_digest(&peer, "library/app", "v1").await, Some(digest.clone()));
    // Nothing changed: the second run moves nothing and still succeeds.
    let e = run_to_end(&app, push).await;
    assert_eq!(e["status"], "Succeed", "{e}");

    // Pull-based: the peer's library/pulled:1 → here, under `mirror`.
    let (pulled, _) = push_image(&peer, "library/pulled", "1", &[b"peer layer"]).await;
    let r = api(&app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": "mirror"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let body = json!({"name": "pull", "src_registry": {"id": reg}, "enabled": true, "dest_namespace": "mirror",
        "filters": [{"type": "name", "value": "library/pulled"}]});
    let r = api(&app, Method::POST, "/api/v2.0/replication/policies", &admin(), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let pull: i64 = r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap();
    let e = run_to_end(&app, pull).await;
    assert_eq!((e["status"].as_str(), e["succeed"].as_i64()), (Some("Succeed"), Some(1)), "{e}");
    assert_eq!(manifest_digest(&app, "mirror/pulled", "1").await, Some(pulled));

    // Bad credentials: the task fails and its log says why.
    sqlx::query("UPDATE registries SET access_key = 'nobody' WHERE id = $1")
        .bind(reg)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let e = run_to_end(&app, push).await;
    assert_eq!(e["status"], "Failed", "{e}");
});

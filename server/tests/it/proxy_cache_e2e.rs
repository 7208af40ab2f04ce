//! Proxy cache end to end: the upstream is a second instance of this product served on a real
//! 127.0.0.1 port, the proxy project's upstream a registry endpoint created through
//! `/api/v2.0/registries` (credentials encrypted), so pulls go through the product's own
//! resolution (`endpoints::load`, `adapters::build`, the HTTP client with the token flow) and
//! the real `LocalRegistry`. Then the upstream stops and the cache answers alone.
//!
//! Needs the registries API, the HTTP client and the local registry of issue 20 (not listed in
//! `main.rs` on the proxy branch: the lead adds `mod proxy_cache_e2e;` after merging them).

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::oci::{admin, push_image, sha256, OCI_MANIFEST};
use crate::common::{api, DbChoice, TestApp, ADMIN_PASSWORD};

/// Serves `app` on `listener` until the returned sender fires.
fn serve(app: &TestApp, listener: tokio::net::TcpListener) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = app.router.clone().into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (stop, task)
}

async fn pull(app: &TestApp, repo: &str, tag: &str) -> String {
    let r = app.get_with(&format!("/v2/{repo}/manifests/{tag}"), &[("accept", OCI_MANIFEST)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let digest = r.header("docker-content-digest").unwrap().to_string();
    assert_eq!(sha256(&r.body), digest);
    let m = r.json();
    for b in std::iter::once(&m["config"]).chain(m["layers"].as_array().unwrap()) {
        let d = b["digest"].as_str().unwrap();
        let r = app.get(&format!("/v2/{repo}/blobs/{d}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(sha256(&r.body), d);
    }
    digest
}

async fn tag_digest(app: &TestApp, repo: &str, tag: &str) -> Option<String> {
    sqlx::query_scalar(
        "SELECT a.digest FROM tags t JOIN artifacts a ON a.id = t.artifact_id \
         JOIN repositories r ON r.id = t.repository_id WHERE r.name = $1 AND t.name = $2",
    )
    .bind(repo)
    .bind(tag)
    .fetch_optional(&app.state.db.pool)
    .await
    .unwrap()
}

async fn run(db: DbChoice, with_credentials: bool) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // The upstream's token realm must be its real address.
    let upstream = TestApp::builder(DbChoice::Sqlite)
        .toml(&format!("external_url = \"http://127.0.0.1:{port}\""))
        .build()
        .await;
    let layer = b"a layer pulled through the proxy ".repeat(40_000);
    let (digest, _) = push_image(&upstream, "library/alpine", "3", &[&layer]).await;
    let (stop, served) = serve(&upstream, listener);

    let proxy = TestApp::new(db).await;
    let mut reg = json!({"name": "upstream", "type": "docker-registry", "url": format!("http://127.0.0.1:{port}"), "insecure": true});
    if with_credentials {
        reg["credential"] = json!({"type": "basic", "access_key": "admin", "access_secret": ADMIN_PASSWORD});
    }
    let r = api(&proxy, Method::POST, "/api/v2.0/registries", &admin(), reg).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id: i64 = r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap();
    let body = json!({"project_name": "proxy", "registry_id": id, "metadata": {"public": "true"}});
    let r = api(&proxy, Method::POST, "/api/v2.0/projects", &admin(), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

    assert_eq!(pull(&proxy, "proxy/library/alpine", "3").await, digest);
    for _ in 0..200 {
        if tag_digest(&proxy, "proxy/library/alpine", "3").await.as_deref() == Some(digest.as_str()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(tag_digest(&proxy, "proxy/library/alpine", "3").await, Some(digest.clone()));

    // The upstream stops: the cache answers.
    stop.send(()).unwrap();
    served.await.unwrap();
    assert_eq!(pull(&proxy, "proxy/library/alpine", "3").await, digest);
    let r = proxy.get("/v2/proxy/library/alpine/manifests/never").await;
    assert!(r.status.is_server_error(), "{} {}", r.status, r.text());
    assert!(r.text().contains("upstream"), "{}", r.text());
}

#[tokio::test]
async fn anonymous_upstream_sqlite() {
    run(DbChoice::Sqlite, false).await;
}

#[tokio::test]
async fn upstream_with_credentials_sqlite() {
    run(DbChoice::Sqlite, true).await;
}

#[tokio::test]
async fn upstream_with_credentials_postgres() {
    run(DbChoice::Postgres, true).await;
}

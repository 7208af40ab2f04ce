//! Proxy-cache projects (a project with a `registry_id`): the projects API's `registry_id`,
//! pushes refused on every surface, and pulls through `/v2` answered from an upstream test
//! double (`MemoryContent`, injected with `ProxyCache::set_upstream_override`; the product
//! resolves upstreams from the `registries` table) and cached in the local registry.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use futures::StreamExt;
use serde_json::json;
use server::replication::memory::MemoryContent;
use server::replication::proxy::Upstream;
use tower::ServiceExt;

use crate::common::oci::{admin, image_manifest, sha256, OCI_INDEX, OCI_MANIFEST};
use crate::common::{api, basic, create_user, TestApp, PW};

/// A `registries` row (what the registries API would create); returns its id.
async fn registry_row(app: &TestApp, name: &str, url: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO registries (name, type, url, created_at, updated_at) \
         VALUES ($1, 'docker-registry', $2, 1, 1) RETURNING id",
    )
    .bind(name)
    .bind(url)
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap()
}

/// A public proxy project `proxy` whose upstream is `up` (Docker Hub's naming when `hub`).
async fn proxy_project(app: &TestApp, up: &Arc<MemoryContent>, hub: bool) -> i64 {
    let id = registry_row(app, "upstream", "http://127.0.0.1:9").await;
    let body = json!({"project_name": "proxy", "registry_id": id, "metadata": {"public": "true"}});
    let r = api(app, Method::POST, "/api/v2.0/projects", &admin(), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let up = up.clone();
    app.state.proxy.set_upstream_override(Arc::new(move |rid| {
        (rid == id).then(|| Upstream { content: up.clone(), docker_hub: hub })
    }));
    id
}

const CONFIG: &[u8] = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;

/// An image in `up`'s `repo` under `tag`; returns (manifest digest, manifest, layer).
fn upstream_image(up: &MemoryContent, repo: &str, tag: &str, seed: &str) -> (String, Vec<u8>, Vec<u8>) {
    let layer = format!("layer of {seed} ").repeat(5000).into_bytes();
    up.add_blob(repo, CONFIG);
    up.add_blob(repo, &layer);
    let body = image_manifest(CONFIG, &[&layer]);
    let d = up.add_manifest(repo, Some(tag), OCI_MANIFEST, &body);
    (d.to_string(), body, layer)
}

fn oci_code(r: &crate::common::Resp) -> String {
    r.json()["errors"][0]["code"].as_str().unwrap_or_default().to_string()
}

/// What `docker pull` does, anonymously: the manifest by tag, then each blob.
async fn pull(app: &TestApp, repo: &str, tag: &str) -> (String, Vec<u8>) {
    let r = app.get_with(&format!("/v2/{repo}/manifests/{tag}"), &[("accept", OCI_MANIFEST)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let digest = r.header("docker-content-digest").unwrap().to_string();
    assert_eq!(sha256(&r.body), digest);
    let m = r.json();
    let blobs = std::iter::once(&m["config"]).chain(m["layers"].as_array().unwrap());
    for b in blobs {
        let d = b["digest"].as_str().unwrap();
        let r = app.get(&format!("/v2/{repo}/blobs/{d}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(sha256(&r.body), d);
    }
    (digest, r.body)
}

/// Waits until `repo:tag` is stored locally with `digest`.
async fn cached(app: &TestApp, repo: &str, tag: &str, digest: &str) {
    for _ in 0..400 {
        let got: Option<String> = sqlx::query_scalar(
            "SELECT a.digest FROM tags t JOIN artifacts a ON a.id = t.artifact_id \
             JOIN repositories r ON r.id = t.repository_id WHERE r.name = $1 AND t.name = $2",
        )
        .bind(repo)
        .bind(tag)
        .fetch_optional(&app.state.db.pool)
        .await
        .unwrap();
        if got.as_deref() == Some(digest) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{repo}:{tag} was not cached as {digest}");
}

async fn blob_linked(app: &TestApp, repo: &str, digest: &str) -> bool {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM repository_blobs WHERE repository = $1 AND digest = $2")
            .bind(repo)
            .bind(digest)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    n > 0
}

both_dbs!(project_registry_id_admin_only_existing_and_fixed, |app| {
    let id = registry_row(&app, "hub", "https://registry-1.docker.io").await;
    create_user(&app.state.db, "alice", PW, false).await;
    let alice = basic("alice", PW);

    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/projects",
        &alice,
        json!({"project_name": "p1", "registry_id": id}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/projects",
        &admin(),
        json!({"project_name": "p1", "registry_id": id + 100}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains("registry"), "{}", r.text());
    // A normal project (Harbor clients send 0 for none).
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/projects",
        &alice,
        json!({"project_name": "plain", "registry_id": 0}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/projects",
        &admin(),
        json!({"project_name": "p1", "registry_id": id}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

    let p = api(&app, Method::GET, "/api/v2.0/projects/p1", &admin(), json!(null)).await.json();
    assert_eq!(p["registry_id"], json!(id));
    let p = api(&app, Method::GET, "/api/v2.0/projects/plain", &admin(), json!(null)).await.json();
    assert!(p.get("registry_id").is_none(), "{p}");
    let list = api(&app, Method::GET, "/api/v2.0/projects?name=p1", &admin(), json!(null)).await.json();
    assert_eq!(list[0]["registry_id"], json!(id));

    let other = registry_row(&app, "other", "http://127.0.0.1:5000").await;
    let r = api(&app, Method::PUT, "/api/v2.0/projects/p1", &admin(), json!({"registry_id": other})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = api(&app, Method::PUT, "/api/v2.0/projects/plain", &admin(), json!({"registry_id": other})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    // Sending the current value back (as Harbor's UI does) changes nothing.
    let r = api(
        &app,
        Method::PUT,
        "/api/v2.0/projects/p1",
        &admin(),
        json!({"registry_id": id, "metadata": {"public": "true"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let p = api(&app, Method::GET, "/api/v2.0/projects/p1", &admin(), json!(null)).await.json();
    assert_eq!((p["registry_id"].clone(), p["metadata"]["public"].clone()), (json!(id), json!("true")));
});

both_dbs!(pushes_into_a_proxy_project_are_refused_everywhere, |app| {
    let up = Arc::new(MemoryContent::new("up"));
    proxy_project(&app, &up, false).await;
    let refused = |r: &crate::common::Resp| {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        assert!(r.text().contains("project proxy is a proxy cache: push is not allowed"), "{}", r.text());
    };
    let layer = b"some layer".to_vec();
    let d = sha256(&layer);
    // Monolithic and session uploads.
    let r = crate::common::oci::post_blob(&app, &admin(), "proxy/app", &layer).await;
    refused(&r);
    assert_eq!(oci_code(&r), "DENIED");
    let r =
        app.call(Method::POST, "/v2/proxy/app/blobs/uploads/", &[("authorization", &admin())], vec![]).await;
    refused(&r);
    // A mount from a normal project.
    crate::common::oci::push_blob(&app, "library/src", &layer).await;
    let r = app
        .call(
            Method::POST,
            &format!("/v2/proxy/app/blobs/uploads/?mount={d}&from=library/src"),
            &[("authorization", &admin())],
            vec![],
        )
        .await;
    refused(&r);
    // A manifest PUT.
    let r = crate::common::oci::put_manifest(
        &app,
        "proxy/app",
        "v1",
        OCI_MANIFEST,
        &image_manifest(CONFIG, &[&layer]),
    )
    .await;
    refused(&r);
    // REST: copying an artifact into it.
    crate::common::oci::push_image(&app, "library/src", "v1", &[&layer]).await;
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/projects/proxy/repositories/app/artifacts?from=library/src:v1",
        &admin(),
        json!(null),
    )
    .await;
    refused(&r);
    // Replication (the in-process local registry) may not write into it either.
    let local = server::replication::local::LocalRegistry::new(app.state.clone(), "replication");
    let data: server::storage::ByteStream =
        Box::pin(futures::stream::iter([Ok(bytes::Bytes::from(layer.clone()))]));
    let digest: server::registry::digest::Digest = d.parse().unwrap();
    use server::replication::content::{Content, ContentError};
    match local.put_blob("proxy/app", &digest, layer.len() as u64, data).await {
        Err(ContentError::Denied(m)) => assert!(m.contains("is a proxy cache: push is not allowed"), "{m}"),
        other => panic!("replication wrote into a proxy project: {other:?}"),
    }
    assert!(!blob_linked(&app, "proxy/app", &d).await);
});

both_dbs!(pulls_go_upstream_then_come_from_the_cache, |app| {
    let up = Arc::new(MemoryContent::new("up"));
    proxy_project(&app, &up, false).await;
    let (d1, body1, layer) = upstream_image(&up, "library/alpine", "3", "one");

    // First pull, anonymous on a public proxy project: from upstream, and cached.
    let (got, bytes) = pull(&app, "proxy/library/alpine", "3").await;
    assert_eq!((got.as_str(), bytes.as_slice()), (d1.as_str(), body1.as_slice()));
    cached(&app, "proxy/library/alpine", "3", &d1).await;
    assert!(blob_linked(&app, "proxy/library/alpine", &sha256(&layer)).await);
    let (heads, gets, blobs) = (
        up.calls.head_manifest.load(Ordering::SeqCst),
        up.calls.get_manifest.load(Ordering::SeqCst),
        up.calls.get_blob.load(Ordering::SeqCst),
    );
    assert_eq!((heads, gets, blobs), (1, 1, 2));

    // Second pull: one HEAD upstream, the rest local.
    let (got, _) = pull(&app, "proxy/library/alpine", "3").await;
    assert_eq!(got, d1);
    assert_eq!(up.calls.head_manifest.load(Ordering::SeqCst), 2);
    assert_eq!(up.calls.get_manifest.load(Ordering::SeqCst), 1);
    assert_eq!(up.calls.get_blob.load(Ordering::SeqCst), 2);
    // By digest: local only.
    let r = app.get(&format!("/v2/proxy/library/alpine/manifests/{d1}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(up.calls.head_manifest.load(Ordering::SeqCst), 2);

    // The cached artifact: an audit row by proxy-cache, and the pulls counted.
    app.state.audit.flush(&app.state.db).await.unwrap();
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE username = 'proxy-cache' AND operation = 'create' \
         AND resource_type = 'artifact' AND resource LIKE 'proxy/library/alpine%'",
    )
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert!(n >= 1, "no create audit row by proxy-cache");
    app.state.pulls.flush(&app.state.db).await.unwrap();
    let pulls: i64 = sqlx::query_scalar("SELECT pull_count FROM artifacts WHERE digest = $1")
        .bind(&d1)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert!(pulls >= 2, "pull_count {pulls}");

    // The tag moves upstream: the new digest is served, then cached.
    let (d2, _, _) = upstream_image(&up, "library/alpine", "3", "two");
    let (got, _) = pull(&app, "proxy/library/alpine", "3").await;
    assert_eq!(got, d2);
    cached(&app, "proxy/library/alpine", "3", &d2).await;

    // The upstream goes down: the cached tag is served; an uncached one is a clear 503.
    up.set_offline(true);
    let (got, _) = pull(&app, "proxy/library/alpine", "3").await;
    assert_eq!(got, d2);
    let r = app.get("/v2/proxy/library/alpine/manifests/4").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(oci_code(&r), "UNAVAILABLE");
    assert!(r.text().contains("upstream"), "{}", r.text());
    let r = app.get(&format!("/v2/proxy/library/alpine/blobs/{}", sha256(b"uncached"))).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());

    // Back up: what the upstream does not have is a 404 in the OCI format.
    up.set_offline(false);
    let r = app.get("/v2/proxy/library/alpine/manifests/4").await;
    assert_eq!((r.status, oci_code(&r)), (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN".into()), "{}", r.text());
    let r = app.get(&format!("/v2/proxy/library/alpine/blobs/{}", sha256(b"uncached"))).await;
    assert_eq!((r.status, oci_code(&r)), (StatusCode::NOT_FOUND, "BLOB_UNKNOWN".into()), "{}", r.text());

    // REST: no tag may be added to a cached artifact (content comes only from upstream).
    let r = api(
        &app,
        Method::POST,
        &format!("/api/v2.0/projects/proxy/repositories/library%252Falpine/artifacts/{d2}/tags"),
        &admin(),
        json!({"name": "mine"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.text().contains("proxy cache: push is not allowed"), "{}", r.text());

    // Admins may delete cached artifacts.
    let r = app
        .call(
            Method::DELETE,
            &format!("/v2/proxy/library/alpine/manifests/{d2}"),
            &[("authorization", &admin())],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
});

both_dbs!(docker_hub_names_get_the_library_prefix, |app| {
    let up = Arc::new(MemoryContent::new("hub"));
    proxy_project(&app, &up, true).await;
    let (d, _, _) = upstream_image(&up, "library/alpine", "latest", "hub");
    let (got, _) = pull(&app, "proxy/alpine", "latest").await;
    assert_eq!(got, d);
    cached(&app, "proxy/alpine", "latest", &d).await;
});

both_dbs!(a_client_that_stops_half_way_leaves_no_blob, |app| {
    let up = Arc::new(MemoryContent::new("up").with_chunk(16 * 1024));
    proxy_project(&app, &up, false).await;
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 253) as u8).collect();
    let d = up.add_blob("library/big", &data).to_string();
    let path = format!("/v2/proxy/library/big/blobs/{d}");

    let resp = app.router.clone().oneshot(Request::get(&path).body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-length"], data.len().to_string().as_str());
    let mut body = resp.into_body().into_data_stream();
    let mut read = 0;
    while read < data.len() / 2 {
        read += body.next().await.unwrap().unwrap().len();
    }
    drop(body); // the client goes away
                // The store ends (its upload session discarded) without a blob.
    for _ in 0..200 {
        let uploads: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM uploads").fetch_one(&app.state.db.pool).await.unwrap();
        if uploads == 0 && up.calls.get_blob.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!blob_linked(&app, "proxy/library/big", &d).await, "half a blob was committed");

    // A pull read to the end caches it; the next one is local.
    let r = app.get(&path).await;
    assert_eq!((r.status, r.body.len()), (StatusCode::OK, data.len()));
    for _ in 0..200 {
        if blob_linked(&app, "proxy/library/big", &d).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(blob_linked(&app, "proxy/library/big", &d).await);
    let r = app.get(&path).await;
    assert_eq!(sha256(&r.body), d);
    assert_eq!(up.calls.get_blob.load(Ordering::SeqCst), 2);
});

both_dbs!(an_index_is_cached_with_its_children, |app| {
    let up = Arc::new(MemoryContent::new("up"));
    proxy_project(&app, &up, false).await;
    let repo = "library/multi";
    let (a, body_a, _) = upstream_image(&up, repo, "a", "amd64");
    let (b, body_b, _) = upstream_image(&up, repo, "b", "arm64");
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": a, "size": body_a.len(), "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": OCI_MANIFEST, "digest": b, "size": body_b.len(), "platform": {"architecture": "arm64", "os": "linux"}},
    ]}))
    .unwrap();
    let idx = up.add_manifest(repo, Some("1"), OCI_INDEX, &index).to_string();

    let r = app.get_with("/v2/proxy/library/multi/manifests/1", &[("accept", OCI_INDEX)]).await;
    assert_eq!((r.status, r.header("docker-content-digest")), (StatusCode::OK, Some(idx.as_str())));
    // Each platform pulled by digest, as a client on it would.
    for child in [&a, &b] {
        let (got, _) = pull(&app, "proxy/library/multi", child).await;
        assert_eq!(&got, child);
    }
    cached(&app, "proxy/library/multi", "1", &idx).await;
    up.set_offline(true);
    let r = app.get("/v2/proxy/library/multi/manifests/1").await;
    assert_eq!((r.status, r.header("docker-content-digest")), (StatusCode::OK, Some(idx.as_str())));
    assert_eq!(r.body, index);
});

both_dbs!(without_a_usable_upstream_a_pull_says_why, |app| {
    // The product's resolution (no override): the `registries` row, `endpoints::load`,
    // `adapters::build`; nothing listens on port 9.
    let id = registry_row(&app, "nowhere", "http://127.0.0.1:9").await;
    let body = json!({"project_name": "proxy", "registry_id": id, "metadata": {"public": "true"}});
    let r = api(&app, Method::POST, "/api/v2.0/projects", &admin(), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    for path in [
        "/v2/proxy/library/alpine/manifests/3".to_string(),
        format!("/v2/proxy/library/alpine/blobs/{}", sha256(b"x")),
    ] {
        let r = app.get(&path).await;
        assert!(
            r.status == StatusCode::BAD_GATEWAY || r.status == StatusCode::SERVICE_UNAVAILABLE,
            "{path}: {} {}",
            r.status,
            r.text()
        );
        assert_eq!(oci_code(&r), "UNAVAILABLE");
        assert!(r.text().contains("upstream registry"), "{}", r.text());
    }
});

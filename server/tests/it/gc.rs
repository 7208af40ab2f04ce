//! Deletion and garbage collection through the real router: logical deletes, GC runs (dry and
//! real) through `/api/v2.0/system/gc`, the status protocol against racing pushes, abandoned
//! uploads, schedules firing once across replicas, the job queue taking back a dead replica's
//! job, and storage usage. GC runs on SQLite and PostgreSQL with filesystem storage and on
//! PostgreSQL with S3 (Garage).

use crate::common::oci::{admin, push_blob, push_image, put_manifest, sha256, OCI_INDEX, OCI_MANIFEST};
use crate::common::{basic, DbChoice, TestApp};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

/// A window of 0: everything unreferenced is collectable at once.
const NOW: &str = "[gc]\nwindow = \"0s\"\n";

macro_rules! gc_backends {
    ($name:ident, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($app: TestApp) $body
            #[tokio::test]
            async fn sqlite_fs() {
                run(TestApp::builder(DbChoice::Sqlite).toml(NOW).build().await).await
            }
            #[tokio::test]
            async fn postgres_fs() {
                run(TestApp::builder(DbChoice::Postgres).toml(NOW).build().await).await
            }
            #[tokio::test]
            async fn postgres_s3() {
                run(TestApp::builder(DbChoice::Postgres).toml(NOW).s3().build().await).await
            }
        }
    };
}

macro_rules! gc_dbs {
    ($name:ident, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($app: TestApp) $body
            #[tokio::test]
            async fn sqlite() {
                run(TestApp::builder(DbChoice::Sqlite).toml(NOW).build().await).await
            }
            #[tokio::test]
            async fn postgres() {
                run(TestApp::builder(DbChoice::Postgres).toml(NOW).build().await).await
            }
        }
    };
}

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

gc_backends!(dry_run_then_sweep_keeps_shared_layers, |app| {
    let base = vec![7u8; 3000];
    let only_a = vec![1u8; 1000];
    let only_b = vec![2u8; 2000];
    let (da, ma) = push_image(&app, "library/a", "v1", &[&base, &only_a]).await;
    let (_, mb) = push_image(&app, "library/b", "v1", &[&base, &only_b]).await;
    // Nothing is garbage yet.
    assert_eq!(report(&gc(&app, false, false).await), (0, 0, 0, 0));

    // Logical delete: gone from /v2 at once, bytes still there.
    let r = app
        .call(
            Method::DELETE,
            &format!("/v2/library/a/manifests/{da}"),
            &[("authorization", &admin())],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(pull(&app, "library/a", &da).await.status, StatusCode::NOT_FOUND);
    assert!(stored(&app, &sha256(&only_a)).await);

    // A dry run reports exactly what goes and deletes nothing.
    let dry = gc(&app, true, false).await;
    let expected = (1, 1, (only_a.len() + ma.len()) as u64, 0);
    assert_eq!(report(&dry), expected);
    assert_eq!(dry["deleted"], false);
    assert!(stored(&app, &sha256(&only_a)).await && stored(&app, &da).await);
    let log =
        app.get_with(&format!("/api/v2.0/system/gc/{}/log", dry["id"]), &[("authorization", &admin())]).await;
    assert_eq!(log.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(log.text().contains(&format!("would delete blob {}", sha256(&only_a))), "{}", log.text());
    assert!(log.text().contains(&format!("would delete manifest {da}")), "{}", log.text());

    // The real run deletes the same.
    let run = gc(&app, false, false).await;
    assert_eq!(report(&run), expected);
    assert_eq!(run["deleted"], true);
    assert!(!stored(&app, &sha256(&only_a)).await && !stored(&app, &da).await);
    assert_eq!(blob(&app, "library/a", &sha256(&only_a)).await.status, StatusCode::NOT_FOUND);
    // What b uses stays, bit-identical: the shared base layer and config are still there.
    let r = pull(&app, "library/b", "v1").await;
    assert_eq!(r.body, mb);
    assert_eq!(blob(&app, "library/b", &sha256(&base)).await.body, base);
    assert_eq!(blob(&app, "library/b", &sha256(&only_b)).await.body, only_b);
    // GC again: nothing more.
    assert_eq!(report(&gc(&app, false, false).await), (0, 0, 0, 0));
    // Pushing a again after GC works (the layer is uploaded anew, not "already exists").
    assert_eq!(blob(&app, "library/a", &sha256(&only_a)).await.status, StatusCode::NOT_FOUND);
    let (da2, ma2) = push_image(&app, "library/a", "v1", &[&base, &only_a]).await;
    assert_eq!((da2.as_str(), ma2.as_slice()), (da.as_str(), ma.as_slice()));
    assert_eq!(pull(&app, "library/a", "v1").await.body, ma);
    assert_eq!(blob(&app, "library/a", &sha256(&only_a)).await.body, only_a);
});

gc_dbs!(untagged_indexes_and_referrers, |app| {
    // An untagged image (its tag deleted), an index with two children, a signature of the index.
    let (untagged, _) = push_image(&app, "library/u", "tmp", &[b"x"]).await;
    let r =
        app.call(Method::DELETE, "/v2/library/u/manifests/tmp", &[("authorization", &admin())], vec![]).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let (c1, _) = push_image(&app, "library/idx", "tmp1", &[b"amd64 layer"]).await;
    let (c2, _) = push_image(&app, "library/idx", "tmp2", &[b"arm64 layer"]).await;
    for t in ["tmp1", "tmp2"] {
        let r = app
            .call(
                Method::DELETE,
                &format!("/v2/library/idx/manifests/{t}"),
                &[("authorization", &admin())],
                vec![],
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": c1, "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": OCI_MANIFEST, "digest": c2, "size": 1, "platform": {"os": "linux", "architecture": "arm64"}}]});
    let index = serde_json::to_vec(&index).unwrap();
    let di = sha256(&index);
    assert_eq!(put_manifest(&app, "library/idx", &di, OCI_INDEX, &index).await.status, StatusCode::CREATED);
    let empty = push_blob(&app, "library/idx", b"{}").await;
    let sig = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [], "subject": {"mediaType": OCI_INDEX, "digest": di, "size": index.len()}});
    let sig = serde_json::to_vec(&sig).unwrap();
    let ds = sha256(&sig);
    assert_eq!(put_manifest(&app, "library/idx", &ds, OCI_MANIFEST, &sig).await.status, StatusCode::CREATED);
    let (kept, _) = push_image(&app, "library/k", "v1", &[b"kept layer"]).await;

    // Without the option, referenced artifacts stay.
    assert_eq!(report(&gc(&app, false, false).await).3, 0);
    // Dry run with it: the untagged image, the index, its two children and the signature.
    let dry = gc(&app, true, true).await;
    assert_eq!(report(&dry).3, 5, "{dry}");
    assert_eq!(pull(&app, "library/idx", &di).await.status, StatusCode::OK);
    let run = gc(&app, false, true).await;
    assert_eq!(report(&run).3, 5, "{run}");
    assert_eq!(report(&run).1, 5, "five manifests freed: {run}");
    for (repo, d) in [
        ("library/u", &untagged),
        ("library/idx", &di),
        ("library/idx", &c1),
        ("library/idx", &c2),
        ("library/idx", &ds),
    ] {
        assert_eq!(pull(&app, repo, d).await.status, StatusCode::NOT_FOUND, "{repo}@{d}");
        assert!(!stored(&app, d).await, "{d} still stored");
    }
    assert_eq!(pull(&app, "library/k", "v1").await.status, StatusCode::OK);
    assert!(stored(&app, &kept).await);
});

gc_dbs!(delete_frees_children_and_accessories, |app| {
    let (c1, _) = push_image(&app, "library/m", "amd64", &[b"l1"]).await;
    let (c2, _) = push_image(&app, "library/m", "tmp", &[b"l2"]).await;
    let r =
        app.call(Method::DELETE, "/v2/library/m/manifests/tmp", &[("authorization", &admin())], vec![]).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": c1, "size": 1}, {"mediaType": OCI_MANIFEST, "digest": c2, "size": 1}]}))
    .unwrap();
    let di = sha256(&index);
    assert_eq!(
        put_manifest(&app, "library/m", "latest", OCI_INDEX, &index).await.status,
        StatusCode::CREATED
    );
    let empty = push_blob(&app, "library/m", b"{}").await;
    let sbom = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [], "subject": {"mediaType": OCI_INDEX, "digest": di, "size": index.len()}}),
    )
    .unwrap();
    let dsbom = sha256(&sbom);
    assert_eq!(
        put_manifest(&app, "library/m", &dsbom, OCI_MANIFEST, &sbom).await.status,
        StatusCode::CREATED
    );
    // A child of the index cannot be deleted on its own (Harbor: 412), on either surface.
    let r = app
        .call(
            Method::DELETE,
            &format!("/v2/library/m/manifests/{c2}"),
            &[("authorization", &admin())],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["code"], "DENIED");
    assert!(r.text().contains(&di), "{}", r.text());
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v2.0/projects/library/repositories/m/artifacts/{c1}"),
            &[("authorization", &admin())],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.text());
    assert_eq!(pull(&app, "library/m", "latest").await.status, StatusCode::OK);
    // Deleting the index: its SBOM goes, the untagged child is freed, the tagged one stays.
    let r = app
        .call(
            Method::DELETE,
            &format!("/v2/library/m/manifests/{di}"),
            &[("authorization", &admin())],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(pull(&app, "library/m", &dsbom).await.status, StatusCode::NOT_FOUND);
    assert_eq!(pull(&app, "library/m", &c2).await.status, StatusCode::NOT_FOUND);
    assert_eq!(pull(&app, "library/m", "amd64").await.status, StatusCode::OK);
    let r = app.get_with(&format!("/v2/library/m/referrers/{di}"), &[("authorization", &admin())]).await;
    assert_eq!(r.json()["manifests"], json!([]));
    // The tagged child is listed on its own again.
    let r = app
        .get_with("/api/v2.0/projects/library/repositories/m/artifacts", &[("authorization", &admin())])
        .await;
    let list = r.json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["digest"], json!(c1));
    // Now that no index lists it, the tagged child can be deleted.
    let r = app
        .call(
            Method::DELETE,
            &format!("/v2/library/m/manifests/{c1}"),
            &[("authorization", &admin())],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    // The audit log names each deleted artifact.
    app.state.audit.flush(&app.state.db).await.unwrap();
    let r = app
        .get_with("/api/v2.0/audit-logs?q=operation=delete&page_size=50", &[("authorization", &admin())])
        .await;
    let text = r.text();
    for d in [&di, &dsbom, &c2] {
        assert!(text.contains(d.as_str()), "audit lacks {d}: {text}");
    }
});

gc_dbs!(racing_push_is_told_to_retry, |app| {
    // A blob GC has marked (status 'deleting') is invisible and cannot be re-referenced.
    let data = b"being collected".to_vec();
    let d = push_blob(&app, "library/r", &data).await;
    sqlx::query("UPDATE blobs SET status = 'deleting' WHERE digest = $1")
        .bind(&d)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(blob(&app, "library/r", &d).await.status, StatusCode::NOT_FOUND);
    let r = app
        .call(
            Method::POST,
            &format!("/v2/library/r2/blobs/uploads/?mount={d}&from=library/r"),
            &[("authorization", &admin())],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "mount of a blob being deleted falls back to an upload");
    // Uploading the same content meanwhile: 503 with Retry-After, the session survives.
    let r =
        app.call(Method::POST, "/v2/library/r/blobs/uploads/", &[("authorization", &admin())], vec![]).await;
    let loc = r.header("location").unwrap().to_string();
    let put = format!("{loc}?digest={d}");
    let r = app.call(Method::PUT, &put, &[("authorization", &admin())], data.clone()).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["code"], "UNAVAILABLE");
    assert_eq!(r.header("retry-after"), Some("5"));
    // A manifest referencing it is refused.
    let config = push_blob(&app, "library/r", br#"{"os":"linux"}"#).await;
    let m = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 14},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": data.len()}]}))
    .unwrap();
    let r = put_manifest(&app, "library/r", "v1", OCI_MANIFEST, &m).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    // GC finishes the deletion; the client's retry of the same upload then succeeds.
    let run = gc(&app, false, false).await;
    assert!(report(&run).0 >= 1, "{run}");
    let r = app.get_with(&loc, &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "the upload session is still there");
    // (The config, unreferenced after the refused push, was collected too: push it again.)
    assert_eq!(push_blob(&app, "library/r", br#"{"os":"linux"}"#).await, config);
    let r =
        app.call(Method::PUT, &put, &[("authorization", &admin()), ("content-length", "0")], vec![]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(blob(&app, "library/r", &d).await.body, data);
    assert_eq!(put_manifest(&app, "library/r", "v1", OCI_MANIFEST, &m).await.status, StatusCode::CREATED);
    assert_eq!(report(&gc(&app, false, false).await).0, 0);
    assert_eq!(blob(&app, "library/r", &d).await.body, data);
});

/// With the default window (2 h) a freshly uploaded, unreferenced blob stays; an upload session
/// older than `upload_max_age` goes with its data.
macro_rules! both_window {
    ($name:ident) => {
        mod $name {
            use super::*;
            async fn run(app: TestApp) {
                let d = push_blob(&app, "library/w", b"not yet in a manifest").await;
                let r = app
                    .call(
                        Method::POST,
                        "/v2/library/w/blobs/uploads/",
                        &[("authorization", &admin())],
                        vec![],
                    )
                    .await;
                let loc = r.header("location").unwrap().to_string();
                let id = loc.rsplit('/').next().unwrap().to_string();
                let r = app
                    .call(
                        Method::PATCH,
                        &loc,
                        &[("authorization", &admin()), ("content-type", "application/octet-stream")],
                        b"partial".to_vec(),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::ACCEPTED);
                let key = format!("uploads/{id}/data");
                assert!(app.state.storage.stat(&key).await.unwrap().is_some());
                let run = gc(&app, false, false).await;
                assert_eq!(report(&run), (0, 0, 0, 0), "{run}");
                assert_eq!(run["result"]["uploads"], 0);
                assert_eq!(blob(&app, "library/w", &d).await.status, StatusCode::OK);
                // Abandoned: untouched for longer than upload_max_age (24 h).
                sqlx::query("UPDATE uploads SET updated_at = updated_at - 90000000 WHERE id = $1")
                    .bind(&id)
                    .execute(&app.state.db.pool)
                    .await
                    .unwrap();
                let run = gc(&app, false, false).await;
                assert_eq!(run["result"]["uploads"], 1, "{run}");
                assert!(app.state.storage.stat(&key).await.unwrap().is_none());
                let r = app.get_with(&loc, &[("authorization", &admin())]).await;
                assert_eq!(r.status, StatusCode::NOT_FOUND);
                assert_eq!(blob(&app, "library/w", &d).await.status, StatusCode::OK);
            }
            #[tokio::test]
            async fn sqlite() {
                run(TestApp::new(DbChoice::Sqlite).await).await
            }
            #[tokio::test]
            async fn postgres() {
                run(TestApp::new(DbChoice::Postgres).await).await
            }
        }
    };
}
both_window!(window_protects_fresh_blobs_and_uploads_expire);

/// Upload data whose session row is gone (a crash between deleting the row and the data) is
/// reclaimed once it is older than `upload_max_age`; younger data and data with a session stay;
/// a dry run counts it without deleting. On every backend (S3 keeps uploads as part objects).
mod orphaned_upload_data_is_reclaimed {
    use super::*;
    const GRACE: &str = "upload_max_age = \"4s\"\n";

    async fn start(app: &TestApp, data: &[u8]) -> (String, String) {
        let r = app
            .call(Method::POST, "/v2/library/o/blobs/uploads/", &[("authorization", &admin())], vec![])
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let loc = r.header("location").unwrap().to_string();
        patch(app, &loc, data).await;
        (loc.rsplit('/').next().unwrap().to_string(), loc)
    }

    async fn patch(app: &TestApp, loc: &str, data: &[u8]) {
        let h = [("authorization", admin()), ("content-type", "application/octet-stream".into())];
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = app.call(Method::PATCH, loc, &h, data.to_vec()).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    }

    async fn exists(app: &TestApp, id: &str) -> bool {
        app.state.storage.stat(&format!("uploads/{id}/data")).await.unwrap().is_some()
    }

    async fn run(app: TestApp) {
        let (orphan, _) = start(&app, b"orphaned data").await;
        let (live, live_loc) = start(&app, b"live ").await;
        // The crash: the row is gone, the data stays.
        sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(&orphan)
            .execute(&app.state.db.pool)
            .await
            .unwrap();
        let run = gc(&app, false, false).await;
        assert_eq!(run["result"]["uploads"], 0, "younger than upload_max_age: {run}");
        assert!(exists(&app, &orphan).await);
        tokio::time::sleep(std::time::Duration::from_millis(5500)).await;
        // The live session goes on (its row and its data are fresh again).
        patch(&app, &live_loc, b"session").await;
        let run = gc(&app, true, false).await;
        assert_eq!(run["result"]["uploads"], 1, "{run}");
        assert_eq!(run["result"]["upload_bytes"], 13, "{run}");
        assert!(exists(&app, &orphan).await, "a dry run deletes nothing");
        let run = gc(&app, false, false).await;
        assert_eq!(run["result"]["uploads"], 1, "{run}");
        assert_eq!(run["result"]["upload_bytes"], 13, "{run}");
        assert!(!exists(&app, &orphan).await);
        assert!(app.state.storage.list("uploads/").await.unwrap().iter().all(|k| !k.contains(&orphan)));
        // The session with a row was left alone and completes.
        assert!(exists(&app, &live).await);
        let d = sha256(b"live session");
        let r = app
            .call(Method::PUT, &format!("{live_loc}?digest={d}"), &[("authorization", &admin())], vec![])
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        assert_eq!(blob(&app, "library/o", &d).await.body, b"live session");
        let run = gc(&app, false, false).await;
        assert_eq!(run["result"]["uploads"], 0, "{run}");
    }
    #[tokio::test]
    async fn sqlite_fs() {
        run(TestApp::builder(DbChoice::Sqlite).toml(NOW).toml(GRACE).build().await).await
    }
    #[tokio::test]
    async fn postgres_fs() {
        run(TestApp::builder(DbChoice::Postgres).toml(NOW).toml(GRACE).build().await).await
    }
    #[tokio::test]
    async fn postgres_s3() {
        run(TestApp::builder(DbChoice::Postgres).toml(NOW).toml(GRACE).s3().build().await).await
    }
}

gc_dbs!(api_permissions_conflicts_stop_and_schedule, |app| {
    // Only system admins.
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/users",
        json!({"username": "dev", "password": "Passw0rd!x", "email": "d@x.io", "realname": "d"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    for (m, p) in [
        (Method::GET, "/api/v2.0/system/gc"),
        (Method::GET, "/api/v2.0/system/gc/schedule"),
        (Method::POST, "/api/v2.0/system/gc/schedule"),
    ] {
        let r = app
            .call(
                m.clone(),
                p,
                &[("authorization", &basic("dev", "Passw0rd!x")), ("content-type", "application/json")],
                r#"{"schedule":{"type":"Manual"}}"#,
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{m} {p}");
        let r = app
            .call(m.clone(), p, &[("content-type", "application/json")], r#"{"schedule":{"type":"Manual"}}"#)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{m} {p}");
    }
    // One pending run at a time; stopping a pending run ends it.
    let body = json!({"schedule": {"type": "Manual"}, "parameters": {"dry_run": true}});
    let r = api(&app, Method::POST, "/api/v2.0/system/gc/schedule", body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let loc = r.header("location").unwrap().to_string();
    let r = api(&app, Method::POST, "/api/v2.0/system/gc/schedule", body.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(api(&app, Method::PUT, &loc, json!({})).await.status, StatusCode::OK);
    let r = app.get_with(&loc, &[("authorization", &admin())]).await;
    assert_eq!(r.json()["job_status"], "Stopped");
    // Stopping a run that is over answers 200 as Harbor does, and changes nothing.
    assert_eq!(api(&app, Method::PUT, &loc, json!({})).await.status, StatusCode::OK);
    assert_eq!(app.get_with(&loc, &[("authorization", &admin())]).await.json()["job_status"], "Stopped");
    assert_eq!(
        app.get_with("/api/v2.0/system/gc/999999", &[("authorization", &admin())]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get_with("/api/v2.0/system/gc/abc", &[("authorization", &admin())]).await.status,
        StatusCode::BAD_REQUEST
    );
    // Bad input is a 400.
    for bad in [
        json!({"schedule": {"type": "Custom", "cron": "not a cron"}}),
        json!({"schedule": {"type": "Custom", "cron": "0 0 0 * * * * *"}}),
        // Parses, but never fires (February 30th).
        json!({"schedule": {"type": "Custom", "cron": "0 0 0 30 2 *"}}),
        json!({"schedule": {"type": "Sometimes"}}),
        json!({"schedule": {"type": "Manual"}, "parameters": {"workers": 0}}),
        json!({"parameters": {}}),
    ] {
        let r = api(&app, Method::POST, "/api/v2.0/system/gc/schedule", bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text());
    }
    // Schedules.
    let r = app.get_with("/api/v2.0/system/gc/schedule", &[("authorization", &admin())]).await;
    assert_eq!(r.json()["schedule"]["type"], "None");
    let r = api(
        &app,
        Method::PUT,
        "/api/v2.0/system/gc/schedule",
        json!({"schedule": {"type": "Daily"}, "parameters": {"delete_untagged": true}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let s = app.get_with("/api/v2.0/system/gc/schedule", &[("authorization", &admin())]).await.json();
    assert_eq!(s["schedule"]["type"], "Daily");
    assert_eq!(s["schedule"]["cron"], "0 0 0 * * *");
    assert!(s["schedule"]["next_scheduled_time"].as_str().unwrap().ends_with("T00:00:00.000Z"), "{s}");
    assert!(s["job_parameters"].as_str().unwrap().contains("\"delete_untagged\":true"));
    // Every second, then two replicas race to fire it: exactly one run is queued.
    let r = api(
        &app,
        Method::PUT,
        "/api/v2.0/system/gc/schedule",
        json!({"schedule": {"type": "Custom", "cron": "* * * * * *"}, "parameters": {"dry_run": true}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let other = app.sibling().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (a, b) = tokio::join!(server::jobs::fire_due(&app.state.db), server::jobs::fire_due(&other.state.db));
    assert_eq!(a.unwrap().len() + b.unwrap().len(), 1);
    server::jobs::tick(&other.state, "replica-2").await.unwrap();
    let list = app.get_with("/api/v2.0/system/gc", &[("authorization", &admin())]).await;
    assert_eq!(list.header("x-total-count"), Some("2"));
    let runs = list.json();
    assert_eq!(runs[0]["job_kind"], "SCHEDULE");
    assert_eq!(runs[0]["job_status"], "Success");
    let r =
        api(&app, Method::PUT, "/api/v2.0/system/gc/schedule", json!({"schedule": {"type": "None"}})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        app.get_with("/api/v2.0/system/gc/schedule", &[("authorization", &admin())]).await.json()["schedule"]
            ["type"],
        "None"
    );
    // Administrative changes are audited.
    app.state.audit.flush(&app.state.db).await.unwrap();
    let text = app
        .get_with("/api/v2.0/audit-logs?q=resource_type=gc_schedule", &[("authorization", &admin())])
        .await
        .text();
    assert!(text.contains("0 0 0 * * *"), "{text}");
});

gc_dbs!(job_of_a_dead_replica_is_taken_back, |app| {
    use server::jobs;
    let params = json!({"dry_run": true});
    let new = jobs::NewJob {
        kind: "gc",
        job_kind: "MANUAL",
        parameters: &params,
        unique_key: Some("gc"),
        created_by: "t",
    };
    let id = jobs::enqueue(&app.state.db, &new).await.unwrap().unwrap();
    let job = jobs::claim(&app.state.db, "replica-a").await.unwrap().unwrap();
    assert_eq!((job.id, job.status.as_str(), job.attempts), (id, "running", 1));
    assert!(jobs::claim(&app.state.db, "replica-b").await.unwrap().is_none(), "claimed once");
    // replica-a dies: its heartbeat stops.
    sqlx::query("UPDATE jobs SET heartbeat = heartbeat - 60000 WHERE id = $1")
        .bind(id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(jobs::requeue_stale(&app.state.db).await.unwrap(), 1);
    let again = jobs::claim(&app.state.db, "replica-b").await.unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (id, 2));
    // If replica-a comes back, it learns the job is no longer its own.
    let ctx_a = jobs::JobCtx::new(id, "replica-a", "MANUAL", &job.parameters);
    ctx_a.beat(&app.state.db).await.unwrap();
    assert!(ctx_a.should_stop() && ctx_a.lost());
    assert!(!jobs::finish(&app.state.db, id, "replica-a", "success", &json!({}), "").await.unwrap());
    let ctx_b = jobs::JobCtx::new(id, "replica-b", "MANUAL", &again.parameters);
    let env = server::gc::Env {
        db: app.state.db.clone(),
        storage: app.state.storage.clone(),
        config: app.config.gc.clone(),
    };
    let out =
        jobs::run_claimed(&app.state.db, ctx_b, |ctx| async move { server::gc::run_with(&env, ctx).await })
            .await;
    assert_eq!(out.status, "success");
    assert_eq!(jobs::get(&app.state.db, id).await.unwrap().unwrap().status, "success");
});

gc_dbs!(storage_usage_counts_shared_blobs_once_per_project, |app| {
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/projects",
        json!({"project_name": "other", "metadata": {"public": "false"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let shared = vec![9u8; 5000];
    let (_, m1) = push_image(&app, "library/one", "v1", &[&shared]).await;
    let (_, m2) = push_image(&app, "library/two", "v1", &[&shared]).await;
    let (_, m3) = push_image(&app, "other/three", "v1", &[&shared]).await;
    let config_len =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.len();
    let used = |p: &'static str| {
        let app = &app;
        async move {
            let r = app
                .get_with(&format!("/api/v2.0/projects/{p}/summary"), &[("authorization", &admin())])
                .await;
            r.json()["quota"]["used"]["storage"].as_u64().unwrap() as usize
        }
    };
    // library: the shared layer and config once, plus two manifests (identical bodies: once).
    assert_eq!(m1, m2);
    assert_eq!(used("library").await, shared.len() + config_len + m1.len());
    assert_eq!(used("other").await, shared.len() + config_len + m3.len());
    // The project list carries the same numbers (one query per page), and so does the GC usage
    // overview (largest first; the blob store's total counts each blob once: the three
    // manifests have identical bodies).
    let list = app.get_with("/api/v2.0/projects?page_size=100", &[("authorization", &admin())]).await.json();
    let listed = |name: &str| {
        list.as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["storage_used"].as_u64().unwrap()
            as usize
    };
    assert_eq!(listed("library"), used("library").await);
    assert_eq!(listed("other"), used("other").await);
    let r = app.get_with("/api/v2.0/system/gc/usage", &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let usage = r.json();
    let projects = usage["projects"].as_array().unwrap();
    assert_eq!(projects[0]["project_name"], "library");
    assert_eq!(projects[0]["storage"].as_u64().unwrap() as usize, used("library").await);
    assert_eq!(projects[1]["project_name"], "other");
    assert_eq!(usage["total_storage"].as_u64().unwrap() as usize, shared.len() + config_len + m1.len());
    let r = app.get("/api/v2.0/system/gc/usage").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
});

gc_dbs!(storage_usage_is_cached_and_follows_pushes_and_deletes, |app| {
    let db = &app.state.db;
    let used = || async {
        let r = app.get_with("/api/v2.0/projects/library/summary", &[("authorization", &admin())]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()["quota"]["used"]["storage"].as_i64().unwrap()
    };
    let row = || async {
        sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT gen, computed_gen, bytes FROM project_usage WHERE project_id = \
             (SELECT id FROM projects WHERE name = 'library')",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap()
    };
    let library: i64 = sqlx::query_scalar("SELECT id FROM projects WHERE name = 'library'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let truth = || async { server::usage::compute(db, library).await.unwrap() };
    assert_eq!(used().await, 0);
    push_image(&app, "library/one", "v1", &[&vec![1u8; 3000]]).await;
    let a = used().await;
    assert!(a > 3000, "{a}");
    assert_eq!(a, truth().await);
    // Current after the read: a second read is served from the row.
    let (gen, computed, bytes) = row().await;
    assert_eq!((computed, bytes), (gen, a));
    // A push of a new layer moves the figure; tagging an existing artifact does not bump it.
    push_image(&app, "library/two", "v1", &[&vec![1u8; 3000], &vec![2u8; 7000]]).await;
    assert_eq!(row().await.0, gen + 1);
    let b = used().await;
    assert!(b > a + 7000, "{b}");
    assert_eq!(b, truth().await);
    push_image(&app, "library/two", "again", &[&vec![1u8; 3000], &vec![2u8; 7000]]).await;
    assert_eq!(row().await.0, gen + 1, "retagging changes nothing");
    // Deleting a repository whose layers another repository shares keeps them counted.
    let r = api(&app, Method::DELETE, "/api/v2.0/projects/library/repositories/one", json!(null)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let c = used().await;
    assert_eq!(c, truth().await);
    assert!(c < b && c > 10_000, "{c}");
    // An expensive project is answered from the row at once and refreshed in the background.
    sqlx::query("UPDATE project_usage SET compute_ms = 10000 WHERE project_id = $1")
        .bind(library)
        .execute(&db.pool)
        .await
        .unwrap();
    push_image(&app, "library/three", "v1", &[&vec![3u8; 50_000]]).await;
    assert_eq!(used().await, c, "the last figure, while the refresh runs");
    let mut now = c;
    // Up to 30 s: refreshes run one per project id per process, and the SQLite and PostgreSQL
    // variants of this test share the process and the id of `library` (the full suite on two
    // busy cores once took over 5 s).
    for _ in 0..600 {
        now = used().await;
        if now != c {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(now > c + 50_000, "refreshed in the background: {now}");
    assert_eq!(now, truth().await);
});

/// Pushes an image without asserting: false when any step is refused (the client retries).
async fn try_push(app: &TestApp, repo: &str, tag: &str, layers: &[Vec<u8>]) -> bool {
    let config = format!(r#"{{"os":"linux","tag":"{tag}"}}"#).into_bytes();
    let mut descs = vec![];
    for b in std::iter::once(&config).chain(layers.iter()) {
        let d = sha256(b);
        let r = app
            .call(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                &[("authorization", &admin())],
                b.clone(),
            )
            .await;
        if r.status != StatusCode::CREATED {
            assert!(r.status == StatusCode::SERVICE_UNAVAILABLE, "unexpected {}: {}", r.status, r.text());
            return false;
        }
        descs.push(
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": b.len()}),
        );
    }
    let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": descs[0]["digest"], "size": config.len()},
        "layers": descs[1..]});
    let r = put_manifest(app, repo, tag, OCI_MANIFEST, &serde_json::to_vec(&m).unwrap()).await;
    if r.status != StatusCode::CREATED {
        assert!(
            r.status == StatusCode::BAD_REQUEST && r.text().contains("MANIFEST_BLOB_UNKNOWN")
                || r.status == StatusCode::SERVICE_UNAVAILABLE,
            "unexpected {}: {}",
            r.status,
            r.text()
        );
        return false;
    }
    true
}

gc_dbs!(pushes_racing_gc_never_leave_a_dangling_reference, |app| {
    // A 150 ms window (shorter than some pushes here) and GC in a tight loop; deleted images'
    // layers are pushed again by the next tag, often while GC is sweeping them.
    let mut env = server::gc::Env {
        db: app.state.db.clone(),
        storage: app.state.storage.clone(),
        config: app.config.gc.clone(),
    };
    env.config.window = std::time::Duration::from_millis(150);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gc_loop = {
        let (env, done) = (env.clone(), done.clone());
        tokio::spawn(async move {
            let mut runs = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) || runs == 0 {
                let ctx = server::jobs::JobCtx::new(0, "t", "CLI", "{}");
                server::gc::run(&env, &server::gc::GcParams::default(), &ctx).await.expect("gc run");
                runs += 1;
                tokio::task::yield_now().await;
            }
            runs
        })
    };
    let base = vec![42u8; 4096];
    let mut pushers = vec![];
    for p in 0..4 {
        let app = app.sibling().await;
        let base = base.clone();
        pushers.push(tokio::spawn(async move {
            let (mut ok, mut retries) = (0, 0);
            for i in 0..8 {
                let layers = vec![base.clone(), format!("layer {p}-{}", i / 2).into_bytes()];
                let mut tries = 0;
                while !try_push(&app, &format!("library/race{p}"), &format!("t{i}"), &layers).await {
                    tries += 1;
                    retries += 1;
                    assert!(tries < 50, "push {p}-{i} never got through");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                ok += 1;
                // Some pushes become garbage at once.
                if i % 3 == 0 {
                    let r = app
                        .call(
                            Method::DELETE,
                            &format!("/v2/library/race{p}/manifests/t{i}"),
                            &[("authorization", &admin())],
                            vec![],
                        )
                        .await;
                    assert_eq!(r.status, StatusCode::ACCEPTED);
                }
            }
            (ok, retries)
        }));
    }
    let mut retries = 0;
    for p in pushers {
        retries += p.await.unwrap().1;
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let runs = gc_loop.await.unwrap();
    eprintln!("{runs} GC runs, {retries} push retries");
    assert!(runs > 5, "GC ran only {runs} times");
    // Every surviving tag pulls completely: manifest, config and layers, from storage.
    for p in 0..4 {
        for i in (0..8).filter(|i| i % 3 != 0) {
            let r = pull(&app, &format!("library/race{p}"), &format!("t{i}")).await;
            assert_eq!(r.status, StatusCode::OK, "race{p}:t{i}: {}", r.text());
            let m = r.json();
            for d in std::iter::once(&m["config"]).chain(m["layers"].as_array().unwrap()) {
                let d = d["digest"].as_str().unwrap();
                let b = blob(&app, &format!("library/race{p}"), d).await;
                if b.status != StatusCode::OK {
                    let row: Option<(String, i64)> =
                        sqlx::query_as("SELECT status, last_used FROM blobs WHERE digest = $1")
                            .bind(d)
                            .fetch_optional(&app.state.db.pool)
                            .await
                            .unwrap();
                    let links: Vec<String> =
                        sqlx::query_scalar("SELECT repository FROM repository_blobs WHERE digest = $1")
                            .bind(d)
                            .fetch_all(&app.state.db.pool)
                            .await
                            .unwrap();
                    let stored = stored(&app, d).await;
                    panic!("race{p}:t{i} {d}: {} — row {row:?}, links {links:?}, stored {stored}", b.text());
                }
                assert_eq!(sha256(&b.body), d);
            }
        }
    }
    // And the database references nothing that is gone or going.
    let dangling: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM artifact_blobs ab LEFT JOIN blobs b ON b.digest = ab.digest WHERE b.digest IS NULL OR b.status <> 'none'",
    )
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(dangling, 0);
    // A final run with nothing racing (window 0) leaves only referenced blobs.
    env.config.window = std::time::Duration::ZERO;
    let ctx = server::jobs::JobCtx::new(0, "t", "CLI", "{}");
    server::gc::run(&env, &server::gc::GcParams::default(), &ctx).await.unwrap();
    let unreferenced: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM artifact_blobs ab WHERE ab.digest = b.digest) \
         AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.digest = b.digest)",
    )
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(unreferenced, 0);
});

gc_dbs!(stopping_a_running_gc, |app| {
    use server::jobs;
    for i in 0..3 {
        let (d, _) =
            push_image(&app, "library/s", &format!("t{i}"), &[format!("layer {i}").as_bytes()]).await;
        let r = app
            .call(
                Method::DELETE,
                &format!("/v2/library/s/manifests/{d}"),
                &[("authorization", &admin())],
                vec![],
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    let r = api(&app, Method::POST, "/api/v2.0/system/gc/schedule", json!({"schedule": {"type": "Manual"}}))
        .await;
    let loc = r.header("location").unwrap().to_string();
    let job = jobs::claim(&app.state.db, "w").await.unwrap().unwrap();
    // Stop while it runs: the request is recorded and reaches the runner with its next beat.
    assert_eq!(api(&app, Method::PUT, &loc, json!({})).await.status, StatusCode::OK);
    let ctx = jobs::JobCtx::new(job.id, "w", "MANUAL", &job.parameters);
    ctx.beat(&app.state.db).await.unwrap();
    assert!(ctx.should_stop() && !ctx.lost());
    let env = server::gc::Env {
        db: app.state.db.clone(),
        storage: app.state.storage.clone(),
        config: app.config.gc.clone(),
    };
    let out =
        jobs::run_claimed(&app.state.db, ctx, |ctx| async move { server::gc::run_with(&env, ctx).await })
            .await;
    assert_eq!(out.status, "stopped");
    let run = app.get_with(&loc, &[("authorization", &admin())]).await.json();
    assert_eq!(run["job_status"], "Stopped");
    assert_eq!(run["result"]["stopped"], true);
    assert_eq!(run["result"]["bytes"], 0, "stopped before the sweep: {run}");
    let log = app.get_with(&format!("{loc}/log"), &[("authorization", &admin())]).await.text();
    assert!(log.contains("garbage collection stopped"), "{log}");
    // The next run finishes the job.
    let run = gc(&app, false, false).await;
    assert_eq!(report(&run).1, 3, "{run}");
});

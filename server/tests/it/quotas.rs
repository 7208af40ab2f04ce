//! Project storage quotas (`server/src/quota.rs`) through the real router on SQLite and
//! PostgreSQL: the `/quotas` API and its permissions, `storage_limit` on project creation and
//! the `storage_per_project` default, pushes refused over the limit (blob upload, mount,
//! manifest) with Harbor's `DENIED`/412, each blob counted once per project, GC giving bytes
//! back and repairing a corrupted counter, and concurrent pushes at the edge of the limit.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::oci::{
    admin, close_upload, image_manifest, patch_upload, post_blob, push_blob, push_image, put_manifest,
    sha256, start_upload, OCI_MANIFEST,
};
use crate::common::{api, basic, create_user, Resp, TestApp, PW};

/// A GC window of 0: everything unreferenced is released at once.
const NOW: &str = "[gc]\nwindow = \"0s\"\n";

const CONFIG: &[u8] = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;

async fn admin_api(app: &TestApp, method: Method, path: &str, body: Value) -> Resp {
    api(app, method, path, &admin(), body).await
}

async fn create_project(app: &TestApp, name: &str, limit: Option<i64>) {
    let mut body = json!({"project_name": name, "metadata": {"public": "false"}});
    if let Some(l) = limit {
        body["storage_limit"] = json!(l);
    }
    let r = admin_api(app, Method::POST, "/api/v2.0/projects", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

async fn project_id(app: &TestApp, name: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM projects WHERE name = $1")
        .bind(name)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
}

/// The project's quota as `GET /quotas?reference_id=` answers it.
async fn quota_of(app: &TestApp, name: &str) -> Value {
    let id = project_id(app, name).await;
    let r = admin_api(
        app,
        Method::GET,
        &format!("/api/v2.0/quotas?reference=project&reference_id={id}"),
        json!(null),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-total-count"), Some("1"));
    r.json()[0].clone()
}

async fn used(app: &TestApp, name: &str) -> i64 {
    quota_of(app, name).await["used"]["storage"].as_i64().unwrap()
}

async fn set_hard(app: &TestApp, name: &str, hard: i64) {
    let id = quota_of(app, name).await["id"].as_i64().unwrap();
    let r =
        admin_api(app, Method::PUT, &format!("/api/v2.0/quotas/{id}"), json!({"hard": {"storage": hard}}))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

/// What the project's artifacts reference (each digest once): what the usage comes down to
/// after GC.
async fn truth(app: &TestApp, name: &str) -> i64 {
    server::usage::compute(&app.state.db, project_id(app, name).await).await.unwrap()
}

/// Asserts a 412 with the OCI `DENIED` code naming the project's limit and usage; returns the message.
fn assert_denied(r: &Resp, project: &str, limit: i64, used: i64, needed: i64) -> String {
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.text());
    let j = r.json();
    assert_eq!(j["errors"][0]["code"], "DENIED", "{j}");
    let msg = j["errors"][0]["message"].as_str().unwrap().to_string();
    let h = server::quota::human;
    assert_eq!(
        msg,
        format!(
            "quota exceeded: project {project} storage limit {}, used {}, this push needs {}",
            h(limit),
            h(used),
            h(needed)
        )
    );
    assert_eq!(j["errors"][0]["detail"], json!({"limit": limit, "used": used, "needed": needed}));
    msg
}

async fn gc(app: &TestApp) -> Value {
    let r = admin_api(
        app,
        Method::POST,
        "/api/v2.0/system/gc/schedule",
        json!({"schedule": {"type": "Manual"}, "parameters": {"dry_run": false, "delete_untagged": false}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let loc = r.header("location").unwrap().to_string();
    server::jobs::tick(&app.state, "test-worker").await.unwrap();
    let run = app.get_with(&loc, &[("authorization", &admin())]).await.json();
    assert_eq!(run["job_status"], "Success", "{run}");
    run
}

both_dbs!(quota_api_crud_permissions_and_defaults, |app| {
    create_project(&app, "p1", Some(1000)).await;
    let p1 = project_id(&app, "p1").await;
    let q = quota_of(&app, "p1").await;
    assert_eq!(q["hard"]["storage"], 1000);
    assert_eq!(q["used"]["storage"], 0);
    assert_eq!(q["ref"], json!({"id": p1, "name": "p1", "owner_name": "admin"}));
    assert!(q["creation_time"].as_str().unwrap().ends_with('Z'), "{q}");
    let id = q["id"].as_i64().unwrap();

    // The list: every project (library is unlimited), sorted, paged.
    let r = admin_api(&app, Method::GET, "/api/v2.0/quotas", json!(null)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-total-count"), Some("2"));
    let r = admin_api(&app, Method::GET, "/api/v2.0/quotas?sort=-hard.storage", json!(null)).await;
    let names: Vec<_> = r.json().as_array().unwrap().iter().map(|q| q["ref"]["name"].clone()).collect();
    assert_eq!(names, vec![json!("p1"), json!("library")]);
    let r =
        admin_api(&app, Method::GET, "/api/v2.0/quotas?sort=hard.storage&page_size=1&page=2", json!(null))
            .await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    assert_eq!(r.json()[0]["ref"]["name"], "p1");
    assert!(r.header("link").unwrap().contains("rel=\"prev\""), "{:?}", r.header("link"));
    for bad in ["sort=name", "reference=repository", "reference_id=abc", "reference_id=-1", "page_size=1000"]
    {
        let r = admin_api(&app, Method::GET, &format!("/api/v2.0/quotas?{bad}"), json!(null)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text());
        assert_eq!(r.error_code(), "BAD_REQUEST");
    }
    let r = admin_api(&app, Method::GET, "/api/v2.0/quotas?reference_id=999999", json!(null)).await;
    assert_eq!((r.status, r.header("x-total-count")), (StatusCode::OK, Some("0")));

    // One quota; an update; an audit row.
    let r = admin_api(&app, Method::GET, &format!("/api/v2.0/quotas/{id}"), json!(null)).await;
    assert_eq!(r.json(), q);
    let r =
        admin_api(&app, Method::PUT, &format!("/api/v2.0/quotas/{id}"), json!({"hard": {"storage": 2048}}))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(quota_of(&app, "p1").await["hard"]["storage"], 2048);
    let summary = admin_api(&app, Method::GET, "/api/v2.0/projects/p1/summary", json!(null)).await.json();
    assert_eq!(summary["quota"], json!({"hard": {"storage": 2048}, "used": {"storage": 0}}));
    app.state.audit.flush(&app.state.db).await.unwrap();
    let audit: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT operation, resource, detail FROM audit_log WHERE resource_type = 'quota' ORDER BY id",
    )
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(audit, vec![("update".into(), "p1".into(), "storage 1000 -> 2048".into())]);

    // Bad input: 400; unknown id: 404.
    for body in [
        json!({"hard": {"storage": -2}}),
        json!({"hard": {"storage": (1i64 << 50) + 1}}),
        json!({"hard": {"storage": "big"}}),
        json!({"hard": {}}),
        json!({"soft": 1}),
    ] {
        let r = admin_api(&app, Method::PUT, &format!("/api/v2.0/quotas/{id}"), body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text());
        r.error_code();
    }
    assert_eq!(quota_of(&app, "p1").await["hard"]["storage"], 2048, "unchanged by refused updates");
    let r = admin_api(&app, Method::GET, "/api/v2.0/quotas/999999", json!(null)).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::NOT_FOUND, "NOT_FOUND".into()));
    let r = admin_api(&app, Method::PUT, "/api/v2.0/quotas/999999", json!({"hard": {"storage": 1}})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = admin_api(&app, Method::GET, "/api/v2.0/quotas/abc", json!(null)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Only system admins (Harbor): a project admin of p1 may not read or change it.
    create_user(&app.state.db, "dev", PW, false).await;
    let r = crate::common::member(&app, "p1", "dev", 1).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let dev = basic("dev", PW);
    for (m, path, body) in [
        (Method::GET, "/api/v2.0/quotas".to_string(), json!(null)),
        (Method::GET, format!("/api/v2.0/quotas/{id}"), json!(null)),
        (Method::PUT, format!("/api/v2.0/quotas/{id}"), json!({"hard": {"storage": -1}})),
    ] {
        let r = api(&app, m.clone(), &path, &dev, body.clone()).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "FORBIDDEN".into()), "{m} {path}");
        let r = api(&app, m.clone(), &path, "", body).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{m} {path}");
    }
    assert_eq!(quota_of(&app, "p1").await["hard"]["storage"], 2048);

    // storage_limit on create: an admin's is taken (400 when invalid); anyone else gets the
    // `storage_per_project` default, as does an admin sending 0.
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/projects",
        &dev,
        json!({"project_name": "d1", "storage_limit": 5}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(quota_of(&app, "d1").await["hard"]["storage"], -1);
    let r =
        admin_api(&app, Method::PUT, "/api/v2.0/configurations", json!({"storage_per_project": 4096})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let conf = admin_api(&app, Method::GET, "/api/v2.0/configurations", json!(null)).await.json();
    assert_eq!(conf["storage_per_project"]["value"], 4096);
    let r =
        admin_api(&app, Method::PUT, "/api/v2.0/configurations", json!({"storage_per_project": -7})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/projects",
        &dev,
        json!({"project_name": "d2", "storage_limit": -1}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(quota_of(&app, "d2").await["hard"]["storage"], 4096);
    create_project(&app, "a0", Some(0)).await;
    assert_eq!(quota_of(&app, "a0").await["hard"]["storage"], 4096);
    create_project(&app, "a1", Some(-1)).await;
    assert_eq!(quota_of(&app, "a1").await["hard"]["storage"], -1);
    let r = admin_api(
        &app,
        Method::POST,
        "/api/v2.0/projects",
        json!({"project_name": "a2", "storage_limit": -3}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());

    // Deleting a project deletes its quota.
    let r = admin_api(&app, Method::DELETE, "/api/v2.0/projects/a1", json!(null)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let left: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM quotas").fetch_one(&app.state.db.pool).await.unwrap();
    assert_eq!(left, 5);
});

both_dbs!(pushes_are_refused_over_the_quota, |app| {
    create_project(&app, "p1", Some(10_000)).await;
    let l1 = vec![1u8; 3000];
    let (_, m1) = push_image(&app, "p1/app", "v1", &[&l1]).await;
    let mut u = used(&app, "p1").await;
    assert_eq!(u as usize, CONFIG.len() + l1.len() + m1.len());
    assert_eq!(u, truth(&app, "p1").await);

    // Monolithic upload over the limit: refused, nothing charged, nothing linked.
    let l2 = vec![2u8; 4000];
    push_blob(&app, "p1/app", &l2).await;
    u += 4000;
    assert_eq!(used(&app, "p1").await, u);
    let l3 = vec![3u8; 4000];
    let r = post_blob(&app, &admin(), "p1/app", &l3).await;
    assert_denied(&r, "p1", 10_000, u, 4000);
    assert_eq!(used(&app, "p1").await, u);
    let r = app
        .call(
            Method::HEAD,
            &format!("/v2/p1/app/blobs/{}", sha256(&l3)),
            &[("authorization", &admin())],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The same through a chunked upload: the closing PUT is refused and the session is over.
    let loc = start_upload(&app, "p1/app").await;
    let r = patch_upload(&app, &loc, &[("content-type", "application/octet-stream")], &l3).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let r = close_upload(&app, &loc, &sha256(&l3), &[], b"").await;
    assert_denied(&r, "p1", 10_000, u, 4000);
    let r = app.get_with(&loc, &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "the session is gone");
    // A blob the project has already is never refused (nothing new), in any repository.
    push_blob(&app, "p1/other", &l1).await;
    assert_eq!(used(&app, "p1").await, u);

    // A cross-repository mount of a blob the project does not have: refused the same way.
    push_blob(&app, "library/src", &l3).await;
    let r = app
        .call(
            Method::POST,
            &format!("/v2/p1/app/blobs/uploads/?mount={}&from=library/src", sha256(&l3)),
            &[("authorization", &admin())],
            vec![],
        )
        .await;
    assert_denied(&r, "p1", 10_000, u, 4000);

    // A manifest: its own bytes count. At the limit exactly, a new manifest is refused...
    set_hard(&app, "p1", u).await;
    let m2 = image_manifest(CONFIG, &[&l1, &l2]);
    let r = put_manifest(&app, "p1/app", "v2", OCI_MANIFEST, &m2).await;
    assert_denied(&r, "p1", u, u, m2.len() as i64);
    let r = app.get_with("/v2/p1/app/manifests/v2", &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // ...re-pushing what is stored is not (nothing new), and neither is anything when unlimited.
    let r = put_manifest(&app, "p1/app", "again", OCI_MANIFEST, &m1).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    set_hard(&app, "p1", -1).await;
    let r = put_manifest(&app, "p1/app", "v2", OCI_MANIFEST, &m2).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    push_blob(&app, "p1/app", &l3).await;
    assert_eq!(used(&app, "p1").await, u + m2.len() as i64 + 4000);
    // A limit lowered under the usage refuses new bytes only.
    set_hard(&app, "p1", 100).await;
    let r = post_blob(&app, &admin(), "p1/app", b"one more").await;
    assert_denied(&r, "p1", 100, u + m2.len() as i64 + 4000, 8);
    let r = app.get_with("/v2/p1/app/manifests/v1", &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::OK);
});

both_dbs!(a_blob_is_counted_once_per_project, |app| {
    create_project(&app, "p1", None).await;
    create_project(&app, "p2", None).await;
    let shared = vec![9u8; 5000];
    let (_, m1) = push_image(&app, "p1/one", "v1", &[&shared]).await;
    let (_, m2) = push_image(&app, "p1/two", "v1", &[&shared]).await;
    assert_eq!(m1, m2);
    push_image(&app, "p2/three", "v1", &[&shared]).await;
    let once = (CONFIG.len() + shared.len() + m1.len()) as i64;
    assert_eq!(used(&app, "p1").await, once);
    assert_eq!(used(&app, "p2").await, once, "and once in every other project");
    // At the limit, pushing the same content again anywhere in the project is fine.
    set_hard(&app, "p1", once).await;
    push_image(&app, "p1/four", "v1", &[&shared]).await;
    assert_eq!(used(&app, "p1").await, once);
    // The summary and the project list say the same.
    let s = admin_api(&app, Method::GET, "/api/v2.0/projects/p1/summary", json!(null)).await.json();
    assert_eq!(s["quota"], json!({"hard": {"storage": once}, "used": {"storage": once}}));
    let list = admin_api(&app, Method::GET, "/api/v2.0/projects?name=p1", json!(null)).await.json();
    assert_eq!(list[0]["storage_used"], once);
});

both_dbs!(deleting_then_gc_gives_bytes_back, toml = NOW, |app| {
    create_project(&app, "p1", Some(100_000)).await;
    create_project(&app, "q", None).await;
    let (a, b) = (vec![1u8; 5000], vec![2u8; 7000]);
    let (_, ma) = push_image(&app, "p1/a", "v1", &[&a]).await;
    let (_, mb) = push_image(&app, "p1/b", "v1", &[&b]).await;
    // `b` is also used by another project: GC keeps its bytes, but p1 is no longer charged.
    push_image(&app, "q/x", "v1", &[&b]).await;
    let full = (CONFIG.len() + a.len() + b.len() + ma.len() + mb.len()) as i64;
    assert_eq!(used(&app, "p1").await, full);
    // A delete frees nothing until GC (Harbor).
    let r = admin_api(&app, Method::DELETE, "/api/v2.0/projects/p1/repositories/a", json!(null)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(used(&app, "p1").await, full);
    let run = gc(&app).await;
    let rest = (CONFIG.len() + b.len() + mb.len()) as i64;
    assert_eq!(used(&app, "p1").await, rest, "{run}");
    assert_eq!(rest, truth(&app, "p1").await);
    let r = admin_api(&app, Method::DELETE, "/api/v2.0/projects/p1/repositories/b", json!(null)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    gc(&app).await;
    assert_eq!(used(&app, "p1").await, 0);
    let qx = used(&app, "q").await;
    assert_eq!(qx, truth(&app, "q").await);
    assert!(qx > 7000, "{qx}");
    // The freed room is usable again.
    set_hard(&app, "p1", 6000).await;
    push_image(&app, "p1/a", "v2", &[&a]).await;
});

both_dbs!(gc_repairs_a_corrupted_counter, toml = NOW, |app| {
    create_project(&app, "p1", None).await;
    push_image(&app, "p1/a", "v1", &[&vec![1u8; 5000]]).await;
    let right = used(&app, "p1").await;
    let p1 = project_id(&app, "p1").await;
    let db = &app.state.db;
    sqlx::query("UPDATE quota_usage SET bytes = bytes + 123456 WHERE project_id = $1")
        .bind(p1)
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO quota_usage (project_id, shard, bytes) VALUES ($1, 999, -7)")
        .bind(p1)
        .execute(&db.pool)
        .await
        .unwrap();
    let wrong = used(&app, "p1").await;
    assert_ne!(wrong, right);
    // The repair job (GC's last step) recomputes it; the log says what it changed.
    let run = gc(&app).await;
    assert_eq!(used(&app, "p1").await, right, "{run}");
    let log = app
        .get_with(&format!("/api/v2.0/system/gc/{}/log", run["id"]), &[("authorization", &admin())])
        .await
        .text();
    assert!(log.contains(&format!("project {p1} usage repaired from {wrong} to {right} bytes")), "{log}");
    // A lost charge (the ledger row itself) is restored from the artifacts too.
    sqlx::query("DELETE FROM project_blobs WHERE project_id = $1 AND size = 5000")
        .bind(p1)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(server::quota::repair(db, p1).await.unwrap(), (right, right));
    assert_eq!(used(&app, "p1").await, right);
});

// 16 pushers at once into one project near its limit, several rounds: every push is either
// admitted or refused with 412 DENIED; the limit is never exceeded by more than the blobs in
// flight beside the one that crossed it (on SQLite, writers are serialised: never at all); no
// push that fits is refused; the counter always equals the ledger.
both_dbs!(concurrent_pushes_at_the_edge_of_the_quota, |app| {
    const PUSHERS: usize = 16;
    const SIZE: i64 = 20_000;
    let hard = 7 * SIZE + SIZE / 2;
    create_project(&app, "p1", Some(hard)).await;
    let p1 = project_id(&app, "p1").await;
    let sqlite = app.state.db.kind == server::db::DbKind::Sqlite;
    let mut admitted_total = 0;
    for round in 0..3u8 {
        if round > 0 {
            // Room again for the next round: free everything by raising the limit.
            set_hard(&app, "p1", hard + round as i64 * 8 * SIZE).await;
        }
        let limit = hard + round as i64 * 8 * SIZE;
        let before = used(&app, "p1").await;
        let mut tasks = vec![];
        for i in 0..PUSHERS {
            let router = app.router.clone();
            let data: Vec<u8> =
                (0..SIZE).map(|j| (j as usize * 31 + i * 7 + round as usize * 131) as u8).collect();
            let mut data = data;
            data[0] = round;
            data[1] = i as u8;
            tasks.push(tokio::spawn(async move {
                use http_body_util::BodyExt;
                use tower::ServiceExt;
                let req = axum::http::Request::post(format!(
                    "/v2/p1/r{}/blobs/uploads/?digest={}",
                    i % 4,
                    sha256(&data)
                ))
                .header("authorization", admin())
                .body(axum::body::Body::from(data))
                .unwrap();
                let resp = router.oneshot(req).await.unwrap();
                let status = resp.status();
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                (status, body)
            }));
        }
        let mut admitted = 0i64;
        for t in tasks {
            let (status, body) = t.await.unwrap();
            match status {
                StatusCode::CREATED => admitted += 1,
                StatusCode::PRECONDITION_FAILED => {
                    let j: Value = serde_json::from_slice(&body).unwrap();
                    assert_eq!(j["errors"][0]["code"], "DENIED", "{j}");
                }
                s => panic!("unexpected {s}: {}", String::from_utf8_lossy(&body)),
            }
        }
        admitted_total += admitted;
        let after = used(&app, "p1").await;
        assert_eq!(after, before + admitted * SIZE, "round {round}: the counter is what was admitted");
        let fits = (limit - before) / SIZE;
        assert!(admitted >= fits.min(PUSHERS as i64), "round {round}: {admitted} admitted, {fits} fit");
        if sqlite {
            assert!(after <= limit, "round {round}: {after} > {limit}");
        } else {
            // Over by at most the other blobs in flight (PUSHERS - 1 of them).
            assert!(after <= limit + (PUSHERS as i64 - 1) * SIZE, "round {round}: {after} vs {limit}");
        }
        // Once the pushes settle, the limit holds exactly.
        let r = post_blob(&app, &admin(), "p1/r0", &vec![round + 100; SIZE as usize]).await;
        if after + SIZE > limit {
            assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.text());
        } else {
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
            admitted_total += 1;
        }
    }
    let (before, after) = server::quota::repair(&app.state.db, p1).await.unwrap();
    assert_eq!(before, after, "the sharded counter equals the ledger");
    assert_eq!(after, admitted_total * SIZE);
});

struct Quiet;

impl server::replication::copy::CopyObserver for Quiet {
    fn log(&self, _: String) {}
    fn transferred(&self, _: u64) {}
    fn should_stop(&self) -> bool {
        false
    }
}

// Replication (and the proxy cache) write through `registry::internal`, the same code as a push:
// the copy into a project without room is refused with the quota's message, and once there is
// room it is counted like a push.
both_dbs!(replicated_artifacts_are_counted_and_refused_like_pushes, |app| {
    use server::replication::content::ContentError;
    use server::replication::copy::{copy_artifact, CopyOptions, Side};
    use server::replication::local::LocalRegistry;
    let db = if app.config.database.url.starts_with("sqlite") {
        crate::common::DbChoice::Sqlite
    } else {
        crate::common::DbChoice::Postgres
    };
    let src = TestApp::new(db).await;
    let layer = vec![5u8; 8000];
    push_image(&src, "library/img", "v1", &[&layer]).await;
    create_project(&app, "p1", Some(4000)).await;
    let (from, to) = (
        LocalRegistry::new(src.state.clone(), "replication"),
        LocalRegistry::new(app.state.clone(), "replication"),
    );
    let opts = CopyOptions { parallel_blobs: 1, override_existing: false, ..CopyOptions::default() };
    let copy = || {
        copy_artifact(
            Side { content: &from, repo: "library/img", reference: "v1" },
            Side { content: &to, repo: "p1/img", reference: "v1" },
            &opts,
            &Quiet,
        )
    };
    match copy().await {
        Err(ContentError::Denied(m)) => {
            assert!(m.contains("quota exceeded: project p1 storage limit 3.9 KiB"), "{m}")
        }
        other => panic!("expected the quota's refusal, got {other:?}"),
    }
    let r = app.get_with("/v2/p1/img/manifests/v1", &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(used(&app, "p1").await <= 4000);
    set_hard(&app, "p1", -1).await;
    copy().await.expect("copy with room");
    assert_eq!(used(&app, "p1").await, truth(&app, "p1").await);
    assert!(used(&app, "p1").await > 8000);
});

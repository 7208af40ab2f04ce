//! Storage usage: shared blobs counted once per project, cached and following pushes and
//! deletes.

use super::*;

both_dbs!(storage_usage_counts_shared_blobs_once_per_project, toml = NOW, |app| {
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

both_dbs!(storage_usage_is_cached_and_follows_pushes_and_deletes, toml = NOW, |app| {
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

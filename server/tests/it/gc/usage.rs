//! Storage usage: shared blobs counted once per project, in the summary, the project list and
//! the GC usage overview. How usage follows deletes and GC, and its repair, is tested with the
//! quotas (`quotas.rs`), whose ledger it is.

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

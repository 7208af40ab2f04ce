//! Repositories, copies, search, statistics and permissions through `/api/v2.0`; cookie writes
//! and the CSRF token; every write endpoint under lock contention.

use super::*;

both_dbs!(repositories_copy_search_and_statistics, |app| {
    api(&app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": "p1"})).await;
    api(&app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": "p2"})).await;
    api(
        &app,
        Method::POST,
        "/api/v2.0/projects",
        &admin(),
        json!({"project_name": "pub", "metadata": {"public": "true"}}),
    )
    .await;
    user(&app, "dev", "p1", 2).await;
    user(&app, "lguest", "p1", 5).await;
    user(&app, "outsider", "pub", 0).await;
    let d = image(&app, "p1/team/app", "v1", b"nested", "amd64").await;
    image(&app, "pub/tool", "v1", b"tool", "amd64").await;

    // Nested names travel double-encoded.
    let repo = "/api/v2.0/projects/p1/repositories/team%252Fapp";
    let r = app.get_with(repo, &[("authorization", &basic("dev", PW))]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["name"], "p1/team/app");
    assert_eq!(r.json()["artifact_count"], 1);
    assert_eq!(
        api(&app, Method::PUT, repo, &basic("lguest", PW), json!({"description": "x"})).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api(&app, Method::PUT, repo, &basic("dev", PW), json!({"description": "the app"})).await.status,
        StatusCode::OK
    );
    assert_eq!(app.get_with(repo, &[("authorization", &admin())]).await.json()["description"], "the app");
    assert_eq!(
        app.get_with(&format!("{repo}/artifacts/v1"), &[("authorization", &basic("lguest", PW))])
            .await
            .json()["digest"],
        d.as_str()
    );
    let in_p1 = app
        .get_with(
            "/api/v2.0/projects/p1/repositories?q=name%3D~team",
            &[("authorization", &basic("lguest", PW))],
        )
        .await;
    assert_eq!(in_p1.header("x-total-count"), Some("1"));
    assert_eq!(
        app.get_with("/api/v2.0/projects/p1/repositories", &[("authorization", &basic("outsider", PW))])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let names = |v: Value| {
        v.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            app.get_with("/api/v2.0/repositories", &[("authorization", &basic("outsider", PW))]).await.json()
        ),
        ["pub/tool"]
    );
    assert_eq!(
        names(
            app.get_with("/api/v2.0/repositories?sort=-name", &[("authorization", &basic("dev", PW))])
                .await
                .json()
        ),
        ["pub/tool", "p1/team/app"]
    );
    assert_eq!(names(app.get("/api/v2.0/repositories").await.json()), ["pub/tool"]);

    // Copy: pull rights on the source, push rights on the target; the copy pulls over /v2.
    let copy = |auth: String, from: &str| {
        let app = &app;
        let path = format!(
            "/api/v2.0/projects/p2/repositories/copied/artifacts?from={}",
            url::form_urlencoded::byte_serialize(from.as_bytes()).collect::<String>()
        );
        async move { app.call(Method::POST, &path, &[("authorization", &auth)], vec![]).await }
    };
    assert_eq!(
        copy(basic("dev", PW), "p1/team/app:v1").await.status,
        StatusCode::FORBIDDEN,
        "dev cannot push to p2"
    );
    assert_eq!(copy(admin(), "p1/team/app:nope").await.status, StatusCode::NOT_FOUND);
    assert_eq!(copy(admin(), "garbage").await.status, StatusCode::BAD_REQUEST);
    let r = copy(admin(), "p1/team/app:v1").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(r.header("location").unwrap().ends_with(&d));
    let m = app.get_with("/v2/p2/copied/manifests/v1", &[("authorization", &admin())]).await;
    assert_eq!(m.status, StatusCode::OK);
    let layer = m.json()["layers"][0]["digest"].as_str().unwrap().to_string();
    let b = app.get_with(&format!("/v2/p2/copied/blobs/{layer}"), &[("authorization", &admin())]).await;
    assert_eq!(b.body, b"nested");
    assert_eq!(
        app.get_with(
            &format!("/api/v2.0/projects/p2/repositories/copied/artifacts/{d}"),
            &[("authorization", &admin())]
        )
        .await
        .status,
        StatusCode::OK
    );

    // Search and statistics see what the caller may see.
    let s = app.get_with("/api/v2.0/search?q=app", &[("authorization", &basic("dev", PW))]).await.json();
    assert_eq!(s["repository"][0]["repository_name"], "p1/team/app");
    assert_eq!(s["repository"][0]["artifact_count"], 1);
    let s = app.get_with("/api/v2.0/search?q=p", &[("authorization", &basic("outsider", PW))]).await.json();
    let projects: Vec<&str> =
        s["project"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(projects, ["pub"]);
    assert_eq!(
        app.get_with("/api/v2.0/search", &[("authorization", &admin())]).await.status,
        StatusCode::BAD_REQUEST
    );
    let st = app.get_with("/api/v2.0/statistics", &[("authorization", &admin())]).await.json();
    assert_eq!(st["total_project_count"], 4);
    assert_eq!(st["private_repo_count"], 2);
    assert_eq!(st["public_repo_count"], 1);
    assert!(st["total_storage_consumption"].as_i64().unwrap() > 0);
    let st = app.get_with("/api/v2.0/statistics", &[("authorization", &basic("outsider", PW))]).await.json();
    assert_eq!(
        (st["total_project_count"].as_i64(), st["total_storage_consumption"].as_i64()),
        (Some(2), Some(0))
    );
    assert_eq!(app.get("/api/v2.0/statistics").await.status, StatusCode::UNAUTHORIZED);

    // Permissions, summary and metadata.
    let pid = app.get_with("/api/v2.0/projects/p1", &[("authorization", &admin())]).await.json()
        ["project_id"]
        .as_i64()
        .unwrap();
    let perms = app
        .get_with(
            &format!("/api/v2.0/users/current/permissions?scope=/project/{pid}&relative=true"),
            &[("authorization", &basic("lguest", PW))],
        )
        .await
        .json();
    let has =
        |r: &str, a: &str| perms.as_array().unwrap().iter().any(|p| p["resource"] == r && p["action"] == a);
    assert!(has("repository", "pull") && has("artifact", "list"));
    assert!(!has("repository", "push") && !has("member", "list") && !has("log", "list"));
    assert_eq!(
        app.get_with("/api/v2.0/users/current/permissions?scope=/nowhere", &[("authorization", &admin())])
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let sum =
        app.get_with("/api/v2.0/projects/p1/summary", &[("authorization", &basic("dev", PW))]).await.json();
    assert_eq!(
        (sum["repo_count"].as_i64(), sum["developer_count"].as_i64(), sum["project_admin_count"].as_i64()),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(
        app.get_with("/api/v2.0/projects/p1/summary", &[("authorization", &basic("lguest", PW))])
            .await
            .json()["developer_count"],
        0
    );
    assert_eq!(
        app.get_with("/api/v2.0/projects/p1/metadatas", &[("authorization", &basic("dev", PW))]).await.json(),
        json!({"public": "false"})
    );
    assert_eq!(
        api(
            &app,
            Method::PUT,
            "/api/v2.0/projects/p1/metadatas/public",
            &basic("dev", PW),
            json!({"public": "true"})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api(&app, Method::PUT, "/api/v2.0/projects/p1/metadatas/color", &admin(), json!({"color": "red"}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api(&app, Method::PUT, "/api/v2.0/projects/p1/metadatas/public", &admin(), json!({"public": "true"}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get_with("/api/v2.0/projects/p1", &[("authorization", &basic("outsider", PW))]).await.json()
            ["metadata"]["public"],
        "true"
    );

    // Repository delete is logical and immediate.
    assert_eq!(
        app.call(Method::DELETE, repo, &[("authorization", &basic("dev", PW))], vec![]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(Method::DELETE, repo, &[("authorization", &admin())], vec![]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get_with("/v2/p1/team/app/manifests/v1", &[("authorization", &admin())]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get_with(repo, &[("authorization", &admin())]).await.status, StatusCode::NOT_FOUND);
});

both_dbs!(cookie_writes_need_the_csrf_token, |app| {
    let (cookie, csrf) = app.login("admin", ADMIN_PASSWORD).await;
    let body = json!({"project_name": "viasession"}).to_string();
    let r = app
        .call(
            Method::POST,
            "/api/v2.0/projects",
            &[("cookie", &cookie), ("content-type", "application/json")],
            body.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "FORBIDDEN");
    let r = app
        .call(
            Method::POST,
            "/api/v2.0/projects",
            &[("cookie", &cookie), ("content-type", "application/json"), ("x-harbor-csrf-token", &csrf)],
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = app.get_with("/api/v2.0/repositories", &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::OK);
});

/// Every write endpoint in a loop, from several clients at once, while the product's own
/// background writers run (audit writer, pull counter, job runner with a GC every second and
/// its heartbeats, usage refreshes, session writes and expiry): no request may fail with a 5xx
/// ("database is locked" on SQLite was a 503 for 1 loop in 8).
async fn writes_never_fail_on_lock_contention(app: TestApp, workers: usize, rounds: usize) {
    let app = std::sync::Arc::new(app);
    let state = app.state.clone();
    // The product's own loops, as `serve` starts them (supervised).
    server::serve::start_loops(&state);
    let mut background = vec![];
    if let server::sessions::Store::Sql(store) = &state.sessions {
        let store = store.clone();
        background.push(tokio::spawn(async move {
            loop {
                let _ = store.delete_expired().await;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }));
    }
    let r = api(
        &app,
        Method::PUT,
        "/api/v2.0/system/gc/schedule",
        &admin(),
        json!({"schedule": {"type": "Custom", "cron": "* * * * * *"}, "parameters": {"dry_run": true}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r =
        api(&app, Method::POST, "/api/v2.0/users", &admin(), json!({"username": "member", "password": PW}))
            .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

    let mut tasks = vec![];
    for w in 0..workers {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let a = admin();
            let mut calls = 0usize;
            for i in 0..rounds {
                let p = format!("w{w}r{i}");
                let expect = |r: crate::common::Resp, want: StatusCode, what: &str| {
                    assert_eq!(r.status, want, "worker {w} round {i}: {what}: {}", r.text());
                    r
                };
                let step = |m: Method, path: String, body: Value| {
                    let app = app.clone();
                    let a = a.clone();
                    async move { api(&app, m, &path, &a, body).await }
                };
                let proj = format!("/api/v2.0/projects/{p}");
                expect(step(Method::POST, "/api/v2.0/projects".into(), json!({"project_name": p})).await, StatusCode::CREATED, "create project");
                expect(step(Method::PUT, proj.clone(), json!({"metadata": {"public": "true"}})).await, StatusCode::OK, "update project");
                let r = expect(
                    step(Method::POST, format!("{proj}/members"), json!({"role_id": 2, "member_user": {"username": "member"}})).await,
                    StatusCode::CREATED,
                    "add member",
                );
                let mid = r.header("location").unwrap().rsplit('/').next().unwrap().to_string();
                expect(step(Method::PUT, format!("{proj}/members/{mid}"), json!({"role_id": 3})).await, StatusCode::OK, "update member");
                let d = image(&app, &format!("{p}/app"), "v1", format!("layer {p}").as_bytes(), "amd64").await;
                let pulled = app.get_with(&format!("/v2/{p}/app/manifests/v1"), &[("authorization", &a)]).await;
                expect(pulled, StatusCode::OK, "pull");
                let art = format!("{proj}/repositories/app/artifacts/{d}");
                expect(step(Method::POST, format!("{art}/tags"), json!({"name": "v2"})).await, StatusCode::CREATED, "create tag");
                expect(step(Method::DELETE, format!("{art}/tags/v2"), Value::Null).await, StatusCode::OK, "delete tag");
                let from = format!("{p}/app:v1").replace('/', "%2F").replace(':', "%3A");
                expect(step(Method::POST, format!("{proj}/repositories/copy/artifacts?from={from}"), Value::Null).await, StatusCode::CREATED, "copy");
                expect(step(Method::PUT, format!("{proj}/repositories/app"), json!({"description": "d"})).await, StatusCode::OK, "update repository");
                let robot = json!({"name": format!("ci{i}"), "level": "project", "duration": -1,
                    "permissions": [{"kind": "project", "namespace": p, "access": [{"resource": "repository", "action": "pull"}]}]});
                let r = expect(step(Method::POST, "/api/v2.0/robots".into(), robot).await, StatusCode::CREATED, "create robot");
                let rid = r.json()["id"].as_i64().unwrap();
                expect(step(Method::PATCH, format!("/api/v2.0/robots/{rid}"), json!({"secret": "Ab1defghijkl"})).await, StatusCode::OK, "refresh robot");
                expect(step(Method::DELETE, format!("/api/v2.0/robots/{rid}"), Value::Null).await, StatusCode::OK, "delete robot");
                let _ = app.get_with(&format!("{proj}/summary"), &[("authorization", &a)]).await;
                expect(step(Method::DELETE, format!("{proj}/members/{mid}"), Value::Null).await, StatusCode::OK, "remove member");
                expect(step(Method::DELETE, format!("{proj}/repositories/copy/artifacts/{d}"), Value::Null).await, StatusCode::OK, "delete artifact");
                expect(step(Method::DELETE, format!("{proj}/repositories/copy"), Value::Null).await, StatusCode::OK, "delete copy");
                expect(step(Method::DELETE, format!("{proj}/repositories/app"), Value::Null).await, StatusCode::OK, "delete repository");
                // The reported failure: the project's delete right after its last repository's.
                expect(step(Method::DELETE, proj.clone(), Value::Null).await, StatusCode::OK, "delete project");
                let u = format!("u{w}x{i}");
                let r = expect(step(Method::POST, "/api/v2.0/users".into(), json!({"username": u, "password": PW})).await, StatusCode::CREATED, "create user");
                let uid = r.header("location").unwrap().rsplit('/').next().unwrap().to_string();
                expect(step(Method::PUT, format!("/api/v2.0/users/{uid}"), json!({"email": format!("{u}@x.io")})).await, StatusCode::OK, "update user");
                expect(step(Method::PUT, format!("/api/v2.0/users/{uid}/sysadmin"), json!({"sysadmin_flag": true})).await, StatusCode::OK, "sysadmin");
                app.login(&u, PW).await;
                expect(step(Method::DELETE, format!("/api/v2.0/users/{uid}"), Value::Null).await, StatusCode::OK, "delete user");
                expect(step(Method::PUT, "/api/v2.0/configurations".into(), json!({"self_registration": i % 2 == 0})).await, StatusCode::OK, "configurations");
                calls += 27;
            }
            calls
        }));
    }
    let mut calls = 0;
    for t in tasks {
        calls += t.await.expect("a worker failed");
    }
    for b in background {
        b.abort();
    }
    assert_eq!(calls, workers * rounds * 27);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_writes_never_fail_on_lock_contention() {
    writes_never_fail_on_lock_contention(TestApp::new(crate::common::DbChoice::Sqlite).await, 4, 25).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_writes_never_fail_on_lock_contention() {
    writes_never_fail_on_lock_contention(TestApp::new(crate::common::DbChoice::Postgres).await, 4, 10).await;
}

//! GC runs as jobs: the API's permissions, conflicts, stop and schedule, a dead replica's job
//! taken back, pushes racing a run, and stopping a running GC.

use super::*;

both_dbs!(api_permissions_conflicts_stop_and_schedule, toml = NOW, |app| {
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

both_dbs!(job_of_a_dead_replica_is_taken_back, toml = NOW, |app| {
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

both_dbs!(pushes_racing_gc_never_leave_a_dangling_reference, toml = NOW, |app| {
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

both_dbs!(stopping_a_running_gc, toml = NOW, |app| {
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

//! Runs and tasks on the job queue with the test double: resources from the database with the
//! filters, destination names, success, a failure with its message, a transient failure
//! retried, concurrent tasks, one active run per policy under concurrent starts, stop (pending
//! and running tasks), the schedule firing once across two replicas, events, deletions, and a
//! dead replica's task finished once elsewhere.

use server::jobs;
use server::replication::execution::SKIPPED;

use super::*;

async fn run_jobs(state: &AppState) {
    jobs::tick(state, "replica-1").await.unwrap();
}

both_dbs!(push_run_copies_filtered_artifacts_concurrently, |app| {
    let reg = registry(&app, "peer").await;
    let d1 = image(&app, "library/app", "v1").await;
    let d2 = image(&app, "library/app", "v2-rc").await;
    let d3 = image(&app, "library/sub/tool", "v1").await;
    project(&app, "other").await;
    image(&app, "other/app", "v1").await;
    let double = Arc::new(Double::default());
    let state = with_double(&app, &double);
    let filters = json!([{"type": "name", "value": "library/**"}, {"type": "tag", "value": "*-rc*", "decoration": "excludes"}]);
    let id = create_policy(&app, push_policy("p", reg, json!({"filters": filters}))).await;
    let exec = start(&app, id).await;
    assert_eq!(execution(&app, exec).await["status"], "Pending");
    run_jobs(&state).await;
    let e = execution(&app, exec).await;
    assert_eq!(e["status"], "Succeed", "{e}");
    assert_eq!(
        (e["total"].as_i64(), e["succeed"].as_i64(), e["failed"].as_i64()),
        (Some(2), Some(2), Some(0))
    );
    assert_eq!(e["trigger"], "manual");
    assert!(e["end_time"].as_str().unwrap() > e["start_time"].as_str().unwrap());
    // Flattening with replace count 1: library/app → mirror/app, library/sub/tool → mirror/sub/tool.
    assert_eq!(
        double.copies(),
        vec![
            ("library/app".into(), d1.clone(), "mirror/app".into(), "v1".into()),
            ("library/sub/tool".into(), d3.clone(), "mirror/sub/tool".into(), "v1".into()),
        ]
    );
    let _ = d2;
    assert!(double.namespaces.lock().unwrap().iter().all(|n| n == "mirror"));
    let ts = tasks(&app, exec).await;
    assert_eq!(ts.len(), 2);
    for t in &ts {
        assert_eq!(t["status"], "Succeed");
        assert_eq!(t["operation"], "copy");
        assert_eq!(t["resource_type"], "image");
        let log = task_log(&app, exec, t["id"].as_i64().unwrap()).await;
        assert!(log.contains("fake copy of library/"), "{log}");
        assert!(log.contains("done"), "{log}");
    }
    assert_eq!(ts[0]["src_resource"], "library/app:v1");
    assert_eq!(ts[0]["dst_resource"], "mirror/app:v1");
    // The two tasks ran at the same time.
    assert_eq!(double.running.lock().unwrap().1, 2);
    // Each replicated artifact has an audit row by `replication`.
    app.state.audit.flush(&app.state.db).await.unwrap();
    let log =
        api(&app, Method::GET, "/api/v2.0/audit-logs?q=username%3Dreplication", Value::Null).await.json();
    let res: Vec<&str> = log.as_array().unwrap().iter().map(|e| e["resource"].as_str().unwrap()).collect();
    assert!(res.contains(&"mirror/app:v1") && res.contains(&"mirror/sub/tool:v1"), "{res:?}");

    // Lists: by policy, status, trigger; bad values are 400s.
    let r = api(
        &app,
        Method::GET,
        &format!("/api/v2.0/replication/executions?policy_id={id}&status=Succeed"),
        Value::Null,
    )
    .await;
    assert_eq!(r.header("x-total-count"), Some("1"));
    assert_eq!(r.json()[0]["succeed"], 2);
    let r = api(&app, Method::GET, "/api/v2.0/replication/executions?trigger=scheduled", Value::Null).await;
    assert_eq!(r.header("x-total-count"), Some("0"));
    for bad in ["status=Done", "trigger=sometimes", "policy_id=x"] {
        let r = api(&app, Method::GET, &format!("/api/v2.0/replication/executions?{bad}"), Value::Null).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let r = api(
        &app,
        Method::GET,
        &format!("/api/v2.0/replication/executions/{exec}/tasks?status=Failed"),
        Value::Null,
    )
    .await;
    assert_eq!(r.header("x-total-count"), Some("0"));
    let r = api(
        &app,
        Method::GET,
        &format!("/api/v2.0/replication/executions/{exec}/tasks/99999/log"),
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api(&app, Method::GET, "/api/v2.0/replication/executions/99999/tasks", Value::Null).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Label filters read this registry's labels: `matches` keeps only the artifact carrying
    // every listed label, `excludes` every other one (four artifacts in all).
    let r = api(&app, Method::POST, "/api/v2.0/labels", json!({"name": "prod", "scope": "g"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let prod: i64 = r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap();
    let r = api(
        &app,
        Method::POST,
        &format!("/api/v2.0/projects/library/repositories/app/artifacts/{d2}/labels"),
        json!({"id": prod}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for (name, value, decoration, total) in [
        ("labels", json!(["prod"]), "matches", 1),
        ("labels-all", json!(["prod", "eu"]), "matches", 0),
        ("labels-excl", json!(["prod"]), "excludes", 3),
    ] {
        let label = json!({"filters": [{"type": "label", "value": value, "decoration": decoration}]});
        let lid = create_policy(&app, push_policy(name, reg, label)).await;
        let lexec = start(&app, lid).await;
        run_jobs(&state).await;
        let e = execution(&app, lexec).await;
        assert_eq!(
            (e["status"].as_str(), e["total"].as_i64()),
            (Some("Succeed"), Some(total)),
            "{name}: {e}"
        );
        if name == "labels" {
            let ts = tasks(&app, lexec).await;
            assert!(ts[0]["src_resource"].as_str().unwrap().contains("library/app:v2-rc"), "{ts:?}");
        }
    }
});

both_dbs!(task_failures_say_why_and_transient_errors_are_retried, |app| {
    let reg = registry(&app, "peer").await;
    image(&app, "library/good", "1").await;
    image(&app, "library/flaky", "1").await;
    image(&app, "library/denied", "1").await;
    let double = Arc::new(Double::default());
    double.script("mirror/flaky", vec![Step::Fail(ContentError::Transient("502 Bad Gateway".into()))]);
    double.script(
        "mirror/denied",
        vec![Step::Fail(ContentError::Unauthorized(
            "the registry refused the credentials of robot$x".into(),
        ))],
    );
    let state = with_double(&app, &double);
    let id = create_policy(&app, push_policy("p", reg, json!({}))).await;
    let exec = start(&app, id).await;
    run_jobs(&state).await;
    let e = execution(&app, exec).await;
    assert_eq!(e["status"], "Failed", "{e}");
    assert_eq!(
        (e["total"].as_i64(), e["succeed"].as_i64(), e["failed"].as_i64()),
        (Some(3), Some(2), Some(1))
    );
    let ts = tasks(&app, exec).await;
    let by_dst =
        |d: &str| ts.iter().find(|t| t["dst_resource"].as_str().unwrap().starts_with(d)).unwrap().clone();
    let denied = by_dst("mirror/denied");
    assert_eq!(denied["status"], "Failed");
    let log = task_log(&app, exec, denied["id"].as_i64().unwrap()).await;
    assert!(log.contains("unauthorized: the registry refused the credentials of robot$x"), "{log}");
    let (text,): (String,) = sqlx::query_as("SELECT status_text FROM replication_tasks WHERE id = $1")
        .bind(denied["id"].as_i64().unwrap())
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert!(text.contains("refused the credentials"), "{text}");
    let flaky = by_dst("mirror/flaky");
    assert_eq!(flaky["status"], "Succeed");
    let log = task_log(&app, exec, flaky["id"].as_i64().unwrap()).await;
    assert!(log.contains("502 Bad Gateway; retrying"), "{log}");
    let copied: Vec<String> = double.copies().into_iter().map(|c| c.2).collect();
    assert_eq!(copied, vec!["mirror/flaky".to_string(), "mirror/good".to_string()]);
});

both_dbs!(one_active_run_per_policy_under_concurrent_starts, |app| {
    let reg = registry(&app, "peer").await;
    image(&app, "library/app", "v1").await;
    let id = create_policy(&app, push_policy("p", reg, json!({}))).await;
    let starts = (0..6).map(|_| start(&app, id));
    let ids = futures::future::join_all(starts).await;
    let mut pending = 0;
    for e in &ids {
        let x = execution(&app, *e).await;
        match x["status"].as_str().unwrap() {
            "Pending" => pending += 1,
            "Failed" => assert_eq!(x["status_text"], SKIPPED),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(pending, 1, "exactly one run is active");
    let double = Arc::new(Double::default());
    run_jobs(&with_double(&app, &double)).await;
    assert_eq!(double.copies().len(), 1, "the skipped runs copied nothing");
    // Over: the next start runs.
    let next = start(&app, id).await;
    assert_eq!(execution(&app, next).await["status"], "Pending");
    // Without single-active, runs overlap.
    let mut body = push_policy("p2", reg, json!({"single_active_replication": false}));
    body["name"] = json!("p2");
    let id2 = create_policy(&app, body).await;
    let (a, b) = (start(&app, id2).await, start(&app, id2).await);
    assert_eq!(execution(&app, a).await["status"], "Pending");
    assert_eq!(execution(&app, b).await["status"], "Pending");
    // A disabled policy does not start.
    let mut off = push_policy("p3", reg, json!({"enabled": false}));
    off["name"] = json!("p3");
    let id3 = create_policy(&app, off).await;
    let r = api(&app, Method::POST, "/api/v2.0/replication/executions", json!({"policy_id": id3})).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = api(&app, Method::POST, "/api/v2.0/replication/executions", json!({"policy_id": 424242})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
});

both_dbs!(stop_ends_pending_and_running_tasks, |app| {
    let reg = registry(&app, "peer").await;
    image(&app, "library/a", "1").await;
    image(&app, "library/b", "1").await;
    let double = Arc::new(Double::default());
    double.script("mirror/a", vec![Step::Block]);
    double.script("mirror/b", vec![Step::Block]);
    let state = with_double(&app, &double);
    let id = create_policy(&app, push_policy("p", reg, json!({}))).await;

    // Pending tasks stop at once: run only the execution job (it creates the tasks).
    let exec = start(&app, id).await;
    let job = jobs::claim_of(&app.state.db, "w", jobs::Claim::Only(&["replication"])).await.unwrap().unwrap();
    let ctx = jobs::JobCtx::new(job.id, "w", &job.job_kind, &job.parameters);
    let st = state.clone();
    jobs::run_claimed(&app.state.db, ctx, |ctx| async move {
        server::replication::execution::run_execution_job(&st, ctx).await
    })
    .await;
    assert_eq!(execution(&app, exec).await["status"], "InProgress");
    // Its tasks read the policy as they run: editing it meanwhile is refused.
    let path = format!("/api/v2.0/replication/policies/{id}");
    let r = api(&app, Method::PUT, &path, push_policy("p", reg, json!({"description": "edited"}))).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.text());
    let r = api(&app, Method::PUT, &format!("/api/v2.0/replication/executions/{exec}"), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK);
    let e = execution(&app, exec).await;
    assert_eq!((e["status"].as_str(), e["stopped"].as_i64()), (Some("Stopped"), Some(2)), "{e}");
    run_jobs(&state).await;
    assert!(double.copies().is_empty());
    // Stopping a finished run is a no-op; an unknown one is a 404.
    let r = api(&app, Method::PUT, &format!("/api/v2.0/replication/executions/{exec}"), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api(&app, Method::PUT, "/api/v2.0/replication/executions/99999", Value::Null).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Running tasks stop at their next heartbeat.
    let exec = start(&app, id).await;
    let runner = tokio::spawn({
        let state = state.clone();
        async move { jobs::tick(&state, "replica-1").await }
    });
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while execution(&app, exec).await["in_progress"] != 2
        || tasks(&app, exec).await.iter().any(|t| t["status"] != "InProgress")
    {
        assert!(std::time::Instant::now() < until, "tasks never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = api(&app, Method::PUT, &format!("/api/v2.0/replication/executions/{exec}"), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK);
    runner.await.unwrap().unwrap();
    let e = execution(&app, exec).await;
    assert_eq!((e["status"].as_str(), e["stopped"].as_i64()), (Some("Stopped"), Some(2)), "{e}");
    let t = &tasks(&app, exec).await[0];
    let log = task_log(&app, exec, t["id"].as_i64().unwrap()).await;
    assert!(log.contains("stopped on request"), "{log}");
});

both_dbs!(scheduled_run_fires_once_across_two_replicas, |app| {
    let reg = registry(&app, "peer").await;
    image(&app, "library/app", "v1").await;
    let body = push_policy(
        "nightly",
        reg,
        json!({"trigger": {"type": "scheduled", "trigger_settings": {"cron": "0 0 3 * * *"}}}),
    );
    let id = create_policy(&app, body).await;
    // Make it due now, then two replicas race to fire it.
    sqlx::query("UPDATE schedules SET next_run = 1 WHERE kind = $1")
        .bind(format!("replication/{id}"))
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let other = app.sibling().await;
    let (a, b) = tokio::join!(jobs::fire_due(&app.state.db), jobs::fire_due(&other.state.db));
    assert_eq!(a.unwrap().len() + b.unwrap().len(), 1, "one firing cluster-wide");
    let double = Arc::new(Double::default());
    jobs::tick(&with_double(&other, &double), "replica-2").await.unwrap();
    let list =
        api(&app, Method::GET, &format!("/api/v2.0/replication/executions?policy_id={id}"), Value::Null)
            .await;
    assert_eq!(list.header("x-total-count"), Some("1"));
    let e = &list.json()[0];
    assert_eq!((e["trigger"].as_str(), e["status"].as_str()), (Some("scheduled"), Some("Succeed")), "{e}");
    assert_eq!(double.copies().len(), 1);
    // The schedule moved on.
    let s = jobs::get_schedule(&app.state.db, &format!("replication/{id}")).await.unwrap().unwrap();
    assert!(s.next_run > server::db::now_ms());
});

async fn runs_of(app: &TestApp, policy: i64) -> Value {
    let path = format!("/api/v2.0/replication/executions?policy_id={policy}");
    api(app, Method::GET, &path, Value::Null).await.json()
}

both_dbs!(events_start_event_based_policies, |app| {
    let reg = registry(&app, "peer").await;
    let body = push_policy(
        "on-push",
        reg,
        json!({"trigger": {"type": "event_based"}, "replicate_deletion": true,
            "filters": [{"type": "name", "value": "library/**"}, {"type": "tag", "value": "v*"}]}),
    );
    let id = create_policy(&app, body).await;
    let p = api(&app, Method::GET, &format!("/api/v2.0/replication/policies/{id}"), Value::Null).await.json();
    assert_eq!(p["single_active_replication"], false, "off for event-based policies, as Harbor");
    // Pushes the filters drop start nothing.
    project(&app, "other").await;
    image(&app, "other/app", "v1").await;
    image(&app, "library/app", "latest").await;
    let d = image(&app, "library/app", "v1").await;
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while runs_of(&app, id).await.as_array().unwrap().is_empty() {
        assert!(std::time::Instant::now() < until, "no run started by the push");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let runs = runs_of(&app, id).await;
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    assert_eq!(runs[0]["trigger"], "event_based");
    let double = Arc::new(Double::default());
    double.remote.manifests.lock().unwrap().insert(("mirror/app".into(), "v1".into()), d.clone());
    let state = with_double(&app, &double);
    run_jobs(&state).await;
    assert_eq!(double.copies(), vec![("library/app".into(), d.clone(), "mirror/app".into(), "v1".into())]);

    // Deleting only the tag keeps the artifact here, so the destination keeps it too.
    let wait_runs = |n: usize| {
        let app = &app;
        async move {
            let until = std::time::Instant::now() + Duration::from_secs(10);
            while runs_of(app, id).await.as_array().unwrap().len() < n {
                assert!(std::time::Instant::now() < until, "no run started by the delete");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let r = api(
        &app,
        Method::DELETE,
        &format!("/api/v2.0/projects/library/repositories/app/artifacts/{d}/tags/v1"),
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    wait_runs(2).await;
    run_jobs(&state).await;
    let runs = runs_of(&app, id).await;
    assert_eq!(runs[0]["status"], "Succeed", "{runs}");
    let t = &tasks(&app, runs[0]["id"].as_i64().unwrap()).await[0];
    assert_eq!(t["operation"], "deletion");
    let log = task_log(&app, runs[0]["id"].as_i64().unwrap(), t["id"].as_i64().unwrap()).await;
    assert!(log.contains("kept on the destination"), "{log}");
    assert!(double.remote.deleted.lock().unwrap().is_empty());
    // Deleting the artifact replicates as a deletion by digest.
    let r = api(
        &app,
        Method::DELETE,
        &format!("/api/v2.0/projects/library/repositories/app/artifacts/{d}"),
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    wait_runs(3).await;
    run_jobs(&state).await;
    let runs = runs_of(&app, id).await;
    assert_eq!(runs[0]["status"], "Succeed", "{runs}");
    assert_eq!(*double.remote.deleted.lock().unwrap(), vec![("mirror/app".to_string(), d.clone())]);
});

both_dbs!(pull_run_lists_the_source_with_filters, |app| {
    let reg = registry(&app, "peer").await;
    let repos = vec![
        RemoteRepository { name: "team/app".into(), tags: vec!["1.0".into(), "1.1".into(), "dev".into()] },
        RemoteRepository { name: "team/db".into(), tags: vec!["1.0".into()] },
        RemoteRepository { name: "other/x".into(), tags: vec!["1.0".into()] },
    ];
    let double = Arc::new(Double { repos, ..Default::default() });
    double.script("local/db", vec![Step::Fail(ContentError::NotFound("project local not found".into()))]);
    let body = json!({"name": "pull", "src_registry": {"id": reg}, "enabled": true, "dest_namespace": "local",
        "filters": [{"type": "name", "value": "team/{app,db}"}, {"type": "tag", "value": "1.*"}]});
    let id = create_policy(&app, body).await;
    let exec = start(&app, id).await;
    run_jobs(&with_double(&app, &double)).await;
    let e = execution(&app, exec).await;
    assert_eq!((e["total"].as_i64(), e["failed"].as_i64()), (Some(3), Some(1)), "{e}");
    assert_eq!(
        double.copies(),
        vec![
            ("team/app".into(), "1.0".into(), "local/app".into(), "1.0".into()),
            ("team/app".into(), "1.1".into(), "local/app".into(), "1.1".into()),
        ]
    );
    // The local project the run writes into was created (private, as Harbor does).
    let r = api(&app, Method::GET, "/api/v2.0/projects/local", Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["metadata"]["public"], "false");
    // A source that cannot be listed fails the run with the reason.
    struct Down;
    #[async_trait]
    impl Connector for Down {
        async fn adapter(&self, _: &AppState, _: i64) -> ContentResult<Box<dyn Adapter>> {
            Err(ContentError::Other("TLS handshake failed: certificate signed by unknown authority".into()))
        }
        fn local(&self, _: &AppState, _: &str) -> Arc<dyn Content> {
            Arc::new(FakeContent::default())
        }
        async fn copy(
            &self,
            _: Side<'_>,
            _: Side<'_>,
            _: &CopyOptions,
            _: &dyn CopyObserver,
        ) -> ContentResult<CopyReport> {
            unreachable!()
        }
    }
    let exec = start(&app, id).await;
    let mut st = app.state.clone();
    st.replication = Arc::new(Down);
    run_jobs(&st).await;
    let e = execution(&app, exec).await;
    assert_eq!(e["status"], "Failed");
    assert!(e["status_text"].as_str().unwrap().contains("certificate signed by unknown authority"), "{e}");
});

both_dbs!(a_dead_replicas_task_is_finished_once_elsewhere, |app| {
    let reg = registry(&app, "peer").await;
    let d = image(&app, "library/app", "v1").await;
    let double = Arc::new(Double::default());
    let state = with_double(&app, &double);
    let id = create_policy(&app, push_policy("p", reg, json!({}))).await;
    let exec = start(&app, id).await;
    // The execution job runs; replica-a claims the task and dies mid-copy.
    let job = jobs::claim_of(&app.state.db, "a", jobs::Claim::Only(&["replication"])).await.unwrap().unwrap();
    let st = state.clone();
    let ctx = jobs::JobCtx::new(job.id, "a", &job.job_kind, &job.parameters);
    jobs::run_claimed(&app.state.db, ctx, |ctx| async move {
        server::replication::execution::run_execution_job(&st, ctx).await
    })
    .await;
    let task_job = jobs::claim_of(&app.state.db, "replica-a", jobs::Claim::Only(&["replication_task"]))
        .await
        .unwrap()
        .unwrap();
    sqlx::query("UPDATE replication_tasks SET status = 'InProgress', start_time = 5 WHERE job_id = $1")
        .bind(task_job.id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE jobs SET heartbeat = heartbeat - 60000 WHERE id = $1")
        .bind(task_job.id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    // Replica b takes it back and finishes it.
    jobs::tick(&state, "replica-b").await.unwrap();
    let e = execution(&app, exec).await;
    assert_eq!(
        (e["status"].as_str(), e["total"].as_i64(), e["succeed"].as_i64()),
        (Some("Succeed"), Some(1), Some(1))
    );
    assert_eq!(double.copies(), vec![("library/app".into(), d, "mirror/app".into(), "v1".into())]);
    let j = jobs::get(&app.state.db, task_job.id).await.unwrap().unwrap();
    assert_eq!((j.status.as_str(), j.attempts, j.worker.as_str()), ("success", 2, "replica-b"));
    // A job given up after repeated attempts fails its task; the run does not stay active.
    let exec = start(&app, id).await;
    let job = jobs::claim_of(&app.state.db, "a", jobs::Claim::Only(&["replication"])).await.unwrap().unwrap();
    let st = state.clone();
    let ctx = jobs::JobCtx::new(job.id, "a", &job.job_kind, &job.parameters);
    jobs::run_claimed(&app.state.db, ctx, |ctx| async move {
        server::replication::execution::run_execution_job(&st, ctx).await
    })
    .await;
    sqlx::query("UPDATE jobs SET attempts = $1 WHERE kind = 'replication_task' AND status = 'pending'")
        .bind(jobs::MAX_ATTEMPTS)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    jobs::requeue_stale(&app.state.db).await.unwrap();
    let e = execution(&app, exec).await;
    assert_eq!((e["status"].as_str(), e["failed"].as_i64()), (Some("Failed"), Some(1)), "{e}");
});

both_dbs!(a_full_task_pool_never_keeps_gc_waiting, toml = "[replication]\nworkers = 1", |app| {
    let reg = registry(&app, "peer").await;
    image(&app, "library/a", "1").await;
    image(&app, "library/b", "1").await;
    let double = Arc::new(Double::default());
    double.script("mirror/a", vec![Step::Block]);
    double.script("mirror/b", vec![Step::Block]);
    let state = with_double(&app, &double);
    let id = create_policy(&app, push_policy("p", reg, json!({}))).await;
    let exec = start(&app, id).await;
    let runner = tokio::spawn({
        let state = state.clone();
        async move { jobs::tick(&state, "replica-1").await }
    });
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while !tasks(&app, exec).await.iter().any(|t| t["status"] == "InProgress") {
        assert!(std::time::Instant::now() < until, "no task started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The pool's one worker is busy; GC queued now still runs now.
    let body = json!({"schedule": {"type": "Manual"}, "parameters": {"dry_run": true}});
    let r = api(&app, Method::POST, "/api/v2.0/system/gc/schedule", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let gc: i64 = r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap();
    while jobs::get(&app.state.db, gc).await.unwrap().unwrap().status != "success" {
        assert!(std::time::Instant::now() < until, "GC waited behind the replication tasks");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ts = tasks(&app, exec).await;
    let states: Vec<&str> = ts.iter().map(|t| t["status"].as_str().unwrap()).collect();
    assert_eq!(states.iter().filter(|s| **s == "InProgress").count(), 1, "{states:?}");
    assert!(states.contains(&"Pending"), "one worker: the other task waits ({states:?})");
    let r = api(&app, Method::PUT, &format!("/api/v2.0/replication/executions/{exec}"), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK);
    runner.await.unwrap().unwrap();
    assert_eq!(execution(&app, exec).await["status"], "Stopped");
    assert_eq!(double.running.lock().unwrap().1, 1, "never more than replication.workers at once");
});

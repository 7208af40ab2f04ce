//! The job service dashboard (`/jobservice/*`, `/schedules`): live pools and their slots with
//! the running job, stop a job and read its log, queues with counts and pause / resume / stop
//! (a paused type is never claimed; `all` pauses everything and shows as the scheduler being
//! paused), every schedule in one list; system admins only; bad input is a 4xx. SQLite and
//! PostgreSQL.

use crate::common::oci::admin;
use crate::common::{api, basic, create_user, TestApp, PW};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use server::jobs;

async fn get(app: &TestApp, path: &str) -> Value {
    let r = api(app, Method::GET, path, &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
    r.json()
}

async fn put(app: &TestApp, path: &str, body: Value) -> StatusCode {
    api(app, Method::PUT, path, &admin(), body).await.status
}

async fn queue(app: &TestApp, kind: &str) -> Value {
    get(app, "/api/v2.0/jobservice/queues")
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["job_type"] == kind)
        .cloned()
        .unwrap()
}

/// Queues a manual GC as the admin; its job id.
async fn gc_now(app: &TestApp) -> i64 {
    let body = json!({"schedule": {"type": "Manual"}, "parameters": {"dry_run": true}});
    let r = api(app, Method::POST, "/api/v2.0/system/gc/schedule", &admin(), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap()
}

both_dbs!(pools_workers_queues_and_schedules, |app| {
    let db = &app.state.db;
    server::jobservice::beat_pool(&app.state, "replica-1", server::db::now_ms()).await.unwrap();
    let pools = get(&app, "/api/v2.0/jobservice/pools").await;
    let pool = pools
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["worker_pool_id"] == "replica-1")
        .expect("the pool is listed");
    assert_eq!(pool["concurrency"], 1 + (app.config.replication.workers + app.config.webhook.workers) as i64);
    assert_eq!(pool["pid"], std::process::id() as i64);

    // A running job shows in its pool's slots; the rest are idle.
    let id = gc_now(&app).await;
    let claimed = jobs::claim(db, "replica-1").await.unwrap().expect("claimed");
    assert_eq!(claimed.id, id);
    let workers = get(&app, "/api/v2.0/jobservice/pools/replica-1/workers").await;
    let workers = workers.as_array().unwrap();
    assert_eq!(workers.len() as i64, pool["concurrency"].as_i64().unwrap());
    assert_eq!(
        (workers[0]["job_name"].as_str(), workers[0]["job_id"].as_str()),
        (Some("gc"), Some(id.to_string().as_str()))
    );
    assert!(workers[1]["job_id"].as_str().unwrap().is_empty());
    assert_eq!(
        get(&app, "/api/v2.0/jobservice/pools/all/workers").await.as_array().unwrap().len(),
        workers.len()
    );
    let r = api(&app, Method::GET, "/api/v2.0/jobservice/pools/nobody/workers", &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Stop it and read its log.
    assert_eq!(put(&app, &format!("/api/v2.0/jobservice/jobs/{id}"), Value::Null).await, StatusCode::OK);
    assert!(jobs::get(db, id).await.unwrap().unwrap().stop_requested);
    jobs::append_log(db, id, "hello from the job\n").await.unwrap();
    let r =
        api(&app, Method::GET, &format!("/api/v2.0/jobservice/jobs/{id}/log"), &admin(), Value::Null).await;
    assert_eq!((r.status, r.text().contains("hello from the job")), (StatusCode::OK, true));
    assert_eq!(put(&app, "/api/v2.0/jobservice/jobs/abc", Value::Null).await, StatusCode::BAD_REQUEST);
    assert_eq!(put(&app, "/api/v2.0/jobservice/jobs/999999", Value::Null).await, StatusCode::NOT_FOUND);
    jobs::finish(db, id, "replica-1", "stopped", &Value::Null, "").await.unwrap();

    // Pause: a pending GC waits, counted in its queue; resume: it is claimed.
    assert_eq!(put(&app, "/api/v2.0/jobservice/queues/gc", json!({"action": "pause"})).await, StatusCode::OK);
    let waiting = gc_now(&app).await;
    let q = queue(&app, "gc").await;
    assert_eq!((q["count"].as_i64(), q["paused"].as_bool()), (Some(1), Some(true)));
    assert!(jobs::claim(db, "replica-1").await.unwrap().is_none(), "a paused type is not claimed");
    assert_eq!(queue(&app, "retention").await["paused"], false);
    assert_eq!(
        put(&app, "/api/v2.0/jobservice/queues/gc", json!({"action": "resume"})).await,
        StatusCode::OK
    );
    assert_eq!(jobs::claim(db, "replica-1").await.unwrap().map(|j| j.id), Some(waiting));
    jobs::finish(db, waiting, "replica-1", "success", &Value::Null, "").await.unwrap();

    // Stop cleans the pending jobs of the type.
    let dropped = gc_now(&app).await;
    assert_eq!(put(&app, "/api/v2.0/jobservice/queues/gc", json!({"action": "stop"})).await, StatusCode::OK);
    assert_eq!(queue(&app, "gc").await["count"], 0);
    assert_eq!(get(&app, &format!("/api/v2.0/system/gc/{dropped}")).await["job_status"], "Stopped");

    // All: everything paused, shown as the scheduler paused.
    assert_eq!(get(&app, "/api/v2.0/schedules/all/paused").await["paused"], false);
    assert_eq!(
        put(&app, "/api/v2.0/jobservice/queues/all", json!({"action": "pause"})).await,
        StatusCode::OK
    );
    assert_eq!(get(&app, "/api/v2.0/schedules/all/paused").await["paused"], true);
    assert!(get(&app, "/api/v2.0/jobservice/queues")
        .await
        .as_array()
        .unwrap()
        .iter()
        .all(|q| q["paused"] == true));
    let held = gc_now(&app).await;
    assert!(jobs::claim(db, "replica-1").await.unwrap().is_none());
    assert_eq!(
        put(&app, "/api/v2.0/jobservice/queues/all", json!({"action": "resume"})).await,
        StatusCode::OK
    );
    assert_eq!(jobs::claim(db, "replica-1").await.unwrap().map(|j| j.id), Some(held));
    let r = api(&app, Method::GET, "/api/v2.0/schedules/gc/paused", &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        put(&app, "/api/v2.0/jobservice/queues/nosuch", json!({"action": "pause"})).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        put(&app, "/api/v2.0/jobservice/queues/gc", json!({"action": "explode"})).await,
        StatusCode::BAD_REQUEST
    );

    // Every schedule in one list.
    let body = json!({"schedule": {"type": "Daily"}, "parameters": {}});
    assert_eq!(put(&app, "/api/v2.0/system/gc/schedule", body).await, StatusCode::OK);
    let body = json!({"schedule": {"type": "Custom", "cron": "0 30 2 * * *"}, "parameters": {"audit_retention_hour": 24, "include_event_types": "pull"}});
    assert_eq!(put(&app, "/api/v2.0/system/purgeaudit/schedule", body).await, StatusCode::OK);
    let r = api(&app, Method::GET, "/api/v2.0/schedules", &admin(), Value::Null).await;
    assert_eq!(r.header("x-total-count"), Some("2"));
    let s = r.json();
    assert_eq!(
        (s[0]["vendor_type"].as_str(), s[0]["cron"].as_str()),
        (Some("GARBAGE_COLLECTION"), Some("0 0 0 * * *"))
    );
    assert_eq!(
        (s[1]["vendor_type"].as_str(), s[1]["cron"].as_str()),
        (Some("PURGE_AUDIT"), Some("0 30 2 * * *"))
    );

    create_user(db, "alice", PW, false).await;
    for p in ["/api/v2.0/jobservice/pools", "/api/v2.0/jobservice/queues", "/api/v2.0/schedules"] {
        let r = api(&app, Method::GET, p, &basic("alice", PW), Value::Null).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{p}");
    }
});

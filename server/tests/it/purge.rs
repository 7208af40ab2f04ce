//! Audit log purge (`/system/purgeaudit`): a dry run counts, a run deletes exactly the old rows
//! of the selected event types (by operation, or operation and resource type), nothing when no
//! type is selected; one run at a time (409); history, log, stop; the schedule; system admins
//! only; bad parameters are 400s. SQLite and PostgreSQL.

use crate::common::oci::admin;
use crate::common::{api, basic, create_user, TestApp, PW};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use server::audit::Event;
use server::jobs;

const HOUR: i64 = 3_600_000;

async fn seed(app: &TestApp) {
    let now = server::db::now_ms();
    let rows = [
        ("pull", "artifact", 3, 48),
        ("create", "artifact", 2, 48),
        ("login", "user", 1, 48),
        ("pull", "artifact", 2, 1),
        ("delete", "artifact", 1, 48),
    ];
    for (op, res, n, hours_ago) in rows {
        for i in 0..n {
            let mut e = Event::new("alice", op, res, format!("p/app:{i}"));
            e.op_time = now - hours_ago * HOUR;
            app.state.audit.record(e);
        }
    }
    app.state.audit.flush(&app.state.db).await.unwrap();
}

async fn count(app: &TestApp, op: &str, older_than_hours: i64) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE operation = $1 AND op_time < $2")
        .bind(op)
        .bind(server::db::now_ms() - older_than_hours * HOUR)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
}

async fn run_now(app: &TestApp, params: Value) -> i64 {
    let body = json!({"schedule": {"type": "Manual"}, "parameters": params});
    let r = api(app, Method::POST, "/api/v2.0/system/purgeaudit/schedule", &admin(), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap();
    jobs::tick(&app.state, "replica-1").await.unwrap();
    id
}

async fn get(app: &TestApp, path: &str) -> Value {
    let r = api(app, Method::GET, path, &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
    r.json()
}

both_dbs!(dry_run_then_run_purges_the_selected_old_rows, |app| {
    seed(&app).await;
    let types = "pull_artifact,create";
    let dry =
        run_now(&app, json!({"audit_retention_hour": 24, "include_event_types": types, "dry_run": true}))
            .await;
    let h = get(&app, &format!("/api/v2.0/system/purgeaudit/{dry}")).await;
    assert_eq!((h["job_name"].as_str(), h["job_status"].as_str()), (Some("PURGE_AUDIT"), Some("Success")));
    assert_eq!(h["result"]["purged"], 5);
    assert_eq!(h["deleted"], false);
    assert_eq!(
        (count(&app, "pull", 24).await, count(&app, "create", 24).await),
        (3, 2),
        "a dry run deletes nothing"
    );

    let real = run_now(&app, json!({"audit_retention_hour": 24, "include_event_types": types})).await;
    let h = get(&app, &format!("/api/v2.0/system/purgeaudit/{real}")).await;
    assert_eq!(h["job_status"], "Success");
    assert_eq!(h["result"]["purged"], 5);
    assert_eq!((count(&app, "pull", 24).await, count(&app, "create", 24).await), (0, 0));
    assert_eq!(count(&app, "pull", 0).await, 2, "recent pulls stay");
    assert_eq!(
        (count(&app, "login", 24).await, count(&app, "delete", 24).await),
        (1, 1),
        "unselected types stay"
    );
    let r = api(&app, Method::GET, &format!("/api/v2.0/system/purgeaudit/{real}/log"), &admin(), Value::Null)
        .await;
    assert!(r.text().contains("purged 5 audit rows"), "{}", r.text());

    // Nothing selected: nothing purged (Harbor's rule).
    let none = run_now(&app, json!({"audit_retention_hour": 1, "include_event_types": ""})).await;
    assert_eq!(get(&app, &format!("/api/v2.0/system/purgeaudit/{none}")).await["result"]["purged"], 0);
    assert_eq!(count(&app, "login", 24).await, 1);

    let list = api(&app, Method::GET, "/api/v2.0/system/purgeaudit", &admin(), Value::Null).await;
    assert_eq!(list.header("x-total-count"), Some("3"));
    assert_eq!(list.json()[0]["id"], none, "newest first");
    // A finished run: stop is a 200 with nothing to do; a GC id is not a purge.
    let r =
        api(&app, Method::PUT, &format!("/api/v2.0/system/purgeaudit/{real}"), &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api(&app, Method::GET, "/api/v2.0/system/purgeaudit/999999", &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
});

both_dbs!(one_run_at_a_time_schedule_permissions_and_validation, |app| {
    let path = "/api/v2.0/system/purgeaudit/schedule";
    let manual = json!({"schedule": {"type": "Manual"}, "parameters": {"audit_retention_hour": 1, "include_event_types": "pull"}});
    let r = api(&app, Method::POST, path, &admin(), manual.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = api(&app, Method::POST, path, &admin(), manual.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    // Stopping the pending run ends it at once.
    let list = get(&app, "/api/v2.0/system/purgeaudit").await;
    let pending = list[0]["id"].as_i64().unwrap();
    let r = api(&app, Method::PUT, &format!("/api/v2.0/system/purgeaudit/{pending}"), &admin(), Value::Null)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(get(&app, &format!("/api/v2.0/system/purgeaudit/{pending}")).await["job_status"], "Stopped");

    let daily = json!({"schedule": {"type": "Daily"}, "parameters": {"audit_retention_hour": 168, "include_event_types": "pull_artifact"}});
    let r = api(&app, Method::PUT, path, &admin(), daily).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let s = get(&app, path).await;
    assert_eq!(s["schedule"]["type"], "Daily");
    assert!(s["job_parameters"].as_str().unwrap().contains("pull_artifact"));
    let r = api(&app, Method::PUT, path, &admin(), json!({"schedule": {"type": "None"}})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(get(&app, path).await["schedule"]["type"], "None");

    for (bad, what) in [
        (
            json!({"schedule": {"type": "Manual"}, "parameters": {"audit_retention_hour": -1}}),
            "audit_retention_hour",
        ),
        (
            json!({"schedule": {"type": "Manual"}, "parameters": {"audit_retention_hour": 1, "include_event_types": "pull;drop"}}),
            "include_event_types",
        ),
        (json!({"schedule": {"type": "Custom", "cron": "not a cron"}, "parameters": {}}), "cron"),
        (json!({"parameters": {}}), "schedule"),
    ] {
        let r = api(&app, Method::POST, path, &admin(), bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text());
        assert!(r.text().contains(what), "{what}: {}", r.text());
    }
    create_user(&app.state.db, "alice", PW, false).await;
    for (m, p) in [(Method::GET, "/api/v2.0/system/purgeaudit"), (Method::GET, path), (Method::POST, path)] {
        let r = api(&app, m.clone(), p, &basic("alice", PW), manual.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{m} {p}: {}", r.text());
        assert_eq!(api(&app, m, p, "", manual.clone()).await.status, StatusCode::UNAUTHORIZED);
    }
});

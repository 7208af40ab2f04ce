//! Tag retention (`/retentions`): the policy's CRUD, validation, permissions, schedule and
//! audit; a dry run that deletes nothing and reports what a run would delete; a run that
//! deletes exactly that through the logical delete (immutable tags kept, other repositories
//! untouched, audit rows naming the execution); stop and one active run per policy; the
//! schedule firing a run; the guard that spares an artifact tagged after the evaluation;
//! the project's deletion taking its policy. SQLite and PostgreSQL.

use crate::common::oci::{admin, push_image};
use crate::common::{api, basic, create_user, member, TestApp, PW};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use server::jobs;

async fn project(app: &TestApp, name: &str) -> i64 {
    let r = api(app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": name})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    get(app, &format!("/api/v2.0/projects/{name}")).await["project_id"].as_i64().unwrap()
}

async fn get(app: &TestApp, path: &str) -> Value {
    let r = api(app, Method::GET, path, &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
    r.json()
}

fn rule(template: &str, n: Option<i64>, repo: &str, tags: (&str, &str), untagged: bool) -> Value {
    let params = match n {
        Some(n) => json!({ template: n }),
        None => json!({}),
    };
    json!({
        "disabled": false, "action": "retain", "template": template, "params": params,
        "tag_selectors": [{"kind": "doublestar", "decoration": tags.0, "pattern": tags.1,
                           "extras": json!({"untagged": untagged}).to_string()}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": repo}]}
    })
}

fn policy(project_id: i64, rules: Vec<Value>, cron: &str) -> Value {
    json!({
        "algorithm": "or", "rules": rules,
        "trigger": {"kind": "Schedule", "settings": {"cron": cron}, "references": {}},
        "scope": {"level": "project", "ref": project_id}
    })
}

async fn create(app: &TestApp, body: Value) -> i64 {
    let r = api(app, Method::POST, "/api/v2.0/retentions", &admin(), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap()
}

async fn trigger(app: &TestApp, id: i64, dry_run: bool) -> i64 {
    let path = format!("/api/v2.0/retentions/{id}/executions");
    let r = api(app, Method::POST, &path, &admin(), json!({ "dry_run": dry_run })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap()
}

async fn run_jobs(app: &TestApp) {
    jobs::tick(&app.state, "replica-1").await.unwrap();
}

async fn execution(app: &TestApp, id: i64, eid: i64) -> Value {
    let all = get(app, &format!("/api/v2.0/retentions/{id}/executions?page_size=100")).await;
    all.as_array().unwrap().iter().find(|e| e["id"] == eid).cloned().expect("the execution is listed")
}

async fn tags_of(app: &TestApp, repo: &str) -> Vec<String> {
    let (p, r) = repo.split_once('/').unwrap();
    let arts = get(app, &format!("/api/v2.0/projects/{p}/repositories/{r}/artifacts?page_size=100")).await;
    let mut out: Vec<String> = arts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let t: Vec<&str> =
                a["tags"].as_array().into_iter().flatten().filter_map(|t| t["name"].as_str()).collect();
            if t.is_empty() {
                "<untagged>".to_string()
            } else {
                t.join("+")
            }
        })
        .collect();
    out.sort();
    out
}

/// Pushes a distinct image under `reference` (a tag, or `-` for untagged by digest).
async fn image(app: &TestApp, repo: &str, reference: &str, n: u8) -> String {
    let layer = vec![n; 64 + n as usize];
    if reference == "-" {
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        crate::common::oci::push_blob(app, repo, config).await;
        crate::common::oci::push_blob(app, repo, &layer).await;
        let body = crate::common::oci::image_manifest(config, &[&layer]);
        let digest = crate::common::oci::sha256(&body);
        let r = crate::common::oci::put_manifest(
            app,
            repo,
            &digest,
            "application/vnd.oci.image.manifest.v1+json",
            &body,
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        return digest;
    }
    push_image(app, repo, reference, &[&layer]).await.0
}

both_dbs!(policy_crud_validation_permissions_and_audit, |app| {
    let pid = project(&app, "p1").await;
    let meta = get(&app, "/api/v2.0/retentions/metadatas").await;
    let templates: Vec<&str> =
        meta["templates"].as_array().unwrap().iter().map(|t| t["rule_template"].as_str().unwrap()).collect();
    assert_eq!(
        templates,
        ["latestPushedK", "latestPulledN", "nDaysSinceLastPush", "nDaysSinceLastPull", "always"]
    );
    assert_eq!(meta["scope_selectors"][0]["decorations"], json!(["repoMatches", "repoExcludes"]));

    let body =
        policy(pid, vec![rule("latestPushedK", Some(10), "**", ("matches", "**"), true)], "0 0 0 * * *");
    let id = create(&app, body.clone()).await;
    let p = get(&app, "/api/v2.0/projects/p1").await;
    assert_eq!(p["metadata"]["retention_id"], id.to_string());
    let got = get(&app, &format!("/api/v2.0/retentions/{id}")).await;
    assert_eq!(got["id"], id);
    assert_eq!(got["scope"], json!({"level": "project", "ref": pid}));
    assert_eq!(got["trigger"]["settings"]["cron"], "0 0 0 * * *");
    assert_eq!(got["rules"][0]["params"], json!({"latestPushedK": 10}));
    assert_eq!(got["rules"][0]["id"], 0);
    let kind = format!("retention/{id}");
    let sched: Option<String> = sqlx::query_scalar("SELECT cron FROM schedules WHERE kind = $1")
        .bind(&kind)
        .fetch_optional(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(sched.as_deref(), Some("0 0 0 * * *"));
    // A second policy for the project: 400 naming the first.
    let r = api(&app, Method::POST, "/api/v2.0/retentions", &admin(), body.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains(&format!("already has retention policy {id}")), "{}", r.text());

    // Bad bodies: 400s (and Harbor's 409 for a duplicate rule), nothing stored.
    let path = format!("/api/v2.0/retentions/{id}");
    for (bad, what) in [
        (
            policy(pid, vec![rule("latestPushedK", None, "**", ("matches", "**"), true)], ""),
            "needs the parameter",
        ),
        (policy(pid, vec![rule("latestPushedK", Some(-1), "**", ("matches", "**"), true)], ""), "between 0"),
        (
            policy(pid, vec![rule("keepAll", None, "**", ("matches", "**"), true)], ""),
            "unknown rule template",
        ),
        (policy(pid, vec![rule("always", None, "[", ("matches", "**"), true)], ""), "repository"),
        (
            policy(pid, vec![rule("always", None, "**", ("sometimes", "**"), true)], ""),
            "unknown tag selector",
        ),
        (policy(pid, vec![rule("always", None, "**", ("matches", "**"), true)], "every day"), "cron"),
        (policy(pid, vec![rule("always", None, "**", ("matches", "**"), true); 16], ""), "15 rules"),
        (policy(pid + 1000, vec![], ""), "another project"),
    ] {
        let r = api(&app, Method::PUT, &path, &admin(), bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text());
        assert_eq!(r.error_code(), "BAD_REQUEST");
        assert!(r.text().contains(what), "{what}: {}", r.text());
    }
    let dup = policy(pid, vec![rule("always", None, "**", ("matches", "**"), true); 2], "");
    let r = api(&app, Method::PUT, &path, &admin(), dup).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    let r = api(&app, Method::POST, "/api/v2.0/retentions", &admin(), policy(999_999, vec![], "")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(get(&app, &path).await["rules"][0]["template"], "latestPushedK");

    // Update: new rules, schedule removed.
    let upd =
        policy(pid, vec![rule("nDaysSinceLastPull", Some(7), "app*", ("excludes", "dev-*"), false)], "");
    let r = api(&app, Method::PUT, &path, &admin(), upd).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let got = get(&app, &path).await;
    assert_eq!(got["rules"][0]["template"], "nDaysSinceLastPull");
    assert_eq!(got["rules"][0]["params"], json!({"nDaysSinceLastPull": 7}));
    assert_eq!(got["trigger"]["settings"]["cron"], "");
    let sched: Option<String> = sqlx::query_scalar("SELECT cron FROM schedules WHERE kind = $1")
        .bind(&kind)
        .fetch_optional(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(sched, None);

    // Permissions: a developer reads, cannot write or run; a guest and strangers see nothing;
    // anonymous callers are 401.
    for (name, role) in [("dev", 2), ("guest", 3)] {
        create_user(&app.state.db, name, PW, false).await;
        assert_eq!(member(&app, "p1", name, role).await.status, StatusCode::CREATED);
    }
    create_user(&app.state.db, "stranger", PW, false).await;
    let dev = basic("dev", PW);
    assert_eq!(api(&app, Method::GET, &path, &dev, Value::Null).await.status, StatusCode::OK);
    let r = api(&app, Method::PUT, &path, &dev, policy(pid, vec![], "")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = api(&app, Method::POST, &format!("{path}/executions"), &dev, json!({"dry_run": true})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    for who in ["guest", "stranger"] {
        let r = api(&app, Method::GET, &path, &basic(who, PW), Value::Null).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{who}: {}", r.text());
    }
    assert_eq!(api(&app, Method::GET, &path, "", Value::Null).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        api(&app, Method::GET, "/api/v2.0/retentions/metadatas", "", Value::Null).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = api(&app, Method::GET, "/api/v2.0/retentions/424242", &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Delete: the policy, its metadata and its schedule go.
    let r = api(&app, Method::DELETE, &path, &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(api(&app, Method::GET, &path, &admin(), Value::Null).await.status, StatusCode::NOT_FOUND);
    assert!(get(&app, "/api/v2.0/projects/p1").await["metadata"].get("retention_id").is_none());
    // …and the project may have a new one.
    create(&app, policy(pid, vec![], "")).await;

    app.state.audit.flush(&app.state.db).await.unwrap();
    let ops: Vec<String> =
        sqlx::query_scalar("SELECT operation FROM audit_log WHERE resource_type = 'retention' ORDER BY id")
            .fetch_all(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(ops, ["create", "update", "delete", "create"]);
});

both_dbs!(dry_run_reports_and_run_deletes_what_no_rule_keeps, |app| {
    let pid = project(&app, "p1").await;
    for (i, t) in ["v1", "v2", "v3", "v4", "v5"].iter().enumerate() {
        image(&app, "p1/app", t, i as u8 + 1).await;
    }
    let dev = image(&app, "p1/app", "dev-1", 20).await;
    image(&app, "p1/app", "-", 21).await;
    image(&app, "p1/other", "old", 30).await;
    // v1 is immutable: never deleted.
    let imm = json!({"tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "v1"}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}});
    let r = api(&app, Method::POST, "/api/v2.0/projects/p1/immutabletagrules", &admin(), imm).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    // Keep the 2 newest v* and anything tagged dev-*; untagged not kept; only `app`.
    let id = create(
        &app,
        policy(
            pid,
            vec![
                rule("latestPushedK", Some(2), "app", ("matches", "v*"), false),
                rule("always", None, "app", ("matches", "dev-*"), false),
            ],
            "",
        ),
    )
    .await;
    let before = tags_of(&app, "p1/app").await;
    assert_eq!(before.len(), 7);

    let dry = trigger(&app, id, true).await;
    assert_eq!(execution(&app, id, dry).await["status"], "Pending");
    run_jobs(&app).await;
    let e = execution(&app, id, dry).await;
    assert_eq!(
        (e["status"].as_str(), e["dry_run"].as_bool(), e["trigger"].as_str()),
        (Some("Success"), Some(true), Some("MANUAL"))
    );
    let tasks = get(&app, &format!("/api/v2.0/retentions/{id}/executions/{dry}/tasks")).await;
    let tasks = tasks.as_array().unwrap();
    assert_eq!(tasks.len(), 1, "only the repository the rules cover: {tasks:?}");
    assert_eq!(tasks[0]["repository"], "p1/app");
    assert_eq!((tasks[0]["total"].as_i64(), tasks[0]["retained"].as_i64()), (Some(7), Some(4)));
    let tid = tasks[0]["id"].as_i64().unwrap();
    let r = api(
        &app,
        Method::GET,
        &format!("/api/v2.0/retentions/{id}/executions/{dry}/tasks/{tid}"),
        &admin(),
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let log = r.text();
    assert_eq!(log.lines().filter(|l| l.ends_with(" DEL")).count(), 3, "{log}");
    assert!(log.contains("v1") && log.contains("immutable"), "{log}");
    assert!(log.contains(&dev), "{log}");
    assert_eq!(tags_of(&app, "p1/app").await, before, "a dry run deletes nothing");

    let real = trigger(&app, id, false).await;
    run_jobs(&app).await;
    assert_eq!(execution(&app, id, real).await["status"], "Success");
    assert_eq!(tags_of(&app, "p1/app").await, ["dev-1", "v1", "v4", "v5"]);
    assert_eq!(tags_of(&app, "p1/other").await, ["old"], "a repository no rule covers is left alone");
    let all =
        api(&app, Method::GET, &format!("/api/v2.0/retentions/{id}/executions"), &admin(), Value::Null).await;
    assert_eq!(all.header("x-total-count"), Some("2"));
    assert_eq!(all.json()[0]["id"], real, "newest first");

    app.state.audit.flush(&app.state.db).await.unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT resource, detail FROM audit_log WHERE operation = 'delete' AND resource_type = 'artifact' ORDER BY id",
    )
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows
        .iter()
        .all(|(r, d)| r.starts_with("p1/app@sha256:") && d == &format!("tag retention execution {real}")));
});

both_dbs!(stop_one_active_run_schedule_guard_and_project_deletion, |app| {
    let pid = project(&app, "p1").await;
    image(&app, "p1/app", "a", 1).await;
    let id =
        create(&app, policy(pid, vec![rule("latestPushedK", Some(0), "**", ("matches", "**"), true)], ""))
            .await;
    // One active run per policy: a second trigger while the first is pending is a 409.
    let first = trigger(&app, id, false).await;
    let r =
        api(&app, Method::POST, &format!("/api/v2.0/retentions/{id}/executions"), &admin(), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    // Stop before it ran: it ends Stopped, and the job deletes nothing.
    let path = format!("/api/v2.0/retentions/{id}/executions/{first}");
    let r = api(&app, Method::PATCH, &path, &admin(), json!({"action": "pause"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api(&app, Method::PATCH, &path, &admin(), json!({"action": "stop"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    run_jobs(&app).await;
    assert_eq!(execution(&app, id, first).await["status"], "Stopped");
    assert_eq!(tags_of(&app, "p1/app").await, ["a"]);
    let r = api(
        &app,
        Method::GET,
        &format!("/api/v2.0/retentions/{id}/executions/999999/tasks"),
        &admin(),
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A run whose job ended without ending it (given up after repeated attempts) is settled.
    let again = trigger(&app, id, true).await;
    sqlx::query(
        "UPDATE jobs SET status = 'error' WHERE id = (SELECT job_id FROM retention_executions WHERE id = $1)",
    )
    .bind(again)
    .execute(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(execution(&app, id, again).await["status"], "Error");

    // The schedule fires a SCHEDULE run (made due by hand).
    let r = api(
        &app,
        Method::PUT,
        &format!("/api/v2.0/retentions/{id}"),
        &admin(),
        policy(pid, vec![rule("latestPushedK", Some(0), "**", ("matches", "**"), true)], "0 0 3 * * *"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    sqlx::query("UPDATE schedules SET next_run = 1 WHERE kind = $1")
        .bind(format!("retention/{id}"))
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    run_jobs(&app).await;
    let all = get(&app, &format!("/api/v2.0/retentions/{id}/executions")).await;
    assert_eq!(all[0]["trigger"], "SCHEDULE");
    assert_eq!(all[0]["status"], "Success");
    assert_eq!(tags_of(&app, "p1/app").await, Vec::<String>::new(), "latestPushedK 0 keeps nothing");

    // The guard: an artifact tagged after the evaluation began is not deleted.
    let d = image(&app, "p1/app", "b", 2).await;
    let aid: i64 = sqlx::query_scalar("SELECT id FROM artifacts WHERE digest = $1")
        .bind(&d)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    use server::artifacts::write::{delete_artifact_guarded, Guard};
    let before_push = server::db::now_ms() - 60_000;
    assert!(delete_artifact_guarded(&app.state.db, aid, Guard::Unchanged(before_push))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(tags_of(&app, "p1/app").await, ["b"]);
    let after = server::db::now_ms() + 1;
    assert_eq!(delete_artifact_guarded(&app.state.db, aid, Guard::Unchanged(after)).await.unwrap().len(), 1);

    // Deleting the (empty) project takes its policy and history.
    let r = api(&app, Method::DELETE, "/api/v2.0/projects/p1/repositories/app", &admin(), Value::Null).await;
    assert!(r.status == StatusCode::OK || r.status == StatusCode::NOT_FOUND, "{}", r.text());
    let r = api(&app, Method::DELETE, "/api/v2.0/projects/p1", &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM retention_policies")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let execs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM retention_executions")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!((left, execs), (0, 0));
});

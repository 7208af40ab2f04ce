//! Webhooks (`/projects/{p}/webhook/*`, `server/src/webhook`) against a real HTTP receiver this
//! test runs on 127.0.0.1 (it records every request, and answers, fails, delays or is down on
//! command): the policies' CRUD, validation, permissions and audit, the auth header never
//! listed back; every event type delivered once with Harbor's payload, in Harbor's default
//! format and as CloudEvents; retries with backoff until a receiver that was down is back;
//! a slow receiver not holding back another; a delivery whose replica died taken back and
//! delivered again with the same event id; the history (executions, tasks, logs, last
//! trigger); a project's deletion taking its policies. SQLite and PostgreSQL.

use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::oci::{admin, push_image, push_image_as};
use crate::common::{api, basic, create_user, member, TestApp, PW};
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{json, Value};
use server::jobs;

const TOML: &str = "[webhook]\nretry_backoff = \"100ms\"\nhttp_timeout = \"1s\"\nmax_attempts = 4";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    headers: HeaderMap,
    body: Value,
}

/// An HTTP receiver on 127.0.0.1: answers `status` after `delay_ms`; `down` closes it.
struct Receiver {
    addr: std::net::SocketAddr,
    got: Arc<Mutex<Vec<Got>>>,
    status: Arc<AtomicU16>,
    delay_ms: Arc<AtomicU64>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut r = Receiver {
            addr: listener.local_addr().unwrap(),
            got: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
            delay_ms: Arc::default(),
            server: None,
        };
        r.serve(listener);
        r
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let (got, status, delay) = (self.got.clone(), self.status.clone(), self.delay_ms.clone());
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
                let (got, status, delay) = (got.clone(), status.clone(), delay.clone());
                async move {
                    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    got.lock().unwrap().push(Got { path: uri.path().to_string(), headers, body });
                    tokio::time::sleep(Duration::from_millis(delay.load(Ordering::Relaxed))).await;
                    StatusCode::from_u16(status.load(Ordering::Relaxed)).unwrap()
                }
            },
        );
        self.server = Some(tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        }));
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn down(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }

    async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    fn got(&self, path: &str) -> Vec<Got> {
        self.got.lock().unwrap().iter().filter(|g| g.path == path).cloned().collect()
    }
}

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

fn policy(name: &str, events: &[&str], address: &str, format: &str, auth: &str) -> Value {
    json!({
        "name": name, "description": "d", "enabled": true, "event_types": events,
        "targets": [{"type": "http", "address": address, "auth_header": auth, "skip_cert_verify": false,
                     "payload_format": format}]
    })
}

async fn create(app: &TestApp, project: &str, body: Value) -> i64 {
    let r = api(app, Method::POST, &format!("/api/v2.0/projects/{project}/webhook/policies"), &admin(), body)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap()
}

/// Queues what the audit writer holds, then runs the jobs due until `done` or `secs` pass.
async fn deliver_until(app: &TestApp, secs: u64, done: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        app.state.audit.flush(&app.state.db).await.unwrap();
        jobs::tick(&app.state, "replica-1").await.unwrap();
        if done() {
            return;
        }
        assert!(Instant::now() < end, "not delivered in {secs} s: {:?}", app.state.audit.webhooks.host());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn executions(app: &TestApp, project: &str, id: i64) -> Vec<Value> {
    let v = get(app, &format!("/api/v2.0/projects/{project}/webhook/policies/{id}/executions?page_size=100"))
        .await;
    v.as_array().unwrap().clone()
}

both_dbs!(policies_are_validated_permissioned_audited_and_never_show_the_auth_header, toml = TOML, |app| {
    project(&app, "w1").await;
    let base = "/api/v2.0/projects/w1/webhook/policies";
    let good = policy("ci", &["PUSH_ARTIFACT"], "https://ci.example/hook", "Default", "Bearer s3cret");
    for (bad, why) in [
        (json!({"name": "", "event_types": ["PUSH_ARTIFACT"], "targets": good["targets"]}), "name"),
        (json!({"name": "x", "event_types": [], "targets": good["targets"]}), "event type"),
        (json!({"name": "x", "event_types": ["NOPE"], "targets": good["targets"]}), "NOPE"),
        (json!({"name": "x", "event_types": ["PUSH_ARTIFACT"], "targets": []}), "target"),
        (policy("x", &["PUSH_ARTIFACT"], "ftp://h/x", "Default", ""), "http"),
        (policy("x", &["PUSH_ARTIFACT"], "not a url", "Default", ""), "address"),
        (policy("x", &["PUSH_ARTIFACT"], "http://h/x", "XML", ""), "XML"),
        (policy("x", &["PUSH_ARTIFACT"], "http://h/x", "Default", "a\r\nX-Evil: 1"), "header"),
        (
            json!({"name": "x", "event_types": ["PUSH_ARTIFACT"], "targets": [{"type": "slack", "address": "http://h"}]}),
            "slack",
        ),
    ] {
        let r = api(&app, Method::POST, base, &admin(), bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text());
        assert!(r.text().contains(why), "{why}: {}", r.text());
    }
    let id = create(&app, "w1", good.clone()).await;
    let r = api(&app, Method::POST, base, &admin(), good.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    // Listed and read without the header (stored encrypted).
    let listed = get(&app, base).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let p = get(&app, &format!("{base}/{id}")).await;
    assert_eq!(p["targets"][0]["auth_header"], "");
    assert_eq!(p["targets"][0]["address"], "https://ci.example/hook");
    assert_eq!(p["event_types"], json!(["PUSH_ARTIFACT"]));
    assert_eq!(p["creator"], "admin");
    let stored: String = sqlx::query_scalar("SELECT targets FROM webhook_policies WHERE id = $1")
        .bind(id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert!(!stored.contains("s3cret"), "{stored}");
    // An update sending the listed policy back keeps the header; a new address drops it.
    let mut back = p.clone();
    back["event_types"] = json!(["PUSH_ARTIFACT", "PULL_ARTIFACT"]);
    let r = api(&app, Method::PUT, &format!("{base}/{id}"), &admin(), back.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let row =
        server::webhook::get(&app.state.db, p["project_id"].as_i64().unwrap(), id).await.unwrap().unwrap();
    let key = &app.state.secrets.encryption_key;
    assert_eq!(server::webhook::open_auth(key, id, &row.targets()[0]).unwrap(), "Bearer s3cret");
    back["targets"][0]["address"] = json!("https://other.example/hook");
    api(&app, Method::PUT, &format!("{base}/{id}"), &admin(), back).await;
    let row =
        server::webhook::get(&app.state.db, p["project_id"].as_i64().unwrap(), id).await.unwrap().unwrap();
    assert_eq!(server::webhook::open_auth(key, id, &row.targets()[0]).unwrap(), "");
    // Filter by name; bad filters are 400s.
    assert_eq!(get(&app, &format!("{base}?q=name%3D~c")).await.as_array().unwrap().len(), 1);
    assert_eq!(get(&app, &format!("{base}?q=name%3D~zz")).await.as_array().unwrap().len(), 0);
    let r = api(&app, Method::GET, &format!("{base}?q=creator%3Dx"), &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // The supported events.
    let ev = get(&app, "/api/v2.0/projects/w1/webhook/events").await;
    assert!(ev["event_type"].as_array().unwrap().contains(&json!("QUOTA_WARNING")));
    assert_eq!(ev["payload_formats"][0]["formats"], json!(["Default", "CloudEvents"]));
    // Maintainers read, developers do not; only admins write.
    create_user(&app.state.db, "wm", PW, false).await;
    create_user(&app.state.db, "wd", PW, false).await;
    member(&app, "w1", "wm", 4).await;
    member(&app, "w1", "wd", 2).await;
    let (m, d) = (basic("wm", PW), basic("wd", PW));
    assert_eq!(api(&app, Method::GET, base, &m, Value::Null).await.status, StatusCode::OK);
    assert_eq!(api(&app, Method::GET, base, &d, Value::Null).await.status, StatusCode::FORBIDDEN);
    let r = api(&app, Method::POST, base, &m, policy("m", &["PUSH_ARTIFACT"], "http://h/x", "", "")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        api(&app, Method::DELETE, &format!("{base}/{id}"), &m, Value::Null).await.status,
        StatusCode::FORBIDDEN
    );
    // Delete; audit rows for each change.
    assert_eq!(
        api(&app, Method::DELETE, &format!("{base}/{id}"), &admin(), Value::Null).await.status,
        StatusCode::OK
    );
    assert_eq!(
        api(&app, Method::GET, &format!("{base}/{id}"), &admin(), Value::Null).await.status,
        StatusCode::NOT_FOUND
    );
    app.state.audit.flush(&app.state.db).await.unwrap();
    let ops: Vec<String> = sqlx::query_scalar(
        "SELECT operation FROM audit_log WHERE resource_type = 'webhook_policy' ORDER BY id",
    )
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(ops, ["create", "update", "update", "delete"]);
});

both_dbs!(every_event_type_is_delivered_once_with_harbors_payload, toml = TOML, |app| {
    let rx = Receiver::start().await;
    let pid = project(&app, "w2").await;
    let all = [
        "PUSH_ARTIFACT",
        "PULL_ARTIFACT",
        "DELETE_ARTIFACT",
        "QUOTA_EXCEED",
        "QUOTA_WARNING",
        "TAG_RETENTION",
    ];
    let plain = create(&app, "w2", policy("plain", &all, &rx.url("/plain"), "Default", "")).await;
    let ce =
        create(&app, "w2", policy("ce", &["PUSH_ARTIFACT"], &rx.url("/ce"), "CloudEvents", "Bearer tok"))
            .await;
    // A disabled policy and another project's policy hear nothing.
    let mut off = policy("off", &all, &rx.url("/off"), "Default", "");
    off["enabled"] = json!(false);
    create(&app, "w2", off).await;
    project(&app, "w2other").await;
    create(&app, "w2other", policy("other", &all, &rx.url("/other"), "Default", "")).await;

    let (digest, _) = push_image(&app, "w2/app", "v1", &[b"layer-w2"]).await;
    let r = app
        .get_with(
            "/v2/w2/app/manifests/v1",
            &[("authorization", &admin()), ("accept", crate::common::oci::OCI_MANIFEST)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    deliver_until(&app, 20, || rx.got("/plain").len() >= 2 && !rx.got("/ce").is_empty()).await;
    let plain_got = rx.got("/plain");
    let push = plain_got.iter().find(|g| g.body["type"] == "PUSH_ARTIFACT").expect("the push");
    assert_eq!(push.body["operator"], "admin");
    assert!(push.body["occur_at"].as_i64().unwrap() > 1_700_000_000);
    let data = &push.body["event_data"];
    assert_eq!(
        data["resources"],
        json!([{"digest": digest.clone(), "tag": "v1", "resource_url": "127.0.0.1:8080/w2/app:v1"}])
    );
    assert_eq!(data["repository"]["name"], "app");
    assert_eq!(data["repository"]["namespace"], "w2");
    assert_eq!(data["repository"]["repo_full_name"], "w2/app");
    assert_eq!(data["repository"]["repo_type"], "private");
    assert!(data["repository"]["date_created"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(push.headers["content-type"], "application/json");
    assert!(push.headers.get("authorization").is_none());
    let pull = plain_got.iter().find(|g| g.body["type"] == "PULL_ARTIFACT").expect("the pull");
    assert_eq!(pull.body["event_data"]["resources"][0]["digest"], digest.clone());
    // CloudEvents, with the auth header and the event id as the CloudEvents id.
    let c = &rx.got("/ce")[0];
    assert_eq!(c.headers["content-type"], "application/cloudevents+json");
    assert_eq!(c.headers["authorization"], "Bearer tok");
    assert_eq!(c.body["specversion"], "1.0");
    assert_eq!(c.body["type"], "harbor.artifact.pushed");
    assert_eq!(c.body["source"], format!("/projects/{pid}/webhook/policies/{ce}"));
    assert_eq!(c.body["id"], c.headers["x-berth-event-id"].to_str().unwrap());
    assert_eq!(c.body["data"]["resources"][0]["tag"], "v1");
    // Delete the artifact.
    let r = app
        .call(
            Method::DELETE,
            &format!("/v2/w2/app/manifests/{digest}"),
            &[("authorization", &admin())],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    deliver_until(&app, 20, || rx.got("/plain").iter().any(|g| g.body["type"] == "DELETE_ARTIFACT")).await;
    // Quota: a push that leaves the project ≥ 85 % full warns; one over the limit is refused.
    let quota: i64 = sqlx::query_scalar("SELECT id FROM quotas WHERE project_id = $1")
        .bind(pid)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let used = get(&app, &format!("/api/v2.0/quotas/{quota}")).await["used"]["storage"].as_i64().unwrap();
    let r = api(
        &app,
        Method::PUT,
        &format!("/api/v2.0/quotas/{quota}"),
        &admin(),
        json!({"hard": {"storage": used + 3900}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let big = vec![7u8; 3000];
    push_image(&app, "w2/app", "v2", &[&big]).await;
    let bigger = vec![8u8; 900];
    let cfg = br#"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let refused = push_image_as(&app, &admin(), "w2/app", "v3", cfg, &[&bigger]).await;
    assert_eq!(refused, StatusCode::PRECONDITION_FAILED);
    deliver_until(&app, 20, || {
        let g = rx.got("/plain");
        g.iter().any(|g| g.body["type"] == "QUOTA_WARNING")
            && g.iter().any(|g| g.body["type"] == "QUOTA_EXCEED")
    })
    .await;
    let g = rx.got("/plain");
    let exceed = g.iter().find(|g| g.body["type"] == "QUOTA_EXCEED").unwrap();
    assert!(exceed.body["event_data"]["custom_attributes"]["Details"]
        .as_str()
        .unwrap()
        .contains("quota exceeded"));
    assert_eq!(exceed.body["event_data"]["repository"]["repo_full_name"], "w2/app");
    let warn = g.iter().find(|g| g.body["type"] == "QUOTA_WARNING").unwrap();
    assert!(
        warn.body["event_data"]["custom_attributes"]["Details"].as_str().unwrap().contains("85%"),
        "{}",
        warn.body
    );
    // Tag retention: a run that deletes (keep the latest 1 of 2 tags).
    let r = api(
        &app,
        Method::PUT,
        &format!("/api/v2.0/quotas/{quota}"),
        &admin(),
        json!({"hard": {"storage": -1}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    push_image(&app, "w2/app", "v4", &[b"layer-v4"]).await;
    let rules = json!([{"disabled": false, "action": "retain", "template": "latestPushedK", "params": {"latestPushedK": 1},
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**", "extras": "{\"untagged\":true}"}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}}]);
    let body = json!({"algorithm": "or", "rules": rules, "trigger": {"kind": "Schedule", "settings": {"cron": ""}, "references": {}},
        "scope": {"level": "project", "ref": pid}});
    let r = api(&app, Method::POST, "/api/v2.0/retentions", &admin(), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let rid = r.header("location").unwrap().rsplit('/').next().unwrap().to_string();
    let r = api(
        &app,
        Method::POST,
        &format!("/api/v2.0/retentions/{rid}/executions"),
        &admin(),
        json!({"dry_run": false}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    deliver_until(&app, 30, || rx.got("/plain").iter().any(|g| g.body["type"] == "TAG_RETENTION")).await;
    let g = rx.got("/plain");
    let ret = &g.iter().find(|g| g.body["type"] == "TAG_RETENTION").unwrap().body["event_data"]["retention"];
    assert_eq!(ret["project_name"], "w2");
    assert_eq!(ret["result"], "SUCCESS");
    assert_eq!(ret["total"], 2);
    assert_eq!(ret["retained"], 1);
    assert_eq!(ret["deleted_artifact"][0]["name_tag"], "w2/app:v2");
    // Once each: the retention's deletion is a DELETE_ARTIFACT too; nothing was repeated.
    let mut types: Vec<String> = g.iter().map(|g| g.body["type"].as_str().unwrap().to_string()).collect();
    types.sort();
    assert_eq!(
        types,
        [
            "DELETE_ARTIFACT",
            "DELETE_ARTIFACT",
            "PULL_ARTIFACT",
            "PUSH_ARTIFACT",
            "PUSH_ARTIFACT",
            "PUSH_ARTIFACT",
            "QUOTA_EXCEED",
            "QUOTA_WARNING",
            "TAG_RETENTION"
        ],
    );
    let ids: std::collections::HashSet<String> =
        g.iter().map(|g| g.headers["x-berth-event-id"].to_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), g.len(), "one delivery per event");
    assert!(rx.got("/off").is_empty() && rx.got("/other").is_empty());
    // The history: one successful execution per event, its task and log; the last trigger.
    let execs = executions(&app, "w2", plain).await;
    assert_eq!(execs.len(), g.len());
    assert!(execs.iter().all(|e| e["status"] == "Success" && e["vendor_type"] == "WEBHOOK"), "{execs:?}");
    let eid = execs[0]["id"].as_i64().unwrap();
    let tasks =
        get(&app, &format!("/api/v2.0/projects/w2/webhook/policies/{plain}/executions/{eid}/tasks")).await;
    assert_eq!(tasks[0]["status"], "Success");
    assert_eq!(tasks[0]["run_count"], 1);
    let tid = tasks[0]["id"].as_i64().unwrap();
    let r = api(
        &app,
        Method::GET,
        &format!("/api/v2.0/projects/w2/webhook/policies/{plain}/executions/{eid}/tasks/{tid}/log"),
        &admin(),
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("answered 200"), "{}", r.text());
    let last = get(&app, "/api/v2.0/projects/w2/webhook/lasttrigger").await;
    let push_last = last
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["policy_name"] == "plain" && l["event_type"] == "PUSH_ARTIFACT")
        .unwrap();
    assert_ne!(push_last["last_trigger_time"], "0001-01-01T00:00:00.000Z");
    // The test endpoint: a PING to the target, 400 with the receiver's answer when it fails.
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/projects/w2/webhook/policies/test",
        &admin(),
        policy("t", &[], &rx.url("/test"), "", ""),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(rx.got("/test")[0].body["type"], "PING");
    rx.status.store(500, Ordering::Relaxed);
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/projects/w2/webhook/policies/test",
        &admin(),
        policy("t", &[], &rx.url("/test"), "", ""),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("500"), "{}", r.text());
});

both_dbs!(a_receiver_down_then_back_gets_every_event_and_a_slow_one_holds_back_nobody, toml = TOML, |app| {
    let mut rx = Receiver::start().await;
    let slow = Receiver::start().await;
    project(&app, "w3").await;
    let id = create(&app, "w3", policy("down", &["PUSH_ARTIFACT"], &rx.url("/d"), "Default", "")).await;
    create(&app, "w3", policy("slow", &["PUSH_ARTIFACT"], &slow.url("/s"), "Default", "")).await;
    slow.delay_ms.store(3000, Ordering::Relaxed); // beyond the 1 s timeout: every attempt fails
    rx.down();
    for i in 0..3 {
        push_image(&app, "w3/app", &format!("v{i}"), &[format!("l{i}").as_bytes()]).await;
    }
    // Attempts fail (connection refused) and are retried with backoff.
    app.state.audit.flush(&app.state.db).await.unwrap();
    jobs::tick(&app.state, "replica-1").await.unwrap();
    let failed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM webhook_tasks t JOIN webhook_executions e ON e.id = t.execution_id \
         WHERE e.policy_id = $1 AND t.status = 'Pending' AND t.run_count >= 1 AND t.next_attempt > 0",
    )
    .bind(id)
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(failed, 3);
    let execs = executions(&app, "w3", id).await;
    assert!(execs.iter().all(|e| e["status"] == "Running"), "{execs:?}");
    rx.up().await;
    rx.status.store(200, Ordering::Relaxed);
    let started = Instant::now();
    deliver_until(&app, 20, || rx.got("/d").len() >= 3).await;
    let mut tags: Vec<String> = rx
        .got("/d")
        .iter()
        .map(|g| g.body["event_data"]["resources"][0]["tag"].as_str().unwrap().to_string())
        .collect();
    tags.sort();
    assert_eq!(tags, ["v0", "v1", "v2"]);
    // The slow receiver's deliveries (each waiting out its timeout) did not hold these back:
    // three of them run beside the others rather than before them.
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
    let tasks: Vec<(String, i64)> = sqlx::query_as(
        "SELECT t.status, t.run_count FROM webhook_tasks t JOIN webhook_executions e ON e.id = t.execution_id \
         WHERE e.policy_id = $1",
    )
    .bind(id)
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap();
    assert!(tasks.iter().all(|(s, n)| s == "Success" && *n >= 2), "{tasks:?}");
    // The slow one gives up after max_attempts (4) and says why.
    deliver_until(&app, 40, || slow.got("/s").len() >= 12).await;
    deliver_until(&app, 10, || true).await;
    let statuses: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT t.status, t.status_message, t.run_count FROM webhook_tasks t WHERE t.address LIKE '%/s'",
    )
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap();
    assert!(statuses.iter().all(|(s, _, n)| s == "Error" && *n == 4), "{statuses:?}");
    assert!(statuses[0].1.contains("POST"), "{statuses:?}");
});

both_dbs!(a_delivery_whose_replica_died_is_delivered_again_with_the_same_event_id, toml = TOML, |app| {
    let rx = Receiver::start().await;
    project(&app, "w4").await;
    let policy_id = create(&app, "w4", policy("p", &["PUSH_ARTIFACT"], &rx.url("/k"), "Default", "")).await;
    push_image(&app, "w4/app", "v1", &[b"l-w4"]).await;
    app.state.audit.flush(&app.state.db).await.unwrap();
    // A replica claims the delivery, sends it (the receiver gets it but has not answered yet)
    // and dies.
    let job = jobs::claim(&app.state.db, "dead-replica").await.unwrap().expect("a delivery is queued");
    assert_eq!(job.kind, "webhook");
    let ctx = jobs::JobCtx::new(job.id, "dead-replica", &job.job_kind, &job.parameters);
    rx.delay_ms.store(900, Ordering::Relaxed);
    let cut =
        tokio::time::timeout(Duration::from_millis(500), server::webhook::deliver::run_job(&app.state, ctx))
            .await;
    assert!(cut.is_err(), "the delivery was cut short");
    assert_eq!(rx.got("/k").len(), 1, "the receiver got the first attempt");
    // An attempt writes nothing until it ends; its task reads as Running from its job.
    let eid = executions(&app, "w4", policy_id).await[0]["id"].as_i64().unwrap();
    let tasks_path = format!("/api/v2.0/projects/w4/webhook/policies/{policy_id}/executions/{eid}/tasks");
    let tasks = get(&app, &tasks_path).await;
    assert_eq!(tasks[0]["status"], "Running", "{tasks}");
    assert_eq!(tasks[0]["run_count"], 0, "{tasks}");
    assert_eq!(get(&app, &format!("{tasks_path}?q=status%3DRunning")).await.as_array().unwrap().len(), 1);
    rx.delay_ms.store(0, Ordering::Relaxed);
    sqlx::query("UPDATE jobs SET heartbeat = 1 WHERE id = $1")
        .bind(job.id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    // Another replica takes it back and delivers it.
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        jobs::tick(&app.state, "replica-2").await.unwrap();
        let done: String = sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1")
            .bind(job.id)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
        if done == "success" {
            break;
        }
        assert!(Instant::now() < end, "not redelivered: {done}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = rx.got("/k");
    assert_eq!(got.len(), 2, "at least once: the event came again");
    let ids: std::collections::HashSet<_> =
        got.iter().map(|g| g.headers["x-berth-event-id"].clone()).collect();
    assert_eq!(ids.len(), 1, "every delivery of the event carries its id");
    let worker: String = sqlx::query_scalar("SELECT worker FROM jobs WHERE id = $1")
        .bind(job.id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(worker, "replica-2");
    let tasks = get(&app, &tasks_path).await;
    assert_eq!((&tasks[0]["status"], &tasks[0]["run_count"]), (&json!("Success"), &json!(1)), "{tasks}");
});

both_dbs!(a_projects_deletion_takes_its_policies_and_history, toml = TOML, |app| {
    let rx = Receiver::start().await;
    project(&app, "w5").await;
    let id =
        create(&app, "w5", policy("p", &["PUSH_ARTIFACT", "DELETE_ARTIFACT"], &rx.url("/x"), "Default", ""))
            .await;
    let (digest, _) = push_image(&app, "w5/app", "v1", &[b"l-w5"]).await;
    deliver_until(&app, 20, || !rx.got("/x").is_empty()).await;
    assert_eq!(executions(&app, "w5", id).await.len(), 1);
    let r = app
        .call(
            Method::DELETE,
            &format!("/v2/w5/app/manifests/{digest}"),
            &[("authorization", &admin())],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    app.state.audit.flush(&app.state.db).await.unwrap();
    let r = api(&app, Method::DELETE, "/api/v2.0/projects/w5/repositories/app", &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = api(&app, Method::DELETE, "/api/v2.0/projects/w5", &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for table in ["webhook_policies", "webhook_executions", "webhook_tasks"] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table}");
    }
    let pending: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'webhook' AND status = 'pending'")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(pending, 0);
});

both_dbs!(a_delivery_stopped_from_the_job_service_reads_stopped, toml = TOML, |app| {
    let rx = Receiver::start().await;
    project(&app, "w6").await;
    let id = create(&app, "w6", policy("p", &["PUSH_ARTIFACT"], &rx.url("/s"), "Default", "")).await;
    push_image(&app, "w6/app", "v1", &[b"l-w6"]).await;
    app.state.audit.flush(&app.state.db).await.unwrap();
    let job: i64 = sqlx::query_scalar("SELECT id FROM jobs WHERE kind = 'webhook'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(jobs::request_stop(&app.state.db, job).await.unwrap(), jobs::StopOutcome::Stopped);
    let execs = executions(&app, "w6", id).await;
    assert_eq!(execs[0]["status"], "Stopped", "{execs:?}");
    let eid = execs[0]["id"].as_i64().unwrap();
    let path = format!("/api/v2.0/projects/w6/webhook/policies/{id}/executions");
    assert_eq!(get(&app, &format!("{path}?q=status%3DStopped")).await.as_array().unwrap().len(), 1);
    let tasks = get(&app, &format!("{path}/{eid}/tasks")).await;
    assert_eq!(tasks[0]["status"], "Stopped", "{tasks}");
    jobs::tick(&app.state, "replica").await.unwrap();
    assert!(rx.got("/s").is_empty(), "a stopped delivery is not sent");
});

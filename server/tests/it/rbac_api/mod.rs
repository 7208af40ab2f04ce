//! The REST side of RBAC: projects, members, users, robot accounts, configurations and the
//! audit log, each with the roles that may and may not use it. SQLite and PostgreSQL.
//! `users`: projects, members and users; `robots`: robot accounts; `system`: the audit log,
//! configurations and proxies.

use crate::common::oci::{admin, push_image_as};
use crate::common::{api, basic, member, TestApp, PW};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};

async fn user(app: &TestApp, name: &str) -> i64 {
    let r =
        api(app, Method::POST, "/api/v2.0/users", &admin(), json!({"username": name, "password": PW})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap()
}

/// Pushes an image without layers with `auth`; the status of the first refused step, else 201.
async fn push(app: &TestApp, auth: &str, repo: &str, tag: &str) -> StatusCode {
    push_image_as(app, auth, repo, tag, br#"{"os":"linux"}"#, &[]).await
}

async fn audit(app: &TestApp, q: &str) -> Vec<Value> {
    let q = url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
    let r = app
        .get_with(&format!("/api/v2.0/audit-logs?page_size=100&q={q}"), &[("authorization", &admin())])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json().as_array().unwrap().clone()
}

const NONE: Value = Value::Null;
const OK: StatusCode = StatusCode::OK;
const CREATED: StatusCode = StatusCode::CREATED;
const BAD_REQUEST: StatusCode = StatusCode::BAD_REQUEST;
const UNAUTHORIZED: StatusCode = StatusCode::UNAUTHORIZED;
const FORBIDDEN: StatusCode = StatusCode::FORBIDDEN;
const NOT_FOUND: StatusCode = StatusCode::NOT_FOUND;
const CONFLICT: StatusCode = StatusCode::CONFLICT;

/// Runs a permission table in order (a row may depend on the rows before it) and asserts each
/// row's status. A row: who asks (`"admin"`, a user with `PW`, or `""` for nobody), the method,
/// the path, the JSON body (`NONE`: no body) and the status it must get.
async fn expect<const N: usize>(app: &TestApp, rows: [(&str, Method, &str, Value, StatusCode); N]) {
    for (who, method, path, body, status) in rows {
        let auth = match who {
            "" => String::new(),
            "admin" => admin(),
            name => basic(name, PW),
        };
        let mut headers = Vec::new();
        if !auth.is_empty() {
            headers.push(("authorization", auth.as_str()));
        }
        if !body.is_null() {
            headers.push(("content-type", "application/json"));
        }
        let sent = if body.is_null() { String::new() } else { body.to_string() };
        let r = app.call(method.clone(), path, &headers, sent).await;
        assert_eq!(r.status, status, "{who:?} {method} {path} {body}: {}", r.text());
    }
}

mod robots;
mod system;
mod users;

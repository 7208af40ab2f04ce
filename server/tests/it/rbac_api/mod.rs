//! The REST side of RBAC: projects, members, users, robot accounts, configurations and the
//! audit log, each with the roles that may and may not use it. SQLite and PostgreSQL.
//! `users`: projects, members and users; `robots`: robot accounts; `system`: the audit log,
//! configurations and proxies.

use crate::common::{basic, TestApp, ADMIN_PASSWORD};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

const PW: &str = "Passw0rd!x";

fn admin() -> String {
    basic("admin", ADMIN_PASSWORD)
}

async fn api(app: &TestApp, method: Method, path: &str, auth: &str, body: Value) -> crate::common::Resp {
    let mut headers = vec![("content-type", "application/json")];
    if !auth.is_empty() {
        headers.push(("authorization", auth));
    }
    app.call(method, path, &headers, if body.is_null() { String::new() } else { body.to_string() }).await
}

async fn user(app: &TestApp, name: &str) -> i64 {
    let r =
        api(app, Method::POST, "/api/v2.0/users", &admin(), json!({"username": name, "password": PW})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap()
}

async fn member(app: &TestApp, project: &str, name: &str, role: i64) -> crate::common::Resp {
    api(
        app,
        Method::POST,
        &format!("/api/v2.0/projects/{project}/members"),
        &admin(),
        json!({"role_id": role, "member_user": {"username": name}}),
    )
    .await
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

async fn push(app: &TestApp, auth: &str, repo: &str, tag: &str) -> StatusCode {
    let config = br#"{"os":"linux"}"#;
    let r = app
        .call(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={}", sha256(config)),
            &[("authorization", auth)],
            config.to_vec(),
        )
        .await;
    if r.status != StatusCode::CREATED {
        return r.status;
    }
    let m = json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":sha256(config),"size":config.len()},
        "layers":[]});
    app.call(
        Method::PUT,
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("authorization", auth), ("content-type", "application/vnd.oci.image.manifest.v1+json")],
        m.to_string(),
    )
    .await
    .status
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

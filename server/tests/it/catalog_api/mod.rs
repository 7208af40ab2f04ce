//! Repositories, artifacts, tags, accessories, copies, search, statistics, permissions and
//! project summaries through `/api/v2.0`, with the roles that may and may not use them, the
//! `q`/`sort` grammar, double-encoded repository names and malformed input. SQLite and PostgreSQL.
//! `artifacts`: artifacts, tags, accessories and copies; `repositories`: repositories, search,
//! statistics, CSRF and write contention; `shapes`: Harbor's JSON shapes.

use crate::common::oci::{admin, push_blob as blob, put_manifest, sha256, OCI_INDEX, OCI_MANIFEST};
use crate::common::{api, basic, member, TestApp, ADMIN_PASSWORD, PW};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

async fn manifest(app: &TestApp, repo: &str, reference: &str, ct: &str, m: &Value) -> String {
    let body = m.to_string();
    let r = put_manifest(app, repo, reference, ct, body.as_bytes()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    sha256(body.as_bytes())
}

/// An image with one layer of `layer` bytes; returns its digest.
async fn image(app: &TestApp, repo: &str, reference: &str, layer: &[u8], arch: &str) -> String {
    let config = format!(r#"{{"architecture":"{arch}","os":"linux"}}"#);
    let cd = blob(app, repo, config.as_bytes()).await;
    let ld = blob(app, repo, layer).await;
    let m = json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":cd,"size":config.len()},
        "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":ld,"size":layer.len()}]});
    manifest(app, repo, reference, OCI_MANIFEST, &m).await
}

/// A signature-like artifact whose subject is `subject`.
async fn signature(app: &TestApp, repo: &str, subject: &str, subject_size: usize) -> String {
    let empty = blob(app, repo, b"{}").await;
    let sig = blob(app, repo, b"signature-bytes").await;
    let m = json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,"artifactType":"application/vnd.dev.cosign.artifact.sig.v1+json",
        "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":empty,"size":2},
        "layers":[{"mediaType":"application/octet-stream","digest":sig,"size":15}],
        "subject":{"mediaType":OCI_MANIFEST,"digest":subject,"size":subject_size}});
    let body = m.to_string();
    manifest(app, repo, &sha256(body.as_bytes()), OCI_MANIFEST, &m).await
}

async fn user(app: &TestApp, name: &str, project: &str, role: i64) {
    let r =
        api(app, Method::POST, "/api/v2.0/users", &admin(), json!({"username": name, "password": PW})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    if role > 0 {
        let r = member(app, project, name, role).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
}

/// `DELETE path` with `auth`; returns the status.
async fn delete(app: &TestApp, path: &str, auth: &str) -> StatusCode {
    app.call(Method::DELETE, path, &[("authorization", auth)], vec![]).await.status
}

fn digests(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|a| a["digest"].as_str().unwrap().to_string()).collect()
}

mod artifacts;
mod repositories;
mod shapes;

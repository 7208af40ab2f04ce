//! Response bodies of the main REST resources, pinned by a snapshot with ids, times and digests
//! redacted (`UPDATE_SNAPSHOTS=1` accepts a reviewed change). Field names and shapes are what
//! Harbor tooling reads, so any change to them shows up in review.

use std::collections::HashMap;

use crate::common::{basic, TestApp, ADMIN_PASSWORD};
use axum::http::{Method, StatusCode};
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/bodies.json");

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

const ID_KEYS: [&str; 10] = [
    "id",
    "project_id",
    "repository_id",
    "artifact_id",
    "owner_id",
    "entity_id",
    "user_id",
    "parent_id",
    "child_id",
    "subject_artifact_id",
];

/// Replaces ids, times and digests by stable placeholders (digests numbered by first sight).
fn redact(v: &Value, digests: &mut HashMap<String, usize>) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                let r = if ID_KEYS.contains(&k.as_str()) && x.is_i64() {
                    json!("<id>")
                } else if (k.ends_with("_time") || k == "op_time") && x.is_string() {
                    json!("<time>")
                } else {
                    redact(x, digests)
                };
                out.insert(k.clone(), r);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| redact(x, digests)).collect()),
        Value::String(s) if s.contains("sha256:") => {
            let mut s = s.clone();
            while let Some(i) = s.find("sha256:") {
                let d = s[i..i + 71.min(s.len() - i)].to_string();
                let n = digests.len();
                let n = *digests.entry(d.clone()).or_insert(n);
                s = s.replacen(&d, &format!("<digest{n}>"), 1);
            }
            Value::String(s)
        }
        other => other.clone(),
    }
}

#[tokio::test]
async fn bodies_match_the_snapshot() {
    let app = TestApp::new(crate::common::DbChoice::Sqlite).await;
    let admin = basic("admin", ADMIN_PASSWORD);
    let call = |m: Method, path: &str, body: Value| {
        let app = &app;
        let admin = admin.clone();
        let path = path.to_string();
        async move {
            app.call(
                m,
                &path,
                &[("authorization", &admin), ("content-type", "application/json")],
                body.to_string(),
            )
            .await
        }
    };
    assert_eq!(
        call(Method::POST, "/api/v2.0/projects", json!({"project_name": "p1"})).await.status,
        StatusCode::CREATED
    );
    call(
        Method::POST,
        "/api/v2.0/users",
        json!({"username": "dev", "password": "Passw0rd!x", "realname": "Dev"}),
    )
    .await;
    call(
        Method::POST,
        "/api/v2.0/projects/p1/members",
        json!({"role_id": 2, "member_user": {"username": "dev"}}),
    )
    .await;
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    for blob in [&config[..], b"layer"] {
        let r = app
            .call(
                Method::POST,
                &format!("/v2/p1/app/blobs/uploads/?digest={}", sha256(blob)),
                &[("authorization", &admin)],
                blob.to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let m = json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":sha256(config),"size":config.len()},
        "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":sha256(b"layer"),"size":5}],
        "annotations":{"org.opencontainers.image.title":"app"}});
    let r = app
        .call(
            Method::PUT,
            "/v2/p1/app/manifests/v1",
            &[("authorization", &admin), ("content-type", "application/vnd.oci.image.manifest.v1+json")],
            m.to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let robot = call(
        Method::POST,
        "/api/v2.0/robots",
        json!({"name": "ci", "level": "project", "duration": -1, "description": "CI",
               "permissions": [{"kind": "project", "namespace": "p1", "access": [{"resource": "repository", "action": "pull"}]}]}),
    )
    .await
    .json();
    let robot_id = robot["id"].as_i64().unwrap();

    let paths = [
        "/api/v2.0/projects/p1".to_string(),
        "/api/v2.0/projects/p1/summary".into(),
        "/api/v2.0/projects/p1/members".into(),
        "/api/v2.0/projects/p1/repositories".into(),
        "/api/v2.0/projects/p1/repositories/app/artifacts".into(),
        "/api/v2.0/projects/p1/repositories/app/artifacts/v1/tags".into(),
        format!("/api/v2.0/robots/{robot_id}"),
        "/api/v2.0/users/current".into(),
        "/api/v2.0/audit-logs?q=operation%3Dcreate&page_size=3".into(),
        "/api/v2.0/statistics".into(),
        "/api/v2.0/search?q=app".into(),
        "/api/v2.0/projects/nope".into(),
    ];
    let mut digests = HashMap::new();
    let mut out = Map::new();
    for p in &paths {
        let r = app.get_with(p, &[("authorization", &admin)]).await;
        let mut body = redact(&r.json(), &mut digests);
        if p.starts_with("/api/v2.0/statistics") {
            body["total_storage_consumption"] = json!("<bytes>");
        }
        out.insert(format!("GET {p} -> {}", r.status.as_u16()), body);
    }
    let pretty = serde_json::to_string_pretty(&Value::Object(out))
        .unwrap()
        .replace(&format!("robots/{robot_id}"), "robots/<id>")
        + "\n";
    if std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::write(SNAPSHOT, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        committed == pretty,
        "response bodies changed; review and run `UPDATE_SNAPSHOTS=1 cargo test -p server --test it bodies`\n{pretty}"
    );
}

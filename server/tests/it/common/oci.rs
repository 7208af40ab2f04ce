//! OCI helpers shared by the registry and GC tests: digests and pushes through `/v2`.

use axum::http::{Method, StatusCode};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::{basic, TestApp, ADMIN_PASSWORD};

pub fn admin() -> String {
    basic("admin", ADMIN_PASSWORD)
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(data)))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Pushes a blob monolithically; returns its digest.
pub async fn push_blob(app: &TestApp, repo: &str, data: &[u8]) -> String {
    let d = sha256(data);
    let r = app
        .call(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
            &[("authorization", &admin())],
            data.to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    d
}

/// Pushes config + layers and an image manifest under `reference`; returns (digest, body).
pub async fn push_image(app: &TestApp, repo: &str, reference: &str, layers: &[&[u8]]) -> (String, Vec<u8>) {
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let cd = push_blob(app, repo, config).await;
    let mut ls = vec![];
    for l in layers {
        let d = push_blob(app, repo, l).await;
        ls.push(json!({"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":d,"size":l.len()}));
    }
    let m = json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":cd,"size":config.len()},
        "layers":ls});
    let body = serde_json::to_vec(&m).unwrap();
    let r = put_manifest(app, repo, reference, OCI_MANIFEST, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    (sha256(&body), body)
}

pub async fn put_manifest(app: &TestApp, repo: &str, reference: &str, ct: &str, body: &[u8]) -> super::Resp {
    app.call(
        Method::PUT,
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("authorization", &admin()), ("content-type", ct)],
        body.to_vec(),
    )
    .await
}

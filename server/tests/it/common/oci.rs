//! OCI helpers shared by the registry, GC, catalog and token tests: digests, pushes and the
//! steps of a blob upload through `/v2`, all as the admin.

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

/// `POST /v2/{repo}/blobs/uploads/?digest=…` with `data` and `auth`: a monolithic blob upload.
pub async fn post_blob(app: &TestApp, auth: &str, repo: &str, data: &[u8]) -> super::Resp {
    let d = sha256(data);
    app.call(
        Method::POST,
        &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
        &[("authorization", auth)],
        data.to_vec(),
    )
    .await
}

/// Pushes a blob monolithically as the admin, expecting 201; returns its digest.
pub async fn push_blob(app: &TestApp, repo: &str, data: &[u8]) -> String {
    let r = post_blob(app, &admin(), repo, data).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    sha256(data)
}

/// The body of an image manifest for `config` and gzip `layers`.
pub fn image_manifest(config: &[u8], layers: &[&[u8]]) -> Vec<u8> {
    let gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    let ls: Vec<_> =
        layers.iter().map(|l| json!({"mediaType":gzip,"digest":sha256(l),"size":l.len()})).collect();
    let cd = sha256(config);
    let m = json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":cd,"size":config.len()},
        "layers":ls});
    serde_json::to_vec(&m).unwrap()
}

/// Pushes config + layers and an image manifest under `reference` as the admin, expecting 201
/// for each; returns (digest, body).
pub async fn push_image(app: &TestApp, repo: &str, reference: &str, layers: &[&[u8]]) -> (String, Vec<u8>) {
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    push_blob(app, repo, config).await;
    for l in layers {
        push_blob(app, repo, l).await;
    }
    let body = image_manifest(config, layers);
    let r = put_manifest(app, repo, reference, OCI_MANIFEST, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    (sha256(&body), body)
}

/// Pushes `config`, `layers` and their image manifest under `tag` with `auth`, asserting nothing:
/// the status of the first refused blob upload, else of the manifest PUT.
pub async fn push_image_as(
    app: &TestApp,
    auth: &str,
    repo: &str,
    tag: &str,
    config: &[u8],
    layers: &[&[u8]],
) -> StatusCode {
    for blob in std::iter::once(config).chain(layers.iter().copied()) {
        let r = post_blob(app, auth, repo, blob).await;
        if r.status != StatusCode::CREATED {
            return r.status;
        }
    }
    app.call(
        Method::PUT,
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("authorization", auth), ("content-type", OCI_MANIFEST)],
        image_manifest(config, layers),
    )
    .await
    .status
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

/// Opens an upload session in `repo` (`POST /v2/{repo}/blobs/uploads/`), expecting 202;
/// returns its `Location`.
pub async fn start_upload(app: &TestApp, repo: &str) -> String {
    let r = app
        .call(Method::POST, &format!("/v2/{repo}/blobs/uploads/"), &[("authorization", &admin())], vec![])
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    r.header("location").expect("location").to_string()
}

/// `PATCH {loc}` with `body` and the `extra` headers: one chunk of an upload.
pub async fn patch_upload(app: &TestApp, loc: &str, extra: &[(&str, &str)], body: &[u8]) -> super::Resp {
    let auth = admin();
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    app.call(Method::PATCH, loc, &headers, body.to_vec()).await
}

/// `PUT {loc}?digest={digest}` with `body` and the `extra` headers: the closing request of an upload.
pub async fn close_upload(
    app: &TestApp,
    loc: &str,
    digest: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> super::Resp {
    let auth = admin();
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    app.call(Method::PUT, &format!("{loc}?digest={digest}"), &headers, body.to_vec()).await
}

//! OCI Distribution v1.1 through the real router, on SQLite and PostgreSQL and on filesystem
//! and S3 storage: every endpoint, status code, header and error code the registry serves.
//! `blobs`: the base endpoint, blob reads and every upload path; `manifests`: manifests, tags,
//! indexes, referrers, the catalog, permissions and replicas.

use crate::common::basic;
use crate::common::oci::{
    admin, close_upload, hex, patch_upload, push_blob, push_image, put_manifest, sha256, start_upload,
    OCI_INDEX, OCI_MANIFEST,
};
use axum::http::{Method, StatusCode};
use serde_json::json;
use sha2::{Digest as _, Sha512};

fn oci_code(r: &crate::common::Resp) -> String {
    let j = r.json();
    j["errors"][0]["message"].as_str().expect("message");
    j["errors"][0]["code"].as_str().expect("code").to_string()
}

mod blobs;
mod manifests;

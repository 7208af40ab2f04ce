//! `replication::copy::copy_artifact` between two independent in-process instances (each its
//! own database and storage), both seen through `replication::local::LocalRegistry`: single
//! images, indexes with children, referrers (signatures, SBOMs) with their subjects, unchanged
//! and existing destinations, mounts within one instance, a corrupt source blob, the bandwidth
//! limit and stopping. And `LocalRegistry`'s own checks and audit rows. The basic copy runs on
//! SQLite and PostgreSQL, the rest on SQLite.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use bytes::Bytes;
use serde_json::{json, Value};
use server::registry::digest::Digest;
use server::replication::content::{Content, ContentError, Descriptor, Manifest};
use server::replication::copy::{copy_artifact, CopyObserver, CopyOptions, CopyReport, Side};
use server::replication::local::LocalRegistry;

use crate::common::oci::*;
use crate::common::{DbChoice, TestApp};

/// A second, independent instance of the same database kind as `app`.
async fn peer(app: &TestApp) -> TestApp {
    let db =
        if app.config.database.url.starts_with("sqlite") { DbChoice::Sqlite } else { DbChoice::Postgres };
    TestApp::new(db).await
}

fn local(app: &TestApp) -> LocalRegistry {
    LocalRegistry::new(app.state.clone(), "replication")
}

#[derive(Default)]
struct Observer {
    lines: Mutex<Vec<String>>,
    transferred: AtomicU64,
    stop: AtomicBool,
    /// Ask to stop once a log line contains this.
    stop_after: Option<&'static str>,
}

impl CopyObserver for Observer {
    fn log(&self, line: String) {
        if self.stop_after.is_some_and(|s| line.contains(s)) {
            self.stop.store(true, Ordering::Relaxed);
        }
        self.lines.lock().unwrap().push(line);
    }
    fn transferred(&self, n: u64) {
        self.transferred.fetch_add(n, Ordering::Relaxed);
    }
    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

impl Observer {
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

fn opts() -> CopyOptions {
    CopyOptions { parallel_blobs: 3, override_existing: false, ..CopyOptions::default() }
}

async fn copy(
    from: &dyn Content,
    src: (&str, &str),
    to: &dyn Content,
    dst: (&str, &str),
    opts: &CopyOptions,
    observer: &Observer,
) -> Result<CopyReport, ContentError> {
    copy_artifact(
        Side { content: from, repo: src.0, reference: src.1 },
        Side { content: to, repo: dst.0, reference: dst.1 },
        opts,
        observer,
    )
    .await
}

async fn get_manifest(app: &TestApp, repo: &str, reference: &str) -> (StatusCode, Vec<u8>) {
    let r = app.get_with(&format!("/v2/{repo}/manifests/{reference}"), &[("authorization", &admin())]).await;
    (r.status, r.body)
}

async fn get_blob(app: &TestApp, repo: &str, digest: &str) -> (StatusCode, Vec<u8>) {
    let r = app.get_with(&format!("/v2/{repo}/blobs/{digest}"), &[("authorization", &admin())]).await;
    (r.status, r.body)
}

async fn audit(app: &TestApp, q: &str) -> Vec<Value> {
    let path = format!(
        "/api/v2.0/audit-logs?page_size=100&q={}",
        url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
    );
    let r = app.get_with(&path, &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json().as_array().unwrap().clone()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.state.db.pool).await.unwrap()
}

/// Pushes an artifact manifest of `artifact_type` with one layer `payload` whose subject is
/// `subject` (a manifest of `subject_size` bytes), by digest; returns its digest.
async fn push_referrer(
    app: &TestApp,
    repo: &str,
    artifact_type: &str,
    payload: &[u8],
    subject: &str,
    subject_size: usize,
) -> String {
    let empty = push_blob(app, repo, b"{}").await;
    let layer = push_blob(app, repo, payload).await;
    let art = json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,"artifactType":artifact_type,
        "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":empty,"size":2},
        "layers":[{"mediaType":"application/octet-stream","digest":layer,"size":payload.len()}],
        "subject":{"mediaType":OCI_MANIFEST,"digest":subject,"size":subject_size}});
    let body = serde_json::to_vec(&art).unwrap();
    let d = sha256(&body);
    let r = put_manifest(app, repo, &d, OCI_MANIFEST, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    d
}

both_dbs!(copies_an_image_and_then_finds_it_unchanged, |a| {
    let b = peer(&a).await;
    let (from, to) = (local(&a), local(&b));
    let layers: [&[u8]; 2] = [b"first layer of app", b"second layer of app"];
    let (digest, body) = push_image(&a, "library/app", "v1", &layers).await;
    let obs = Observer::default();
    let report = copy(&from, ("library/app", "v1"), &to, ("library/app", "v1"), &opts(), &obs).await.unwrap();
    let config_len = get_blob(
        &a,
        "library/app",
        serde_json::from_slice::<Value>(&body).unwrap()["config"]["digest"].as_str().unwrap(),
    )
    .await
    .1
    .len();
    assert_eq!(report.digest.as_ref().map(ToString::to_string).as_deref(), Some(digest.as_str()));
    assert_eq!(
        (report.manifests, report.blobs_copied, report.blobs_mounted, report.blobs_present),
        (1, 3, 0, 0)
    );
    let total = (layers[0].len() + layers[1].len() + config_len) as u64;
    assert_eq!(report.bytes, total);
    assert_eq!(obs.transferred.load(Ordering::Relaxed), total);
    assert!(!report.unchanged && !report.skipped_existing);
    // The destination serves the same bytes under the same digest.
    assert_eq!(get_manifest(&b, "library/app", "v1").await, (StatusCode::OK, body.clone()));
    for l in layers {
        assert_eq!(get_blob(&b, "library/app", &sha256(l)).await, (StatusCode::OK, l.to_vec()));
    }
    // One log line per blob and per manifest.
    let lines = obs.lines();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("blob ") && l.contains(" copied in ")).count(),
        3,
        "{lines:?}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("manifest ") && l.contains(" pushed ")).count(),
        1,
        "{lines:?}"
    );
    // The push left the destination's audit row, by the replication actor.
    let rows = audit(&b, "operation=create,resource_type=artifact,username=replication").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["resource"], "library/app:v1");
    // Reading the source counted as a pull there, by the same actor.
    assert_eq!(audit(&a, "operation=pull,username=replication").await.len(), 1);
    // No upload session is left on either side.
    assert_eq!(count(&b, "SELECT COUNT(*) FROM uploads").await, 0);

    // Again: unchanged, nothing transferred.
    let obs = Observer::default();
    let again = copy(&from, ("library/app", "v1"), &to, ("library/app", "v1"), &opts(), &obs).await.unwrap();
    assert!(again.unchanged);
    assert_eq!((again.manifests, again.blobs_copied, again.bytes), (0, 0, 0));
    assert_eq!(obs.transferred.load(Ordering::Relaxed), 0);

    // Another digest under the destination tag: skipped without override, replaced with it.
    push_image(&b, "library/app", "v2", &[b"the destination's own v2"]).await;
    let (v2, _) = push_image(&a, "library/app", "v2", &[b"the source's v2"]).await;
    let skipped =
        copy(&from, ("library/app", "v2"), &to, ("library/app", "v2"), &opts(), &obs).await.unwrap();
    assert!(skipped.skipped_existing);
    assert_eq!((skipped.manifests, skipped.bytes), (0, 0));
    assert_ne!(sha256(&get_manifest(&b, "library/app", "v2").await.1), v2);
    let o = CopyOptions { override_existing: true, ..opts() };
    let replaced = copy(&from, ("library/app", "v2"), &to, ("library/app", "v2"), &o, &obs).await.unwrap();
    assert_eq!(replaced.manifests, 1);
    // The config is the same as v1's: present on the destination already.
    assert_eq!((replaced.blobs_copied, replaced.blobs_present), (1, 1));
    assert_eq!(sha256(&get_manifest(&b, "library/app", "v2").await.1), v2);
});

/// An index of two images sharing a layer, with a non-distributable layer in one.
async fn push_index(app: &TestApp, repo: &str, tag: &str) -> (String, Vec<String>) {
    let shared: &[u8] = b"a layer both platforms share";
    let config_body: &[u8] = br#"{"architecture":"amd64","os":"linux"}"#;
    let config = push_blob(app, repo, config_body).await;
    push_blob(app, repo, shared).await;
    let mut children = vec![];
    for (arch, own) in [("amd64", &b"amd64 only layer"[..]), ("arm64", &b"arm64 only layer"[..])] {
        push_blob(app, repo, own).await;
        let gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
        let mut layers = vec![
            json!({"mediaType":gzip,"digest":sha256(shared),"size":shared.len()}),
            json!({"mediaType":gzip,"digest":sha256(own),"size":own.len()}),
        ];
        if arch == "amd64" {
            // Not in the registry, and never copied.
            layers.push(json!({"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                "digest":sha256(b"foreign"),"size":7,"urls":["https://example.com/foreign"]}));
        }
        let m = json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":config,"size":config_body.len()},
            "layers":layers});
        let body = serde_json::to_vec(&m).unwrap();
        let d = sha256(&body);
        let r = put_manifest(app, repo, &d, OCI_MANIFEST, &body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        children.push(json!({"mediaType":OCI_MANIFEST,"digest":d,"size":body.len(),
            "platform":{"os":"linux","architecture":arch}}));
    }
    let index =
        serde_json::to_vec(&json!({"schemaVersion":2,"mediaType":OCI_INDEX,"manifests":children})).unwrap();
    let r = put_manifest(app, repo, tag, OCI_INDEX, &index).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let digests = children.iter().map(|c| c["digest"].as_str().unwrap().to_string()).collect();
    (sha256(&index), digests)
}

#[tokio::test]
async fn copies_an_index_with_every_child_sqlite() {
    let a = TestApp::new(DbChoice::Sqlite).await;
    let b = peer(&a).await;
    let (index, children) = push_index(&a, "library/multi", "latest").await;
    let obs = Observer::default();
    let report =
        copy(&local(&a), ("library/multi", "latest"), &local(&b), ("library/multi", "latest"), &opts(), &obs)
            .await
            .unwrap();
    // Children and the index; the config and the shared layer once, each own layer once.
    assert_eq!(report.manifests, 3);
    assert_eq!((report.blobs_copied, report.blobs_present), (4, 0), "{:?}", obs.lines());
    assert!(obs.lines().iter().any(|l| l.contains("non-distributable")), "{:?}", obs.lines());
    let (status, body) = get_manifest(&b, "library/multi", "latest").await;
    assert_eq!((status, sha256(&body)), (StatusCode::OK, index.clone()));
    for c in &children {
        let (status, body) = get_manifest(&b, "library/multi", c).await;
        assert_eq!((status, sha256(&body)), (StatusCode::OK, c.clone()));
    }
    // The foreign layer was neither asked for nor stored.
    assert_eq!(get_blob(&b, "library/multi", &sha256(b"foreign")).await.0, StatusCode::NOT_FOUND);

    // The same index under another tag:
    let report =
        copy(&local(&a), ("library/multi", "latest"), &local(&b), ("library/multi", "stable"), &opts(), &obs)
            .await
            .unwrap();
    // The destination has the index by digest already: only the tag is written.
    assert_eq!((report.manifests, report.blobs_copied, report.blobs_present, report.bytes), (1, 0, 0, 0));
    assert_eq!(sha256(&get_manifest(&b, "library/multi", "stable").await.1), index);
}

#[tokio::test]
async fn copies_referrers_with_their_subjects_sqlite() {
    let a = TestApp::new(DbChoice::Sqlite).await;
    let b = peer(&a).await;
    let repo = "library/signed";
    let (image, image_body) = push_image(&a, repo, "v1", &[b"signed image layer"]).await;
    let sbom =
        push_referrer(&a, repo, "application/spdx+json", b"{\"spdx\":1}", &image, image_body.len()).await;
    let sbom_size = get_manifest(&a, repo, &sbom).await.1.len();
    // A cosign-style signature of the image, and one of the SBOM.
    let sig = push_referrer(
        &a,
        repo,
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        b"sig of image",
        &image,
        image_body.len(),
    )
    .await;
    let sbom_sig = push_referrer(
        &a,
        repo,
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        b"sig of sbom",
        &sbom,
        sbom_size,
    )
    .await;

    let (from, to) = (local(&a), local(&b));
    let obs = Observer::default();
    let report = copy(&from, (repo, "v1"), &to, (repo, "v1"), &opts(), &obs).await.unwrap();
    assert_eq!(report.manifests, 4, "{:?}", obs.lines());
    for d in [&image, &sbom, &sig, &sbom_sig] {
        let (status, body) = get_manifest(&b, repo, d).await;
        assert_eq!((status, sha256(&body)), (StatusCode::OK, d.clone()));
    }
    let image_digest: Digest = image.parse().unwrap();
    let mut on_b: Vec<String> =
        to.referrers(repo, &image_digest).await.unwrap().iter().map(|r| r.digest.to_string()).collect();
    on_b.sort();
    let mut want = vec![sbom.clone(), sig.clone()];
    want.sort();
    assert_eq!(on_b, want);
    let sbom_digest: Digest = sbom.parse().unwrap();
    let sbom_refs = to.referrers(repo, &sbom_digest).await.unwrap();
    assert_eq!(sbom_refs.len(), 1);
    assert_eq!(
        sbom_refs[0].artifact_type.as_deref(),
        Some("application/vnd.dev.cosign.artifact.sig.v1+json")
    );

    // Without referrers: only the image.
    let o = CopyOptions { with_referrers: false, ..opts() };
    let plain = copy(&from, (repo, "v1"), &to, ("library/plain", "v1"), &o, &obs).await.unwrap();
    assert_eq!(plain.manifests, 1);
    assert!(to.referrers("library/plain", &image_digest).await.unwrap().is_empty());

    // A signature added at the source later reaches an otherwise unchanged destination.
    let late =
        push_referrer(&a, repo, "application/vnd.example.attestation", b"late", &image, image_body.len())
            .await;
    let report = copy(&from, (repo, "v1"), &to, (repo, "v1"), &opts(), &obs).await.unwrap();
    assert!(!report.unchanged);
    assert_eq!(report.manifests, 1);
    assert_eq!(sha256(&get_manifest(&b, repo, &late).await.1), late);
    let report = copy(&from, (repo, "v1"), &to, (repo, "v1"), &opts(), &obs).await.unwrap();
    assert!(report.unchanged);
    assert_eq!((report.manifests, report.bytes), (0, 0));
}

#[tokio::test]
async fn mounts_within_one_instance_sqlite() {
    let a = TestApp::new(DbChoice::Sqlite).await;
    let (digest, _) =
        push_image(&a, "library/app", "v1", &[b"mountable layer one", b"mountable layer two"]).await;
    let reg = local(&a);
    let obs = Observer::default();
    let report =
        copy(&reg, ("library/app", "v1"), &reg, ("library/mirror", "v1"), &opts(), &obs).await.unwrap();
    assert_eq!((report.blobs_mounted, report.blobs_copied, report.bytes), (3, 0, 0), "{:?}", obs.lines());
    assert_eq!(sha256(&get_manifest(&a, "library/mirror", "v1").await.1), digest);
    assert!(obs.lines().iter().any(|l| l.contains("mounted from library/app")));
    // Untagged: by digest on both sides; the destination gets no tag.
    let report = copy(&reg, ("library/app", &digest), &reg, ("library/untagged", &digest), &opts(), &obs)
        .await
        .unwrap();
    assert_eq!(report.manifests, 1);
    assert_eq!(sha256(&get_manifest(&a, "library/untagged", &digest).await.1), digest);
    assert!(reg.tags("library/untagged").await.unwrap().is_empty());
    // A destination digest that is not the source's is refused.
    let other = sha256(b"other");
    let err =
        copy(&reg, ("library/app", "v1"), &reg, ("library/x", &other), &opts(), &obs).await.unwrap_err();
    assert!(matches!(err, ContentError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn a_corrupt_source_blob_fails_the_copy_sqlite() {
    let a = TestApp::new(DbChoice::Sqlite).await;
    let b = peer(&a).await;
    let layer: &[u8] = b"this layer is corrupted in storage";
    push_image(&a, "library/app", "v1", &[layer]).await;
    // Same length, other bytes.
    let key = sha256(layer).parse::<Digest>().unwrap().blob_key();
    a.state.storage.put(&key, Bytes::from(vec![b'x'; layer.len()])).await.unwrap();
    let obs = Observer::default();
    let err = copy(&local(&a), ("library/app", "v1"), &local(&b), ("library/app", "v1"), &opts(), &obs)
        .await
        .unwrap_err();
    assert!(matches!(err, ContentError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains(&sha256(layer)), "{err}");
    assert!(local(&b).head_manifest("library/app", "v1").await.unwrap().is_none());
    let (status, body) = get_blob(&b, "library/app", &sha256(layer)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", String::from_utf8_lossy(&body));
    // The failed upload was discarded.
    assert_eq!(count(&b, "SELECT COUNT(*) FROM uploads").await, 0);
}

#[tokio::test]
async fn the_speed_limit_slows_a_copy_sqlite() {
    let a = TestApp::new(DbChoice::Sqlite).await;
    let b = peer(&a).await;
    let big: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    push_image(&a, "library/big", "v1", &[&big]).await;
    let o = CopyOptions { speed_kib: 512, ..opts() };
    let obs = Observer::default();
    let started = Instant::now();
    let report =
        copy(&local(&a), ("library/big", "v1"), &local(&b), ("library/big", "v1"), &o, &obs).await.unwrap();
    let took = started.elapsed();
    assert!(report.bytes > 1024 * 1024);
    assert!(took >= Duration::from_millis(1500), "1 MiB at 512 KiB/s took {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(get_blob(&b, "library/big", &sha256(&big)).await.1, big);
}

#[tokio::test]
async fn a_stopped_copy_pushes_no_manifest_sqlite() {
    let a = TestApp::new(DbChoice::Sqlite).await;
    let b = peer(&a).await;
    push_image(&a, "library/app", "v1", &[b"layer one", b"layer two", b"layer three"]).await;
    let (from, to) = (local(&a), local(&b));
    // Asked to stop before it starts.
    let obs = Observer::default();
    obs.stop.store(true, Ordering::Relaxed);
    let err =
        copy(&from, ("library/app", "v1"), &to, ("library/app", "v1"), &opts(), &obs).await.unwrap_err();
    assert_eq!(err.to_string(), "stopped");
    // Asked to stop after the first blob, one blob at a time.
    let obs = Observer { stop_after: Some(" copied in "), ..Observer::default() };
    let o = CopyOptions { parallel_blobs: 1, ..opts() };
    let err = copy(&from, ("library/app", "v1"), &to, ("library/app", "v1"), &o, &obs).await.unwrap_err();
    assert_eq!(err.to_string(), "stopped");
    assert_eq!(obs.lines().iter().filter(|l| l.contains(" copied in ")).count(), 1, "{:?}", obs.lines());
    assert!(to.head_manifest("library/app", "v1").await.unwrap().is_none());
}

#[tokio::test]
async fn the_local_registry_checks_what_it_stores_sqlite() {
    let a = TestApp::new(DbChoice::Sqlite).await;
    let reg = local(&a);
    let body = Bytes::from(image_manifest(b"{}", &[b"never uploaded"]));
    let m = Manifest { media_type: OCI_MANIFEST.into(), digest: Digest::sha256(&body), bytes: body.clone() };
    // Its blobs are missing: refused, nothing stored.
    let err = reg.put_manifest("library/app", "v1", &m).await.unwrap_err();
    assert!(matches!(&err, ContentError::Invalid(msg) if msg.contains("unknown")), "{err:?}");
    assert!(reg.head_manifest("library/app", "v1").await.unwrap().is_none());
    // Bytes that do not match the digest named.
    let wrong = Manifest { digest: Digest::sha256(b"other"), ..m.clone() };
    assert!(matches!(reg.put_manifest("library/app", "v1", &wrong).await, Err(ContentError::Invalid(_))));
    // Names and tags are validated as /v2 validates them; a project must exist.
    assert!(matches!(reg.put_manifest("Library/App", "v1", &m).await, Err(ContentError::Invalid(_))));
    assert!(matches!(reg.put_manifest("app", "v1", &m).await, Err(ContentError::NotFound(_))));
    assert!(matches!(reg.put_manifest("nosuch/app", "v1", &m).await, Err(ContentError::NotFound(_))));
    assert!(matches!(reg.put_manifest("library/app", "-bad", &m).await, Err(ContentError::Invalid(_))));
    assert!(matches!(reg.head_manifest("library/app", "bad:ref").await, Err(ContentError::Invalid(_))));

    // A blob must match its digest and size.
    let data = Bytes::from_static(b"never uploaded");
    let stream = |b: Bytes| -> server::storage::ByteStream { Box::pin(futures::stream::iter(vec![Ok(b)])) };
    let d = Digest::sha256(&data);
    let e = reg.put_blob("library/app", &Digest::sha256(b"x"), data.len() as u64, stream(data.clone())).await;
    assert!(matches!(e, Err(ContentError::Invalid(_))), "{e:?}");
    let e = reg.put_blob("library/app", &d, data.len() as u64 - 1, stream(data.clone())).await;
    assert!(matches!(e, Err(ContentError::Invalid(_))), "{e:?}");
    let e = reg.put_blob("library/app", &d, data.len() as u64 + 1, stream(data.clone())).await;
    assert!(matches!(e, Err(ContentError::Invalid(_))), "{e:?}");
    assert_eq!(reg.blob_exists("library/app", &d).await.unwrap(), None);
    assert_eq!(count(&a, "SELECT COUNT(*) FROM uploads").await, 0);
    reg.put_blob("library/app", &d, data.len() as u64, stream(data.clone())).await.unwrap();
    reg.put_blob("library/app", &Digest::sha256(b"{}"), 2, stream(Bytes::from_static(b"{}"))).await.unwrap();
    assert_eq!(reg.blob_exists("library/app", &d).await.unwrap(), Some(data.len() as u64));
    let (size, s) = reg.get_blob("library/app", &d).await.unwrap();
    assert_eq!(size, data.len() as u64);
    let got: Vec<Bytes> =
        futures::StreamExt::collect::<Vec<_>>(s).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(got.concat(), data.to_vec());

    // Now the manifest goes in, with the audit row a push leaves.
    reg.put_manifest("library/app", "v1", &m).await.unwrap();
    let head = reg.head_manifest("library/app", "v1").await.unwrap().unwrap();
    assert_eq!((head.digest.clone(), head.size), (m.digest.clone(), body.len() as u64));
    let rows = audit(&a, "operation=create,resource_type=artifact,username=replication").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["resource"], "library/app:v1");
    assert_eq!(reg.tags("library/app").await.unwrap(), ["v1"]);
    assert_eq!(reg.get_manifest("library/app", "v1").await.unwrap().unwrap().bytes, body);

    // Delete by digest: gone with its tag, and audited.
    assert!(reg.delete_manifest("library/app", &m.digest).await.unwrap());
    assert!(!reg.delete_manifest("library/app", &m.digest).await.unwrap());
    assert!(reg.tags("library/app").await.unwrap().is_empty());
    assert_eq!(audit(&a, "operation=delete,username=replication").await.len(), 1);
    let r = a.call(Method::GET, "/v2/library/app/manifests/v1", &[("authorization", &admin())], vec![]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// A destination that keeps everything in memory, refuses the first `fail_puts` blob uploads
/// as `Transient`, and records how many uploads ran at once.
#[derive(Default)]
struct Fake {
    manifests: Mutex<std::collections::HashMap<(String, String), Manifest>>,
    blobs: Mutex<std::collections::HashMap<Digest, Bytes>>,
    fail_puts: std::sync::atomic::AtomicU32,
    in_flight: std::sync::atomic::AtomicU32,
    max_in_flight: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl Content for Fake {
    fn registry_key(&self) -> String {
        "fake".into()
    }
    async fn head_manifest(&self, repo: &str, reference: &str) -> Result<Option<Descriptor>, ContentError> {
        let m = self.manifests.lock().unwrap().get(&(repo.into(), reference.into())).cloned();
        Ok(m.map(|m| Descriptor {
            media_type: m.media_type,
            digest: m.digest,
            size: m.bytes.len() as u64,
            artifact_type: None,
        }))
    }
    async fn get_manifest(&self, repo: &str, reference: &str) -> Result<Option<Manifest>, ContentError> {
        Ok(self.manifests.lock().unwrap().get(&(repo.into(), reference.into())).cloned())
    }
    async fn put_manifest(&self, repo: &str, reference: &str, m: &Manifest) -> Result<(), ContentError> {
        let mut all = self.manifests.lock().unwrap();
        all.insert((repo.into(), reference.into()), m.clone());
        all.insert((repo.into(), m.digest.to_string()), m.clone());
        Ok(())
    }
    async fn delete_manifest(&self, _: &str, _: &Digest) -> Result<bool, ContentError> {
        Ok(false)
    }
    async fn blob_exists(&self, _: &str, digest: &Digest) -> Result<Option<u64>, ContentError> {
        Ok(self.blobs.lock().unwrap().get(digest).map(|b| b.len() as u64))
    }
    async fn get_blob(
        &self,
        _: &str,
        digest: &Digest,
    ) -> Result<(u64, server::storage::ByteStream), ContentError> {
        let b = self
            .blobs
            .lock()
            .unwrap()
            .get(digest)
            .cloned()
            .ok_or(ContentError::NotFound(digest.to_string()))?;
        Ok((b.len() as u64, Box::pin(futures::stream::iter(vec![Ok(b)]))))
    }
    async fn put_blob(
        &self,
        _: &str,
        digest: &Digest,
        size: u64,
        data: server::storage::ByteStream,
    ) -> Result<(), ContentError> {
        if self.fail_puts.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(ContentError::Transient("503 from the fake".into()));
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(30)).await;
        let chunks: Vec<_> = futures::StreamExt::collect::<Vec<_>>(data).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let bytes: Vec<u8> = chunks.into_iter().map(|c| c.unwrap()).collect::<Vec<_>>().concat();
        if Digest::sha256(&bytes) != *digest || bytes.len() as u64 != size {
            return Err(ContentError::Invalid(format!("{digest}: wrong bytes")));
        }
        self.blobs.lock().unwrap().insert(digest.clone(), Bytes::from(bytes));
        Ok(())
    }
    async fn mount_blob(&self, _: &str, _: &str, _: &Digest) -> Result<bool, ContentError> {
        Ok(false)
    }
    async fn tags(&self, _: &str) -> Result<Vec<String>, ContentError> {
        Ok(vec![])
    }
    async fn referrers(&self, _: &str, _: &Digest) -> Result<Vec<Descriptor>, ContentError> {
        Ok(vec![])
    }
}

#[tokio::test]
async fn blobs_go_in_parallel_and_transient_failures_are_retried_sqlite() {
    let a = TestApp::new(DbChoice::Sqlite).await;
    let layers: Vec<Vec<u8>> = (0..6).map(|i| format!("parallel layer {i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
    let (digest, _) = push_image(&a, "library/wide", "v1", &refs).await;
    let fake = Fake::default();
    let obs = Observer::default();
    let report =
        copy(&local(&a), ("library/wide", "v1"), &fake, ("wide", "v1"), &opts(), &obs).await.unwrap();
    // Config + 6 layers, each copied once, 3 at a time at most (and more than one at once).
    assert_eq!(report.blobs_copied, 7);
    assert_eq!(fake.max_in_flight.load(Ordering::SeqCst), 3);
    assert_eq!(fake.head_manifest("wide", "v1").await.unwrap().unwrap().digest.to_string(), digest);

    // Two uploads refused once: each is tried again, and the copy succeeds.
    let fake = Fake { fail_puts: 2.into(), ..Fake::default() };
    let obs = Observer::default();
    let report =
        copy(&local(&a), ("library/wide", "v1"), &fake, ("wide", "v1"), &opts(), &obs).await.unwrap();
    assert_eq!(report.blobs_copied, 7);
    assert_eq!(obs.lines().iter().filter(|l| l.contains("retrying in")).count(), 2, "{:?}", obs.lines());
    assert_eq!(fake.head_manifest("wide", "v1").await.unwrap().unwrap().digest.to_string(), digest);

    // A destination that keeps failing: the copy gives up with the transient error, naming the blob.
    let (_, body) = push_image(&a, "library/narrow", "v1", &[]).await;
    let config =
        serde_json::from_slice::<Value>(&body).unwrap()["config"]["digest"].as_str().unwrap().to_string();
    let fake = Fake { fail_puts: 100.into(), ..Fake::default() };
    let err =
        copy(&local(&a), ("library/narrow", "v1"), &fake, ("narrow", "v1"), &opts(), &obs).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains(&config), "{err}");
    assert_eq!(fake.fail_puts.load(Ordering::SeqCst), 96);
    assert!(fake.head_manifest("narrow", "v1").await.unwrap().is_none());
}

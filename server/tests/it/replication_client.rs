//! The registry client (`replication::client::RemoteRegistry`) and the `harbor` and
//! `docker-registry` adapters against real registries on 127.0.0.1: this product served on a
//! real port (token auth), and CNCF distribution 2.8 with htpasswd Basic auth and with token
//! auth, started by `scripts/services.sh start distribution|distribution-token DIR` (which
//! print the `TEST_DISTRIBUTION_*` variables; `scripts/test` starts both). Tests needing
//! distribution carry `distribution` in their names (the fast loop skips them) and fail, not
//! skip, when their variables are missing.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use server::registry::digest::Digest;
use server::replication::adapter::Endpoint;
use server::replication::client::{content_error, RemoteRegistry, Retry};
use server::replication::content::{Content, ContentError, Manifest};
use server::storage::ByteStream;

use crate::common::oci::{OCI_INDEX, OCI_MANIFEST};
use crate::common::{DbChoice, TestApp, ADMIN_PASSWORD};

fn env(var: &str, service: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: start it with scripts/services.sh start {service} DIR and source what it \
             prints (scripts/test does)"
        )
    })
}

fn endpoint(kind: &str, url: &str, user: &str, password: &str) -> Endpoint {
    Endpoint {
        id: 1,
        name: "peer".into(),
        kind: kind.into(),
        url: url.into(),
        credential_type: if user.is_empty() { String::new() } else { "basic".into() },
        access_key: user.into(),
        access_secret: password.into(),
        insecure: false,
        ca_certificate: String::new(),
    }
}

/// distribution with htpasswd Basic auth: (url, user, password).
fn distribution_basic() -> (String, String, String) {
    let s = "distribution";
    (env("TEST_DISTRIBUTION_URL", s), env("TEST_DISTRIBUTION_USER", s), env("TEST_DISTRIBUTION_PASSWORD", s))
}

/// distribution with token auth: (url, user, password).
fn distribution_token() -> (String, String, String) {
    let s = "distribution-token";
    (
        env("TEST_DISTRIBUTION_TOKEN_URL", s),
        env("TEST_DISTRIBUTION_TOKEN_USER", s),
        env("TEST_DISTRIBUTION_TOKEN_PASSWORD", s),
    )
}

/// This product on a real 127.0.0.1 port (its token realm is that address).
pub struct Served {
    pub app: TestApp,
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve_berth() -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = TestApp::builder(DbChoice::Sqlite).toml(&format!("external_url = \"{url}\"")).build().await;
    let svc = app.router.clone().into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        axum::serve(listener, svc).await.unwrap();
    });
    Served { app, url, task }
}

fn berth_client(s: &Served) -> RemoteRegistry {
    RemoteRegistry::new(&endpoint("harbor", &s.url, "admin", ADMIN_PASSWORD)).unwrap()
}

fn random_bytes(n: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut v = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut v);
    v
}

/// `data` as a stream of `piece`-byte chunks.
fn stream_of(data: &[u8], piece: usize) -> ByteStream {
    let parts: Vec<std::io::Result<Bytes>> =
        data.chunks(piece.max(1)).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    Box::pin(futures::stream::iter(parts))
}

async fn read_all(mut s: ByteStream) -> std::io::Result<Vec<u8>> {
    let mut out = vec![];
    while let Some(b) = s.next().await {
        out.extend_from_slice(&b?);
    }
    Ok(out)
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

struct Pushed {
    manifest: Manifest,
    config: Vec<u8>,
    layers: Vec<Vec<u8>>,
}

/// Pushes a small image (config + two random layers, then the manifest under `tag`) with
/// the client.
async fn push_image(c: &RemoteRegistry, repo: &str, tag: &str, layer_size: usize) -> Pushed {
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
        "created": unique("x"),
    }))
    .unwrap();
    let layers = vec![random_bytes(layer_size), random_bytes(layer_size / 3 + 1)];
    for blob in std::iter::once(&config).chain(&layers) {
        let d = Digest::sha256(blob);
        c.put_blob(repo, &d, blob.len() as u64, stream_of(blob, 777)).await.unwrap();
    }
    let body = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": Digest::sha256(&config).to_string(), "size": config.len()},
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": Digest::sha256(l).to_string(), "size": l.len()})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let manifest =
        Manifest { media_type: OCI_MANIFEST.into(), digest: Digest::sha256(&body), bytes: body.into() };
    c.put_manifest(repo, tag, &manifest).await.unwrap();
    Pushed { manifest, config, layers }
}

/// Pushes a signature-like artifact whose subject is `subject` (by digest, untagged).
async fn push_referrer(c: &RemoteRegistry, repo: &str, subject: &Manifest) -> Manifest {
    let empty = b"{}".to_vec();
    let sig = random_bytes(64);
    for blob in [&empty, &sig] {
        c.put_blob(repo, &Digest::sha256(blob), blob.len() as u64, stream_of(blob, 10)).await.unwrap();
    }
    let body = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                   "digest": Digest::sha256(&empty).to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.example.signature",
                    "digest": Digest::sha256(&sig).to_string(), "size": sig.len()}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest.to_string(),
                    "size": subject.bytes.len()},
    }))
    .unwrap();
    let m = Manifest { media_type: OCI_MANIFEST.into(), digest: Digest::sha256(&body), bytes: body.into() };
    c.put_manifest(repo, &m.digest.to_string(), &m).await.unwrap();
    m
}

/// What every registry must do: push, read back (by tag and digest, HEAD, blobs), tags with
/// paging, catalog, a mount within the registry, a chunked upload, deletion.
async fn roundtrip(c: &RemoteRegistry, prefix: &str) {
    let repo = unique(&format!("{prefix}img-"));
    let p = push_image(c, &repo, "v1", 5000).await;

    for blob in std::iter::once(&p.config).chain(&p.layers) {
        let d = Digest::sha256(blob);
        assert_eq!(c.blob_exists(&repo, &d).await.unwrap(), Some(blob.len() as u64));
        let (size, stream) = c.get_blob(&repo, &d).await.unwrap();
        assert_eq!(size, blob.len() as u64);
        assert_eq!(&read_all(stream).await.unwrap(), blob);
    }
    let absent = Digest::sha256(b"never pushed");
    assert_eq!(c.blob_exists(&repo, &absent).await.unwrap(), None);
    assert!(matches!(c.get_blob(&repo, &absent).await, Err(ContentError::NotFound(_))));

    for reference in ["v1".to_string(), p.manifest.digest.to_string()] {
        let m = c.get_manifest(&repo, &reference).await.unwrap().expect("manifest");
        assert_eq!(m.digest, p.manifest.digest);
        assert_eq!(m.bytes, p.manifest.bytes);
        assert_eq!(m.media_type, OCI_MANIFEST);
        let d = c.head_manifest(&repo, &reference).await.unwrap().expect("HEAD");
        assert_eq!(
            (d.digest, d.size, d.media_type.as_str()),
            (p.manifest.digest.clone(), p.manifest.bytes.len() as u64, OCI_MANIFEST)
        );
    }
    assert!(c.get_manifest(&repo, "nope").await.unwrap().is_none());
    assert!(c.head_manifest(&repo, "nope").await.unwrap().is_none());

    // Tags, also in pages of 2.
    for t in ["v2", "v3", "v4", "v5"] {
        c.put_manifest(&repo, t, &p.manifest).await.unwrap();
    }
    let mut tags = c.tags(&repo).await.unwrap();
    tags.sort();
    assert_eq!(tags, ["v1", "v2", "v3", "v4", "v5"]);
    let mut paged = c.clone().with_page_size(2).tags(&repo).await.unwrap();
    paged.sort();
    assert_eq!(paged, tags);
    assert_eq!(c.tags(&unique(&format!("{prefix}missing-"))).await.unwrap(), Vec::<String>::new());

    // Mount within the registry.
    let repo2 = unique(&format!("{prefix}mounted-"));
    let layer = Digest::sha256(&p.layers[0]);
    assert!(c.mount_blob(&repo, &repo2, &layer).await.unwrap(), "mount within one registry");
    assert_eq!(c.blob_exists(&repo2, &layer).await.unwrap(), Some(p.layers[0].len() as u64));
    assert!(!c.mount_blob(&repo, &repo2, &absent).await.unwrap(), "a missing blob is not mounted");

    // Chunked upload: 10 000 bytes in chunks of 3 000 (the last one short).
    let chunked = c.clone().with_chunk_size(Some(3000));
    let big = random_bytes(10_000);
    let d = Digest::sha256(&big);
    chunked.put_blob(&repo2, &d, big.len() as u64, stream_of(&big, 1234)).await.unwrap();
    let (_, s) = c.get_blob(&repo2, &d).await.unwrap();
    assert_eq!(read_all(s).await.unwrap(), big);

    // A source that lies about its size or content is refused.
    let data = random_bytes(100);
    let e = c.put_blob(&repo2, &Digest::sha256(&data), 101, stream_of(&data, 30)).await.unwrap_err();
    assert!(matches!(e, ContentError::Invalid(ref m) if m.contains("ended after 100 of 101")), "{e}");
    let e = c.put_blob(&repo2, &Digest::sha256(b"other"), 100, stream_of(&data, 30)).await.unwrap_err();
    assert!(matches!(e, ContentError::Invalid(_)), "{e}");
    assert_eq!(c.blob_exists(&repo2, &Digest::sha256(b"other")).await.unwrap(), None);

    // Deletion.
    assert!(c.delete_manifest(&repo, &p.manifest.digest).await.unwrap());
    assert!(c.get_manifest(&repo, "v1").await.unwrap().is_none());
    assert!(!c.delete_manifest(&repo, &p.manifest.digest).await.unwrap());
}

#[tokio::test]
async fn berth_roundtrip_with_token_auth() {
    let s = serve_berth().await;
    let c = berth_client(&s);
    c.ping().await.unwrap();
    roundtrip(&c, "library/").await;
    // Repositories exist once they hold an artifact (as in Harbor); the catalog in pages of 1.
    push_image(&c, "library/cat-a", "1", 10).await;
    push_image(&c, "library/cat-b", "1", 10).await;
    let catalog = c.clone().with_page_size(1).catalog().await.unwrap();
    assert!(catalog.len() >= 2, "{catalog:?}");
    assert!(catalog.contains(&"library/cat-a".to_string()) && catalog.contains(&"library/cat-b".to_string()));
    assert_eq!(catalog, c.catalog().await.unwrap(), "pages of 1 give the whole catalog");
}

#[tokio::test]
async fn berth_referrers_api() {
    let s = serve_berth().await;
    let c = berth_client(&s);
    let repo = unique("library/signed-");
    let p = push_image(&c, &repo, "v1", 100).await;
    assert!(c.referrers(&repo, &p.manifest.digest).await.unwrap().is_empty());
    let sig = push_referrer(&c, &repo, &p.manifest).await;
    let r = c.referrers(&repo, &p.manifest.digest).await.unwrap();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].digest, sig.digest);
    assert_eq!(r[0].artifact_type.as_deref(), Some("application/vnd.example.signature"));
    // The registry has the API: no tag-schema index was written.
    assert_eq!(c.tags(&repo).await.unwrap(), ["v1"]);
}

#[tokio::test]
async fn berth_wrong_password_is_unauthorized_with_a_clear_message() {
    let s = serve_berth().await;
    let c = RemoteRegistry::new(&endpoint("harbor", &s.url, "admin", "wrong-password")).unwrap();
    let e = c.ping().await.unwrap_err();
    let ContentError::Unauthorized(m) = &e else { panic!("{e:?}") };
    assert!(m.contains("\"peer\"") && m.contains(&s.url) && m.contains("\"admin\""), "{m}");
    assert!(!m.contains("wrong-password"), "{m}");
    let e = c.tags("library/x").await.unwrap_err();
    assert!(matches!(e, ContentError::Unauthorized(_)), "{e:?}");
}

#[tokio::test]
async fn berth_refused_right_is_denied_not_unauthorized() {
    let s = serve_berth().await;
    let c = berth_client(&s);
    let p = push_image(&c, "library/public", "v1", 100).await;
    crate::common::create_user(&s.app.state.db, "bob", crate::common::PW, false).await;
    let bob = RemoteRegistry::new(&endpoint("harbor", &s.url, "bob", crate::common::PW)).unwrap();
    // library is public: bob may pull, not push.
    assert!(bob.get_manifest("library/public", "v1").await.unwrap().is_some());
    let e = bob.put_manifest("library/public", "v2", &p.manifest).await.unwrap_err();
    let ContentError::Denied(m) = &e else { panic!("{e:?}") };
    assert!(m.contains("\"bob\"") && m.contains("insufficient scope"), "{m}");
    let data = b"blob".to_vec();
    let e = bob.put_blob("library/public", &Digest::sha256(&data), 4, stream_of(&data, 4)).await.unwrap_err();
    assert!(matches!(e, ContentError::Denied(_)), "{e:?}");
}

#[tokio::test]
async fn berth_digest_mismatch_on_download_is_detected() {
    let s = serve_berth().await;
    let c = berth_client(&s);
    let repo = unique("library/corrupt-");
    let p = push_image(&c, &repo, "v1", 4000).await;
    let d = Digest::sha256(&p.layers[0]);
    // The stored bytes rot (same length, one byte flipped).
    let mut bad = p.layers[0].clone();
    bad[1234] ^= 0xff;
    s.app.state.storage.put(&d.blob_key(), Bytes::from(bad)).await.unwrap();
    let (size, stream) = c.get_blob(&repo, &d).await.unwrap();
    assert_eq!(size, 4000);
    let e = read_all(stream).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    let ce = content_error(&e);
    assert!(matches!(ce, ContentError::Invalid(ref m) if m.contains("digest mismatch")), "{ce:?}");
    // Copying the rotten blob elsewhere fails instead of storing it.
    let (_, stream) = c.get_blob(&repo, &d).await.unwrap();
    let e = c.put_blob(&unique("library/copy-"), &d, 4000, stream).await.unwrap_err();
    assert!(matches!(e, ContentError::Invalid(ref m) if m.contains("digest mismatch")), "{e:?}");
}

#[tokio::test]
async fn connection_refused_is_transient_and_names_the_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let retry = Retry { attempts: 2, base_delay: Duration::from_millis(10), ..Retry::default() };
    let c = RemoteRegistry::new(&endpoint("docker-registry", &url, "u", "p")).unwrap().with_retry(retry);
    let e = c.ping().await.unwrap_err();
    let ContentError::Transient(m) = &e else { panic!("{e:?}") };
    assert!(m.contains(&format!("127.0.0.1:{port}")) && m.contains("connection refused"), "{m}");
}

#[tokio::test]
async fn tls_to_a_plain_http_port_is_a_tls_error() {
    let s = serve_berth().await;
    let url = s.url.replace("http://", "https://");
    let c = RemoteRegistry::new(&endpoint("harbor", &url, "admin", ADMIN_PASSWORD)).unwrap();
    let e = c.ping().await.unwrap_err();
    let ContentError::Other(m) = &e else { panic!("{e:?}") };
    assert!(m.contains("TLS"), "{m}");
}

#[tokio::test]
async fn harbor_adapter_against_this_product() {
    let s = serve_berth().await;
    let e = endpoint("harbor", &s.url, "admin", ADMIN_PASSWORD);
    let a = server::replication::adapters::build(&e).unwrap();
    a.health().await.unwrap();
    a.ensure_namespace("replicated").await.unwrap();
    a.ensure_namespace("replicated/deeper").await.unwrap();
    let content = a.content();
    let c = berth_client(&s);
    let p = push_image(&c, "replicated/app", "1.0", 100).await;
    c.put_manifest("replicated/app", "1.1", &p.manifest).await.unwrap();
    push_image(&c, "library/other", "x", 100).await;
    assert!(content.head_manifest("replicated/app", "1.0").await.unwrap().is_some());

    let repos = a.repositories(&|n: &str| n.starts_with("replicated/")).await.unwrap();
    assert_eq!(repos.len(), 1, "{repos:?}");
    assert_eq!(repos[0].name, "replicated/app");
    let mut tags = repos[0].tags.clone();
    tags.sort();
    assert_eq!(tags, ["1.0", "1.1"]);
    let all = a.repositories(&|_: &str| true).await.unwrap();
    assert!(all.iter().any(|r| r.name == "library/other" && r.tags == ["x"]), "{all:?}");

    let bad = endpoint("harbor", &s.url, "admin", "nope");
    let e = server::replication::adapters::build(&bad).unwrap().health().await.unwrap_err();
    assert!(matches!(e, ContentError::Unauthorized(_)), "{e:?}");
    assert!(matches!(a.ensure_namespace("Bad Name").await, Err(ContentError::Invalid(_))));
}

/// distribution with htpasswd: the whole round trip, referrers through the tag schema, the
/// adapter, a wrong password.
#[tokio::test]
async fn distribution_basic_auth() {
    let (url, user, password) = distribution_basic();
    let c = RemoteRegistry::new(&endpoint("docker-registry", &url, &user, &password)).unwrap();
    c.ping().await.unwrap();
    let prefix = unique("basic-");
    roundtrip(&c, &format!("{prefix}/")).await;
    let catalog = c.clone().with_page_size(2).catalog().await.unwrap();
    assert!(catalog.iter().any(|r| r.starts_with(&format!("{prefix}/img-"))), "{catalog:?}");

    let a =
        server::replication::adapters::build(&endpoint("docker-registry", &url, &user, &password)).unwrap();
    a.health().await.unwrap();
    a.ensure_namespace("anything").await.unwrap();
    let repo = format!("{prefix}/listed");
    push_image(&c, &repo, "t1", 100).await;
    let repos = a.repositories(&|n: &str| n == repo).await.unwrap();
    assert_eq!(repos.len(), 1);
    assert_eq!(repos[0].tags, ["t1"]);

    let bad = RemoteRegistry::new(&endpoint("docker-registry", &url, &user, "wrong")).unwrap();
    let e = bad.ping().await.unwrap_err();
    let ContentError::Unauthorized(m) = &e else { panic!("{e:?}") };
    assert!(m.contains(&url) && m.contains(&format!("{user:?}")), "{m}");
    let anon = RemoteRegistry::new(&endpoint("docker-registry", &url, "", "")).unwrap();
    let e = anon.tags(&repo).await.unwrap_err();
    assert!(matches!(e, ContentError::Unauthorized(ref m) if m.contains("anonymous")), "{e:?}");
}

/// distribution 2.8 has no referrers API: the client writes and reads the tag schema.
#[tokio::test]
async fn distribution_referrers_fall_back_to_the_tag_schema() {
    let (url, user, password) = distribution_basic();
    let c = RemoteRegistry::new(&endpoint("docker-registry", &url, &user, &password)).unwrap();
    let repo = unique("referrers-");
    let p = push_image(&c, &repo, "v1", 100).await;
    assert!(c.referrers(&repo, &p.manifest.digest).await.unwrap().is_empty());
    let sig = push_referrer(&c, &repo, &p.manifest).await;
    let sig2 = push_referrer(&c, &repo, &p.manifest).await;
    let fallback = format!("sha256-{}", p.manifest.digest.hex);
    let mut tags = c.tags(&repo).await.unwrap();
    tags.sort();
    assert_eq!(tags, [fallback.clone(), "v1".to_string()]);
    let index = c.get_manifest(&repo, &fallback).await.unwrap().unwrap();
    assert_eq!(index.media_type, OCI_INDEX);
    let r = c.referrers(&repo, &p.manifest.digest).await.unwrap();
    assert_eq!(r.iter().map(|d| d.digest.clone()).collect::<Vec<_>>(), [sig.digest.clone(), sig2.digest]);
    assert!(r.iter().all(|d| d.artifact_type.as_deref() == Some("application/vnd.example.signature")));
    // Pushing the same referrer again does not duplicate its entry.
    c.put_manifest(&repo, &r[0].digest.to_string(), &sig).await.unwrap();
    assert_eq!(c.referrers(&repo, &p.manifest.digest).await.unwrap().len(), 2);
}

/// The realm's `/stats` (scripts/token-server.py): tokens issued so far.
async fn tokens_issued(url: &str) -> u64 {
    let resp = reqwest::get(format!("{url}/v2/")).await.unwrap();
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap().to_string();
    let realm = challenge.split("realm=\"").nth(1).unwrap().split('"').next().unwrap();
    let stats = realm.replace("/token", "/stats");
    let v: serde_json::Value = reqwest::get(stats).await.unwrap().json().await.unwrap();
    v["issued"].as_u64().unwrap()
}

/// distribution with token auth: the round trip (mount needs a token for two scopes), tokens
/// cached per scope, a wrong password refused by the token service.
#[tokio::test]
async fn distribution_token_auth() {
    let (url, user, password) = distribution_token();
    let c = RemoteRegistry::new(&endpoint("docker-registry", &url, &user, &password)).unwrap();
    c.ping().await.unwrap();
    let prefix = unique("token-");
    roundtrip(&c, &format!("{prefix}/")).await;
    assert!(c.catalog().await.unwrap().iter().any(|r| r.starts_with(&format!("{prefix}/img-"))));

    // Cached per scope: many reads of one repository cost one token.
    let repo = format!("{prefix}/cached");
    let p = push_image(&c, &repo, "v1", 100).await;
    let fresh = RemoteRegistry::new(&endpoint("docker-registry", &url, &user, &password)).unwrap();
    fresh.ping().await.unwrap();
    let before = tokens_issued(&url).await;
    for _ in 0..10 {
        assert!(fresh.head_manifest(&repo, "v1").await.unwrap().is_some());
        assert!(fresh.get_manifest(&repo, &p.manifest.digest.to_string()).await.unwrap().is_some());
    }
    assert_eq!(tokens_issued(&url).await - before, 1, "one token for repository:{repo}:pull");
    fresh.tags(&repo).await.unwrap();
    assert_eq!(tokens_issued(&url).await - before, 1, "the same scope again");
    fresh.put_manifest(&repo, "v2", &p.manifest).await.unwrap();
    assert_eq!(tokens_issued(&url).await - before, 2, "pull,push is another scope");

    let bad = RemoteRegistry::new(&endpoint("docker-registry", &url, &user, "wrong")).unwrap();
    let e = bad.head_manifest(&repo, "v1").await.unwrap_err();
    let ContentError::Unauthorized(m) = &e else { panic!("{e:?}") };
    assert!(m.contains(&url) && m.contains(&format!("{user:?}")) && m.contains("token service"), "{m}");
    assert!(!m.contains("wrong"), "{m}");
}

/// This product over HTTPS with a fresh self-signed certificate for 127.0.0.1: (served, PEM).
async fn serve_berth_tls() -> (Served, String) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let ok = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        // A server certificate, not a CA (webpki refuses a CA certificate as the server's).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(ok.success());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key).await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let app = TestApp::builder(DbChoice::Sqlite).toml(&format!("external_url = \"{url}\"")).build().await;
    let svc = app.router.clone().into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        axum_server::from_tcp_rustls(listener, tls).serve(svc).await.unwrap();
    });
    let pem = std::fs::read_to_string(&cert).unwrap();
    (Served { app, url, task }, pem)
}

#[tokio::test]
async fn tls_verification_ca_certificate_and_insecure() {
    let (s, pem) = serve_berth_tls().await;
    let mut e = endpoint("harbor", &s.url, "admin", ADMIN_PASSWORD);
    let err = RemoteRegistry::new(&e).unwrap().ping().await.unwrap_err();
    let ContentError::Other(m) = &err else { panic!("{err:?}") };
    assert!(m.contains("TLS") && m.contains("certificate"), "{m}");

    e.ca_certificate = pem;
    let c = RemoteRegistry::new(&e).unwrap();
    c.ping().await.unwrap();
    let p = push_image(&c, "library/over-tls", "v1", 3000).await;
    let (_, stream) = c.get_blob("library/over-tls", &Digest::sha256(&p.layers[0])).await.unwrap();
    assert_eq!(read_all(stream).await.unwrap(), p.layers[0]);

    e.ca_certificate = String::new();
    e.insecure = true;
    let c = RemoteRegistry::new(&e).unwrap();
    c.ping().await.unwrap();
    assert!(c.head_manifest("library/over-tls", "v1").await.unwrap().is_some());

    e.ca_certificate = "not a certificate".into();
    assert!(matches!(RemoteRegistry::new(&e), Err(ContentError::Other(_))));
}

/// A registry that answers `/v2/` with the given statuses in turn (then 200), counting calls.
async fn flaky(statuses: Vec<u16>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let router = axum::Router::new().route(
        "/v2/",
        axum::routing::get(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let status = statuses.get(n).copied().unwrap_or(200);
            async move {
                let mut resp = axum::response::Response::new(axum::body::Body::from("{}"));
                *resp.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
                resp.headers_mut().insert("retry-after", "0".parse().unwrap());
                resp
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, calls)
}

#[tokio::test]
async fn retries_5xx_and_429_with_backoff_then_gives_up() {
    use std::sync::atomic::Ordering;
    let (url, calls) = flaky(vec![503, 429]).await;
    let c = RemoteRegistry::new(&endpoint("docker-registry", &url, "", "")).unwrap();
    c.ping().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3, "two retries, then 200");

    let (url, calls) = flaky(vec![502, 502, 502, 502]).await;
    let retry = Retry { attempts: 2, base_delay: Duration::from_millis(10), ..Retry::default() };
    let c = RemoteRegistry::new(&endpoint("docker-registry", &url, "", "")).unwrap().with_retry(retry);
    let e = c.ping().await.unwrap_err();
    assert!(matches!(e, ContentError::Transient(ref m) if m.contains("502")), "{e:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // Not retried: a client error.
    let (url, calls) = flaky(vec![403]).await;
    let c = RemoteRegistry::new(&endpoint("docker-registry", &url, "", "")).unwrap();
    assert!(matches!(c.ping().await, Err(ContentError::Denied(_))));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Not a registry at all.
    let (url, _) = flaky(vec![404]).await;
    let c = RemoteRegistry::new(&endpoint("docker-registry", &url, "", "")).unwrap();
    let e = c.ping().await.unwrap_err();
    assert!(
        matches!(e, ContentError::Other(ref m) if m.contains("does not answer the registry API")),
        "{e:?}"
    );
}

/// `credential_type = oauth`: the secret is a bearer token, sent as is.
#[tokio::test]
async fn berth_oauth_bearer_token_credential() {
    let s = serve_berth().await;
    let p = push_image(&berth_client(&s), "library/oauth", "v1", 100).await;
    let resp = reqwest::get(format!("{}/v2/", s.url)).await.unwrap();
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap().to_string();
    let param = |name: &str| {
        challenge.split(&format!("{name}=\"")).nth(1).unwrap().split('"').next().unwrap().to_string()
    };
    let (realm, service) = (param("realm"), param("service"));
    let token: serde_json::Value = reqwest::Client::new()
        .get(realm)
        .query(&[("service", service.as_str()), ("scope", "repository:library/oauth:pull")])
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut e = endpoint("docker-registry", &s.url, "", "");
    e.credential_type = "oauth".into();
    e.access_secret = token["token"].as_str().unwrap().to_string();
    let c = RemoteRegistry::new(&e).unwrap();
    let d = c.head_manifest("library/oauth", "v1").await.unwrap().unwrap();
    assert_eq!(d.digest, p.manifest.digest);
    // The token grants pull only: a push is refused, not retried with other credentials.
    let e = c.put_manifest("library/oauth", "v2", &p.manifest).await.unwrap_err();
    assert!(matches!(e, ContentError::Denied(_) | ContentError::Unauthorized(_)), "{e:?}");
}

//! `proxy`'s logic against two in-memory registries (`MemoryContent`): the upstream and the
//! local side.

use std::sync::atomic::Ordering;

use serde_json::json;

use super::*;
use crate::replication::memory::MemoryContent;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const UP: &str = "library/alpine";
const LOCAL: &str = "proxy/library/alpine";

fn desc(media_type: &str, data: &[u8]) -> serde_json::Value {
    json!({"mediaType": media_type, "digest": Digest::sha256(data).to_string(), "size": data.len()})
}

/// Adds config + layers and an image manifest to `up` under `tag`; returns (digest, layers).
fn image(up: &MemoryContent, tag: Option<&str>, seed: &str) -> (Digest, Vec<Vec<u8>>) {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#).into_bytes();
    let layers: Vec<Vec<u8>> =
        (0..2).map(|i| format!("layer {i} of {seed} ").repeat(3000).into_bytes()).collect();
    up.add_blob(UP, &config);
    for l in &layers {
        up.add_blob(UP, l);
    }
    let body = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": desc("application/vnd.oci.image.config.v1+json", &config),
        "layers": layers.iter().map(|l| desc("application/vnd.oci.image.layer.v1.tar+gzip", l)).collect::<Vec<_>>()});
    let body = serde_json::to_vec(&body).unwrap();
    (up.add_manifest(UP, tag, OCI_MANIFEST, &body), layers)
}

fn cache() -> Arc<ProxyCache> {
    Arc::new(ProxyCache::new(4))
}

fn tag(t: &str) -> Reference {
    Reference::Tag(t.into())
}

async fn drain(mut s: ByteStream) -> Vec<u8> {
    let mut out = vec![];
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

/// Waits until no blob fetch is in progress (the tee's store task has ended).
async fn settled(c: &ProxyCache) {
    for _ in 0..500 {
        if lock(&c.inflight).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("a blob fetch never ended");
}

/// What a client does: the manifest by tag, then each blob through the tee.
async fn pull(
    c: &Arc<ProxyCache>,
    up: &Arc<MemoryContent>,
    local: &Arc<MemoryContent>,
    t: &str,
) -> ManifestSource {
    let src = c.manifest(up.as_ref(), local.as_ref(), UP, LOCAL, &tag(t)).await.unwrap();
    if let ManifestSource::Upstream { manifest: m, .. } = &src {
        let parsed = manifest::parse(Some(&m.media_type), &m.bytes).unwrap();
        for b in parsed.blobs {
            match c.blob(up.clone(), local.clone(), UP, LOCAL, &b.digest).await.unwrap() {
                BlobSource::Local => {}
                BlobSource::Upstream { size, stream } => {
                    let got = drain(stream).await;
                    assert_eq!(got.len() as u64, size);
                    assert_eq!(Digest::sha256(&got), b.digest);
                }
            }
        }
        settled(c).await;
    }
    src
}

#[test]
fn upstream_names() {
    for (local, hub, want) in [
        ("proxy/library/alpine", false, Some("library/alpine")),
        ("proxy/library/alpine", true, Some("library/alpine")),
        ("proxy/alpine", true, Some("library/alpine")),
        ("proxy/alpine", false, Some("alpine")),
        ("proxy/bitnami/redis", true, Some("bitnami/redis")),
        ("proxy/a/b/c", true, Some("a/b/c")),
        ("proxy", true, None),
        ("proxy/", false, None),
    ] {
        assert_eq!(upstream_repo(local, hub).as_deref(), want, "{local} hub={hub}");
    }
    for (kind, url, want) in [
        ("docker-registry", "https://registry-1.docker.io", true),
        ("docker-registry", "https://hub.docker.com/", true),
        ("docker-registry", "https://INDEX.docker.io:443", true),
        ("docker-hub", "https://mirror.example", true),
        ("harbor", "https://harbor.example/registry-1.docker.io", false),
        ("docker-registry", "http://127.0.0.1:5000", false),
        ("docker-registry", "not a url", false),
    ] {
        assert_eq!(is_docker_hub(kind, url), want, "{kind} {url}");
    }
}

#[tokio::test]
async fn first_pull_fetches_then_the_cache_serves_and_a_moved_tag_is_fetched_again() {
    let (up, local, c) = (Arc::new(MemoryContent::new("up")), Arc::new(MemoryContent::new("local")), cache());
    let (d1, layers) = image(&up, Some("3"), "one");
    let src = pull(&c, &up, &local, "3").await;
    let ManifestSource::Upstream { manifest: m, cache: Some(cache_ref) } = src else { panic!("{src:?}") };
    assert_eq!((m.digest.clone(), cache_ref.as_str()), (d1.clone(), "3"));
    // The tee stored each layer while the client read it.
    for l in &layers {
        assert!(local.has_blob(LOCAL, &Digest::sha256(l)));
    }
    let upd: Arc<dyn Content> = up.clone();
    let lod: Arc<dyn Content> = local.clone();
    assert!(c.cache_manifest(upd.clone(), lod.clone(), UP, LOCAL, "3", m).await);
    assert_eq!(local.tag_digest(LOCAL, "3"), Some(d1.to_string()));
    let gets = up.calls.get_manifest.load(Ordering::SeqCst);
    let blob_gets = up.calls.get_blob.load(Ordering::SeqCst);
    assert_eq!((gets, blob_gets), (1, 3));

    // Second pull: one HEAD upstream, everything local.
    let src = pull(&c, &up, &local, "3").await;
    assert!(matches!(src, ManifestSource::Local), "{src:?}");
    assert_eq!(up.calls.head_manifest.load(Ordering::SeqCst), 2);
    assert_eq!(up.calls.get_manifest.load(Ordering::SeqCst), gets);
    assert_eq!(up.calls.get_blob.load(Ordering::SeqCst), blob_gets);
    // By digest: local, not even a HEAD upstream.
    let src =
        c.manifest(up.as_ref(), local.as_ref(), UP, LOCAL, &Reference::Digest(d1.clone())).await.unwrap();
    assert!(matches!(src, ManifestSource::Local));
    assert_eq!(up.calls.head_manifest.load(Ordering::SeqCst), 2);

    // The tag moves upstream: the new digest is served and cached.
    let (d2, _) = image(&up, Some("3"), "two");
    let src = pull(&c, &up, &local, "3").await;
    let ManifestSource::Upstream { manifest: m2, cache: Some(_) } = src else { panic!("{src:?}") };
    assert_eq!(m2.digest, d2);
    assert!(c.cache_manifest(upd, lod, UP, LOCAL, "3", m2).await);
    assert_eq!(local.tag_digest(LOCAL, "3"), Some(d2.to_string()));
}

#[tokio::test]
async fn a_down_upstream_leaves_the_cache_served_and_a_miss_is_its_error() {
    let (up, local, c) = (Arc::new(MemoryContent::new("up")), Arc::new(MemoryContent::new("local")), cache());
    image(&up, Some("3"), "one");
    image(&up, Some("4"), "four");
    let ManifestSource::Upstream { manifest: m, .. } = pull(&c, &up, &local, "3").await else { panic!() };
    assert!(c.cache_manifest(up.clone(), local.clone(), UP, LOCAL, "3", m).await);

    up.set_offline(true);
    let src = c.manifest(up.as_ref(), local.as_ref(), UP, LOCAL, &tag("3")).await.unwrap();
    assert!(matches!(src, ManifestSource::Local), "{src:?}");
    let err = c.manifest(up.as_ref(), local.as_ref(), UP, LOCAL, &tag("4")).await.unwrap_err();
    assert!(matches!(err, ProxyError::Upstream(ContentError::Transient(_))), "{err:?}");
    let missing = Digest::sha256(b"never pushed");
    let err = c.blob(up.clone(), local.clone(), UP, LOCAL, &missing).await.err().unwrap();
    assert!(matches!(err, ProxyError::Upstream(ContentError::Transient(_))), "{err:?}");

    // Back up: a tag the upstream does not have is not found, even with nothing cached.
    up.set_offline(false);
    let err = c.manifest(up.as_ref(), local.as_ref(), UP, LOCAL, &tag("nope")).await.unwrap_err();
    assert!(matches!(err, ProxyError::NotFound(_)), "{err:?}");
    let err = c.blob(up.clone(), local.clone(), UP, LOCAL, &missing).await.err().unwrap();
    assert!(matches!(err, ProxyError::NotFound(_)), "{err:?}");
    assert!(lock(&c.inflight).is_empty(), "a failed fetch leaves no leader behind");
}

#[tokio::test]
async fn a_client_that_stops_half_way_leaves_no_blob() {
    let up = Arc::new(MemoryContent::new("up").with_chunk(1024));
    let (local, c) = (Arc::new(MemoryContent::new("local")), cache());
    let data = vec![7u8; 64 * 1024];
    let d = up.add_blob(UP, &data);
    let BlobSource::Upstream { size, mut stream } =
        c.blob(up.clone(), local.clone(), UP, LOCAL, &d).await.unwrap()
    else {
        panic!("nothing is cached yet")
    };
    assert_eq!(size, data.len() as u64);
    let mut read = 0;
    while read < data.len() / 2 {
        read += stream.next().await.unwrap().unwrap().len();
    }
    drop(stream); // the client disconnects
    settled(&c).await;
    assert_eq!(local.calls.put_blob.load(Ordering::SeqCst), 1, "the store started");
    assert!(!local.has_blob(LOCAL, &d), "half a blob was committed");

    // The next pull fetches again and, read to the end, stores it.
    let BlobSource::Upstream { stream, .. } = c.blob(up.clone(), local.clone(), UP, LOCAL, &d).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(drain(stream).await, data);
    settled(&c).await;
    assert!(local.has_blob(LOCAL, &d));
    assert!(matches!(c.blob(up.clone(), local.clone(), UP, LOCAL, &d).await.unwrap(), BlobSource::Local));
    assert_eq!(up.calls.get_blob.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn concurrent_misses_of_one_blob_fetch_it_once() {
    let up = Arc::new(MemoryContent::new("up").with_chunk(512));
    let (local, c) = (Arc::new(MemoryContent::new("local")), cache());
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let d = up.add_blob(UP, &data);
    let BlobSource::Upstream { stream, .. } = c.blob(up.clone(), local.clone(), UP, LOCAL, &d).await.unwrap()
    else {
        panic!()
    };
    // Four more pulls while the first one streams: they wait for it and are served locally.
    let followers: Vec<_> = (0..4)
        .map(|_| {
            let (c, up, local, d) = (c.clone(), up.clone(), local.clone(), d.clone());
            tokio::spawn(async move { c.blob(up, local, UP, LOCAL, &d).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(drain(stream).await, data);
    for f in followers {
        assert!(matches!(f.await.unwrap().unwrap(), BlobSource::Local));
    }
    assert_eq!(up.calls.get_blob.load(Ordering::SeqCst), 1);
    assert_eq!(local.calls.put_blob.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_index_is_stored_once_its_children_are() {
    let (up, local, c) = (Arc::new(MemoryContent::new("up")), Arc::new(MemoryContent::new("local")), cache());
    let (a, _) = image(&up, None, "amd64");
    let (b, _) = image(&up, None, "arm64");
    let manifests: Vec<_> = [&a, &b]
        .iter()
        .map(|d| {
            let m = up.find(UP, &d.to_string()).unwrap();
            json!({"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": m.bytes.len()})
        })
        .collect();
    let body =
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}))
            .unwrap();
    let idx = up.add_manifest(UP, Some("multi"), OCI_INDEX, &body);

    let ManifestSource::Upstream { manifest: im, cache: Some(r) } = pull(&c, &up, &local, "multi").await
    else {
        panic!()
    };
    assert_eq!(im.digest, idx);
    let task = {
        let (c, up, local): (_, Arc<dyn Content>, Arc<dyn Content>) = (c.clone(), up.clone(), local.clone());
        tokio::spawn(async move { c.cache_manifest(up, local, UP, LOCAL, &r, im).await })
    };
    // While it waits, the index by digest is answered from memory, not upstream.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let gets = up.calls.get_manifest.load(Ordering::SeqCst);
    let src =
        c.manifest(up.as_ref(), local.as_ref(), UP, LOCAL, &Reference::Digest(idx.clone())).await.unwrap();
    assert!(matches!(src, ManifestSource::Upstream { cache: None, .. }), "{src:?}");
    assert_eq!(up.calls.get_manifest.load(Ordering::SeqCst), gets);
    assert!(!task.is_finished());

    // A client pulls each child by digest (blobs through the tee), and each is cached.
    for child in [&a, &b] {
        let src = c
            .manifest(up.as_ref(), local.as_ref(), UP, LOCAL, &Reference::Digest(child.clone()))
            .await
            .unwrap();
        let ManifestSource::Upstream { manifest: m, cache: Some(r) } = src else { panic!() };
        let parsed = manifest::parse(Some(&m.media_type), &m.bytes).unwrap();
        for bl in parsed.blobs {
            if let BlobSource::Upstream { stream, .. } =
                c.blob(up.clone(), local.clone(), UP, LOCAL, &bl.digest).await.unwrap()
            {
                drain(stream).await;
            }
        }
        settled(&c).await;
        assert!(c.cache_manifest(up.clone(), local.clone(), UP, LOCAL, &r, m).await);
    }
    assert!(tokio::time::timeout(Duration::from_secs(20), task).await.unwrap().unwrap());
    assert_eq!(local.tag_digest(LOCAL, "multi"), Some(idx.to_string()));
}

#[tokio::test]
async fn blobs_the_client_never_pulls_are_fetched_by_the_cache_task() {
    let (up, local, c) = (Arc::new(MemoryContent::new("up")), Arc::new(MemoryContent::new("local")), cache());
    let (d, layers) = image(&up, Some("3"), "one");
    // The client had every layer: it only reads the manifest.
    let ManifestSource::Upstream { manifest: m, cache: Some(r) } =
        c.manifest(up.as_ref(), local.as_ref(), UP, LOCAL, &tag("3")).await.unwrap()
    else {
        panic!()
    };
    let started = Instant::now();
    assert!(c.cache_manifest(up.clone(), local.clone(), UP, LOCAL, &r, m).await);
    assert!(started.elapsed() >= BLOB_GRACE, "clients get the grace period to fetch first");
    assert_eq!(local.tag_digest(LOCAL, "3"), Some(d.to_string()));
    assert!(layers.iter().all(|l| local.has_blob(LOCAL, &Digest::sha256(l))));
}

#[tokio::test]
async fn oversized_manifests_are_refused() {
    let (up, local, c) = (Arc::new(MemoryContent::new("up")), Arc::new(MemoryContent::new("local")), cache());
    let big = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "annotations": {"pad": "x".repeat(MAX_MANIFEST_SIZE)}});
    up.add_manifest(UP, Some("big"), OCI_MANIFEST, &serde_json::to_vec(&big).unwrap());
    let err = c.manifest(up.as_ref(), local.as_ref(), UP, LOCAL, &tag("big")).await.unwrap_err();
    assert!(matches!(err, ProxyError::TooLarge(_)), "{err:?}");
    assert_eq!(up.calls.get_manifest.load(Ordering::SeqCst), 0, "refused on the HEAD's size");
}

#[tokio::test]
async fn upstream_fetches_are_capped() {
    let up = Arc::new(MemoryContent::new("up").with_chunk(1024));
    let local = Arc::new(MemoryContent::new("local"));
    let c = Arc::new(ProxyCache::with_limits(1, Duration::from_millis(100)));
    let a = up.add_blob(UP, &[1u8; 10_000]);
    let b = up.add_blob(UP, &[2u8; 10_000]);
    let BlobSource::Upstream { stream, .. } = c.blob(up.clone(), local.clone(), UP, LOCAL, &a).await.unwrap()
    else {
        panic!()
    };
    // The one slot is taken while `a` streams: another fetch, even a manifest's, is refused.
    let err = c.blob(up.clone(), local.clone(), UP, LOCAL, &b).await.err().unwrap();
    assert!(matches!(err, ProxyError::Busy), "{err:?}");
    let err = c.manifest(up.as_ref(), local.as_ref(), UP, LOCAL, &tag("3")).await.unwrap_err();
    assert!(matches!(err, ProxyError::Busy), "{err:?}");
    assert!(lock(&c.inflight).len() == 1, "the refused fetch left no leader behind");
    drain(stream).await;
    settled(&c).await;
    assert!(matches!(
        c.blob(up.clone(), local.clone(), UP, LOCAL, &b).await.unwrap(),
        BlobSource::Upstream { .. }
    ));
}

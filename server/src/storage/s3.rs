//! S3 backend (any S3-compatible service; tested against Garage) on `object_store`.
//!
//! Whole objects map 1:1 to S3 objects under the configured prefix. Uploads cannot append to
//! an S3 object, so each request's data becomes one part object `<key>.parts/<offset>`
//! (streamed with multipart uploads in 8 MiB chunks); "truncate to the committed offset"
//! deletes parts at or after it. `commit` turns the parts into the final object: a
//! server-side copy when there is one part (docker, podman and skopeo send each blob in one
//! request), otherwise one streamed multipart upload through this process.
//! Nothing relies on conditional writes (Garage does not honour them); content-addressed
//! writes are idempotent.

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, PutPayload, WriteMultipart};

use super::{check_key, ByteStream, ObjectMeta, Result, Storage, StorageError};
use crate::config::S3Config;

const CHUNK: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct S3Storage {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

fn err(e: object_store::Error) -> StorageError {
    match e {
        object_store::Error::NotFound { .. } => StorageError::NotFound,
        other => StorageError::Io(std::io::Error::other(other)),
    }
}

impl S3Storage {
    pub fn new(cfg: &S3Config) -> anyhow::Result<Self> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_access_key_id(&cfg.access_key_id)
            .with_secret_access_key(&cfg.secret_access_key)
            .with_virtual_hosted_style_request(false);
        if let Some(ep) = &cfg.endpoint {
            b = b.with_endpoint(ep).with_allow_http(ep.starts_with("http://"));
        }
        let store = b.build().map_err(|e| anyhow::anyhow!("storage.s3: {e}"))?;
        Ok(Self { store: Arc::new(store), prefix: cfg.prefix.trim_matches('/').to_string() })
    }

    fn path(&self, key: &str) -> Result<Path> {
        check_key(key)?;
        Ok(if self.prefix.is_empty() {
            Path::from(key)
        } else {
            Path::from(format!("{}/{key}", self.prefix))
        })
    }

    fn parts_prefix(&self, key: &str) -> Result<Path> {
        self.path(&format!("{key}.parts"))
    }

    /// Part objects of an upload, ordered by offset: (offset, size, path).
    async fn parts(&self, key: &str) -> Result<Vec<(u64, u64, Path)>> {
        let prefix = self.parts_prefix(key)?;
        let mut out: Vec<(u64, u64, Path)> = self
            .store
            .list(Some(&prefix))
            .map_err(err)
            .try_filter_map(|m| async move {
                let off = m.location.filename().and_then(|f| f.parse::<u64>().ok());
                Ok(off.map(|o| (o, m.size, m.location)))
            })
            .try_collect()
            .await?;
        out.sort_by_key(|p| p.0);
        Ok(out)
    }

    /// The contents of several objects, one after the other, as one stream.
    fn chain(&self, paths: Vec<Path>) -> ByteStream {
        let store = self.store.clone();
        Box::pin(
            futures::stream::iter(paths)
                .then(move |p| {
                    let store = store.clone();
                    async move {
                        store
                            .get(&p)
                            .await
                            .map(|r| r.into_stream().map_err(std::io::Error::other))
                            .map_err(std::io::Error::other)
                    }
                })
                .try_flatten(),
        )
    }

    async fn write_stream(&self, path: &Path, mut data: ByteStream) -> Result<u64> {
        let upload = self.store.put_multipart(path).await.map_err(err)?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, CHUNK);
        let mut n = 0u64;
        while let Some(chunk) = data.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(StorageError::Body(e));
                }
            };
            if let Err(e) = w.wait_for_capacity(4).await {
                return Err(err(e));
            }
            n += chunk.len() as u64;
            w.put(chunk);
        }
        w.finish().await.map_err(err)?;
        Ok(n)
    }
}

#[async_trait::async_trait]
impl Storage for S3Storage {
    async fn stat(&self, key: &str) -> Result<Option<u64>> {
        match self.store.head(&self.path(key)?).await {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => {
                let parts = self.parts(key).await?;
                Ok((!parts.is_empty()).then(|| parts.iter().map(|p| p.1).sum()))
            }
            Err(e) => Err(err(e)),
        }
    }

    async fn read(&self, key: &str, range: Option<(u64, u64)>) -> Result<ByteStream> {
        let path = self.path(key)?;
        if let Some((start, end)) = range {
            let size = self.store.head(&path).await.map_err(err)?.size;
            if start > end || end > size {
                return Err(StorageError::InvalidRange);
            }
            if start == end {
                return Ok(Box::pin(futures::stream::empty()));
            }
            let opts = GetOptions { range: Some(GetRange::Bounded(start..end)), ..Default::default() };
            let r = self.store.get_opts(&path, opts).await.map_err(err)?;
            return Ok(Box::pin(r.into_stream().map_err(std::io::Error::other)));
        }
        match self.store.get(&path).await {
            Ok(r) => Ok(Box::pin(r.into_stream().map_err(std::io::Error::other))),
            // An upload in progress: its parts in order.
            Err(object_store::Error::NotFound { .. }) => {
                let parts = self.parts(key).await?;
                if parts.is_empty() {
                    return Err(StorageError::NotFound);
                }
                Ok(self.chain(parts.into_iter().map(|p| p.2).collect()))
            }
            Err(e) => Err(err(e)),
        }
    }

    async fn read_all(&self, key: &str) -> Result<Bytes> {
        match self.store.get(&self.path(key)?).await {
            Ok(r) => r.bytes().await.map_err(err),
            Err(object_store::Error::NotFound { .. }) => {
                let parts = self.parts(key).await?;
                if parts.is_empty() {
                    return Err(StorageError::NotFound);
                }
                let mut buf = Vec::new();
                for (_, _, p) in parts {
                    buf.extend_from_slice(
                        &self.store.get(&p).await.map_err(err)?.bytes().await.map_err(err)?,
                    );
                }
                Ok(Bytes::from(buf))
            }
            Err(e) => Err(err(e)),
        }
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        self.store.put(&self.path(key)?, PutPayload::from(data)).await.map_err(err)?;
        Ok(())
    }

    async fn append(&self, key: &str, offset: u64, data: ByteStream) -> Result<u64> {
        let mut kept = 0u64;
        for (off, size, p) in self.parts(key).await? {
            if off >= offset {
                // Left over by a request that failed after writing: discard.
                self.store.delete(&p).await.map_err(err)?;
            } else if off + size > offset {
                return Err(StorageError::InvalidRange);
            } else {
                kept += size;
            }
        }
        if kept != offset {
            return Err(StorageError::InvalidRange);
        }
        let path = self.path(&format!("{key}.parts/{offset:020}"))?;
        let mut data = data.peekable();
        // Skip empty requests: no part object for zero bytes.
        let mut first = None;
        while let Some(c) = data.next().await {
            let c = c.map_err(StorageError::Body)?;
            if !c.is_empty() {
                first = Some(c);
                break;
            }
        }
        let Some(first) = first else { return Ok(offset) };
        let stream: ByteStream = Box::pin(futures::stream::once(async move { Ok(first) }).chain(data));
        let n = self.write_stream(&path, stream).await?;
        Ok(offset + n)
    }

    async fn commit(&self, from: &str, to: &str, len: u64) -> Result<()> {
        let dst = self.path(to)?;
        let mut parts = self.parts(from).await?;
        // Parts at or after the committed length come from requests that failed: not the blob's.
        let mut kept = 0u64;
        let mut stale = Vec::new();
        parts.retain(|(off, size, p)| {
            if *off >= len {
                stale.push(p.clone());
                false
            } else {
                kept += size;
                true
            }
        });
        if kept != len && !parts.is_empty() {
            return Err(StorageError::InvalidRange);
        }
        for p in stale {
            self.store.delete(&p).await.map_err(err)?;
        }
        match parts.len() {
            0 => {
                let src = self.path(from)?;
                let size = self.store.head(&src).await.map_err(err)?.size;
                if size != len {
                    return Err(StorageError::InvalidRange);
                }
                self.store.copy(&src, &dst).await.map_err(err)?;
                self.store.delete(&src).await.map_err(err)?;
            }
            1 => {
                self.store.copy(&parts[0].2, &dst).await.map_err(err)?;
                self.store.delete(&parts[0].2).await.map_err(err)?;
            }
            _ => {
                let paths: Vec<Path> = parts.iter().map(|p| p.2.clone()).collect();
                let chained = self.chain(paths.clone());
                self.write_stream(&dst, chained).await.map_err(|e| match e {
                    StorageError::Body(io) => StorageError::Io(io),
                    other => other,
                })?;
                for p in paths {
                    self.store.delete(&p).await.map_err(err)?;
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&self.path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(err(e)),
        }
        // Only uploads have part objects; final objects never do (one request fewer per blob).
        if !key.starts_with("uploads/") {
            return Ok(());
        }
        for (_, _, p) in self.parts(key).await? {
            match self.store.delete(&p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(err(e)),
            }
        }
        Ok(())
    }

    /// Final objects go in bulk (`DeleteObjects`, up to 1000 keys a request); a key the bulk
    /// request did not confirm is retried alone, so each result is the key's own.
    async fn delete_many(&self, keys: &[String], _concurrency: usize) -> Vec<Result<()>> {
        let mut paths = Vec::with_capacity(keys.len());
        for k in keys {
            match self.path(k) {
                Ok(p) if !k.starts_with("uploads/") => paths.push(Some(p)),
                _ => paths.push(None),
            }
        }
        let bulk: Vec<Path> = paths.iter().flatten().cloned().collect();
        let mut done = std::collections::HashSet::new();
        if !bulk.is_empty() {
            let input = futures::stream::iter(bulk.into_iter().map(Ok)).boxed();
            let mut out = self.store.delete_stream(input);
            while let Some(r) = out.next().await {
                match r {
                    Ok(p) => {
                        done.insert(p);
                    }
                    Err(object_store::Error::NotFound { path, .. }) => {
                        done.insert(Path::from(path));
                    }
                    Err(e) => tracing::warn!(error = %e, "bulk delete: an object failed; retrying it alone"),
                }
            }
        }
        let mut results = Vec::with_capacity(keys.len());
        for (k, p) in keys.iter().zip(paths) {
            match p {
                Some(p) if done.contains(&p) => results.push(Ok(())),
                _ => results.push(self.delete(k).await),
            }
        }
        results
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let p = if prefix.is_empty() { None } else { Some(self.path(prefix.trim_end_matches('/'))?) };
        let strip = if self.prefix.is_empty() { String::new() } else { format!("{}/", self.prefix) };
        let mut keys: Vec<String> = self
            .store
            .list(p.as_ref())
            .map_err(err)
            .map_ok(|m| m.location.to_string().trim_start_matches(&strip).to_string())
            .try_collect()
            .await?;
        keys.retain(|k| !k.contains(".parts/"));
        keys.sort();
        Ok(keys)
    }

    async fn list_meta(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let p = if prefix.is_empty() { None } else { Some(self.path(prefix.trim_end_matches('/'))?) };
        let strip = if self.prefix.is_empty() { String::new() } else { format!("{}/", self.prefix) };
        let listed: Vec<object_store::ObjectMeta> =
            self.store.list(p.as_ref()).map_err(err).try_collect().await?;
        // Part objects `<key>.parts/<offset>` fold into their upload's key.
        let mut out: std::collections::BTreeMap<String, ObjectMeta> = Default::default();
        for m in listed {
            let full = m.location.to_string();
            let key = full.trim_start_matches(&strip);
            let key = key.split_once(".parts/").map_or(key, |(k, _)| k).to_string();
            let modified = std::time::SystemTime::from(m.last_modified);
            let o = out.entry(key.clone()).or_insert(ObjectMeta { key, size: 0, modified });
            o.size += m.size;
            o.modified = o.modified.max(modified);
        }
        Ok(out.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    /// The storage suite against a real S3 server (Garage, started by the test command).
    #[tokio::test]
    async fn suite() {
        let cfg = crate::config::S3Config::from_test_env();
        let mut cfg = cfg;
        cfg.prefix = format!("suite-{}", uuid::Uuid::new_v4().simple());
        let s = super::S3Storage::new(&cfg).unwrap();
        crate::storage::suite::run(&s).await;
        // Multi-part uploads compose in order.
        use crate::storage::Storage;
        use bytes::Bytes;
        let one: crate::storage::ByteStream =
            Box::pin(futures::stream::iter(vec![Ok(Bytes::from_static(b"abc"))]));
        let two: crate::storage::ByteStream =
            Box::pin(futures::stream::iter(vec![Ok(Bytes::from_static(b"def"))]));
        assert_eq!(s.append("uploads/m/data", 0, one).await.unwrap(), 3);
        assert_eq!(s.append("uploads/m/data", 3, two).await.unwrap(), 6);
        assert_eq!(s.stat("uploads/m/data").await.unwrap(), Some(6));
        s.commit("uploads/m/data", "blobs/sha256/mm/m/data", 6).await.unwrap();
        assert_eq!(&s.read_all("blobs/sha256/mm/m/data").await.unwrap()[..], b"abcdef");
        assert_eq!(s.stat("uploads/m/data").await.unwrap(), None);
    }
}

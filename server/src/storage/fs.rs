//! Filesystem backend: a local directory or a shared CephFS/NFS mount used by several
//! replicas. Whole objects: temp file in the same directory → fsync → rename → fsync dir.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use super::{check_key, ByteStream, Result, Storage, StorageError};

#[derive(Debug, Clone)]
pub struct FsStorage {
    root: PathBuf,
}

impl FsStorage {
    pub fn new(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root)
            .map_err(|e| anyhow::anyhow!("storage.path: cannot create {}: {e}", root.display()))?;
        Ok(Self { root: root.to_path_buf() })
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

fn not_found(e: std::io::Error) -> StorageError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StorageError::NotFound
    } else {
        StorageError::Io(e)
    }
}

async fn sync_dir(dir: &Path) {
    // Makes a rename durable; some filesystems refuse fsync on directories, which is fine.
    if let Ok(d) = tokio::fs::File::open(dir).await {
        let _ = d.sync_all().await;
    }
}

fn temp_name(path: &Path) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("obj");
    path.with_file_name(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()))
}

#[async_trait::async_trait]
impl Storage for FsStorage {
    async fn stat(&self, key: &str) -> Result<Option<u64>> {
        match tokio::fs::metadata(self.path(key)?).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn read(&self, key: &str, range: Option<(u64, u64)>) -> Result<ByteStream> {
        let mut f = tokio::fs::File::open(self.path(key)?).await.map_err(not_found)?;
        let size = f.metadata().await?.len();
        let (start, end) = range.unwrap_or((0, size));
        if start > end || end > size {
            return Err(StorageError::InvalidRange);
        }
        f.seek(SeekFrom::Start(start)).await?;
        let reader = f.take(end - start);
        Ok(Box::pin(ReaderStream::with_capacity(reader, 256 * 1024)))
    }

    async fn read_all(&self, key: &str) -> Result<Bytes> {
        Ok(Bytes::from(tokio::fs::read(self.path(key)?).await.map_err(not_found)?))
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        let path = self.path(key)?;
        let dir = path.parent().expect("keys have a parent").to_path_buf();
        tokio::fs::create_dir_all(&dir).await?;
        let tmp = temp_name(&path);
        let result = async {
            let mut f = tokio::fs::File::create(&tmp).await?;
            f.write_all(&data).await?;
            f.sync_all().await?;
            tokio::fs::rename(&tmp, &path).await?;
            sync_dir(&dir).await;
            Ok::<_, std::io::Error>(())
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        Ok(result?)
    }

    async fn append(&self, key: &str, offset: u64, mut data: ByteStream) -> Result<u64> {
        let path = self.path(key)?;
        let dir = path.parent().expect("keys have a parent").to_path_buf();
        tokio::fs::create_dir_all(&dir).await?;
        let mut f =
            tokio::fs::OpenOptions::new().create(true).write(true).truncate(false).open(&path).await?;
        let len = f.metadata().await?.len();
        if len < offset {
            return Err(StorageError::InvalidRange);
        }
        // Bytes past the committed offset come from a request that failed: drop them.
        f.set_len(offset).await?;
        f.seek(SeekFrom::Start(offset)).await?;
        let mut f = tokio::io::BufWriter::with_capacity(1024 * 1024, f);
        let mut size = offset;
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(StorageError::Body)?;
            f.write_all(&chunk).await?;
            size += chunk.len() as u64;
        }
        f.flush().await?;
        f.get_ref().sync_data().await?;
        if offset == 0 {
            sync_dir(&dir).await;
        }
        Ok(size)
    }

    async fn commit(&self, from: &str, to: &str) -> Result<()> {
        let (src, dst) = (self.path(from)?, self.path(to)?);
        let dir = dst.parent().expect("keys have a parent").to_path_buf();
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::rename(&src, &dst).await.map_err(not_found)?;
        sync_dir(&dir).await;
        if let Some(parent) = src.parent() {
            let _ = tokio::fs::remove_dir(parent).await;
        }
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let root = self.root.clone();
        let start = if prefix.is_empty() { root.clone() } else { self.path(prefix.trim_end_matches('/'))? };
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let mut stack = vec![start];
            while let Some(dir) = stack.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(StorageError::Io(e)),
                };
                for entry in entries {
                    let entry = entry?;
                    let p = entry.path();
                    let hidden = entry.file_name().to_string_lossy().starts_with('.');
                    if entry.file_type()?.is_dir() {
                        stack.push(p);
                    } else if !hidden {
                        if let Ok(rel) = p.strip_prefix(&root) {
                            out.push(rel.to_string_lossy().replace('\\', "/"));
                        }
                    }
                }
            }
            out.sort();
            Ok(out)
        })
        .await
        .map_err(|e| StorageError::Io(std::io::Error::other(e)))?
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn suite() {
        let dir = tempfile::tempdir().unwrap();
        let s = super::FsStorage::new(dir.path()).unwrap();
        crate::storage::suite::run(&s).await;
        // No temporary files are left behind.
        let mut leftovers = Vec::new();
        for e in walk(dir.path()) {
            if e.file_name().unwrap().to_string_lossy().contains(".tmp-") {
                leftovers.push(e);
            }
        }
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = vec![];
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                let path = e.path();
                if path.is_dir() {
                    out.extend(walk(&path));
                } else {
                    out.push(path);
                }
            }
        }
        out
    }
}

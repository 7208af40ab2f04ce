//! In-memory backend for unit tests (one process only, by nature).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::{check_key, ByteStream, ObjectMeta, Result, Storage, StorageError};

#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    /// Each object with its last write.
    objects: Arc<Mutex<BTreeMap<String, (Bytes, SystemTime)>>>,
}

impl MemoryStorage {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (Bytes, SystemTime)>> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl Storage for MemoryStorage {
    async fn stat(&self, key: &str) -> Result<Option<u64>> {
        check_key(key)?;
        Ok(self.lock().get(key).map(|(b, _)| b.len() as u64))
    }

    async fn read(&self, key: &str, range: Option<(u64, u64)>) -> Result<ByteStream> {
        let data = self.read_all(key).await?;
        let (start, end) = range.unwrap_or((0, data.len() as u64));
        if start > end || end > data.len() as u64 {
            return Err(StorageError::InvalidRange);
        }
        let part = data.slice(start as usize..end as usize);
        Ok(Box::pin(futures::stream::once(async move { Ok(part) })))
    }

    async fn read_all(&self, key: &str) -> Result<Bytes> {
        check_key(key)?;
        self.lock().get(key).map(|(b, _)| b.clone()).ok_or(StorageError::NotFound)
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        check_key(key)?;
        self.lock().insert(key.to_string(), (data, SystemTime::now()));
        Ok(())
    }

    async fn append(&self, key: &str, offset: u64, mut data: ByteStream) -> Result<u64> {
        check_key(key)?;
        let existing = self.lock().get(key).map(|(b, _)| b.clone()).unwrap_or_default();
        if (existing.len() as u64) < offset {
            return Err(StorageError::InvalidRange);
        }
        let mut buf = BytesMut::from(&existing[..offset as usize]);
        while let Some(chunk) = data.next().await {
            buf.extend_from_slice(&chunk.map_err(StorageError::Body)?);
        }
        let len = buf.len() as u64;
        self.lock().insert(key.to_string(), (buf.freeze(), SystemTime::now()));
        Ok(len)
    }

    async fn commit(&self, from: &str, to: &str, len: u64) -> Result<()> {
        check_key(from)?;
        check_key(to)?;
        let mut m = self.lock();
        let (data, modified) = m.get(from).ok_or(StorageError::NotFound)?;
        if (data.len() as u64) < len {
            return Err(StorageError::InvalidRange);
        }
        let data = (data.slice(..len as usize), *modified);
        m.remove(from);
        m.insert(to.to_string(), data);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        self.lock().remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self.lock().keys().filter(|k| k.starts_with(prefix)).cloned().collect())
    }

    async fn list_meta(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let m = self.lock();
        let found = m.iter().filter(|(k, _)| k.starts_with(prefix));
        Ok(found
            .map(|(k, (b, t))| ObjectMeta { key: k.clone(), size: b.len() as u64, modified: *t })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn suite() {
        crate::storage::suite::run(&super::MemoryStorage::default()).await;
    }
}

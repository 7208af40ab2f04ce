//! One behavioural suite every backend must pass (filesystem, memory; S3 when it lands).

use bytes::Bytes;
use futures::StreamExt;

use super::{ByteStream, Storage, StorageError};

fn stream(parts: Vec<&'static [u8]>) -> ByteStream {
    Box::pin(futures::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from_static(p)))))
}

fn failing() -> ByteStream {
    Box::pin(futures::stream::iter(vec![
        Ok(Bytes::from_static(b"GARBAGE")),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "client went away")),
    ]))
}

/// More than a write batch of garbage (so a backend has written some of it), then a disconnect.
fn failing_big() -> ByteStream {
    let junk = Bytes::from(vec![b'J'; 3 * 1024 * 1024]);
    Box::pin(futures::stream::iter(vec![
        Ok(junk.slice(..1024 * 1024)),
        Ok(junk.slice(1024 * 1024..)),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "client went away")),
    ]))
}

async fn collect(s: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = s;
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

pub async fn run(s: &dyn Storage) {
    // Bulk deletes: present and absent keys, one result each.
    let keys: Vec<String> = (0..5).map(|i| format!("blobs/sha256/dd/d{i}/data")).collect();
    for k in &keys[..4] {
        s.put(k, Bytes::from_static(b"bulk")).await.unwrap();
    }
    let results = s.delete_many(&keys, 2).await;
    assert_eq!(results.len(), 5);
    for (k, r) in keys.iter().zip(results) {
        r.unwrap_or_else(|e| panic!("{k}: {e}"));
        assert_eq!(s.stat(k).await.unwrap(), None, "{k}");
    }
    assert!(s.delete_many(&[], 2).await.is_empty());

    // Absent objects.
    assert_eq!(s.stat("blobs/sha256/aa/x/data").await.unwrap(), None);
    assert!(matches!(s.read_all("blobs/sha256/aa/x/data").await, Err(StorageError::NotFound)));
    assert!(matches!(s.read("blobs/sha256/aa/x/data", None).await, Err(StorageError::NotFound)));
    s.delete("blobs/sha256/aa/x/data").await.unwrap();

    // Whole objects and ranges.
    s.put("blobs/sha256/ab/abc/data", Bytes::from_static(b"hello world")).await.unwrap();
    assert_eq!(s.stat("blobs/sha256/ab/abc/data").await.unwrap(), Some(11));
    assert_eq!(&s.read_all("blobs/sha256/ab/abc/data").await.unwrap()[..], b"hello world");
    assert_eq!(collect(s.read("blobs/sha256/ab/abc/data", Some((6, 11))).await.unwrap()).await, b"world");
    assert_eq!(collect(s.read("blobs/sha256/ab/abc/data", Some((3, 3))).await.unwrap()).await, b"");
    assert!(matches!(
        s.read("blobs/sha256/ab/abc/data", Some((5, 12))).await,
        Err(StorageError::InvalidRange)
    ));
    // Overwrite is atomic and complete.
    s.put("blobs/sha256/ab/abc/data", Bytes::from_static(b"HELLO WORLD")).await.unwrap();
    assert_eq!(&s.read_all("blobs/sha256/ab/abc/data").await.unwrap()[..], b"HELLO WORLD");

    // Uploads: append in chunks, a failed request leaves nothing behind, commit moves it.
    let up = "uploads/u1/data";
    assert_eq!(s.append(up, 0, stream(vec![b"abc", b"def"])).await.unwrap(), 6);
    assert!(matches!(s.append(up, 6, failing()).await, Err(StorageError::Body(_))));
    // The committed length is still 6: appending at 6 discards the garbage of the failed request.
    assert_eq!(s.append(up, 6, stream(vec![b"gh"])).await.unwrap(), 8);
    assert!(matches!(s.append(up, 100, stream(vec![b"x"])).await, Err(StorageError::InvalidRange)));
    assert_eq!(s.append(up, 8, stream(vec![])).await.unwrap(), 8);
    // An unfinished upload reads back as one object (the sha512 check streams it).
    assert_eq!(s.stat(up).await.unwrap(), Some(8));
    assert_eq!(collect(s.read(up, None).await.unwrap()).await, b"abcdefgh");
    s.commit(up, "blobs/sha256/cd/cdef/data", 8).await.unwrap();
    assert_eq!(&s.read_all("blobs/sha256/cd/cdef/data").await.unwrap()[..], b"abcdefgh");
    assert_eq!(s.stat(up).await.unwrap(), None);
    assert!(matches!(s.commit(up, "blobs/sha256/cd/cdef/data", 8).await, Err(StorageError::NotFound)));

    // A stored blob is exactly its committed bytes, always: a request that failed after writing
    // megabytes, then a commit without a further append (a body-less closing PUT), keeps none.
    let up = "uploads/u2/data";
    assert_eq!(s.append(up, 0, stream(vec![b"committed"])).await.unwrap(), 9);
    assert!(matches!(s.append(up, 9, failing_big()).await, Err(StorageError::Body(_))));
    s.commit(up, "blobs/sha256/ee/exact/data", 9).await.unwrap();
    assert_eq!(s.stat("blobs/sha256/ee/exact/data").await.unwrap(), Some(9));
    assert_eq!(&s.read_all("blobs/sha256/ee/exact/data").await.unwrap()[..], b"committed");
    assert_eq!(collect(s.read("blobs/sha256/ee/exact/data", None).await.unwrap()).await, b"committed");
    // The same from the very start (nothing committed but the failed request's bytes).
    assert!(matches!(s.append("uploads/u3/data", 0, failing_big()).await, Err(StorageError::Body(_))));
    assert_eq!(s.append("uploads/u3/data", 0, stream(vec![b"ab"])).await.unwrap(), 2);
    // A commit longer than the upload is refused and leaves the upload as it was.
    assert!(matches!(
        s.commit("uploads/u3/data", "blobs/sha256/ee/short/data", 5).await,
        Err(StorageError::InvalidRange)
    ));
    assert_eq!(s.stat("blobs/sha256/ee/short/data").await.unwrap(), None);
    assert_eq!(collect(s.read("uploads/u3/data", None).await.unwrap()).await, b"ab");
    s.delete("uploads/u3/data").await.unwrap();
    s.delete("blobs/sha256/ee/exact/data").await.unwrap();

    // Listing and deletion.
    let keys = s.list("blobs/").await.unwrap();
    assert_eq!(keys, vec!["blobs/sha256/ab/abc/data".to_string(), "blobs/sha256/cd/cdef/data".to_string()]);
    s.delete("blobs/sha256/ab/abc/data").await.unwrap();
    assert_eq!(s.list("blobs/").await.unwrap(), vec!["blobs/sha256/cd/cdef/data".to_string()]);

    // Listing with sizes and last writes: an upload in progress (S3: written as two part
    // objects) is one object of its whole length. S3 times have whole seconds.
    let before = std::time::SystemTime::now() - std::time::Duration::from_secs(2);
    assert_eq!(s.append("uploads/m1/data", 0, stream(vec![b"abc"])).await.unwrap(), 3);
    assert_eq!(s.append("uploads/m1/data", 3, stream(vec![b"defg"])).await.unwrap(), 7);
    s.put("uploads/m2/data", Bytes::from_static(b"xy")).await.unwrap();
    let after = std::time::SystemTime::now() + std::time::Duration::from_secs(2);
    let listed = s.list_meta("uploads/").await.unwrap();
    let brief: Vec<(&str, u64)> = listed.iter().map(|o| (o.key.as_str(), o.size)).collect();
    assert_eq!(brief, [("uploads/m1/data", 7), ("uploads/m2/data", 2)]);
    assert!(listed.iter().all(|o| o.modified >= before && o.modified <= after), "{listed:?}");
    let blobs = s.list_meta("blobs/").await.unwrap();
    assert_eq!(blobs.len(), 1);
    assert_eq!(
        (blobs[0].key.as_str(), blobs[0].size),
        ("blobs/sha256/cd/cdef/data", s.stat(&blobs[0].key).await.unwrap().unwrap())
    );
    s.delete("uploads/m1/data").await.unwrap();
    s.delete("uploads/m2/data").await.unwrap();
    assert_eq!(s.list_meta("uploads/").await.unwrap(), []);

    // Keys that could escape the root are refused everywhere.
    for bad in ["../etc/passwd", "/etc/passwd", "blobs/../../x"] {
        assert!(matches!(s.stat(bad).await, Err(StorageError::InvalidKey(_))));
        assert!(matches!(s.put(bad, Bytes::new()).await, Err(StorageError::InvalidKey(_))));
        assert!(matches!(s.append(bad, 0, stream(vec![])).await, Err(StorageError::InvalidKey(_))));
    }

    // Larger streamed object, read back in ranges.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let leaked: &'static [u8] = Box::leak(big.clone().into_boxed_slice());
    let chunks: Vec<&'static [u8]> = leaked.chunks(65_536).collect();
    assert_eq!(s.append("uploads/big/data", 0, stream(chunks)).await.unwrap(), big.len() as u64);
    s.commit("uploads/big/data", "blobs/sha256/bb/big/data", big.len() as u64).await.unwrap();
    let back = collect(s.read("blobs/sha256/bb/big/data", Some((1_000_000, 2_000_001))).await.unwrap()).await;
    assert_eq!(back, big[1_000_000..2_000_001]);
    // Whole, and twice at once (read buffers are pooled and reused in the filesystem backend).
    let (a, b) = tokio::join!(
        async { collect(s.read("blobs/sha256/bb/big/data", None).await.unwrap()).await },
        async {
            collect(s.read("blobs/sha256/bb/big/data", Some((2_097_152, 3_000_000))).await.unwrap()).await
        },
    );
    assert_eq!(a, big);
    assert_eq!(b, big[2_097_152..]);
}

//! Blobs: GET/HEAD with `Range`, DELETE. A blob a proxy-cache project lacks is answered by
//! `proxied` (from its upstream, cached as it streams).

use super::*;

/// Parses `Range: bytes=a-b | a- | -n` for an object of `size` bytes.
pub fn parse_range(value: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // multiple ranges: serve the whole object
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let r = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || size == 0 {
            return Some(Err(()));
        }
        (size.saturating_sub(n), size)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() { size } else { b.parse::<u64>().ok()?.saturating_add(1).min(size) };
        if start >= size || start >= end {
            return Some(Err(()));
        }
        (start, end)
    };
    Some(Ok(r))
}

pub(super) async fn get_blob(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    digest: &Digest,
    headers: &HeaderMap,
    head: bool,
) -> OciResult<Response> {
    let project = authorize(state, who, name, Action::Pull).await?;
    // One lookup: a proxy-cache project's miss goes upstream (unless another pull cached it
    // meanwhile), anything else answers from here.
    let size = match meta::blob_in_repo(&state.db, name, digest).await? {
        Some(size) => size,
        None => {
            if let Some(registry_id) = project.registry_id {
                if let Some(resp) = proxied::get_blob(state, name, digest, head, registry_id).await? {
                    return Ok(resp);
                }
            }
            internal::blob_size(state, name, digest).await?
        }
    };
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(|v| parse_range(v, size));
    let d = digest.to_string();
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, size),
        Some(Ok((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e),
        Some(Err(())) => {
            return Err(OciError::new(Code::RangeInvalid, "requested range not satisfiable")
                .header(header::CONTENT_RANGE, hv(&format!("bytes */{size}"))))
        }
    };
    let body = if head {
        Body::empty()
    } else {
        Body::from_stream(internal::read_blob(state, digest, Some((start, end))).await?)
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert("docker-content-digest", hv(&d));
    h.insert(header::ETAG, hv(&format!("\"{d}\"")));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=31536000"));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(header::CONTENT_RANGE, hv(&format!("bytes {start}-{}/{size}", end - 1)));
    }
    Ok(resp)
}

pub(super) async fn delete_blob(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    digest: &Digest,
) -> OciResult<Response> {
    let project = authorize(state, who, name, Action::Delete).await?;
    if !meta::unlink_blob(&state.db, name, digest).await? {
        return Err(OciError::new(Code::BlobUnknown, format!("blob {digest} unknown")));
    }
    state.audit.record(who.event("delete", "blob", format!("{name}@{digest}"), project.id));
    Ok(StatusCode::ACCEPTED.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Ok((0, 10))));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok((90, 100))));
        assert_eq!(parse_range("bytes=-10", 100), Some(Ok((90, 100))));
        assert_eq!(parse_range("bytes=95-200", 100), Some(Ok((95, 100))));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=5-4", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=x-y", 100), None);
    }
}

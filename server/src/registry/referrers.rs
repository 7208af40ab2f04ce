//! `/v2/<name>/referrers/<digest>` (OCI 1.1), with the `artifactType` filter, paged.
//!
//! **Paging** (the spec lets a registry page the list with a `Link: <…>; rel="next"` header,
//! as `tags/list`; oras and regclient follow it): referrers come in digest order, at most `n`
//! a page (default and maximum `REFERRERS_PAGE`) and at most `PAGE_BYTES` of descriptors, so a
//! page is always an index a client accepts under the 4 MiB manifest limit. The next page's
//! link carries `n`, `last` (the page's last digest) and the `artifactType` filter.
//! Test: `registry.rs` `referrers_are_paged_with_link`.

use super::*;

/// Referrers per page when the client does not ask for fewer (a descriptor with a short
/// annotation is ~300 bytes: a full page is ~150 KB).
pub(super) const REFERRERS_PAGE: i64 = 500;
/// Descriptor bytes per page at most: the page is an index, which clients refuse above 4 MiB
/// (annotations can be large); the rest of the index fits in the margin.
const PAGE_BYTES: usize = manifest::MAX_MANIFEST_SIZE - 64 * 1024;

pub(super) async fn referrers(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    digest: &Digest,
    pairs: &[(String, String)],
) -> OciResult<Response> {
    authorize(state, who, name, Action::Pull).await?;
    let filter = query(pairs, "artifactType").filter(|t| !t.is_empty());
    let (n, last) = catalog::page_params(pairs)?;
    let n = n.min(REFERRERS_PAGE);
    let mut page: Vec<serde_json::Value> = vec![];
    let (mut bytes, mut more) = (0usize, false);
    let mut cursor = last;
    // Rows are read `n + 1` at a time until the page is full: the filter on the config's media
    // type is applied here, so a batch can yield fewer than it read.
    if n > 0 {
        'read: loop {
            let found = meta::referrers(&state.db, name, digest, filter, cursor.as_deref(), n + 1).await?;
            let read_all = (found.len() as i64) < n + 1;
            for r in found {
                cursor = Some(r.digest.clone());
                let Some(d) = descriptor(state, &r, filter).await? else { continue };
                let size = d.to_string().len() + 1;
                if page.len() as i64 == n || (!page.is_empty() && bytes + size > PAGE_BYTES) {
                    more = true;
                    break 'read;
                }
                bytes += size;
                page.push(d);
            }
            if read_all {
                break;
            }
        }
    }
    let body = json!({ "schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": page });
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(manifest::OCI_INDEX));
    if filter.is_some() {
        resp.headers_mut().insert("oci-filters-applied", HeaderValue::from_static("artifactType"));
    }
    if more {
        if let Some(l) = page.last().and_then(|d| d["digest"].as_str()) {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("n", &n.to_string()).append_pair("last", l);
            if let Some(t) = filter {
                q.append_pair("artifactType", t);
            }
            let link = format!("</v2/{name}/referrers/{digest}?{}>; rel=\"next\"", q.finish());
            resp.headers_mut().insert(header::LINK, hv(&link));
        }
    }
    Ok(resp)
}

/// The referrer's descriptor, or `None` when the filter does not match it. The spec's
/// artifactType: the manifest's own, else an image manifest's config media type; an index
/// without one has none (the field is omitted, never "").
async fn descriptor(
    state: &AppState,
    r: &meta::Referrer,
    filter: Option<&str>,
) -> OciResult<Option<serde_json::Value>> {
    let artifact_type = internal::referrer_artifact_type(state, r).await?;
    if filter.is_some() && artifact_type.as_deref() != filter {
        return Ok(None);
    }
    let mut d = json!({ "mediaType": r.media_type, "digest": r.digest, "size": r.size });
    if let Some(t) = artifact_type {
        d["artifactType"] = json!(t);
    }
    if let Ok(serde_json::Value::Object(a)) = serde_json::from_str::<serde_json::Value>(&r.annotations) {
        if !a.is_empty() {
            d["annotations"] = serde_json::Value::Object(a);
        }
    }
    Ok(Some(d))
}

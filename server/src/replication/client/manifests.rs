//! Manifests (HEAD, GET verified against their digest, PUT, DELETE), tags and the catalog
//! (paged with `n` and `Link`), and referrers: the referrers API, or when a registry answers it
//! 404 (distribution 2.8), the tag schema (`<alg>-<hex>` tag holding an index). A manifest
//! with a `subject` pushed to a registry that does not answer `OCI-Subject` gets its entry in
//! that tag's index, so its referrers stay discoverable there.

use bytes::Bytes;
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use url::Url;

use super::transport::{next_link, Req};
use super::{
    check_reference, check_repo, pull_scope, push_scope, RemoteRegistry, MAX_LISTING_ENTRIES,
    MAX_LISTING_PAGE, MAX_MANIFEST,
};
use crate::registry::digest::{Algorithm, Digest};
use crate::registry::manifest::{is_index, OCI_INDEX, OCI_MANIFEST};
use crate::replication::content::{ContentError, ContentResult, Descriptor, Manifest};

/// The manifest types asked for (OCI and Docker v2, images and indexes).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// Most pages a listing follows.
const MAX_PAGES: usize = 100_000;

fn media_type_header(resp: &Response) -> Option<String> {
    let ct = resp.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    let m = ct.split(';').next().unwrap_or("").trim();
    (!m.is_empty()).then(|| m.to_string())
}

/// The manifest's media type: `Content-Type`, unless generic, else its `mediaType`, else
/// inferred as OCI does (an index when it has `manifests`).
fn media_type_of(content_type: Option<&str>, body: &[u8]) -> String {
    if let Some(ct) = content_type {
        if !matches!(ct, "application/json" | "text/plain" | "application/octet-stream") {
            return ct.to_string();
        }
    }
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match v.get("mediaType").and_then(Value::as_str) {
        Some(m) if !m.is_empty() => m.to_string(),
        _ if v.get("manifests").is_some() => OCI_INDEX.to_string(),
        _ => OCI_MANIFEST.to_string(),
    }
}

fn header_digest(resp: &Response) -> Option<Digest> {
    resp.headers().get("docker-content-digest")?.to_str().ok()?.trim().parse().ok()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: Option<String>,
    size: Option<u64>,
    artifact_type: Option<String>,
}

#[derive(Deserialize)]
struct RawIndex {
    #[serde(default)]
    manifests: Vec<RawDescriptor>,
}

/// The entries of an index body (entries without a valid digest are skipped).
fn index_entries(body: &[u8]) -> ContentResult<Vec<Descriptor>> {
    let idx: RawIndex = serde_json::from_slice(body)
        .map_err(|e| ContentError::Invalid(format!("referrers: not an OCI index: {e}")))?;
    Ok(idx
        .manifests
        .into_iter()
        .filter_map(|d| {
            Some(Descriptor {
                media_type: d.media_type.unwrap_or_default(),
                digest: d.digest?.parse().ok()?,
                size: d.size.unwrap_or(0),
                artifact_type: d.artifact_type.filter(|a| !a.is_empty()),
            })
        })
        .collect())
}

/// The referrers tag of `subject` (`sha256-<hex>`; the hex cut to 64 characters).
pub(super) fn referrers_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algorithm.name(), &subject.hex[..subject.hex.len().min(64)])
}

impl RemoteRegistry {
    fn manifest_req(
        &self,
        method: Method,
        repo: &str,
        reference: &str,
        scopes: Vec<String>,
    ) -> ContentResult<Req> {
        check_repo(repo)?;
        check_reference(reference)?;
        let mut req = self.req(method, &format!("/v2/{repo}/manifests/{reference}"), scopes)?;
        req.headers.insert(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        Ok(req)
    }

    pub(super) async fn head_manifest_impl(
        &self,
        repo: &str,
        reference: &str,
    ) -> ContentResult<Option<Descriptor>> {
        let req = self.manifest_req(Method::HEAD, repo, reference, vec![pull_scope(repo)])?;
        let resp = self.send(&req).await?;
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(self.status_error(resp, &format!("HEAD manifest {repo}:{reference}")).await),
        }
        let by_digest = reference.parse::<Digest>().ok();
        let digest = match (header_digest(&resp), by_digest) {
            (Some(h), Some(d)) if h.algorithm == d.algorithm && h != d => {
                return Err(ContentError::Invalid(format!(
                    "HEAD manifest {repo}@{d}: registry {:?} answered digest {h}",
                    self.name
                )))
            }
            (_, Some(d)) => Some(d),
            (h, None) => h,
        };
        let size = super::blobs::header_len(&resp);
        let media_type = media_type_header(&resp).filter(|m| m != "application/json" && m != "text/plain");
        match (digest, size, media_type) {
            (Some(digest), Some(size), Some(media_type)) => {
                Ok(Some(Descriptor { media_type, digest, size, artifact_type: None }))
            }
            // Incomplete headers: the body says it all.
            _ => Ok(self.get_manifest_impl(repo, reference).await?.map(|m| Descriptor {
                media_type: m.media_type,
                digest: m.digest,
                size: m.bytes.len() as u64,
                artifact_type: None,
            })),
        }
    }

    pub(super) async fn get_manifest_impl(
        &self,
        repo: &str,
        reference: &str,
    ) -> ContentResult<Option<Manifest>> {
        let req = self.manifest_req(Method::GET, repo, reference, vec![pull_scope(repo)])?;
        let resp = self.send(&req).await?;
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(self.status_error(resp, &format!("GET manifest {repo}:{reference}")).await),
        }
        let content_type = media_type_header(&resp);
        let announced = header_digest(&resp);
        let bytes = self.read_limited(resp, MAX_MANIFEST, &format!("manifest {repo}:{reference}")).await?;
        let digest = match reference.parse::<Digest>() {
            Ok(d) => {
                let got = Digest::of(d.algorithm, &bytes);
                if got != d {
                    return Err(ContentError::Invalid(format!(
                        "manifest {repo}@{d} from registry {:?}: digest mismatch, the bytes hash to {got}",
                        self.name
                    )));
                }
                d
            }
            Err(_) => {
                let alg = announced.as_ref().map(|h| h.algorithm).unwrap_or(Algorithm::Sha256);
                let got = Digest::of(alg, &bytes);
                if let Some(h) = announced.filter(|h| *h != got) {
                    return Err(ContentError::Invalid(format!(
                        "manifest {repo}:{reference} from registry {:?}: Docker-Content-Digest says {h}, \
                         the bytes hash to {got}",
                        self.name
                    )));
                }
                got
            }
        };
        Ok(Some(Manifest { media_type: media_type_of(content_type.as_deref(), &bytes), digest, bytes }))
    }

    pub(super) async fn put_manifest_impl(
        &self,
        repo: &str,
        reference: &str,
        manifest: &Manifest,
    ) -> ContentResult<()> {
        let got = Digest::of(manifest.digest.algorithm, &manifest.bytes);
        if got != manifest.digest {
            return Err(ContentError::Invalid(format!(
                "manifest {}: the bytes hash to {got}",
                manifest.digest
            )));
        }
        let mut req = self.manifest_req(Method::PUT, repo, reference, vec![push_scope(repo)])?;
        let ct = HeaderValue::from_str(&manifest.media_type).map_err(|_| {
            ContentError::Invalid(format!(
                "manifest media type {:?} is not a valid header",
                manifest.media_type
            ))
        })?;
        req.headers.insert(CONTENT_TYPE, ct);
        req.body = Some(manifest.bytes.clone());
        let resp = self.send(&req).await?;
        if !matches!(resp.status(), StatusCode::CREATED | StatusCode::OK | StatusCode::ACCEPTED) {
            return Err(self.status_error(resp, &format!("PUT manifest {repo}:{reference}")).await);
        }
        if let Some(h) = header_digest(&resp) {
            if h.algorithm == manifest.digest.algorithm && h != manifest.digest {
                return Err(ContentError::Invalid(format!(
                    "PUT manifest {repo}:{reference}: registry {:?} stored {h}, not {}",
                    self.name, manifest.digest
                )));
            }
        }
        if resp.headers().contains_key("oci-subject") {
            return Ok(());
        }
        // No referrers support announced: keep the tag-schema index of the subject.
        let Ok(parsed) = crate::registry::manifest::parse(Some(&manifest.media_type), &manifest.bytes) else {
            return Ok(());
        };
        let Some(subject) = parsed.subject else { return Ok(()) };
        let mut entry = json!({
            "mediaType": manifest.media_type,
            "digest": manifest.digest.to_string(),
            "size": manifest.bytes.len(),
        });
        if !parsed.artifact_type.is_empty() {
            entry["artifactType"] = json!(parsed.artifact_type);
        }
        if !parsed.annotations.is_empty() {
            entry["annotations"] = Value::Object(parsed.annotations);
        }
        self.add_to_referrers_tag(repo, &subject.digest, entry).await
    }

    /// Adds `entry` (a descriptor) to the index under the referrers tag of `subject`.
    async fn add_to_referrers_tag(&self, repo: &str, subject: &Digest, entry: Value) -> ContentResult<()> {
        let tag = referrers_tag(subject);
        let mut manifests: Vec<Value> = match self.get_manifest_impl(repo, &tag).await? {
            Some(m) if is_index(&m.media_type) => {
                let v: Value = serde_json::from_slice(&m.bytes).unwrap_or(Value::Null);
                v.get("manifests").and_then(Value::as_array).cloned().unwrap_or_default()
            }
            _ => vec![],
        };
        if manifests.iter().any(|m| m.get("digest") == entry.get("digest")) {
            return Ok(());
        }
        manifests.push(entry);
        let body = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": manifests,
        }))
        .expect("JSON serialises");
        let digest = Digest::sha256(&body);
        let mut req = self.manifest_req(Method::PUT, repo, &tag, vec![push_scope(repo)])?;
        req.headers.insert(CONTENT_TYPE, HeaderValue::from_static(OCI_INDEX));
        req.body = Some(Bytes::from(body));
        let resp = self.send(&req).await?;
        if !resp.status().is_success() {
            return Err(self
                .status_error(resp, &format!("PUT referrers index {repo}:{tag} ({digest})"))
                .await);
        }
        Ok(())
    }

    pub(super) async fn delete_manifest_impl(&self, repo: &str, digest: &Digest) -> ContentResult<bool> {
        let scopes = vec![format!("repository:{repo}:delete")];
        let req = self.manifest_req(Method::DELETE, repo, &digest.to_string(), scopes)?;
        let resp = self.send(&req).await?;
        match resp.status() {
            StatusCode::ACCEPTED | StatusCode::OK | StatusCode::NO_CONTENT => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.status_error(resp, &format!("DELETE manifest {repo}@{digest}")).await),
        }
    }

    /// Every string of `field` over the pages of a listing from `first` (`n` in its query),
    /// following `Link`; `None` when the first page is 404.
    async fn list_pages(
        &self,
        first: Url,
        scopes: Vec<String>,
        field: &str,
        what: &str,
    ) -> ContentResult<Option<Vec<String>>> {
        let mut out = vec![];
        let mut url = first;
        let mut seen = std::collections::HashSet::new();
        for page in 0..MAX_PAGES {
            let req = Req::new(Method::GET, url.clone(), scopes.clone(), self.timeout);
            let resp = self.send(&req).await?;
            match resp.status() {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND if page == 0 => return Ok(None),
                _ => return Err(self.status_error(resp, what).await),
            }
            let next = next_link(resp.headers());
            let body = self.read_limited(resp, MAX_LISTING_PAGE, what).await?;
            let v: Value = serde_json::from_slice(&body).map_err(|e| {
                ContentError::Invalid(format!("{what}: registry {:?} sent no JSON: {e}", self.name))
            })?;
            for s in v.get(field).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
                if out.len() >= MAX_LISTING_ENTRIES {
                    return Err(ContentError::Invalid(format!(
                        "{what}: more than {MAX_LISTING_ENTRIES} entries"
                    )));
                }
                out.push(s.to_string());
            }
            match next {
                Some(n) => {
                    url = self.resolve(&n)?;
                    if !seen.insert(url.to_string()) {
                        break;
                    }
                }
                None => break,
            }
        }
        Ok(Some(out))
    }

    pub(super) async fn tags_impl(&self, repo: &str) -> ContentResult<Vec<String>> {
        check_repo(repo)?;
        let mut url = self.endpoint_url(&format!("/v2/{repo}/tags/list"))?;
        url.query_pairs_mut().append_pair("n", &self.page_size.to_string());
        let tags = self.list_pages(url, vec![pull_scope(repo)], "tags", &format!("tags of {repo}")).await?;
        Ok(tags.unwrap_or_default())
    }

    pub(super) async fn catalog_pages(&self) -> ContentResult<Vec<String>> {
        let mut url = self.endpoint_url("/v2/_catalog")?;
        url.query_pairs_mut().append_pair("n", &self.page_size.to_string());
        let scopes = vec!["registry:catalog:*".to_string()];
        let repos = self.list_pages(url, scopes, "repositories", "catalog").await?;
        repos.ok_or_else(|| {
            ContentError::NotFound(format!(
                "registry {:?} has no catalog (/v2/_catalog answered 404)",
                self.name
            ))
        })
    }

    pub(super) async fn referrers_impl(
        &self,
        repo: &str,
        subject: &Digest,
    ) -> ContentResult<Vec<Descriptor>> {
        check_repo(repo)?;
        let what = format!("referrers of {repo}@{subject}");
        let mut url = self.endpoint_url(&format!("/v2/{repo}/referrers/{subject}"))?;
        let mut out = vec![];
        let mut seen = std::collections::HashSet::new();
        for page in 0..MAX_PAGES {
            let mut req = Req::new(Method::GET, url.clone(), vec![pull_scope(repo)], self.timeout);
            req.headers.insert(ACCEPT, HeaderValue::from_static(OCI_INDEX));
            let resp = self.send(&req).await?;
            match resp.status() {
                StatusCode::OK => {}
                // No referrers API: the tag schema.
                StatusCode::NOT_FOUND if page == 0 => return self.referrers_by_tag(repo, subject).await,
                _ => return Err(self.status_error(resp, &what).await),
            }
            let next = next_link(resp.headers());
            let body = self.read_limited(resp, MAX_LISTING_PAGE, &what).await?;
            out.extend(index_entries(&body)?);
            if out.len() > MAX_LISTING_ENTRIES {
                return Err(ContentError::Invalid(format!(
                    "{what}: more than {MAX_LISTING_ENTRIES} entries"
                )));
            }
            match next {
                Some(n) => {
                    url = self.resolve(&n)?;
                    if !seen.insert(url.to_string()) {
                        break;
                    }
                }
                None => break,
            }
        }
        Ok(out)
    }

    async fn referrers_by_tag(&self, repo: &str, subject: &Digest) -> ContentResult<Vec<Descriptor>> {
        match self.get_manifest_impl(repo, &referrers_tag(subject)).await {
            Ok(Some(m)) if is_index(&m.media_type) => index_entries(&m.bytes),
            Ok(_) | Err(ContentError::NotFound(_)) => Ok(vec![]),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_and_tags() {
        assert_eq!(media_type_of(Some(OCI_INDEX), b"{}"), OCI_INDEX);
        assert_eq!(media_type_of(Some("application/json"), br#"{"mediaType":"x/y"}"#), "x/y");
        assert_eq!(media_type_of(None, br#"{"manifests":[]}"#), OCI_INDEX);
        assert_eq!(media_type_of(None, b"{}"), OCI_MANIFEST);
        let d = Digest::sha256(b"x");
        assert_eq!(referrers_tag(&d), format!("sha256-{}", d.hex));
        let d512 = Digest::of(Algorithm::Sha512, b"x");
        let t = referrers_tag(&d512);
        assert_eq!(t.len(), 71);
        assert!(crate::registry::path::valid_tag(&t));
    }

    #[test]
    fn index_entries_skip_bad_digests() {
        let d = Digest::sha256(b"sig");
        let body = json!({"manifests":[
            {"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": 3, "artifactType": "application/x-sig"},
            {"mediaType": OCI_MANIFEST, "digest": "nope", "size": 3}
        ]});
        let e = index_entries(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(
            e,
            [Descriptor {
                media_type: OCI_MANIFEST.into(),
                digest: d,
                size: 3,
                artifact_type: Some("application/x-sig".into())
            }]
        );
        assert!(index_entries(b"not json").is_err());
    }
}

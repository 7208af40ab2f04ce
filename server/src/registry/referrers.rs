//! `/v2/<name>/referrers/<digest>` (OCI 1.1), with the `artifactType` filter.

use super::*;

pub(super) async fn referrers(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    digest: &Digest,
    pairs: &[(String, String)],
) -> OciResult<Response> {
    authorize(state, who, name, Action::Pull).await?;
    let filter = query(pairs, "artifactType").filter(|t| !t.is_empty());
    let found = meta::referrers(&state.db, name, digest, filter).await?;
    let mut manifests = Vec::with_capacity(found.len());
    for r in found {
        // The spec's artifactType: the manifest's own, else an image manifest's config media
        // type; an index without one has none (the field is omitted, never "").
        let artifact_type = if !r.artifact_type.is_empty() {
            Some(r.artifact_type.clone())
        } else if r.media_type == manifest::OCI_MANIFEST || r.media_type == manifest::DOCKER_MANIFEST {
            let d: Digest = r.digest.parse().map_err(|_| OciError::internal("stored digest is invalid"))?;
            manifest::config_media_type(&state.storage.read_all(&d.blob_key()).await?)
        } else {
            None
        };
        if filter.is_some() && artifact_type.as_deref() != filter {
            continue;
        }
        manifests.push((r, artifact_type));
    }
    let manifests: Vec<_> = manifests
        .into_iter()
        .map(|(r, artifact_type)| {
            let mut d = json!({
                "mediaType": r.media_type,
                "digest": r.digest,
                "size": r.size,
            });
            if let Some(t) = artifact_type {
                d["artifactType"] = json!(t);
            }
            if let Ok(serde_json::Value::Object(a)) =
                serde_json::from_str::<serde_json::Value>(&r.annotations)
            {
                if !a.is_empty() {
                    d["annotations"] = serde_json::Value::Object(a);
                }
            }
            d
        })
        .collect();
    let body = json!({ "schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": manifests });
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(manifest::OCI_INDEX));
    if filter.is_some() {
        resp.headers_mut().insert("oci-filters-applied", HeaderValue::from_static("artifactType"));
    }
    Ok(resp)
}

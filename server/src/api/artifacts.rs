//! Artifacts under `/api/v2.0/projects/{p}/repositories/{r}/artifacts` (Harbor's shapes): list,
//! get, delete, copy (`?from=`), accessories and additions, and the `Artifact` model they share
//! with tags.

use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use crate::api::error::{ApiError, AppPath, AppQuery};
use crate::api::projects::{percent_decode, require, resolve};
use crate::api::query::{parse_sort, Query};
use crate::api::repositories::locate;
use crate::api::{pagination_headers, Pagination};
use crate::artifacts::{self, write, ArtifactRow, RepoRow, TagRow};
use crate::auth::Caller;
use crate::db::{rfc3339, ZERO_TIME};
use crate::projects::Project;
use crate::rbac::{Act, Resource};
use crate::registry::digest::Digest;
use crate::registry::{manifest, meta};
use crate::state::AppState;

pub use app::rest::artifacts::{Accessory, Artifact, Reference, Tag};

/// Harbor's `Tag`; `immutable` when one of the project's `rules` protects it in `repository`.
pub fn tag_model(t: &TagRow, repository: &str, rules: &[crate::immutable::Rule]) -> Tag {
    Tag {
        id: t.id,
        repository_id: t.repository_id,
        artifact_id: t.artifact_id,
        name: t.name.clone(),
        push_time: rfc3339(t.pushed_at),
        pull_time: ZERO_TIME.into(),
        immutable: crate::immutable::is_immutable(rules, repository, &t.name).is_some(),
    }
}

const IMAGE_MANIFESTS: [&str; 2] =
    ["application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"];
const IMAGE_CONFIGS: [&str; 2] =
    ["application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"];

/// Harbor's `extra_attrs` of an image: the config blob's `architecture`, `os`, `config`,
/// `created` and `author` (those present). `None` for anything that is not an image, or whose
/// blobs cannot be read (the listing goes on without them).
async fn image_attrs(state: &AppState, a: &ArtifactRow) -> Option<Value> {
    if !IMAGE_MANIFESTS.contains(&a.media_type.as_str()) {
        return None;
    }
    let digest: Digest = a.digest.parse().ok()?;
    let body = state.storage.read_all(&digest.blob_key()).await.ok()?;
    let m: Value = serde_json::from_slice(&body).ok()?;
    if !IMAGE_CONFIGS.contains(&m["config"]["mediaType"].as_str().unwrap_or("")) {
        return None;
    }
    let config: Digest = m["config"]["digest"].as_str()?.parse().ok()?;
    if m["config"]["size"].as_u64().is_none_or(|s| s > manifest::MAX_MANIFEST_SIZE as u64) {
        return None;
    }
    let c: Value = serde_json::from_slice(&state.storage.read_all(&config.blob_key()).await.ok()?).ok()?;
    let mut attrs = serde_json::Map::new();
    for k in ["architecture", "author", "config", "created", "os"] {
        if let Some(v) = c.get(k) {
            attrs.insert(k.into(), v.clone());
        }
    }
    Some(Value::Object(attrs))
}

/// Harbor's `addition_links` of an image (Harbor double-encodes `/` in the repository name).
fn addition_links(project: &str, a: &ArtifactRow) -> Value {
    let repo = a
        .repository_name
        .strip_prefix(project)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(&a.repository_name);
    let href = format!(
        "/api/v2.0/projects/{project}/repositories/{}/artifacts/{}/additions/build_history",
        repo.replace('/', "%252F"),
        a.digest
    );
    serde_json::json!({ "build_history": { "href": href, "absolute": false } })
}

fn artifact_model(a: &ArtifactRow, tags: Option<&[TagRow]>, rules: &[crate::immutable::Rule]) -> Artifact {
    Artifact {
        id: a.id,
        kind: artifacts::kind(&a.media_type, &a.artifact_type).into(),
        media_type: a.media_type.clone(),
        manifest_media_type: a.media_type.clone(),
        artifact_type: a.artifact_type.clone(),
        project_id: a.project_id,
        repository_id: a.repository_id,
        repository_name: a.repository_name.clone(),
        digest: a.digest.clone(),
        size: a.size,
        push_time: rfc3339(a.pushed_at),
        pull_time: if a.pulled_at > 0 { rfc3339(a.pulled_at) } else { ZERO_TIME.into() },
        pull_count: a.pull_count,
        annotations: serde_json::from_str(&a.annotations).unwrap_or(Value::Object(Default::default())),
        tags: tags.map(|t| t.iter().map(|t| tag_model(t, &a.repository_name, rules)).collect()),
        references: vec![],
        accessories: None,
        labels: None,
        extra_attrs: None,
        addition_links: None,
    }
}

fn accessory_model(subject: &ArtifactRow, a: &ArtifactRow) -> Accessory {
    Accessory {
        id: a.id,
        artifact_id: a.id,
        subject_artifact_id: subject.id,
        subject_artifact_digest: subject.digest.clone(),
        digest: a.digest.clone(),
        size: a.size,
        kind: artifacts::accessory_kind(&a.artifact_type),
        artifact_type: a.artifact_type.clone(),
        creation_time: rfc3339(a.pushed_at),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArtifactListParams {
    /// Keys: `tags` (name, `~part`, `*` any, `nil` none), `digest`, `media_type`,
    /// `artifact_type`, `push_time`, `pull_time`.
    pub q: Option<String>,
    /// `push_time`, `pull_time`, `size`, `digest` (`-` for descending); default `-push_time`.
    pub sort: Option<String>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
    /// Include tags (default true).
    pub with_tag: Option<bool>,
    /// Include accessories (signatures, SBOMs; default false).
    pub with_accessory: Option<bool>,
    /// Include labels (default false).
    pub with_label: Option<bool>,
}

/// What `enrich` adds to each artifact.
#[derive(Debug, Clone, Copy)]
struct With {
    tags: bool,
    accessories: bool,
    labels: bool,
}

async fn enrich(state: &AppState, rows: &[ArtifactRow], with: With) -> Result<Vec<Artifact>, ApiError> {
    let ids: Vec<i64> = rows.iter().map(|a| a.id).collect();
    let tags = if with.tags { Some(artifacts::tags_of(&state.db, &ids).await?) } else { None };
    // The `immutable` flag of the tags: each project's rules, read once.
    let mut rules: std::collections::HashMap<i64, Vec<crate::immutable::Rule>> = Default::default();
    if with.tags {
        for a in rows {
            if let std::collections::hash_map::Entry::Vacant(e) = rules.entry(a.project_id) {
                e.insert(crate::immutable::rules_of(&state.db.pool, a.project_id).await?);
            }
        }
    }
    let mut labels =
        if with.labels { Some(crate::labels::of_artifacts(&state.db, &ids).await?) } else { None };
    // The config blobs of the page's images, a few at a time.
    // (Boxed futures collected first: a closure in the stream's type is not `Send` for the
    // router's higher-ranked lifetimes.)
    let reads: Vec<futures::future::BoxFuture<'_, Option<Value>>> =
        rows.iter().map(|a| Box::pin(image_attrs(state, a)) as _).collect();
    let attrs: Vec<Option<Value>> = futures::stream::iter(reads).buffered(8).collect().await;
    let mut out = Vec::with_capacity(rows.len());
    for (a, attrs) in rows.iter().zip(attrs) {
        let mut m = artifact_model(
            a,
            tags.as_ref().map(|t| t.get(&a.id).map(Vec::as_slice).unwrap_or(&[])),
            rules.get(&a.project_id).map(Vec::as_slice).unwrap_or(&[]),
        );
        if let Some(l) = labels.as_mut() {
            m.labels = Some(
                l.remove(&a.id).unwrap_or_default().iter().map(crate::labels::LabelRow::to_rest).collect(),
            );
        }
        if attrs.is_some() {
            m.addition_links =
                Some(addition_links(crate::registry::meta::project_name(&a.repository_name), a));
        }
        m.extra_attrs = attrs;
        if app::rest::artifacts::is_index(&a.media_type) {
            m.references = artifacts::references(&state.db, a)
                .await?
                .into_iter()
                .map(|(d, p, child)| Reference {
                    parent_id: a.id,
                    child_id: child,
                    child_digest: d,
                    platform: serde_json::from_str(&p).ok(),
                })
                .collect();
        }
        if with.accessories {
            m.accessories = Some(
                artifacts::accessories(&state.db, a).await?.iter().map(|x| accessory_model(a, x)).collect(),
            );
        }
        out.push(m);
    }
    Ok(out)
}

/// `GET /api/v2.0/projects/{p}/repositories/{r}/artifacts`
#[utoipa::path(get, path = "/projects/{project_name_or_id}/repositories/{repository_name}/artifacts", tag = "artifact",
    params(("project_name_or_id" = String, Path), ("repository_name" = String, Path), ArtifactListParams),
    responses((status = 200, body = [Artifact], headers(("X-Total-Count" = i64), ("Link" = String))), (status = 400), (status = 404)))]
pub async fn list_artifacts(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    AppPath((key, repo)): AppPath<(String, String)>,
    AppQuery(p): AppQuery<ArtifactListParams>,
) -> Result<impl IntoResponse, ApiError> {
    let (_, r) = locate(&state, &caller, &headers, &key, &repo, Resource::Artifact, Act::List).await?;
    let (page, page_size) = Pagination { page: p.page, page_size: p.page_size }.resolve()?;
    let q = Query::parse(p.q.as_deref().unwrap_or(""))?;
    let (rows, total) =
        artifacts::list_artifacts(&state.db, r.id, &q, &parse_sort(p.sort.as_deref())?, page, page_size)
            .await?;
    let with = With {
        tags: p.with_tag.unwrap_or(true),
        accessories: p.with_accessory.unwrap_or(false),
        labels: p.with_label.unwrap_or(false),
    };
    let items = enrich(&state, &rows, with).await?;
    Ok((pagination_headers(&uri, page, page_size, total), Json(items)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectArtifactListParams {
    /// As for a repository's artifacts.
    pub q: Option<String>,
    /// As for a repository's artifacts; default `-push_time`.
    pub sort: Option<String>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
    /// Include tags (default true).
    pub with_tag: Option<bool>,
    /// Include accessories (default false).
    pub with_accessory: Option<bool>,
    /// Include labels (default false).
    pub with_label: Option<bool>,
    /// Harbor's "latest artifact of each repository"; not supported here (400 when true).
    pub latest_in_repository: Option<bool>,
}

/// `GET /api/v2.0/projects/{p}/artifacts`: the artifacts of every repository of the project
/// (Harbor's `listArtifactsOfProject`), newest first.
#[utoipa::path(get, path = "/projects/{project_name_or_id}/artifacts", tag = "project",
    params(("project_name_or_id" = String, Path), ProjectArtifactListParams),
    responses((status = 200, body = [Artifact], headers(("X-Total-Count" = i64), ("Link" = String))), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn list_project_artifacts(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    AppPath(key): AppPath<String>,
    AppQuery(p): AppQuery<ProjectArtifactListParams>,
) -> Result<impl IntoResponse, ApiError> {
    let project = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &project, Resource::Artifact, Act::List).await?;
    if p.latest_in_repository == Some(true) {
        return Err(ApiError::BadRequest("latest_in_repository is not supported by this server".into()));
    }
    let (page, page_size) = Pagination { page: p.page, page_size: p.page_size }.resolve()?;
    let q = Query::parse(p.q.as_deref().unwrap_or(""))?;
    let (rows, total) = artifacts::list_artifacts_in(
        &state.db,
        artifacts::ArtifactScope::Project(project.id),
        &q,
        &parse_sort(p.sort.as_deref())?,
        page,
        page_size,
    )
    .await?;
    let with = With {
        tags: p.with_tag.unwrap_or(true),
        accessories: p.with_accessory.unwrap_or(false),
        labels: p.with_label.unwrap_or(false),
    };
    let items = enrich(&state, &rows, with).await?;
    Ok((pagination_headers(&uri, page, page_size, total), Json(items)))
}

pub(super) async fn locate_artifact(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    key: &str,
    repo: &str,
    reference: &str,
    need: (Resource, Act),
) -> Result<(Project, RepoRow, ArtifactRow), ApiError> {
    let (p, r) = locate(state, caller, headers, key, repo, need.0, need.1).await?;
    let reference = percent_decode(reference);
    if reference.contains(':') {
        reference.parse::<Digest>().map_err(|e| ApiError::BadRequest(format!("invalid digest: {e}")))?;
    }
    let a = artifacts::get_artifact(&state.db, r.id, &reference)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("artifact {}@{reference} not found", r.name)))?;
    Ok((p, r, a))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArtifactParams {
    pub with_tag: Option<bool>,
    pub with_accessory: Option<bool>,
    /// Include labels (default false).
    pub with_label: Option<bool>,
}

/// `GET /api/v2.0/projects/{p}/repositories/{r}/artifacts/{reference}` (digest or tag)
#[utoipa::path(get, path = "/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}", tag = "artifact",
    params(("project_name_or_id" = String, Path), ("repository_name" = String, Path), ("reference" = String, Path, description = "digest or tag"), ArtifactParams),
    responses((status = 200, body = Artifact), (status = 404)))]
pub async fn get_artifact(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, repo, reference)): AppPath<(String, String, String)>,
    AppQuery(p): AppQuery<ArtifactParams>,
) -> Result<Json<Artifact>, ApiError> {
    let (_, _, a) =
        locate_artifact(&state, &caller, &headers, &key, &repo, &reference, (Resource::Artifact, Act::Read))
            .await?;
    let with = With {
        tags: p.with_tag.unwrap_or(true),
        accessories: p.with_accessory.unwrap_or(true),
        labels: p.with_label.unwrap_or(false),
    };
    let mut items = enrich(&state, std::slice::from_ref(&a), with).await?;
    Ok(Json(items.remove(0)))
}

/// `DELETE /api/v2.0/projects/{p}/repositories/{r}/artifacts/{reference}`: the artifact, its
/// tags and its accessories (signatures, SBOMs), logically.
#[utoipa::path(delete, path = "/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}", tag = "artifact",
    params(("project_name_or_id" = String, Path), ("repository_name" = String, Path), ("reference" = String, Path)),
    responses((status = 200), (status = 403), (status = 404)))]
pub async fn delete_artifact(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, repo, reference)): AppPath<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let (p, r, a) = locate_artifact(
        &state,
        &caller,
        &headers,
        &key,
        &repo,
        &reference,
        (Resource::Artifact, Act::Delete),
    )
    .await?;
    // Accessories (an SBOM's signature too) and the index children it frees go with it, in
    // one transaction.
    for x in write::delete_artifact(&state.db, a.id).await? {
        state
            .audit
            .record(caller.event("delete", "artifact", format!("{}@{}", r.name, x.digest)).project(p.id));
    }
    crate::replication::on_artifact_event(
        &state,
        crate::replication::ArtifactEvent::Delete,
        &r.name,
        &a.digest,
    );
    Ok(StatusCode::OK)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CopyParams {
    /// `<project>/<repository>:<tag>` or `<project>/<repository>@<digest>`.
    pub from: String,
}

/// `POST /api/v2.0/projects/{p}/repositories/{r}/artifacts?from=…`: copies an artifact (with its
/// children) from a repository the caller may pull from; a tag in `from` is copied too.
#[utoipa::path(post, path = "/projects/{project_name_or_id}/repositories/{repository_name}/artifacts", tag = "artifact",
    params(("project_name_or_id" = String, Path), ("repository_name" = String, Path), CopyParams),
    responses((status = 201, headers(("Location" = String))), (status = 400), (status = 403), (status = 404)))]
pub async fn copy(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, repo)): AppPath<(String, String)>,
    AppQuery(c): AppQuery<CopyParams>,
) -> Result<impl IntoResponse, ApiError> {
    let project = resolve(&state, &headers, &key).await?;
    require(&state, &caller, &project, Resource::Artifact, Act::Create).await?;
    crate::api::projects::require_not_proxy(&project)?;
    let dst = format!("{}/{}", project.name, percent_decode(&repo));
    if !crate::registry::path::valid_name(&dst) {
        return Err(ApiError::BadRequest(format!("invalid repository name {dst:?}")));
    }
    let (src, reference) = match c.from.split_once('@') {
        Some((s, d)) => (s.to_string(), d.to_string()),
        None => match c.from.rsplit_once(':') {
            Some((s, t)) if !t.contains('/') => (s.to_string(), t.to_string()),
            _ => {
                return Err(ApiError::BadRequest(
                    "from must be <project>/<repository>:<tag> or @<digest>".into(),
                ))
            }
        },
    };
    let src_project = crate::projects::get_by_name(&state.db, meta::project_name(&src))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("repository {src} not found")))?;
    require(&state, &caller, &src_project, Resource::Repository, Act::Pull).await?;
    let src_repo = artifacts::get_repository(&state.db, &src, false)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("repository {src} not found")))?;
    let a = artifacts::get_artifact(&state.db, src_repo.id, &reference)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("artifact {} not found", c.from)))?;
    let digest: Digest =
        a.digest.parse().map_err(|e| ApiError::internal(anyhow::anyhow!("stored digest: {e}")))?;
    let tag = (!reference.contains(':')).then_some(reference.as_str());
    write::copy_manifest(&state, project.id, &src, &dst, &digest, tag, &mut Default::default()).await?;
    state.audit.record(
        caller
            .event("create", "artifact", format!("{dst}@{digest}"))
            .project(project.id)
            .detail(format!("copied from {}", c.from)),
    );
    let pushed = tag.map(str::to_string).unwrap_or_else(|| digest.to_string());
    crate::replication::on_artifact_event(&state, crate::replication::ArtifactEvent::Push, &dst, &pushed);
    let mut h = HeaderMap::new();
    let loc = format!(
        "/api/v2.0/projects/{}/repositories/{}/artifacts/{digest}",
        project.name,
        percent_decode(&repo).replace('/', "%252F")
    );
    if let Ok(v) = HeaderValue::from_str(&loc) {
        h.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, h))
}

/// `GET …/artifacts/{reference}/accessories`: signatures, SBOMs and other referrers.
#[utoipa::path(get, path = "/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/accessories", tag = "artifact",
    params(("project_name_or_id" = String, Path), ("repository_name" = String, Path), ("reference" = String, Path)),
    responses((status = 200, body = [Accessory])))]
pub async fn accessories(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, repo, reference)): AppPath<(String, String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let (_, _, a) =
        locate_artifact(&state, &caller, &headers, &key, &repo, &reference, (Resource::Accessory, Act::List))
            .await?;
    let items: Vec<Accessory> =
        artifacts::accessories(&state.db, &a).await?.iter().map(|x| accessory_model(&a, x)).collect();
    let mut h = HeaderMap::new();
    h.insert("x-total-count", HeaderValue::from(items.len() as u64));
    Ok((h, Json(items)))
}

/// `GET …/artifacts/{reference}/additions/{addition}`: `manifest` (the raw manifest, as
/// pushed), `config` (an image's config JSON) and `build_history` (the config's `history`, as
/// Harbor answers it). Reading these is not a pull: no pull count, no audit row.
#[utoipa::path(get, path = "/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/additions/{addition}", tag = "artifact",
    params(("project_name_or_id" = String, Path), ("repository_name" = String, Path), ("reference" = String, Path),
        ("addition" = String, Path, description = "manifest, config or build_history")),
    responses((status = 200, body = Object), (status = 404)))]
pub async fn addition(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppPath((key, repo, reference, addition)): AppPath<(String, String, String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let (_, _, a) =
        locate_artifact(&state, &caller, &headers, &key, &repo, &reference, (Resource::Artifact, Act::Read))
            .await?;
    let digest: Digest = a
        .digest
        .parse()
        .map_err(|e| ApiError::internal(anyhow::anyhow!("stored digest {}: {e}", a.digest)))?;
    let manifest_bytes = state.storage.read_all(&digest.blob_key()).await.map_err(ApiError::internal)?;
    let json_response = |body: bytes::Bytes, media_type: &str| {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(media_type) {
            h.insert(header::CONTENT_TYPE, v);
        }
        (h, body)
    };
    if addition == "manifest" {
        return Ok(json_response(manifest_bytes, &a.media_type));
    }
    if addition != "config" && addition != "build_history" {
        return Err(ApiError::NotFound(format!(
            "addition {addition:?} not found; this server has manifest, config and build_history"
        )));
    }
    let m: Value = serde_json::from_slice(&manifest_bytes).unwrap_or_default();
    let config = m["config"]["digest"].as_str().and_then(|d| d.parse::<Digest>().ok());
    let config_size = m["config"]["size"].as_u64().unwrap_or(u64::MAX);
    let Some(config) = config.filter(|_| config_size <= manifest::MAX_MANIFEST_SIZE as u64) else {
        return Err(ApiError::NotFound(format!("{} has no image config", a.digest)));
    };
    let bytes = state.storage.read_all(&config.blob_key()).await.map_err(ApiError::internal)?;
    if addition == "config" {
        return Ok(json_response(bytes, "application/json"));
    }
    let c: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let history = match c.get("history") {
        Some(h @ Value::Array(_)) => h.clone(),
        _ => Value::Array(vec![]),
    };
    Ok(json_response(history.to_string().into(), "application/json"))
}

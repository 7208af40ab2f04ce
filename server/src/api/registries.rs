//! Registry endpoints under `/api/v2.0/registries` and the registry types under
//! `/api/v2.0/replication/adapters` and `/replication/adapterinfos` (goharbor/harbor
//! `src/server/v2.0/handler/registry.go`). System admins only, as Harbor (the system-scope
//! `registry` and `replication-adapter` resources).
//!
//! Service functions are `replication::endpoints`; a ping goes through the type's adapter
//! (`replication::adapters::build(..).health()`). **A stored secret never leaves the server**:
//! responses carry `*****` in its place, audit rows name what changed but not the value.

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::api::query::{parse_sort, Query};
use crate::api::{pagination_headers, Pagination};
use crate::auth::Caller;
use crate::db::query::{order_by, Col, Sql};
use crate::replication::adapter::AdapterType;
use crate::replication::adapters;
use crate::replication::endpoints::{self, Change, EndpointError, Fields};
use crate::state::AppState;

pub use app::rest::registries::{
    FilterStyle, Registry, RegistryCredential, RegistryCredentialReq, RegistryEndpoint, RegistryInfo,
    RegistryPing, RegistryProviderCredentialPattern, RegistryProviderEndpointPattern, RegistryProviderInfo,
    RegistryProviderInfos, RegistryReq, RegistryUpdate, MASKED_SECRET,
};

impl From<EndpointError> for ApiError {
    fn from(e: EndpointError) -> Self {
        match e {
            EndpointError::Invalid(m) => ApiError::BadRequest(m),
            EndpointError::Exists(_) => ApiError::Conflict(e.to_string()),
            EndpointError::NotFound(_) => ApiError::NotFound(e.to_string()),
            EndpointError::InUse(m) => ApiError::PreconditionFailed(m),
            EndpointError::Secret { .. } => {
                tracing::error!(error = %e, "stored registry secret unreadable");
                ApiError::PreconditionFailed(format!(
                    "{e}; was the encryption key changed? Enter the registry's secret again"
                ))
            }
            EndpointError::Db(e) => e.into(),
        }
    }
}

/// A row as answered: the secret masked.
pub fn registry_json(r: &endpoints::Registry) -> Registry {
    r.to_rest()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `name=~x` (substring) or `name=x`, `type=harbor`, `url=~host`.
    pub q: Option<String>,
    /// `name`, `creation_time`, `update_time`, each optionally `-` (descending).
    pub sort: Option<String>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
    /// Deprecated (Harbor): the same as `q=name=~x`.
    pub name: Option<String>,
}

/// What `q` may filter on.
pub const REGISTRY_KEYS: [(&str, Col); 3] =
    [("name", Col::Text("name")), ("type", Col::Keyword("type")), ("url", Col::Text("url"))];

/// What `sort` may order by.
const SORT_KEYS: [(&str, &str); 3] =
    [("name", "name"), ("creation_time", "created_at"), ("update_time", "updated_at")];

/// `GET /api/v2.0/registries`: newest first unless `sort` says otherwise.
#[utoipa::path(get, path = "/registries", tag = "registry", params(ListParams),
    responses((status = 200, body = [Registry], headers(("X-Total-Count" = i64), ("Link" = String))),
        (status = 400), (status = 401), (status = 403)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppQuery(p): AppQuery<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    let (page, size) = Pagination { page: p.page, page_size: p.page_size }.resolve()?;
    let mut conds = Sql::new();
    conds.filter(&Query::parse(p.q.as_deref().unwrap_or(""))?.terms, &REGISTRY_KEYS, &[])?;
    if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
        conds.push("lower(name) LIKE ? ESCAPE '\\'", crate::db::query::contains(name));
    }
    let order = order_by(&parse_sort(p.sort.as_deref())?, &SORT_KEYS, "created_at DESC", "id DESC")?;
    let (rows, total) = endpoints::list(&state.db, &conds, &order, page, size).await?;
    Ok((
        pagination_headers(&uri, page, size, total),
        Json(rows.iter().map(registry_json).collect::<Vec<_>>()),
    ))
}

/// `POST /api/v2.0/registries`: the status is `unknown` until a ping (creating does not
/// contact the registry; test it with `/registries/ping` first).
#[utoipa::path(post, path = "/registries", tag = "registry", request_body = RegistryReq,
    responses((status = 201, headers(("Location" = String))), (status = 400), (status = 401), (status = 403),
        (status = 409)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(req): AppJson<RegistryReq>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    let cred = req.credential.unwrap_or_default();
    let fields = Fields {
        name: req.name,
        kind: req.kind,
        url: req.url,
        description: req.description,
        credential_type: cred.kind,
        access_key: cred.access_key,
        access_secret: cred.access_secret,
        insecure: req.insecure,
        ca_certificate: req.ca_certificate.unwrap_or_default(),
    };
    let r = endpoints::create(&state.db, &state.secrets.encryption_key, fields).await?;
    state.audit.record(caller.event("create", "registry", &r.name).detail(format!("{} {}", r.kind, r.url)));
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v2.0/registries/{}", r.id)) {
        h.insert(axum::http::header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, h))
}

async fn load(state: &AppState, id: i64) -> Result<endpoints::Registry, ApiError> {
    Ok(endpoints::get(&state.db, id).await?.ok_or(EndpointError::NotFound(id))?)
}

/// `GET /api/v2.0/registries/{id}`: `status` is the last known health.
#[utoipa::path(get, path = "/registries/{id}", tag = "registry", params(("id" = i64, Path)),
    responses((status = 200, body = Registry), (status = 401), (status = 403), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<Json<Registry>, ApiError> {
    caller.require_sysadmin()?;
    Ok(Json(registry_json(&load(&state, id).await?)))
}

/// Names of the fields an update changed, for the audit row (never a value of the secret).
fn changed_fields(a: &endpoints::Registry, b: &endpoints::Registry) -> String {
    let mut out = Vec::new();
    let mut check = |name: &'static str, changed: bool| {
        if changed {
            out.push(name);
        }
    };
    check("name", a.name != b.name);
    check("description", a.description != b.description);
    check("url", a.url != b.url);
    check("credential_type", a.credential_type != b.credential_type);
    check("access_key", a.access_key != b.access_key);
    check("access_secret", a.sealed_secret != b.sealed_secret);
    check("insecure", a.insecure != b.insecure);
    check("ca_certificate", a.ca_certificate != b.ca_certificate);
    if out.is_empty() {
        "nothing changed".into()
    } else {
        format!("changed: {}", out.join(", "))
    }
}

/// `PUT /api/v2.0/registries/{id}`: absent fields are unchanged; without `access_secret` the
/// stored secret is kept unless the URL changes (then it is dropped, as Harbor does).
#[utoipa::path(put, path = "/registries/{id}", tag = "registry", params(("id" = i64, Path)),
    request_body = RegistryUpdate,
    responses((status = 200), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<RegistryUpdate>,
) -> Result<StatusCode, ApiError> {
    caller.require_sysadmin()?;
    let change = Change {
        name: req.name,
        description: req.description,
        url: req.url,
        credential_type: req.credential_type,
        access_key: req.access_key,
        access_secret: given_secret(req.access_secret),
        insecure: req.insecure,
        ca_certificate: req.ca_certificate,
    };
    let (before, after) = endpoints::update(&state.db, &state.secrets.encryption_key, id, change).await?;
    let mut detail = changed_fields(&before, &after);
    if before.name != after.name {
        detail.push_str(&format!(" (renamed from {:?})", before.name));
    }
    state.audit.record(caller.event("update", "registry", &after.name).detail(detail));
    Ok(StatusCode::OK)
}

/// `DELETE /api/v2.0/registries/{id}`: refused (412) while a replication policy or a
/// proxy-cache project uses it.
#[utoipa::path(delete, path = "/registries/{id}", tag = "registry", params(("id" = i64, Path)),
    responses((status = 200), (status = 401), (status = 403), (status = 404), (status = 412)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<StatusCode, ApiError> {
    caller.require_sysadmin()?;
    let r = endpoints::delete(&state.db, id).await?;
    state.audit.record(caller.event("delete", "registry", &r.name).detail(format!("{} {}", r.kind, r.url)));
    Ok(StatusCode::OK)
}

/// A secret in a request: the mask this API answers with (`*****`, sent back by a client that
/// PUTs what it read) means "unchanged", as an absent one does.
fn given_secret(s: Option<String>) -> Option<String> {
    s.filter(|s| s != MASKED_SECRET)
}

/// The endpoint a ping checks, and the stored registry whose status it reports on (`None`
/// for unsaved settings, or when the request replaced stored credentials).
async fn ping_target(
    state: &AppState,
    req: RegistryPing,
) -> Result<(crate::replication::adapter::Endpoint, Option<i64>), ApiError> {
    let req = RegistryPing { access_secret: given_secret(req.access_secret), ..req };
    let overrides = req.kind.is_some()
        || req.credential_type.is_some()
        || req.access_key.is_some()
        || req.access_secret.is_some();
    let mut e = match req.id {
        Some(id) => {
            let r = load(state, id).await?;
            if req.access_secret.is_some() {
                // The stored secret is not needed (nor decrypted) when a new one is given.
                let stored = endpoints::Registry { sealed_secret: String::new(), ..r };
                endpoints::endpoint(&state.secrets.encryption_key, &stored)?
            } else {
                endpoints::endpoint(&state.secrets.encryption_key, &r)?
            }
        }
        None => {
            let (Some(kind), Some(url)) = (req.kind.clone(), req.url.clone()) else {
                return Err(ApiError::BadRequest("type or url cannot be empty".into()));
            };
            let mut f = Fields {
                kind,
                url,
                insecure: req.insecure.unwrap_or(false),
                ca_certificate: req.ca_certificate.clone().unwrap_or_default(),
                ..Default::default()
            };
            endpoints::validate_reach(&mut f)?;
            endpoints::unsaved_endpoint(f)
        }
    };
    // For a stored registry, its URL and TLS settings stand (Harbor: saved credentials are
    // never sent to a URL given in the request); type and credential fields may be replaced.
    if let Some(kind) = req.kind {
        endpoints::check_type(&kind)?;
        e.kind = kind;
    }
    if let Some(t) = req.credential_type {
        endpoints::check_credential_type(&t)?;
        e.credential_type = t;
    }
    if let Some(k) = req.access_key {
        e.access_key = k;
    }
    if let Some(s) = req.access_secret {
        e.access_secret = s;
    }
    if e.access_key.len() > endpoints::MAX_ACCESS_KEY || e.access_secret.len() > endpoints::MAX_ACCESS_SECRET
    {
        return Err(ApiError::BadRequest("access_key or access_secret is too long".into()));
    }
    if e.credential_type.is_empty() && !(e.access_key.is_empty() && e.access_secret.is_empty()) {
        e.credential_type = "basic".into();
    }
    let stored = req.id.filter(|_| !overrides);
    Ok((e, stored))
}

/// `POST /api/v2.0/registries/ping`: 200 when the registry answers and accepts the
/// credentials, else 400 "the registry is unhealthy: why" (Harbor's answer). A ping of a
/// stored registry with its stored settings records the result as its `status`.
#[utoipa::path(post, path = "/registries/ping", tag = "registry", request_body = RegistryPing,
    responses((status = 200), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn ping(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(req): AppJson<RegistryPing>,
) -> Result<StatusCode, ApiError> {
    caller.require_sysadmin()?;
    let (endpoint, stored) = ping_target(&state, req).await?;
    let result = match adapters::build(&endpoint) {
        Ok(adapter) => adapter.health().await,
        Err(e) => Err(e),
    };
    if let Some(id) = stored {
        let status = if result.is_ok() { endpoints::HEALTHY } else { endpoints::UNHEALTHY };
        endpoints::set_status(&state.db, id, status).await?;
    }
    match result {
        Ok(()) => Ok(StatusCode::OK),
        Err(e) => {
            tracing::info!(registry = %endpoint.name, url = %endpoint.url, error = %e, "registry ping failed");
            Err(ApiError::BadRequest(format!("the registry is unhealthy: {e}")))
        }
    }
}

/// Resource types a rule may select (`resource` filter).
const RESOURCE_TYPES: [&str; 2] = ["image", "artifact"];

/// What the rule editor shows for a type: `name`/`tag` as text inputs, `label` as a list, and
/// always the `resource` radio (Harbor appends it to every type's filters).
pub fn registry_info(t: &AdapterType) -> RegistryInfo {
    let style = |kind: &str, style: &str, values: &[&str]| FilterStyle {
        kind: kind.into(),
        style: style.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    };
    let mut filters: Vec<FilterStyle> = t
        .filters
        .iter()
        .filter(|f| **f != "resource")
        .map(|f| match *f {
            "label" => style(f, "list", &[]),
            other => style(other, "input", &[]),
        })
        .collect();
    filters.push(style("resource", "radio", &RESOURCE_TYPES));
    RegistryInfo {
        kind: t.name.into(),
        description: t.description.into(),
        supported_resource_filters: filters,
        supported_triggers: t.triggers.iter().map(|s| s.to_string()).collect(),
        supported_copy_by_chunk: None,
    }
}

/// `GET /api/v2.0/registries/{id}/info`
#[utoipa::path(get, path = "/registries/{id}/info", tag = "registry", params(("id" = i64, Path)),
    responses((status = 200, body = RegistryInfo), (status = 401), (status = 403), (status = 404)))]
pub async fn info(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<Json<RegistryInfo>, ApiError> {
    caller.require_sysadmin()?;
    let r = load(&state, id).await?;
    let t = adapters::find(&r.kind).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "registry {id} has the type {:?}, which this server does not support",
            r.kind
        ))
    })?;
    Ok(Json(registry_info(t)))
}

/// `GET /api/v2.0/replication/adapters`: the registry type names.
#[utoipa::path(get, path = "/replication/adapters", tag = "registry",
    responses((status = 200, body = [String]), (status = 401), (status = 403)))]
pub async fn adapter_types(caller: Caller) -> Result<Json<Vec<String>>, ApiError> {
    caller.require_sysadmin()?;
    Ok(Json(adapters::TYPES.iter().map(|t| t.name.to_string()).collect()))
}

/// How the endpoint form asks for a type's URL and credential. Every type here takes any URL
/// and a user name + password (Harbor's default pattern); a type with a fixed list of
/// endpoints (ECR regions, …) would describe it here.
pub fn provider_info(_t: &AdapterType) -> RegistryProviderInfo {
    RegistryProviderInfo {
        endpoint_pattern: Some(RegistryProviderEndpointPattern {
            endpoint_type: "EndpointPatternTypeStandard".into(),
            endpoints: Vec::new(),
        }),
        credential_pattern: Some(RegistryProviderCredentialPattern {
            access_key_type: "AccessKeyTypeStandard".into(),
            access_key_data: String::new(),
            access_secret_type: "AccessSecretTypePass".into(),
            access_secret_data: String::new(),
        }),
    }
}

/// `GET /api/v2.0/replication/adapterinfos`: type name → how to enter its endpoint.
#[utoipa::path(get, path = "/replication/adapterinfos", tag = "registry",
    responses((status = 200, body = BTreeMap<String, RegistryProviderInfo>), (status = 401), (status = 403)))]
pub async fn adapter_infos(caller: Caller) -> Result<Json<RegistryProviderInfos>, ApiError> {
    caller.require_sysadmin()?;
    Ok(Json(adapters::TYPES.iter().map(|t| (t.name.to_string(), provider_info(t))).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_name_tag_and_resource_filters() {
        for t in adapters::TYPES {
            let info = registry_info(t);
            assert_eq!(info.kind, t.name);
            let last = info.supported_resource_filters.last().unwrap();
            assert_eq!((last.kind.as_str(), last.style.as_str()), ("resource", "radio"));
            assert_eq!(last.values, ["image", "artifact"]);
            assert_eq!(info.supported_resource_filters.iter().filter(|f| f.kind == "resource").count(), 1);
            for f in &info.supported_resource_filters {
                let expected = match f.kind.as_str() {
                    "label" => "list",
                    "resource" => "radio",
                    _ => "input",
                };
                assert_eq!(f.style, expected, "{}", f.kind);
            }
        }
    }
}

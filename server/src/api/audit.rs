//! `GET /api/v2.0/audit-logs` (system admins) and the shared listing behind
//! `GET /api/v2.0/projects/{p}/logs`.
//!
//! `q` follows Harbor's grammar for the keys an audit row has: `k=v` exact, `k=~v` fuzzy
//! (resource only), and `op_time=[from~to]` (RFC 3339 or `YYYY-MM-DD HH:MM:SS`, either end may
//! be empty), comma-separated.

use axum::extract::{OriginalUri, State};
use axum::http::Uri;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::error::{ApiError, AppQuery};
use crate::api::{pagination_headers_with, Pagination};
use crate::audit::{self, Filter, Record};
use crate::auth::Caller;
use crate::db::rfc3339;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
pub struct LogParams {
    /// `username`, `operation`, `resource_type`, `resource` (exact or `~fuzzy`), `op_time=[a~b]`.
    pub q: Option<String>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

/// Harbor's `AuditLog`, plus the outcome, client address, project and detail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditLogResp {
    pub id: i64,
    pub username: String,
    pub resource: String,
    pub resource_type: String,
    pub operation: String,
    pub op_time: String,
    pub success: bool,
    pub client_ip: String,
    pub project_id: Option<i64>,
    pub detail: String,
}

fn record_json(r: &Record) -> AuditLogResp {
    let e = &r.event;
    AuditLogResp {
        id: r.id,
        username: e.username.clone(),
        resource: e.resource.clone(),
        resource_type: e.resource_type.clone(),
        operation: e.operation.clone(),
        op_time: rfc3339(e.op_time),
        success: e.success,
        client_ip: e.client_ip.clone(),
        project_id: e.project_id,
        detail: e.detail.clone(),
    }
}

fn parse_time(s: &str) -> Result<Option<i64>, ApiError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let rfc = time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &rfc) {
        return Ok(Some((t.unix_timestamp_nanos() / 1_000_000) as i64));
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(s, &fmt)
        .map(|t| Some((t.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64))
        .map_err(|_| ApiError::BadRequest(format!("invalid time {s:?}: use RFC 3339 or YYYY-MM-DD HH:MM:SS")))
}

/// Parses `q` into a filter.
pub fn parse_q(q: &str) -> Result<Filter, ApiError> {
    let mut f = Filter::default();
    for part in q.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| ApiError::BadRequest(format!("invalid query {part:?}: expected key=value")))?;
        let (k, v) = (k.trim(), v.trim());
        if k == "op_time" {
            let inner = v
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .ok_or_else(|| ApiError::BadRequest("op_time takes a range: op_time=[from~to]".into()))?;
            let (from, to) = inner
                .split_once('~')
                .ok_or_else(|| ApiError::BadRequest("op_time range needs '~'".into()))?;
            f.from = parse_time(from)?;
            f.to = parse_time(to)?;
            continue;
        }
        if v.starts_with('{') || v.starts_with('[') {
            return Err(ApiError::BadRequest(format!("{k} does not take a set or range")));
        }
        let (fuzzy, v) = match v.strip_prefix('~') {
            Some(rest) => (true, rest.to_string()),
            None => (false, v.to_string()),
        };
        match (k, fuzzy) {
            ("resource", true) => f.resource_like = Some(v),
            ("resource", false) => f.resource = Some(v),
            ("username", false) => f.username = Some(v),
            ("operation", false) => f.operation = Some(v),
            ("resource_type", false) => f.resource_type = Some(v),
            (_, true) => return Err(ApiError::BadRequest(format!("{k} does not support fuzzy matching"))),
            _ => return Err(ApiError::BadRequest(format!("unknown query key {k:?}"))),
        }
    }
    Ok(f)
}

/// Lists one page, after writing this replica's queued rows (so callers see their own
/// operations at once).
pub async fn respond(
    state: &AppState,
    uri: &Uri,
    params: LogParams,
    project_id: Option<i64>,
) -> Result<impl IntoResponse, ApiError> {
    let (page, page_size) = Pagination { page: params.page, page_size: params.page_size }.resolve()?;
    let mut filter = parse_q(params.q.as_deref().unwrap_or(""))?;
    filter.project_id = project_id;
    if let Err(e) = state.audit.flush(&state.db).await {
        tracing::warn!(error = %e, "audit flush before listing failed");
    }
    let l = audit::list(&state.db, &filter, page, page_size).await?;
    let mut headers = pagination_headers_with(uri, page, page_size, l.total, l.more);
    if l.capped {
        headers.insert("x-total-count-capped", axum::http::HeaderValue::from_static("true"));
    }
    Ok((headers, Json(l.items.iter().map(record_json).collect::<Vec<_>>())))
}

/// `GET /api/v2.0/audit-logs`
#[utoipa::path(get, path = "/audit-logs", tag = "auditlog", params(LogParams), responses((status = 200, body = [AuditLogResp], headers(("X-Total-Count" = i64, description = "exact up to 10000"), ("X-Total-Count-Capped" = bool, description = "true when more than 10000 rows match"), ("Link" = String))), (status = 400), (status = 403)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppQuery(params): AppQuery<LogParams>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_sysadmin()?;
    respond(&state, &uri, params, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_grammar() {
        let f = parse_q("operation=pull, username=alice,resource=~p1/").unwrap();
        assert_eq!(f.operation.as_deref(), Some("pull"));
        assert_eq!(f.username.as_deref(), Some("alice"));
        assert_eq!(f.resource_like.as_deref(), Some("p1/"));
        let t = parse_q("op_time=[2026-01-01 00:00:00~2026-01-02T00:00:00Z]").unwrap();
        assert_eq!(t.from, Some(1_767_225_600_000));
        assert_eq!(t.to, Some(1_767_312_000_000));
        let open = parse_q("op_time=[~2026-01-01 00:00:00]").unwrap();
        assert_eq!(open.from, None);
        for bad in
            ["nokey", "op_time=yesterday", "color=red", "username=~al", "operation={a b}", "op_time=[x~]"]
        {
            assert!(parse_q(bad).is_err(), "{bad}");
        }
    }
}

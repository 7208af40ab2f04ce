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
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::error::{ApiError, AppQuery};
use crate::api::query::Query;
use crate::api::{pagination_headers_with, Pagination};
use crate::audit::{self, Record};
use crate::auth::Caller;
use crate::db::query::{Bind, Col, Sql};
use crate::db::rfc3339;
use crate::state::AppState;

pub use app::rest::system::AuditLogResp;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogParams {
    /// `username`, `operation`, `resource_type`, `resource` (exact or `~fuzzy`), `op_time=[a~b]`.
    pub q: Option<String>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
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

/// What `q` may filter on. Names are matched exactly; `resource` also by `~substring`;
/// `op_time` takes a range (`[from~to]`, RFC 3339 or `YYYY-MM-DD HH:MM:SS`, either end empty).
pub const AUDIT_KEYS: [(&str, Col); 5] = [
    ("username", Col::Keyword("username")),
    ("operation", Col::Keyword("operation")),
    ("resource_type", Col::Keyword("resource_type")),
    ("resource", Col::Text("resource")),
    ("op_time", Col::Time("op_time")),
];

/// Conditions for `q` (and the project, for project logs).
pub fn conditions(q: &str, project_id: Option<i64>) -> Result<Sql, ApiError> {
    let mut sql = Sql::new();
    if let Some(p) = project_id {
        sql.push("project_id = ?", Bind::I(p));
    }
    sql.filter(&Query::parse(q)?.terms, &AUDIT_KEYS, &[])?;
    Ok(sql)
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
    let conds = conditions(params.q.as_deref().unwrap_or(""), project_id)?;
    if let Err(e) = state.audit.flush(&state.db).await {
        tracing::warn!(error = %e, "audit flush before listing failed");
    }
    let l = audit::list(&state.db, &conds, page, page_size).await?;
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
        let c = conditions("operation=pull, username=alice,resource=~p1/", Some(7)).unwrap();
        let mut s = crate::db::query::Stmt::new("");
        s.where_(&c);
        assert_eq!(
            s.sql(),
            " WHERE project_id = $1 AND operation = $2 AND username = $3 AND lower(resource) LIKE $4 ESCAPE '\\'"
        );
        assert_eq!(c.binds[1], Bind::S("pull".into()));
        assert_eq!(c.binds[2], Bind::S("alice".into()));
        assert_eq!(c.binds[3], Bind::S("%p1/%".into()));
        let t = conditions("op_time=[2026-01-01 00:00:00~2026-01-02T00:00:00Z]", None).unwrap();
        assert_eq!(t.binds, [Bind::I(1_767_225_600_000), Bind::I(1_767_312_000_000)]);
        let open = conditions("op_time=[~2026-01-01 00:00:00]", None).unwrap();
        assert_eq!(open.clauses, ["op_time <= ?"]);
        for bad in
            ["nokey", "op_time=yesterday", "color=red", "username=~al", "operation={a b}", "op_time=[x~]"]
        {
            assert!(conditions(bad, None).is_err(), "{bad}");
        }
    }
}

//! `GET/PUT /api/v2.0/configurations` (system admins): the settings in `settings`.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;

use crate::api::error::{ApiError, AppJson};
use crate::auth::Caller;
use crate::settings;
use crate::state::AppState;

pub use app::rest::Configurations;

#[utoipa::path(get, path = "/configurations", tag = "configure", responses((status = 200, body = Object), (status = 403)))]
pub async fn get(State(state): State<AppState>, caller: Caller) -> Result<Json<Configurations>, ApiError> {
    caller.require_sysadmin()?;
    Ok(Json(
        settings::load(&state.db, &state.config)
            .await?
            .to_rest(crate::identity::auth_mode_editable(&state.db).await?),
    ))
}

/// Only the keys sent change; an unknown key or bad value fails the whole request (400).
#[utoipa::path(put, path = "/configurations", tag = "configure", request_body = Object, responses((status = 200), (status = 400), (status = 403)))]
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(changes): AppJson<HashMap<String, Value>>,
) -> Result<StatusCode, ApiError> {
    caller.require_sysadmin()?;
    let keys = settings::update(&state.db, &state.config, &state.secrets.encryption_key, &changes).await?;
    state.audit.forward.refresh();
    for k in keys {
        // A secret's value never reaches the audit log.
        let detail = if settings::SECRET_KEYS.contains(&k.as_str()) {
            "*****".to_string()
        } else {
            changes[&k].to_string()
        };
        state.audit.record(caller.event("update", "configuration", k.clone()).detail(detail));
    }
    Ok(StatusCode::OK)
}

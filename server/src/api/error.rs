//! The REST surface's error type: Harbor's `{"errors":[{"code","message"}]}`.
//!
//! Handlers return `Result<_, ApiError>`; `From` impls make `?` map database "pool exhausted"
//! to 503 and everything unexpected to a logged 500 whose details never reach the client.
//! The wrapped extractors (`AppJson`, `AppQuery`, `AppPath`, `AppForm`) turn malformed input
//! into 400/415 in the same format.

use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

/// The error body of every REST response (for the OpenAPI document).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorsBody {
    pub errors: Vec<ErrorItem>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorItem {
    /// `BAD_REQUEST`, `UNAUTHORIZED`, `FORBIDDEN`, `NOT_FOUND`, `CONFLICT`, `PRECONDITION`, …
    pub code: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    UriTooLong(String),
    /// `locked`: the account is locked (else: too many password checks at once).
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64, locked: bool },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Harbor's error code strings.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "BAD_REQUEST",
            ApiError::Unauthorized(_) => "UNAUTHORIZED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
            ApiError::Conflict(_) => "CONFLICT",
            ApiError::PreconditionFailed(_) => "PRECONDITION",
            ApiError::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            ApiError::UriTooLong(_) => "URI_TOO_LONG",
            ApiError::TooManyRequests { .. } => "TOO_MANY_REQUESTS",
            ApiError::Unavailable(_) => "SERVICE_UNAVAILABLE",
            ApiError::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    pub fn unauthorized() -> Self {
        ApiError::Unauthorized("unauthorized".into())
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "internal server error; see the server log".to_string()
            }
            other => other.to_string(),
        };
        let body = json!({ "errors": [{ "code": self.code(), "message": message }] });
        let mut resp = (status, axum::Json(body)).into_response();
        if matches!(self, ApiError::Unavailable(_)) {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, crate::db::error::retry_after());
        }
        if let ApiError::TooManyRequests { retry_after, .. } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                resp.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => ApiError::NotFound("not found".into()),
            e if crate::db::error::is_transient(&e) => {
                tracing::warn!(error = %e, kind = ?crate::db::error::classify(&e), "database unavailable");
                ApiError::Unavailable("the database is unavailable; retry later".into())
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<crate::db::query::QueryError> for ApiError {
    fn from(e: crate::db::query::QueryError) -> Self {
        ApiError::BadRequest(e.0)
    }
}

impl From<crate::registry::meta::MetaError> for ApiError {
    fn from(e: crate::registry::meta::MetaError) -> Self {
        use crate::registry::meta::MetaError;
        match e {
            MetaError::Db(e) => e.into(),
            MetaError::Collecting(_) => ApiError::Unavailable(e.to_string()),
            MetaError::Missing(what) => ApiError::NotFound(format!("{what} of the source is missing")),
            MetaError::Referenced(_) | MetaError::Immutable { .. } | MetaError::Quota(_) => {
                ApiError::PreconditionFailed(e.to_string())
            }
        }
    }
}

impl From<tower_sessions::session::Error> for ApiError {
    fn from(e: tower_sessions::session::Error) -> Self {
        tracing::warn!(error = %e, "session store unavailable");
        ApiError::Unavailable("the session store is unavailable; retry later".into())
    }
}

impl From<crate::projects::ProjectError> for ApiError {
    fn from(e: crate::projects::ProjectError) -> Self {
        use crate::projects::ProjectError::*;
        match e {
            Invalid(m) => ApiError::BadRequest(m),
            Exists(_) | Member(_) | MetadataExists(_) => ApiError::Conflict(e.to_string()),
            NotFound => ApiError::NotFound(e.to_string()),
            NotEmpty(_) => ApiError::PreconditionFailed(e.to_string()),
            Db(e) => e.into(),
        }
    }
}

impl From<crate::accounts::UserError> for ApiError {
    fn from(e: crate::accounts::UserError) -> Self {
        use crate::accounts::UserError::*;
        match e {
            Invalid(m) => ApiError::BadRequest(m),
            Conflict(m) => ApiError::Conflict(m),
            NotFound => ApiError::NotFound(e.to_string()),
            Db(e) => e.into(),
        }
    }
}

impl From<crate::robots::RobotError> for ApiError {
    fn from(e: crate::robots::RobotError) -> Self {
        use crate::robots::RobotError::*;
        match e {
            Invalid(m) => ApiError::BadRequest(m),
            Exists(_) => ApiError::Conflict(e.to_string()),
            NotFound => ApiError::NotFound(e.to_string()),
            Db(e) => e.into(),
        }
    }
}

impl From<crate::settings::UpdateError> for ApiError {
    fn from(e: crate::settings::UpdateError) -> Self {
        match e {
            crate::settings::UpdateError::Invalid(m) => ApiError::BadRequest(m),
            crate::settings::UpdateError::Db(e) => e.into(),
        }
    }
}

impl From<crate::accounts::LoginError> for ApiError {
    fn from(e: crate::accounts::LoginError) -> Self {
        use crate::accounts::LoginError::*;
        match e {
            InvalidCredentials => ApiError::Unauthorized("invalid username or password".into()),
            Locked(s) => {
                ApiError::TooManyRequests { message: Locked(s).to_string(), retry_after: s, locked: true }
            }
            Malformed(m) => ApiError::BadRequest(m),
            Busy => ApiError::TooManyRequests { message: Busy.to_string(), retry_after: 1, locked: false },
            Unavailable(m) => ApiError::Unavailable(m),
            Db(e) => e.into(),
        }
    }
}

/// `Json` whose rejections speak the API's error format.
pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(AppJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => {
                Err(ApiError::UnsupportedMediaType("expected Content-Type: application/json".into()))
            }
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// `Form` whose rejections speak the API's error format.
pub struct AppForm<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppForm<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(AppForm(v)),
            Err(FormRejection::InvalidFormContentType(_)) => Err(ApiError::UnsupportedMediaType(
                "expected Content-Type: application/x-www-form-urlencoded".into(),
            )),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// `Query` whose rejections speak the API's error format.
pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| AppQuery(q.0))
            .map_err(|e: QueryRejection| ApiError::BadRequest(e.body_text()))
    }
}

/// `Path` whose rejections speak the API's error format.
pub struct AppPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for AppPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| AppPath(p.0))
            .map_err(|e: PathRejection| ApiError::BadRequest(e.body_text()))
    }
}

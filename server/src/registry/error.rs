//! The OCI surface's error type: `{"errors":[{"code","message","detail"}]}` with the
//! distribution error-code table (distribution `registry/api/errcode/register.go`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    RangeInvalid,
    TagInvalid,
    Unauthorized,
    Denied,
    /// Harbor's `PRECONDITION` (412): an immutable tag would be moved or deleted.
    Precondition,
    Unsupported,
    PaginationNumberInvalid,
    TooManyRequests,
    Unavailable,
    Unknown,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            BlobUnknown => "BLOB_UNKNOWN",
            BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            DigestInvalid => "DIGEST_INVALID",
            ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ManifestInvalid => "MANIFEST_INVALID",
            ManifestUnknown => "MANIFEST_UNKNOWN",
            NameInvalid => "NAME_INVALID",
            NameUnknown => "NAME_UNKNOWN",
            SizeInvalid => "SIZE_INVALID",
            RangeInvalid => "RANGE_INVALID",
            TagInvalid => "TAG_INVALID",
            Unauthorized => "UNAUTHORIZED",
            Denied => "DENIED",
            Precondition => "PRECONDITION",
            Unsupported => "UNSUPPORTED",
            PaginationNumberInvalid => "PAGINATION_NUMBER_INVALID",
            TooManyRequests => "TOOMANYREQUESTS",
            Unavailable => "UNAVAILABLE",
            Unknown => "UNKNOWN",
        }
    }

    pub fn status(self) -> StatusCode {
        use Code::*;
        match self {
            BlobUnknown | BlobUploadUnknown | ManifestUnknown | NameUnknown => StatusCode::NOT_FOUND,
            BlobUploadInvalid
            | DigestInvalid
            | ManifestBlobUnknown
            | ManifestInvalid
            | NameInvalid
            | SizeInvalid
            | TagInvalid
            | PaginationNumberInvalid => StatusCode::BAD_REQUEST,
            RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
            Unauthorized => StatusCode::UNAUTHORIZED,
            Denied => StatusCode::FORBIDDEN,
            Precondition => StatusCode::PRECONDITION_FAILED,
            Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Debug)]
pub struct OciError {
    pub code: Code,
    pub message: String,
    pub detail: Option<serde_json::Value>,
    /// Overrides the code's usual status (e.g. 413 for an oversized manifest).
    pub status: Option<StatusCode>,
    /// `WWW-Authenticate` challenge for 401s.
    pub challenge: Option<String>,
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
    /// The project's quota refused the write (`MetaError::Quota`): webhooks' `QUOTA_EXCEED`.
    pub over_quota: bool,
}

impl OciError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            detail: None,
            status: None,
            challenge: None,
            headers: vec![],
            over_quota: false,
        }
    }
    pub fn detail(mut self, d: serde_json::Value) -> Self {
        self.detail = Some(d);
        self
    }
    pub fn status(mut self, s: StatusCode) -> Self {
        self.status = Some(s);
        self
    }
    pub fn header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "registry internal error");
        Self::new(Code::Unknown, "internal server error; see the server log")
    }
}

pub type OciResult<T> = Result<T, OciError>;

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let status = self.status.unwrap_or_else(|| self.code.status());
        let mut err = json!({ "code": self.code.as_str(), "message": self.message });
        if let Some(d) = self.detail {
            err["detail"] = d;
        }
        let mut resp = (status, axum::Json(json!({ "errors": [err] }))).into_response();
        // `Docker-Distribution-API-Version` is added to every /v2 response by `dispatch`.
        let h = resp.headers_mut();
        if let Some(c) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            h.insert(header::WWW_AUTHENTICATE, c);
        }
        for (k, v) in self.headers {
            h.insert(k, v);
        }
        resp
    }
}

impl From<super::meta::MetaError> for OciError {
    fn from(e: super::meta::MetaError) -> Self {
        use super::meta::MetaError;
        match e {
            MetaError::Db(e) => e.into(),
            MetaError::Collecting(d) => OciError::new(
                Code::Unavailable,
                format!("blob {d} is being removed by garbage collection; retry shortly"),
            )
            .header(axum::http::header::RETRY_AFTER, crate::db::error::retry_after()),
            MetaError::Missing(what) => OciError::new(Code::ManifestBlobUnknown, format!("{what} unknown")),
            e @ MetaError::Referenced(_) => {
                OciError::new(Code::Denied, e.to_string()).status(axum::http::StatusCode::PRECONDITION_FAILED)
            }
            e @ MetaError::Immutable { .. } => OciError::new(Code::Precondition, e.to_string()),
            // Harbor's answer to a push over the project's quota.
            MetaError::Quota(q) => OciError {
                over_quota: true,
                ..OciError::new(Code::Denied, q.to_string())
                    .status(axum::http::StatusCode::PRECONDITION_FAILED)
                    .detail(serde_json::json!({"limit": q.limit, "used": q.used, "needed": q.needed}))
            },
        }
    }
}

impl From<sqlx::Error> for OciError {
    fn from(e: sqlx::Error) -> Self {
        if crate::db::error::is_transient(&e) {
            tracing::warn!(error = %e, kind = ?crate::db::error::classify(&e), "database unavailable");
            return OciError::new(Code::Unavailable, "the database is unavailable; retry later")
                .header(axum::http::header::RETRY_AFTER, crate::db::error::retry_after());
        }
        OciError::internal(e)
    }
}

impl From<crate::storage::StorageError> for OciError {
    fn from(e: crate::storage::StorageError) -> Self {
        use crate::storage::StorageError::*;
        match e {
            NotFound => OciError::new(Code::BlobUnknown, "blob unknown to registry"),
            InvalidRange => OciError::new(Code::RangeInvalid, "invalid content range"),
            Body(e) => {
                OciError::new(Code::BlobUploadInvalid, format!("reading the request body failed: {e}"))
                    .status(StatusCode::BAD_REQUEST)
            }
            other => OciError::internal(other),
        }
    }
}

impl From<super::path::PathError> for OciError {
    fn from(e: super::path::PathError) -> Self {
        use super::path::PathError::*;
        match e {
            NameInvalid(_) => OciError::new(Code::NameInvalid, e.to_string()),
            TagInvalid(_) => OciError::new(Code::TagInvalid, e.to_string()),
            DigestInvalid(_) => OciError::new(Code::DigestInvalid, e.to_string()),
            UploadInvalid => OciError::new(Code::BlobUploadUnknown, e.to_string()),
            NotFound => {
                OciError::new(Code::Unsupported, "no such registry endpoint").status(StatusCode::NOT_FOUND)
            }
        }
    }
}

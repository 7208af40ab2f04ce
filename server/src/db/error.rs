//! One classification of database errors for every surface (REST `ApiError`, the registry's
//! `OciError`, the token service's `TokenError`, the portal through `ApiError`).
//!
//! - `Unavailable`: the database cannot be reached or is shutting down (pool timeout, connection
//!   refused or closed, I/O, TLS; PostgreSQL SQLSTATE classes 08, 53, 57). The pool reconnects
//!   by itself when the database is back.
//! - `Locked`: the statement lost a race for a lock (SQLite BUSY/LOCKED beyond `busy_timeout`;
//!   PostgreSQL class 40 — serialization failure 40001, deadlock 40P01 — and lock timeout
//!   55P03). Retrying the request succeeds.
//! - `Conflict`: a unique constraint refused the write (the call site answers 409).
//! - `Other`: anything else (a bug or a broken database: 500).
//!
//! Every surface answers `Unavailable` and `Locked` with 503 and `Retry-After: RETRY_AFTER_SECS`
//! in its own error format (test `every_surface_answers_transient_errors_alike`).

use axum::http::HeaderValue;

/// Seconds a client is told to wait (`Retry-After`) when the database cannot answer.
pub const RETRY_AFTER_SECS: u64 = 5;

/// `RETRY_AFTER_SECS` as a header value.
pub fn retry_after() -> HeaderValue {
    HeaderValue::from(RETRY_AFTER_SECS)
}

/// What kind of failure a database error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    Unavailable,
    Locked,
    Conflict,
    Other,
}

impl DbErrorKind {
    /// Whether the database cannot answer right now (answered with 503 and `Retry-After`).
    pub fn is_transient(self) -> bool {
        matches!(self, DbErrorKind::Unavailable | DbErrorKind::Locked)
    }
}

/// Classifies a database error.
pub fn classify(e: &sqlx::Error) -> DbErrorKind {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => DbErrorKind::Unavailable,
        sqlx::Error::Database(d) => {
            if d.is_unique_violation() {
                return DbErrorKind::Conflict;
            }
            let Some(code) = d.code() else { return DbErrorKind::Other };
            classify_code(&code)
        }
        _ => DbErrorKind::Other,
    }
}

/// Classifies a PostgreSQL SQLSTATE or a SQLite (extended) result code.
fn classify_code(code: &str) -> DbErrorKind {
    match code {
        // SQLite BUSY and LOCKED, with their extended codes.
        "5" | "6" | "261" | "262" | "517" | "773" => DbErrorKind::Locked,
        // PostgreSQL: transaction rollback (serialization failure, deadlock), lock timeout.
        c if c.len() == 5 && (c.starts_with("40") || c == "55P03") => DbErrorKind::Locked,
        // Connection exception, insufficient resources, operator intervention (shutdown,
        // restart, admin termination).
        c if c.len() == 5 && (c.starts_with("08") || c.starts_with("53") || c.starts_with("57")) => {
            DbErrorKind::Unavailable
        }
        // Unique violations reported without the driver's flag.
        "23505" | "2067" | "1555" => DbErrorKind::Conflict,
        _ => DbErrorKind::Other,
    }
}

/// Whether the database cannot answer right now (`Unavailable` or `Locked`).
pub fn is_transient(e: &sqlx::Error) -> bool {
    classify(e).is_transient()
}

/// Whether a unique constraint refused the write (→ 409 at the call site).
pub fn is_conflict(e: &sqlx::Error) -> bool {
    classify(e) == DbErrorKind::Conflict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        for c in ["5", "6", "261", "262", "517", "773", "40001", "40P01", "55P03"] {
            assert_eq!(classify_code(c), DbErrorKind::Locked, "{c}");
        }
        for c in ["08006", "08001", "53300", "57P01", "57P03"] {
            assert_eq!(classify_code(c), DbErrorKind::Unavailable, "{c}");
        }
        for c in ["23505", "2067", "1555"] {
            assert_eq!(classify_code(c), DbErrorKind::Conflict, "{c}");
        }
        for c in ["42P01", "23503", "1", "19", "787"] {
            assert_eq!(classify_code(c), DbErrorKind::Other, "{c}");
        }
    }

    #[test]
    fn pool_and_io_failures_are_unavailable() {
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), DbErrorKind::Unavailable);
        assert_eq!(classify(&sqlx::Error::PoolClosed), DbErrorKind::Unavailable);
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(classify(&sqlx::Error::Io(io)), DbErrorKind::Unavailable);
        assert_eq!(classify(&sqlx::Error::RowNotFound), DbErrorKind::Other);
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(!is_conflict(&sqlx::Error::PoolTimedOut));
    }

    #[test]
    fn every_surface_answers_transient_errors_alike() {
        use axum::http::{header, StatusCode};
        use axum::response::IntoResponse;
        let unavailable = || sqlx::Error::PoolTimedOut;
        let answers = [
            crate::api::error::ApiError::from(unavailable()).into_response(),
            crate::registry::error::OciError::from(unavailable()).into_response(),
            crate::token::TokenError::from(unavailable()).into_response(),
        ];
        for r in answers {
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(r.headers().get(header::RETRY_AFTER), Some(&retry_after()));
        }
        let other =
            crate::api::error::ApiError::from(sqlx::Error::ColumnNotFound("x".into())).into_response();
        assert_eq!(other.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(other.headers().get(header::RETRY_AFTER).is_none());
    }

    /// A real unique violation from SQLite is a conflict; a real busy error is locked.
    #[tokio::test]
    async fn sqlite_errors_are_classified() {
        sqlx::any::install_default_drivers();
        let pool =
            sqlx::any::AnyPoolOptions::new().max_connections(1).connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY)").execute(&pool).await.unwrap();
        sqlx::query("INSERT INTO t VALUES ('a')").execute(&pool).await.unwrap();
        let e = sqlx::query("INSERT INTO t VALUES ('a')").execute(&pool).await.unwrap_err();
        assert_eq!(classify(&e), DbErrorKind::Conflict);
        let e = sqlx::query("SELECT * FROM missing").execute(&pool).await.unwrap_err();
        assert_eq!(classify(&e), DbErrorKind::Other);
    }
}

//! The error type of every portal server function.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum PortalError {
    /// No session, or it expired: the page sends the user to sign in.
    #[error("please sign in")]
    Unauthorized,
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("too many failed logins; try again in {0} seconds")]
    Locked(u64),
    #[error("permission denied")]
    Forbidden,
    #[error("{0}")]
    Invalid(String),
    /// The server's message for anything else (never a stack trace).
    #[error("{0}")]
    Server(String),
}

impl PortalError {
    /// Short code carried in the sign-in URL after a non-JavaScript form post.
    pub fn code(&self) -> &'static str {
        match self {
            PortalError::InvalidCredentials => "credentials",
            PortalError::Locked(_) => "locked",
            PortalError::Unauthorized => "expired",
            _ => "error",
        }
    }
}

impl FromServerFnError for PortalError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        PortalError::Server(value.to_string())
    }
}

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
    /// Too many sign-ins are being checked at once (the server's bounded password-check queue).
    #[error("too many sign-ins at once; try again in {0} seconds")]
    Busy(u64),
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
            PortalError::Busy(_) => "busy",
            PortalError::Unauthorized => "expired",
            _ => "error",
        }
    }
}

impl PortalError {
    /// The message in the page's language. Messages the server wrote itself (`Invalid`,
    /// `Server`: validation and service errors) are shown as they came.
    pub fn localized(&self) -> String {
        use crate::i18n::{fill, t};
        match self {
            PortalError::Unauthorized => t("please sign in").to_string(),
            PortalError::InvalidCredentials => t("invalid username or password").to_string(),
            PortalError::Locked(s) => fill(t("too many failed logins; try again in {} seconds"), &[s]),
            PortalError::Busy(s) => fill(t("too many sign-ins at once; try again in {} seconds"), &[s]),
            PortalError::Forbidden => t("permission denied").to_string(),
            PortalError::Invalid(m) | PortalError::Server(m) => m.clone(),
        }
    }
}

impl FromServerFnError for PortalError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // The caller sent arguments that do not decode: its error (a 400), not the server's.
            // `Deserialization` is the arguments on the server (the body of a POST with a JSON
            // or other body codec) and the response on the client.
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) => {
                PortalError::Invalid(value.to_string())
            }
            #[cfg(feature = "ssr")]
            ServerFnErrorErr::Deserialization(_) => PortalError::Invalid(value.to_string()),
            _ => PortalError::Server(value.to_string()),
        }
    }
}

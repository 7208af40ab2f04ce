//! The portal's one path to the server: every page reads and writes through the REST API. One
//! server function relays a call to `/api/v2.0` in-process as the session's user
//! (`PortalBackend::rest`), so every page gets exactly the API's RBAC, validation, error
//! messages and audit rows. The helpers below give pages results typed with `crate::rest`,
//! the same types the handlers answer with.

use leptos::prelude::*;
use serde::de::DeserializeOwned;

use crate::error::PortalError;

/// A REST API answer relayed to the portal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApiReply {
    pub status: u16,
    /// `X-Total-Count`, for lists.
    pub total: Option<i64>,
    /// The JSON body (empty for most writes).
    pub body: String,
}

#[server(prefix = "/portal/fn", endpoint = "api", input = server_fn::codec::Json)]
pub async fn api(method: String, path: String, body: Option<String>) -> Result<ApiReply, PortalError> {
    crate::backend::backend()?.rest(method, path, body).await
}

fn parse<T: DeserializeOwned>(reply: &ApiReply) -> Result<T, PortalError> {
    serde_json::from_str(&reply.body)
        .map_err(|e| PortalError::Server(format!("unexpected answer from the API: {e}")))
}

/// `GET path` as `T`.
pub async fn get<T: DeserializeOwned>(path: String) -> Result<T, PortalError> {
    parse(&api("GET".into(), path, None).await?)
}

/// Page size of the portal's lists.
pub const PAGE_SIZE: u64 = 15;

/// One page of a list: the items and `X-Total-Count`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub total: i64,
}

pub async fn list<T: DeserializeOwned>(path: String) -> Result<Listing<T>, PortalError> {
    let reply = api("GET".into(), path, None).await?;
    let items: Vec<T> = parse(&reply)?;
    let total = reply.total.unwrap_or(items.len() as i64);
    Ok(Listing { items, total })
}

/// A write (`POST`, `PUT`, `PATCH`, `DELETE`) with an optional JSON body; the answer's JSON
/// (`Null` when empty).
pub async fn send(
    method: &'static str,
    path: String,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, PortalError> {
    let reply = api(method.into(), path, body.map(|b| b.to_string())).await?;
    if reply.body.trim().is_empty() {
        return Ok(serde_json::Value::Null);
    }
    parse(&reply)
}

/// A request body for `send`, from one of the `crate::rest` request types.
pub fn body<T: serde::Serialize>(req: &T) -> serde_json::Value {
    serde_json::to_value(req).unwrap_or(serde_json::Value::Null)
}

/// A write's answer (from `send`) as `T`.
pub fn decode<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, PortalError> {
    serde_json::from_value(v).map_err(|e| PortalError::Server(format!("unexpected answer from the API: {e}")))
}

/// Percent-encodes one path segment (`/` included).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A repository name inside its project (`app/sub`) as the API's path wants it: encoded
/// twice, so `/` arrives as `%2F` (Harbor's rule).
pub fn repo_seg(repo: &str) -> String {
    seg(&seg(repo))
}

/// `…/projects/<p>/repositories/<r>` for a full repository name (`library/app/sub`).
pub fn repo_path(full: &str) -> String {
    let (project, repo) = full.split_once('/').unwrap_or((full, ""));
    format!("/projects/{}/repositories/{}", seg(project), repo_seg(repo))
}

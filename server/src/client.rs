//! Facts about the client of a request that depend on the proxies in front of us: its IP
//! address (for the audit log) and the base URL it used (for the token realm).
//!
//! **`X-Forwarded-*` headers are believed only from a peer listed in `trusted_proxies`**;
//! otherwise anyone could point the token realm (where clients send passwords) elsewhere or
//! forge audit rows' addresses.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::config::Config;
use crate::state::AppState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCtx {
    /// The client's address (empty when unknown, e.g. in-process tests).
    pub ip: String,
    /// `scheme://host[:port]` the client reached us at, without a trailing slash.
    pub base_url: String,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|s| !s.is_empty())
}

impl ClientCtx {
    pub fn from_parts(cfg: &Config, parts: &Parts) -> ClientCtx {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        Self::resolve(cfg, peer, &parts.headers)
    }

    pub fn resolve(cfg: &Config, peer: Option<IpAddr>, h: &HeaderMap) -> ClientCtx {
        let trusted = peer.is_some_and(|ip| cfg.is_trusted_proxy(ip));
        let mut ip = peer.map(|p| p.to_string()).unwrap_or_default();
        let mut base_url = cfg.external_base().to_string();
        if trusted {
            // The right-most address that is not one of our proxies is the client.
            if let Some(xff) = header(h, "x-forwarded-for") {
                let hops: Vec<IpAddr> = xff.split(',').filter_map(|s| s.trim().parse().ok()).collect();
                if let Some(client) = hops.iter().rev().find(|a| !cfg.is_trusted_proxy(**a)).or(hops.first())
                {
                    ip = client.to_string();
                }
            }
            let proto = header(h, "x-forwarded-proto").and_then(|p| p.split(',').next()).map(str::trim);
            let host = header(h, "x-forwarded-host")
                .and_then(|p| p.split(',').next())
                .map(str::trim)
                .or_else(|| header(h, "host"));
            if let (Some(proto @ ("http" | "https")), Some(host)) = (proto, host) {
                if host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c)) {
                    base_url = format!("{proto}://{host}");
                }
            }
        }
        ClientCtx { ip, base_url }
    }
}

impl FromRequestParts<AppState> for ClientCtx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientCtx::from_parts(&state.config, parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn forwarded_headers_only_from_trusted_proxies() {
        let cfg = Config::from_toml(
            "external_url = \"https://reg.example\"\ntrusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\"]",
        )
        .unwrap();
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9, 10.1.1.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "lb.example:8443"),
        ]);
        let via_proxy = ClientCtx::resolve(&cfg, Some("10.2.2.2".parse().unwrap()), &h);
        assert_eq!(via_proxy.ip, "203.0.113.9");
        assert_eq!(via_proxy.base_url, "https://lb.example:8443");

        let direct = ClientCtx::resolve(&cfg, Some("198.51.100.7".parse().unwrap()), &h);
        assert_eq!(direct.ip, "198.51.100.7");
        assert_eq!(direct.base_url, "https://reg.example");

        let bad_host = headers(&[("x-forwarded-proto", "https"), ("x-forwarded-host", "evil\"x")]);
        let r = ClientCtx::resolve(&cfg, Some("127.0.0.1".parse().unwrap()), &bad_host);
        assert_eq!(r.base_url, "https://reg.example");

        let unknown = ClientCtx::resolve(&cfg, None, &h);
        assert_eq!(unknown, ClientCtx { ip: String::new(), base_url: "https://reg.example".into() });
    }
}

//! Authentication as real clients do it: the `WWW-Authenticate` challenge of a 401 says how
//! (`Bearer realm=…,service=…,scope=…` or `Basic`); Bearer tokens come from the realm
//! (`GET realm?service=…&scope=…`, with the Basic credentials when there are any, anonymous
//! otherwise; `token` or `access_token` accepted) and are cached per set of scopes until
//! shortly before `expires_in` (60 s when absent). Once the scheme is known, later requests
//! carry their authorization from the start (no 401 round trip per request).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::header::{HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use url::Url;

use super::transport::{error_message, Req};
use super::{Credential, RemoteRegistry};
use crate::replication::content::{ContentError, ContentResult};

/// Most token entries kept; beyond it expired entries go, then all.
const MAX_TOKENS: usize = 1024;
/// Largest token-service response read.
const MAX_TOKEN_RESPONSE: usize = 1024 * 1024;

/// One challenge of a `WWW-Authenticate` header: the scheme (lowercase) and its parameters
/// (names lowercase, values unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Parses a `WWW-Authenticate` value (RFC 7235: one or more challenges, each a scheme and
/// comma-separated `name=value` parameters, values a token or a quoted string).
pub(super) fn parse_challenges(s: &str) -> Vec<Challenge> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = vec![];
    let skip = |i: &mut usize, commas: bool| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || (commas && b[*i] == b',')) {
            *i += 1;
        }
    };
    loop {
        skip(&mut i, true);
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && is_tchar(b[i]) {
            i += 1;
        }
        if i == start {
            i += 1;
            continue;
        }
        let mut ch = Challenge { scheme: s[start..i].to_ascii_lowercase(), params: vec![] };
        loop {
            let save = i;
            skip(&mut i, true);
            let name_start = i;
            while i < b.len() && is_tchar(b[i]) && b[i] != b'=' {
                i += 1;
            }
            let name = &s[name_start..i];
            let mut j = i;
            skip(&mut j, false);
            if name.is_empty() || j >= b.len() || b[j] != b'=' {
                // The next challenge (or the end).
                i = save;
                break;
            }
            i = j + 1;
            skip(&mut i, false);
            let mut value = Vec::new();
            if i < b.len() && b[i] == b'"' {
                i += 1;
                while i < b.len() {
                    match b[i] {
                        b'\\' if i + 1 < b.len() => {
                            value.push(b[i + 1]);
                            i += 2;
                        }
                        b'"' => {
                            i += 1;
                            break;
                        }
                        c => {
                            value.push(c);
                            i += 1;
                        }
                    }
                }
            } else {
                while i < b.len() && b[i] != b',' && b[i] != b' ' && b[i] != b'\t' {
                    value.push(b[i]);
                    i += 1;
                }
            }
            ch.params.push((name.to_ascii_lowercase(), String::from_utf8_lossy(&value).into_owned()));
        }
        out.push(ch);
    }
    out
}

/// How long a token is used: `expires_in` (60 s when absent or 0) minus a margin (a tenth, at
/// least 1 s and at most 30 s), so a request never goes out with a token about to expire.
pub(super) fn usable_for(expires_in: Option<u64>) -> Duration {
    let secs = expires_in.filter(|s| *s > 0).unwrap_or(60);
    let margin = (secs / 10).clamp(1, 30);
    Duration::from_secs(secs.saturating_sub(margin))
}

/// Bearer tokens by scope set (the scopes a request needs, space-separated).
#[derive(Default)]
pub(super) struct TokenCache {
    entries: HashMap<String, (String, Instant)>,
}

impl TokenCache {
    pub fn get(&self, key: &str, now: Instant) -> Option<String> {
        self.entries.get(key).filter(|(_, until)| now < *until).map(|(t, _)| t.clone())
    }

    pub fn put(&mut self, key: String, token: String, expires_in: Option<u64>, now: Instant) {
        if self.entries.len() >= MAX_TOKENS {
            self.entries.retain(|_, (_, until)| now < *until);
            if self.entries.len() >= MAX_TOKENS {
                self.entries.clear();
            }
        }
        self.entries.insert(key, (token, now + usable_for(expires_in)));
    }

    pub fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

/// What the registry asked for, learnt from its first challenge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) enum Scheme {
    #[default]
    Unknown,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Default)]
pub(super) struct AuthState {
    scheme: Mutex<Scheme>,
    tokens: Mutex<TokenCache>,
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

fn sensitive(value: String) -> ContentResult<HeaderValue> {
    let mut v = HeaderValue::from_str(&value)
        .map_err(|_| ContentError::Other("the credentials hold characters not allowed in a header".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

pub(super) fn scope_key(scopes: &[String]) -> String {
    scopes.join(" ")
}

impl RemoteRegistry {
    /// Who the credentials say we are, for messages.
    pub(super) fn who(&self) -> String {
        match &self.cred {
            Credential::None => "anonymous access (no credentials are configured)".into(),
            Credential::Basic { user, .. } => format!("the credentials of user {user:?}"),
            Credential::Token(_) => "the configured bearer token".into(),
        }
    }

    pub(super) fn basic_header(&self) -> ContentResult<Option<HeaderValue>> {
        match &self.cred {
            Credential::Basic { user, password } => {
                let raw = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Ok(Some(sensitive(format!("Basic {raw}"))?))
            }
            _ => Ok(None),
        }
    }

    /// The `Authorization` a request needing `scopes` carries now: none until the scheme is
    /// known; Basic; or a Bearer token for the scopes (plus `extra` ones a challenge named),
    /// from the cache or the realm. `direct`: the credentials themselves (REST APIs, the realm).
    pub(super) async fn authorization(
        &self,
        scopes: &[String],
        extra: &[String],
        direct: bool,
    ) -> ContentResult<Option<HeaderValue>> {
        if let Credential::Token(t) = &self.cred {
            return Ok(Some(sensitive(format!("Bearer {t}"))?));
        }
        if direct {
            return self.basic_header();
        }
        let scheme = self.auth.scheme.lock().expect("auth lock").clone();
        match scheme {
            Scheme::Unknown => Ok(None),
            Scheme::Basic => self.basic_header(),
            Scheme::Bearer { realm, service } => {
                let key = scope_key(scopes);
                if let Some(t) = self.auth.tokens.lock().expect("token lock").get(&key, Instant::now()) {
                    return Ok(Some(sensitive(format!("Bearer {t}"))?));
                }
                let mut all = scopes.to_vec();
                for e in extra {
                    if !all.contains(e) {
                        all.push(e.clone());
                    }
                }
                let (token, expires_in) = self.fetch_token(&realm, service.as_deref(), &all).await?;
                self.auth.tokens.lock().expect("token lock").put(
                    key,
                    token.clone(),
                    expires_in,
                    Instant::now(),
                );
                Ok(Some(sensitive(format!("Bearer {token}"))?))
            }
        }
    }

    /// Learns from a 401's challenges. True when the request is worth sending again with the
    /// authorization `authorization` now gives (a Bearer challenge: a fresh token; Basic: the
    /// credentials, unless they were just refused). Scopes the challenge names beyond the
    /// request's own go into `extra`.
    pub(super) fn learn_challenge(
        &self,
        resp: &reqwest::Response,
        scopes: &[String],
        sent_auth: bool,
        extra: &mut Vec<String>,
    ) -> bool {
        if matches!(self.cred, Credential::Token(_)) {
            return false;
        }
        let challenges: Vec<Challenge> = resp
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_challenges)
            .collect();
        if let Some(b) = challenges.iter().find(|c| c.scheme == "bearer") {
            let realm = b.param("realm").filter(|r| {
                Url::parse(r).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            });
            if let Some(realm) = realm {
                let scheme = Scheme::Bearer {
                    realm: realm.to_string(),
                    service: b.param("service").map(str::to_string),
                };
                *self.auth.scheme.lock().expect("auth lock") = scheme;
                self.auth.tokens.lock().expect("token lock").remove(&scope_key(scopes));
                for s in b.param("scope").unwrap_or("").split(' ').filter(|s| !s.is_empty()) {
                    if !scopes.iter().any(|x| x == s) && !extra.iter().any(|x| x == s) {
                        extra.push(s.to_string());
                    }
                }
                return true;
            }
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            *self.auth.scheme.lock().expect("auth lock") = Scheme::Basic;
            return matches!(self.cred, Credential::Basic { .. }) && !sent_auth;
        }
        false
    }

    /// Forgets the token of `scopes` (a streamed request was refused with it).
    pub(super) fn forget_token(&self, scopes: &[String]) {
        self.auth.tokens.lock().expect("token lock").remove(&scope_key(scopes));
    }

    /// A token for `scopes` from `realm`: (token, expires_in).
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> ContentResult<(String, Option<u64>)> {
        let mut url = Url::parse(realm).map_err(|e| {
            ContentError::Other(format!("registry {}: bad token realm {realm:?}: {e}", self.name))
        })?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
        }
        let req = Req::new(Method::GET, url, vec![], self.timeout);
        let resp = self.send_raw(&req, self.basic_header()?.as_ref()).await?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let body = self.read_limited(resp, 64 * 1024, "token").await.unwrap_or_default();
            return Err(ContentError::Unauthorized(format!(
                "registry {:?} ({}) refused {}: the token service answered {status}: {}",
                self.name,
                self.base,
                self.who(),
                error_message(&body)
            )));
        }
        if !status.is_success() {
            return Err(match self.status_error(resp, &format!("token request to {realm}")).await {
                ContentError::NotFound(m) => ContentError::Other(m),
                e => e,
            });
        }
        let body = self.read_limited(resp, MAX_TOKEN_RESPONSE, "token response").await?;
        let t: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            ContentError::Other(format!("registry {:?}: the token service answered no JSON: {e}", self.name))
        })?;
        let token = t
            .token
            .filter(|t| !t.is_empty())
            .or(t.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| {
                ContentError::Other(format!("registry {:?}: the token service answered no token", self.name))
            })?;
        Ok((token, t.expires_in))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: &Challenge) -> Vec<(&str, &str)> {
        c.params.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
    }

    #[test]
    fn parses_bearer_with_scope_holding_commas() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(
            params(&c[0]),
            [
                ("realm", "https://auth.example/token"),
                ("service", "registry.example"),
                ("scope", "repository:a/b:pull,push")
            ]
        );
    }

    #[test]
    fn parses_error_and_spaces_and_case() {
        let c = parse_challenges(
            r#"BEARER Realm = "http://127.0.0.1:9/t" , Error="insufficient_scope", scope="registry:catalog:*""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].param("realm"), Some("http://127.0.0.1:9/t"));
        assert_eq!(c[0].param("error"), Some("insufficient_scope"));
        assert_eq!(c[0].param("scope"), Some("registry:catalog:*"));
    }

    #[test]
    fn parses_several_challenges_and_escapes() {
        let c = parse_challenges(
            r#"Basic realm="say \"hi\"", charset=UTF-8, Bearer realm=https://a/t,service=s"#,
        );
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(params(&c[0]), [("realm", "say \"hi\""), ("charset", "UTF-8")]);
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(params(&c[1]), [("realm", "https://a/t"), ("service", "s")]);
    }

    #[test]
    fn parses_bare_schemes_and_junk_without_panicking() {
        let c = parse_challenges("Negotiate, Basic");
        assert_eq!(c.iter().map(|c| c.scheme.as_str()).collect::<Vec<_>>(), ["negotiate", "basic"]);
        for junk in ["", ",,,", "=", "\"", "Bearer realm=\"unterminated", "Bearer realm=", "Bearer ,=x", "é"]
        {
            let _ = parse_challenges(junk);
        }
        let c = parse_challenges("Bearer realm=\"unterminated");
        assert_eq!(c[0].param("realm"), Some("unterminated"));
    }

    #[test]
    fn token_cache_expires_shortly_before_expires_in() {
        let t0 = Instant::now();
        let mut c = TokenCache::default();
        c.put("repository:a:pull".into(), "T1".into(), Some(300), t0);
        c.put("repository:b:pull".into(), "T2".into(), None, t0);
        assert_eq!(c.get("repository:a:pull", t0).as_deref(), Some("T1"));
        assert_eq!(c.get("repository:a:pull", t0 + Duration::from_secs(269)).as_deref(), Some("T1"));
        assert_eq!(c.get("repository:a:pull", t0 + Duration::from_secs(270)), None, "30 s margin");
        // The default lifetime is 60 s, used until 54 s.
        assert_eq!(c.get("repository:b:pull", t0 + Duration::from_secs(53)).as_deref(), Some("T2"));
        assert_eq!(c.get("repository:b:pull", t0 + Duration::from_secs(54)), None);
        // Per scope: another scope set has no token.
        assert_eq!(c.get("repository:a:pull,push", t0), None);
        c.remove("repository:a:pull");
        assert_eq!(c.get("repository:a:pull", t0), None);
    }

    #[test]
    fn token_lifetimes() {
        assert_eq!(usable_for(Some(60)), Duration::from_secs(54));
        assert_eq!(usable_for(Some(0)), Duration::from_secs(54));
        assert_eq!(usable_for(Some(5)), Duration::from_secs(4));
        assert_eq!(usable_for(Some(1)), Duration::ZERO);
        assert_eq!(usable_for(Some(3600)), Duration::from_secs(3570));
    }

    #[test]
    fn token_cache_is_bounded() {
        let t0 = Instant::now();
        let mut c = TokenCache::default();
        for i in 0..MAX_TOKENS + 10 {
            c.put(format!("s{i}"), "t".into(), Some(60), t0);
        }
        assert!(c.entries.len() <= MAX_TOKENS);
        assert_eq!(c.get(&format!("s{}", MAX_TOKENS + 9), t0).as_deref(), Some("t"));
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let e = crate::replication::adapter::Endpoint {
            id: 1,
            name: "peer".into(),
            kind: "docker-registry".into(),
            url: "http://127.0.0.1:5000/".into(),
            credential_type: "basic".into(),
            access_key: "alice".into(),
            access_secret: "s3cret-pw".into(),
            insecure: false,
            ca_certificate: String::new(),
        };
        let r = RemoteRegistry::new(&e).unwrap();
        let dbg = format!("{r:?}");
        assert!(dbg.contains("alice") && dbg.contains("http://127.0.0.1:5000"), "{dbg}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
        let h = r.basic_header().unwrap().unwrap();
        assert!(h.is_sensitive());
        assert!(!format!("{h:?}").contains("YWxpY2"), "{h:?}");
        assert!(!crate::replication::content::Content::registry_key(&r).contains("s3cret"));
    }
}

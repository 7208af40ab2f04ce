//! OpenID Connect against a real provider (`scripts/oidc-provider`, the npm `oidc-provider`,
//! started by `scripts/services.sh start oidc DIR`; `TEST_BERTH_OIDC_ISSUER`,
//! `TEST_BERTH_OIDC_CLIENT_ID`, `TEST_BERTH_OIDC_CLIENT_SECRET`: a missing variable fails the
//! test, it is never skipped) and against `FakeProvider`, a small provider in this file that
//! signs ID tokens wrongly on purpose (tampered, expired, wrong nonce).
//!
//! The browser is `Browser`: Berth is driven in-process (`TestApp`), the provider over HTTP
//! with a cookie jar; the login form is filled like a user would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{api, basic, DbChoice, Resp, TestApp, ADMIN_PASSWORD};

/// The callback URL Berth gives the provider (the default external URL).
const CALLBACK: &str = "http://127.0.0.1:8080/c/oidc/callback";
/// Ask the provider on every CLI-secret check (no credential cache).
const NO_CACHE: &str = "[auth]\ndirectory_cache = \"0s\"\n";

struct Env {
    issuer: String,
    client_id: String,
    client_secret: String,
}

fn env() -> Env {
    let var = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| {
            panic!("{k} is not set: start the test provider with `scripts/services.sh start oidc DIR` and source its output")
        })
    };
    Env {
        issuer: var("TEST_BERTH_OIDC_ISSUER"),
        client_id: var("TEST_BERTH_OIDC_CLIENT_ID"),
        client_secret: var("TEST_BERTH_OIDC_CLIENT_SECRET"),
    }
}

fn admin() -> String {
    basic("admin", ADMIN_PASSWORD)
}

async fn configure(app: &TestApp, issuer: &str, client_id: &str, secret: &str, auto_onboard: bool) {
    let r = api(
        app,
        Method::PUT,
        "/api/v2.0/configurations",
        &admin(),
        json!({
            "auth_mode": "oidc_auth",
            "oidc_name": "Test provider",
            "oidc_endpoint": issuer,
            "oidc_client_id": client_id,
            "oidc_client_secret": secret,
            "oidc_scope": "openid,profile,email,groups,offline_access",
            "oidc_groups_claim": "groups",
            "oidc_user_claim": "preferred_username",
            "oidc_admin_group": "admins",
            "oidc_auto_onboard": auto_onboard,
            "oidc_logout": true,
        }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "configure OIDC: {}", r.text());
}

async fn configure_real(app: &TestApp, auto_onboard: bool) -> Env {
    let e = env();
    configure(app, &e.issuer, &e.client_id, &e.client_secret, auto_onboard).await;
    e
}

/// A browser: Berth's `sid` cookie, the provider's cookies, no automatic redirects.
struct Browser {
    http: reqwest::Client,
    sid: Option<String>,
    jar: HashMap<String, String>,
}

impl Browser {
    fn new() -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { http, sid: None, jar: HashMap::new() }
    }

    async fn berth(
        &mut self,
        app: &TestApp,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> Resp {
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        let sid = self.sid.clone();
        if let Some(c) = sid.as_deref() {
            h.push(("cookie", c));
        }
        let r = app.call(method, path, &h, body).await;
        if let Some(c) = r.session_cookie() {
            self.sid = Some(c);
        }
        r
    }

    async fn get(&mut self, app: &TestApp, path: &str) -> Resp {
        self.berth(app, Method::GET, path, &[], String::new()).await
    }

    fn cookies(&self) -> String {
        self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep_cookies(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all(reqwest::header::SET_COOKIE) {
            let Ok(s) = v.to_str() else { continue };
            let first = s.split(';').next().unwrap_or("");
            let Some((k, val)) = first.split_once('=') else { continue };
            let expired = s.to_ascii_lowercase().contains("max-age=0") || s.contains("1970");
            if val.is_empty() || expired {
                self.jar.remove(k.trim());
            } else {
                self.jar.insert(k.trim().to_string(), val.to_string());
            }
        }
    }

    async fn provider(
        &mut self,
        method: reqwest::Method,
        url: &str,
        form: Option<&[(&str, &str)]>,
    ) -> reqwest::Response {
        let mut req = self.http.request(method, url).header("cookie", self.cookies());
        if let Some(f) = form {
            req = req.form(f);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        self.keep_cookies(&r);
        r
    }
}

fn location(r: &Resp) -> String {
    r.header("location").unwrap_or_else(|| panic!("no Location ({}): {}", r.status, r.text())).to_string()
}

/// The query parameter `k` of a URL.
fn param(url: &str, k: &str) -> Option<String> {
    let u = url::Url::parse(url).or_else(|_| url::Url::parse(&format!("http://x{url}"))).ok()?;
    u.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned())
}

/// Starts a login at Berth; returns the provider's authorization URL.
async fn start(app: &TestApp, b: &mut Browser, issuer: &str) -> String {
    let r = b.get(app, "/c/oidc/login?redirect_url=/harbor/projects").await;
    assert!(r.status.is_redirection(), "{}: {}", r.status, r.text());
    let loc = location(&r);
    assert!(loc.starts_with(issuer), "login goes to the provider: {loc}");
    assert_eq!(param(&loc, "code_challenge_method").as_deref(), Some("S256"));
    assert!(param(&loc, "state").is_some() && param(&loc, "nonce").is_some());
    loc
}

/// Signs in at the provider from an authorization URL; returns the callback URL it sends the
/// browser back to.
async fn at_provider(b: &mut Browser, issuer: &str, mut url: String, user: &str, pass: &str) -> String {
    for _ in 0..10 {
        if url.starts_with(CALLBACK) {
            return url;
        }
        let r = b.provider(reqwest::Method::GET, &url, None).await;
        if r.status().is_redirection() {
            let loc = r.headers()["location"].to_str().unwrap().to_string();
            url = if loc.starts_with('/') { format!("{issuer}{loc}") } else { loc };
            continue;
        }
        let status = r.status();
        let html = r.text().await.unwrap();
        assert_eq!(status, 200, "{url}: {html}");
        let action = html.split("action=\"").nth(1).and_then(|s| s.split('"').next()).expect("login form");
        let r = b
            .provider(
                reqwest::Method::POST,
                &format!("{issuer}{action}"),
                Some(&[("username", user), ("password", pass)]),
            )
            .await;
        assert!(r.status().is_redirection(), "the provider accepted the password: {}", r.status());
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        url = if loc.starts_with('/') { format!("{issuer}{loc}") } else { loc };
    }
    panic!("the provider never sent the browser back: {url}");
}

/// The whole login; returns Berth's answer to the callback.
async fn login(app: &TestApp, b: &mut Browser, issuer: &str, user: &str, pass: &str) -> Resp {
    let auth = start(app, b, issuer).await;
    let back = at_provider(b, issuer, auth, user, pass).await;
    b.get(app, back.strip_prefix("http://127.0.0.1:8080").unwrap()).await
}

/// The signed-in user (`/users/current`) and the CSRF token.
async fn current(app: &TestApp, b: &mut Browser) -> (StatusCode, Value, String) {
    let r = b.get(app, "/api/v2.0/users/current").await;
    let csrf = r.header("x-harbor-csrf-token").unwrap_or("").to_string();
    let body = if r.status == StatusCode::OK { r.json() } else { Value::Null };
    (r.status, body, csrf)
}

fn sign_in_error(r: &Resp) -> String {
    assert!(r.status.is_redirection(), "{}: {}", r.status, r.text());
    let loc = location(r);
    assert!(loc.starts_with("/account/sign-in?error=oidc"), "back to the sign-in page: {loc}");
    param(&loc, "message").unwrap_or_default()
}

async fn token_status(app: &TestApp, auth: &str, scope: &str) -> (StatusCode, Value) {
    let q = format!(
        "/service/token?service=harbor-registry&scope={}",
        url::form_urlencoded::byte_serialize(scope.as_bytes()).collect::<String>()
    );
    let r = app.get_with(&q, &[("authorization", auth)]).await;
    let v = if r.status == StatusCode::OK { r.json() } else { Value::Null };
    (r.status, v)
}

fn token_actions(t: &Value) -> Vec<String> {
    use base64::Engine;
    let jwt = t["token"].as_str().unwrap();
    let payload = jwt.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap())
            .unwrap();
    claims["access"][0]["actions"]
        .as_array()
        .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

async fn group_id(app: &TestApp, name: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM user_groups WHERE group_name = $1 AND group_type = 3")
        .bind(name)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap_or_else(|e| panic!("OIDC group {name}: {e}"))
}

async fn expire_token(app: &TestApp, user_id: i64) {
    sqlx::query("UPDATE oidc_users SET token_expires_at = 0 WHERE user_id = $1")
        .bind(user_id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
}

both_dbs!(oidcprovider_login_onboards_with_groups_and_cli_secret, toml = NO_CACHE, |app| {
    let e = configure_real(&app, true).await;
    let mut b = Browser::new();
    let r = login(&app, &mut b, &e.issuer, "olivia", "Olivia-pass-1").await;
    assert!(r.status.is_redirection(), "{}: {}", r.status, r.text());
    assert_eq!(location(&r), "/harbor/projects");
    let (status, me, _) = current(&app, &mut b).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["username"], "olivia");
    assert_eq!(me["email"], "olivia@example.test");
    assert_eq!(me["admin_role_in_auth"], false);
    let meta = &me["oidc_user_meta"];
    assert_eq!(meta["subiss"], format!("sub-olivia{}", e.issuer));
    let secret = meta["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 32);

    // The provider's group "developers" is a project member: olivia may push.
    let r =
        api(&app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": "oidcproj"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let project: i64 = sqlx::query_scalar("SELECT id FROM projects WHERE name = 'oidcproj'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let gid = group_id(&app, "developers").await;
    sqlx::query(
        "INSERT INTO project_members (project_id, group_id, entity_type, role, created_at, updated_at) \
         VALUES ($1, $2, 'g', 2, 0, 0)",
    )
    .bind(project)
    .bind(gid)
    .execute(&app.state.db.pool)
    .await
    .unwrap();
    let r = b.get(&app, "/api/v2.0/projects/oidcproj").await;
    assert_eq!(r.status, StatusCode::OK, "the session's groups give access: {}", r.text());

    // The CLI secret: token service and REST Basic auth; the password form refuses it.
    let (st, t) = token_status(&app, &basic("olivia", &secret), "repository:oidcproj/app:push,pull").await;
    assert_eq!(st, StatusCode::OK);
    let mut acts = token_actions(&t);
    acts.sort();
    assert_eq!(acts, ["pull", "push"]);
    let r = api(&app, Method::GET, "/api/v2.0/users/current", &basic("olivia", &secret), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["username"], "olivia");
    let r =
        api(&app, Method::GET, "/api/v2.0/users/current", &basic("olivia", "Wrong-secret-1"), Value::Null)
            .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .call(
            Method::POST,
            "/c/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            format!("principal=olivia&password={secret}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "OIDC users sign in through the provider");

    // An audit row for the login.
    app.state.audit.flush(&app.state.db).await.unwrap();
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE username = 'olivia' AND operation = 'login'",
    )
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert!(n >= 1, "the OIDC login is audited");

    // A returning user is found by subiss (no second user); oscar's admin group makes him
    // a system admin.
    let mut b2 = Browser::new();
    let r = login(&app, &mut b2, &e.issuer, "olivia", "Olivia-pass-1").await;
    assert!(r.status.is_redirection());
    let (_, me2, _) = current(&app, &mut b2).await;
    assert_eq!(me2["user_id"], me["user_id"]);
    let mut b3 = Browser::new();
    login(&app, &mut b3, &e.issuer, "oscar", "Oscar-pass-1").await;
    let (_, oscar, _) = current(&app, &mut b3).await;
    assert_eq!(oscar["username"], "oscar");
    assert_eq!(oscar["admin_role_in_auth"], true);

    // Logout ends the provider's session too (oidc_logout): a redirect to end_session.
    let r = b.get(&app, "/c/log_out").await;
    assert!(r.status.is_redirection(), "{}: {}", r.status, r.text());
    let loc = location(&r);
    assert!(loc.starts_with(&format!("{}/session/end", e.issuer)), "{loc}");
    assert!(param(&loc, "id_token_hint").is_some());
    assert_eq!(current(&app, &mut b).await.0, StatusCode::UNAUTHORIZED);
});

async fn put(app: &TestApp, b: &mut Browser, path: &str, csrf: &str, body: Value) -> Resp {
    let h = [("content-type", "application/json"), ("x-harbor-csrf-token", csrf)];
    b.berth(app, Method::PUT, path, &h, body.to_string()).await
}

#[tokio::test]
async fn oidcprovider_cli_secret_can_be_set_and_the_old_one_stops_working() {
    let app = TestApp::builder(DbChoice::Sqlite).toml(NO_CACHE).build().await;
    let e = configure_real(&app, true).await;
    let mut b = Browser::new();
    login(&app, &mut b, &e.issuer, "olivia", "Olivia-pass-1").await;
    let (_, me, csrf) = current(&app, &mut b).await;
    let id = me["user_id"].as_i64().unwrap();
    let old = me["oidc_user_meta"]["secret"].as_str().unwrap().to_string();
    let path = format!("/api/v2.0/users/{id}/cli_secret");
    for weak in ["short1A", "alllowercase1", "ALLUPPERCASE1", "NoDigitsHere"] {
        let r = put(&app, &mut b, &path, &csrf, json!({"secret": weak})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{weak}: {}", r.text());
    }
    let r = put(&app, &mut b, &path, &csrf, json!({"secret": "New-Secret-42"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = api(&app, Method::GET, "/api/v2.0/users/current", &basic("olivia", &old), Value::Null).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the old secret stops working");
    let r = api(&app, Method::GET, "/api/v2.0/users/current", &basic("olivia", "New-Secret-42"), Value::Null)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let (_, me, _) = current(&app, &mut b).await;
    assert_eq!(me["oidc_user_meta"]["secret"], "New-Secret-42");

    // Only the user and system admins; only OIDC users (412 otherwise).
    let r = api(&app, Method::PUT, &path, &admin(), json!({"secret": "Admin-Set-42"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = api(&app, Method::GET, &format!("/api/v2.0/users/{id}"), &admin(), Value::Null).await;
    assert_eq!(r.json()["oidc_user_meta"]["secret"], "Admin-Set-42");
    let r = put(&app, &mut b, &path, &csrf, json!({"secret": "Other-User-42"})).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = b
        .berth(
            &app,
            Method::PUT,
            "/api/v2.0/users/1/cli_secret",
            &[("content-type", "application/json"), ("x-harbor-csrf-token", &csrf)],
            json!({"secret": "Not-Mine-42"}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r =
        api(&app, Method::PUT, "/api/v2.0/users/1/cli_secret", &admin(), json!({"secret": "Admin-Own-42"}))
            .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "admin is a local user: {}", r.text());
}

#[tokio::test]
async fn oidcprovider_cli_secret_stops_working_when_the_refresh_is_refused() {
    let app = TestApp::builder(DbChoice::Sqlite).toml(NO_CACHE).build().await;
    let e = configure_real(&app, true).await;
    let mut b = Browser::new();
    login(&app, &mut b, &e.issuer, "otto", "Otto-pass-1").await;
    let (_, me, _) = current(&app, &mut b).await;
    let id = me["user_id"].as_i64().unwrap();
    let secret = me["oidc_user_meta"]["secret"].as_str().unwrap().to_string();
    let auth = basic("otto", &secret);

    // An expired access token is refreshed with the refresh token; the new expiry is stored.
    expire_token(&app, id).await;
    let (st, _) = token_status(&app, &auth, "repository:library/x:pull").await;
    assert_eq!(st, StatusCode::OK, "the refresh succeeds");
    let exp: i64 = sqlx::query_scalar("SELECT token_expires_at FROM oidc_users WHERE user_id = $1")
        .bind(id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert!(exp > server::db::now_ms(), "the refreshed token's expiry is stored");

    // The provider revokes the grant: the next refresh is refused, the secret stops working.
    let r = reqwest::Client::new().post(format!("{}/test/revoke?user=otto", e.issuer)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    expire_token(&app, id).await;
    let (st, _) = token_status(&app, &auth, "repository:library/x:pull").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let r = api(&app, Method::GET, "/api/v2.0/users/current", &auth, Value::Null).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn oidcprovider_without_auto_onboard_the_user_picks_a_username() {
    let app = TestApp::new(DbChoice::Sqlite).await;
    let e = configure_real(&app, false).await;
    let mut b = Browser::new();
    let r = login(&app, &mut b, &e.issuer, "olivia", "Olivia-pass-1").await;
    assert_eq!(location(&r), "/c/oidc/onboard");
    assert_eq!(current(&app, &mut b).await.0, StatusCode::UNAUTHORIZED, "not signed in yet");
    let r = b.get(&app, "/c/oidc/onboard").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("value=\"olivia\""), "{}", r.text());
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let r = b.berth(&app, Method::POST, "/c/oidc/onboard", &form, "username=admin".into()).await;
    assert!(location(&r).starts_with("/c/oidc/onboard?error="), "a taken name is refused");
    let r = b.berth(&app, Method::POST, "/c/oidc/onboard", &form, "username=bad%2Fname".into()).await;
    assert!(location(&r).starts_with("/c/oidc/onboard?error="), "an invalid name is refused");
    let r = b.berth(&app, Method::POST, "/c/oidc/onboard", &form, "username=olly".into()).await;
    assert_eq!(location(&r), "/harbor/projects");
    let (_, me, _) = current(&app, &mut b).await;
    assert_eq!(me["username"], "olly");
    // Next time the provider identity finds olly without asking.
    let mut b2 = Browser::new();
    let r = login(&app, &mut b2, &e.issuer, "olivia", "Olivia-pass-1").await;
    assert_eq!(location(&r), "/harbor/projects");
    assert_eq!(current(&app, &mut b2).await.1["username"], "olly");
}

#[tokio::test]
async fn oidcprovider_callback_with_a_wrong_state_is_refused() {
    let app = TestApp::new(DbChoice::Sqlite).await;
    let e = configure_real(&app, true).await;
    let mut b = Browser::new();
    let auth = start(&app, &mut b, &e.issuer).await;
    let back = at_provider(&mut b, &e.issuer, auth, "olivia", "Olivia-pass-1").await;
    let good = param(&back, "state").unwrap();
    let path = back.strip_prefix("http://127.0.0.1:8080").unwrap().replace(&good, "forged-state");
    let r = b.get(&app, &path).await;
    assert!(sign_in_error(&r).contains("state"));
    assert_eq!(current(&app, &mut b).await.0, StatusCode::UNAUTHORIZED);
    // The pending login is gone: replaying the right state does not work either.
    let r = b.get(&app, back.strip_prefix("http://127.0.0.1:8080").unwrap()).await;
    sign_in_error(&r);
    // A callback without any login started.
    let mut other = Browser::new();
    sign_in_error(&other.get(&app, "/c/oidc/callback?code=x&state=y").await);
    // An error from the provider.
    let auth = start(&app, &mut other, &e.issuer).await;
    let st = param(&auth, "state").unwrap();
    let r = other.get(&app, &format!("/c/oidc/callback?error=access_denied&state={st}")).await;
    assert!(sign_in_error(&r).contains("access_denied"));
}

#[tokio::test]
async fn oidcprovider_login_redirect_stays_on_this_site() {
    let app = TestApp::new(DbChoice::Sqlite).await;
    let e = configure_real(&app, true).await;
    let mut b = Browser::new();
    let r = b.get(&app, "/c/oidc/login?redirect_url=//evil.example/x").await;
    let back = at_provider(&mut b, &e.issuer, location(&r), "olivia", "Olivia-pass-1").await;
    let r = b.get(&app, back.strip_prefix("http://127.0.0.1:8080").unwrap()).await;
    assert_eq!(location(&r), "/harbor/projects");
}

#[tokio::test]
async fn oidc_unreachable_provider_is_a_clear_error_and_admin_still_logs_in() {
    let app = TestApp::new(DbChoice::Sqlite).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    configure(&app, &format!("http://127.0.0.1:{port}"), "berth", "s", true).await;
    let mut b = Browser::new();
    let r = b.get(&app, "/c/oidc/login").await;
    let m = sign_in_error(&r);
    assert!(m.contains("cannot be reached"), "{m}");
    app.login("admin", ADMIN_PASSWORD).await;
    let r = api(&app, Method::GET, "/api/v2.0/users/current", &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK);
    // The ping says the same.
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/system/oidc/ping",
        &admin(),
        json!({"url": format!("http://127.0.0.1:{port}")}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r =
        api(&app, Method::POST, "/api/v2.0/system/oidc/ping", &admin(), json!({"url": env().issuer})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r =
        api(&app, Method::POST, "/api/v2.0/system/oidc/ping", &admin(), json!({"url": "http://idp.example"}))
            .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "http only to loopback");
}

#[tokio::test]
async fn oidc_routes_answer_412_or_sign_in_outside_oidc_mode() {
    let app = TestApp::new(DbChoice::Sqlite).await;
    let mut b = Browser::new();
    assert!(sign_in_error(&b.get(&app, "/c/oidc/login").await).contains("oidc_auth"));
    let r = api(&app, Method::PUT, "/api/v2.0/users/1/cli_secret", &admin(), json!({"secret": "Abcdefg123"}))
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
}

// ---- a provider that signs wrongly ------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Good,
    /// Signed with a key that is not in the JWKS (same key id).
    WrongKey,
    Expired,
    WrongNonce,
    WrongAudience,
}

struct FakeState {
    issuer: String,
    mode: Mode,
    nonce: String,
}

struct FakeProvider {
    issuer: String,
    state: Arc<Mutex<FakeState>>,
    task: tokio::task::JoinHandle<()>,
}

struct Keys {
    good: jsonwebtoken::EncodingKey,
    bad: jsonwebtoken::EncodingKey,
    jwk: Value,
}

fn keys() -> Keys {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let good = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let bad = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let pem = |k: &p256::SecretKey| k.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let mut jwk: Value = serde_json::from_str(&good.public_key().to_jwk_string()).unwrap();
    jwk["kid"] = json!("k1");
    jwk["alg"] = json!("ES256");
    jwk["use"] = json!("sig");
    Keys {
        good: jsonwebtoken::EncodingKey::from_ec_pem(pem(&good).as_bytes()).unwrap(),
        bad: jsonwebtoken::EncodingKey::from_ec_pem(pem(&bad).as_bytes()).unwrap(),
        jwk,
    }
}

impl FakeProvider {
    async fn start() -> FakeProvider {
        use axum::routing::{get, post};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(FakeState {
            issuer: issuer.clone(),
            mode: Mode::Good,
            nonce: String::new(),
        }));
        let keys = Arc::new(keys());
        let disc = {
            let issuer = issuer.clone();
            move || {
                let i = issuer.clone();
                async move {
                    axum::Json(json!({
                        "issuer": i,
                        "authorization_endpoint": format!("{i}/auth"),
                        "token_endpoint": format!("{i}/token"),
                        "jwks_uri": format!("{i}/jwks"),
                        "response_types_supported": ["code"],
                        "subject_types_supported": ["public"],
                        "id_token_signing_alg_values_supported": ["ES256"],
                    }))
                }
            }
        };
        let jwks = {
            let k = keys.clone();
            move || {
                let jwk = k.jwk.clone();
                async move { axum::Json(json!({"keys": [jwk]})) }
            }
        };
        let token = {
            let (k, s) = (keys.clone(), state.clone());
            move || {
                let (k, s) = (k.clone(), s.clone());
                async move {
                    let (issuer, mode, nonce) = {
                        let s = s.lock().unwrap();
                        (s.issuer.clone(), s.mode, s.nonce.clone())
                    };
                    let now = server::db::now_ms() / 1000;
                    let claims = json!({
                        "iss": issuer,
                        "sub": "fake-sub",
                        "aud": if mode == Mode::WrongAudience { "someone-else" } else { "berth" },
                        "iat": now - 10,
                        "exp": if mode == Mode::Expired { now - 600 } else { now + 300 },
                        "nonce": if mode == Mode::WrongNonce { "another-nonce".to_string() } else { nonce },
                        "preferred_username": "fakeuser",
                        "groups": ["fakers"],
                    });
                    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
                    h.kid = Some("k1".into());
                    let key = if mode == Mode::WrongKey { &k.bad } else { &k.good };
                    let id_token = jsonwebtoken::encode(&h, &claims, key).unwrap();
                    axum::Json(json!({
                        "access_token": "at", "token_type": "Bearer", "expires_in": 300,
                        "refresh_token": "rt", "id_token": id_token,
                    }))
                }
            }
        };
        let router = axum::Router::new()
            .route("/.well-known/openid-configuration", get(disc))
            .route("/jwks", get(jwks))
            .route("/token", post(token));
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        FakeProvider { issuer, state, task }
    }

    fn set(&self, mode: Mode, nonce: &str) {
        let mut s = self.state.lock().unwrap();
        s.mode = mode;
        s.nonce = nonce.to_string();
    }
}

/// Starts a login against the fake provider and calls back with a code; returns the answer.
async fn fake_login(app: &TestApp, fake: &FakeProvider, b: &mut Browser, mode: Mode) -> Resp {
    let auth = start(app, b, &fake.issuer).await;
    fake.set(mode, &param(&auth, "nonce").unwrap());
    let st = param(&auth, "state").unwrap();
    b.get(app, &format!("/c/oidc/callback?code=c0de&state={st}")).await
}

#[tokio::test]
async fn oidc_tampered_expired_or_misdirected_id_tokens_are_refused() {
    let app = TestApp::builder(DbChoice::Sqlite).toml(NO_CACHE).build().await;
    let fake = FakeProvider::start().await;
    configure(&app, &fake.issuer, "berth", "fake-secret", true).await;
    for (mode, words) in [
        (Mode::WrongKey, "ignature"),
        (Mode::Expired, "xpired"),
        (Mode::WrongNonce, "nonce"),
        (Mode::WrongAudience, "udience"),
    ] {
        let mut b = Browser::new();
        let r = fake_login(&app, &fake, &mut b, mode).await;
        let m = sign_in_error(&r);
        assert!(m.contains(words), "{mode:?}: {m}");
        assert_eq!(current(&app, &mut b).await.0, StatusCode::UNAUTHORIZED, "{mode:?}");
    }
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM oidc_users").fetch_one(&app.state.db.pool).await.unwrap();
    assert_eq!(n, 0, "no user was onboarded");

    // The same provider signing correctly: signed in.
    let mut b = Browser::new();
    let r = fake_login(&app, &fake, &mut b, Mode::Good).await;
    assert_eq!(location(&r), "/harbor/projects", "{:?}", r.header("location"));
    let (_, me, _) = current(&app, &mut b).await;
    assert_eq!(me["username"], "fakeuser");
    let id = me["user_id"].as_i64().unwrap();
    let secret = me["oidc_user_meta"]["secret"].as_str().unwrap().to_string();

    // The provider goes down: a CLI secret whose token must be refreshed is "unavailable"
    // (503), not a success and not a wrong password; the admin still logs in.
    let FakeProvider { task, .. } = fake;
    task.abort();
    let _ = task.await;
    expire_token(&app, id).await;
    let r = api(&app, Method::GET, "/api/v2.0/users/current", &basic("fakeuser", &secret), Value::Null).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    app.login("admin", ADMIN_PASSWORD).await;
}

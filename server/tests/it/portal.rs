//! The portal through the real router: server-rendered pages, JavaScript-free form login,
//! redirects, and the cross-site guard on server functions.

use crate::common::{Resp, TestApp};
use axum::http::{Method, StatusCode};

const HTML_FORM: [(&str, &str); 2] =
    [("content-type", "application/x-www-form-urlencoded"), ("accept", "text/html,application/xhtml+xml")];

/// `POST /portal/fn/login` with a form body and the `extra` headers.
async fn form_post(app: &TestApp, extra: &[(&str, &str)], body: &str) -> Resp {
    let mut headers = vec![HTML_FORM[0]];
    headers.extend_from_slice(extra);
    app.call(Method::POST, "/portal/fn/login", &headers, body.to_string()).await
}

both_dbs!(sign_in_page_renders_without_javascript, |app| {
    let r = app.get_with("/account/sign-in", &[("accept", "text/html")]).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(html.contains(r#"action="/portal/fn/login""#), "{html}");
    assert!(html.contains(r#"name="username""#) && html.contains(r#"name="password""#));
    assert!(html.contains("/pkg/berth.js") && html.contains("/pkg/berth.wasm"), "hydration scripts");
    assert!(html.contains("/pkg/berth.css"));
});

both_dbs!(projects_page_requires_a_session, |app| {
    let r = app.get_with("/harbor/projects", &[("accept", "text/html")]).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text());
    assert_eq!(r.header("location"), Some("/account/sign-in?redirect_url=/harbor/projects"));
    let r = app.get_with("/", &[("accept", "text/html")]).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.header("location"), Some("/harbor/projects"));
});

both_dbs!(form_login_then_projects_page_lists_library, |app| {
    let r = app
        .call(
            Method::POST,
            "/portal/fn/login",
            &HTML_FORM,
            "username=admin&password=Harbor12345&redirect_url=%2Fharbor%2Fprojects%3Fname%3Dlib",
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text());
    assert_eq!(r.header("location"), Some("/harbor/projects?name=lib"));
    let cookie = r.session_cookie().expect("session cookie");
    let set_cookie = r.header("set-cookie").unwrap().to_ascii_lowercase();
    assert!(set_cookie.contains("httponly") && set_cookie.contains("samesite=lax"), "{set_cookie}");

    let r = app.get_with("/harbor/projects", &[("accept", "text/html"), ("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(html.contains(">library<"), "{html}");
    assert!(html.contains("Public"));
    assert!(html.contains(r#"data-testid="current-user""#) && html.contains(">admin</a>"), "{html}");

    // Logout through the form ends the session.
    let r = app
        .call(Method::POST, "/portal/fn/logout", &[HTML_FORM[0], HTML_FORM[1], ("cookie", &cookie)], "")
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.header("location"), Some("/account/sign-in"));
    let r = app.get_with("/harbor/projects", &[("accept", "text/html"), ("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::FOUND);
});

both_dbs!(failed_form_login_comes_back_with_the_reason, |app| {
    let r = app
        .call(
            Method::POST,
            "/portal/fn/login",
            &HTML_FORM,
            "username=admin&password=nope&redirect_url=https%3A%2F%2Fevil.example",
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    let loc = r.header("location").unwrap().to_string();
    assert_eq!(loc, "/account/sign-in?error=credentials&redirect_url=/harbor/projects");
    let html = app.get_with(&loc, &[("accept", "text/html")]).await.text();
    assert!(html.contains("invalid username or password"), "{html}");
});

both_dbs!(open_redirects_are_refused, |app| {
    let r = app
        .call(
            Method::POST,
            "/portal/fn/login",
            &HTML_FORM,
            "username=admin&password=Harbor12345&redirect_url=%2F%2Fevil.example",
        )
        .await;
    assert_eq!(r.header("location"), Some("/harbor/projects"));
});

both_dbs!(server_functions_refuse_cross_site_posts, |app| {
    let body = "username=admin&password=Harbor12345&redirect_url=";
    let r = form_post(&app, &[("sec-fetch-site", "cross-site")], body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "FORBIDDEN");
    let r = form_post(&app, &[("origin", "https://evil.example"), ("host", "127.0.0.1:8080")], body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // X-Forwarded-Host names the host only when a trusted proxy sent it (none here).
    let r = form_post(
        &app,
        &[
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "evil.example"),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = form_post(&app, &[("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")], body).await;
    assert_ne!(r.status, StatusCode::FORBIDDEN);
    let r = form_post(&app, &[("sec-fetch-site", "same-origin")], body).await;
    assert_ne!(r.status, StatusCode::FORBIDDEN);
});

both_dbs!(server_function_data_needs_a_session, |app| {
    let r = app
        .call(
            Method::POST,
            "/portal/fn/api",
            &[("content-type", "application/json"), ("accept", "application/json")],
            r#"{"method":"GET","path":"/users/current","body":null}"#,
        )
        .await;
    assert!(r.status.is_server_error() || r.status.is_client_error(), "{}", r.status);
    assert!(r.text().contains("Unauthorized"), "{}", r.text());
});

both_dbs!(unknown_pages_are_404, |app| {
    let r = app.get_with("/no/such/page", &[("accept", "text/html")]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains("Page not found"));
});

both_dbs!(language_switch_sets_a_cookie_and_the_server_renders_in_it, |app| {
    let r = app
        .get("/language?lang=zh-CN&redirect=%2Faccount%2Fsign-in%3Fredirect_url%3D%252Fharbor%252Fprojects")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.header("location"), Some("/account/sign-in?redirect_url=%2Fharbor%2Fprojects"));
    let cookie = r.header("set-cookie").expect("a cookie").to_string();
    assert!(cookie.starts_with("berth-lang=zh-CN;") && cookie.contains("Max-Age=31536000"), "{cookie}");
    // Only same-site paths: anything else goes to the projects page.
    let r = app.get("/language?lang=en-us&redirect=%2F%2Fevil.example").await;
    assert_eq!(r.header("location"), Some("/harbor/projects"));
    let r = app.get("/language?lang=klingon").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["errors"][0]["code"], "BAD_REQUEST");
    // The server-rendered page in Chinese, <html lang> telling the hydrating client.
    let r =
        app.get_with("/account/sign-in", &[("accept", "text/html"), ("cookie", "berth-lang=zh-CN")]).await;
    let html = r.text();
    assert!(html.contains(r#"<html lang="zh-CN""#), "{html}");
    assert!(html.contains("用户名") && html.contains("登录") && !html.contains(">Username<"), "{html}");
    let r = app.get_with("/account/sign-in", &[("accept", "text/html")]).await;
    let html = r.text();
    assert!(html.contains(r#"<html lang="en-US""#) && html.contains(">Username<"), "{html}");
});

// Server-function errors carry the status of what went wrong (Leptos answers 500 for all).
both_dbs!(server_function_errors_are_4xx_not_500, |app| {
    const FETCH: [(&str, &str); 2] =
        [("content-type", "application/x-www-form-urlencoded"), ("accept", "application/json")];
    let r = app
        .call(Method::POST, "/portal/fn/login", &FETCH, "username=admin&password=wrong&redirect_url=")
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert!(r.text().contains("InvalidCredentials"), "{}", r.text());
    // No session: the data functions say "sign in".
    let r = app.call(Method::POST, "/portal/fn/stop_gc", &FETCH, "id=1").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    let r = app.call(Method::POST, "/portal/fn/start_gc", &FETCH, "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    // Arguments that do not decode are the caller's error: 400, with Leptos's message.
    let (cookie, _) = app.login("admin", "Harbor12345").await;
    let form = [FETCH[0], FETCH[1], ("cookie", cookie.as_str()), ("sec-fetch-site", "same-origin")];
    for (path, body) in [
        ("/portal/fn/stop_gc", "id=abc"),
        ("/portal/fn/schedule_gc", "cron=x"),
        ("/portal/fn/login", "password=x"),
    ] {
        let r = app.call(Method::POST, path, &form, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path} {body}: {}", r.text());
        assert!(r.text().contains("Invalid"), "{}", r.text());
    }
    let json = [
        ("content-type", "application/json"),
        FETCH[1],
        ("cookie", cookie.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    for body in ["not json", r#"{"method":7}"#, "{}"] {
        let r = app.call(Method::POST, "/portal/fn/api", &json, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text());
    }
});

// The portal's reads and writes: one server function relays them to the REST handlers as the
// session's user — same RBAC, validation, messages and audit rows as the API itself.
both_dbs!(portal_api_relays_rest_calls_as_the_session_user, |app| {
    let fetch = |cookie: &str| -> Vec<(&'static str, String)> {
        vec![
            ("content-type", "application/json".into()),
            ("accept", "application/json".into()),
            ("sec-fetch-site", "same-origin".into()),
            ("cookie", cookie.to_string()),
        ]
    };
    let call = |cookie: String, method: &'static str, path: &'static str, body: Option<serde_json::Value>| {
        let app = &app;
        async move {
            let h = fetch(&cookie);
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let req =
                serde_json::json!({ "method": method, "path": path, "body": body.map(|b| b.to_string()) });
            app.call(Method::POST, "/portal/fn/api", &h, req.to_string()).await
        }
    };
    let (admin, _) = app.login("admin", "Harbor12345").await;
    // A write without the CSRF header (the relay is the portal's own call) creates the project,
    // and the API's audit row names the session's user.
    let r = call(admin.clone(), "POST", "/projects", Some(serde_json::json!({ "project_name": "relayed" })))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["status"], 201);
    let r = app
        .get_with(
            "/api/v2.0/projects/relayed",
            &[("authorization", &crate::common::basic("admin", "Harbor12345"))],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Reads carry the body and X-Total-Count.
    let r = call(admin.clone(), "GET", "/projects?page_size=1", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.json()["total"].as_i64().unwrap() >= 2, "{}", r.text());
    let rows: serde_json::Value = serde_json::from_str(r.json()["body"].as_str().unwrap()).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    // The API's 4xx come back with the API's message and status.
    let r = call(admin.clone(), "POST", "/projects", Some(serde_json::json!({ "project_name": "relayed" })))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains("already exists"), "{}", r.text());
    let r = call(admin.clone(), "TRACE", "/projects", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());

    // A guest of the project may read but not write; nobody signed in may do neither; Basic
    // credentials sent to the relay are not used.
    let basic = crate::common::basic("admin", "Harbor12345");
    let h = [("authorization", basic.as_str()), ("content-type", "application/json")];
    let r = app
        .call(
            Method::POST,
            "/api/v2.0/users",
            &h,
            r#"{"username":"relay-guest","password":"Passw0rd1","email":"g@example.com"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = app
        .call(
            Method::POST,
            "/api/v2.0/projects/relayed/members",
            &h,
            r#"{"role_id":3,"member_user":{"username":"relay-guest"}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let (guest, _) = app.login("relay-guest", "Passw0rd1").await;
    assert_eq!(call(guest.clone(), "GET", "/projects/relayed/summary", None).await.status, StatusCode::OK);
    let r = call(guest.clone(), "DELETE", "/projects/relayed", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = call(String::new(), "DELETE", "/projects/relayed", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    let r = app
        .call(
            Method::POST,
            "/portal/fn/api",
            &[("content-type", "application/json"), ("authorization", basic.as_str())],
            r#"{"method":"DELETE","path":"/projects/relayed","body":null}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    // Cross-site: refused before anything runs.
    let r = app
        .call(
            Method::POST,
            "/portal/fn/api",
            &[("content-type", "application/json"), ("sec-fetch-site", "cross-site"), ("cookie", &admin)],
            r#"{"method":"DELETE","path":"/projects/relayed","body":null}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = call(admin.clone(), "DELETE", "/projects/relayed", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = app.get_with("/api/v2.0/audit-logs?q=resource=relayed", &[("authorization", &basic)]).await;
    let ops: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|l| format!("{} {}", l["username"].as_str().unwrap(), l["operation"].as_str().unwrap()))
        .collect();
    assert!(
        ops.contains(&"admin create".to_string()) && ops.contains(&"admin delete".to_string()),
        "{ops:?}"
    );
});

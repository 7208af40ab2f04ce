//! The portal through the real router: server-rendered pages, JavaScript-free form login,
//! redirects, and the cross-site guard on server functions.

mod common;

use axum::http::{Method, StatusCode};

const HTML_FORM: [(&str, &str); 2] =
    [("content-type", "application/x-www-form-urlencoded"), ("accept", "text/html,application/xhtml+xml")];

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
    assert!(html.contains(r#"data-testid="current-user" class="user-name">admin<"#), "{html}");

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
    let r = app
        .call(Method::POST, "/portal/fn/login", &[HTML_FORM[0], ("sec-fetch-site", "cross-site")], body)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "FORBIDDEN");
    let r = app
        .call(
            Method::POST,
            "/portal/fn/login",
            &[HTML_FORM[0], ("origin", "https://evil.example"), ("host", "127.0.0.1:8080")],
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .call(
            Method::POST,
            "/portal/fn/login",
            &[HTML_FORM[0], ("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")],
            body,
        )
        .await;
    assert_ne!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .call(Method::POST, "/portal/fn/login", &[HTML_FORM[0], ("sec-fetch-site", "same-origin")], body)
        .await;
    assert_ne!(r.status, StatusCode::FORBIDDEN);
});

both_dbs!(server_function_data_needs_a_session, |app| {
    let r = app
        .call(
            Method::POST,
            "/portal/fn/list_projects",
            &[("content-type", "application/x-www-form-urlencoded"), ("accept", "application/json")],
            "name=&page=1",
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
    let r =
        app.call(Method::POST, "/portal/fn/list_artifacts", &FETCH, "repository=library%2Fnone&page=1").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    let r = app.call(Method::POST, "/portal/fn/gc_status", &FETCH, "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
});

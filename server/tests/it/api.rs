//! REST API and portal-login behaviour through the real router, on SQLite and PostgreSQL.
//! Paths mirror the URL tree: operations, users, projects, sessions, portal.

use crate::common::{basic, ADMIN_PASSWORD};
use axum::http::{Method, StatusCode};

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
const JSON: (&str, &str) = ("content-type", "application/json");

both_dbs!(ping_and_request_ids, |app| {
    let r = app.get("/api/v2.0/ping").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "Pong");
    let generated = r.header("x-request-id").expect("request id generated").to_string();
    assert_eq!(generated.len(), 36);
    let r = app.get_with("/api/v2.0/ping", &[("x-request-id", "my-trace-42")]).await;
    assert_eq!(r.header("x-request-id"), Some("my-trace-42"));
});

both_dbs!(health_reports_components, |app| {
    let r = app.get("/api/v2.0/health").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let j = r.json();
    assert_eq!(j["status"], "healthy");
    let names: Vec<_> =
        j["components"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["core", "database", "storage"]);
});

both_dbs!(health_reports_broken_storage, |app| {
    // Replace the storage directory by a file: the probe must fail and readiness must say so.
    std::fs::remove_dir_all(&app.state.storage_root).unwrap();
    std::fs::write(&app.state.storage_root, b"not a directory").unwrap();
    let r = app.get("/api/v2.0/health").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let j = r.json();
    assert_eq!(j["status"], "unhealthy");
    let storage =
        j["components"].as_array().unwrap().iter().find(|c| c["name"] == "storage").unwrap().clone();
    assert_eq!(storage["status"], "unhealthy");
    assert!(storage["error"].as_str().unwrap().len() > 3);
});

both_dbs!(health_shows_a_restarted_loop, |app| {
    // A supervised background loop that panics on its first run is restarted and shows in
    // readiness as its own component, with the restart and the panic.
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let r = runs.clone();
    app.state.supervisor.spawn("test_loop", move |beat| {
        let first = r.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        async move {
            assert!(!first, "first run fails");
            loop {
                beat.ok();
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let c = loop {
        let j = app.get("/api/v2.0/health").await.json();
        let c = j["components"].as_array().unwrap().iter().find(|c| c["name"] == "test_loop").cloned();
        if let Some(c) = c.filter(|c| c["restarts"] == 1 && !c["last_beat"].is_null()) {
            assert_eq!(j["status"], "healthy", "{j}");
            break c;
        }
        assert!(std::time::Instant::now() < deadline, "never restarted: {j}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(c["status"], "healthy");
    assert_eq!(c["state"], "running");
    assert!(c["last_error"].as_str().unwrap().contains("first run fails"), "{c}");
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 2);
});

both_dbs!(a_failing_loop_is_reported_but_keeps_the_replica_ready, |app| {
    // A loop that fails every run turns unhealthy after three failures in a row: the body names
    // it, but readiness (the status code load balancers read) stays 200, since requests are served.
    app.state.supervisor.spawn("failing_loop", |_beat| async { Err(anyhow::anyhow!("always fails")) });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = app.get("/api/v2.0/health").await;
        let j = r.json();
        let c = j["components"].as_array().unwrap().iter().find(|c| c["name"] == "failing_loop").cloned();
        if c.as_ref().is_some_and(|c| c["status"] == "unhealthy") {
            assert_eq!(r.status, StatusCode::OK, "{j}");
            assert_eq!(j["status"], "unhealthy", "{j}");
            assert!(c.unwrap()["last_error"].as_str().unwrap().contains("always fails"), "{j}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never reported unhealthy: {j}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
});

both_dbs!(systeminfo_anonymous_and_authenticated, |app| {
    let anon = app.get("/api/v2.0/systeminfo").await.json();
    assert_eq!(anon["auth_mode"], "db_auth");
    assert!(anon.get("external_url").is_none(), "anonymous callers see a subset");
    let full = app
        .get_with("/api/v2.0/systeminfo", &[("authorization", &basic("admin", ADMIN_PASSWORD))])
        .await
        .json();
    assert_eq!(full["external_url"], "http://127.0.0.1:8080");
    assert_eq!(full["registry_url"], "127.0.0.1:8080");
    assert_eq!(anon["oidc_provider_name"], "", "no provider outside OIDC mode");

    // The sign-in page learns the mode and the provider's name from here (anonymously).
    let admin = basic("admin", ADMIN_PASSWORD);
    let body = serde_json::json!({"oidc_name": "Corp SSO"});
    let r = crate::common::api(&app, Method::PUT, "/api/v2.0/configurations", &admin, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(app.get("/api/v2.0/systeminfo").await.json()["oidc_provider_name"], "", "still database mode");
    let body = serde_json::json!({"auth_mode": "oidc_auth"});
    let r = crate::common::api(&app, Method::PUT, "/api/v2.0/configurations", &admin, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let anon = app.get("/api/v2.0/systeminfo").await.json();
    assert_eq!(
        (anon["auth_mode"].as_str(), anon["oidc_provider_name"].as_str()),
        (Some("oidc_auth"), Some("Corp SSO"))
    );
});

both_dbs!(current_user_with_basic_auth, |app| {
    let r = app.get("/api/v2.0/users/current").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "UNAUTHORIZED");

    let r =
        app.get_with("/api/v2.0/users/current", &[("authorization", &basic("admin", ADMIN_PASSWORD))]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let j = r.json();
    assert_eq!(j["username"], "admin");
    assert_eq!(j["sysadmin_flag"], true);
    assert!(j["user_id"].as_i64().unwrap() >= 1);
    assert!(j["creation_time"].as_str().unwrap().ends_with('Z'));
    assert!(j.get("password").is_none() && j.get("password_hash").is_none());

    for bad in [basic("admin", "wrong"), basic("nobody", "Harbor12345"), "Basic !!!".into(), "Basic".into()] {
        let r = app.get_with("/api/v2.0/users/current", &[("authorization", &bad)]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(r.error_code(), "UNAUTHORIZED");
    }
});

both_dbs!(repeated_failures_lock_the_account, |app| {
    for _ in 0..5 {
        let r = app
            .get_with("/api/v2.0/users/current", &[("authorization", &basic("admin", "Wrong12345"))])
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Locked now, even with the right password.
    let r =
        app.get_with("/api/v2.0/users/current", &[("authorization", &basic("admin", ADMIN_PASSWORD))]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert_eq!(r.error_code(), "TOO_MANY_REQUESTS");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry));
    // Name matching is case-insensitive, so ADMIN is locked too; another account is not.
    let r =
        app.get_with("/api/v2.0/users/current", &[("authorization", &basic("ADMIN", ADMIN_PASSWORD))]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    crate::common::create_user(&app.state.db, "alice", "Alice12345", false).await;
    let r =
        app.get_with("/api/v2.0/users/current", &[("authorization", &basic("alice", "Alice12345"))]).await;
    assert_eq!(r.status, StatusCode::OK);
    // The portal login form says so too.
    let r = app.call(Method::POST, "/c/login", &[FORM], "principal=admin&password=Harbor12345").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
});

both_dbs!(lockout_expires, |app| {
    // Same database, a sibling configured with a 1 s lockout after 2 failures.
    let cfg = app.config.clone();
    let mut short = cfg.clone();
    short.auth.max_failed_logins = 2;
    short.auth.lockout = std::time::Duration::from_secs(1);
    let state = server::state::AppState::build(short).await.unwrap();
    let auth = &state.config.auth;
    use server::accounts::{authenticate, LoginError};
    assert!(matches!(authenticate(&state.db, auth, "admin", "x").await, Err(LoginError::InvalidCredentials)));
    assert!(matches!(authenticate(&state.db, auth, "admin", "x").await, Err(LoginError::InvalidCredentials)));
    assert!(matches!(
        authenticate(&state.db, auth, "admin", ADMIN_PASSWORD).await,
        Err(LoginError::Locked(_))
    ));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(authenticate(&state.db, auth, "admin", ADMIN_PASSWORD).await.is_ok());
});

both_dbs!(concurrent_wrong_logins_stop_at_the_limit, |app| {
    // 40 concurrent wrong passwords: the lockout is reserved before each check, so at most
    // `max_failed_logins` (5) are verified, and then the account is locked for the right
    // password too, on every surface.
    use server::accounts::{authenticate, LoginError};
    crate::common::create_user(&app.state.db, "carol", "Carol12345", false).await;
    let mut tasks = vec![];
    for i in 0..40 {
        let (db, auth) = (app.state.db.clone(), app.state.config.auth.clone());
        tasks
            .push(tokio::spawn(async move { authenticate(&db, &auth, "carol", &format!("Wrong{i}")).await }));
    }
    let mut verified = 0;
    for t in tasks {
        match t.await.unwrap() {
            Err(LoginError::InvalidCredentials) => verified += 1,
            Err(LoginError::Locked(_) | LoginError::Busy) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(verified, 5, "only max_failed_logins guesses are ever checked");
    let auth = &app.state.config.auth;
    assert!(matches!(
        authenticate(&app.state.db, auth, "carol", "Carol12345").await,
        Err(LoginError::Locked(_))
    ));
    // Another spelling of the name finds the same account and shares its lockout.
    assert!(matches!(
        authenticate(&app.state.db, auth, "CAROL", "Carol12345").await,
        Err(LoginError::Locked(_))
    ));
    let r =
        app.get_with("/api/v2.0/users/current", &[("authorization", &basic("carol", "Carol12345"))]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    let r = app.call(Method::POST, "/c/login", &[FORM], "principal=carol&password=Carol12345").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // /v2 and the token service answer 401 with the lockout message: podman, skopeo and
    // buildah print a 401's message, but only "too many requests to registry" for a 429
    // (containers/image `httpResponseToError`); docker prints the message of either.
    for path in ["/v2/", "/service/token?service=harbor-registry&scope=repository:library/x:pull"] {
        let r = app.get_with(path, &[("authorization", &basic("carol", "Carol12345"))]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(r.error_code(), "UNAUTHORIZED", "{path}");
        let msg = r.json()["errors"][0]["message"].as_str().unwrap().to_string();
        assert!(msg.contains("locked, try again in"), "{path}: {msg}");
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=300).contains(&retry), "{path}");
    }
});

both_dbs!(unsettled_login_attempts_expire, |app| {
    // Attempts reserved by a replica that died before settling them count only until they
    // expire: they cannot lock a name for ever.
    use server::accounts::{begin_attempt, end_attempt, LoginError};
    let (db, auth) = (&app.state.db, &app.state.config.auth);
    for _ in 0..5 {
        std::mem::forget(begin_attempt(db, auth, "ghost").await.unwrap());
    }
    assert!(
        matches!(begin_attempt(db, auth, "ghost").await, Err(LoginError::Locked(s)) if (1..=30).contains(&s))
    );
    sqlx::query("UPDATE login_failures SET in_flight_until = 1 WHERE username = 'ghost'")
        .execute(&db.pool)
        .await
        .unwrap();
    let a = begin_attempt(db, auth, "ghost").await.unwrap();
    end_attempt(db, auth, a, Some(true)).await.unwrap();
    let rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM login_failures").fetch_one(&db.pool).await.unwrap();
    assert_eq!(rows, 0, "a success leaves no row behind");
});

both_dbs!(overlong_login_input_is_refused_before_any_write, |app| {
    let long = "a".repeat(1 << 20);
    let robot = format!("robot${long}");
    let name256 = "b".repeat(256);
    let cases = [
        (long.as_str(), "x".to_string()),
        (robot.as_str(), "x".into()),
        (&name256, "x".into()),
        ("admin", "P".repeat(257)),
    ];
    for (name, pw) in &cases {
        let b = basic(name, pw);
        let r = app.get_with("/v2/", &[("authorization", &b)]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.error_code(), "UNAUTHORIZED");
        let r = app.get_with("/api/v2.0/users/current", &[("authorization", &b)]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = app
            .get_with(
                "/service/token?service=harbor-registry&scope=repository:library/x:pull",
                &[("authorization", &b)],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = app
            .call(
                Method::POST,
                "/service/token",
                &[FORM],
                format!("grant_type=password&username={name}&password={pw}"),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = app.call(Method::POST, "/c/login", &[FORM], format!("principal={name}&password={pw}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
        assert_eq!(r.error_code(), "BAD_REQUEST");
    }
    app.state.audit.flush(&app.state.db).await.unwrap();
    let db = &app.state.db.pool;
    let audit: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log").fetch_one(db).await.unwrap();
    let failures: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM login_failures").fetch_one(db).await.unwrap();
    assert_eq!((audit, failures), (0, 0), "nothing stored for input no account can match");
    // Not the admin either: the over-long password was never counted against it.
    let r = app.get_with("/v2/", &[("authorization", &basic("admin", ADMIN_PASSWORD))]).await;
    assert_eq!(r.status, StatusCode::OK);
    // 255 characters is an ordinary (failed, audited) login.
    let r = app.get_with("/v2/", &[("authorization", &basic(&"c".repeat(255), "x"))]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    app.state.audit.flush(&app.state.db).await.unwrap();
    let audit: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log").fetch_one(db).await.unwrap();
    assert_eq!(audit, 1);
});

async fn rows(app: &crate::common::TestApp, table: &str) -> i64 {
    app.state.audit.flush(&app.state.db).await.unwrap();
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&app.state.db.pool).await.unwrap()
}

both_dbs!(one_client_cannot_store_unbounded_failures, |app| {
    // Robot names skip argon2, so failures are cheap: still, one client makes the server store
    // at most FAILURES_PER_MINUTE failed-login audit rows (and rows for unknown names) a minute.
    let n = server::auth::FAILURES_PER_MINUTE;
    let count = |table: &'static str| rows(&app, table);
    for i in 0..n {
        let r = app.get_with("/v2/", &[("authorization", &basic(&format!("robot$nobody{i}"), "x"))]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{i}");
    }
    assert_eq!((count("audit_log").await, count("login_failures").await), (i64::from(n), i64::from(n)));
    // Past the budget: still answered, no longer stored — on every surface.
    for i in 0..20 {
        let b = basic(&format!("robot$more{i}"), "x");
        assert_eq!(app.get_with("/v2/", &[("authorization", &b)]).await.status, StatusCode::UNAUTHORIZED);
        let r = app.get_with("/api/v2.0/users/current", &[("authorization", &b)]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = app.get_with("/service/token?service=harbor-registry", &[("authorization", &b)]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = app.call(Method::POST, "/c/login", &[FORM], "principal=nobody-else&password=x").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!((count("audit_log").await, count("login_failures").await), (i64::from(n), i64::from(n)));
    // The address may be shared (NAT, a proxy not in trusted_proxies): right credentials work.
    let r = app.get_with("/v2/", &[("authorization", &basic("admin", ADMIN_PASSWORD))]).await;
    assert_eq!(r.status, StatusCode::OK);
    // And real accounts keep their lockout.
    for _ in 0..5 {
        app.get_with("/v2/", &[("authorization", &basic("admin", "Wrong12345"))]).await;
    }
    let r = app.get_with("/v2/", &[("authorization", &basic("admin", ADMIN_PASSWORD))]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text().contains("locked"), "{}", r.text());
});

both_dbs!(idle_failure_rows_are_purged, |app| {
    use server::accounts::{authenticate, purge_login_failures};
    let (db, auth) = (&app.state.db, &app.state.config.auth);
    assert!(authenticate(db, auth, "nobody", "x").await.is_err());
    assert!(authenticate(db, auth, "admin", "x").await.is_err());
    let names = || async {
        let v: Vec<String> = sqlx::query_scalar("SELECT username FROM login_failures ORDER BY username")
            .fetch_all(&db.pool)
            .await
            .unwrap();
        v
    };
    assert_eq!(purge_login_failures(db, auth).await.unwrap(), 0, "fresh rows stay");
    sqlx::query("UPDATE login_failures SET updated_at = updated_at - 600000")
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(purge_login_failures(db, auth).await.unwrap(), 1);
    assert_eq!(names().await, ["admin"], "a name no account has goes after a lockout period idle");
    sqlx::query("UPDATE login_failures SET updated_at = updated_at - 86400000")
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(purge_login_failures(db, auth).await.unwrap(), 1);
    assert!(names().await.is_empty(), "any name goes after a day idle");
});

both_dbs!(login_form_refuses_cross_site_posts, |app| {
    // Login CSRF: another site must not sign its visitors in to an account of its choosing.
    let body = format!("principal=admin&password={ADMIN_PASSWORD}");
    for headers in [
        &[FORM, ("sec-fetch-site", "cross-site")][..],
        &[FORM, ("sec-fetch-site", "same-site")],
        &[FORM, ("origin", "https://evil.example"), ("host", "127.0.0.1:8080")],
        // X-Forwarded-Host is believed only from a trusted proxy.
        &[
            FORM,
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "evil.example"),
        ],
    ] {
        let r = app.call(Method::POST, "/c/login", headers, body.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{headers:?}");
        assert_eq!(r.error_code(), "FORBIDDEN");
        assert!(r.session_cookie().is_none());
    }
    for headers in [
        &[FORM, ("sec-fetch-site", "same-origin")][..],
        &[FORM, ("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")],
        &[FORM],
    ] {
        let r = app.call(Method::POST, "/c/login", headers, body.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{headers:?}: {}", r.text());
    }
});

#[tokio::test]
async fn lockout_follows_the_account_not_unicode_case() {
    // SQLite's lower() folds ASCII only, so `Émile` and `émile` can be two accounts there (made
    // before user names became ASCII-only). Each has its own lockout.
    let app = crate::common::TestApp::new(crate::common::DbChoice::Sqlite).await;
    let (db, auth) = (&app.state.db, &app.state.config.auth);
    let hash = server::accounts::hash_password("Emile12345").await;
    for name in ["Émile", "émile"] {
        sqlx::query(
            "INSERT INTO users (username, password_hash, password_changed_at, created_at, updated_at) \
             VALUES ($1, $2, 1, 1, 1)",
        )
        .bind(name)
        .bind(&hash)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    for _ in 0..5 {
        assert!(server::accounts::authenticate(db, auth, "Émile", "Wrong12345").await.is_err());
    }
    assert!(matches!(
        server::accounts::authenticate(db, auth, "Émile", "Emile12345").await,
        Err(server::accounts::LoginError::Locked(_))
    ));
    assert_eq!(
        server::accounts::authenticate(db, auth, "émile", "Emile12345").await.unwrap().username,
        "émile"
    );
}

both_dbs!(session_login_csrf_password_logout, |app| {
    // Bad input to the login form.
    let r = app.call(Method::POST, "/c/login", &[FORM], "principal=admin&password=nope").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.session_cookie().is_none());
    let r = app.call(Method::POST, "/c/login", &[JSON], "{}").await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.error_code(), "UNSUPPORTED_MEDIA_TYPE");
    let r = app.call(Method::POST, "/c/login", &[FORM], "principal=admin").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let (cookie, csrf) = app.login("admin", ADMIN_PASSWORD).await;
    let (other_cookie, _) = app.login("admin", ADMIN_PASSWORD).await;
    let r = app.get_with("/api/v2.0/users/current", &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["username"], "admin");
    assert_eq!(r.header("x-harbor-csrf-token"), Some(csrf.as_str()));
    let id = r.json()["user_id"].as_i64().unwrap();
    let path = format!("/api/v2.0/users/{id}/password");
    let body = r#"{"old_password":"Harbor12345","new_password":"NewPassw0rd"}"#;

    // Cookie-authenticated write without / with a wrong CSRF token.
    let r = app.call(Method::PUT, &path, &[("cookie", &cookie), JSON], body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "FORBIDDEN");
    let r = app
        .call(Method::PUT, &path, &[("cookie", &cookie), ("x-harbor-csrf-token", "forged"), JSON], body)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Bad bodies get 400/415 in the API's error format.
    let csrf_h = ("x-harbor-csrf-token", csrf.as_str());
    for (bad, status) in [
        ("{not json", StatusCode::BAD_REQUEST),
        (r#"{"new_password": 5}"#, StatusCode::BAD_REQUEST),
        (r#"{"old_password":"Harbor12345","new_password":"weak"}"#, StatusCode::BAD_REQUEST),
        (r#"{"new_password":"NewPassw0rd"}"#, StatusCode::BAD_REQUEST),
        (r#"{"old_password":"Wrong12345","new_password":"NewPassw0rd"}"#, StatusCode::FORBIDDEN),
    ] {
        let r = app.call(Method::PUT, &path, &[("cookie", &cookie), csrf_h, JSON], bad).await;
        assert_eq!(r.status, status, "{bad}: {}", r.text());
        r.error_code();
    }
    let r = app.call(Method::PUT, &path, &[("cookie", &cookie), csrf_h], body).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let r = app.call(Method::PUT, &path, &[("cookie", &cookie), csrf_h, JSON], body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // This session survives the change; the other session of the same user ends.
    let r = app.get_with("/api/v2.0/users/current", &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.get_with("/api/v2.0/users/current", &[("cookie", &other_cookie)]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Old password refused, new accepted.
    let r =
        app.get_with("/api/v2.0/users/current", &[("authorization", &basic("admin", ADMIN_PASSWORD))]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r =
        app.get_with("/api/v2.0/users/current", &[("authorization", &basic("admin", "NewPassw0rd"))]).await;
    assert_eq!(r.status, StatusCode::OK);

    // Logout ends the session.
    let r = app.get_with("/c/log_out", &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.get_with("/api/v2.0/users/current", &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
});

both_dbs!(tampered_session_cookie_is_anonymous, |app| {
    let (cookie, _) = app.login("admin", ADMIN_PASSWORD).await;
    let mut tampered = cookie.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let r = app.get_with("/api/v2.0/users/current", &[("cookie", &tampered)]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
});

both_dbs!(passwords_changed_by_admin_and_by_others, |app| {
    let alice = crate::common::create_user(&app.state.db, "alice", "Alice12345", false).await;
    let admin = basic("admin", ADMIN_PASSWORD);
    let alice_auth = basic("alice", "Alice12345");
    // A non-admin cannot change the admin's password.
    let r = app
        .call(
            Method::PUT,
            "/api/v2.0/users/1/password",
            &[("authorization", &alice_auth), JSON],
            r#"{"new_password":"Hacked1234"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The admin resets alice's without the old one.
    let path = format!("/api/v2.0/users/{}/password", alice.id);
    let r = app
        .call(Method::PUT, &path, &[("authorization", &admin), JSON], r#"{"new_password":"Reset12345"}"#)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r =
        app.get_with("/api/v2.0/users/current", &[("authorization", &basic("alice", "Reset12345"))]).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .call(
            Method::PUT,
            "/api/v2.0/users/99999/password",
            &[("authorization", &admin), JSON],
            r#"{"new_password":"Reset12345"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .call(
            Method::PUT,
            "/api/v2.0/users/abc/password",
            &[("authorization", &admin), JSON],
            r#"{"new_password":"Reset12345"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    r.error_code();
});

both_dbs!(projects_list_and_pagination, |app| {
    let r = app.get("/api/v2.0/projects").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-total-count"), Some("1"));
    let j = r.json();
    assert_eq!(j[0]["name"], "library");
    assert_eq!(j[0]["metadata"]["public"], "true");
    assert_eq!(j[0]["owner_name"], "admin");

    // Private projects are visible to the system admin only.
    let now = server::db::now_ms();
    for i in 0..3 {
        sqlx::query(
            "INSERT INTO projects (name, owner_id, public, created_at, updated_at) VALUES ($1, 1, 0, $2, $2)",
        )
        .bind(format!("team{i}"))
        .bind(now)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    }
    assert_eq!(app.get("/api/v2.0/projects").await.header("x-total-count"), Some("1"));
    let admin = basic("admin", ADMIN_PASSWORD);
    let r = app.get_with("/api/v2.0/projects?page=2&page_size=2", &[("authorization", &admin)]).await;
    assert_eq!(r.header("x-total-count"), Some("4"));
    let names: Vec<_> =
        r.json().as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["team1", "team2"]);
    assert_eq!(r.header("link"), Some("</api/v2.0/projects?page=1&page_size=2>; rel=\"prev\""));
    let r = app.get_with("/api/v2.0/projects?name=TEAM&public=false", &[("authorization", &admin)]).await;
    assert_eq!(r.header("x-total-count"), Some("3"));
    // LIKE wildcards in the filter are literal.
    let r = app.get_with("/api/v2.0/projects?name=%25", &[("authorization", &admin)]).await;
    assert_eq!(r.header("x-total-count"), Some("0"));

    for bad in ["page=0", "page=abc", "page_size=1000", "page_size=-1", "public=maybe"] {
        let r = app.get(&format!("/api/v2.0/projects?{bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.error_code(), "BAD_REQUEST");
    }
});

both_dbs!(unknown_endpoints_speak_the_error_format, |app| {
    let r = app.get("/api/v2.0/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "NOT_FOUND");
    let r = app.call(Method::DELETE, "/api/v2.0/ping", &[], "").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.error_code(), "METHOD_NOT_ALLOWED");
});

both_dbs!(secrets_are_shared_and_sessions_survive_a_restart, |app| {
    let (cookie, _) = app.login("admin", ADMIN_PASSWORD).await;
    let other = app.sibling().await;
    assert_eq!(app.state.secrets.token_key.kid, other.state.secrets.token_key.kid);
    assert_eq!(app.state.secrets.session_key, other.state.secrets.session_key);
    assert_eq!(app.state.secrets.encryption_key, other.state.secrets.encryption_key);
    let r = other.get_with("/api/v2.0/users/current", &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::OK, "session must survive a restart / be seen by a sibling");
    // Migrations and first-start setup are idempotent.
    other.state.db.migrate().await.unwrap();
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&other.state.db.pool).await.unwrap();
    assert_eq!(n, 1);
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM projects").fetch_one(&other.state.db.pool).await.unwrap();
    assert_eq!(n, 1);
});

both_dbs!(configured_initial_password_is_used, |app| {
    drop(app);
    let app = crate::common::TestApp::builder(crate::common::DbChoice::Sqlite)
        .toml("[admin]\ninitial_password = \"Other12345\"")
        .build()
        .await;
    let r =
        app.get_with("/api/v2.0/users/current", &[("authorization", &basic("admin", "Other12345"))]).await;
    assert_eq!(r.status, StatusCode::OK);
});

/// HA: several replicas starting at the same moment on one empty PostgreSQL database all come
/// up (migrations under an advisory lock; admin, `library` and its owner membership, and the
/// shared keys created exactly once) and agree on the keys.
#[tokio::test]
async fn concurrent_first_starts_on_one_postgres_converge() {
    let pg = crate::common::PgDb::create().await;
    let url = &pg.url;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[database]\nurl = \"{url}\"\nmax_connections = 4\n[storage]\npath = \"{}/storage\"\n[log]\nlevel = \"warn\"\n",
        dir.path().display()
    );
    let config = server::config::Config::from_toml(&toml).unwrap();
    let starts = (0..4).map(|_| server::state::AppState::build(config.clone()));
    let states: Vec<_> = futures::future::join_all(starts)
        .await
        .into_iter()
        .map(|r| r.expect("a replica failed its first start"))
        .collect();
    for s in &states[1..] {
        assert_eq!(s.secrets.session_key, states[0].secrets.session_key);
        assert_eq!(s.secrets.encryption_key, states[0].secrets.encryption_key);
    }
    let pool = &states[0].db.pool;
    let count =
        |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.unwrap() };
    assert_eq!(count("SELECT count(*) FROM users WHERE username = 'admin'").await, 1);
    assert_eq!(count("SELECT count(*) FROM projects WHERE name = 'library'").await, 1);
    let members = || {
        count("SELECT count(*) FROM project_members m JOIN projects p ON p.id = m.project_id WHERE p.name = 'library'")
    };
    assert_eq!(members().await, 1);
    // The narrow part of that race, widened: many replicas creating `library` at once.
    for _ in 0..20 {
        sqlx::query("DELETE FROM project_members").execute(pool).await.unwrap();
        sqlx::query("DELETE FROM quotas").execute(pool).await.unwrap();
        sqlx::query("DELETE FROM projects WHERE name = 'library'").execute(pool).await.unwrap();
        let runs = states.iter().cycle().take(8).map(|s| server::projects::ensure_library(&s.db));
        for r in futures::future::join_all(runs).await {
            r.expect("ensure_library failed when racing other replicas");
        }
        assert_eq!(members().await, 1);
        assert_eq!(count("SELECT count(*) FROM quotas").await, 1, "library has one quota");
    }
}

//! The audit log and its purge, configurations, and the token realm and client address behind
//! trusted proxies.

use super::*;

both_dbs!(audit_log_listing_and_purge, |app| {
    user(&app, "guest").await;
    user(&app, "lguest").await;
    api(&app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": "p1"})).await;
    member(&app, "p1", "guest", 3).await;
    member(&app, "p1", "lguest", 5).await;
    assert_eq!(push(&app, &admin(), "p1/app", "v1").await, StatusCode::CREATED);
    app.get_with("/v2/p1/app/manifests/v1", &[("authorization", &basic("guest", PW))]).await;
    app.get_with("/api/v2.0/users/current", &[("authorization", &basic("guest", "Bad-pass1"))]).await;

    // System admins read everything; project logs need log rights in the project.
    assert_eq!(
        app.get_with("/api/v2.0/audit-logs", &[("authorization", &basic("guest", PW))]).await.status,
        StatusCode::FORBIDDEN
    );
    let r = app
        .get_with("/api/v2.0/projects/p1/logs?page_size=2", &[("authorization", &basic("guest", PW))])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let total: i64 = r.header("x-total-count").unwrap().parse().unwrap();
    assert!(total >= 4, "project create, two members, push, pull: {total}");
    assert!(r.header("link").unwrap().contains("rel=\"next\""));
    let rows = r.json();
    assert!(rows.as_array().unwrap().iter().all(|x| x["project_id"].is_i64()));
    assert_eq!(
        app.get_with("/api/v2.0/projects/p1/logs", &[("authorization", &basic("lguest", PW))]).await.status,
        StatusCode::FORBIDDEN
    );

    let pulls = audit(&app, "operation=pull").await;
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0]["username"], "guest");
    assert_eq!(pulls[0]["resource"], "p1/app:v1");
    assert_eq!(pulls[0]["resource_type"], "artifact");
    assert!(pulls[0]["op_time"].as_str().unwrap().ends_with('Z'));
    let failed = audit(&app, "operation=login,username=guest").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["success"], false);
    assert_eq!(audit(&app, "resource=~app:v").await.len(), 2);
    assert_eq!(audit(&app, "op_time=[2000-01-01 00:00:00~2000-01-02 00:00:00]").await.len(), 0);
    assert_eq!(audit(&app, "operation=pull,op_time=[2000-01-01 00:00:00~]").await.len(), 1);
    for bad in ["colour=blue", "op_time=yesterday", "username=~g"] {
        let q = url::form_urlencoded::byte_serialize(bad.as_bytes()).collect::<String>();
        let r = app.get_with(&format!("/api/v2.0/audit-logs?q={q}"), &[("authorization", &admin())]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.error_code(), "BAD_REQUEST");
    }

    // Counting stops at 10,000 matches; paging still knows whether a next page exists.
    sqlx::query(
        "INSERT INTO audit_log (op_time, username, resource_type, resource, operation, success) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10050) \
         SELECT $1 + i, 'bulk', 'artifact', 'x', 'pull', 1 FROM n",
    )
    .bind(server::db::now_ms())
    .execute(&app.state.db.pool)
    .await
    .unwrap();
    let page = |n: u32| {
        let app = &app;
        async move {
            let path = format!("/api/v2.0/audit-logs?q=username%3Dbulk&page_size=15&page={n}");
            app.get_with(&path, &[("authorization", &admin())]).await
        }
    };
    let r = page(1).await;
    assert_eq!(r.header("x-total-count"), Some("10000"));
    assert_eq!(r.header("x-total-count-capped"), Some("true"));
    assert_eq!(r.json().as_array().unwrap().len(), 15);
    let last = page(670).await;
    assert_eq!(last.json().as_array().unwrap().len(), 15);
    assert!(
        last.header("link").unwrap().contains("rel=\"prev\"")
            && !last.header("link").unwrap().contains("rel=\"next\"")
    );
    assert!(page(669).await.header("link").unwrap().contains("rel=\"next\""));
    assert!(page(671).await.json().as_array().unwrap().is_empty());
    let exact = app.get_with("/api/v2.0/audit-logs?q=username%3Dguest", &[("authorization", &admin())]).await;
    assert!(exact.header("x-total-count-capped").is_none());

    // Purge drops only rows older than the limit.
    let old = server::db::now_ms() - 40 * 86_400_000;
    sqlx::query("INSERT INTO audit_log (op_time, username, resource_type, resource, operation, success) VALUES ($1, 'old', 'artifact', 'x', 'pull', 1)")
        .bind(old)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(audit(&app, "username=old").await.len(), 1);
    assert_eq!(server::audit::purge(&app.state.db, 30).await.unwrap(), 1);
    assert!(audit(&app, "username=old").await.is_empty());
    assert_eq!(audit(&app, "operation=pull,username=guest").await.len(), 1);
});

both_dbs!(configurations_are_admin_only_and_validated, |app| {
    user(&app, "dev").await;
    assert_eq!(
        app.get_with("/api/v2.0/configurations", &[("authorization", &basic("dev", PW))]).await.status,
        StatusCode::FORBIDDEN
    );
    let c = app.get_with("/api/v2.0/configurations", &[("authorization", &admin())]).await.json();
    assert_eq!(c["token_expiration"]["value"], 30);
    assert_eq!(c["self_registration"]["value"], false);
    for bad in [
        json!({"token_expiration": 0}),
        json!({"auth_mode": "ldap_auth"}),
        json!({"robot_token_duration": "x"}),
        json!([1]),
    ] {
        let r = api(&app, Method::PUT, "/api/v2.0/configurations", &admin(), bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(
        api(&app, Method::PUT, "/api/v2.0/configurations", &admin(), json!({"token_expiration": 5}))
            .await
            .status,
        StatusCode::OK
    );
    let t = app
        .get_with(
            "/service/token?service=harbor-registry&scope=repository:library/x:pull",
            &[("authorization", &admin())],
        )
        .await
        .json();
    assert_eq!(t["expires_in"], 300);
    // Another replica sees the same settings.
    let other = app.sibling().await;
    assert_eq!(
        other.get_with("/api/v2.0/configurations", &[("authorization", &admin())]).await.json()
            ["token_expiration"]["value"],
        5
    );
});

/// The token realm and the audit address follow `X-Forwarded-*` from trusted proxies only.
#[tokio::test]
async fn realm_and_client_ip_behind_a_trusted_proxy() {
    let app = TestApp::builder(crate::common::DbChoice::Sqlite)
        .toml("external_url = \"http://registry.internal:8080\"\ntrusted_proxies = [\"10.0.0.0/8\"]")
        .build()
        .await;
    let send = |peer: &str, auth: Option<String>| {
        let mut req = Request::get("/v2/private/app/manifests/v1")
            .header("x-forwarded-for", "203.0.113.7")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "registry.example.com");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let mut req = req.body(Body::empty()).unwrap();
        req.extensions_mut().insert(ConnectInfo(peer.parse::<std::net::SocketAddr>().unwrap()));
        req
    };
    let r = app.send(send("10.1.2.3:4000", None)).await;
    assert_eq!(
        r.header("www-authenticate").unwrap(),
        r#"Bearer realm="https://registry.example.com/service/token",service="harbor-registry",scope="repository:private/app:pull""#
    );
    let r = app.send(send("192.0.2.1:4000", None)).await;
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .starts_with(r#"Bearer realm="http://registry.internal:8080/service/token""#));
    // Failed logins record the client's address as the proxy reported it.
    app.send(send("10.1.2.3:4000", Some(basic("admin", "Wrong-pass1")))).await;
    app.send(send("192.0.2.1:4000", Some(basic("admin", "Wrong-pass2")))).await;
    let rows = audit(&app, "operation=login").await;
    let ips: Vec<&str> = rows.iter().map(|r| r["client_ip"].as_str().unwrap()).collect();
    assert!(ips.contains(&"203.0.113.7") && ips.contains(&"192.0.2.1"), "{ips:?}");
}

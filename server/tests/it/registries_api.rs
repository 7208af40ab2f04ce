//! Registry endpoints (`/api/v2.0/registries`, `/registries/ping`, `/registries/{id}/info`) and
//! registry types (`/replication/adapters`, `/replication/adapterinfos`): CRUD, validation,
//! the secret never leaving the server (responses, audit log, database column), deletion
//! refused while something uses the registry, permissions. Pings target 127.0.0.1 only.

use crate::common::oci::admin;
use crate::common::{api, basic, create_user, Resp, TestApp, PW};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

const SECRET: &str = "Plain-S3cret-value-4711";

async fn create(app: &TestApp, body: Value) -> Resp {
    api(app, Method::POST, "/api/v2.0/registries", &admin(), body).await
}

/// Creates a registry; returns its id.
async fn create_ok(app: &TestApp, body: Value) -> i64 {
    let r = create(app, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let loc = r.header("location").unwrap();
    loc.strip_prefix("/api/v2.0/registries/").unwrap().parse().unwrap()
}

fn hub(name: &str) -> Value {
    json!({
        "name": name,
        "type": "docker-registry",
        "url": "https://registry.example.com/",
        "description": "mirror",
        "credential": {"type": "basic", "access_key": "robot", "access_secret": SECRET},
        "insecure": false
    })
}

async fn get(app: &TestApp, path: &str) -> Resp {
    app.get_with(path, &[("authorization", &admin())]).await
}

async fn stored_secret(app: &TestApp, id: i64) -> String {
    sqlx::query_scalar::<_, String>("SELECT access_secret FROM registries WHERE id = $1")
        .bind(id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
}

async fn loaded_secret(app: &TestApp, id: i64) -> String {
    server::replication::endpoints::load(&app.state.db, &app.state.secrets.encryption_key, id)
        .await
        .unwrap()
        .unwrap()
        .access_secret
}

both_dbs!(crud_round_trip, |app| {
    let id = create_ok(&app, hub("hub")).await;
    let r = get(&app, &format!("/api/v2.0/registries/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    let reg = r.json();
    assert_eq!(reg["id"], id);
    assert_eq!(reg["name"], "hub");
    assert_eq!(reg["type"], "docker-registry");
    assert_eq!(reg["url"], "https://registry.example.com", "stored without the trailing slash");
    assert_eq!(reg["description"], "mirror");
    assert_eq!(reg["credential"], json!({"type": "basic", "access_key": "robot", "access_secret": "*****"}));
    assert_eq!(reg["insecure"], false);
    assert_eq!(reg["status"], "unknown");
    assert!(reg.get("ca_certificate").is_none());
    assert!(reg["creation_time"].as_str().unwrap().ends_with('Z'));
    assert!(reg["update_time"].as_str().unwrap().ends_with('Z'));

    // A second one without credentials: the secret shows as empty, not masked.
    let id2 = create_ok(
        &app,
        json!({"name": "edge-harbor", "type": "harbor", "url": "http://127.0.0.1:5000", "insecure": true}),
    )
    .await;
    let reg2 = get(&app, &format!("/api/v2.0/registries/{id2}")).await.json();
    assert_eq!(reg2["credential"], json!({"type": "", "access_key": "", "access_secret": ""}));
    assert_eq!(reg2["insecure"], true);

    // List: newest first, q, the deprecated name, sort, pages.
    let r = get(&app, "/api/v2.0/registries").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-total-count"), Some("2"));
    let names: Vec<String> =
        r.json().as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["edge-harbor", "hub"]);
    let r = get(&app, "/api/v2.0/registries?q=name%3D~HU").await;
    assert_eq!(r.json().as_array().unwrap().len(), 1, "{}", r.text());
    assert_eq!(r.json()[0]["name"], "hub");
    assert_eq!(get(&app, "/api/v2.0/registries?q=type%3Dharbor").await.json()[0]["name"], "edge-harbor");
    assert_eq!(get(&app, "/api/v2.0/registries?name=edge").await.json().as_array().unwrap().len(), 1);
    let r = get(&app, "/api/v2.0/registries?sort=name&page=1&page_size=1").await;
    assert_eq!(r.json()[0]["name"], "edge-harbor");
    assert!(r.header("link").unwrap().contains("rel=\"next\""));
    assert_eq!(get(&app, "/api/v2.0/registries?q=color%3Dred").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(get(&app, "/api/v2.0/registries?sort=secret").await.status, StatusCode::BAD_REQUEST);

    // Update: absent fields unchanged; rename.
    let (auth, path) = (admin(), format!("/api/v2.0/registries/{id}"));
    let put = |body: Value| api(&app, Method::PUT, &path, &auth, body);
    let r = put(json!({"description": "new text", "insecure": true, "name": "hub-mirror"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let reg = get(&app, &format!("/api/v2.0/registries/{id}")).await.json();
    assert_eq!(reg["name"], "hub-mirror");
    assert_eq!(reg["description"], "new text");
    assert_eq!(reg["insecure"], true);
    assert_eq!(reg["url"], "https://registry.example.com");
    assert_eq!(reg["credential"]["access_key"], "robot");
    assert_eq!(loaded_secret(&app, id).await, SECRET, "a rename keeps the secret readable");

    // Missing ones.
    assert_eq!(get(&app, "/api/v2.0/registries/999").await.status, StatusCode::NOT_FOUND);
    assert_eq!(put(json!({})).await.status, StatusCode::OK);
    let r = api(&app, Method::PUT, "/api/v2.0/registries/999", &admin(), json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "NOT_FOUND");

    // Delete.
    let r = api(&app, Method::DELETE, &format!("/api/v2.0/registries/{id}"), &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(get(&app, &format!("/api/v2.0/registries/{id}")).await.status, StatusCode::NOT_FOUND);
    let r = api(&app, Method::DELETE, &format!("/api/v2.0/registries/{id}"), &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, "/api/v2.0/registries").await.header("x-total-count"), Some("1"));

    // Audit rows for create, update and delete.
    let r = get(&app, "/api/v2.0/audit-logs?q=resource_type%3Dregistry&page_size=50").await;
    let ops: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|x| format!("{} {}", x["operation"].as_str().unwrap(), x["resource"].as_str().unwrap()))
        .collect();
    for expected in ["create hub", "create edge-harbor", "update hub-mirror", "delete hub-mirror"] {
        assert!(ops.iter().any(|o| o == expected), "{expected} not in {ops:?}");
    }
});

both_dbs!(secret_is_never_returned, |app| {
    let id = create_ok(&app, hub("hub")).await;
    let sealed = stored_secret(&app, id).await;
    assert!(sealed.starts_with("v1:"), "{sealed}");
    assert!(!sealed.contains(SECRET));
    assert_eq!(loaded_secret(&app, id).await, SECRET);

    let other = "Another-S3cret-0815";
    let r = api(
        &app,
        Method::PUT,
        &format!("/api/v2.0/registries/{id}"),
        &admin(),
        json!({"access_secret": other}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let sealed2 = stored_secret(&app, id).await;
    assert!(!sealed2.contains(other) && sealed2 != sealed);
    assert_eq!(loaded_secret(&app, id).await, other);
    // A ping answers with an error, never echoing the secret.
    let ping = api(&app, Method::POST, "/api/v2.0/registries/ping", &admin(), json!({"id": id})).await;

    let bodies = [
        get(&app, &format!("/api/v2.0/registries/{id}")).await,
        get(&app, "/api/v2.0/registries").await,
        get(&app, "/api/v2.0/audit-logs?page_size=100").await,
        get(&app, &format!("/api/v2.0/registries/{id}/info")).await,
        ping,
    ];
    for r in &bodies {
        let text = r.text();
        assert!(!text.contains(SECRET) && !text.contains(other), "a secret leaked: {text}");
    }
    assert!(bodies[2].text().contains("access_secret"), "the audit row says the secret changed");

    // A value moved to another row does not decrypt: the associated data binds it to its id.
    let id2 = create_ok(&app, json!({"name": "b", "type": "harbor", "url": "https://b.example.com"})).await;
    sqlx::query("UPDATE registries SET access_secret = $1 WHERE id = $2")
        .bind(&sealed2)
        .bind(id2)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let e = server::replication::endpoints::load(&app.state.db, &app.state.secrets.encryption_key, id2).await;
    assert!(matches!(e, Err(sqlx::Error::Decode(_))), "{e:?}");
    let r = api(&app, Method::POST, "/api/v2.0/registries/ping", &admin(), json!({"id": id2})).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.text());
    assert!(r.text().contains("cannot be decrypted"), "{}", r.text());
});

both_dbs!(update_keeps_or_drops_the_secret, |app| {
    let id = create_ok(&app, hub("hub")).await;
    let path = format!("/api/v2.0/registries/{id}");
    let auth = admin();
    let put = |body: Value| api(&app, Method::PUT, &path, &auth, body);
    // Without access_secret: kept (the masked value is what a client that echoes a GET sends
    // as access_key, never as the secret).
    assert_eq!(put(json!({"description": "x", "access_key": "robot2"})).await.status, StatusCode::OK);
    assert_eq!(loaded_secret(&app, id).await, SECRET);
    assert_eq!(get(&app, &path).await.json()["credential"]["access_secret"], "*****");
    // The mask sent back (a client that PUTs what it read) is no new secret either.
    assert_eq!(put(json!({"access_secret": "*****"})).await.status, StatusCode::OK);
    assert_eq!(loaded_secret(&app, id).await, SECRET);
    // A new URL without a secret drops it: saved credentials never follow to another host.
    assert_eq!(put(json!({"url": "https://other.example.com"})).await.status, StatusCode::OK);
    assert_eq!(loaded_secret(&app, id).await, "");
    assert_eq!(get(&app, &path).await.json()["credential"]["access_secret"], "");
    // A new URL with a secret keeps the new one.
    assert_eq!(
        put(json!({"url": "https://third.example.com", "access_secret": "n3w"})).await.status,
        StatusCode::OK
    );
    assert_eq!(loaded_secret(&app, id).await, "n3w");
    // Clearing the credential.
    let r = put(json!({"credential_type": "", "access_key": "", "access_secret": ""})).await;
    assert_eq!(r.status, StatusCode::OK);
    let reg = get(&app, &path).await.json();
    assert_eq!(reg["credential"], json!({"type": "", "access_key": "", "access_secret": ""}));
    assert_eq!(stored_secret(&app, id).await, "");
});

both_dbs!(names_are_unique, |app| {
    create_ok(&app, hub("hub")).await;
    let r = create(&app, hub("hub")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "CONFLICT");
    let id = create_ok(&app, hub("hub2")).await;
    let r =
        api(&app, Method::PUT, &format!("/api/v2.0/registries/{id}"), &admin(), json!({"name": "hub"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(get(&app, "/api/v2.0/registries").await.header("x-total-count"), Some("2"));
});

both_dbs!(bad_input_is_a_400, |app| {
    let with = |k: &str, v: Value| {
        let mut b = hub("hub");
        b[k] = v;
        b
    };
    let long = |n: usize| json!("x".repeat(n));
    let cases = [
        with("name", json!("")),
        with("name", long(65)),
        with("url", json!("")),
        with("url", json!("registry.example.com")),
        with("url", json!("ftp://registry.example.com")),
        with("url", json!("https://user:pw@registry.example.com")),
        with("url", json!("https://registry.example.com/?token=x")),
        with("url", json!(format!("https://r.example.com/{}", "a".repeat(3000)))),
        with("type", json!("nope")),
        with("type", json!("")),
        with("description", long(2000)),
        with("credential", json!({"type": "kerberos", "access_key": "a", "access_secret": "b"})),
        with("credential", json!({"type": "basic", "access_key": "a", "access_secret": "x".repeat(20000)})),
        with("credential", json!({"type": "basic", "access_key": "x".repeat(2000), "access_secret": "b"})),
        with("ca_certificate", json!("not a certificate")),
        with("insecure", json!("yes")),
    ];
    for (i, body) in cases.iter().enumerate() {
        let r = create(&app, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "case {i}: {}", r.text());
        assert_eq!(r.error_code(), "BAD_REQUEST");
    }
    let r = create(&app, with("type", json!("nope"))).await;
    assert!(
        r.text().contains("docker-registry") && r.text().contains("harbor"),
        "lists the types: {}",
        r.text()
    );
    let r = app
        .call(
            Method::POST,
            "/api/v2.0/registries",
            &[("authorization", &admin()), ("content-type", "application/json")],
            "{",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .call(Method::POST, "/api/v2.0/registries", &[("authorization", &admin())], hub("x").to_string())
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(get(&app, "/api/v2.0/registries").await.header("x-total-count"), Some("0"));

    // Updates are checked alike, and a refused update changes nothing.
    let id = create_ok(&app, hub("hub")).await;
    let path = format!("/api/v2.0/registries/{id}");
    for body in [json!({"url": "gopher://x"}), json!({"name": ""}), json!({"credential_type": "x"})] {
        let r = api(&app, Method::PUT, &path, &admin(), body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text());
    }
    assert_eq!(get(&app, &path).await.json()["url"], "https://registry.example.com");
    assert_eq!(get(&app, "/api/v2.0/registries/abc").await.status, StatusCode::BAD_REQUEST);
});

both_dbs!(system_admins_only, |app| {
    create_user(&app.state.db, "dev", PW, false).await;
    let id = create_ok(&app, hub("hub")).await;
    let calls: Vec<(Method, String, Value)> = vec![
        (Method::GET, "/api/v2.0/registries".into(), Value::Null),
        (Method::POST, "/api/v2.0/registries".into(), hub("mine")),
        (Method::GET, format!("/api/v2.0/registries/{id}"), Value::Null),
        (Method::PUT, format!("/api/v2.0/registries/{id}"), json!({"description": "x"})),
        (Method::DELETE, format!("/api/v2.0/registries/{id}"), Value::Null),
        (Method::POST, "/api/v2.0/registries/ping".into(), json!({"id": id})),
        (Method::GET, format!("/api/v2.0/registries/{id}/info"), Value::Null),
        (Method::GET, "/api/v2.0/replication/adapters".into(), Value::Null),
        (Method::GET, "/api/v2.0/replication/adapterinfos".into(), Value::Null),
    ];
    for (m, path, body) in calls {
        let r = api(&app, m.clone(), &path, &basic("dev", PW), body.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{m} {path}: {}", r.text());
        let r = api(&app, m.clone(), &path, "", body).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{m} {path}: {}", r.text());
    }
    let reg = get(&app, &format!("/api/v2.0/registries/{id}")).await.json();
    assert_eq!(reg["description"], "mirror", "nothing changed");
});

both_dbs!(delete_refused_while_referenced, |app| {
    let id = create_ok(&app, hub("hub")).await;
    let (auth, path) = (admin(), format!("/api/v2.0/registries/{id}"));
    let del = || api(&app, Method::DELETE, &path, &auth, Value::Null);
    let db = &app.state.db.pool;
    sqlx::query(
        "INSERT INTO replication_policies (name, dest_registry_id, created_at, updated_at) VALUES ('to-edge', $1, 0, 0)",
    )
    .bind(id)
    .execute(db)
    .await
    .unwrap();
    let r = del().await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.text());
    assert_eq!(r.error_code(), "PRECONDITION");
    assert!(r.text().contains("to-edge"), "names the policy: {}", r.text());
    sqlx::query("UPDATE replication_policies SET dest_registry_id = NULL, src_registry_id = $1")
        .bind(id)
        .execute(db)
        .await
        .unwrap();
    assert_eq!(del().await.status, StatusCode::PRECONDITION_FAILED, "a source registry too");
    sqlx::query("DELETE FROM replication_policies").execute(db).await.unwrap();

    let r = api(&app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": "cache"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    sqlx::query("UPDATE projects SET registry_id = $1 WHERE name = 'cache'")
        .bind(id)
        .execute(db)
        .await
        .unwrap();
    let r = del().await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert!(r.text().contains("cache"), "names the project: {}", r.text());
    assert_eq!(get(&app, &format!("/api/v2.0/registries/{id}")).await.status, StatusCode::OK);

    sqlx::query("UPDATE projects SET registry_id = NULL").execute(db).await.unwrap();
    assert_eq!(del().await.status, StatusCode::OK);
});

both_dbs!(types_info_and_ping, |app| {
    let types = get(&app, "/api/v2.0/replication/adapters").await;
    assert_eq!(types.status, StatusCode::OK);
    let names: Vec<String> = serde_json::from_value(types.json()).unwrap();
    let expected: Vec<&str> = server::replication::adapters::TYPES.iter().map(|t| t.name).collect();
    assert_eq!(names, expected);
    assert!(names.iter().any(|n| n == "harbor") && names.iter().any(|n| n == "docker-registry"));

    let infos = get(&app, "/api/v2.0/replication/adapterinfos").await.json();
    for n in &names {
        assert_eq!(infos[n]["endpoint_pattern"]["endpoint_type"], "EndpointPatternTypeStandard", "{infos}");
        assert_eq!(infos[n]["credential_pattern"]["access_key_type"], "AccessKeyTypeStandard");
        assert_eq!(infos[n]["credential_pattern"]["access_secret_type"], "AccessSecretTypePass");
    }
    assert_eq!(infos.as_object().unwrap().len(), names.len());

    let id = create_ok(&app, json!({"name": "h", "type": "harbor", "url": "http://127.0.0.1:1"})).await;
    let info = get(&app, &format!("/api/v2.0/registries/{id}/info")).await;
    assert_eq!(info.status, StatusCode::OK);
    let info = info.json();
    assert_eq!(info["type"], "harbor");
    let filters = info["supported_resource_filters"].as_array().unwrap();
    let style = |t: &str| filters.iter().find(|f| f["type"] == t).map(|f| f["style"].clone());
    assert_eq!(style("name"), Some(json!("input")));
    assert_eq!(style("tag"), Some(json!("input")));
    let resource = filters.iter().find(|f| f["type"] == "resource").unwrap();
    assert_eq!(resource["style"], "radio");
    assert_eq!(resource["values"], json!(["image", "artifact"]));
    assert!(info["supported_triggers"].as_array().unwrap().iter().any(|t| t == "manual"));
    assert_eq!(get(&app, "/api/v2.0/registries/999/info").await.status, StatusCode::NOT_FOUND);

    // Nothing listens on port 1: the ping fails with Harbor's 400, and a ping of the stored
    // settings records the registry as unhealthy.
    let auth = admin();
    let ping = |body: Value| api(&app, Method::POST, "/api/v2.0/registries/ping", &auth, body);
    let r = ping(json!({"id": id})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains("unhealthy"), "{}", r.text());
    assert_eq!(get(&app, &format!("/api/v2.0/registries/{id}")).await.json()["status"], "unhealthy");
    let r = ping(json!({"type": "docker-registry", "url": "http://127.0.0.1:1", "access_key": "a", "access_secret": "b"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("unhealthy"), "{}", r.text());
    for (body, status) in [
        (json!({}), StatusCode::BAD_REQUEST),
        (json!({"type": "harbor"}), StatusCode::BAD_REQUEST),
        (json!({"type": "nope", "url": "http://127.0.0.1:1"}), StatusCode::BAD_REQUEST),
        (json!({"type": "harbor", "url": "file:///etc/passwd"}), StatusCode::BAD_REQUEST),
        (json!({"id": 999}), StatusCode::NOT_FOUND),
    ] {
        let r = ping(body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
    }
    // An edit being tested does not change the stored status.
    sqlx::query("UPDATE registries SET status = 'healthy'").execute(&app.state.db.pool).await.unwrap();
    assert_eq!(
        ping(json!({"id": id, "access_key": "x", "access_secret": "y"})).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(get(&app, &format!("/api/v2.0/registries/{id}")).await.json()["status"], "healthy");
});

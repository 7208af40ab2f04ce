//! Harbor's JSON shapes (zero times, omitted fields, metadata keys, extra attributes) and
//! request types that ignore unknown fields.

use super::*;

// Harbor's shapes: zero times, omitted fields, Location of a new tag, every project metadata
// key, extra_attrs/addition_links of images, a project's artifacts, systeminfo, robots'
// creators, unknown JSON fields ignored.
both_dbs!(harbor_shapes, |app| {
    const ZERO: &str = "0001-01-01T00:00:00.000Z";
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/projects",
        &admin(),
        json!({"project_name": "shape", "storage_limit": -1, "registry_id": null, "unknown_field": {"x": 1},
               "metadata": {"public": "false", "auto_scan": "true", "severity": "High", "prevent_vul": "1",
                            "reuse_sys_cve_allowlist": "false", "enable_content_trust": "false",
                            "enable_content_trust_cosign": "true", "retention_id": "5"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let p = app.get_with("/api/v2.0/projects/shape", &[("authorization", &admin())]).await.json();
    assert_eq!(
        p["metadata"],
        json!({"public": "false", "auto_scan": "true", "severity": "high", "prevent_vul": "true",
               "reuse_sys_cve_allowlist": "false", "enable_content_trust": "false",
               "enable_content_trust_cosign": "true"})
    );
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/projects",
        &admin(),
        json!({"project_name": "bad", "metadata": {"auto_scan": "maybe"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    // PUT keeps what it is not given.
    let r = api(
        &app,
        Method::PUT,
        "/api/v2.0/projects/shape",
        &admin(),
        json!({"metadata": {"auto_scan": "false", "public": "true"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let p = app.get_with("/api/v2.0/projects?name=shape", &[("authorization", &admin())]).await.json();
    assert_eq!(p[0]["metadata"]["auto_scan"], "false");
    assert_eq!(p[0]["metadata"]["public"], "true");
    assert_eq!(p[0]["metadata"]["severity"], "high");

    // The metadatas operations.
    let m = "/api/v2.0/projects/shape/metadatas";
    let all = app.get_with(&format!("{m}/"), &[("authorization", &admin())]).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text());
    assert_eq!(all.json()["severity"], "high");
    assert_eq!(all.json()["public"], "true");
    let r =
        api(&app, Method::POST, &format!("{m}/"), &admin(), json!({"auto_sbom_generation": "TRUE"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for (body, want) in [
        (json!({"auto_sbom_generation": "true"}), StatusCode::CONFLICT),
        (json!({"public": "true"}), StatusCode::CONFLICT),
        (json!({"auto_scan": "true", "severity": "low"}), StatusCode::BAD_REQUEST),
        (json!({"bogus": "x"}), StatusCode::BAD_REQUEST),
        (json!({"severity": "extreme"}), StatusCode::BAD_REQUEST),
    ] {
        let r = api(&app, Method::POST, m, &admin(), body.clone()).await;
        assert_eq!(r.status, want, "{body}: {}", r.text());
    }
    let one = app.get_with(&format!("{m}/auto_sbom_generation"), &[("authorization", &admin())]).await;
    assert_eq!(one.json(), json!({"auto_sbom_generation": "true"}));
    let r = api(&app, Method::PUT, &format!("{m}/severity"), &admin(), json!({"severity": "Low"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = api(&app, Method::PUT, &format!("{m}/severity"), &admin(), json!({"auto_scan": "true"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = api(&app, Method::PUT, &format!("{m}/public"), &admin(), json!({"public": "false"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        app.get_with(&format!("{m}/severity"), &[("authorization", &admin())]).await.json(),
        json!({"severity": "low"})
    );
    assert_eq!(
        app.get_with(&format!("{m}/public"), &[("authorization", &admin())]).await.json(),
        json!({"public": "false"})
    );
    let r = api(&app, Method::DELETE, &format!("{m}/auto_scan"), &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        app.get_with(&format!("{m}/auto_scan"), &[("authorization", &admin())]).await.status,
        StatusCode::NOT_FOUND
    );
    let r = api(&app, Method::DELETE, &format!("{m}/public"), &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(
        app.get(&format!("{m}/")).await.status,
        StatusCode::UNAUTHORIZED,
        "a private project's metadata"
    );

    // Artifacts: never pulled is Harbor's zero time; images carry extra_attrs and addition_links.
    let d = image(&app, "shape/team/app", "v1", b"shape-layer", "arm64").await;
    image(&app, "shape/other", "v1", b"other-layer", "amd64").await;
    let base = "/api/v2.0/projects/shape/repositories/team%252Fapp/artifacts";
    let a = app.get_with(&format!("{base}/v1"), &[("authorization", &admin())]).await.json();
    assert_eq!(a["pull_time"], ZERO);
    assert_eq!(a["tags"][0]["pull_time"], ZERO);
    assert_eq!(a["extra_attrs"], json!({"architecture": "arm64", "os": "linux"}));
    let link = &a["addition_links"]["build_history"];
    assert_eq!(link["absolute"], false);
    let href = link["href"].as_str().unwrap();
    assert_eq!(href, format!("{base}/{d}/additions/build_history"));
    assert_eq!(app.get_with(href, &[("authorization", &admin())]).await.status, StatusCode::OK);
    let pulled = app.get_with("/v2/shape/team/app/manifests/v1", &[("authorization", &admin())]).await;
    assert_eq!(pulled.status, StatusCode::OK);
    app.state.pulls.flush(&app.state.db).await.unwrap();
    let a = app.get_with(&format!("{base}/v1"), &[("authorization", &admin())]).await.json();
    assert_ne!(a["pull_time"], ZERO);
    assert!(a["pull_time"].as_str().unwrap().starts_with("20"), "{a}");

    // A new tag's Location.
    let r = api(
        &app,
        Method::POST,
        &format!("{base}/{d}/tags"),
        &admin(),
        json!({"name": "v2", "id": 5, "immutable": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("location"), Some(format!("{base}/{d}/tags/v2").as_str()));

    // The project's artifacts, across its repositories.
    let r =
        app.get_with("/api/v2.0/projects/shape/artifacts?page_size=1", &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-total-count"), Some("2"));
    let r = app
        .get_with("/api/v2.0/projects/shape/artifacts?sort=push_time", &[("authorization", &admin())])
        .await;
    let list = r.json();
    let names: Vec<&str> =
        list.as_array().unwrap().iter().map(|a| a["repository_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["shape/team/app", "shape/other"]);
    let r = app
        .get_with("/api/v2.0/projects/shape/artifacts?q=media_type%3Dnone", &[("authorization", &admin())])
        .await;
    assert_eq!(r.json(), json!([]));
    assert_eq!(app.get("/api/v2.0/projects/shape/artifacts").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get_with("/api/v2.0/projects/nope/artifacts", &[("authorization", &admin())]).await.status,
        StatusCode::NOT_FOUND
    );

    // Users: no oidc_user_meta at all.
    let me = app.get_with("/api/v2.0/users/current", &[("authorization", &admin())]).await.json();
    assert!(me.get("oidc_user_meta").is_none(), "{me}");

    // systeminfo: the server's time for signed-in callers; volumes for system admins.
    let info = app.get_with("/api/v2.0/systeminfo", &[("authorization", &admin())]).await.json();
    assert!(info["current_time"].as_str().unwrap().ends_with('Z'), "{info}");
    assert!(app.get("/api/v2.0/systeminfo").await.json().get("current_time").is_none());
    let v = app.get_with("/api/v2.0/systeminfo/volumes", &[("authorization", &admin())]).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text());
    let s = &v.json()["storage"][0];
    let (total, free) = (s["total"].as_u64().unwrap(), s["free"].as_u64().unwrap());
    assert!(total > 0 && free <= total, "{s}");
    assert_eq!(app.get("/api/v2.0/systeminfo/volumes").await.status, StatusCode::UNAUTHORIZED);

    // Robots name their creator as Harbor does.
    let robot = json!({"name": "ci", "level": "project", "duration": -1, "unknown": true,
        "permissions": [{"kind": "project", "namespace": "shape", "access": [{"resource": "repository", "action": "pull", "effect": "allow"}]}]});
    let r = api(&app, Method::POST, "/api/v2.0/robots", &admin(), robot).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    let got = app.get_with(&format!("/api/v2.0/robots/{id}"), &[("authorization", &admin())]).await.json();
    assert_eq!(got["creator_type"], "local");
    assert_eq!(got["creator_ref"], me["user_id"]);

    // Unknown fields are ignored on every request body, as Harbor does.
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/users",
        &admin(),
        json!({"username": "shaper", "password": PW, "extra": 1}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let uid = r.header("location").unwrap().rsplit('/').next().unwrap().to_string();
    let r = api(
        &app,
        Method::PUT,
        &format!("/api/v2.0/users/{uid}/password"),
        &admin(),
        json!({"new_password": "Newpassw0rd!", "extra": 1}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
});

/// No REST request type refuses unknown fields (Harbor's API ignores them); configuration
/// files do (a typo there must not pass silently).
#[test]
fn no_request_type_denies_unknown_fields() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api");
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("deny_unknown_fields"), "{} refuses unknown fields", path.display());
    }
}

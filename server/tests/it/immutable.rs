//! Tag immutability (`/projects/{p}/immutabletagrules`): the rules' CRUD, validation and
//! permissions, and **an immutable tag protected on every surface** — `/v2` push (by tag, by
//! digest with `?tag=`), REST copy, `/v2` manifest delete by tag and by digest, REST tag,
//! artifact and repository delete — with Harbor's 412 `PRECONDITION`; the same digest pushed
//! again is accepted; concurrent first pushes of one immutable tag (one wins, the others get
//! 412); replication and proxy-cache writes (`LocalRegistry`). SQLite and PostgreSQL.

use crate::common::oci::{admin, push_image};
use crate::common::{api, basic, member, TestApp, PW};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

async fn project(app: &TestApp, name: &str) {
    let r = api(app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": name})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

async fn user(app: &TestApp, name: &str) {
    let r =
        api(app, Method::POST, "/api/v2.0/users", &admin(), json!({"username": name, "password": PW})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

fn rule(repo: (&str, &str), tag: (&str, &str)) -> Value {
    json!({
        "disabled": false, "action": "immutable", "template": "immutable_template",
        "tag_selectors": [{"kind": "doublestar", "decoration": tag.0, "pattern": tag.1}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": repo.0, "pattern": repo.1}]}
    })
}

/// Creates a rule as the admin; its id.
async fn add_rule(app: &TestApp, project: &str, body: Value) -> i64 {
    let r =
        api(app, Method::POST, &format!("/api/v2.0/projects/{project}/immutabletagrules"), &admin(), body)
            .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap()
}

async fn rules(app: &TestApp, project: &str) -> Vec<Value> {
    let r = api(
        app,
        Method::GET,
        &format!("/api/v2.0/projects/{project}/immutabletagrules"),
        &admin(),
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json().as_array().unwrap().clone()
}

/// The digest `tag` of `repo` names now (REST).
async fn tag_digest(app: &TestApp, project: &str, repo: &str, tag: &str) -> Option<String> {
    let r = api(
        app,
        Method::GET,
        &format!("/api/v2.0/projects/{project}/repositories/{repo}/artifacts/{tag}"),
        &admin(),
        Value::Null,
    )
    .await;
    (r.status == StatusCode::OK).then(|| r.json()["digest"].as_str().unwrap().to_string())
}

/// The manifest PUT of an image with one distinct layer (its own digest), as the admin.
async fn push_other(app: &TestApp, repo: &str, reference: &str, layer: &[u8]) -> crate::common::Resp {
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    crate::common::oci::push_blob(app, repo, config).await;
    crate::common::oci::push_blob(app, repo, layer).await;
    let body = crate::common::oci::image_manifest(config, &[layer]);
    crate::common::oci::put_manifest(
        app,
        repo,
        reference,
        "application/vnd.oci.image.manifest.v1+json",
        &body,
    )
    .await
}

fn assert_precondition(r: &crate::common::Resp, what: &str) {
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{what}: {}", r.text());
    assert_eq!(r.error_code(), "PRECONDITION", "{what}");
    let msg = r.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("immutable"), "{what}: {msg}");
}

both_dbs!(rules_crud_validation_and_audit, |app| {
    project(&app, "p1").await;
    project(&app, "p2").await;
    let base = "/api/v2.0/projects/p1/immutabletagrules";
    let id = add_rule(&app, "p1", rule(("repoMatches", "**"), ("matches", "v*"))).await;
    let listed = rules(&app, "p1").await;
    assert_eq!(listed.len(), 1);
    let r = &listed[0];
    assert_eq!(r["id"], id);
    assert_eq!(r["action"], "immutable");
    assert_eq!(r["template"], "immutable_template");
    assert_eq!(r["disabled"], false);
    assert_eq!(
        r["tag_selectors"][0],
        json!({"kind": "doublestar", "decoration": "matches", "pattern": "v*"})
    );
    assert_eq!(r["scope_selectors"]["repository"][0]["decoration"], "repoMatches");
    assert!(rules(&app, "p2").await.is_empty());
    // The same selectors again: 409; Harbor's defaults for a bare body.
    let r = api(&app, Method::POST, base, &admin(), rule(("repoMatches", "**"), ("matches", "v*"))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    let mut bare = rule(("repoMatches", "app"), ("matches", "latest"));
    bare.as_object_mut().unwrap().retain(|k, _| k.ends_with("selectors"));
    add_rule(&app, "p1", bare).await;
    assert_eq!(rules(&app, "p1").await.len(), 2);
    // Bad bodies: 400 in Harbor's format.
    let mut no_tags = rule(("repoMatches", "**"), ("matches", "v*"));
    no_tags["tag_selectors"] = json!([]);
    let mut no_repo = rule(("repoMatches", "**"), ("matches", "v*"));
    no_repo["scope_selectors"] = json!({});
    let mut label_kind = rule(("repoMatches", "**"), ("matches", "v*"));
    label_kind["tag_selectors"][0]["kind"] = json!("label");
    for (body, why) in [
        (rule(("repoMatches", "**"), ("repoMatches", "v*")), "decoration"),
        (rule(("matches", "**"), ("matches", "v*")), "decoration"),
        (rule(("repoMatches", "**"), ("matches", "")), "pattern"),
        (rule(("repoMatches", "a["), ("matches", "v*")), "invalid pattern"),
        (rule(("repoMatches", "**"), ("matches", &"x".repeat(300))), "longer"),
        (no_tags, "tag selector"),
        (no_repo, "repository scope"),
        (label_kind, "doublestar"),
        (json!({"tag_selectors": "v*"}), ""),
        (json!([]), ""),
    ] {
        let r = api(&app, Method::POST, base, &admin(), body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text());
        assert_eq!(r.error_code(), "BAD_REQUEST");
        assert!(r.text().contains(why), "{body}: {}", r.text());
    }
    // Update: disable it; the body's id must be the path's.
    let mut off = rule(("repoMatches", "**"), ("matches", "v*"));
    off["disabled"] = json!(true);
    off["id"] = json!(id);
    let r = api(&app, Method::PUT, &format!("{base}/{id}"), &admin(), off.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(rules(&app, "p1").await.iter().find(|r| r["id"] == id).unwrap()["disabled"], true);
    off["id"] = json!(id + 100);
    let r = api(&app, Method::PUT, &format!("{base}/{id}"), &admin(), off.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    // Another project's rule, or none: 404 for update and delete.
    off["id"] = json!(id);
    let r =
        api(&app, Method::PUT, &format!("/api/v2.0/projects/p2/immutabletagrules/{id}"), &admin(), off).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = api(
        &app,
        Method::DELETE,
        &format!("/api/v2.0/projects/p2/immutabletagrules/{id}"),
        &admin(),
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = api(&app, Method::DELETE, &format!("{base}/{id}"), &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = api(&app, Method::DELETE, &format!("{base}/{id}"), &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = api(&app, Method::GET, "/api/v2.0/projects/nope/immutabletagrules", &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    // Audit rows for each change.
    app.state.audit.flush(&app.state.db).await.unwrap();
    let r = app.get_with("/api/v2.0/audit-logs?page_size=100", &[("authorization", &admin())]).await;
    let ops: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource_type"] == "immutable_rule")
        .map(|e| e["operation"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ops.iter().filter(|o| *o == "create").count(), 2, "{ops:?}");
    assert!(ops.contains(&"update".to_string()) && ops.contains(&"delete".to_string()), "{ops:?}");
});

both_dbs!(rules_follow_harbors_roles, |app| {
    project(&app, "p1").await;
    for (name, role) in [("pa", 1), ("ma", 4), ("dev", 2), ("gu", 3)] {
        user(&app, name).await;
        assert_eq!(member(&app, "p1", name, role).await.status, StatusCode::CREATED);
    }
    user(&app, "outsider").await;
    let base = "/api/v2.0/projects/p1/immutabletagrules";
    for (who, pattern, status) in [
        ("pa", "a", StatusCode::CREATED),
        ("ma", "b", StatusCode::CREATED),
        ("dev", "c", StatusCode::FORBIDDEN),
        ("gu", "d", StatusCode::FORBIDDEN),
        ("outsider", "e", StatusCode::FORBIDDEN),
    ] {
        let r =
            api(&app, Method::POST, base, &basic(who, PW), rule(("repoMatches", pattern), ("matches", "**")))
                .await;
        assert_eq!(r.status, status, "{who}: {}", r.text());
        let r = api(&app, Method::GET, base, &basic(who, PW), Value::Null).await;
        let want = if status == StatusCode::CREATED { StatusCode::OK } else { StatusCode::FORBIDDEN };
        assert_eq!(r.status, want, "{who} lists: {}", r.text());
    }
    let r = api(&app, Method::POST, base, "", rule(("repoMatches", "z"), ("matches", "**"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    let id = rules(&app, "p1").await[0]["id"].as_i64().unwrap();
    let mut body = rule(("repoMatches", "a2"), ("matches", "**"));
    body["id"] = json!(id);
    let r = api(&app, Method::PUT, &format!("{base}/{id}"), &basic("dev", PW), body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = api(&app, Method::DELETE, &format!("{base}/{id}"), &basic("gu", PW), Value::Null).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = api(&app, Method::PUT, &format!("{base}/{id}"), &basic("ma", PW), body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = api(&app, Method::DELETE, &format!("{base}/{id}"), &basic("ma", PW), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
});

both_dbs!(an_immutable_tag_is_protected_on_every_surface, |app| {
    project(&app, "p1").await;
    let (a, a_body) = push_image(&app, "p1/app", "v1", &[b"layer-a"]).await;
    push_image(&app, "p1/app", "latest", &[b"layer-l"]).await;
    add_rule(&app, "p1", rule(("repoMatches", "**"), ("matches", "v*"))).await;

    // The same digest again, by tag and by digest with ?tag=: accepted (idempotent).
    let r = crate::common::oci::put_manifest(
        &app,
        "p1/app",
        "v1",
        "application/vnd.oci.image.manifest.v1+json",
        &a_body,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = crate::common::oci::put_manifest(
        &app,
        "p1/app",
        &format!("{a}?tag=v1"),
        "application/vnd.oci.image.manifest.v1+json",
        &a_body,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

    // Another digest under v1: by tag, by digest with ?tag=, by a REST copy.
    let r = push_other(&app, "p1/app", "v1", b"layer-b").await;
    assert_precondition(&r, "push by tag");
    assert!(r.text().contains("v1") && r.text().contains("p1/app"), "{}", r.text());
    let (b, b_body) = push_image(&app, "p1/app", "build-2", &[b"layer-b"]).await;
    let r = crate::common::oci::put_manifest(
        &app,
        "p1/app",
        &format!("{b}?tag=v1"),
        "application/vnd.oci.image.manifest.v1+json",
        &b_body,
    )
    .await;
    assert_precondition(&r, "push by digest with ?tag=v1");
    push_image(&app, "p1/other", "v1", &[b"layer-c"]).await;
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/projects/p1/repositories/app/artifacts?from=p1/other:v1",
        &admin(),
        Value::Null,
    )
    .await;
    assert_precondition(&r, "REST copy onto v1");
    assert_eq!(tag_digest(&app, "p1", "app", "v1").await.as_deref(), Some(a.as_str()));

    // Deletes: /v2 by tag and by digest; REST tag, artifact and repository.
    let del = |path: String| {
        let app = &app;
        async move { app.call(Method::DELETE, &path, &[("authorization", &admin())], vec![]).await }
    };
    assert_precondition(&del("/v2/p1/app/manifests/v1".into()).await, "/v2 delete by tag");
    assert_precondition(&del(format!("/v2/p1/app/manifests/{a}")).await, "/v2 delete by digest");
    assert_precondition(
        &del(format!("/api/v2.0/projects/p1/repositories/app/artifacts/{a}/tags/v1")).await,
        "REST tag delete",
    );
    assert_precondition(
        &del(format!("/api/v2.0/projects/p1/repositories/app/artifacts/{a}")).await,
        "REST artifact delete",
    );
    assert_precondition(
        &del("/api/v2.0/projects/p1/repositories/app/artifacts/v1".into()).await,
        "REST artifact delete by tag",
    );
    assert_precondition(
        &del("/api/v2.0/projects/p1/repositories/app".into()).await,
        "REST repository delete",
    );
    assert_eq!(tag_digest(&app, "p1", "app", "v1").await.as_deref(), Some(a.as_str()));

    // The tag lists say which tags are immutable.
    let r = api(
        &app,
        Method::GET,
        &format!("/api/v2.0/projects/p1/repositories/app/artifacts/{a}/tags"),
        &admin(),
        Value::Null,
    )
    .await;
    assert_eq!(r.json()[0]["immutable"], true, "{}", r.text());
    let r = api(
        &app,
        Method::GET,
        "/api/v2.0/projects/p1/repositories/app/artifacts?with_tag=true&page_size=50",
        &admin(),
        Value::Null,
    )
    .await;
    let flags: Vec<(String, bool)> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["tags"].as_array().cloned().unwrap_or_default())
        .map(|t| (t["name"].as_str().unwrap().to_string(), t["immutable"].as_bool().unwrap()))
        .collect();
    assert!(flags.contains(&("v1".into(), true)) && flags.contains(&("latest".into(), false)), "{flags:?}");

    // A tag no rule matches moves and goes as before; a new matching tag can be created.
    assert_eq!(push_other(&app, "p1/app", "latest", b"layer-d").await.status, StatusCode::CREATED);
    assert_eq!(del("/v2/p1/app/manifests/latest".into()).await.status, StatusCode::ACCEPTED);
    assert_eq!(push_other(&app, "p1/app", "v2", b"layer-e").await.status, StatusCode::CREATED);
    assert_precondition(&push_other(&app, "p1/app", "v2", b"layer-f").await, "the new v2");

    // Disabled, the rule protects nothing: v1 moves, then goes with its repository.
    let id = rules(&app, "p1").await[0]["id"].as_i64().unwrap();
    let mut off = rule(("repoMatches", "**"), ("matches", "v*"));
    off["disabled"] = json!(true);
    let r =
        api(&app, Method::PUT, &format!("/api/v2.0/projects/p1/immutabletagrules/{id}"), &admin(), off).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(push_other(&app, "p1/app", "v1", b"layer-b").await.status, StatusCode::CREATED);
    assert_eq!(tag_digest(&app, "p1", "app", "v1").await.as_deref(), Some(b.as_str()));
    assert_eq!(del("/api/v2.0/projects/p1/repositories/app".into()).await.status, StatusCode::OK);
});

both_dbs!(excludes_decorations_and_literal_patterns, |app| {
    project(&app, "p1").await;
    add_rule(&app, "p1", rule(("repoExcludes", "dev/**"), ("excludes", "*-rc*"))).await;
    push_image(&app, "p1/app", "v1", &[b"x1"]).await;
    push_image(&app, "p1/app", "v1-rc1", &[b"x2"]).await;
    push_image(&app, "p1/dev/tool", "v1", &[b"x3"]).await;
    // Protected: app:v1. Not: app:v1-rc1 (tag excluded), dev/tool:v1 (repository excluded).
    assert_precondition(&push_other(&app, "p1/app", "v1", b"y1").await, "app:v1");
    assert_eq!(push_other(&app, "p1/app", "v1-rc1", b"y2").await.status, StatusCode::CREATED);
    assert_eq!(push_other(&app, "p1/dev/tool", "v1", b"y3").await.status, StatusCode::CREATED);
    // Patterns match the name inside the project, `{a,b}` alternatives included.
    project(&app, "p2").await;
    add_rule(&app, "p2", rule(("repoMatches", "{web,api}"), ("matches", "release"))).await;
    push_image(&app, "p2/web", "release", &[b"z1"]).await;
    push_image(&app, "p2/webx", "release", &[b"z2"]).await;
    assert_precondition(&push_other(&app, "p2/web", "release", b"w1").await, "web:release");
    assert_eq!(push_other(&app, "p2/webx", "release", b"w2").await.status, StatusCode::CREATED);
    // Rules are per project: p1's do not reach p2.
    push_image(&app, "p2/app", "v1", &[b"z3"]).await;
    assert_eq!(push_other(&app, "p2/app", "v1", b"w3").await.status, StatusCode::CREATED);
});

both_dbs!(concurrent_first_pushes_of_an_immutable_tag_never_overwrite_each_other, |app| {
    project(&app, "p1").await;
    add_rule(&app, "p1", rule(("repoMatches", "**"), ("matches", "release"))).await;
    // Eight different images, their blobs uploaded first; then eight manifest PUTs to the same
    // new tag at once: one creates it, the others are refused and it keeps the winner's digest.
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    crate::common::oci::push_blob(&app, "p1/app", config).await;
    let mut bodies = vec![];
    for i in 0..8 {
        let layer = format!("layer-{i}");
        crate::common::oci::push_blob(&app, "p1/app", layer.as_bytes()).await;
        bodies.push(crate::common::oci::image_manifest(config, &[layer.as_bytes()]));
    }
    let puts = bodies.iter().map(|b| {
        crate::common::oci::put_manifest(
            &app,
            "p1/app",
            "release",
            "application/vnd.oci.image.manifest.v1+json",
            b,
        )
    });
    let results = futures::future::join_all(puts).await;
    let won: Vec<usize> = (0..8).filter(|i| results[*i].status == StatusCode::CREATED).collect();
    assert_eq!(won.len(), 1, "{:?}", results.iter().map(|r| r.status).collect::<Vec<_>>());
    for (i, r) in results.iter().enumerate() {
        if i != won[0] {
            assert_precondition(r, "a concurrent push");
        }
    }
    let winner = crate::common::oci::sha256(&bodies[won[0]]);
    assert_eq!(tag_digest(&app, "p1", "app", "release").await, Some(winner));
});

both_dbs!(replication_writes_obey_immutability, |app| {
    use server::replication::content::{Content, ContentError, Manifest};
    project(&app, "p1").await;
    let (a, _) = push_image(&app, "p1/app", "v1", &[b"ra"]).await;
    let (b, b_body) = push_image(&app, "p1/app", "candidate", &[b"rb"]).await;
    add_rule(&app, "p1", rule(("repoMatches", "app"), ("matches", "v1"))).await;
    // What a pull-based replication task or the proxy cache does, through `LocalRegistry`.
    let local = server::replication::local::LocalRegistry::new(app.state.clone(), "replication");
    let m = Manifest {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: b.parse().unwrap(),
        bytes: b_body.into(),
    };
    match local.put_manifest("p1/app", "v1", &m).await {
        Err(ContentError::Denied(msg)) => assert!(msg.contains("immutable"), "{msg}"),
        other => panic!("a replicated push over an immutable tag: {other:?}"),
    }
    match local.delete_manifest("p1/app", &a.parse().unwrap()).await {
        Err(ContentError::Denied(msg)) => assert!(msg.contains("immutable"), "{msg}"),
        other => panic!("a replicated deletion of an immutable tag's artifact: {other:?}"),
    }
    assert_eq!(tag_digest(&app, "p1", "app", "v1").await, Some(a));
});

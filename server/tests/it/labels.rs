//! Labels (`/labels`, `…/artifacts/{reference}/labels`): CRUD of global and project labels with
//! their permissions, validation, 404 and 409; labels on artifacts (`with_label`,
//! `q=labels=…`), and a label's or an artifact's delete removing the association. SQLite and
//! PostgreSQL.

use crate::common::oci::{admin, push_image};
use crate::common::{api, basic, member, TestApp, PW};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

async fn project(app: &TestApp, name: &str) -> i64 {
    let r = api(app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": name})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap()
}

async fn user(app: &TestApp, name: &str) {
    let r =
        api(app, Method::POST, "/api/v2.0/users", &admin(), json!({"username": name, "password": PW})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

/// Creates a label with `auth`; its id, or the refusal's status.
async fn label(app: &TestApp, auth: &str, body: Value) -> Result<i64, (StatusCode, String)> {
    let r = api(app, Method::POST, "/api/v2.0/labels", auth, body).await;
    if r.status != StatusCode::CREATED {
        return Err((r.status, r.text()));
    }
    Ok(r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap())
}

async fn get(app: &TestApp, auth: &str, path: &str) -> crate::common::Resp {
    api(app, Method::GET, path, auth, Value::Null).await
}

/// The digests of the artifacts of `p1/app` a list with `query` returns.
async fn listed(app: &TestApp, query: &str) -> Vec<String> {
    let r = get(app, &admin(), &format!("/api/v2.0/projects/p1/repositories/app/artifacts?{query}")).await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text());
    let mut d: Vec<String> =
        r.json().as_array().unwrap().iter().map(|a| a["digest"].as_str().unwrap().to_string()).collect();
    d.sort();
    d
}

fn q(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

both_dbs!(label_crud_permissions_and_validation, |app| {
    let p1 = project(&app, "p1").await;
    let p2 = project(&app, "p2").await;
    for (name, role) in [("ma", 4), ("dev", 2), ("gu", 3)] {
        user(&app, name).await;
        assert_eq!(member(&app, "p1", name, role).await.status, StatusCode::CREATED);
    }
    user(&app, "outsider").await;
    let (ma, dev, gu, out) = (basic("ma", PW), basic("dev", PW), basic("gu", PW), basic("outsider", PW));

    // Global labels: the system admin's.
    let g = label(
        &app,
        &admin(),
        json!({"name": "release", "description": "shipped", "color": "#61717D", "scope": "g"}),
    )
    .await
    .unwrap();
    assert_eq!(
        label(&app, &ma, json!({"name": "other", "scope": "g"})).await.unwrap_err().0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        label(&app, "", json!({"name": "other", "scope": "g"})).await.unwrap_err().0,
        StatusCode::UNAUTHORIZED
    );
    let r = get(&app, &admin(), &format!("/api/v2.0/labels/{g}")).await;
    let j = r.json();
    assert_eq!(
        (j["name"].as_str(), j["scope"].as_str(), j["project_id"].as_i64()),
        (Some("release"), Some("g"), Some(0))
    );
    assert_eq!(j["description"], "shipped");
    assert_eq!(j["color"], "#61717D");
    assert!(j["creation_time"].as_str().unwrap().ends_with('Z'), "{j}");
    // Anyone signed in reads global labels.
    let r = get(&app, &out, "/api/v2.0/labels?scope=g").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    assert_eq!(r.header("x-total-count"), Some("1"));
    assert_eq!(get(&app, "", "/api/v2.0/labels?scope=g").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&app, &out, &format!("/api/v2.0/labels/{g}")).await.status, StatusCode::OK);

    // Project labels: project admins and maintainers write; developers and guests read.
    let pl = label(&app, &ma, json!({"name": "release", "scope": "p", "project_id": p1})).await.unwrap();
    assert_eq!(
        label(&app, &dev, json!({"name": "x", "scope": "p", "project_id": p1})).await.unwrap_err().0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        label(&app, &ma, json!({"name": "x", "scope": "p", "project_id": p2})).await.unwrap_err().0,
        StatusCode::FORBIDDEN
    );
    for who in [&ma, &dev, &gu] {
        let r = get(&app, who, &format!("/api/v2.0/labels?scope=p&project_id={p1}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()[0]["id"], pl);
        assert_eq!(get(&app, who, &format!("/api/v2.0/labels/{pl}")).await.status, StatusCode::OK);
    }
    assert_eq!(
        get(&app, &out, &format!("/api/v2.0/labels?scope=p&project_id={p1}")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(get(&app, &out, &format!("/api/v2.0/labels/{pl}")).await.status, StatusCode::FORBIDDEN);

    // 409: a name taken in the same scope and project (the same name elsewhere is fine).
    for (body, status) in [
        (json!({"name": "release", "scope": "g"}), StatusCode::CONFLICT),
        (json!({"name": "release", "scope": "p", "project_id": p1}), StatusCode::CONFLICT),
        (json!({"name": "release", "scope": "p", "project_id": p2}), StatusCode::CREATED),
    ] {
        let got =
            label(&app, &admin(), body.clone()).await.map(|_| StatusCode::CREATED).unwrap_or_else(|e| e.0);
        assert_eq!(got, status, "{body}");
    }
    // 400: names, scope, project, sizes, body shape.
    for body in [
        json!({"name": "", "scope": "g"}),
        json!({"name": " padded", "scope": "g"}),
        json!({"name": "n".repeat(129), "scope": "g"}),
        json!({"name": "ok", "scope": "x"}),
        json!({"name": "ok"}),
        json!({"name": "ok", "scope": "p"}),
        json!({"name": "ok", "scope": "g", "description": "d".repeat(1025)}),
        json!({"name": "ok", "scope": "g", "color": "red; background: url(x)"}),
        json!({"name": 7, "scope": "g"}),
    ] {
        let (status, text) = label(&app, &admin(), body.clone()).await.unwrap_err();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {text}");
        assert!(text.contains("\"errors\""), "{text}");
    }
    assert_eq!(
        label(&app, &admin(), json!({"name": "ok", "scope": "p", "project_id": 999})).await.unwrap_err().0,
        StatusCode::NOT_FOUND
    );
    for path in [
        "/api/v2.0/labels",
        "/api/v2.0/labels?scope=z",
        "/api/v2.0/labels?scope=p",
        "/api/v2.0/labels?scope=g&q=color=red",
    ] {
        assert_eq!(get(&app, &admin(), path).await.status, StatusCode::BAD_REQUEST, "{path}");
    }
    // Filtering by name.
    label(&app, &admin(), json!({"name": "Beta-2", "scope": "g"})).await.unwrap();
    let r = get(&app, &admin(), "/api/v2.0/labels?scope=g&name=beta").await;
    assert_eq!(r.json().as_array().unwrap().len(), 1, "{}", r.text());
    let r = get(&app, &admin(), &format!("/api/v2.0/labels?scope=g&q={}", q("name=release"))).await;
    assert_eq!(r.json()[0]["id"], g, "{}", r.text());

    // Update and delete: the same permissions; 404 and 409.
    let r = api(&app, Method::PUT, &format!("/api/v2.0/labels/{pl}"), &dev, json!({"name": "renamed"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = api(
        &app,
        Method::PUT,
        &format!("/api/v2.0/labels/{pl}"),
        &ma,
        json!({"name": "renamed", "color": "#000"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(get(&app, &ma, &format!("/api/v2.0/labels/{pl}")).await.json()["name"], "renamed");
    let r =
        api(&app, Method::PUT, &format!("/api/v2.0/labels/{g}"), &admin(), json!({"name": "Beta-2"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    let r = api(&app, Method::PUT, &format!("/api/v2.0/labels/{g}"), &ma, json!({"name": "mine"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = api(&app, Method::PUT, "/api/v2.0/labels/9999", &admin(), json!({"name": "x"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert_eq!(
        api(&app, Method::DELETE, &format!("/api/v2.0/labels/{pl}"), &gu, Value::Null).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api(&app, Method::DELETE, &format!("/api/v2.0/labels/{pl}"), &ma, Value::Null).await.status,
        StatusCode::OK
    );
    assert_eq!(
        api(&app, Method::DELETE, &format!("/api/v2.0/labels/{pl}"), &ma, Value::Null).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(get(&app, &admin(), "/api/v2.0/labels/abc").await.status, StatusCode::BAD_REQUEST);

    // Audit rows.
    app.state.audit.flush(&app.state.db).await.unwrap();
    let r = app.get_with("/api/v2.0/audit-logs?page_size=100", &[("authorization", &admin())]).await;
    let ops: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource_type"] == "label")
        .map(|e| e["operation"].as_str().unwrap().to_string())
        .collect();
    for op in ["create", "update", "delete"] {
        assert!(ops.contains(&op.to_string()), "{op} in {ops:?}");
    }
});

both_dbs!(labels_on_artifacts_filter_and_go_with_deletes, |app| {
    let p1 = project(&app, "p1").await;
    let p2 = project(&app, "p2").await;
    user(&app, "dev").await;
    user(&app, "gu").await;
    assert_eq!(member(&app, "p1", "dev", 2).await.status, StatusCode::CREATED);
    assert_eq!(member(&app, "p1", "gu", 3).await.status, StatusCode::CREATED);
    let (a, _) = push_image(&app, "p1/app", "a", &[b"la"]).await;
    let (b, _) = push_image(&app, "p1/app", "b", &[b"lb"]).await;
    let (c, _) = push_image(&app, "p1/app", "c", &[b"lc"]).await;
    let g = label(&app, &admin(), json!({"name": "release", "scope": "g"})).await.unwrap();
    let p = label(&app, &admin(), json!({"name": "qa", "scope": "p", "project_id": p1})).await.unwrap();
    let other =
        label(&app, &admin(), json!({"name": "theirs", "scope": "p", "project_id": p2})).await.unwrap();
    let add = |who: String, digest: String, id: i64| {
        let app = &app;
        async move {
            api(
                app,
                Method::POST,
                &format!("/api/v2.0/projects/p1/repositories/app/artifacts/{digest}/labels"),
                &who,
                json!({"id": id}),
            )
            .await
        }
    };
    assert_eq!(add(admin(), a.clone(), g).await.status, StatusCode::OK);
    assert_eq!(add(admin(), a.clone(), p).await.status, StatusCode::OK);
    let r = add(basic("dev", PW), b.clone(), g).await;
    assert_eq!(r.status, StatusCode::OK, "developers add labels: {}", r.text());
    assert_eq!(add(basic("gu", PW), c.clone(), g).await.status, StatusCode::FORBIDDEN);
    assert_eq!(add(admin(), a.clone(), g).await.status, StatusCode::CONFLICT);
    assert_eq!(add(admin(), a.clone(), other).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(add(admin(), a.clone(), 9999).await.status, StatusCode::NOT_FOUND);
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/projects/p1/repositories/app/artifacts/nope/labels",
        &admin(),
        json!({"id": g}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = api(
        &app,
        Method::POST,
        &format!("/api/v2.0/projects/p1/repositories/app/artifacts/{a}/labels"),
        &admin(),
        json!({"id": "x"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());

    // `with_label` shows them (by name), without it there is no `labels`.
    let r =
        get(&app, &admin(), &format!("/api/v2.0/projects/p1/repositories/app/artifacts/{a}?with_label=true"))
            .await;
    let names: Vec<String> = r.json()["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["qa", "release"]);
    let r = get(&app, &admin(), &format!("/api/v2.0/projects/p1/repositories/app/artifacts/{a}")).await;
    assert!(r.json().get("labels").is_none(), "{}", r.text());
    let r = get(&app, &admin(), "/api/v2.0/projects/p1/repositories/app/artifacts?with_label=true").await;
    let with: Vec<usize> =
        r.json().as_array().unwrap().iter().map(|x| x["labels"].as_array().unwrap().len()).collect();
    assert_eq!(with.iter().sum::<usize>(), 3, "{}", r.text());

    // Filters: Harbor's (id id) is "all of them"; one id or name; {id id} any of them.
    let mut ab = vec![a.clone(), b.clone()];
    ab.sort();
    assert_eq!(listed(&app, &format!("q={}", q(&format!("labels=({g})")))).await, ab);
    assert_eq!(listed(&app, &format!("q={}", q(&format!("labels=({g} {p})")))).await, vec![a.clone()]);
    assert_eq!(listed(&app, &format!("q={}", q(&format!("labels={p}")))).await, vec![a.clone()]);
    assert_eq!(listed(&app, &format!("q={}", q("labels=release"))).await, ab);
    assert_eq!(listed(&app, &format!("q={}", q("labels=qa"))).await, vec![a.clone()]);
    assert_eq!(listed(&app, &format!("q={}", q(&format!("labels={{{p} {g}}}")))).await, ab);
    assert!(listed(&app, &format!("q={}", q("labels=none-such"))).await.is_empty());
    let r = get(
        &app,
        &admin(),
        &format!("/api/v2.0/projects/p1/repositories/app/artifacts?q={}", q("labels=(x y)")),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r =
        get(&app, &admin(), &format!("/api/v2.0/projects/p1/artifacts?q={}", q(&format!("labels=({p})"))))
            .await;
    assert_eq!(r.json().as_array().unwrap().len(), 1, "{}", r.text());

    // Remove: 200, then 404; a guest may not.
    let rm = |who: String, digest: String, id: i64| {
        let app = &app;
        async move {
            api(
                app,
                Method::DELETE,
                &format!("/api/v2.0/projects/p1/repositories/app/artifacts/{digest}/labels/{id}"),
                &who,
                Value::Null,
            )
            .await
        }
    };
    assert_eq!(rm(basic("gu", PW), b.clone(), g).await.status, StatusCode::FORBIDDEN);
    assert_eq!(rm(basic("dev", PW), b.clone(), g).await.status, StatusCode::OK);
    assert_eq!(rm(admin(), b.clone(), g).await.status, StatusCode::NOT_FOUND);
    assert_eq!(listed(&app, &format!("q={}", q("labels=release"))).await, vec![a.clone()]);

    // Deleting a label removes it from its artifacts.
    assert_eq!(add(admin(), c.clone(), p).await.status, StatusCode::OK);
    assert_eq!(
        api(&app, Method::DELETE, &format!("/api/v2.0/labels/{p}"), &admin(), Value::Null).await.status,
        StatusCode::OK
    );
    assert!(listed(&app, &format!("q={}", q(&format!("labels=({p})")))).await.is_empty());
    let r =
        get(&app, &admin(), &format!("/api/v2.0/projects/p1/repositories/app/artifacts/{a}?with_label=true"))
            .await;
    assert_eq!(r.json()["labels"].as_array().unwrap().len(), 1, "{}", r.text());

    // Deleting a labelled artifact, then its repository, then the label: no dangling rows.
    let r = api(
        &app,
        Method::DELETE,
        &format!("/api/v2.0/projects/p1/repositories/app/artifacts/{a}"),
        &admin(),
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(add(admin(), c.clone(), g).await.status, StatusCode::OK);
    let r = api(&app, Method::DELETE, "/api/v2.0/projects/p1/repositories/app", &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM artifact_labels")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        api(&app, Method::DELETE, &format!("/api/v2.0/labels/{g}"), &admin(), Value::Null).await.status,
        StatusCode::OK
    );
    // An empty project with labels and rules can be deleted.
    label(&app, &admin(), json!({"name": "qa2", "scope": "p", "project_id": p2})).await.unwrap();
    let r = api(&app, Method::DELETE, "/api/v2.0/projects/p2", &admin(), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
});

//! Repositories, artifacts, tags, accessories, copies, search, statistics, permissions and
//! project summaries through `/api/v2.0`, with the roles that may and may not use them, the
//! `q`/`sort` grammar, double-encoded repository names and malformed input. SQLite and PostgreSQL.

use crate::common::{basic, TestApp, ADMIN_PASSWORD};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

const PW: &str = "Passw0rd!x";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn admin() -> String {
    basic("admin", ADMIN_PASSWORD)
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

async fn api(app: &TestApp, method: Method, path: &str, auth: &str, body: Value) -> crate::common::Resp {
    app.call(method, path, &[("authorization", auth), ("content-type", "application/json")], body.to_string())
        .await
}

async fn blob(app: &TestApp, repo: &str, data: &[u8]) -> String {
    let r = app
        .call(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={}", sha256(data)),
            &[("authorization", &admin())],
            data.to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    sha256(data)
}

async fn manifest(app: &TestApp, repo: &str, reference: &str, ct: &str, m: &Value) -> String {
    let body = m.to_string();
    let r = app
        .call(
            Method::PUT,
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("authorization", &admin()), ("content-type", ct)],
            body.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    sha256(body.as_bytes())
}

/// An image with one layer of `layer` bytes; returns its digest.
async fn image(app: &TestApp, repo: &str, reference: &str, layer: &[u8], arch: &str) -> String {
    let config = format!(r#"{{"architecture":"{arch}","os":"linux"}}"#);
    let cd = blob(app, repo, config.as_bytes()).await;
    let ld = blob(app, repo, layer).await;
    let m = json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":cd,"size":config.len()},
        "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":ld,"size":layer.len()}]});
    manifest(app, repo, reference, OCI_MANIFEST, &m).await
}

/// A signature-like artifact whose subject is `subject`.
async fn signature(app: &TestApp, repo: &str, subject: &str, subject_size: usize) -> String {
    let empty = blob(app, repo, b"{}").await;
    let sig = blob(app, repo, b"signature-bytes").await;
    let m = json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,"artifactType":"application/vnd.dev.cosign.artifact.sig.v1+json",
        "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":empty,"size":2},
        "layers":[{"mediaType":"application/octet-stream","digest":sig,"size":15}],
        "subject":{"mediaType":OCI_MANIFEST,"digest":subject,"size":subject_size}});
    let body = m.to_string();
    manifest(app, repo, &sha256(body.as_bytes()), OCI_MANIFEST, &m).await
}

async fn user(app: &TestApp, name: &str, project: &str, role: i64) {
    let r =
        api(app, Method::POST, "/api/v2.0/users", &admin(), json!({"username": name, "password": PW})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    if role > 0 {
        let r = api(
            app,
            Method::POST,
            &format!("/api/v2.0/projects/{project}/members"),
            &admin(),
            json!({"role_id": role, "member_user": {"username": name}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
}

fn digests(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|a| a["digest"].as_str().unwrap().to_string()).collect()
}

both_dbs!(artifacts_tags_and_accessories, |app| {
    api(&app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": "p1"})).await;
    for (n, role) in [("dev", 2), ("guest", 3), ("maint", 4), ("outsider", 0)] {
        user(&app, n, "p1", role).await;
    }
    let amd = image(&app, "p1/app", "amd64", b"amd64-layer", "amd64").await;
    let arm = image(&app, "p1/app", "arm64", b"arm64-layer-longer", "arm64").await;
    let idx = json!({"schemaVersion":2,"mediaType":OCI_INDEX,"manifests":[
        {"mediaType":OCI_MANIFEST,"digest":amd,"size":1,"platform":{"os":"linux","architecture":"amd64"}},
        {"mediaType":OCI_MANIFEST,"digest":arm,"size":1,"platform":{"os":"linux","architecture":"arm64"}}]});
    // Sizes in an index entry are not checked against children here; only existence is.
    let index = manifest(&app, "p1/app", "multi", OCI_INDEX, &idx).await;
    let solo = image(&app, "p1/app", "v1", b"solo-layer", "amd64").await;
    let sig = signature(&app, "p1/app", &solo, 10).await;

    let base = "/api/v2.0/projects/p1/repositories/app/artifacts";
    let r = app.get_with(base, &[("authorization", &basic("guest", PW))]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-total-count"), Some("2"), "index children and the signature are not listed");
    let list = r.json();
    assert_eq!(digests(&list), [solo.clone(), index.clone()], "newest first");
    let idx_entry = &list[1];
    assert_eq!(idx_entry["type"], "IMAGE");
    assert_eq!(idx_entry["tags"][0]["name"], "multi");
    let refs = idx_entry["references"].as_array().unwrap();
    assert_eq!(refs.len(), 2);
    assert!(refs.iter().any(|x| x["child_digest"] == amd.as_str()
        && x["platform"]["architecture"] == "amd64"
        && x["child_id"].is_i64()));
    assert_eq!(list[0]["repository_name"], "p1/app");
    assert!(list[0].get("accessories").is_none());
    let with_acc = app
        .get_with(&format!("{base}?with_accessory=true&with_tag=false"), &[("authorization", &admin())])
        .await
        .json();
    assert!(with_acc[0].get("tags").is_none());
    assert_eq!(with_acc[0]["accessories"][0]["digest"], sig.as_str());
    assert_eq!(with_acc[0]["accessories"][0]["type"], "signature.cosign");
    assert_eq!(
        app.get_with(&format!("{base}?with_tag=false"), &[("authorization", &basic("outsider", PW))])
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // q and sort.
    for (q, expect) in [
        ("tags=v1", vec![solo.clone()]),
        ("tags=~mul", vec![index.clone()]),
        ("tags=nil", vec![]),
        ("tags=*", vec![solo.clone(), index.clone()]),
        (&*format!("digest={index}"), vec![index.clone()]),
        ("media_type=application/vnd.oci.image.index.v1+json", vec![index.clone()]),
        ("push_time=[2000-01-01 00:00:00~]", vec![solo.clone(), index.clone()]),
        ("push_time=[~2000-01-01 00:00:00]", vec![]),
    ] {
        let enc = url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
        let r = app.get_with(&format!("{base}?q={enc}"), &[("authorization", &admin())]).await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text());
        assert_eq!(digests(&r.json()), expect, "{q}");
    }
    let by_size = app.get_with(&format!("{base}?sort=size"), &[("authorization", &admin())]).await.json();
    let sizes: Vec<i64> = by_size.as_array().unwrap().iter().map(|a| a["size"].as_i64().unwrap()).collect();
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");
    for bad in [
        "?q=color%3Dred",
        "?sort=color",
        "?sort=,",
        "?sort=%2C%20%2C",
        "?sort=-",
        "?sort=size,-size",
        "?q=push_time%3D%5Bx~%5D",
        "?page=0",
        "?page_size=500",
        "?with_tag=maybe",
    ] {
        let r = app.get_with(&format!("{base}{bad}"), &[("authorization", &admin())]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.error_code(), "BAD_REQUEST");
    }
    // A thousand sort keys (within the URI limit): a 400, not a 500 from the database.
    let (many, names) = (vec!["size"; 1000].join(","), vec!["name"; 1000].join(","));
    for path in [format!("{base}?sort={many}"), format!("/api/v2.0/projects?sort={names}")] {
        let r = app.get_with(&path, &[("authorization", &admin())]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    }
    let r = app.get_with("/api/v2.0/repositories?sort=,", &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    // Beyond the URI limit: 414 in Harbor's error format, on every REST path.
    let huge = vec!["size"; 5000].join(",");
    for path in
        [format!("{base}?sort={huge}"), format!("/api/v2.0/nothing?x={huge}"), format!("/c/login?x={huge}")]
    {
        let r = app.get_with(&path, &[("authorization", &admin())]).await;
        assert_eq!(r.status, StatusCode::URI_TOO_LONG, "{}", r.text());
        assert_eq!(r.error_code(), "URI_TOO_LONG");
    }
    let paged = app.get_with(&format!("{base}?page=2&page_size=1"), &[("authorization", &admin())]).await;
    assert_eq!(digests(&paged.json()), std::slice::from_ref(&index));
    assert!(paged.header("link").unwrap().contains("rel=\"prev\""));

    // One artifact by tag or digest, with accessories by default.
    let one = app.get_with(&format!("{base}/v1"), &[("authorization", &basic("guest", PW))]).await.json();
    assert_eq!(one["digest"], solo.as_str());
    assert_eq!(one["accessories"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.get_with(&format!("{base}/{index}"), &[("authorization", &admin())]).await.json()["tags"][0]
            ["name"],
        "multi"
    );
    assert_eq!(
        app.get_with(&format!("{base}/nope"), &[("authorization", &admin())]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get_with(&format!("{base}/sha256:xyz"), &[("authorization", &admin())]).await.status,
        StatusCode::BAD_REQUEST
    );
    let acc =
        app.get_with(&format!("{base}/{solo}/accessories"), &[("authorization", &basic("guest", PW))]).await;
    assert_eq!(acc.header("x-total-count"), Some("1"));

    // Tags: developers add, maintainers remove; guests neither.
    let tags = format!("{base}/{solo}/tags");
    assert_eq!(
        api(&app, Method::POST, &tags, &basic("guest", PW), json!({"name": "g"})).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api(&app, Method::POST, &tags, &basic("dev", PW), json!({"name": "stable"})).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        api(&app, Method::POST, &tags, &basic("dev", PW), json!({"name": "stable"})).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        api(&app, Method::POST, &tags, &basic("dev", PW), json!({"name": "bad tag!"})).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api(&app, Method::POST, &tags, &basic("dev", PW), json!({"nom": "x"})).await.status,
        StatusCode::BAD_REQUEST
    );
    let r = app
        .call(
            Method::POST,
            &tags,
            &[("authorization", &basic("dev", PW)), ("content-type", "application/json")],
            "{not json",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "BAD_REQUEST");
    assert_eq!(
        app.get_with("/v2/p1/app/manifests/stable", &[("authorization", &admin())]).await.status,
        StatusCode::OK
    );
    let listed = app
        .get_with(&format!("{tags}?q=name%3D~sta"), &[("authorization", &basic("guest", PW))])
        .await
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(
        app.call(Method::DELETE, &format!("{tags}/stable"), &[("authorization", &basic("dev", PW))], vec![])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("{tags}/stable"),
            &[("authorization", &basic("maint", PW))],
            vec![]
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("{tags}/stable"),
            &[("authorization", &basic("maint", PW))],
            vec![]
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    // Deleting the subject takes its signature; index children stay hidden until the index goes.
    assert_eq!(
        app.call(Method::DELETE, &format!("{base}/v1"), &[("authorization", &basic("dev", PW))], vec![])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(Method::DELETE, &format!("{base}/v1"), &[("authorization", &basic("maint", PW))], vec![])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get_with(&format!("/v2/p1/app/manifests/{sig}"), &[("authorization", &admin())]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call(Method::DELETE, &format!("{base}/multi"), &[("authorization", &admin())], vec![])
            .await
            .status,
        StatusCode::OK
    );
    let after = app.get_with(base, &[("authorization", &admin())]).await.json();
    let mut left = digests(&after);
    left.sort();
    let mut want = vec![amd.clone(), arm.clone()];
    want.sort();
    assert_eq!(left, want, "children are listed again once their index is gone");
    let deletes = app
        .get_with(
            "/api/v2.0/audit-logs?q=operation%3Ddelete%2Cresource_type%3Dartifact&page_size=50",
            &[("authorization", &admin())],
        )
        .await
        .json();
    assert_eq!(deletes.as_array().unwrap().len(), 3, "v1, its signature and the index");
});

both_dbs!(repositories_copy_search_and_statistics, |app| {
    api(&app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": "p1"})).await;
    api(&app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": "p2"})).await;
    api(
        &app,
        Method::POST,
        "/api/v2.0/projects",
        &admin(),
        json!({"project_name": "pub", "metadata": {"public": "true"}}),
    )
    .await;
    user(&app, "dev", "p1", 2).await;
    user(&app, "lguest", "p1", 5).await;
    user(&app, "outsider", "pub", 0).await;
    let d = image(&app, "p1/team/app", "v1", b"nested", "amd64").await;
    image(&app, "pub/tool", "v1", b"tool", "amd64").await;

    // Nested names travel double-encoded.
    let repo = "/api/v2.0/projects/p1/repositories/team%252Fapp";
    let r = app.get_with(repo, &[("authorization", &basic("dev", PW))]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["name"], "p1/team/app");
    assert_eq!(r.json()["artifact_count"], 1);
    assert_eq!(
        api(&app, Method::PUT, repo, &basic("lguest", PW), json!({"description": "x"})).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api(&app, Method::PUT, repo, &basic("dev", PW), json!({"description": "the app"})).await.status,
        StatusCode::OK
    );
    assert_eq!(app.get_with(repo, &[("authorization", &admin())]).await.json()["description"], "the app");
    assert_eq!(
        app.get_with(&format!("{repo}/artifacts/v1"), &[("authorization", &basic("lguest", PW))])
            .await
            .json()["digest"],
        d.as_str()
    );
    let in_p1 = app
        .get_with(
            "/api/v2.0/projects/p1/repositories?q=name%3D~team",
            &[("authorization", &basic("lguest", PW))],
        )
        .await;
    assert_eq!(in_p1.header("x-total-count"), Some("1"));
    assert_eq!(
        app.get_with("/api/v2.0/projects/p1/repositories", &[("authorization", &basic("outsider", PW))])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let names = |v: Value| {
        v.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            app.get_with("/api/v2.0/repositories", &[("authorization", &basic("outsider", PW))]).await.json()
        ),
        ["pub/tool"]
    );
    assert_eq!(
        names(
            app.get_with("/api/v2.0/repositories?sort=-name", &[("authorization", &basic("dev", PW))])
                .await
                .json()
        ),
        ["pub/tool", "p1/team/app"]
    );
    assert_eq!(names(app.get("/api/v2.0/repositories").await.json()), ["pub/tool"]);

    // Copy: pull rights on the source, push rights on the target; the copy pulls over /v2.
    let copy = |auth: String, from: &str| {
        let app = &app;
        let path = format!(
            "/api/v2.0/projects/p2/repositories/copied/artifacts?from={}",
            url::form_urlencoded::byte_serialize(from.as_bytes()).collect::<String>()
        );
        async move { app.call(Method::POST, &path, &[("authorization", &auth)], vec![]).await }
    };
    assert_eq!(
        copy(basic("dev", PW), "p1/team/app:v1").await.status,
        StatusCode::FORBIDDEN,
        "dev cannot push to p2"
    );
    assert_eq!(copy(admin(), "p1/team/app:nope").await.status, StatusCode::NOT_FOUND);
    assert_eq!(copy(admin(), "garbage").await.status, StatusCode::BAD_REQUEST);
    let r = copy(admin(), "p1/team/app:v1").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(r.header("location").unwrap().ends_with(&d));
    let m = app.get_with("/v2/p2/copied/manifests/v1", &[("authorization", &admin())]).await;
    assert_eq!(m.status, StatusCode::OK);
    let layer = m.json()["layers"][0]["digest"].as_str().unwrap().to_string();
    let b = app.get_with(&format!("/v2/p2/copied/blobs/{layer}"), &[("authorization", &admin())]).await;
    assert_eq!(b.body, b"nested");
    assert_eq!(
        app.get_with(
            &format!("/api/v2.0/projects/p2/repositories/copied/artifacts/{d}"),
            &[("authorization", &admin())]
        )
        .await
        .status,
        StatusCode::OK
    );

    // Search and statistics see what the caller may see.
    let s = app.get_with("/api/v2.0/search?q=app", &[("authorization", &basic("dev", PW))]).await.json();
    assert_eq!(s["repository"][0]["repository_name"], "p1/team/app");
    assert_eq!(s["repository"][0]["artifact_count"], 1);
    let s = app.get_with("/api/v2.0/search?q=p", &[("authorization", &basic("outsider", PW))]).await.json();
    let projects: Vec<&str> =
        s["project"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(projects, ["pub"]);
    assert_eq!(
        app.get_with("/api/v2.0/search", &[("authorization", &admin())]).await.status,
        StatusCode::BAD_REQUEST
    );
    let st = app.get_with("/api/v2.0/statistics", &[("authorization", &admin())]).await.json();
    assert_eq!(st["total_project_count"], 4);
    assert_eq!(st["private_repo_count"], 2);
    assert_eq!(st["public_repo_count"], 1);
    assert!(st["total_storage_consumption"].as_i64().unwrap() > 0);
    let st = app.get_with("/api/v2.0/statistics", &[("authorization", &basic("outsider", PW))]).await.json();
    assert_eq!(
        (st["total_project_count"].as_i64(), st["total_storage_consumption"].as_i64()),
        (Some(2), Some(0))
    );
    assert_eq!(app.get("/api/v2.0/statistics").await.status, StatusCode::UNAUTHORIZED);

    // Permissions, summary and metadata.
    let pid = app.get_with("/api/v2.0/projects/p1", &[("authorization", &admin())]).await.json()
        ["project_id"]
        .as_i64()
        .unwrap();
    let perms = app
        .get_with(
            &format!("/api/v2.0/users/current/permissions?scope=/project/{pid}&relative=true"),
            &[("authorization", &basic("lguest", PW))],
        )
        .await
        .json();
    let has =
        |r: &str, a: &str| perms.as_array().unwrap().iter().any(|p| p["resource"] == r && p["action"] == a);
    assert!(has("repository", "pull") && has("artifact", "list"));
    assert!(!has("repository", "push") && !has("member", "list") && !has("log", "list"));
    assert_eq!(
        app.get_with("/api/v2.0/users/current/permissions?scope=/nowhere", &[("authorization", &admin())])
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let sum =
        app.get_with("/api/v2.0/projects/p1/summary", &[("authorization", &basic("dev", PW))]).await.json();
    assert_eq!(
        (sum["repo_count"].as_i64(), sum["developer_count"].as_i64(), sum["project_admin_count"].as_i64()),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(
        app.get_with("/api/v2.0/projects/p1/summary", &[("authorization", &basic("lguest", PW))])
            .await
            .json()["developer_count"],
        0
    );
    assert_eq!(
        app.get_with("/api/v2.0/projects/p1/metadatas", &[("authorization", &basic("dev", PW))]).await.json(),
        json!({"public": "false"})
    );
    assert_eq!(
        api(
            &app,
            Method::PUT,
            "/api/v2.0/projects/p1/metadatas/public",
            &basic("dev", PW),
            json!({"public": "true"})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api(&app, Method::PUT, "/api/v2.0/projects/p1/metadatas/color", &admin(), json!({"color": "red"}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api(&app, Method::PUT, "/api/v2.0/projects/p1/metadatas/public", &admin(), json!({"public": "true"}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get_with("/api/v2.0/projects/p1", &[("authorization", &basic("outsider", PW))]).await.json()
            ["metadata"]["public"],
        "true"
    );

    // Repository delete is logical and immediate.
    assert_eq!(
        app.call(Method::DELETE, repo, &[("authorization", &basic("dev", PW))], vec![]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(Method::DELETE, repo, &[("authorization", &admin())], vec![]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get_with("/v2/p1/team/app/manifests/v1", &[("authorization", &admin())]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get_with(repo, &[("authorization", &admin())]).await.status, StatusCode::NOT_FOUND);
});

both_dbs!(cookie_writes_need_the_csrf_token, |app| {
    let (cookie, csrf) = app.login("admin", ADMIN_PASSWORD).await;
    let body = json!({"project_name": "viasession"}).to_string();
    let r = app
        .call(
            Method::POST,
            "/api/v2.0/projects",
            &[("cookie", &cookie), ("content-type", "application/json")],
            body.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "FORBIDDEN");
    let r = app
        .call(
            Method::POST,
            "/api/v2.0/projects",
            &[("cookie", &cookie), ("content-type", "application/json"), ("x-harbor-csrf-token", &csrf)],
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = app.get_with("/api/v2.0/repositories", &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::OK);
});

// An index whose children share a child index, many times over at every level: a copy copies
// each manifest once (4^8 = 65 536 paths to the leaf; one copy each would take hours).
both_dbs!(copy_of_nested_indexes_copies_each_child_once, |app| {
    api(&app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": "nest"})).await;
    let mut child = image(&app, "nest/src", "leaf", b"leaf-layer", "amd64").await;
    let mut media = OCI_MANIFEST;
    for level in 0..8 {
        let entry = json!({"mediaType": media, "digest": child, "size": 1});
        let idx = json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [entry.clone(), entry.clone(), entry.clone(), entry]});
        child = manifest(&app, "nest/src", &format!("l{level}"), OCI_INDEX, &idx).await;
        media = OCI_INDEX;
    }
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        app.call(
            Method::POST,
            "/api/v2.0/projects/nest/repositories/dst/artifacts?from=nest%2Fsrc%3Al7",
            &[("authorization", &admin())],
            vec![],
        ),
    )
    .await
    .expect("the copy of a shared-child index tree must not explode");
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());
    let m = app.get_with("/v2/nest/dst/manifests/l7", &[("authorization", &admin())]).await;
    assert_eq!(m.status, StatusCode::OK);
    let r = app.get_with("/v2/nest/dst/manifests/leaf", &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "only the tag named in from is copied");
    let leaf = app.get_with("/v2/nest/src/manifests/leaf", &[("authorization", &admin())]).await;
    let leaf_digest = sha256(&leaf.body);
    let r =
        app.get_with(&format!("/v2/nest/dst/manifests/{leaf_digest}"), &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::OK, "the shared leaf is copied");
});

/// Every write endpoint in a loop, from several clients at once, while the product's own
/// background writers run (audit writer, pull counter, job runner with a GC every second and
/// its heartbeats, usage refreshes, session writes and expiry): no request may fail with a 5xx
/// ("database is locked" on SQLite was a 503 for 1 loop in 8).
async fn writes_never_fail_on_lock_contention(app: TestApp, workers: usize, rounds: usize) {
    let app = std::sync::Arc::new(app);
    let state = app.state.clone();
    // The product's own loops, as `serve` starts them (supervised).
    server::serve::start_loops(&state);
    let mut background = vec![];
    if let server::sessions::Store::Sql(store) = &state.sessions {
        let store = store.clone();
        background.push(tokio::spawn(async move {
            loop {
                let _ = store.delete_expired().await;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }));
    }
    let r = api(
        &app,
        Method::PUT,
        "/api/v2.0/system/gc/schedule",
        &admin(),
        json!({"schedule": {"type": "Custom", "cron": "* * * * * *"}, "parameters": {"dry_run": true}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r =
        api(&app, Method::POST, "/api/v2.0/users", &admin(), json!({"username": "member", "password": PW}))
            .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

    let mut tasks = vec![];
    for w in 0..workers {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let a = admin();
            let mut calls = 0usize;
            for i in 0..rounds {
                let p = format!("w{w}r{i}");
                let expect = |r: crate::common::Resp, want: StatusCode, what: &str| {
                    assert_eq!(r.status, want, "worker {w} round {i}: {what}: {}", r.text());
                    r
                };
                let step = |m: Method, path: String, body: Value| {
                    let app = app.clone();
                    let a = a.clone();
                    async move { api(&app, m, &path, &a, body).await }
                };
                let proj = format!("/api/v2.0/projects/{p}");
                expect(step(Method::POST, "/api/v2.0/projects".into(), json!({"project_name": p})).await, StatusCode::CREATED, "create project");
                expect(step(Method::PUT, proj.clone(), json!({"metadata": {"public": "true"}})).await, StatusCode::OK, "update project");
                let r = expect(
                    step(Method::POST, format!("{proj}/members"), json!({"role_id": 2, "member_user": {"username": "member"}})).await,
                    StatusCode::CREATED,
                    "add member",
                );
                let mid = r.header("location").unwrap().rsplit('/').next().unwrap().to_string();
                expect(step(Method::PUT, format!("{proj}/members/{mid}"), json!({"role_id": 3})).await, StatusCode::OK, "update member");
                let d = image(&app, &format!("{p}/app"), "v1", format!("layer {p}").as_bytes(), "amd64").await;
                let pulled = app.get_with(&format!("/v2/{p}/app/manifests/v1"), &[("authorization", &a)]).await;
                expect(pulled, StatusCode::OK, "pull");
                let art = format!("{proj}/repositories/app/artifacts/{d}");
                expect(step(Method::POST, format!("{art}/tags"), json!({"name": "v2"})).await, StatusCode::CREATED, "create tag");
                expect(step(Method::DELETE, format!("{art}/tags/v2"), Value::Null).await, StatusCode::OK, "delete tag");
                let from = format!("{p}/app:v1").replace('/', "%2F").replace(':', "%3A");
                expect(step(Method::POST, format!("{proj}/repositories/copy/artifacts?from={from}"), Value::Null).await, StatusCode::CREATED, "copy");
                expect(step(Method::PUT, format!("{proj}/repositories/app"), json!({"description": "d"})).await, StatusCode::OK, "update repository");
                let robot = json!({"name": format!("ci{i}"), "level": "project", "duration": -1,
                    "permissions": [{"kind": "project", "namespace": p, "access": [{"resource": "repository", "action": "pull"}]}]});
                let r = expect(step(Method::POST, "/api/v2.0/robots".into(), robot).await, StatusCode::CREATED, "create robot");
                let rid = r.json()["id"].as_i64().unwrap();
                expect(step(Method::PATCH, format!("/api/v2.0/robots/{rid}"), json!({"secret": "Ab1defghijkl"})).await, StatusCode::OK, "refresh robot");
                expect(step(Method::DELETE, format!("/api/v2.0/robots/{rid}"), Value::Null).await, StatusCode::OK, "delete robot");
                let _ = app.get_with(&format!("{proj}/summary"), &[("authorization", &a)]).await;
                expect(step(Method::DELETE, format!("{proj}/members/{mid}"), Value::Null).await, StatusCode::OK, "remove member");
                expect(step(Method::DELETE, format!("{proj}/repositories/copy/artifacts/{d}"), Value::Null).await, StatusCode::OK, "delete artifact");
                expect(step(Method::DELETE, format!("{proj}/repositories/copy"), Value::Null).await, StatusCode::OK, "delete copy");
                expect(step(Method::DELETE, format!("{proj}/repositories/app"), Value::Null).await, StatusCode::OK, "delete repository");
                // The reported failure: the project's delete right after its last repository's.
                expect(step(Method::DELETE, proj.clone(), Value::Null).await, StatusCode::OK, "delete project");
                let u = format!("u{w}x{i}");
                let r = expect(step(Method::POST, "/api/v2.0/users".into(), json!({"username": u, "password": PW})).await, StatusCode::CREATED, "create user");
                let uid = r.header("location").unwrap().rsplit('/').next().unwrap().to_string();
                expect(step(Method::PUT, format!("/api/v2.0/users/{uid}"), json!({"email": format!("{u}@x.io")})).await, StatusCode::OK, "update user");
                expect(step(Method::PUT, format!("/api/v2.0/users/{uid}/sysadmin"), json!({"sysadmin_flag": true})).await, StatusCode::OK, "sysadmin");
                app.login(&u, PW).await;
                expect(step(Method::DELETE, format!("/api/v2.0/users/{uid}"), Value::Null).await, StatusCode::OK, "delete user");
                expect(step(Method::PUT, "/api/v2.0/configurations".into(), json!({"self_registration": i % 2 == 0})).await, StatusCode::OK, "configurations");
                calls += 27;
            }
            calls
        }));
    }
    let mut calls = 0;
    for t in tasks {
        calls += t.await.expect("a worker failed");
    }
    for b in background {
        b.abort();
    }
    assert_eq!(calls, workers * rounds * 27);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_writes_never_fail_on_lock_contention() {
    writes_never_fail_on_lock_contention(TestApp::new(crate::common::DbChoice::Sqlite).await, 4, 25).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_writes_never_fail_on_lock_contention() {
    writes_never_fail_on_lock_contention(TestApp::new(crate::common::DbChoice::Postgres).await, 4, 10).await;
}

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

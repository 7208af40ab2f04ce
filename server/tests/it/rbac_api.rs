//! The REST side of RBAC: projects, members, users, robot accounts, configurations and the
//! audit log, each with the roles that may and may not use it. SQLite and PostgreSQL.

use crate::common::{basic, TestApp, ADMIN_PASSWORD};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

const PW: &str = "Passw0rd!x";

fn admin() -> String {
    basic("admin", ADMIN_PASSWORD)
}

async fn api(app: &TestApp, method: Method, path: &str, auth: &str, body: Value) -> crate::common::Resp {
    let mut headers = vec![("content-type", "application/json")];
    if !auth.is_empty() {
        headers.push(("authorization", auth));
    }
    app.call(method, path, &headers, if body.is_null() { String::new() } else { body.to_string() }).await
}

async fn user(app: &TestApp, name: &str) -> i64 {
    let r =
        api(app, Method::POST, "/api/v2.0/users", &admin(), json!({"username": name, "password": PW})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap()
}

async fn member(app: &TestApp, project: &str, name: &str, role: i64) -> crate::common::Resp {
    api(
        app,
        Method::POST,
        &format!("/api/v2.0/projects/{project}/members"),
        &admin(),
        json!({"role_id": role, "member_user": {"username": name}}),
    )
    .await
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

async fn push(app: &TestApp, auth: &str, repo: &str, tag: &str) -> StatusCode {
    let config = br#"{"os":"linux"}"#;
    let r = app
        .call(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={}", sha256(config)),
            &[("authorization", auth)],
            config.to_vec(),
        )
        .await;
    if r.status != StatusCode::CREATED {
        return r.status;
    }
    let m = json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":sha256(config),"size":config.len()},
        "layers":[]});
    app.call(
        Method::PUT,
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("authorization", auth), ("content-type", "application/vnd.oci.image.manifest.v1+json")],
        m.to_string(),
    )
    .await
    .status
}

async fn audit(app: &TestApp, q: &str) -> Vec<Value> {
    let q = url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
    let r = app
        .get_with(&format!("/api/v2.0/audit-logs?page_size=100&q={q}"), &[("authorization", &admin())])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json().as_array().unwrap().clone()
}

const NONE: Value = Value::Null;
const OK: StatusCode = StatusCode::OK;
const CREATED: StatusCode = StatusCode::CREATED;
const BAD_REQUEST: StatusCode = StatusCode::BAD_REQUEST;
const UNAUTHORIZED: StatusCode = StatusCode::UNAUTHORIZED;
const FORBIDDEN: StatusCode = StatusCode::FORBIDDEN;
const NOT_FOUND: StatusCode = StatusCode::NOT_FOUND;
const CONFLICT: StatusCode = StatusCode::CONFLICT;

/// Runs a permission table in order (a row may depend on the rows before it) and asserts each
/// row's status. A row: who asks (`"admin"`, a user with `PW`, or `""` for nobody), the method,
/// the path, the JSON body (`NONE`: no body) and the status it must get.
async fn expect<const N: usize>(app: &TestApp, rows: [(&str, Method, &str, Value, StatusCode); N]) {
    for (who, method, path, body, status) in rows {
        let auth = match who {
            "" => String::new(),
            "admin" => admin(),
            name => basic(name, PW),
        };
        let mut headers = Vec::new();
        if !auth.is_empty() {
            headers.push(("authorization", auth.as_str()));
        }
        if !body.is_null() {
            headers.push(("content-type", "application/json"));
        }
        let sent = if body.is_null() { String::new() } else { body.to_string() };
        let r = app.call(method.clone(), path, &headers, sent).await;
        assert_eq!(r.status, status, "{who:?} {method} {path} {body}: {}", r.text());
    }
}

both_dbs!(projects_and_members, |app| {
    for n in ["padmin", "dev", "guest", "lguest", "outsider"] {
        user(&app, n).await;
    }
    // Any user may create a project and becomes its admin.
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/projects",
        &basic("padmin", PW),
        json!({"project_name": "p1", "storage_limit": -1}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let loc = r.header("location").unwrap().to_string();
    let p = app.get_with(&loc, &[("authorization", &basic("padmin", PW))]).await.json();
    assert_eq!(p["name"], "p1");
    assert_eq!(p["metadata"]["public"], "false");
    assert_eq!(p["current_user_role_id"], 1);
    assert_eq!(p["owner_name"], "padmin");
    for (body, code) in [
        (json!({"project_name": "p1"}), StatusCode::CONFLICT),
        (json!({"project_name": "Bad Name"}), StatusCode::BAD_REQUEST),
        (json!({"project_name": "x", "metadata": {"public": "maybe"}}), StatusCode::BAD_REQUEST),
        (json!({}), StatusCode::BAD_REQUEST),
    ] {
        let r = api(&app, Method::POST, "/api/v2.0/projects", &admin(), body.clone()).await;
        assert_eq!(r.status, code, "{body}: {}", r.text());
        r.error_code();
    }
    let members = "/api/v2.0/projects/p1/members";
    let add = |role: i64, name: &str| json!({"role_id": role, "member_user": {"username": name}});
    expect(
        &app,
        [
            ("", Method::POST, "/api/v2.0/projects", json!({"project_name": "anon"}), UNAUTHORIZED),
            ("admin", Method::HEAD, "/api/v2.0/projects?project_name=p1", NONE, OK),
            ("admin", Method::HEAD, "/api/v2.0/projects?project_name=nope", NONE, NOT_FOUND),
            // Members: the project admin manages them; others may not.
            ("padmin", Method::POST, members, add(2, "dev"), CREATED),
            ("padmin", Method::POST, members, add(3, "guest"), CREATED),
            ("padmin", Method::POST, members, add(5, "lguest"), CREATED),
            ("dev", Method::POST, members, add(3, "outsider"), FORBIDDEN),
            ("padmin", Method::POST, members, add(3, "dev"), CONFLICT),
            ("padmin", Method::POST, members, add(3, "ghost"), NOT_FOUND),
            ("padmin", Method::POST, members, add(9, "outsider"), BAD_REQUEST),
        ],
    )
    .await;
    let list = app.get_with(members, &[("authorization", &basic("guest", PW))]).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.header("x-total-count"), Some("4"));
    let dev = list.json().as_array().unwrap().iter().find(|m| m["entity_name"] == "dev").unwrap().clone();
    assert_eq!(dev["role_name"], "developer");
    let mid = dev["id"].as_i64().unwrap();
    let path = format!("/api/v2.0/projects/p1/members/{mid}");
    expect(
        &app,
        [
            ("lguest", Method::GET, members, NONE, FORBIDDEN),
            ("dev", Method::PUT, &path, json!({"role_id": 1}), FORBIDDEN),
            ("padmin", Method::PUT, &path, json!({"role_id": 4}), OK),
        ],
    )
    .await;
    assert_eq!(app.get_with(&path, &[("authorization", &admin())]).await.json()["role_name"], "maintainer");

    // Visibility: members see the private project, outsiders do not (404 is not leaked as 403
    // for listing; a direct read is refused).
    let names = |r: crate::common::Resp| {
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(app.get_with("/api/v2.0/projects", &[("authorization", &basic("lguest", PW))]).await),
        ["library", "p1"]
    );
    assert_eq!(
        names(app.get_with("/api/v2.0/projects", &[("authorization", &basic("outsider", PW))]).await),
        ["library"]
    );
    assert_eq!(names(app.get("/api/v2.0/projects").await), ["library"]);
    let public = json!({"metadata": {"public": "true"}});
    expect(
        &app,
        [
            ("outsider", Method::GET, "/api/v2.0/projects/p1", NONE, FORBIDDEN),
            ("", Method::GET, "/api/v2.0/projects/p1", NONE, UNAUTHORIZED),
            // Only the project admin updates and deletes the project.
            ("dev", Method::PUT, "/api/v2.0/projects/p1", public.clone(), FORBIDDEN),
            ("padmin", Method::PUT, "/api/v2.0/projects/p1", public, OK),
        ],
    )
    .await;
    assert_eq!(names(app.get("/api/v2.0/projects").await), ["library", "p1"]);
    assert_eq!(push(&app, &basic("dev", PW), "p1/app", "v1").await, StatusCode::CREATED);
    let d = app
        .get_with("/api/v2.0/projects/p1/_deletable", &[("authorization", &basic("padmin", PW))])
        .await
        .json();
    assert_eq!(d["deletable"], false);
    let restrict = json!({"project_creation_restriction": "adminonly"});
    expect(
        &app,
        [
            ("dev", Method::DELETE, "/api/v2.0/projects/p1", NONE, FORBIDDEN),
            ("guest", Method::DELETE, "/api/v2.0/projects/p1/repositories/app", NONE, FORBIDDEN),
            ("padmin", Method::DELETE, "/api/v2.0/projects/p1/repositories/app", NONE, OK),
            ("padmin", Method::DELETE, &path, NONE, OK),
            ("padmin", Method::DELETE, "/api/v2.0/projects/p1", NONE, OK),
            ("admin", Method::GET, "/api/v2.0/projects/p1", NONE, NOT_FOUND),
            // Project creation can be restricted to admins.
            ("padmin", Method::PUT, "/api/v2.0/configurations", restrict.clone(), FORBIDDEN),
            ("admin", Method::PUT, "/api/v2.0/configurations", restrict, OK),
            ("padmin", Method::POST, "/api/v2.0/projects", json!({"project_name": "p2"}), FORBIDDEN),
            ("admin", Method::POST, "/api/v2.0/projects", json!({"project_name": "p2"}), CREATED),
        ],
    )
    .await;

    // q and sort on the project list.
    let listed = |q: &'static str| {
        let app = &app;
        async move { app.get_with(&format!("/api/v2.0/projects?{q}"), &[("authorization", &admin())]).await }
    };
    assert_eq!(names(listed("q=public%3Dtrue").await), ["library"]);
    assert_eq!(names(listed("q=name%3D~p").await), ["p2"]);
    assert_eq!(names(listed("sort=-name").await), ["p2", "library"]);
    assert_eq!(names(listed("q=name%3D%7Bp2%20library%7D&sort=-creation_time").await), ["p2", "library"]);
    for bad in ["q=color%3Dred", "sort=size", "q=public%3Dmaybe"] {
        let r = listed(bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.error_code(), "BAD_REQUEST");
    }

    // What happened is in the log: project, member and configuration changes.
    for (q, n) in [
        ("operation=create,resource_type=project,username=padmin", 1),
        ("operation=update,resource_type=project", 1),
        ("operation=delete,resource_type=project", 1),
        ("operation=create,resource_type=member", 3),
        ("operation=update,resource_type=member", 1),
        ("operation=delete,resource_type=member", 1),
        ("operation=delete,resource_type=repository,resource=p1/app", 1),
        ("operation=update,resource_type=configuration,resource=project_creation_restriction", 1),
    ] {
        assert_eq!(audit(&app, q).await.len(), n, "{q}");
    }
});

both_dbs!(users_and_self_registration, |app| {
    let alice = user(&app, "alice").await;
    let bob = user(&app, "bob").await;
    // Only admins list users; anyone signed in may search by name.
    assert_eq!(
        app.get_with("/api/v2.0/users", &[("authorization", &basic("alice", PW))]).await.status,
        StatusCode::FORBIDDEN
    );
    let r = app.get_with("/api/v2.0/users?q=username%3D~li", &[("authorization", &admin())]).await;
    assert_eq!(r.header("x-total-count"), Some("1"));
    assert_eq!(r.json()[0]["username"], "alice");
    let s = app
        .get_with("/api/v2.0/users/search?username=bo", &[("authorization", &basic("alice", PW))])
        .await
        .json();
    assert_eq!(s, json!([{"user_id": bob, "username": "bob"}]));
    // Users read and edit themselves, not others.
    assert_eq!(
        app.get_with(&format!("/api/v2.0/users/{bob}"), &[("authorization", &basic("alice", PW))])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let r = api(
        &app,
        Method::PUT,
        &format!("/api/v2.0/users/{alice}"),
        &basic("alice", PW),
        json!({"realname": "Alice A", "email": "a@x.io"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        api(
            &app,
            Method::PUT,
            &format!("/api/v2.0/users/{alice}"),
            &basic("alice", PW),
            json!({"email": "nope"})
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get_with(&format!("/api/v2.0/users/{alice}"), &[("authorization", &basic("alice", PW))])
            .await
            .json()["realname"],
        "Alice A"
    );
    // Bad users.
    for (body, code) in [
        (json!({"username": "alice", "password": PW}), StatusCode::CONFLICT),
        (json!({"username": "ALICE", "password": PW}), StatusCode::CONFLICT),
        (json!({"username": "robot$x", "password": PW}), StatusCode::BAD_REQUEST),
        (json!({"username": "weak", "password": "weak"}), StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(
            api(&app, Method::POST, "/api/v2.0/users", &admin(), body.clone()).await.status,
            code,
            "{body}"
        );
    }

    // Self-registration: off by default, then on; never as an admin.
    let (users, reg) = ("/api/v2.0/users", json!({"username": "carol", "password": PW}));
    expect(
        &app,
        [
            ("", Method::POST, users, reg.clone(), UNAUTHORIZED),
            ("admin", Method::PUT, "/api/v2.0/configurations", json!({"self_registration": true}), OK),
        ],
    )
    .await;
    assert_eq!(app.get("/api/v2.0/systeminfo").await.json()["self_registration"], true);
    let path = format!("/api/v2.0/users/{alice}/sysadmin");
    let (grant, revoke) = (json!({"sysadmin_flag": true}), json!({"sysadmin_flag": false}));
    let eve = json!({"username": "eve", "password": PW, "sysadmin_flag": true});
    expect(
        &app,
        [
            ("", Method::POST, users, eve, FORBIDDEN),
            ("alice", Method::POST, users, reg.clone(), FORBIDDEN),
            ("", Method::POST, users, reg, CREATED),
            ("carol", Method::GET, "/api/v2.0/users/current", NONE, OK),
            // System admin role: granted and revoked by admins, never by oneself.
            ("bob", Method::PUT, &path, grant.clone(), FORBIDDEN),
            ("admin", Method::PUT, &path, grant, OK),
            ("alice", Method::GET, users, NONE, OK),
            ("alice", Method::PUT, &path, revoke, FORBIDDEN),
        ],
    )
    .await;

    // Deleting a user: their credentials stop working, the name is free again, and audit rows
    // keep the name.
    assert_eq!(push(&app, &basic("alice", PW), "library/a", "v1").await, StatusCode::CREATED);
    let path = format!("/api/v2.0/users/{alice}");
    expect(
        &app,
        [
            ("bob", Method::DELETE, &path, NONE, FORBIDDEN),
            ("admin", Method::DELETE, &path, NONE, OK),
            ("alice", Method::GET, "/api/v2.0/users/current", NONE, UNAUTHORIZED),
            ("admin", Method::GET, &path, NONE, NOT_FOUND),
        ],
    )
    .await;
    assert_eq!(audit(&app, "operation=create,resource_type=artifact,username=alice").await.len(), 1);
    assert_eq!(audit(&app, "operation=delete,resource_type=user,resource=alice").await.len(), 1);
    user(&app, "alice").await;
    assert_eq!(
        audit(&app, "operation=create,resource_type=user,username=carol").await[0]["detail"],
        "self-registration"
    );
});

both_dbs!(robot_accounts, |app| {
    user(&app, "padmin").await;
    user(&app, "dev").await;
    api(&app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": "p1"})).await;
    api(&app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": "p2"})).await;
    member(&app, "p1", "padmin", 1).await;
    member(&app, "p1", "dev", 2).await;
    let perms = |ns: &str, acts: &[(&str, &str)]| {
        json!([{"kind": "project", "namespace": ns,
                "access": acts.iter().map(|(r, a)| json!({"resource": r, "action": a})).collect::<Vec<_>>()}])
    };
    let robot = |name: &str, level: &str, p: Value| json!({"name": name, "level": level, "duration": -1, "permissions": p});
    let push_pull = perms("p1", &[("repository", "pull"), ("repository", "push")]);

    // Who may create what.
    let robots = "/api/v2.0/robots";
    let ci = robot("ci", "project", push_pull.clone());
    let in_p2 = robot("ci", "project", perms("p2", &[("repository", "pull")]));
    let system = robot("sys", "system", perms("*", &[("repository", "pull")]));
    let bad_name = robot("Bad Name", "project", push_pull.clone());
    let bad_action = robot("x", "project", perms("p1", &[("repository", "fly")]));
    expect(
        &app,
        [
            ("dev", Method::POST, robots, ci, FORBIDDEN),
            ("padmin", Method::POST, robots, in_p2, FORBIDDEN),
            ("padmin", Method::POST, robots, system, FORBIDDEN),
            ("padmin", Method::POST, robots, bad_name, BAD_REQUEST),
            ("padmin", Method::POST, robots, bad_action, BAD_REQUEST),
        ],
    )
    .await;
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/robots",
        &basic("padmin", PW),
        robot("ci", "project", push_pull.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let created = r.json();
    assert_eq!(created["name"], "robot$p1+ci");
    assert_eq!(created["expires_at"], -1);
    let (id, secret) = (created["id"].as_i64().unwrap(), created["secret"].as_str().unwrap().to_string());
    assert_eq!(
        api(&app, Method::POST, "/api/v2.0/robots", &basic("padmin", PW), robot("ci", "project", push_pull))
            .await
            .status,
        StatusCode::CONFLICT
    );
    let shown = app
        .get_with(&format!("/api/v2.0/robots/{id}"), &[("authorization", &basic("padmin", PW))])
        .await
        .json();
    assert!(shown.get("secret").is_none(), "the secret is shown once");
    assert_eq!(shown["permissions"][0]["namespace"], "p1");
    assert_eq!(shown["level"], "project");
    let listed = app
        .get_with(
            &format!("/api/v2.0/robots?q=Level%3Dproject%2CProjectID%3D{}", 2),
            &[("authorization", &basic("dev", PW))],
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());

    // The robot pushes and pulls in p1 (Basic on /v2 and through the token service), nothing
    // more; it cannot log in to the portal.
    let rb = basic("robot$p1+ci", &secret);
    assert_eq!(push(&app, &rb, "p1/app", "v1").await, StatusCode::CREATED);
    assert_eq!(
        app.get_with("/v2/p1/app/manifests/v1", &[("authorization", &rb)]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.call(Method::DELETE, "/v2/p1/app/manifests/v1", &[("authorization", &rb)], vec![]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(push(&app, &rb, "p2/app", "v1").await, StatusCode::FORBIDDEN);
    let t = app
        .get_with(
            "/service/token?service=harbor-registry&scope=repository:p1/app:pull,push,delete",
            &[("authorization", &rb)],
        )
        .await
        .json();
    let claims = t["token"].as_str().unwrap().split('.').nth(1).unwrap().to_string();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "robot$p1+ci");
    assert_eq!(claims["access"][0]["actions"], json!(["pull", "push"]));
    let login = app
        .call(
            Method::POST,
            "/c/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            format!("principal=robot%24p1%2Bci&password={secret}"),
        )
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get_with("/api/v2.0/users/current", &[("authorization", &rb)]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get_with("/v2/p1/app/manifests/v1", &[("authorization", &basic("robot$p1+ci", "Wrong-secret1"))])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // Disable, enable, refresh the secret, expire, delete.
    let path = format!("/api/v2.0/robots/{id}");
    assert_eq!(
        api(&app, Method::PUT, &path, &basic("dev", PW), json!({"disable": true})).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api(&app, Method::PUT, &path, &basic("padmin", PW), json!({"disable": true})).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get_with("/v2/p1/app/manifests/v1", &[("authorization", &rb)]).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api(&app, Method::PUT, &path, &basic("padmin", PW), json!({"disable": false})).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get_with("/v2/p1/app/manifests/v1", &[("authorization", &rb)]).await.status,
        StatusCode::OK
    );
    let r = api(&app, Method::PATCH, &path, &basic("padmin", PW), json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    let new_secret = r.json()["secret"].as_str().unwrap().to_string();
    assert_eq!(
        app.get_with("/v2/p1/app/manifests/v1", &[("authorization", &rb)]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let rb = basic("robot$p1+ci", &new_secret);
    assert_eq!(
        app.get_with("/v2/p1/app/manifests/v1", &[("authorization", &rb)]).await.status,
        StatusCode::OK
    );
    sqlx::query("UPDATE robots SET expires_at = 1 WHERE id = $1")
        .bind(id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(
        app.get_with("/v2/p1/app/manifests/v1", &[("authorization", &rb)]).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call(Method::DELETE, &path, &[("authorization", &basic("padmin", PW))], vec![]).await.status,
        StatusCode::OK
    );
    assert_eq!(app.get_with(&path, &[("authorization", &admin())]).await.status, StatusCode::NOT_FOUND);

    // A system robot covering every project, created by an admin, reaches projects created later.
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/robots",
        &admin(),
        robot("sweeper", "system", perms("*", &[("repository", "pull"), ("artifact", "delete")])),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let sys = basic("robot$sweeper", r.json()["secret"].as_str().unwrap());
    api(&app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": "later"})).await;
    assert_eq!(push(&app, &admin(), "later/x", "v1").await, StatusCode::CREATED);
    assert_eq!(
        app.get_with("/v2/later/x/manifests/v1", &[("authorization", &sys)]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.call(Method::DELETE, "/v2/later/x/manifests/v1", &[("authorization", &sys)], vec![]).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(push(&app, &sys, "later/x", "v2").await, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get_with("/api/v2.0/robots?q=Level%3Dsystem", &[("authorization", &admin())])
            .await
            .header("x-total-count"),
        Some("1")
    );
    assert_eq!(
        app.get_with("/api/v2.0/robots?q=Level%3Dsystem", &[("authorization", &basic("padmin", PW))])
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // The robots' own operations are audited under their names.
    assert_eq!(audit(&app, "operation=create,resource_type=artifact,username=robot$p1+ci").await.len(), 1);
    assert_eq!(audit(&app, "operation=delete,username=robot$sweeper").await.len(), 1);
    assert_eq!(audit(&app, "resource_type=robot,operation=update,resource=robot$p1+ci").await.len(), 3);
    assert_eq!(audit(&app, "resource_type=robot,operation=create").await.len(), 2);
});

both_dbs!(robots_cannot_outgrow_their_managers, |app| {
    // A robot holding robot:update in p1 must not take over a stronger robot (reset its
    // secret and push with it), nor extend its own or another robot's life beyond its own.
    api(&app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": "p1"})).await;
    let create = |name: &str, duration: i64, acts: &[(&str, &str)]| {
        json!({"name": name, "level": "project", "duration": duration,
               "permissions": [{"kind": "project", "namespace": "p1",
                 "access": acts.iter().map(|(r, a)| json!({"resource": r, "action": a})).collect::<Vec<_>>()}]})
    };
    let made = |r: crate::common::Resp| {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let j = r.json();
        (j["id"].as_i64().unwrap(), j["secret"].as_str().unwrap().to_string())
    };
    let manage = [("robot", "read"), ("robot", "update"), ("robot", "create"), ("repository", "pull")];
    let (mgr_id, mgr_secret) =
        made(api(&app, Method::POST, "/api/v2.0/robots", &admin(), create("mgr", 10, &manage)).await);
    let (pusher_id, _) = made(
        api(
            &app,
            Method::POST,
            "/api/v2.0/robots",
            &admin(),
            create("pusher", 10, &[("repository", "push"), ("repository", "pull")]),
        )
        .await,
    );
    let (weak_id, _) = made(
        api(&app, Method::POST, "/api/v2.0/robots", &admin(), create("weak", 5, &[("repository", "pull")]))
            .await,
    );
    let mgr = basic("robot$p1+mgr", &mgr_secret);

    // The stronger robot: no new secret, no new life, no disabling.
    let path = format!("/api/v2.0/robots/{pusher_id}");
    for (method, body) in [
        (Method::PATCH, json!({})),
        (Method::PATCH, json!({"secret": "Chosen-secret-123"})),
        (Method::PUT, json!({"duration": -1})),
        (Method::PUT, json!({"disable": true})),
    ] {
        let r = api(&app, method.clone(), &path, &mgr, body.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {body}: {}", r.text());
        assert_eq!(r.error_code(), "FORBIDDEN");
    }
    assert_eq!(
        push(&app, &basic("robot$p1+pusher", "Chosen-secret-123"), "p1/app", "v1").await,
        StatusCode::UNAUTHORIZED
    );

    // Itself: a new secret is fine, a longer life is not, a shorter one is.
    let own = format!("/api/v2.0/robots/{mgr_id}");
    for d in [-1, 11, 365] {
        let r = api(&app, Method::PUT, &own, &mgr, json!({"duration": d})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{d}: {}", r.text());
    }
    assert_eq!(api(&app, Method::PUT, &own, &mgr, json!({"duration": 9})).await.status, StatusCode::OK);
    // A weaker robot: managed, but not given a life longer than the manager's (9 days now).
    let weak = format!("/api/v2.0/robots/{weak_id}");
    assert_eq!(api(&app, Method::PUT, &weak, &mgr, json!({"duration": 8})).await.status, StatusCode::OK);
    assert_eq!(
        api(&app, Method::PUT, &weak, &mgr, json!({"duration": -1})).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(api(&app, Method::PATCH, &weak, &mgr, json!({})).await.status, StatusCode::OK);
    // Nor can it create one that outlives it, or one with rights it lacks.
    let r =
        api(&app, Method::POST, "/api/v2.0/robots", &mgr, create("forever", -1, &[("repository", "pull")]))
            .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = api(&app, Method::POST, "/api/v2.0/robots", &mgr, create("pushy", 1, &[("repository", "push")]))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    made(
        api(&app, Method::POST, "/api/v2.0/robots", &mgr, create("short", 1, &[("repository", "pull")]))
            .await,
    );
    // An admin still manages every robot.
    assert_eq!(api(&app, Method::PATCH, &path, &admin(), json!({})).await.status, StatusCode::OK);
    assert_eq!(api(&app, Method::PUT, &own, &admin(), json!({"duration": -1})).await.status, StatusCode::OK);
});

both_dbs!(robot_secrets_are_throttled_like_passwords, |app| {
    api(&app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": "p1"})).await;
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/robots",
        &admin(),
        json!({"name": "ci", "level": "project", "duration": -1,
               "permissions": [{"kind": "project", "namespace": "p1", "access": [{"resource": "repository", "action": "pull"}]}]}),
    )
    .await;
    let secret = r.json()["secret"].as_str().unwrap().to_string();
    for _ in 0..5 {
        let r = app.get_with("/v2/", &[("authorization", &basic("robot$p1+ci", "Wrong-secret1"))]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Locked: the right secret is refused too, with the lockout message (any case of the name).
    for name in ["robot$p1+ci", "ROBOT$P1+CI"] {
        let r = app.get_with("/v2/", &[("authorization", &basic(name, &secret))]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.text().contains("locked"), "{}", r.text());
        assert!(r.header("retry-after").is_some());
    }
});

both_dbs!(user_names_are_plain_ascii, |app| {
    for bad in ["ädmin", "admin\u{202e}", "a\u{200b}b", "\u{0430}dmin", "tab\tname", "x\u{0007}"] {
        let r =
            api(&app, Method::POST, "/api/v2.0/users", &admin(), json!({"username": bad, "password": PW}))
                .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad:?}: {}", r.text());
        assert_eq!(r.error_code(), "BAD_REQUEST");
    }
    user(&app, "plain.name-1_x@corp").await;
});

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

//! Projects, members, users and self-registration through `/api/v2.0`, by role.

use super::*;

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

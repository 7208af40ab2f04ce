//! Robot accounts through `/api/v2.0`: who may create and change them, their limits and their
//! secrets' throttling.

use super::*;

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

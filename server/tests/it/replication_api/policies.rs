//! Policy CRUD, validation (Harbor's rules, a 400 naming the problem), permissions, audit,
//! the schedule kept per policy, and delete refused while a run is active.

use super::*;

both_dbs!(policy_crud_validation_and_permissions, |app| {
    let reg = registry(&app, "peer").await;
    let id = create_policy(&app, push_policy("to-peer", reg, json!({"description": "d"}))).await;

    let r = api(&app, Method::GET, &format!("/api/v2.0/replication/policies/{id}"), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let p = r.json();
    assert_eq!(p["name"], "to-peer");
    assert_eq!(p["description"], "d");
    assert_eq!(p["src_registry"]["id"], 0);
    assert_eq!(p["src_registry"]["name"], "Local");
    assert_eq!(p["dest_registry"]["id"], reg);
    assert_eq!(p["dest_registry"]["name"], "peer");
    assert_eq!(p["dest_namespace"], "mirror");
    assert_eq!(p["dest_namespace_replace_count"], 1);
    assert_eq!(p["trigger"]["type"], "manual");
    assert_eq!(p["filters"][0], json!({"type": "name", "value": "library/**"}));
    assert_eq!(p["enabled"], true);
    assert_eq!(p["override"], true);
    assert_eq!(p["single_active_replication"], true, "on by default");
    assert_eq!(p["speed"], 0);

    // Unique name.
    let r = api(&app, Method::POST, "/api/v2.0/replication/policies", push_policy("to-peer", reg, json!({})))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());

    // The validation table: each body gets a 400 whose message says why.
    let cases: Vec<(Value, &str)> = vec![
        (json!({"name": ""}), "name is required"),
        (json!({"dest_registry": null}), "exactly one of"),
        (json!({"src_registry": {"id": reg}}), "exactly one of"),
        (json!({"dest_registry": {"id": 9999}}), "does not exist"),
        (json!({"filters": [{"type": "color", "value": "red"}]}), "invalid filter type"),
        (json!({"filters": [{"type": "tag", "value": "v[1"}]}), "invalid pattern"),
        (
            json!({"filters": [{"type": "name", "value": "a/**", "decoration": "excludes"}]}),
            "only tag and label",
        ),
        (json!({"filters": [{"type": "label", "value": "prod"}]}), "array of strings"),
        (json!({"filters": [{"type": "resource", "value": "chart"}]}), "invalid resource filter"),
        (json!({"dest_namespace": "Bad Name"}), "invalid destination namespace"),
        (json!({"dest_namespace_replace_count": -2}), "dest_namespace_replace_count"),
        (json!({"speed": -5}), "speed"),
        (json!({"trigger": {"type": "sometimes"}}), "invalid trigger type"),
        (json!({"trigger": {"type": "scheduled"}}), "needs trigger_settings.cron"),
        (
            json!({"trigger": {"type": "scheduled", "trigger_settings": {"cron": "not a cron"}}}),
            "invalid cron",
        ),
        (json!({"trigger": {"type": "scheduled", "trigger_settings": {"cron": "0 * * * * *"}}}), "minutes"),
        (json!({"trigger": {"type": "scheduled", "trigger_settings": {"cron": "7 0 3 * * *"}}}), "seconds"),
        (
            json!({"trigger": {"type": "event_based"}, "single_active_replication": true}),
            "not allowed for event_based",
        ),
    ];
    for (extra, msg) in cases {
        let body = push_policy("bad", reg, extra.clone());
        let r = api(&app, Method::POST, "/api/v2.0/replication/policies", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{extra}: {}", r.text());
        assert!(r.text().contains(msg), "{extra}: {}", r.text());
    }
    // Event-based triggers are for push-based policies only.
    let pull = json!({"name": "pull", "src_registry": {"id": reg}, "trigger": {"type": "event_based"}, "enabled": true});
    let r = api(&app, Method::POST, "/api/v2.0/replication/policies", pull).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("only for push-based"), "{}", r.text());
    // Not JSON at all.
    let r = app
        .call(
            Method::POST,
            "/api/v2.0/replication/policies",
            &[("authorization", &admin()), ("content-type", "application/json")],
            "{",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // A pull-based, scheduled one; its schedule is kept under its own name.
    let pull = json!({"name": "from-peer", "src_registry": {"id": reg}, "enabled": true,
        "trigger": {"type": "scheduled", "trigger_settings": {"cron": "0 30 2 * * *"}}, "speed": -1});
    let pid = create_policy(&app, pull.clone()).await;
    let s = server::jobs::get_schedule(&app.state.db, &format!("replication/{pid}")).await.unwrap().unwrap();
    assert_eq!(s.cron, "0 30 2 * * *");
    let p =
        api(&app, Method::GET, &format!("/api/v2.0/replication/policies/{pid}"), Value::Null).await.json();
    assert_eq!(p["src_registry"]["id"], reg);
    assert_eq!(p["dest_registry"]["id"], 0);
    assert_eq!(p["speed"], 0, "-1 is unlimited, stored as 0");
    // Disabled: no schedule.
    let mut off = pull.clone();
    off["enabled"] = json!(false);
    let r = api(&app, Method::PUT, &format!("/api/v2.0/replication/policies/{pid}"), off).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(server::jobs::get_schedule(&app.state.db, &format!("replication/{pid}"))
        .await
        .unwrap()
        .is_none());

    // Update, with a name taken by another policy → 409.
    let r = api(
        &app,
        Method::PUT,
        &format!("/api/v2.0/replication/policies/{id}"),
        push_policy("from-peer", reg, json!({})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    let r = api(
        &app,
        Method::PUT,
        &format!("/api/v2.0/replication/policies/{id}"),
        push_policy("to-peer-2", reg, json!({"dest_namespace": "", "replicate_deletion": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let p = api(&app, Method::GET, &format!("/api/v2.0/replication/policies/{id}"), Value::Null).await.json();
    assert_eq!((p["name"].as_str(), p["replicate_deletion"].as_bool()), (Some("to-peer-2"), Some(true)));
    let r =
        api(&app, Method::PUT, "/api/v2.0/replication/policies/9999", push_policy("x", reg, json!({}))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // List: total, paging links, q and sort.
    let r = api(&app, Method::GET, "/api/v2.0/replication/policies?page_size=1&sort=name", Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-total-count"), Some("2"));
    assert!(r.header("link").unwrap().contains("rel=\"next\""));
    assert_eq!(r.json()[0]["name"], "from-peer");
    let r = api(&app, Method::GET, "/api/v2.0/replication/policies?q=name%3D~peer-2", Value::Null).await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    for bad in ["q=color%3Dred", "sort=color", "page_size=0"] {
        let r = api(&app, Method::GET, &format!("/api/v2.0/replication/policies?{bad}"), Value::Null).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }

    // System admins only.
    crate::common::create_user(&app.state.db, "dev", crate::common::PW, false).await;
    let dev = crate::common::basic("dev", crate::common::PW);
    for (m, path) in [
        (Method::GET, "/api/v2.0/replication/policies".to_string()),
        (Method::GET, format!("/api/v2.0/replication/policies/{id}")),
        (Method::DELETE, format!("/api/v2.0/replication/policies/{id}")),
        (Method::GET, "/api/v2.0/replication/executions".to_string()),
        (Method::POST, "/api/v2.0/replication/executions".to_string()),
    ] {
        let r = crate::common::api(&app, m.clone(), &path, &dev, json!({"policy_id": id})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{m} {path}");
        let r = crate::common::api(&app, m.clone(), &path, "", json!({"policy_id": id})).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{m} {path}");
    }

    // Delete: refused while a run is active (412), then done.
    let exec = start(&app, id).await;
    let r = api(&app, Method::DELETE, &format!("/api/v2.0/replication/policies/{id}"), Value::Null).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.text());
    let r = api(&app, Method::PUT, &format!("/api/v2.0/replication/executions/{exec}"), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(execution(&app, exec).await["status"], "Stopped");
    let r = api(&app, Method::DELETE, &format!("/api/v2.0/replication/policies/{id}"), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = api(&app, Method::GET, &format!("/api/v2.0/replication/policies/{id}"), Value::Null).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api(&app, Method::GET, &format!("/api/v2.0/replication/executions/{exec}"), Value::Null).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "its runs went with it");
    let r = api(&app, Method::DELETE, &format!("/api/v2.0/replication/policies/{pid}"), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(server::jobs::get_schedule(&app.state.db, &format!("replication/{pid}"))
        .await
        .unwrap()
        .is_none());

    // Policy writes are audited.
    app.state.audit.flush(&app.state.db).await.unwrap();
    let log = api(
        &app,
        Method::GET,
        "/api/v2.0/audit-logs?q=resource_type%3Dreplication_policy&page_size=50",
        Value::Null,
    )
    .await
    .json();
    let ops: Vec<&str> = log.as_array().unwrap().iter().map(|e| e["operation"].as_str().unwrap()).collect();
    for op in ["create", "update", "delete"] {
        assert!(ops.contains(&op), "{op} in {ops:?}");
    }
});

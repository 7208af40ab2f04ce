//! User groups (`/api/v2.0/usergroups`), groups as project members, and the account rules of
//! the LDAP and OIDC modes. SQLite and PostgreSQL.
//!
//! A user's groups come from the directory or the provider at login; here they are set the way
//! those logins leave them: on the `User` (`User::groups`) for RBAC, and in the portal session
//! (`sessions::GROUPS`) for the REST API.

use crate::common::oci::admin;
use crate::common::{api, basic, create_user, TestApp, PW};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use server::accounts;
use server::projects;
use server::rbac::{self, Act, Principal, ProjectAccess, Resource, Role};
use tower_sessions::SessionStore;

const GROUPS: &str = "/api/v2.0/usergroups";

/// Sets settings as the admin (`auth_mode` only while no other user exists).
async fn configure(app: &TestApp, body: Value) {
    let r = api(app, Method::PUT, "/api/v2.0/configurations", &admin(), body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{body}: {}", r.text());
}

async fn ldap_mode(app: &TestApp) {
    configure(app, json!({"auth_mode": "ldap_auth", "ldap_url": "ldap://127.0.0.1:1"})).await;
}

/// Creates a group as the admin; its id.
async fn group(app: &TestApp, body: Value) -> i64 {
    let r = api(app, Method::POST, GROUPS, &admin(), body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{body}: {}", r.text());
    let loc = r.header("location").unwrap();
    assert!(loc.starts_with("/api/v2.0/usergroups/"), "{loc}");
    loc.rsplit('/').next().unwrap().parse().unwrap()
}

fn ldap(name: &str, dn: &str) -> Value {
    json!({"group_name": name, "group_type": 1, "ldap_group_dn": dn})
}

fn names(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|g| g["group_name"].as_str().unwrap().to_string()).collect()
}

async fn audit(app: &TestApp, q: &str) -> Vec<Value> {
    let q = url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
    let r = app
        .get_with(&format!("/api/v2.0/audit-logs?page_size=100&q={q}"), &[("authorization", &admin())])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json().as_array().unwrap().clone()
}

both_dbs!(usergroups_crud_validation_and_paging, |app| {
    ldap_mode(&app).await;
    create_user(&app.state.db, "dev", PW, false).await;
    let dev = basic("dev", PW);

    let devs = group(&app, ldap("devs", "cn=devs,ou=groups,dc=example,dc=com")).await;
    // The same DN (any case or spacing of the key) or the same name: 409.
    for dup in
        [ldap("devs2", "CN=Devs,OU=groups,DC=example,DC=com"), ldap("devs", "cn=other,dc=example,dc=com")]
    {
        let r = api(&app, Method::POST, GROUPS, &admin(), dup.clone()).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{dup}: {}", r.text());
        assert_eq!(r.error_code(), "CONFLICT");
    }
    let ops = group(&app, json!({"group_name": "ops", "group_type": 3})).await;
    let r = api(&app, Method::POST, GROUPS, &admin(), json!({"group_name": "ops", "group_type": 3})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // Another type may have the name.
    let http_ops = group(&app, json!({"group_name": "ops", "group_type": 2})).await;

    for bad in [
        json!({"group_name": "x", "group_type": 0}),
        json!({"group_name": "x", "group_type": 4}),
        json!({"group_name": "", "group_type": 3}),
        json!({"group_name": "   ", "group_type": 3}),
        json!({"group_name": "x".repeat(256), "group_type": 3}),
        json!({"group_name": "x", "group_type": 1}),
        json!({"group_name": "x", "group_type": 1, "ldap_group_dn": "not a dn"}),
        json!({"group_name": "x", "group_type": 1, "ldap_group_dn": "cn=x,,dc=y"}),
        json!({"group_name": "x", "group_type": 3, "ldap_group_dn": "cn=x,dc=y"}),
        json!({"group_name": 5}),
        json!([1]),
    ] {
        let r = api(&app, Method::POST, GROUPS, &admin(), bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text());
        assert_eq!(r.error_code(), "BAD_REQUEST");
    }
    let long = group(&app, json!({"group_name": "é".repeat(255), "group_type": 3})).await;

    // One group read back, and the missing and impossible ones.
    let r = app.get_with(&format!("{GROUPS}/{devs}"), &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        json!({"id": devs, "group_name": "devs", "group_type": 1, "ldap_group_dn": "cn=devs,ou=groups,dc=example,dc=com"})
    );
    assert_eq!(
        app.get_with(&format!("{GROUPS}/999999"), &[("authorization", &admin())]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get_with(&format!("{GROUPS}/0"), &[("authorization", &admin())]).await.status,
        StatusCode::BAD_REQUEST
    );

    // The list in ldap_auth shows LDAP groups only (Harbor's rule), paged.
    for i in 0..4 {
        group(&app, ldap(&format!("team{i}"), &format!("cn=team{i},ou=groups,dc=example,dc=com"))).await;
    }
    let r = app.get_with(&format!("{GROUPS}?page=2&page_size=2"), &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-total-count"), Some("5"));
    assert_eq!(names(&r.json()), ["team1", "team2"]);
    let link = r.header("link").unwrap();
    assert!(
        link.contains("page=1&page_size=2>; rel=\"prev\"")
            && link.contains("page=3&page_size=2>; rel=\"next\""),
        "{link}"
    );
    let r = app.get_with(&format!("{GROUPS}?group_name=EAM"), &[("authorization", &admin())]).await;
    assert_eq!(names(&r.json()), ["team0", "team1", "team2", "team3"]);
    let dn = url::form_urlencoded::byte_serialize(b"CN=devs,ou=groups,dc=example,dc=com").collect::<String>();
    let r = app.get_with(&format!("{GROUPS}?ldap_group_dn={dn}"), &[("authorization", &admin())]).await;
    assert_eq!(names(&r.json()), ["devs"]);
    assert_eq!(r.header("x-total-count"), Some("1"));
    let r = app.get_with(&format!("{GROUPS}?ldap_group_dn=cn%3Dnone"), &[("authorization", &admin())]).await;
    assert_eq!(r.json(), json!([]));
    assert_eq!(r.header("x-total-count"), Some("0"));
    assert_eq!(
        app.get_with(&format!("{GROUPS}?page_size=101"), &[("authorization", &admin())]).await.status,
        StatusCode::BAD_REQUEST
    );

    // Search: any signed-in user, closest matches first, paged; a name is required.
    let r = app.get_with(&format!("{GROUPS}/search?groupname=o"), &[("authorization", &dev)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-total-count"), Some("2"));
    assert_eq!(
        r.json(),
        json!([{"id": ops, "group_name": "ops", "group_type": 3}, {"id": http_ops, "group_name": "ops", "group_type": 2}])
    );
    let r =
        app.get_with(&format!("{GROUPS}/search?groupname=T&page_size=3"), &[("authorization", &dev)]).await;
    assert_eq!(r.header("x-total-count"), Some("4"));
    assert_eq!(names(&r.json()), ["team0", "team1", "team2"]);
    assert!(r.header("link").unwrap().contains("rel=\"next\""));
    assert_eq!(
        app.get_with(&format!("{GROUPS}/search"), &[("authorization", &dev)]).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(app.get(&format!("{GROUPS}/search?groupname=o")).await.status, StatusCode::UNAUTHORIZED);

    // Everything else is for system admins.
    for (method, path, body) in [
        (Method::GET, GROUPS.to_string(), Value::Null),
        (Method::POST, GROUPS.to_string(), json!({"group_name": "mine", "group_type": 3})),
        (Method::GET, format!("{GROUPS}/{devs}"), Value::Null),
        (Method::PUT, format!("{GROUPS}/{devs}"), json!({"group_name": "mine"})),
        (Method::DELETE, format!("{GROUPS}/{devs}"), Value::Null),
    ] {
        let r = api(&app, method.clone(), &path, &dev, body.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}: {}", r.text());
        let r = api(&app, method.clone(), &path, "", body).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }

    // Renaming: the name only; the type and DN stay.
    let path = format!("{GROUPS}/{devs}");
    let adm = admin();
    let put = |body: Value| api(&app, Method::PUT, &path, &adm, body);
    assert_eq!(put(json!({"group_name": "developers"})).await.status, StatusCode::OK);
    let back = app.get_with(&path, &[("authorization", &admin())]).await.json();
    assert_eq!(
        (back["group_name"].as_str(), back["ldap_group_dn"].as_str()),
        (Some("developers"), Some("cn=devs,ou=groups,dc=example,dc=com"))
    );
    // Sending the current type and DN back is fine; changing them is not.
    assert_eq!(put(json!({"group_name": "developers", "group_type": 1, "ldap_group_dn": "CN=devs, ou=groups,dc=example,dc=com"})).await.status, StatusCode::OK);
    assert_eq!(
        put(json!({"group_name": "developers", "group_type": 3})).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        put(json!({"group_name": "developers", "ldap_group_dn": "cn=x,dc=y"})).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(put(json!({"group_name": ""})).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(put(json!({"group_name": "team0"})).await.status, StatusCode::CONFLICT);
    assert_eq!(
        api(&app, Method::PUT, &format!("{GROUPS}/999999"), &admin(), json!({"group_name": "x"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // An OIDC group's name is what finds it: the renamed group is found by its new name.
    let r = api(&app, Method::PUT, &format!("{GROUPS}/{long}"), &admin(), json!({"group_name": "platform"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let found = server::identity::groups::populate(
        &app.state.db,
        &[server::identity::groups::NewGroup {
            kind: server::identity::groups::GroupType::Oidc,
            name: "platform".into(),
            ldap_dn: String::new(),
        }],
    )
    .await
    .unwrap();
    assert_eq!(found, [long]);
    let r = api(&app, Method::PUT, &format!("{GROUPS}/{long}"), &admin(), json!({"group_name": "ops"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());

    // Deleting.
    assert_eq!(api(&app, Method::DELETE, &path, &admin(), Value::Null).await.status, StatusCode::OK);
    assert_eq!(app.get_with(&path, &[("authorization", &admin())]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(api(&app, Method::DELETE, &path, &admin(), Value::Null).await.status, StatusCode::NOT_FOUND);

    for (q, n) in [
        ("operation=create,resource_type=user-group", 8),
        ("operation=update,resource_type=user-group,resource=developers", 1),
        ("operation=delete,resource_type=user-group,resource=developers", 1),
    ] {
        assert_eq!(audit(&app, q).await.len(), n, "{q}");
    }
});

both_dbs!(usergroups_outside_ldap_auth, |app| {
    // db_auth: no LDAP groups (no directory to name them), other types are listed together.
    let r = api(&app, Method::POST, GROUPS, &admin(), ldap("devs", "cn=devs,dc=example,dc=com")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("ldap_auth"), "{}", r.text());
    group(&app, json!({"group_name": "web", "group_type": 2})).await;
    group(&app, json!({"group_name": "api", "group_type": 3})).await;
    let r = app.get_with(GROUPS, &[("authorization", &admin())]).await;
    assert_eq!(names(&r.json()), ["api", "web"]);
    // A member by an LDAP DN that is no group: 404 outside ldap_auth (400 when it is no DN);
    // by a missing name: 404.
    let members = "/api/v2.0/projects/library/members";
    let r = api(
        &app,
        Method::POST,
        members,
        &admin(),
        json!({"role_id": 2, "member_group": {"ldap_group_dn": "cn=x,dc=y"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = api(
        &app,
        Method::POST,
        members,
        &admin(),
        json!({"role_id": 2, "member_group": {"ldap_group_dn": "nonsense"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = api(
        &app,
        Method::POST,
        members,
        &admin(),
        json!({"role_id": 2, "member_group": {"group_name": "nobody", "group_type": 3}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    // An existing group by name (of any type when none is given).
    let r = api(
        &app,
        Method::POST,
        members,
        &admin(),
        json!({"role_id": 3, "member_group": {"group_name": "web"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = api(
        &app,
        Method::POST,
        members,
        &admin(),
        json!({"role_id": 3, "member_group": {"group_name": "web", "group_type": 3}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert_eq!(
        api(
            &app,
            Method::POST,
            members,
            &admin(),
            json!({"role_id": 3, "member_group": {"group_name": "x", "group_type": 7}})
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
});

/// The session of a user logged in through the portal, with `groups` as a directory login
/// would leave them.
async fn session_with_groups(app: &TestApp, user: &str, groups: &[i64]) -> String {
    let (cookie, _) = app.login(user, PW).await;
    let uid = accounts::get_by_name(&app.state.db, user).await.unwrap().unwrap().id;
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM sessions").fetch_all(&app.state.db.pool).await.unwrap();
    let mut bound = 0;
    for id in ids {
        let id: tower_sessions::session::Id = id.parse().unwrap();
        let Some(mut record) = app.state.sessions.load(&id).await.unwrap() else { continue };
        if record.data.get(server::sessions::USER_ID) == Some(&json!(uid)) {
            record.data.insert(server::sessions::GROUPS.into(), json!(groups));
            app.state.sessions.save(&record).await.unwrap();
            bound += 1;
        }
    }
    assert_eq!(bound, 1, "one session of {user}");
    cookie
}

async fn permissions(app: &TestApp, cookie: &str, pid: i64) -> Vec<String> {
    let r = app
        .get_with(&format!("/api/v2.0/users/current/permissions?scope=/project/{pid}"), &[("cookie", cookie)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}:{}", p["resource"].as_str().unwrap(), p["action"].as_str().unwrap()))
        .collect()
}

async fn visible(app: &TestApp, auth: (&str, &str)) -> Vec<String> {
    let r = app.get_with("/api/v2.0/projects?page_size=100", &[auth]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json().as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect()
}

both_dbs!(group_members_give_their_users_roles, |app| {
    ldap_mode(&app).await;
    let db = &app.state.db;
    for name in ["alice", "bob", "devon"] {
        create_user(db, name, PW, false).await;
    }
    let r = api(&app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": "p1"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let p1 = projects::get_by_name(db, "p1").await.unwrap().unwrap();
    let access = ProjectAccess { id: p1.id, public: p1.public };
    let devs = group(&app, ldap("devs", "cn=devs,ou=groups,dc=example,dc=com")).await;
    let members = "/api/v2.0/projects/p1/members";
    let adm = admin();
    let add = |body: Value| api(&app, Method::POST, members, &adm, body);

    // By id, by DN (the same group: 409), by a new DN (the group is created, named by the DN).
    let r = add(json!({"role_id": 2, "member_group": {"id": devs}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let devs_member: i64 = r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap();
    let r = add(json!({"role_id": 3, "member_group": {"id": devs}})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.text().contains("group is already a member"), "{}", r.text());
    let r =
        add(json!({"role_id": 3, "member_group": {"ldap_group_dn": "CN=devs,ou=groups,dc=example,dc=com"}}))
            .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = add(
        json!({"role_id": 3, "member_group": {"ldap_group_dn": "cn=QA Team,ou=groups,dc=example,dc=com"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let qa = server::identity::groups::find(
        db,
        server::identity::groups::GroupType::Ldap,
        "cn=qa team,ou=groups,dc=example,dc=com",
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(qa.group_name, "QA Team");
    for (body, status) in [
        (json!({"role_id": 3, "member_group": {"id": 999999}}), StatusCode::NOT_FOUND),
        (json!({"role_id": 3, "member_group": {}}), StatusCode::BAD_REQUEST),
        (json!({"role_id": 3, "member_group": {"ldap_group_dn": "nonsense"}}), StatusCode::BAD_REQUEST),
        (json!({"role_id": 9, "member_group": {"id": devs}}), StatusCode::BAD_REQUEST),
        (json!({"role_id": 3}), StatusCode::BAD_REQUEST),
        // OIDC groups are onboarded by name in oidc_auth only.
        (
            json!({"role_id": 3, "member_group": {"group_name": "ops", "group_type": 3}}),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let r = add(body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
    }
    assert_eq!(
        add(json!({"role_id": 3, "member_user": {"username": "devon"}})).await.status,
        StatusCode::CREATED
    );

    // The list shows users and groups; `entityname` matches both.
    let r = app.get_with(members, &[("authorization", &admin())]).await;
    assert_eq!(r.header("x-total-count"), Some("4"));
    let list: Vec<(String, String, i64, i64)> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["entity_name"].as_str().unwrap().into(),
                m["entity_type"].as_str().unwrap().into(),
                m["entity_id"].as_i64().unwrap(),
                m["role_id"].as_i64().unwrap(),
            )
        })
        .collect();
    let admin_id = 1;
    assert_eq!(
        list,
        [
            ("admin".to_string(), "u".to_string(), admin_id, 1),
            ("devon".into(), "u".into(), accounts::get_by_name(db, "devon").await.unwrap().unwrap().id, 3),
            ("devs".into(), "g".into(), devs, 2),
            ("QA Team".into(), "g".into(), qa.id, 3),
        ]
    );
    let r = app.get_with(&format!("{members}?entityname=DEV"), &[("authorization", &admin())]).await;
    assert_eq!(names_of(&r.json()), ["devon", "devs"]);
    assert_eq!(r.header("x-total-count"), Some("2"));
    let one = app.get_with(&format!("{members}/{devs_member}"), &[("authorization", &admin())]).await.json();
    assert_eq!(
        (one["entity_type"].as_str(), one["entity_name"].as_str(), one["role_name"].as_str()),
        (Some("g"), Some("devs"), Some("developer"))
    );

    // The summary counts group members.
    let s = app.get_with("/api/v2.0/projects/p1/summary", &[("authorization", &admin())]).await.json();
    assert_eq!(
        (s["project_admin_count"].as_i64(), s["developer_count"].as_i64(), s["guest_count"].as_i64()),
        (Some(1), Some(1), Some(2))
    );

    // RBAC: alice, in devs, may push; bob, in no group, may not even see the project.
    let mut alice = accounts::get_by_name(db, "alice").await.unwrap().unwrap();
    let bob = accounts::get_by_name(db, "bob").await.unwrap().unwrap();
    assert_eq!(rbac::member_role(db, p1.id, &alice).await.unwrap(), None);
    alice.groups = vec![devs];
    assert_eq!(rbac::member_role(db, p1.id, &alice).await.unwrap(), Some(Role::Developer));
    let as_alice = Principal::User(alice.clone());
    assert!(as_alice.can(db, access, Resource::Repository, Act::Push).await.unwrap());
    assert!(!as_alice.can(db, access, Resource::Repository, Act::Delete).await.unwrap());
    assert_eq!(rbac::registry_actions(db, Some(&as_alice), access).await.unwrap(), ["pull", "push"]);
    assert!(rbac::registry_actions(db, Some(&Principal::User(bob.clone())), access)
        .await
        .unwrap()
        .is_empty());
    let q = projects::ListQuery { page: 1, page_size: 100, ..Default::default() };
    let seen = |v: Vec<projects::Project>| v.into_iter().map(|p| p.name).collect::<Vec<_>>();
    assert!(
        seen(projects::list_visible(db, Some(&as_alice), &q).await.unwrap().0).contains(&"p1".to_string())
    );
    assert!(!seen(projects::list_visible(db, Some(&Principal::User(bob)), &q).await.unwrap().0)
        .contains(&"p1".to_string()));

    // The most privileged role wins: her own guest membership does not lower the group's
    // developer role, and a group's maintainer role raises it.
    assert_eq!(
        add(json!({"role_id": 3, "member_user": {"username": "alice"}})).await.status,
        StatusCode::CREATED
    );
    assert_eq!(rbac::member_role(db, p1.id, &alice).await.unwrap(), Some(Role::Developer));
    alice.groups = vec![devs, qa.id];
    let r = api(
        &app,
        Method::PUT,
        &format!("{members}/{}", member_id(&app, "QA Team").await),
        &admin(),
        json!({"role_id": 4}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(rbac::member_role(db, p1.id, &alice).await.unwrap(), Some(Role::Maintainer));
    assert_eq!(projects::roles_of(db, &alice, &[p1.id]).await.unwrap()[&p1.id], Role::Maintainer);
    alice.groups = vec![];
    assert_eq!(rbac::member_role(db, p1.id, &alice).await.unwrap(), Some(Role::Guest));

    // Through REST, with the groups in her portal session: project list, role and push.
    let cookie = session_with_groups(&app, "alice", &[devs]).await;
    let auth = ("cookie", cookie.as_str());
    let p = app.get_with("/api/v2.0/projects/p1", &[auth]).await.json();
    assert_eq!(p["current_user_role_id"], 2);
    assert!(permissions(&app, &cookie, p1.id).await.contains(&"repository:push".to_string()));
    let cookie_bob = session_with_groups(&app, "bob", &[devs]).await;
    assert!(visible(&app, ("cookie", &cookie_bob)).await.contains(&"p1".to_string()));
    assert!(!visible(&app, ("authorization", &basic("bob", PW))).await.contains(&"p1".to_string()));

    // Updating and removing a group member.
    let r =
        api(&app, Method::PUT, &format!("{members}/{devs_member}"), &admin(), json!({"role_id": 3})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!permissions(&app, &cookie, p1.id).await.contains(&"repository:push".to_string()));
    assert_eq!(
        api(&app, Method::PUT, &format!("{members}/{devs_member}"), &admin(), json!({"role_id": 2}))
            .await
            .status,
        StatusCode::OK
    );
    assert!(permissions(&app, &cookie, p1.id).await.contains(&"repository:push".to_string()));
    let qa_member = member_id(&app, "QA Team").await;
    assert_eq!(
        api(&app, Method::DELETE, &format!("{members}/{qa_member}"), &admin(), Value::Null).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get_with(&format!("{members}/{qa_member}"), &[("authorization", &admin())]).await.status,
        StatusCode::NOT_FOUND
    );

    // Deleting the group removes its memberships, and with them the access it gave.
    assert_eq!(
        api(&app, Method::DELETE, &format!("{GROUPS}/{devs}"), &admin(), Value::Null).await.status,
        StatusCode::OK
    );
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM project_members WHERE group_id = $1")
        .bind(devs)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    alice.groups = vec![devs];
    assert_eq!(rbac::member_role(db, p1.id, &alice).await.unwrap(), Some(Role::Guest));
    let perms = permissions(&app, &cookie, p1.id).await;
    assert!(
        perms.contains(&"repository:pull".to_string()) && !perms.contains(&"repository:push".to_string()),
        "{perms:?}"
    );
    assert!(!visible(&app, ("cookie", &cookie_bob)).await.contains(&"p1".to_string()));
    let s = app.get_with("/api/v2.0/projects/p1/summary", &[("authorization", &admin())]).await.json();
    assert_eq!((s["developer_count"].as_i64(), s["guest_count"].as_i64()), (Some(0), Some(2)));

    for (q, n) in [("operation=create,resource_type=member", 4), ("operation=delete,resource_type=member", 1)]
    {
        assert_eq!(audit(&app, q).await.len(), n, "{q}");
    }
});

fn names_of(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|m| m["entity_name"].as_str().unwrap().to_string()).collect()
}

async fn member_id(app: &TestApp, name: &str) -> i64 {
    let r = app.get_with("/api/v2.0/projects/p1/members?page_size=100", &[("authorization", &admin())]).await;
    r.json().as_array().unwrap().iter().find(|m| m["entity_name"] == name).unwrap()["id"].as_i64().unwrap()
}

both_dbs!(oidc_groups_are_onboarded_by_name_in_oidc_auth, |app| {
    configure(&app, json!({"auth_mode": "oidc_auth"})).await;
    let members = "/api/v2.0/projects/library/members";
    let r = api(
        &app,
        Method::POST,
        members,
        &admin(),
        json!({"role_id": 2, "member_group": {"group_name": "platform", "group_type": 3}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let g =
        server::identity::groups::find(&app.state.db, server::identity::groups::GroupType::Oidc, "platform")
            .await
            .unwrap()
            .unwrap();
    let r = api(
        &app,
        Method::POST,
        members,
        &admin(),
        json!({"role_id": 2, "member_group": {"group_name": "platform", "group_type": 3}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // HTTP groups are never onboarded by a member request.
    let r = api(
        &app,
        Method::POST,
        members,
        &admin(),
        json!({"role_id": 2, "member_group": {"group_name": "web", "group_type": 2}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let list = app.get_with(members, &[("authorization", &admin())]).await.json();
    assert!(list.as_array().unwrap().iter().any(|m| m["entity_type"] == "g" && m["entity_id"] == g.id));
});

both_dbs!(local_accounts_only_in_db_auth, |app| {
    let info = app.get("/api/v2.0/systeminfo").await.json();
    assert_eq!(
        (info["auth_mode"].as_str(), info["oidc_provider_name"].as_str()),
        (Some("db_auth"), Some(""))
    );
    configure(&app, json!({"auth_mode": "oidc_auth", "oidc_name": "Corp SSO", "self_registration": true}))
        .await;
    let info = app.get("/api/v2.0/systeminfo").await.json();
    assert_eq!(
        (info["auth_mode"].as_str(), info["oidc_provider_name"].as_str()),
        (Some("oidc_auth"), Some("Corp SSO"))
    );

    // No local users: neither created by the admin nor self-registered.
    let body = json!({"username": "carl", "password": PW, "email": "carl@example.com"});
    for auth in [admin(), String::new()] {
        let r = api(&app, Method::POST, "/api/v2.0/users", &auth, body.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        assert!(r.text().contains("not allowed under auth mode: oidc_auth"), "{}", r.text());
    }
    assert!(accounts::get_by_name(&app.state.db, "carl").await.unwrap().is_none());

    // Provider and directory users have no password here to change; the admin's still changes.
    let carol =
        accounts::onboard(&app.state.db, "oidc", "carol", "carol@example.com", "Carol").await.unwrap();
    let dave = accounts::onboard(&app.state.db, "ldap", "dave", "dave@example.com", "Dave").await.unwrap();
    for (u, keeper) in [(&carol, "OIDC provider"), (&dave, "LDAP directory")] {
        let r = api(
            &app,
            Method::PUT,
            &format!("/api/v2.0/users/{}/password", u.id),
            &admin(),
            json!({"new_password": "An0ther!pass"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        assert!(r.text().contains(keeper), "{}", r.text());
    }
    let r = api(
        &app,
        Method::PUT,
        "/api/v2.0/users/1/password",
        &admin(),
        json!({"old_password": crate::common::ADMIN_PASSWORD, "new_password": "An0ther!pass"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // Listing users is unchanged.
    let r = app
        .get_with("/api/v2.0/users?page_size=100", &[("authorization", &basic("admin", "An0ther!pass"))])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-total-count"), Some("3"));
});

both_dbs!(systeminfo_names_the_provider_only_in_oidc_auth, |app| {
    configure(
        &app,
        json!({"auth_mode": "ldap_auth", "ldap_url": "ldap://127.0.0.1:1", "oidc_name": "Corp SSO"}),
    )
    .await;
    let info = app.get("/api/v2.0/systeminfo").await.json();
    assert_eq!(
        (info["auth_mode"].as_str(), info["oidc_provider_name"].as_str()),
        (Some("ldap_auth"), Some(""))
    );
    let r = api(&app, Method::POST, "/api/v2.0/users", &admin(), json!({"username": "carl", "password": PW}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("ldap_auth"), "{}", r.text());
});

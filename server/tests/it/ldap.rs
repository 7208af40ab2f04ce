//! LDAP against the real OpenLDAP `slapd` that `scripts/services.sh start slapd` runs
//! (seeded from scripts/ldap/seed.ldif; `TEST_BERTH_LDAP_*`, which the test command sets: a
//! missing variable fails these tests loudly instead of skipping them). Every test name carries
//! `slapd`, which the fast loop skips. SQLite and PostgreSQL.
//!
//! Covered: search-then-bind through the portal form, REST Basic auth and the token service;
//! onboarding as an `ldap` user; wrong and empty passwords; filter injection; LDAPS and
//! StartTLS with and without the CA and with verification off; a directory that is down (the
//! local admin still logs in); the lockout; LDAP groups as project members (memberOf and
//! memberUid), losing push at the first token after `auth.directory_cache` once removed from
//! the group; the admin group; the `/ldap/*` endpoints.

use axum::http::{Method, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::common::oci::admin;
use crate::common::{api, basic, Resp, TestApp, ADMIN_PASSWORD};

struct Dir {
    url: String,
    ldaps: String,
    ca: String,
    search_dn: String,
    search_pw: String,
    admin_dn: String,
    admin_pw: String,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the README's test command (scripts/test), which starts slapd, or \
             `scripts/services.sh start slapd DIR` and source its output"
        )
    })
}

fn dir() -> Dir {
    let ca_path = env("TEST_BERTH_LDAP_CA");
    Dir {
        url: env("TEST_BERTH_LDAP_URL"),
        ldaps: env("TEST_BERTH_LDAPS_URL"),
        ca: std::fs::read_to_string(&ca_path).unwrap_or_else(|e| panic!("read {ca_path}: {e}")),
        search_dn: env("TEST_BERTH_LDAP_SEARCH_DN"),
        search_pw: env("TEST_BERTH_LDAP_SEARCH_PASSWORD"),
        admin_dn: env("TEST_BERTH_LDAP_ADMIN_DN"),
        admin_pw: env("TEST_BERTH_LDAP_ADMIN_PASSWORD"),
    }
}

/// The seed's passwords: `<name>-Pass-1`.
fn pw(name: &str) -> String {
    format!("{name}-Pass-1")
}

const PEOPLE: &str = "ou=people,dc=berth,dc=test";
const GROUPS: &str = "ou=groups,dc=berth,dc=test";
const ADMINS: &str = "cn=admins,ou=groups,dc=berth,dc=test";
const OHARA: &str = "o'hara(ext)*";

/// The settings of every test, with `extra` keys on top.
fn settings(extra: Value) -> Value {
    let d = dir();
    let mut body = json!({
        "auth_mode": "ldap_auth",
        "ldap_url": d.url,
        "ldap_search_dn": d.search_dn,
        "ldap_search_password": d.search_pw,
        "ldap_base_dn": PEOPLE,
        "ldap_filter": "(objectClass=inetOrgPerson)",
        "ldap_uid": "uid",
        "ldap_scope": 2,
        "ldap_timeout": 3,
        "ldap_group_base_dn": GROUPS,
        "ldap_group_admin_dn": ADMINS,
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn configure(app: &TestApp, extra: Value) {
    let r = api(app, Method::PUT, "/api/v2.0/configurations", &admin(), settings(extra)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

async fn current(app: &TestApp, auth: &str) -> Resp {
    app.get_with("/api/v2.0/users/current", &[("authorization", auth)]).await
}

async fn form_login(app: &TestApp, user: &str, pass: &str) -> Resp {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let body = format!("principal={}&password={}", enc(user), enc(pass));
    app.call(Method::POST, "/c/login", &[("content-type", "application/x-www-form-urlencoded")], body).await
}

/// `GET /service/token` with Basic credentials and `scope`.
async fn token(app: &TestApp, user: &str, pass: &str, scope: &str) -> Resp {
    let q = format!(
        "/service/token?service=harbor-registry&scope={}",
        url::form_urlencoded::byte_serialize(scope.as_bytes()).collect::<String>()
    );
    app.get_with(&q, &[("authorization", &basic(user, pass))]).await
}

/// The actions a token grants on `name`.
fn actions(r: &Resp, name: &str) -> Vec<String> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let t = r.json()["token"].as_str().unwrap().to_string();
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(t.split('.').nth(1).unwrap()).unwrap()).unwrap();
    claims["access"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"] == name)
        .flat_map(|a| a["actions"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()))
        .collect()
}

async fn source_of(app: &TestApp, name: &str) -> Option<String> {
    sqlx::query_scalar("SELECT source FROM users WHERE username = $1")
        .bind(name)
        .fetch_optional(&app.state.db.pool)
        .await
        .unwrap()
}

/// Runs `ldapmodify` (or `ldapadd`/`ldapdelete`) as the directory's rootdn with `ldif` on stdin.
fn ldap_tool(tool: &str, args: &[&str], ldif: &str) {
    use std::io::Write;
    let d = dir();
    let mut child = std::process::Command::new(tool)
        .args(["-x", "-H", &d.url, "-D", &d.admin_dn, "-w", &d.admin_pw])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    child.stdin.take().unwrap().write_all(ldif.as_bytes()).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{tool} failed with {status}");
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

both_dbs!(slapd_login_on_every_surface, |app| {
    configure(&app, json!({})).await;
    assert_eq!(source_of(&app, "alice").await, None);

    // The portal form: the user is created on first login, from the directory.
    let r = form_login(&app, "alice", &pw("alice")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(source_of(&app, "alice").await.as_deref(), Some("ldap"));
    let cookie = r.session_cookie().unwrap();
    let me = app.get_with("/api/v2.0/users/current", &[("cookie", &cookie)]).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    assert_eq!(me.json()["username"], "alice");
    assert_eq!(me.json()["email"], "alice@berth.test");
    assert_eq!(me.json()["realname"], "Alice Archer");

    // REST Basic auth and the token service; a user first seen there is created too.
    assert_eq!(current(&app, &basic("alice", &pw("alice"))).await.status, StatusCode::OK);
    let t = token(&app, "bob", &pw("bob"), "repository:library/x:pull").await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text());
    assert_eq!(source_of(&app, "bob").await.as_deref(), Some("ldap"));
    // The name as the directory spells it.
    assert_eq!(current(&app, &basic("CAROL", &pw("carol"))).await.json()["username"], "carol");

    // Wrong and empty passwords.
    assert_eq!(form_login(&app, "alice", "nope").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(current(&app, &basic("alice", "nope")).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(current(&app, &basic("alice", "")).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(token(&app, "alice", "", "").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(token(&app, "alice", "nope", "").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(current(&app, &basic("nobody", "x")).await.status, StatusCode::UNAUTHORIZED);

    // Filter injection: every value is escaped, so these match no one (with any password of
    // a real user), and a uid made of filter characters is found literally.
    for name in ["*", "*)(uid=*", "alice)(|(uid=*", "alice*", "*lice", "o'hara(ext)", "o'hara*"] {
        for pass in [pw("alice"), pw("ohara"), "x".to_string()] {
            let r = current(&app, &basic(name, &pass)).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name:?}: {}", r.text());
        }
    }
    let r = current(&app, &basic(OHARA, &pw("ohara"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["username"], OHARA);
    assert_eq!(form_login(&app, OHARA, &pw("ohara")).await.status, StatusCode::OK);

    // The local admin still logs in, and a directory user is no local user.
    assert_eq!(current(&app, &admin()).await.status, StatusCode::OK);
    assert_eq!(form_login(&app, "admin", ADMIN_PASSWORD).await.status, StatusCode::OK);
});

both_dbs!(slapd_tls, toml = "[auth]\ndirectory_cache = \"0s\"", |app| {
    let d = dir();
    let alice = basic("alice", &pw("alice"));
    // LDAPS, verified against the CA.
    configure(&app, json!({"ldap_url": d.ldaps, "ldap_ca_cert": d.ca, "ldap_verify_cert": true})).await;
    assert_eq!(current(&app, &alice).await.status, StatusCode::OK);
    // Verification on without the CA: a clear 503.
    configure(&app, json!({"ldap_url": d.ldaps, "ldap_ca_cert": "", "ldap_verify_cert": true})).await;
    let r = current(&app, &alice).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    let msg = r.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("certificate") && msg.contains("ldap_ca_cert"), "{msg}");
    let t = token(&app, "alice", &pw("alice"), "").await;
    assert_eq!(t.status, StatusCode::SERVICE_UNAVAILABLE, "{}", t.text());
    // The explicit opt-out.
    configure(&app, json!({"ldap_url": d.ldaps, "ldap_ca_cert": "", "ldap_verify_cert": false})).await;
    assert_eq!(current(&app, &alice).await.status, StatusCode::OK);
    // StartTLS on ldap://, with and without the CA.
    configure(
        &app,
        json!({"ldap_url": d.url, "ldap_starttls": true, "ldap_ca_cert": d.ca, "ldap_verify_cert": true}),
    )
    .await;
    assert_eq!(current(&app, &alice).await.status, StatusCode::OK);
    configure(&app, json!({"ldap_url": d.url, "ldap_starttls": true, "ldap_ca_cert": ""})).await;
    let r = current(&app, &alice).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert!(r.text().contains("certificate"), "{}", r.text());
    // A wrong password over TLS is still a 401.
    configure(&app, json!({"ldap_url": d.ldaps, "ldap_ca_cert": d.ca, "ldap_starttls": false})).await;
    assert_eq!(current(&app, &basic("alice", "nope")).await.status, StatusCode::UNAUTHORIZED);
});

both_dbs!(slapd_directory_down, toml = "[auth]\ndirectory_cache = \"0s\"", |app| {
    configure(&app, json!({"ldap_url": format!("ldap://127.0.0.1:{}", closed_port())})).await;
    let r = current(&app, &basic("alice", &pw("alice"))).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    let msg = r.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(msg.starts_with("LDAP: cannot connect to ldap://127.0.0.1:"), "{msg}");
    let r = form_login(&app, "alice", &pw("alice")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(token(&app, "alice", &pw("alice"), "").await.status, StatusCode::SERVICE_UNAVAILABLE);
    // The local admin is never blocked by the directory.
    assert_eq!(current(&app, &admin()).await.status, StatusCode::OK);
    assert_eq!(form_login(&app, "admin", ADMIN_PASSWORD).await.status, StatusCode::OK);
    // An unreachable directory counts no failed login: alice is not locked out by it.
    for _ in 0..6 {
        current(&app, &basic("alice", &pw("alice"))).await;
    }
    configure(&app, json!({})).await;
    assert_eq!(current(&app, &basic("alice", &pw("alice"))).await.status, StatusCode::OK);
});

both_dbs!(slapd_lockout, toml = "[auth]\nmax_failed_logins = 3\ndirectory_cache = \"0s\"", |app| {
    configure(&app, json!({})).await;
    for _ in 0..3 {
        assert_eq!(current(&app, &basic("bob", "wrong")).await.status, StatusCode::UNAUTHORIZED);
    }
    // Locked: the right password no longer gets in, on any surface.
    let r = current(&app, &basic("bob", &pw("bob"))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert!(r.text().contains("locked"), "{}", r.text());
    let r = token(&app, "bob", &pw("bob"), "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert!(r.text().contains("locked"), "{}", r.text());
    assert_eq!(form_login(&app, "bob", &pw("bob")).await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(source_of(&app, "bob").await, None, "never onboarded while locked");
    // Others are not affected.
    assert_eq!(current(&app, &basic("alice", &pw("alice"))).await.status, StatusCode::OK);
});

both_dbs!(slapd_groups_grant_roles, toml = "[auth]\ndirectory_cache = \"1s\"", |app| {
    configure(&app, json!({})).await;
    // A group of this test's own (the other database's run shares the directory).
    let cn = format!("team-{}", uuid::Uuid::new_v4().simple());
    let gdn = format!("cn={cn},{GROUPS}");
    ldap_tool(
        "ldapadd",
        &[],
        &format!(
            "dn: {gdn}\nobjectClass: groupOfNames\ncn: {cn}\nmember: uid=alice,{PEOPLE}\nmember: uid=eve,{PEOPLE}\n"
        ),
    );
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/projects",
        &admin(),
        json!({"project_name": "team", "metadata": {"public": "false"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let project_id = app.get_with("/api/v2.0/projects/team", &[("authorization", &admin())]).await.json()
        ["project_id"]
        .as_i64()
        .unwrap();
    use server::identity::groups::{populate, GroupType, NewGroup};
    let ids = populate(
        &app.state.db,
        &[
            NewGroup { kind: GroupType::Ldap, name: cn.clone(), ldap_dn: gdn.clone() },
            NewGroup {
                kind: GroupType::Ldap,
                name: "testers".into(),
                ldap_dn: format!("cn=testers,{GROUPS}"),
            },
        ],
    )
    .await
    .unwrap();
    for (group, role) in [(ids[0], 2i64), (ids[1], 3)] {
        sqlx::query(
            "INSERT INTO project_members (project_id, role, created_at, updated_at, entity_type, group_id) \
             VALUES ($1, $2, 0, 0, 'g', $3)",
        )
        .bind(project_id)
        .bind(role)
        .bind(group)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    }
    let scope = "repository:team/app:pull,push";
    // memberOf: developer through the group.
    assert_eq!(actions(&token(&app, "alice", &pw("alice"), scope).await, "team/app"), ["pull", "push"]);
    assert_eq!(actions(&token(&app, "eve", &pw("eve"), scope).await, "team/app"), ["pull", "push"]);
    // memberUid (a posixGroup, no memberOf): guest.
    assert_eq!(actions(&token(&app, "dave", &pw("dave"), scope).await, "team/app"), ["pull"]);
    assert!(actions(&token(&app, "bob", &pw("bob"), scope).await, "team/app").is_empty());
    // The portal session carries the groups too.
    let (cookie, _) = app.login("alice", &pw("alice")).await;
    let r = app.get_with("/api/v2.0/projects/team", &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // Removed from the group: push is gone at the first token after `directory_cache`.
    ldap_tool(
        "ldapmodify",
        &[],
        &format!("dn: {gdn}\nchangetype: modify\ndelete: member\nmember: uid=alice,{PEOPLE}\n"),
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(actions(&token(&app, "alice", &pw("alice"), scope).await, "team/app").is_empty());
    assert_eq!(actions(&token(&app, "eve", &pw("eve"), scope).await, "team/app"), ["pull", "push"]);
    ldap_tool("ldapdelete", &[&gdn], "");

    // The admin group grants system admin while the user is in it.
    assert_eq!(
        app.get_with("/api/v2.0/users", &[("authorization", &basic("carol", &pw("carol")))]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get_with("/api/v2.0/users", &[("authorization", &basic("alice", &pw("alice")))]).await.status,
        StatusCode::FORBIDDEN
    );
    let t = token(&app, "carol", &pw("carol"), scope).await;
    assert_eq!(actions(&t, "team/app"), ["pull", "push"]);
});

both_dbs!(slapd_ldap_endpoints, |app| {
    let d = dir();
    let admin = admin();
    // Ping works before LDAP is the mode, with the whole configuration in the body.
    let conf = json!({"ldap_url": d.url, "ldap_search_dn": d.search_dn, "ldap_search_password": d.search_pw,
        "ldap_base_dn": PEOPLE, "ldap_uid": "uid"});
    let r = api(&app, Method::POST, "/api/v2.0/ldap/ping", &admin, conf.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), json!({"success": true, "message": "success"}));
    let r = api(&app, Method::GET, "/api/v2.0/ldap/users/search?username=ali", &admin, Value::Null).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.text());

    configure(&app, json!({})).await;
    // The stored settings, and overrides (the stored password stays behind `*****`).
    let ping = |body: Value| {
        let admin = admin.clone();
        let app = &app;
        async move { api(app, Method::POST, "/api/v2.0/ldap/ping", &admin, body).await }
    };
    assert_eq!(ping(json!({})).await.json()["success"], true);
    assert_eq!(
        ping(json!({"ldap_search_password": "*****", "ldap_url": d.ldaps, "ldap_ca_cert": d.ca}))
            .await
            .json()["success"],
        true
    );
    let r = ping(json!({"ldap_search_password": "wrong"})).await.json();
    assert_eq!(r["success"], false);
    assert!(r["message"].as_str().unwrap().contains("refused the search account"), "{r}");
    assert!(!r["message"].as_str().unwrap().contains("wrong"), "{r}");
    let r = ping(json!({"ldap_url": format!("ldap://127.0.0.1:{}", closed_port())})).await.json();
    assert_eq!(r["success"], false);
    assert!(r["message"].as_str().unwrap().contains("cannot connect"), "{r}");
    let r = ping(json!({"ldap_base_dn": "ou=nowhere,dc=berth,dc=test"})).await.json();
    assert_eq!(r["success"], false, "{r}");
    assert_eq!(ping(json!({"ldap_scope": 7})).await.status, StatusCode::BAD_REQUEST);
    // System admins only.
    let r = api(&app, Method::POST, "/api/v2.0/ldap/ping", &basic("alice", &pw("alice")), json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());

    // User search: a substring, escaped (`*` finds the uid holding a star, not everyone).
    let names = |r: Resp| -> Vec<String> {
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json().as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_string()).collect()
    };
    let r = api(&app, Method::GET, "/api/v2.0/ldap/users/search?username=ali", &admin, Value::Null).await;
    assert_eq!(
        r.json(),
        json!([{"username": "alice", "realname": "Alice Archer", "email": "alice@berth.test"}])
    );
    let star = api(&app, Method::GET, "/api/v2.0/ldap/users/search?username=*", &admin, Value::Null).await;
    assert_eq!(names(star), [OHARA]);
    let all = api(&app, Method::GET, "/api/v2.0/ldap/users/search", &admin, Value::Null).await;
    assert_eq!(names(all).len(), 6);
    let r = api(
        &app,
        Method::GET,
        "/api/v2.0/ldap/users/search?username=ali",
        &basic("alice", &pw("alice")),
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Import: the found ones are onboarded; the others are listed in a 404.
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/ldap/users/import",
        &admin,
        json!({"ldap_uid_list": ["dave", "nobody", "", "*"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert_eq!(
        r.json(),
        json!([{"uid": "nobody", "error": "unknown_user"}, {"uid": "", "error": "empty_uid"}, {"uid": "*", "error": "unknown_user"}])
    );
    assert_eq!(source_of(&app, "dave").await.as_deref(), Some("ldap"));
    let r = api(
        &app,
        Method::POST,
        "/api/v2.0/ldap/users/import",
        &admin,
        json!({"ldap_uid_list": ["eve", "dave"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(source_of(&app, "eve").await.as_deref(), Some("ldap"));
    // A local user of the same name is not taken over.
    crate::common::create_user(&app.state.db, "carol", "Passw0rd!x", false).await;
    let r =
        api(&app, Method::POST, "/api/v2.0/ldap/users/import", &admin, json!({"ldap_uid_list": ["carol"]}))
            .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert!(r.json()[0]["error"].as_str().unwrap().contains("exists already"), "{}", r.text());
    assert_eq!(source_of(&app, "carol").await.as_deref(), Some("db"));

    // Group search by name and by DN; the id of a stored group.
    let r =
        api(&app, Method::GET, "/api/v2.0/ldap/groups/search?groupname=develop", &admin, Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let dev_dn = format!("cn=developers,{GROUPS}");
    // alice's login above (the 403) stored her group.
    let dev_id: i64 = sqlx::query_scalar("SELECT id FROM user_groups WHERE group_name = 'developers'")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(
        r.json(),
        json!([{"id": dev_id, "group_name": "developers", "group_type": 1, "ldap_group_dn": dev_dn}])
    );
    let r = api(&app, Method::GET, "/api/v2.0/ldap/groups/search?groupname=min", &admin, Value::Null).await;
    assert_eq!(
        r.json(),
        json!([{"id": 0, "group_name": "admins", "group_type": 1, "ldap_group_dn": ADMINS}])
    );
    use server::identity::groups::{populate, GroupType, NewGroup};
    let ids = populate(
        &app.state.db,
        &[NewGroup { kind: GroupType::Ldap, name: "admins".into(), ldap_dn: ADMINS.into() }],
    )
    .await
    .unwrap();
    let q = format!(
        "/api/v2.0/ldap/groups/search?groupdn={}",
        url::form_urlencoded::byte_serialize(ADMINS.to_uppercase().as_bytes()).collect::<String>()
    );
    let r = api(&app, Method::GET, &q, &admin, Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()[0]["id"], ids[0]);
    assert_eq!(r.json()[0]["group_name"], "admins");
    let r = api(
        &app,
        Method::GET,
        "/api/v2.0/ldap/groups/search?groupdn=cn%3Dnope%2Cou%3Dgroups%2Cdc%3Dberth%2Cdc%3Dtest",
        &admin,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = api(&app, Method::GET, "/api/v2.0/ldap/groups/search?groupname=*", &admin, Value::Null).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "a star is a literal: {}", r.text());
    let r = api(&app, Method::GET, "/api/v2.0/ldap/groups/search", &admin, Value::Null).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api(&app, Method::GET, "/api/v2.0/ldap/groups/search?groupdn=garbage", &admin, Value::Null).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
});

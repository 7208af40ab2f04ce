//! The token service and `/v2` authorization: the grant narrowing, every token edge case the
//! registry must refuse, refresh tokens, RBAC per role on `/v2`, cross-repository mounts, a
//! deleted-and-recreated project, and the audit rows these leave. SQLite and PostgreSQL.

use crate::common::oci::{admin, push_image_as, sha256};
use crate::common::{api, basic, TestApp, PW};
use axum::http::{Method, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

/// `POST /service/token` with a form `body` (the OAuth2 grants).
async fn token_post(app: &TestApp, body: &str) -> crate::common::Resp {
    app.call(
        Method::POST,
        "/service/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        body.to_string(),
    )
    .await
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

async fn create_user(app: &TestApp, name: &str) -> i64 {
    let r = api(
        app,
        Method::POST,
        "/api/v2.0/users",
        &admin(),
        json!({"username": name, "password": PW, "email": format!("{name}@x.io")}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap()
}

async fn create_project(app: &TestApp, auth: &str, name: &str, public: bool) -> crate::common::Resp {
    api(
        app,
        Method::POST,
        "/api/v2.0/projects",
        auth,
        json!({"project_name": name, "metadata": {"public": public.to_string()}}),
    )
    .await
}

async fn add_member(app: &TestApp, project: &str, user: &str, role: i64) {
    let r = app
        .call(
            Method::POST,
            &format!("/api/v2.0/projects/{project}/members"),
            &[
                ("authorization", &admin()),
                ("content-type", "application/json"),
                ("x-is-resource-name", "true"),
            ],
            json!({"role_id": role, "member_user": {"username": user}}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

async fn token(app: &TestApp, auth: Option<&str>, scopes: &[&str]) -> (StatusCode, Value) {
    let mut q = String::from("/service/token?service=harbor-registry");
    for s in scopes {
        q.push_str(&format!(
            "&scope={}",
            url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
        ));
    }
    let r = match auth {
        Some(a) => app.get_with(&q, &[("authorization", a)]).await,
        None => app.get(&q).await,
    };
    let body = if r.body.is_empty() { Value::Null } else { r.json() };
    (r.status, body)
}

/// The `access` claim of a token (decoded without verification, for assertions).
fn access_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["access"].clone()
}

fn actions(token: &str, name: &str) -> Vec<String> {
    access_of(token)
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"] == name)
        .flat_map(|a| a["actions"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()))
        .collect()
}

/// Pushes a one-layer image with `auth`; returns the manifest PUT status (or the first failing
/// blob upload's).
async fn push(app: &TestApp, auth: &str, repo: &str, tag: &str, layer: &[u8]) -> StatusCode {
    push_image_as(app, auth, repo, tag, br#"{"architecture":"amd64","os":"linux"}"#, &[layer]).await
}

async fn pull(app: &TestApp, auth: Option<&str>, repo: &str, tag: &str) -> StatusCode {
    let path = format!("/v2/{repo}/manifests/{tag}");
    match auth {
        Some(a) => app.get_with(&path, &[("authorization", a)]).await.status,
        None => app.get(&path).await.status,
    }
}

async fn delete_tag(app: &TestApp, auth: &str, repo: &str, tag: &str) -> StatusCode {
    app.call(Method::DELETE, &format!("/v2/{repo}/manifests/{tag}"), &[("authorization", auth)], vec![])
        .await
        .status
}

async fn audit(app: &TestApp, q: &str) -> Vec<Value> {
    let path = format!(
        "/api/v2.0/audit-logs?page_size=100&q={}",
        url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
    );
    let r = app.get_with(&path, &[("authorization", &admin())]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json().as_array().unwrap().clone()
}

both_dbs!(token_endpoint_narrows_scopes, |app| {
    create_user(&app, "dev").await;
    create_user(&app, "stranger").await;
    assert_eq!(create_project(&app, &admin(), "priv", false).await.status, StatusCode::CREATED);
    add_member(&app, "priv", "dev", 2).await;

    // No credentials and no scope: 401. No credentials with a scope: an anonymous token.
    let (s, body) = token(&app, None, &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
    let (s, anon) =
        token(&app, None, &["repository:library/app:pull,push", "repository:priv/app:pull"]).await;
    assert_eq!(s, StatusCode::OK);
    let t = anon["token"].as_str().unwrap();
    assert_eq!(actions(t, "library/app"), ["pull"]);
    assert!(actions(t, "priv/app").is_empty());
    assert!(anon.get("refresh_token").is_none());

    // A developer: pull and push, never delete; nothing in projects they are not in.
    let (_, d) = token(
        &app,
        Some(&basic("dev", PW)),
        &["repository:priv/app:pull,push,delete,*", "registry:catalog:*"],
    )
    .await;
    let t = d["token"].as_str().unwrap();
    assert_eq!(actions(t, "priv/app"), ["pull", "push"]);
    assert!(
        access_of(t).as_array().unwrap().iter().all(|a| a["type"] != "registry"),
        "catalog is for admins"
    );
    assert_eq!(d["expires_in"], 1800);
    assert_eq!(d["access_token"], d["token"]);
    assert!(d["issued_at"].as_str().unwrap().ends_with('Z'));
    let (_, s) = token(&app, Some(&basic("stranger", PW)), &["repository:priv/app:pull"]).await;
    assert!(actions(s["token"].as_str().unwrap(), "priv/app").is_empty());

    // Admin gets everything, `*` included, and the catalog.
    let (_, a) = token(&app, Some(&admin()), &["repository:priv/app:*", "registry:catalog:*"]).await;
    let t = a["token"].as_str().unwrap();
    assert_eq!(actions(t, "priv/app"), ["*"]);
    assert_eq!(actions(t, "catalog"), ["*"]);

    // Wrong password: 401 (and audited); malformed scope: 400.
    let (s, _) = token(&app, Some(&basic("dev", "Wrong-pass1")), &["repository:priv/app:pull"]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = token(&app, Some(&admin()), &["garbage"]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // The header names our key; JWKS publishes it.
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(t.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    let jwks = app.get("/service/token/jwks").await.json();
    assert_eq!(jwks["keys"][0]["kid"], header["kid"]);
    assert_eq!(jwks["keys"][0]["kty"], "EC");

    let failed = audit(&app, "operation=login,username=dev").await;
    assert!(failed.iter().any(|r| r["success"] == false), "{failed:?}");
    assert!(failed.iter().any(|r| r["success"] == true), "{failed:?}");
});

// Refresh tokens are off by default, like Harbor: `docker login` would store one as an
// identity token in the auth file podman, skopeo and buildah share, and they refuse to run
// with one ("auth file contains an Identity token").
both_dbs!(no_refresh_tokens_by_default, |app| {
    create_user(&app, "dev").await;
    let r = app
        .get_with(
            "/service/token?account=dev&client_id=docker&offline_token=true&service=harbor-registry",
            &[("authorization", &basic("dev", PW))],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    assert!(j["token"].is_string());
    assert!(j.get("refresh_token").is_none(), "{j}");
    let body = format!("grant_type=password&service=harbor-registry&client_id=x&username=dev&password={PW}&access_type=offline&scope=repository%3Ap1%2Fapp%3Apull");
    let r = token_post(&app, &body).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json().get("refresh_token").is_none());
    // The refresh_token grant is refused with a message the client shows.
    let r = token_post(&app, "grant_type=refresh_token&service=harbor-registry&refresh_token=x").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.json()["errors"][0]["message"].as_str().unwrap().contains("refresh tokens are disabled"));
});

mod refresh_tokens_like_docker_login {
    use super::*;

    async fn app(db: crate::common::DbChoice) -> TestApp {
        TestApp::builder(db).toml("[token]\nrefresh_tokens = true").build().await
    }

    #[tokio::test]
    async fn sqlite() {
        run(app(crate::common::DbChoice::Sqlite).await).await
    }

    #[tokio::test]
    async fn postgres() {
        run(app(crate::common::DbChoice::Postgres).await).await
    }

    async fn run(app: TestApp) {
        refresh_tokens_when_enabled(app).await
    }
}

async fn refresh_tokens_when_enabled(app: TestApp) {
    let id = create_user(&app, "dev").await;
    create_project(&app, &admin(), "p1", false).await;
    add_member(&app, "p1", "dev", 2).await;
    let (_, login) = app
        .get_with(
            "/service/token?account=dev&client_id=docker&offline_token=true&service=harbor-registry",
            &[("authorization", &basic("dev", PW))],
        )
        .await
        .json()
        .as_object()
        .map(|o| (StatusCode::OK, Value::Object(o.clone())))
        .unwrap();
    let refresh = login["refresh_token"].as_str().expect("refresh token").to_string();

    let form = |rt: &str| {
        format!("grant_type=refresh_token&service=harbor-registry&client_id=docker&scope=repository%3Ap1%2Fapp%3Apull%2Cpush&refresh_token={rt}")
    };
    let r = token_post(&app, &form(&refresh)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let t = r.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(actions(&t, "p1/app"), ["pull", "push"]);
    assert_eq!(push(&app, &bearer(&t), "p1/app", "v1", b"layer-1").await, StatusCode::CREATED);

    // A refresh token is not an access token, and an access token is not a refresh token.
    assert_eq!(pull(&app, Some(&bearer(&refresh)), "p1/app", "v1").await, StatusCode::UNAUTHORIZED);
    let r = token_post(&app, &form(&t)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Password grant with access_type=offline also returns one.
    let body = format!("grant_type=password&service=harbor-registry&client_id=x&username=dev&password={PW}&access_type=offline&scope=repository%3Ap1%2Fapp%3Apull");
    let r = token_post(&app, &body).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["refresh_token"].is_string());
    let r = token_post(&app, "grant_type=magic").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // A password change ends the refresh token.
    let r = api(
        &app,
        Method::PUT,
        &format!("/api/v2.0/users/{id}/password"),
        &basic("dev", PW),
        json!({"old_password": PW, "new_password": "N3w-password"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = token_post(&app, &form(&refresh)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn claims(sub: &str, repo: &str, pid: i64, actions: &[&str]) -> Value {
    json!({"iss": "harbor-token-issuer", "sub": sub, "aud": "harbor-registry", "exp": now() + 600,
           "nbf": now() - 5, "iat": now() - 5, "jti": "t",
           "access": [{"type": "repository", "name": repo, "actions": actions, "pid": pid}]})
}

fn sign(app: &TestApp, c: &Value) -> String {
    let key = &app.state.secrets.token_key;
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.kid = Some(key.kid.clone());
    // Low-S, as the token service signs (`server::token::sign`).
    server::token::low_s(jsonwebtoken::encode(&h, c, &key.encoding).unwrap())
}

/// The same token with its signature's S replaced by n − S: still a valid ECDSA signature of
/// the same bytes, but not the one the token service made.
fn high_s(t: &str) -> String {
    let (signed, sig) = t.rsplit_once('.').unwrap();
    let sig = p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
    let (r, s) = sig.split_scalars();
    let flipped = p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
    assert!(flipped.normalize_s().is_some(), "n - S of a low S is high");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(flipped.to_bytes()))
}

both_dbs!(forged_and_stale_tokens_are_refused, |app| {
    assert_eq!(push(&app, &admin(), "library/app", "v1", b"layer").await, StatusCode::CREATED);
    let pid: i64 = app.get_with("/api/v2.0/projects/library", &[("authorization", &admin())]).await.json()
        ["project_id"]
        .as_i64()
        .unwrap();
    let good = claims("admin", "library/app", pid, &["pull", "push", "delete"]);
    let ok = sign(&app, &good);
    assert_eq!(pull(&app, Some(&bearer(&ok)), "library/app", "v1").await, StatusCode::OK);

    let key = app.state.secrets.token_key.clone();
    let refused = |name: &'static str, t: String| (name, t);
    let mut cases = vec![];
    // alg none.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(good.to_string());
    cases.push(refused("alg none", format!("{none_header}.{payload}.")));
    // HS256 keyed with our public key (the classic algorithm confusion).
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some(key.kid.clone());
    let hs_token =
        jsonwebtoken::encode(&hs, &good, &jsonwebtoken::EncodingKey::from_secret(key.public_pem.as_bytes()))
            .unwrap();
    cases.push(refused("HS256 with the public key", hs_token));
    // Signed by another key.
    let other = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let pem = p256::pkcs8::EncodePrivateKey::to_pkcs8_pem(&other, p256::pkcs8::LineEnding::LF).unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.kid = Some(key.kid.clone());
    cases.push(refused(
        "foreign key",
        jsonwebtoken::encode(&h, &good, &jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap())
            .unwrap(),
    ));
    let mut c = good.clone();
    c["exp"] = json!(now() - 120);
    cases.push(refused("expired", sign(&app, &c)));
    let mut c = good.clone();
    c["nbf"] = json!(now() + 600);
    cases.push(refused("not yet valid", sign(&app, &c)));
    let mut c = good.clone();
    c["aud"] = json!("another-registry");
    cases.push(refused("wrong audience", sign(&app, &c)));
    let mut c = good.clone();
    c["iss"] = json!("someone-else");
    cases.push(refused("wrong issuer", sign(&app, &c)));
    let mut c = good.clone();
    c.as_object_mut().unwrap().remove("exp");
    cases.push(refused("no exp", sign(&app, &c)));
    let mut no_kid = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    no_kid.kid = None;
    cases.push(refused("no kid", jsonwebtoken::encode(&no_kid, &good, &key.encoding).unwrap()));
    cases.push(refused("garbage", "not.a.token".into()));
    let tampered = {
        let mut c = good.clone();
        c["access"][0]["name"] = json!("library/other");
        let parts: Vec<&str> = ok.split('.').collect();
        format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(c.to_string()), parts[2])
    };
    cases.push(refused("tampered payload", tampered));
    // ECDSA malleability: (r, n − S) verifies wherever (r, S) does; only low S is accepted.
    cases.push(refused("high S", high_s(&ok)));
    let issued = token(&app, Some(&admin()), &["repository:library/app:pull"]).await.1["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(pull(&app, Some(&bearer(&issued)), "library/app", "v1").await, StatusCode::OK);
    cases.push(refused("high S of an issued token", high_s(&issued)));
    for (name, t) in cases {
        let r = app.get_with("/v2/library/app/manifests/v1", &[("authorization", &bearer(&t))]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}: {}", r.text());
        let ch = r.header("www-authenticate").unwrap_or_default();
        assert!(ch.starts_with("Bearer realm=") && ch.contains("error=\"invalid_token\""), "{name}: {ch}");
    }

    // Valid token, other repository / other action: 403 with an insufficient_scope challenge.
    let pull_only = sign(&app, &claims("admin", "library/app", pid, &["pull"]));
    let r = app.get_with("/v2/library/other/manifests/v1", &[("authorization", &bearer(&pull_only))]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains(r#"scope="repository:library/other:pull",error="insufficient_scope""#));
    assert_eq!(delete_tag(&app, &bearer(&pull_only), "library/app", "v1").await, StatusCode::FORBIDDEN);
    assert_eq!(push(&app, &bearer(&pull_only), "library/app", "v2", b"x").await, StatusCode::FORBIDDEN);
    // A token that asked for push and was refused it: 401 with the challenge.
    let mut refused = claims("dev", "library/app", pid, &["pull"]);
    refused["access"][0]["refused"] = json!(["push"]);
    let r = app
        .call(
            Method::POST,
            "/v2/library/app/blobs/uploads/",
            &[("authorization", &bearer(&sign(&app, &refused)))],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").unwrap().contains(r#"error="insufficient_scope""#));
    // An anonymous token lacking a right: 401 (log in), not 403.
    let anon = sign(&app, &claims("", "library/app", pid, &["pull"]));
    assert_eq!(push(&app, &bearer(&anon), "library/app", "v2", b"x").await, StatusCode::UNAUTHORIZED);
});

both_dbs!(recreated_project_voids_old_tokens, |app| {
    create_user(&app, "dev").await;
    create_project(&app, &admin(), "p1", false).await;
    add_member(&app, "p1", "dev", 2).await;
    let (_, d) = token(&app, Some(&basic("dev", PW)), &["repository:p1/app:pull,push"]).await;
    let old = d["token"].as_str().unwrap().to_string();
    assert_eq!(push(&app, &bearer(&old), "p1/app", "v1", b"one").await, StatusCode::CREATED);

    // Not deletable while it has a repository (412); empty it, delete, recreate.
    let r = app.call(Method::DELETE, "/api/v2.0/projects/p1", &[("authorization", &admin())], vec![]).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(r.error_code(), "PRECONDITION");
    let r = app
        .call(
            Method::DELETE,
            "/api/v2.0/projects/p1/repositories/app",
            &[("authorization", &admin())],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(pull(&app, Some(&admin()), "p1/app", "v1").await, StatusCode::NOT_FOUND);
    let r = app.call(Method::DELETE, "/api/v2.0/projects/p1", &[("authorization", &admin())], vec![]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(create_project(&app, &admin(), "p1", false).await.status, StatusCode::CREATED);

    // The old token named the old project: refused, for push and pull.
    assert_eq!(push(&app, &bearer(&old), "p1/app", "v2", b"two").await, StatusCode::FORBIDDEN);
    assert_eq!(pull(&app, Some(&bearer(&old)), "p1/app", "v1").await, StatusCode::FORBIDDEN);
    // And dev is no member of the new one.
    let (_, d) = token(&app, Some(&basic("dev", PW)), &["repository:p1/app:pull,push"]).await;
    assert!(actions(d["token"].as_str().unwrap(), "p1/app").is_empty());
});

both_dbs!(cross_repo_mount_needs_pull_on_the_source, |app| {
    create_user(&app, "dev").await;
    create_project(&app, &admin(), "mine", false).await;
    create_project(&app, &admin(), "secret", false).await;
    add_member(&app, "mine", "dev", 2).await;
    assert_eq!(push(&app, &admin(), "secret/app", "v1", b"classified-layer").await, StatusCode::CREATED);
    let digest = sha256(b"classified-layer");
    let unknown = sha256(b"no-such-layer");
    let (_, d) = token(
        &app,
        Some(&basic("dev", PW)),
        &["repository:mine/app:pull,push", "repository:secret/app:pull"],
    )
    .await;
    let t = d["token"].as_str().unwrap().to_string();
    assert!(actions(&t, "secret/app").is_empty());
    for auth in [bearer(&t), basic("dev", PW)] {
        let mut answers = vec![];
        for dg in [&digest, &unknown] {
            let r = app
                .call(
                    Method::POST,
                    &format!("/v2/mine/app/blobs/uploads/?mount={dg}&from=secret/app"),
                    &[("authorization", &auth)],
                    vec![],
                )
                .await;
            answers.push((r.status, r.header("docker-content-digest").map(str::to_string)));
        }
        // Never mounted, and the answer for an existing blob equals the one for a missing blob.
        assert_eq!(answers[0].0, StatusCode::ACCEPTED);
        assert_eq!(answers[0], answers[1]);
    }
    assert_eq!(
        app.get_with(&format!("/v2/mine/app/blobs/{digest}"), &[("authorization", &basic("dev", PW))])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // The admin may mount it.
    let r = app
        .call(
            Method::POST,
            &format!("/v2/mine/app/blobs/uploads/?mount={digest}&from=secret/app"),
            &[("authorization", &admin())],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // The 401 challenge of an anonymous mount asks for pull on the source too.
    let r = app
        .call(
            Method::POST,
            &format!("/v2/mine/app/blobs/uploads/?mount={digest}&from=secret/app"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains(r#"scope="repository:mine/app:pull,push repository:secret/app:pull""#));
});

/// (name, role id or 0 for an outsider, may pull, may push, may delete)
const MATRIX: [(&str, i64, bool, bool, bool); 6] = [
    ("padmin", 1, true, true, true),
    ("maint", 4, true, true, true),
    ("dev", 2, true, true, false),
    ("guest", 3, true, false, false),
    ("lguest", 5, true, false, false),
    ("outsider", 0, false, false, false),
];

both_dbs!(roles_on_v2_with_basic_and_tokens, |app| {
    create_project(&app, &admin(), "p1", false).await;
    for (name, role, ..) in MATRIX {
        create_user(&app, name).await;
        if role > 0 {
            add_member(&app, "p1", name, role).await;
        }
    }
    for (name, _, can_pull, can_push, can_delete) in MATRIX {
        let (_, d) =
            token(&app, Some(&basic(name, PW)), &[&format!("repository:p1/{name}:pull,push,delete")]).await;
        let t = bearer(d["token"].as_str().unwrap());
        for (how, auth) in [("basic", basic(name, PW)), ("token", t)] {
            // Basic: 403. A token whose refused actions the client asked for: 401 (docker
            // stops instead of retrying).
            let denied = if how == "token" { StatusCode::UNAUTHORIZED } else { StatusCode::FORBIDDEN };
            assert_eq!(
                push(&app, &admin(), &format!("p1/{name}"), "seed", name.as_bytes()).await,
                StatusCode::CREATED
            );
            let st = push(&app, &auth, &format!("p1/{name}"), how, format!("{name}{how}").as_bytes()).await;
            assert_eq!(st, if can_push { StatusCode::CREATED } else { denied }, "{name} push via {how}");
            let st = pull(&app, Some(&auth), &format!("p1/{name}"), "seed").await;
            assert_eq!(st, if can_pull { StatusCode::OK } else { denied }, "{name} pull via {how}");
            let st = delete_tag(&app, &auth, &format!("p1/{name}"), "seed").await;
            assert_eq!(st, if can_delete { StatusCode::ACCEPTED } else { denied }, "{name} delete via {how}");
        }
    }
    // Anonymous: 401 on the private project, pull only on the public one.
    assert_eq!(pull(&app, None, "p1/dev", "basic").await, StatusCode::UNAUTHORIZED);
    assert_eq!(push(&app, &admin(), "library/pub", "v1", b"pub").await, StatusCode::CREATED);
    assert_eq!(pull(&app, None, "library/pub", "v1").await, StatusCode::OK);
    assert_eq!(push(&app, &basic("dev", PW), "library/pub", "v2", b"nope").await, StatusCode::FORBIDDEN);
    let r = app.call(Method::POST, "/v2/library/pub/blobs/uploads/", &[], vec![]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").unwrap().contains(r#"scope="repository:library/pub:pull,push""#));

    // The catalog: admin sees all, a member sees their project, an outsider only public ones.
    let names = |r: crate::common::Resp| {
        r.json()["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert!(names(app.get_with("/v2/_catalog", &[("authorization", &admin())]).await)
        .contains(&"p1/dev".to_string()));
    assert!(names(app.get_with("/v2/_catalog", &[("authorization", &basic("guest", PW))]).await)
        .contains(&"p1/dev".to_string()));
    let outsider = names(app.get_with("/v2/_catalog", &[("authorization", &basic("outsider", PW))]).await);
    assert_eq!(outsider, ["library/pub"]);

    // Every operation left its audit row, with who did it.
    let pushes = audit(&app, "operation=create,resource_type=artifact,username=dev").await;
    assert!(pushes.iter().any(|r| r["resource"] == "p1/dev:basic"), "{pushes:?}");
    let pulls = audit(&app, "operation=pull,username=lguest").await;
    assert_eq!(pulls.len(), 2, "{pulls:?}");
    let deletes = audit(&app, "operation=delete,username=maint").await;
    assert!(
        deletes.iter().all(|r| r["resource_type"] == "tag" && r["resource"] == "p1/maint:seed"),
        "{deletes:?}"
    );
    assert_eq!(deletes.len(), 2);
    assert!(audit(&app, "operation=delete,username=guest").await.is_empty());
});

// Issue 18: a push by a client that never logged in (docker without `docker login`) must stop at
// once with a reason: no credentials at all → the plain challenge (so the client fetches a
// token); the anonymous token it then presents → 401 with `error="insufficient_scope"` and a
// message naming the repository and the action. A signed-in push to a project that does not
// exist, or to a name without a project, → 404 NAME_UNKNOWN (clients do not retry it).
both_dbs!(refusals_say_why_so_clients_stop_at_once, |app| {
    // 1. No credentials: the plain challenge with the scope, no error.
    let r = app.call(Method::POST, "/v2/library/anon/blobs/uploads/", &[], vec![]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let ch = r.header("www-authenticate").unwrap().to_string();
    assert!(ch.contains(r#"scope="repository:library/anon:pull,push""#), "{ch}");
    assert!(!ch.contains("error="), "{ch}");
    // 2. The anonymous token docker fetches next (pull granted on the public project only).
    let (st, d) = token(&app, None, &["repository:library/anon:pull,push"]).await;
    assert_eq!(st, StatusCode::OK);
    let anon = bearer(d["token"].as_str().unwrap());
    for (method, path) in
        [(Method::POST, "/v2/library/anon/blobs/uploads/"), (Method::PUT, "/v2/library/anon/manifests/v1")]
    {
        let r = app.call(method.clone(), path, &[("authorization", &anon)], vec![]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        let ch = r.header("www-authenticate").unwrap().to_string();
        assert!(ch.starts_with("Bearer realm="), "{ch}");
        assert!(
            ch.contains(r#"scope="repository:library/anon:pull,push",error="insufficient_scope""#),
            "{ch}"
        );
        // docker prints the challenge's error_description for insufficient_scope (else only
        // "denied: requested access to the resource is denied").
        assert!(
            ch.ends_with(
                r#",error_description="unauthorized to access repository: library/anon, action: push""#
            ),
            "{ch}"
        );
        let j = r.json();
        assert_eq!(j["errors"][0]["code"], "UNAUTHORIZED");
        assert_eq!(
            j["errors"][0]["message"],
            "unauthorized to access repository: library/anon, action: push"
        );
    }
    // 3. A signed-in user without the right (token refused push): the same message.
    create_user(&app, "reader").await;
    let (_, d) = token(&app, Some(&basic("reader", PW)), &["repository:library/anon:pull,push"]).await;
    let t = bearer(d["token"].as_str().unwrap());
    let r = app.call(Method::POST, "/v2/library/anon/blobs/uploads/", &[("authorization", &t)], vec![]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").unwrap().contains(r#"error="insufficient_scope""#));
    assert_eq!(
        r.json()["errors"][0]["message"],
        "unauthorized to access repository: library/anon, action: push"
    );
    // Basic credentials without the right: 403 DENIED, same message and challenge error.
    let r = app
        .call(
            Method::POST,
            "/v2/library/anon/blobs/uploads/",
            &[("authorization", &basic("reader", PW))],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.json()["errors"][0]["message"],
        "unauthorized to access repository: library/anon, action: push"
    );
    assert!(r.header("www-authenticate").unwrap().contains(r#"error="insufficient_scope""#));
    // 4. A project that does not exist, with a signed-in token: 404 NAME_UNKNOWN.
    let (_, d) = token(&app, Some(&admin()), &["repository:nope/app:pull,push"]).await;
    let t = bearer(d["token"].as_str().unwrap());
    let r = app.call(Method::POST, "/v2/nope/app/blobs/uploads/", &[("authorization", &t)], vec![]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["code"], "NAME_UNKNOWN");
    assert_eq!(r.json()["errors"][0]["message"], "project \"nope\" not found");
    // A name without a project at all.
    let r = app.call(Method::POST, "/v2/app/blobs/uploads/", &[("authorization", &t)], vec![]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["errors"][0]["code"], "NAME_UNKNOWN");
});

both_dbs!(a_client_hanging_up_mid_check_does_not_lock_its_user_out, |app| {
    // Clients that give up while their password is being checked (a docker login timing out)
    // leave no reservation behind: each check runs to its end and settles its attempt, so more
    // abandoned logins than `max_failed_logins` (5) still leave the user able to log in.
    use server::identity::{verify_password, Surface};
    crate::common::create_user(&app.state.db, "dora", "Dora12345", false).await;
    for _ in 0..8 {
        let check = verify_password(&app.state, "dora", "Dora12345", true, Surface::Cli);
        // Mostly abandoned during argon2; with several checks in flight, a later one may be
        // refused at once (in-flight checks count against the lockout): either is fine here.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(3), check).await;
    }
    // The abandoned checks finish on their own; then the lockout row holds nothing in flight.
    let mut settled = false;
    for _ in 0..100 {
        let in_flight: Option<i64> =
            sqlx::query_scalar("SELECT in_flight FROM login_failures WHERE username = 'dora'")
                .fetch_optional(&app.state.db.pool)
                .await
                .unwrap();
        if in_flight.unwrap_or(0) == 0 {
            settled = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(settled, "abandoned checks left reservations behind");
    let ok = verify_password(&app.state, "dora", "Dora12345", true, Surface::Cli).await;
    assert!(ok.is_ok(), "{:?}", ok.err());
});

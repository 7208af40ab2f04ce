//! A burst of first requests with the same Basic credentials costs one argon2 verification
//! (single-flight), not one per request; a burst of wrong ones costs at most the lockout
//! limit; a full argon2 queue refuses at once.
//!
//! Kept out of the one integration-test binary (`it/`) on purpose: these tests measure
//! process-wide state — the argon2 verification counter (`accounts::VERIFICATIONS`) and the
//! process-wide argon2 permits and queue — which any login in a concurrently running test would
//! move. In their own process (one at a time, `SERIAL`) the counters see only these tests.

#[path = "it/common/mod.rs"]
mod common;

use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use common::{basic, DbChoice, TestApp};
use server::accounts::VERIFICATIONS;
use tower::ServiceExt;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn concurrent_first_logins_verify_once() {
    let _serial = SERIAL.lock().await;
    let app = TestApp::new(DbChoice::Sqlite).await;
    common::create_user(&app.state.db, "carol", "Carol12345", false).await;
    let before = VERIFICATIONS.load(Ordering::Relaxed);
    let mut tasks = vec![];
    for _ in 0..16 {
        let router = app.router.clone();
        tasks.push(tokio::spawn(async move {
            let req = axum::http::Request::get("/v2/")
                .header("authorization", basic("carol", "Carol12345"))
                .body(axum::body::Body::empty())
                .unwrap();
            router.oneshot(req).await.unwrap().status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(VERIFICATIONS.load(Ordering::Relaxed) - before, 1);
    // Wrong passwords are never cached: each attempt is verified (and counted for lockout).
    let before = VERIFICATIONS.load(Ordering::Relaxed);
    for _ in 0..2 {
        let r = app.get_with("/v2/", &[("authorization", &basic("carol", "Wrong12345"))]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(VERIFICATIONS.load(Ordering::Relaxed) - before, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_logins_verify_at_most_the_limit() {
    let _serial = SERIAL.lock().await;
    let app = TestApp::new(DbChoice::Sqlite).await;
    common::create_user(&app.state.db, "dave", "Dave12345x", false).await;
    let before = VERIFICATIONS.load(Ordering::Relaxed);
    let mut tasks = vec![];
    for i in 0..41 {
        let router = app.router.clone();
        // Distinct wrong passwords (the credential cache would serialize equal ones); the right
        // one among them.
        let pass = if i == 20 { "Dave12345x".to_string() } else { format!("Wrong{i}") };
        tasks.push(tokio::spawn(async move {
            let req = axum::http::Request::get("/v2/")
                .header("authorization", basic("dave", &pass))
                .body(axum::body::Body::empty())
                .unwrap();
            router.oneshot(req).await.unwrap().status()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::OK => ok += 1,
            StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("{other}"),
        }
    }
    let verified = VERIFICATIONS.load(Ordering::Relaxed) - before;
    // At most the limit; the right password clears the count only when it was the one
    // attempt in flight (consecutive failures), which a burst practically never allows: then
    // at most one more allowance.
    assert!(
        verified <= 5 || (ok == 1 && verified <= 10),
        "{verified} argon2 verifications for a lockout limit of 5"
    );
    assert!(ok <= 1);
    // Whatever the right password met in the burst, five wrong ones now lock the account
    // (the burst may have left fewer: the right one clears the count), and then the right
    // password is refused without being checked.
    for i in 0..5 {
        app.get_with("/v2/", &[("authorization", &basic("dave", &format!("Again{i}")))]).await;
    }
    let before = VERIFICATIONS.load(Ordering::Relaxed);
    let r = app.get_with("/v2/", &[("authorization", &basic("dave", "Dave12345x"))]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text().contains("locked"), "{}", r.text());
    assert_eq!(VERIFICATIONS.load(Ordering::Relaxed) - before, 0);
}

#[tokio::test]
async fn a_full_argon2_queue_refuses_at_once() {
    let _serial = SERIAL.lock().await;
    let app = TestApp::new(DbChoice::Sqlite).await;
    let mut held = vec![];
    while let Ok(slot) = server::accounts::Argon2Slot::enter() {
        held.push(slot);
        assert!(held.len() <= 1000);
    }
    assert_eq!(held.len(), server::accounts::argon2_capacity());
    let before = VERIFICATIONS.load(Ordering::Relaxed);
    let admin = basic("admin", common::ADMIN_PASSWORD);
    let r = app.get_with("/v2/", &[("authorization", &admin)]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.error_code(), "TOOMANYREQUESTS");
    assert_eq!(r.header("retry-after"), Some("1"));
    let r = app.get_with("/service/token?service=harbor-registry", &[("authorization", &admin)]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.error_code(), "TOO_MANY_REQUESTS");
    let r = app.get_with("/api/v2.0/users/current", &[("authorization", &admin)]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(VERIFICATIONS.load(Ordering::Relaxed), before, "nothing was queued");
    // Refused before any write: no failure was counted against the account.
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_failures")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    // The portal says the server is busy, not that the account is locked.
    let r = app
        .call(
            axum::http::Method::POST,
            "/portal/fn/login",
            &[("content-type", "application/x-www-form-urlencoded"), ("accept", "text/html")],
            "username=admin&password=Harbor12345&redirect_url=%2Fharbor%2Fprojects",
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text());
    let loc = r.header("location").unwrap().to_string();
    assert!(loc.starts_with("/account/sign-in?error=busy&retry=1&"), "{loc}");
    let html = app.get_with(&loc, &[("accept", "text/html")]).await.text();
    assert!(html.contains("too many sign-ins at once; try again in 1 seconds"), "{html}");
    assert!(!html.contains("too many failed logins"), "{html}");
    drop(held);
    assert_eq!(app.get_with("/v2/", &[("authorization", &admin)]).await.status, StatusCode::OK);
}

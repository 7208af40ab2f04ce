//! A burst of first requests with the same Basic credentials costs one argon2 verification
//! (single-flight), not one per request. Its own test binary, so the process-wide counter
//! sees only this test.

mod common;

use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use common::{basic, DbChoice, TestApp};
use server::accounts::VERIFICATIONS;
use tower::ServiceExt;

#[tokio::test]
async fn concurrent_first_logins_verify_once() {
    let app = TestApp::new(DbChoice::Sqlite).await;
    server::accounts::create_user(&app.state.db, "carol", "Carol12345", false).await.unwrap();
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

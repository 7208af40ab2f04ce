//! Portal sessions shared through a real Redis by two server instances: log in on one, use the
//! cookie on the other; nothing is written to the database's session table.

use crate::common::{DbChoice, TestApp, ADMIN_PASSWORD};
use axum::http::StatusCode;

fn redis_url() -> String {
    std::env::var("TEST_BERTH_REDIS_URL").expect(
        "TEST_BERTH_REDIS_URL is not set: run the README's test command (scripts/test), which starts Redis",
    )
}

async fn pair(db: DbChoice) -> (TestApp, TestApp) {
    let a = TestApp::builder(db).toml(&format!("[redis]\nurl = \"{}\"", redis_url())).build().await;
    let b = a.sibling().await;
    (a, b)
}

async fn shared(db: DbChoice) {
    let (a, b) = pair(db).await;
    let (cookie, csrf) = a.login("admin", ADMIN_PASSWORD).await;
    let r = b.get_with("/api/v2.0/users/current", &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["username"], "admin");
    assert_eq!(r.header("x-harbor-csrf-token"), Some(csrf.as_str()));
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(&a.state.db.pool).await.unwrap();
    assert_eq!(n, 0, "sessions must live in Redis, not in the database");
    let health = b.get("/api/v2.0/health").await.json();
    assert!(health["components"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "redis" && c["status"] == "healthy"));
    // Logging out on B ends the session on A.
    assert_eq!(b.get_with("/c/log_out", &[("cookie", &cookie)]).await.status, StatusCode::OK);
    let r = a.get_with("/api/v2.0/users/current", &[("cookie", &cookie)]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sessions_shared_between_instances_sqlite() {
    shared(DbChoice::Sqlite).await;
}

#[tokio::test]
async fn sessions_shared_between_instances_postgres() {
    shared(DbChoice::Postgres).await;
}

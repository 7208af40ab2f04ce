//! The test harness itself: what `common` promises about the servers tests borrow.

use crate::common::{DbChoice, PgDb, TestApp};
use sqlx::Connection;

async fn database_exists(name: &str) -> bool {
    let admin = std::env::var("TEST_BERTH_POSTGRES_URL").expect("TEST_BERTH_POSTGRES_URL");
    let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    n == 1
}

fn name_of(url: &str) -> String {
    url.rsplit_once('/').unwrap().1.to_string()
}

/// A test's PostgreSQL database is gone when the test ends, whether it passed or panicked, even
/// with the app (pools, background tasks and a sibling replica) still connected at that moment.
#[tokio::test]
async fn postgres_test_databases_are_dropped_after_the_test() {
    let app = TestApp::new(DbChoice::Postgres).await;
    let sibling = app.sibling().await;
    let name = name_of(&app.config.database.url);
    assert!(database_exists(&name).await);
    drop(app);
    assert!(database_exists(&name).await, "a sibling still uses it");
    drop(sibling);
    assert!(!database_exists(&name).await, "{name} left behind");

    // A panicking test: its database is dropped while it unwinds.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let failing = tokio::spawn(async move {
        let app = TestApp::new(DbChoice::Postgres).await;
        tx.send(name_of(&app.config.database.url)).unwrap();
        let r = app.get("/api/v2.0/ping").await;
        panic!("a failing test (ping answered {})", r.status);
    });
    assert!(failing.await.unwrap_err().is_panic());
    let name = rx.await.unwrap();
    assert!(!database_exists(&name).await, "{name} left behind by a panicking test");

    // Databases made outside a TestApp go the same way.
    let db = PgDb::create().await;
    let name = name_of(&db.url);
    assert!(database_exists(&name).await);
    drop(db);
    assert!(!database_exists(&name).await, "{name} left behind");
}

//! The data layer's promises that no single surface owns.

use crate::common::{DbChoice, TestApp};
use std::time::{Duration, Instant};

/// A write transaction cancelled while it begins (a client hanging up mid-request, a copy
/// dropping a sibling transfer) must not leave its connection inside the transaction: sqlx
/// 0.8's SQLite `begin` with a custom statement (`BEGIN IMMEDIATE`) acknowledges the BEGIN and
/// then awaits once more before a `Transaction` exists to roll it back, so a cancellation
/// there keeps the write lock until the process exits; `db::release_sqlite` closes such a
/// connection on its way back to the pool. The window is a few microseconds wide, so the test
/// cancels at many points; without the fix it wedges within the first few hundred rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_begin_does_not_wedge_the_database_sqlite() {
    let app = TestApp::new(DbChoice::Sqlite).await;
    let db = app.state.db.clone();
    sqlx::query("CREATE TABLE cancel_probe (id INTEGER PRIMARY KEY, v TEXT)")
        .execute(&db.pool)
        .await
        .unwrap();
    let mut cancelled = 0;
    for round in 0..3000u64 {
        let d = db.clone();
        let work = async move {
            let mut tx = d.begin_write().await?;
            sqlx::query("INSERT INTO cancel_probe (v) VALUES ('cancelled')").execute(&mut *tx).await?;
            tx.commit().await
        };
        if tokio::time::timeout(Duration::from_micros(round % 300), work).await.is_err() {
            cancelled += 1;
        }
        let write = async {
            let mut tx = db.begin_write().await?;
            sqlx::query("INSERT INTO cancel_probe (v) VALUES ('after')").execute(&mut *tx).await?;
            tx.commit().await
        };
        let started = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(3), write).await;
        assert!(matches!(r, Ok(Ok(()))), "round {round}: {r:?} after {:?}", started.elapsed());
    }
    assert!(cancelled >= 20, "only {cancelled} rounds were cancelled");
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cancel_probe WHERE v = 'after'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(after, 3000);
}

//! Test support (feature `testing`): a fresh database per test — a temporary SQLite file always,
//! and a PostgreSQL schema of its own when `TEST_DATABASE_URL` is set — plus [`db_test!`] to run
//! one test body on both.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::AssertSqlSafe;
use sqlx::Connection;

use crate::store::{Store, StoreOptions};

/// A database for one test; dropping it removes the SQLite file. PostgreSQL schemas are dropped
/// by [`TestDb::cleanup`], and stale ones from crashed runs at the next start.
pub struct TestDb {
    /// The store to test against.
    pub store: Store,
    /// The URL it was opened with (for tests that start the binary against the same database).
    pub url: String,
    /// The PostgreSQL schema, if any.
    pub schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A migrated SQLite database in a temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("hotline.db").display());
        let store = Store::connect(StoreOptions::new(url.clone()))
            .await
            .expect("open SQLite");
        store.migrate().await.expect("migrate SQLite");
        TestDb {
            store,
            url,
            schema: None,
            _dir: Some(dir),
        }
    }

    /// A migrated PostgreSQL schema of its own, or `None` when `TEST_DATABASE_URL` is not set.
    pub async fn postgres() -> Option<TestDb> {
        let url = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())?;
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let now = jiff::Timestamp::now().as_second();
        let schema = format!(
            "hotline_test_{now}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&url)
            .await
            .expect("connect to TEST_DATABASE_URL");
        drop_stale_schemas(&mut conn, now).await;
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(&mut conn)
            .await
            .expect("create test schema");
        conn.close().await.ok();
        let mut options = StoreOptions::new(url.clone());
        options.pg_schema = Some(schema.clone());
        options.max_connections = 4;
        let store = Store::connect(options).await.expect("open PostgreSQL");
        store.migrate().await.expect("migrate PostgreSQL");
        let sep = if url.contains('?') { '&' } else { '?' };
        Some(TestDb {
            store,
            url: format!("{url}{sep}options=-csearch_path%3D{schema}"),
            schema: Some(schema),
            _dir: None,
        })
    }

    /// Drops the PostgreSQL schema (no-op on SQLite).
    pub async fn cleanup(self) {
        self.store.close().await;
        if let (Some(schema), Ok(url)) = (&self.schema, std::env::var("TEST_DATABASE_URL"))
            && let Ok(mut conn) = sqlx::AnyConnection::connect(&url).await
        {
            let _ = sqlx::query(AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

/// Removes schemas left by test runs that died more than an hour ago.
async fn drop_stale_schemas(conn: &mut sqlx::AnyConnection, now: i64) {
    let Ok(names) = sqlx::query_scalar::<_, String>(
        "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name LIKE 'hotline\\_test\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    else {
        return;
    };
    for name in names {
        let born = name
            .strip_prefix("hotline_test_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|s| s.parse::<i64>().ok());
        if born.is_some_and(|b| now - b > 3600) {
            let _ = sqlx::query(AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS \"{name}\" CASCADE"
            )))
            .execute(&mut *conn)
            .await;
        }
    }
}

/// Defines a test module with one `#[tokio::test]` per database: `sqlite` always, `postgres`
/// when `TEST_DATABASE_URL` is set (otherwise it says so and passes).
///
/// ```ignore
/// db_test!(ticket_gets_a_number, |db| async move { let store = &db.store; ... });
/// ```
#[macro_export]
macro_rules! db_test {
    ($name:ident, |$db:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $db = $crate::testing::TestDb::sqlite().await;
                $body;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($db) = $crate::testing::TestDb::postgres().await else {
                    eprintln!("TEST_DATABASE_URL is not set: PostgreSQL variant not run");
                    return;
                };
                $body;
            }
        }
    };
}

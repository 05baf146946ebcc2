//! A test database on either backend, so that one test body runs on SQLite
//! and on PostgreSQL. A PostgreSQL database is a fresh schema on the server
//! named by `MADOGUCHI_TEST_PG`; without it the PostgreSQL variant prints
//! why it is skipped and passes.

use madoguchi::store::postgres::{test_url, unique_schema, PostgresStore};
use madoguchi::store::sqlite::SqliteStore;
use madoguchi::store::Store;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone)]
pub enum TestDb {
    Sqlite {
        /// Kept so the folder lives as long as any copy of the `TestDb`.
        _dir: Arc<tempfile::TempDir>,
        path: PathBuf,
    },
    Postgres {
        url: String,
        schema: String,
    },
}

impl TestDb {
    pub fn sqlite(name: &str) -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("{name}.db"));
        TestDb::Sqlite {
            _dir: Arc::new(dir),
            path,
        }
    }

    pub fn postgres(name: &str) -> Option<TestDb> {
        Some(TestDb::Postgres {
            url: test_url(name)?,
            schema: unique_schema(name),
        })
    }

    /// Opens (another connection pool to) the database.
    pub async fn open(&self) -> AnyStore {
        match self {
            TestDb::Sqlite { path, .. } => AnyStore::Sqlite(SqliteStore::open(path).await.unwrap()),
            TestDb::Postgres { url, schema } => {
                AnyStore::Postgres(PostgresStore::open_in_schema(url, schema).await.unwrap())
            }
        }
    }
}

#[derive(Clone, Debug)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl AnyStore {
    pub fn arc(&self) -> Arc<dyn Store> {
        match self {
            AnyStore::Sqlite(s) => Arc::new(s.clone()),
            AnyStore::Postgres(s) => Arc::new(s.clone()),
        }
    }

    /// A `SELECT COUNT(*) …` (written in SQL both backends read).
    pub async fn count(&self, sql: &str) -> i64 {
        match self {
            AnyStore::Sqlite(s) => sqlx::query_scalar(sql).fetch_one(s.pool()).await,
            AnyStore::Postgres(s) => sqlx::query_scalar(sql).fetch_one(s.pool()).await,
        }
        .unwrap()
    }

    /// Runs a statement (written in SQL both backends read).
    pub async fn exec(&self, sql: &str) {
        match self {
            AnyStore::Sqlite(s) => sqlx::query(sql).execute(s.pool()).await.map(|_| ()),
            AnyStore::Postgres(s) => sqlx::query(sql).execute(s.pool()).await.map(|_| ()),
        }
        .unwrap()
    }

    pub async fn close(&self) {
        match self {
            AnyStore::Sqlite(s) => s.pool().close().await,
            AnyStore::Postgres(s) => s.pool().close().await,
        }
    }
}

impl std::ops::Deref for AnyStore {
    type Target = dyn Store;
    fn deref(&self) -> &(dyn Store + 'static) {
        match self {
            AnyStore::Sqlite(s) => s,
            AnyStore::Postgres(s) => s,
        }
    }
}

/// Runs a test body `async fn NAME(db: TestDb)` on both backends, as the
/// tests `NAME::sqlite` and `NAME::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident $(, $($flavor:tt)+)?) => {
        mod $name {
            #[tokio::test $(($($flavor)+))?]
            async fn sqlite() {
                super::$name($crate::support::db::TestDb::sqlite(stringify!($name))).await
            }
            #[tokio::test $(($($flavor)+))?]
            async fn postgres() {
                if let Some(db) = $crate::support::db::TestDb::postgres(stringify!($name)) {
                    super::$name(db).await
                }
            }
        }
    };
}

//! Fresh databases for storage tests, so that a suite is written once and runs on every
//! backend: SQLite always (a file in a temporary folder), PostgreSQL when
//! [`POSTGRES_URL_VARIABLE`] names a server (each test in a schema of its own, dropped at the
//! end, even when the test panics). Without that variable the PostgreSQL half is skipped and
//! says so loudly, once per test binary, past the harness's output capture.

use std::io::Write as _;
use std::panic::AssertUnwindSafe;
use std::sync::Once;

use futures::FutureExt as _;
use sqlx::Connection as _;

use crate::pool::Backend;

/// The variable naming the PostgreSQL server to test against, e.g.
/// `postgres://postgres@127.0.0.1:5432/test`.
pub const POSTGRES_URL_VARIABLE: &str = "OWLMESH_TEST_POSTGRES_URL";

/// A fresh, empty database of one backend, for one test.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    backend: Backend,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    /// The folder of the SQLite file, removed when dropped.
    Sqlite { _folder: tempfile::TempDir },
    /// The schema to drop, on the server it lives on.
    Postgres { server_url: String, schema: String },
}

impl TestDatabase {
    /// An SQLite database in a file named `file_name` in a fresh temporary folder.
    pub fn sqlite(file_name: &str) -> Self {
        let folder = tempfile::tempdir().expect("a temporary folder for the test database");
        let url = folder.path().join(file_name).display().to_string();
        Self {
            url,
            backend: Backend::Sqlite,
            cleanup: Cleanup::Sqlite { _folder: folder },
        }
    }

    /// A fresh schema on the test PostgreSQL server, or `None` (with the loud notice) when
    /// [`POSTGRES_URL_VARIABLE`] is unset.
    pub async fn postgres() -> Option<Self> {
        let server_url = match std::env::var(POSTGRES_URL_VARIABLE) {
            Ok(url) if !url.is_empty() => url,
            _ => {
                warn_postgres_skipped();
                return None;
            }
        };
        let schema = format!("owlmesh_test_{}", uuid::Uuid::new_v4().simple());
        run_on_server(&server_url, &format!("CREATE SCHEMA {schema}")).await;
        let separator = if server_url.contains('?') { '&' } else { '?' };
        let url = format!("{server_url}{separator}options=-c%20search_path%3D{schema}");
        Some(Self {
            url,
            backend: Backend::Postgres,
            cleanup: Cleanup::Postgres { server_url, schema },
        })
    }

    /// A database of `backend`, or `None` when this run cannot reach one.
    pub async fn of(backend: Backend, sqlite_file_name: &str) -> Option<Self> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite(sqlite_file_name)),
            Backend::Postgres => Self::postgres().await,
        }
    }

    /// The URL a store connects to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The backend this database is of.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Removes the database: its folder, or its schema and everything in it.
    pub async fn remove(self) {
        if let Cleanup::Postgres { server_url, schema } = &self.cleanup {
            run_on_server(server_url, &format!("DROP SCHEMA {schema} CASCADE")).await;
        }
    }
}

/// Runs `test` on a fresh database of `backend` (SQLite files are named `sqlite_file_name`)
/// and removes it afterwards, then passes on the test's panic, if any. Does nothing but warn
/// when this run cannot reach that backend.
pub async fn run_on(
    backend: Backend,
    sqlite_file_name: &str,
    test: impl AsyncFnOnce(&TestDatabase),
) {
    let Some(database) = TestDatabase::of(backend, sqlite_file_name).await else {
        return;
    };
    eprintln!("storage test on {}", backend.name());
    let outcome = AssertUnwindSafe(test(&database)).catch_unwind().await;
    database.remove().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Runs `test` on a fresh database of every backend this run can reach, one after the other.
pub async fn each_backend(sqlite_file_name: &str, test: impl AsyncFn(&TestDatabase)) {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        run_on(backend, sqlite_file_name, &test).await;
    }
}

async fn run_on_server(server_url: &str, sql: &str) {
    let mut connection = sqlx::PgConnection::connect(server_url)
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut connection)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
    connection.close().await.ok();
}

/// Says once per test binary, on the real stderr, that PostgreSQL was not tested.
fn warn_postgres_skipped() {
    static WARNED: Once = Once::new();
    WARNED.call_once(|| {
        let notice = format!(
            "\n\n*** POSTGRESQL SKIPPED: the PostgreSQL runs of the storage tests passed without \
             running; set {POSTGRES_URL_VARIABLE} (e.g. postgres://postgres@127.0.0.1:5432/test) \
             to run them ***\n\n"
        );
        std::io::stderr().write_all(notice.as_bytes()).ok();
    });
}

//! The frontier on the storage layer: its schema, tracked in a migrations table of its own,
//! and the statements of each backend's dialect.

use owlmesh_storage::{Backend, Pool, Schema, WriteTx};

use super::sql::{POSTGRES, SQLITE, Statements};

/// The frontier keeps its own migrations table, so it can share a PostgreSQL database (and its
/// `_sqlx_migrations`) with the archive. Never renamed since it shipped.
const MIGRATIONS_TABLE: &str = "_frontier_migrations";

/// The frontier's tables, for [`Pool::connect`].
pub(super) fn schema() -> Schema {
    Schema::new(
        sqlx::migrate!("migrations/sqlite"),
        sqlx::migrate!("migrations/postgres"),
    )
    .tracked_in(MIGRATIONS_TABLE)
}

/// The frontier's statements in the dialect of what runs them.
pub(super) trait Dialect {
    /// Every statement, written for this backend.
    fn sql(&self) -> &'static Statements;
}

fn statements(backend: Backend) -> &'static Statements {
    match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    }
}

impl Dialect for Pool {
    fn sql(&self) -> &'static Statements {
        statements(self.backend())
    }
}

impl Dialect for WriteTx {
    fn sql(&self) -> &'static Statements {
        statements(self.backend())
    }
}

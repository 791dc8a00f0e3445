//! What can go wrong below a store, and which of it a retry may get past.

/// A failure to reach, migrate or query the database.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database failed a statement or could not be reached.
    #[error("{0}")]
    Database(#[from] sqlx::Error),
    /// The embedded migrations could not bring the schema up to date.
    #[error("{0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// A result whose error is a [`StorageError`].
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Why a failed statement may succeed when tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transient {
    /// The database was unreachable, busy or out of pooled connections.
    Unavailable,
    /// The transaction lost a deadlock or serialization conflict to another one.
    Conflict,
}

/// Whether `error` is one a retry may get past, and why; `None` for a lasting failure (a
/// constraint, a type mismatch, a bug in the SQL).
pub fn transient(error: &sqlx::Error) -> Option<Transient> {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            Some(Transient::Unavailable)
        }
        sqlx::Error::Database(error) => match error.code().as_deref() {
            // PostgreSQL deadlock_detected and serialization_failure.
            Some("40P01" | "40001") => Some(Transient::Conflict),
            // SQLite SQLITE_BUSY and SQLITE_LOCKED.
            Some("5" | "6") => Some(Transient::Unavailable),
            _ => None,
        },
        _ => None,
    }
}

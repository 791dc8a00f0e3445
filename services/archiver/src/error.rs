//! The archiver's error type and its one mapping into a gRPC status.

use std::path::PathBuf;

use owlmesh_storage::{StorageError, Transient};

/// A result whose error is an [`ArchiverError`].
pub type Result<T, E = ArchiverError> = std::result::Result<T, E>;

/// Everything that can go wrong in the archiver.
#[derive(Debug, thiserror::Error)]
pub enum ArchiverError {
    /// A request field is missing or malformed; `field` is its path, e.g. `pages[3].url`.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// The path of the offending field in the request.
        field: String,
        /// What is wrong with it, lowercase.
        reason: String,
    },
    /// The configuration cannot work, e.g. a webhook URL that does not parse.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The database refused or failed a statement, or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema migrations failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back, e.g. fields that are not a JSON object.
    #[error("corrupt stored {what}: {reason}")]
    Corrupt {
        /// Which stored value, e.g. `fields of item 42`.
        what: String,
        /// Why it could not be read.
        reason: String,
    },
    /// A file under the data folder could not be created or written.
    #[error("writing {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying failure.
        source: std::io::Error,
    },
    /// Rendering JSON failed.
    #[error("json encoding failed: {0}")]
    Json(#[from] serde_json::Error),
    /// Rendering CSV failed.
    #[error("csv encoding failed: {0}")]
    Csv(#[from] csv::Error),
    /// The archiver is stopping and takes no more writes; the producer sends them elsewhere.
    #[error("the archiver is shutting down")]
    ShuttingDown,
    /// Serving or joining the mesh failed.
    #[error("{0}")]
    Mesh(#[from] owlmesh_mesh::MeshError),
}

impl ArchiverError {
    /// An [`ArchiverError::InvalidArgument`] for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The status code of a database failure that a retry may get past: the database was
    /// unreachable or busy, or the transaction lost a deadlock or serialization conflict.
    fn retryable_code(&self) -> Option<tonic::Code> {
        let Self::Database(error) = self else {
            return None;
        };
        match owlmesh_storage::transient(error)? {
            Transient::Unavailable => Some(tonic::Code::Unavailable),
            Transient::Conflict => Some(tonic::Code::Aborted),
        }
    }
}

impl From<StorageError> for ArchiverError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Database(error) => Self::Database(error),
            StorageError::Migration(error) => Self::Migration(error),
        }
    }
}

impl From<ArchiverError> for tonic::Status {
    fn from(error: ArchiverError) -> Self {
        if let ArchiverError::InvalidArgument { .. } = error {
            return tonic::Status::invalid_argument(error.to_string());
        }
        if let ArchiverError::ShuttingDown = error {
            return tonic::Status::unavailable(error.to_string());
        }
        if let Some(code) = error.retryable_code() {
            tracing::warn!(%error, "archive request may be retried");
            return tonic::Status::new(code, error.to_string());
        }
        tracing::error!(%error, "archiver request failed");
        tonic::Status::internal(error.to_string())
    }
}

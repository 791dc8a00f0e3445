//! Errors of the directory service, and their gRPC status codes.

use owlmesh_mesh::MeshError;

/// What can go wrong in the directory.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// A request field is missing or malformed.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// The field path, e.g. `instance.address`.
        field: &'static str,
        /// What was expected.
        reason: String,
    },
    /// The lease is unknown: it expired, was ended, or the directory restarted.
    #[error("lease {0} not found: register again")]
    LeaseNotFound(String),
    /// A live instance of that kind and id was registered with another token.
    #[error(
        "{kind} {id} is live and registered with another token: only its own token may \
         replace it, or anyone once its lease expires"
    )]
    Taken {
        /// The instance's kind.
        kind: String,
        /// Its id.
        id: String,
    },
    /// No live instance of the kind.
    #[error("no live {0} instance")]
    NoInstance(String),
    /// Serving failed.
    #[error(transparent)]
    Mesh(#[from] MeshError),
}

/// Shorthand for results of this crate.
pub type Result<T, E = DirectoryError> = std::result::Result<T, E>;

impl From<DirectoryError> for tonic::Status {
    fn from(error: DirectoryError) -> Self {
        match error {
            DirectoryError::InvalidArgument { .. } => Self::invalid_argument(error.to_string()),
            DirectoryError::LeaseNotFound(_) => Self::not_found(error.to_string()),
            DirectoryError::Taken { .. } => Self::permission_denied(error.to_string()),
            DirectoryError::NoInstance(_) => Self::unavailable(error.to_string()),
            DirectoryError::Mesh(error) => error.into(),
        }
    }
}

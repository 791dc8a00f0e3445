//! Errors of the directory service and the mesh client, and their gRPC status codes.

/// What can go wrong in the directory or when talking to it.
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
    /// No live instance of the kind.
    #[error("no live {0} instance")]
    NoInstance(String),
    /// A gRPC server could not be started or failed.
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// A socket could not be used.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A call to another instance failed.
    #[error("{0}")]
    Status(#[from] tonic::Status),
}

/// Shorthand for results of this crate.
pub type Result<T, E = DirectoryError> = std::result::Result<T, E>;

impl From<DirectoryError> for tonic::Status {
    fn from(error: DirectoryError) -> Self {
        match error {
            DirectoryError::InvalidArgument { .. } => Self::invalid_argument(error.to_string()),
            DirectoryError::LeaseNotFound(_) => Self::not_found(error.to_string()),
            DirectoryError::NoInstance(_) => Self::unavailable(error.to_string()),
            DirectoryError::Transport(_) | DirectoryError::Io(_) => {
                Self::internal(error.to_string())
            }
            DirectoryError::Status(status) => status,
        }
    }
}

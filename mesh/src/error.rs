//! Errors of the mesh runtime (talking to the directory and to other members, serving
//! gRPC), and their gRPC status codes.

/// What can go wrong when a member serves, registers or calls another member.
#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    /// A request field is missing or malformed.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// The field path, e.g. `instance.address`.
        field: &'static str,
        /// What was expected.
        reason: String,
    },
    /// A gRPC server could not be started or failed.
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// A socket could not be used.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A call to another instance failed.
    #[error("{0}")]
    Status(#[from] tonic::Status),
    /// A token or token file is unusable: the reason names the file and line.
    #[error("{0}")]
    Credentials(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = MeshError> = std::result::Result<T, E>;

impl From<MeshError> for tonic::Status {
    fn from(error: MeshError) -> Self {
        match error {
            MeshError::InvalidArgument { .. } => Self::invalid_argument(error.to_string()),
            MeshError::Transport(_) | MeshError::Io(_) | MeshError::Credentials(_) => {
                Self::internal(error.to_string())
            }
            MeshError::Status(status) => status,
        }
    }
}

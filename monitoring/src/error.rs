//! The dashboard's error type and its one mapping into a gRPC status.

/// A result whose error is a [`MonitoringError`].
pub type Result<T, E = MonitoringError> = std::result::Result<T, E>;

/// Everything that can go wrong in the dashboard.
#[derive(Debug, thiserror::Error)]
pub enum MonitoringError {
    /// The configuration cannot work, e.g. a poll timeout longer than the poll interval.
    #[error("{field}: {reason}")]
    InvalidConfig {
        /// The configuration field, e.g. `poll_timeout`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A socket could not be bound or served.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Serving gRPC or joining the mesh failed.
    #[error("{0}")]
    Mesh(#[from] owlmesh_mesh::MeshError),
}

impl MonitoringError {
    /// A [`MonitoringError::InvalidConfig`] for `field`.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidConfig {
            field,
            reason: reason.into(),
        }
    }
}

impl From<MonitoringError> for tonic::Status {
    fn from(error: MonitoringError) -> Self {
        match error {
            MonitoringError::InvalidConfig { .. } => Self::invalid_argument(error.to_string()),
            MonitoringError::Io(_) => Self::internal(error.to_string()),
            MonitoringError::Mesh(error) => error.into(),
        }
    }
}

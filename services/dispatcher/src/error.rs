//! Errors of the dispatcher and their gRPC status codes.

use crate::frontier::FrontierError;
use owlmesh_job::SpecError;

/// What can go wrong in the dispatcher.
#[derive(Debug, thiserror::Error)]
pub enum DispatcherError {
    /// The job spec is not acceptable.
    #[error("{0}")]
    InvalidSpec(#[from] SpecError),
    /// A request field is missing or malformed.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// The field path.
        field: &'static str,
        /// What was expected.
        reason: String,
    },
    /// No job with that id.
    #[error("job {0} not found")]
    JobNotFound(String),
    /// The request does not fit the job's state (e.g. resuming a cancelled job).
    #[error("{0}")]
    WrongState(String),
    /// This dispatcher is a standby; work goes to the primary.
    #[error("standby: the primary dispatcher is {0}")]
    Standby(String),
    /// The frontier database failed.
    #[error("frontier: {0}")]
    Frontier(#[from] FrontierError),
    /// Joining the mesh or serving failed.
    #[error("{0}")]
    Mesh(#[from] owlmesh_mesh::MeshError),
}

/// Shorthand for results of this crate.
pub type Result<T, E = DispatcherError> = std::result::Result<T, E>;

impl From<DispatcherError> for tonic::Status {
    fn from(error: DispatcherError) -> Self {
        let message = error.to_string();
        match error {
            DispatcherError::InvalidSpec(_) | DispatcherError::InvalidArgument { .. } => {
                Self::invalid_argument(message)
            }
            DispatcherError::JobNotFound(_) => Self::not_found(message),
            DispatcherError::WrongState(_) | DispatcherError::Standby(_) => {
                Self::failed_precondition(message)
            }
            DispatcherError::Frontier(FrontierError::JobNotFound(_)) => Self::not_found(message),
            DispatcherError::Frontier(
                FrontierError::InvalidTransition { .. }
                | FrontierError::Finished { .. }
                | FrontierError::EpochInProgress(_),
            ) => Self::failed_precondition(message),
            DispatcherError::Frontier(FrontierError::InvalidSchedule(_)) => {
                Self::invalid_argument(message)
            }
            // The caller's field, named first, as for any bad argument.
            DispatcherError::Frontier(reused @ FrontierError::RequestIdReused { .. }) => {
                Self::already_exists(reused.to_string())
            }
            DispatcherError::Frontier(_) => Self::unavailable(message),
            DispatcherError::Mesh(_) => Self::internal(message),
        }
    }
}

//! What can go wrong in the frontier, and how it reads to a gRPC client.

use owlmesh_storage::Transient;

use super::model::JobState;

/// An error of the frontier store.
#[derive(Debug, thiserror::Error)]
pub enum FrontierError {
    /// The database failed a statement or could not be reached.
    #[error("frontier database: {0}")]
    Database(#[from] sqlx::Error),
    /// The embedded migrations could not bring the schema up to date.
    #[error("frontier migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// No job has this id.
    #[error("job not found: {0}")]
    JobNotFound(String),
    /// The job's state does not allow the change asked for.
    #[error("job {job} cannot go from {from} to {to}")]
    InvalidTransition {
        /// The job's id.
        job: String,
        /// Its state now.
        from: JobState,
        /// The state asked for.
        to: JobState,
    },
    /// A finished job (done, cancelled or failed) is not cancelled or failed after the fact.
    #[error("job {job} is {state} already: a finished job stays as it is")]
    Finished {
        /// The job's id.
        job: String,
        /// Its state now.
        state: JobState,
    },
    /// A new epoch starts only once the current one is done.
    #[error("job {0} has not finished its current epoch")]
    EpochInProgress(String),
    /// The spec's recrawl schedule cannot be read.
    #[error("invalid recrawl schedule: {0}")]
    InvalidSchedule(String),
    /// A state name that is none of the known ones.
    #[error("unknown state: {0}")]
    UnknownState(String),
    /// A stored job spec that does not decode: the row was changed outside the frontier.
    #[error("stored spec of job {job} does not decode: {source}")]
    CorruptSpec {
        /// The job's id.
        job: String,
        /// Why it does not decode.
        source: prost::DecodeError,
    },
    /// A request id already names a job created from another spec.
    #[error(
        "request_id: {request_id:?} already created job {job} from another spec; \
         use a fresh request id for a new job"
    )]
    RequestIdReused {
        /// The request id.
        request_id: String,
        /// The job it created.
        job: String,
    },
    /// A batch could not be encoded as JSON for the database.
    #[error("encoding a batch: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The frontier's result.
pub type Result<T, E = FrontierError> = std::result::Result<T, E>;

impl From<FrontierError> for tonic::Status {
    fn from(error: FrontierError) -> Self {
        let message = error.to_string();
        match error {
            FrontierError::JobNotFound(_) => Self::not_found(message),
            FrontierError::InvalidTransition { .. }
            | FrontierError::Finished { .. }
            | FrontierError::EpochInProgress(_) => Self::failed_precondition(message),
            FrontierError::InvalidSchedule(_) | FrontierError::UnknownState(_) => {
                Self::invalid_argument(message)
            }
            FrontierError::RequestIdReused { .. } => Self::already_exists(message),
            FrontierError::Database(ref database) => match owlmesh_storage::transient(database) {
                Some(Transient::Unavailable) => Self::unavailable(message),
                Some(Transient::Conflict) => Self::aborted(message),
                None => Self::internal(message),
            },
            FrontierError::Migration(_)
            | FrontierError::CorruptSpec { .. }
            | FrontierError::Encode(_) => Self::internal(message),
        }
    }
}

impl From<owlmesh_storage::StorageError> for FrontierError {
    fn from(error: owlmesh_storage::StorageError) -> Self {
        match error {
            owlmesh_storage::StorageError::Database(error) => Self::Database(error),
            owlmesh_storage::StorageError::Migration(error) => Self::Migration(error),
        }
    }
}

//! The scraper's errors, and their one mapping onto gRPC statuses.

/// What can go wrong outside a single fetch: a request (or the job spec in it) or a setting
/// that is unusable, an HTTP client that cannot be built, the mesh refusing us.
/// Fetch failures are [`crate::fetch::FetchError`]s instead, because they are outcomes to
/// report, not errors to propagate.
#[derive(Debug, thiserror::Error)]
pub enum ScraperError {
    /// The HTTP client could not be built.
    #[error("cannot build the http client: {0}")]
    HttpClient(String),
    /// A request field is missing or malformed.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// The field's path in the request, e.g. `spec.handlers[0].pattern`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting of [`crate::ScraperConfig`] is unusable.
    #[error("{field}: {reason}")]
    InvalidConfig {
        /// The setting, e.g. `slots`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Joining the mesh or serving gRPC failed.
    #[error("mesh: {0}")]
    Mesh(#[from] owlmesh_mesh::MeshError),
}

/// Results of this crate.
pub type Result<T, E = ScraperError> = std::result::Result<T, E>;

impl From<ScraperError> for tonic::Status {
    fn from(error: ScraperError) -> Self {
        match error {
            ScraperError::HttpClient(_)
            | ScraperError::InvalidConfig { .. }
            | ScraperError::Mesh(_) => tonic::Status::internal(error.to_string()),
            ScraperError::InvalidArgument { .. } => {
                tonic::Status::invalid_argument(error.to_string())
            }
        }
    }
}

//! The scraper's errors, and their one mapping onto gRPC statuses.

/// What can go wrong outside a single fetch: a job spec that does not compile, a request or
/// setting that is unusable, an HTTP client that cannot be built, the mesh refusing us.
/// Fetch failures are [`crate::fetch::FetchError`]s instead, because they are outcomes to
/// report, not errors to propagate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A handler's URL pattern is not a valid regular expression.
    #[error("invalid pattern {pattern:?} of handler {handler:?}: {reason}")]
    InvalidPattern {
        /// The handler's name.
        handler: String,
        /// The pattern as written.
        pattern: String,
        /// What the regex compiler said.
        reason: String,
    },
    /// A CSS selector does not parse.
    #[error("invalid css selector {selector:?} for {context}: {reason}")]
    InvalidSelector {
        /// Where the selector was used, e.g. `field price of handler product`.
        context: String,
        /// The selector as written.
        selector: String,
        /// What the selector parser said.
        reason: String,
    },
    /// A follow rule's allow or deny expression is not a valid regular expression.
    #[error("invalid follow rule {pattern:?}: {reason}")]
    InvalidFollowRule {
        /// The expression as written.
        pattern: String,
        /// What the regex compiler said.
        reason: String,
    },
    /// An allowed host is empty or not a host or host:port.
    #[error("invalid allowed host {host:?}")]
    InvalidHost {
        /// The host as written.
        host: String,
    },
    /// A seed is not an absolute http(s) URL.
    #[error("invalid seed url {url:?}: {reason}")]
    InvalidSeed {
        /// The seed as written.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
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
    Mesh(#[from] owlmesh_directory::DirectoryError),
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        match error {
            Error::HttpClient(_) | Error::InvalidConfig { .. } | Error::Mesh(_) => {
                tonic::Status::internal(error.to_string())
            }
            Error::InvalidPattern { .. }
            | Error::InvalidSelector { .. }
            | Error::InvalidFollowRule { .. }
            | Error::InvalidHost { .. }
            | Error::InvalidSeed { .. }
            | Error::InvalidArgument { .. } => tonic::Status::invalid_argument(error.to_string()),
        }
    }
}

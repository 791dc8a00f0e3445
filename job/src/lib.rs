//! The owlmesh job model: a TOML job file read into the proto [`JobSpec`], its defaults, its
//! validation, and the one compiled form ([`CompiledJob`]) that dispatcher and scrapers both
//! decide by; with the vocabulary they share: canonical URLs ([`canonical`]), the
//! [`HostKey`] every host is known by, document types, the recrawl schedule and the
//! archive's document key.
//!
//! A job submitted over gRPC never saw a file, so everything past reading TOML works on the
//! proto message alone: `SubmitJob` calls [`validated`], the CLI calls [`parse_job_file`], and
//! both end up with the same effective spec (defaults filled in) and the same checks.

pub mod canonical;
mod check;
mod defaults;
mod documents;
mod file;
mod host;
mod location;
mod path;
mod rules;
mod selector_depth;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

pub use owlmesh_proto::v1::JobSpec;

pub use canonical::{CanonicalError, CanonicalUrl, canonicalize, canonicalize_url};
pub use check::{
    ALLOWED_HOSTS_LIMIT, CONCURRENCY_PER_HOST_LIMIT, DELAY_MS_LIMIT, DEPTH_LIMIT,
    DOCUMENT_TYPE_LENGTH_LIMIT, FIELDS_LIMIT, HANDLERS_LIMIT, HOST_LENGTH_LIMIT, NAME_LENGTH_LIMIT,
    PAGES_LIMIT, PATTERN_LENGTH_LIMIT, PATTERNS_LIMIT, REGEX_DFA_SIZE_LIMIT, REGEX_SET_SIZE_LIMIT,
    REGEX_SIZE_LIMIT, RETRIES_LIMIT, SEED_LENGTH_LIMIT, SEEDS_LIMIT, SELECTOR_DEPTH_LIMIT,
    SELECTOR_LENGTH_LIMIT, SPEC_BYTES_LIMIT, USER_AGENT_LENGTH_LIMIT,
};
pub use defaults::{
    DEFAULT_CONCURRENCY_PER_HOST, DEFAULT_FOLLOW_SELECTOR, DEFAULT_MAX_RETRIES,
    DEFAULT_OBEY_ROBOTS, DEFAULT_USER_AGENT, with_defaults,
};
pub use documents::{DocumentTypes, media_type};
pub use host::{AllowedHost, AllowedHosts, HostKey, is_web_url};
pub use rules::{
    CompiledField, CompiledHandler, CompiledJob, MAX_LINK_BYTES, MAX_LINKS_PER_PAGE, Recrawl,
};

/// Why a job spec was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The job file could not be read.
    #[error("cannot read job file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The job file is not TOML, or not TOML of the job file's shape.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The spec is well formed but some fields are wrong.
    #[error(transparent)]
    Invalid(#[from] InvalidSpec),
}

/// A job file that is not TOML of the expected shape, with where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The file name (or other origin) the text came from.
    pub origin: String,
    /// 1-based line of the problem, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the problem, when known.
    pub column: Option<usize>,
    /// The key path at the problem, e.g. `politeness.delay_ms`, when known.
    pub key: Option<String>,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(column) = self.column {
            write!(f, ":{column}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ParseError {}

/// Every field error found in one spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSpec {
    /// The file the spec came from; `None` for a spec that came over gRPC.
    pub origin: Option<String>,
    /// One entry per problem, in field order.
    pub errors: Vec<FieldError>,
}

impl fmt::Display for InvalidSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(origin) => write!(f, "invalid job spec in {origin}:")?,
            None => f.write_str("invalid job spec:")?,
        }
        for error in &self.errors {
            write!(f, "\n  {error}")?;
            if let Some(line) = error.line {
                write!(f, " (line {line})")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for InvalidSpec {}

/// One field that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field path, e.g. `handlers[0].fields.price.selector`; empty for the whole spec
    /// (its size).
    pub field: String,
    /// What is wrong and what was expected.
    pub reason: String,
    /// The line of the job file the field is on, when the spec came from a file.
    pub line: Option<usize>,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            return f.write_str(&self.reason);
        }
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// The key that picks a document's archiver shard: its job and canonical URL (events of a
/// whole job have an empty URL). Re-scrapes of one URL meet in one shard, so change
/// detection and dedup stay local to it.
pub fn document_key(job_id: &str, url: &str) -> String {
    format!("{job_id} {url}")
}

/// Reads, parses and validates a job file; the spec has its defaults filled in.
pub fn parse_job_file(path: &Path) -> Result<JobSpec, SpecError> {
    let source = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_job_toml(&source, &path.display().to_string())
}

/// Parses and validates a job file's text; `origin` names it in errors (usually the path).
///
/// The spec returned has its defaults filled in: it is the effective spec to store.
pub fn parse_job_toml(source: &str, origin: &str) -> Result<JobSpec, SpecError> {
    let job_file =
        file::parse(source).map_err(|error| location::parse_error(source, origin, &error))?;
    let (spec, mut issues) = job_file.into_spec();
    let spec = with_defaults(spec);
    if let Err(found) = check::compile(&spec) {
        issues.extend(found);
    }
    if issues.is_empty() {
        return Ok(spec);
    }
    let errors = location::field_errors(source, issues);
    Err(InvalidSpec {
        origin: Some(origin.to_owned()),
        errors,
    }
    .into())
}

/// Checks a spec (from a file or from gRPC), reporting every wrong field at once.
///
/// Defaults are applied before checking, so a spec that leaves fields empty is fine.
pub fn validate(spec: &JobSpec) -> Result<(), SpecError> {
    CompiledJob::compile(spec).map(drop)
}

/// Fills in defaults and validates: what `SubmitJob` stores.
pub fn validated(spec: JobSpec) -> Result<JobSpec, SpecError> {
    let spec = with_defaults(spec);
    validate(&spec)?;
    Ok(spec)
}

//! Command-line options: one clap-derive struct per subcommand, every field with a long
//! flag, an `OWLMESH_…` variable and a default, so a local run needs nothing filled in.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Where the directory listens unless told otherwise.
pub(crate) const DEFAULT_DIRECTORY_LISTEN: &str = owlmesh_directory::DEFAULT_DIRECTORY_ADDRESS;

/// owlmesh: a distributed, polite web-scraping mesh.
#[derive(Debug, Parser)]
#[command(name = "owlmesh", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) log: LogOptions,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the directory: registration, leases, membership, routing.
    Directory(DirectoryOptions),
}

/// How logs are written (always to stderr).
#[derive(Debug, Args)]
pub(crate) struct LogOptions {
    /// Log format.
    #[arg(long, global = true, env = "OWLMESH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub(crate) log_format: LogFormat,
    /// Log filter, e.g. "info" or "owlmesh_directory=debug".
    #[arg(long, global = true, env = "OWLMESH_LOG", default_value = "info")]
    pub(crate) log: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct DirectoryOptions {
    /// Address to serve gRPC on; port 0 picks a free port (the bound address is printed).
    #[arg(long, env = "OWLMESH_LISTEN", default_value = DEFAULT_DIRECTORY_LISTEN)]
    pub(crate) listen: SocketAddr,
    /// Lease TTL: an instance that stops heartbeating leaves the mesh after this long.
    #[arg(long, env = "OWLMESH_LEASE_TTL", default_value = "3s", value_parser = parse_duration)]
    pub(crate) lease_ttl: Duration,
}

/// Parses "500ms", "3s", "1m" and the like.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|error| format!("{error}"))?;
    if duration.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(duration)
}

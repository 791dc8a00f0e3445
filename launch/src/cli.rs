//! Command-line options: one clap-derive struct per subcommand, every field with a long
//! flag, an `OWLMESH_…` variable and a default, so a local run needs nothing filled in.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use owlmesh_archiver::Durability;
use owlmesh_egress::{EgressGuard, IpNet};

/// Where the directory listens unless told otherwise.
pub(crate) const DEFAULT_DIRECTORY_LISTEN: &str = owlmesh_mesh::DEFAULT_DIRECTORY_ADDRESS;

/// owlmesh: a distributed, polite web-scraping mesh.
#[derive(Debug, Parser)]
#[command(name = "owlmesh", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) log: LogOptions,
    #[command(flatten)]
    pub(crate) trace: crate::telemetry::TraceOptions,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the directory: registration, leases, membership, routing.
    Directory(DirectoryOptions),
    /// Run a dispatcher: the URL frontier, assignments, recrawls.
    Dispatcher(DispatcherOptions),
    /// Run a scraper: polite fetching and extraction of the hosts it owns.
    Scraper(ScraperOptions),
    /// Run an archiver: the event log and the result store.
    Archiver(ArchiverOptions),
    /// Run the dashboard: live queue depth and throughput, Prometheus metrics.
    Monitoring(crate::commands::monitoring::MonitoringOptions),
    /// Start the whole mesh on this machine: directory, dispatchers, scrapers, archivers and
    /// the dashboard, as child processes; Ctrl-C stops them all.
    Up(crate::commands::up::UpOptions),
    /// Submit, watch and steer jobs.
    Job(JobOptions),
    /// Export a job's data items or documents from every archiver.
    Export(ExportOptions),
    /// List the live instances of the mesh, as the directory sees them.
    Services(ClientOptions),
    /// Show which instance of KIND owns KEY (e.g. `route scraper example.com`).
    Route(RouteOptions),
    /// Fetch one page and print what a job's handlers extract, without archiving.
    Try(TryOptions),
}

impl Command {
    /// What the process is, for its `service.name` (owlmesh-KIND): a service's kind, `up`
    /// for the launcher, `cli` for the commands that talk to a running mesh.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Directory(_) => "directory",
            Self::Dispatcher(_) => "dispatcher",
            Self::Scraper(_) => "scraper",
            Self::Archiver(_) => "archiver",
            Self::Monitoring(_) => "monitoring",
            Self::Up(_) => "up",
            Self::Job(_) | Self::Export(_) | Self::Services(_) | Self::Route(_) | Self::Try(_) => {
                "cli"
            }
        }
    }

    /// The client options of a command that talks to a running mesh.
    pub(crate) fn client(&self) -> Option<&ClientOptions> {
        match self {
            Self::Job(options) => Some(&options.client),
            Self::Export(options) => Some(&options.client),
            Self::Services(options) => Some(options),
            Self::Route(options) => Some(&options.client),
            Self::Try(options) => Some(&options.client),
            Self::Directory(_)
            | Self::Dispatcher(_)
            | Self::Scraper(_)
            | Self::Archiver(_)
            | Self::Monitoring(_)
            | Self::Up(_) => None,
        }
    }

    /// The TLS options of a service or a command; `up` settles its own.
    pub(crate) fn tls(&self) -> Option<(&TlsOptions, TlsSide)> {
        let service = |options| Some((options, TlsSide::Service));
        match self {
            Self::Directory(options) => service(&options.tls),
            Self::Dispatcher(options) => service(&options.service.tls),
            Self::Scraper(options) => service(&options.service.tls),
            Self::Archiver(options) => service(&options.service.tls),
            Self::Monitoring(options) => service(&options.service.tls),
            Self::Up(_) => None,
            Self::Job(_) | Self::Export(_) | Self::Services(_) | Self::Route(_) | Self::Try(_) => {
                self.client().map(|client| (&client.tls, TlsSide::Command))
            }
        }
    }
}

/// Options of every command that talks to a running mesh.
#[derive(Debug, Args)]
pub(crate) struct ClientOptions {
    /// Directory address(es), comma-separated.
    #[arg(long, global = true, env = "OWLMESH_DIRECTORY", default_value = DEFAULT_DIRECTORY_LISTEN, value_delimiter = ',')]
    pub(crate) directory: Vec<String>,
    /// Machine-readable output: one JSON document on stdout.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) tokens: TokenOptions,
    #[command(flatten)]
    pub(crate) tls: TlsOptions,
}

/// TLS: a service's certificate, key and the CA its callers must be signed by; a
/// command's CA to trust and the certificate it presents. Without any, a command uses
/// `./owlmesh-data/tls/` when it exists (what `owlmesh up --tls` makes), else plain HTTP/2.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct TlsOptions {
    /// Certificate chain (PEM): a service serves with it; both services and commands
    /// present it to servers that require client certificates. Needs --tls-key.
    #[arg(long, global = true, env = "OWLMESH_TLS_CERT", value_name = "FILE")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, global = true, env = "OWLMESH_TLS_KEY", value_name = "FILE")]
    pub(crate) tls_key: Option<PathBuf>,
    /// CA certificate (PEM): servers' certificates must be signed by it, and a service
    /// given it requires every caller to present a certificate it signed (mutual TLS).
    #[arg(long, global = true, env = "OWLMESH_TLS_CA", value_name = "FILE")]
    pub(crate) tls_ca: Option<PathBuf>,
}

impl TlsOptions {
    /// Whether any of the three was given.
    pub(crate) fn is_empty(&self) -> bool {
        self.tls_cert.is_none() && self.tls_key.is_none() && self.tls_ca.is_none()
    }
}

/// Which end of connections a process's TLS options are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsSide {
    /// A service: serves, and calls the other members.
    Service,
    /// A command: only calls.
    Command,
}

/// The token a command sends. Without either flag, `./owlmesh-data/token` when it exists
/// (the file `owlmesh up` makes), else none.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct TokenOptions {
    /// Token file: one token per line, `TOKEN [ROLE,…]` (roles: member, operator, reader;
    /// none written means all). A service accepts every token of it; a command sends the
    /// first.
    #[arg(long, global = true, env = "OWLMESH_TOKEN_FILE", value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// A token with every role; it wins over a token file.
    #[arg(long, global = true, env = "OWLMESH_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
}

/// The tokens a service accepts (and the first, which it sends to the others).
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ServiceTokenOptions {
    #[command(flatten)]
    pub(crate) tokens: TokenOptions,
    /// Accept every call without a token. For a mesh that only trusted processes can reach.
    #[arg(long, env = "OWLMESH_INSECURE_NO_AUTH")]
    pub(crate) insecure_no_auth: bool,
}

#[derive(Debug, Args)]
pub(crate) struct JobOptions {
    #[command(flatten)]
    pub(crate) client: ClientOptions,
    #[command(subcommand)]
    pub(crate) command: JobCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum JobCommand {
    /// Submit a job file (TOML).
    Submit {
        /// The job file.
        file: PathBuf,
    },
    /// Progress of one job (or of every job).
    Status {
        /// The job's id.
        id: Option<String>,
        /// Keep watching, with a progress bar, until the crawl epoch ends.
        #[arg(long)]
        watch: bool,
    },
    /// Every job.
    List,
    /// Stop dispatching a job's URLs.
    Pause {
        /// The job's id.
        id: String,
    },
    /// Dispatch a paused job again.
    Resume {
        /// The job's id.
        id: String,
    },
    /// Stop a queued, running or paused job for good, or end the recrawls of a done one; a
    /// done job with no recrawl ahead, or a failed one, stays as it is.
    Cancel {
        /// The job's id.
        id: String,
    },
    /// Start a finished job's next crawl epoch now (a recrawl).
    Expedite {
        /// The job's id.
        id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

#[derive(Debug, Args)]
pub(crate) struct ExportOptions {
    #[command(flatten)]
    pub(crate) client: ClientOptions,
    /// The job's id.
    pub(crate) id: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub(crate) format: ExportFormat,
    /// Export the found documents ({"url","type","found_on"}) instead of data items.
    #[arg(long)]
    pub(crate) documents: bool,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct RouteOptions {
    #[command(flatten)]
    pub(crate) client: ClientOptions,
    /// The kind whose ring to ask, e.g. scraper or archiver.
    pub(crate) kind: String,
    /// The key, e.g. a host such as example.com or 127.0.0.2:8081.
    pub(crate) key: String,
}

#[derive(Debug, Args)]
pub(crate) struct TryOptions {
    #[command(flatten)]
    pub(crate) client: ClientOptions,
    /// The page to fetch.
    pub(crate) url: String,
    /// The job file whose handlers and rules apply.
    #[arg(long)]
    pub(crate) job: PathBuf,
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
    #[command(flatten)]
    pub(crate) auth: ServiceTokenOptions,
    #[command(flatten)]
    pub(crate) tls: TlsOptions,
}

/// Options every mesh service takes.
#[derive(Debug, Args)]
pub(crate) struct ServiceOptions {
    /// Address to serve gRPC on; port 0 picks a free port (the bound address is printed).
    #[arg(long, env = "OWLMESH_LISTEN", default_value = "127.0.0.1:0")]
    pub(crate) listen: SocketAddr,
    /// The address other hosts reach this service at, registered in the directory
    /// (default: the --listen address, which then may not be 0.0.0.0 or [::]); port 0
    /// stands for the port bound.
    #[arg(long, env = "OWLMESH_ADVERTISE", value_name = "HOST:PORT", value_parser = parse_advertise)]
    pub(crate) advertise: Option<String>,
    /// Directory address(es), comma-separated.
    #[arg(long, env = "OWLMESH_DIRECTORY", default_value = DEFAULT_DIRECTORY_LISTEN, value_delimiter = ',')]
    pub(crate) directory: Vec<String>,
    /// Instance id in the directory; default: the kind and the bound port, e.g. scraper-7801.
    #[arg(long, env = "OWLMESH_ID")]
    pub(crate) id: Option<String>,
    /// Data folder: SQLite files, JSON lines output, and the token file looked for when
    /// neither --token-file nor --token is given.
    #[arg(long, env = "OWLMESH_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub(crate) data_dir: PathBuf,
    #[command(flatten)]
    pub(crate) auth: ServiceTokenOptions,
    #[command(flatten)]
    pub(crate) tls: TlsOptions,
}

/// What a service that stores (a dispatcher, an archiver) promises of an acknowledged write.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct DurabilityOptions {
    /// What an acknowledged write survives: `process-crash` (a killed process, not a power
    /// loss: SQLite synchronous=NORMAL, files left to the page cache) or `power-loss`
    /// (SQLite synchronous=FULL, JSON-lines files flushed to disk before each
    /// acknowledgement). See docs/security.md.
    #[arg(long, env = "OWLMESH_DURABILITY", value_name = "LEVEL", default_value_t = Durability::default())]
    pub(crate) durability: Durability,
}

#[derive(Debug, Args)]
pub(crate) struct DispatcherOptions {
    #[command(flatten)]
    pub(crate) service: ServiceOptions,
    #[command(flatten)]
    pub(crate) durability: DurabilityOptions,
    /// Failover order: the live dispatcher with the lowest priority dispatches.
    #[arg(long, env = "OWLMESH_PRIORITY", default_value_t = 0)]
    pub(crate) priority: i32,
    /// Frontier database: a postgres:// URL, or SQLite (default: frontier.sqlite3 in the data folder).
    #[arg(long, env = "OWLMESH_DATABASE")]
    pub(crate) database: Option<String>,
    /// How long a scraper may hold an assignment before it goes back to the frontier.
    #[arg(long, env = "OWLMESH_LEASE", default_value = "60s", value_parser = parse_duration)]
    pub(crate) lease: Duration,
}

#[derive(Debug, Args)]
pub(crate) struct ScraperOptions {
    #[command(flatten)]
    pub(crate) service: ServiceOptions,
    /// Assignments held at once (queued locally or being fetched).
    #[arg(long, env = "OWLMESH_SLOTS", default_value_t = owlmesh_scraper::DEFAULT_SLOTS)]
    pub(crate) slots: u32,
    /// Time allowed to connect to a web server.
    #[arg(long, env = "OWLMESH_CONNECT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub(crate) connect_timeout: Duration,
    /// Time allowed between two reads of a response (a slow page fails after this).
    #[arg(long, env = "OWLMESH_READ_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub(crate) read_timeout: Duration,
    /// Time allowed for one whole request.
    #[arg(long, env = "OWLMESH_REQUEST_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub(crate) request_timeout: Duration,
    /// Largest body read, in bytes; a larger page fails as too large.
    #[arg(long, env = "OWLMESH_MAX_BODY_BYTES", default_value_t = owlmesh_scraper::fetch::DEFAULT_MAX_BODY_BYTES)]
    pub(crate) max_body_bytes: u64,
    /// Networks pages may be fetched from.
    #[command(flatten)]
    pub(crate) egress: EgressOptions,
}

/// Where outbound requests (pages, robots.txt, webhooks) may connect besides the public
/// internet. The `up` launcher hands its own to every scraper and archiver.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct EgressOptions {
    /// Allow connections into this network: a CIDR block or one address, repeatable or
    /// comma-separated. Loopback, private, link-local, unique-local, multicast, unspecified
    /// and cloud-metadata addresses are refused unless allowed here.
    #[arg(
        long = "allow-network",
        env = "OWLMESH_ALLOW_NETWORKS",
        value_name = "CIDR",
        value_delimiter = ',',
        value_parser = owlmesh_egress::parse_network
    )]
    pub(crate) allow_networks: Vec<IpNet>,
}

impl EgressOptions {
    /// The guard these options describe.
    pub(crate) fn guard(&self) -> EgressGuard {
        EgressGuard::allowing(self.allow_networks.iter().copied())
    }
}

#[derive(Debug, Args)]
pub(crate) struct ArchiverOptions {
    #[command(flatten)]
    pub(crate) service: ServiceOptions,
    #[command(flatten)]
    pub(crate) durability: DurabilityOptions,
    /// Networks webhooks may be delivered into.
    #[command(flatten)]
    pub(crate) egress: EgressOptions,
    /// Archive database: a postgres:// URL, or SQLite (default: archive.sqlite in the data folder).
    #[arg(long, env = "OWLMESH_DATABASE")]
    pub(crate) database: Option<String>,
    /// Events older than this are purged (data items are kept).
    #[arg(long, env = "OWLMESH_EVENT_RETENTION", default_value = "30days", value_parser = parse_duration)]
    pub(crate) event_retention: Duration,
    /// POST every new data item to this URL (repeat for several).
    #[arg(long = "webhook", env = "OWLMESH_WEBHOOKS", value_delimiter = ',')]
    pub(crate) webhooks: Vec<String>,
    /// Do not write <data-dir>/<job>.jsonl files.
    #[arg(long, env = "OWLMESH_NO_JSONL")]
    pub(crate) no_jsonl: bool,
}

/// The data folder unless told otherwise.
pub(crate) const DEFAULT_DATA_DIR: &str = "./owlmesh-data";

/// Parses `--advertise`: `host:port`, port 0 for the port bound.
fn parse_advertise(text: &str) -> Result<String, String> {
    owlmesh_mesh::check_advertise(text)?;
    Ok(text.to_owned())
}

/// Parses "500ms", "3s", "1m" and the like.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|error| format!("{error}"))?;
    if duration.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(duration)
}

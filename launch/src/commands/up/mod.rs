//! `owlmesh up`: the whole mesh on this machine, as child processes of this one: the
//! directory first, then dispatchers, archivers and scrapers, and the dashboard when this
//! build has one. With `--demo` it also serves a demo shop and crawls it.
//!
//! The children are the same `owlmesh` executable with a subcommand. Each prints where it
//! listens on stdout and logs to `<data-dir>/logs/<id>.log`; each knows this process's id and
//! leaves when it is gone, so no child outlives `owlmesh up`, however it ends.
//!
//! With `--tls` every child serves and calls over mutual TLS, with certificates of a
//! private CA that `up` keeps in `<data-dir>/tls/` (see [`certificates`]).

mod certificates;
mod child;
mod console;
mod demo;
mod plan;
mod supervisor;
mod verify;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use owlmesh_site::Site;
use tokio::net::TcpSocket;
use tokio::process::Command;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::certificates::MeshCertificates;
use self::child::Launcher;
use self::console::Console;
use self::demo::{DemoContext, DemoOutcome};
use self::plan::{Kind, MeshShape};
use self::supervisor::Supervisor;
use crate::cli::{
    DEFAULT_DATA_DIR, DEFAULT_DIRECTORY_LISTEN, DurabilityOptions, EgressOptions,
    ServiceTokenOptions,
};
use crate::demo::{DEFAULT_PRODUCTS, MAX_PRODUCTS, start_shop};
use crate::telemetry::TraceOptions;

/// How often the children are checked on.
const WATCH_PERIOD: Duration = Duration::from_millis(250);

/// Options of `owlmesh up`.
#[derive(Debug, Args)]
pub(crate) struct UpOptions {
    /// Where the directory listens.
    #[arg(
        long,
        env = "OWLMESH_DIRECTORY_LISTEN",
        default_value = "127.0.0.1:7700"
    )]
    pub(crate) directory_listen: SocketAddr,
    /// Where the dashboard listens.
    #[arg(
        long,
        env = "OWLMESH_DASHBOARD_LISTEN",
        default_value = "127.0.0.1:7780"
    )]
    pub(crate) dashboard_listen: SocketAddr,
    /// Dispatchers to start (priority 0, 1, …), sharing one frontier database.
    #[arg(long, env = "OWLMESH_DISPATCHERS", default_value_t = 2)]
    pub(crate) dispatchers: u32,
    /// Scrapers to start.
    #[arg(long, env = "OWLMESH_SCRAPERS", default_value_t = 3)]
    pub(crate) scrapers: u32,
    /// Archivers to start.
    #[arg(long, env = "OWLMESH_ARCHIVERS", default_value_t = 2)]
    pub(crate) archivers: u32,
    /// Data folder of every service.
    #[arg(long, env = "OWLMESH_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub(crate) data_dir: PathBuf,
    /// The tokens of the mesh; without one, `<data-dir>/token` (made if missing).
    #[command(flatten)]
    pub(crate) auth: ServiceTokenOptions,
    /// Networks the scrapers may fetch from and the archivers deliver webhooks into; the
    /// demo's own loopback addresses are added with `--demo`.
    #[command(flatten)]
    pub(crate) egress: EgressOptions,
    /// What the dispatchers and archivers promise of an acknowledged write.
    #[command(flatten)]
    pub(crate) durability: DurabilityOptions,
    /// The dispatchers' shared frontier in PostgreSQL: a postgres:// URL (default: SQLite,
    /// frontier.sqlite3 in the data folder).
    #[arg(long, env = "OWLMESH_DATABASE", value_name = "URL", value_parser = parse_postgres_url)]
    pub(crate) database: Option<String>,
    /// The archive in PostgreSQL: a postgres:// URL; archiver shard N keeps its tables in
    /// schema archive_N of that database, created if missing (default: SQLite,
    /// archive-N.sqlite in the data folder).
    #[arg(long, env = "OWLMESH_ARCHIVE_DATABASE", value_name = "URL", value_parser = parse_postgres_url)]
    pub(crate) archive_database: Option<String>,
    /// Serve and call over mutual TLS: a private CA and a certificate per service in
    /// <data-dir>/tls (the CA is kept across runs), and one that commands run from this
    /// folder use by themselves.
    #[arg(long)]
    pub(crate) tls: bool,
    /// Also serve the bundled demo website on loopback and crawl it.
    #[arg(long)]
    pub(crate) demo: bool,
    /// Products in the demo shop.
    #[arg(long, env = "OWLMESH_DEMO_PRODUCTS", default_value_t = DEFAULT_PRODUCTS, requires = "demo")]
    pub(crate) demo_products: usize,
    /// Stop the mesh once the demo crawl is done and checked: exit 0 if the archive holds
    /// exactly the shop's products, non-zero otherwise (for tests and CI).
    #[arg(long, requires = "demo")]
    pub(crate) exit_when_done: bool,
}

/// Starts the mesh and supervises it until Ctrl-C (or, with `--exit-when-done`, the end of
/// the demo crawl). The children export traces as `trace` says (see
/// [`TraceOptions::child_environment`]).
pub(crate) async fn run(options: UpOptions, trace: TraceOptions) -> anyhow::Result<()> {
    validate(&options)?;
    let shutdown = crate::shutdown::on_signal()?;
    let setting = Setting::prepare(&options).await?;
    let console = Console::new();
    let site = match options.demo {
        true => Some(Arc::new(start_shop(options.demo_products).await?)),
        false => None,
    };
    let mut environment = trace.child_environment();
    environment.extend(setting.tokens.child_environment());
    let launcher = Launcher::new(setting.executable.clone(), setting.data_dir.join("logs"))
        .with_environment(environment);
    let mut supervisor = Supervisor::new(launcher, console.clone());
    let result = run_mesh(&mut supervisor, &options, &setting, site.clone(), &shutdown).await;
    let stopping = match result {
        Ok(()) => "stopping the mesh",
        Err(_) => "stopping what started",
    };
    console.line(format!("{stopping}: scrapers first, the directory last"));
    let killed = supervisor.stop().await;
    // The demo shop serves until the mesh is stopped, then closes with its last handle.
    drop(site);
    result?;
    if !killed.is_empty() {
        bail!(
            "the mesh is stopped, but {} had to be killed",
            killed.join(", ")
        );
    }
    console.line("the mesh is stopped");
    Ok(())
}

/// What `owlmesh up` settles before it starts anything.
struct Setting {
    /// Absolute, with its `logs` folder created.
    data_dir: PathBuf,
    /// The `owlmesh` executable the children run.
    executable: PathBuf,
    /// The dashboard's `--help` text, when this build has a dashboard.
    dashboard: Option<String>,
    /// How the children prove who they are.
    tokens: MeshTokens,
    /// The certificates of `--tls`.
    certificates: Option<MeshCertificates>,
}

/// The mesh's tokens, settled before anything starts.
struct MeshTokens {
    /// `--token`, handed on as it is.
    given: Option<String>,
    /// The token file: `--token-file`, or `<data-dir>/token`, which `up` makes if missing.
    file: Option<PathBuf>,
    /// Whether `up` made the file just now.
    created: bool,
    /// `--insecure-no-auth`: the children check no token.
    insecure: bool,
    /// The token every child sends: the given one or the file's first.
    own: Option<String>,
}

impl MeshTokens {
    /// Reads or makes the tokens, and installs the one `up` itself sends (for the demo).
    fn settle(options: &ServiceTokenOptions, data_dir: &Path) -> anyhow::Result<Self> {
        let tokens = &options.tokens;
        let mut settled = Self {
            given: tokens.token.clone(),
            file: None,
            created: false,
            insecure: options.insecure_no_auth,
            own: None,
        };
        if settled.given.is_none() {
            let path = match &tokens.token_file {
                Some(path) => std::path::absolute(path)?,
                None => crate::identity::default_token_file(data_dir),
            };
            if tokens.token_file.is_none() && !options.insecure_no_auth && !path.exists() {
                owlmesh_mesh::auth::create_token_file(&path)?;
                settled.created = true;
            }
            settled.file = path.exists().then_some(path);
        }
        let file_options = crate::cli::TokenOptions {
            token_file: settled.file.clone(),
            token: settled.given.clone(),
        };
        let tokens = crate::identity::tokens(&file_options, data_dir)?;
        settled.own = tokens
            .as_ref()
            .map(|tokens| tokens.own().expose().to_owned());
        crate::identity::install_sending(tokens.as_ref());
        Ok(settled)
    }

    /// The dashboard's address with the token a browser brings once, `/?token=…`; `https`
    /// when the dashboard has a certificate.
    fn dashboard_link(&self, address: SocketAddr, tls: bool) -> String {
        let scheme = if tls { "https" } else { "http" };
        match (&self.own, self.insecure) {
            (Some(token), false) => format!("{scheme}://{address}/?token={token}"),
            _ => format!("{scheme}://{address}/"),
        }
    }

    /// The header grpcurl sends these tokens with, as a shell reads it.
    fn grpcurl_header(&self) -> Option<String> {
        match (&self.given, &self.file) {
            _ if self.insecure => None,
            (Some(_), _) => Some("authorization: Bearer $OWLMESH_TOKEN".to_owned()),
            (None, Some(file)) => Some(format!(
                "authorization: Bearer $(grep -v '^#' {} | head -1)",
                file.display()
            )),
            (None, None) => None,
        }
    }

    /// The variables that give every child the same tokens.
    fn child_environment(&self) -> Vec<(&'static str, String)> {
        let mut environment = Vec::new();
        if let Some(token) = &self.given {
            environment.push(("OWLMESH_TOKEN", token.clone()));
        }
        if let Some(file) = &self.file {
            environment.push(("OWLMESH_TOKEN_FILE", file.display().to_string()));
        }
        if self.insecure {
            environment.push(("OWLMESH_INSECURE_NO_AUTH", "true".to_owned()));
        }
        environment
    }

    /// What the console says about them.
    fn describe(&self) -> String {
        match (&self.given, &self.file) {
            _ if self.insecure => "tokens: none checked (--insecure-no-auth)".to_owned(),
            (Some(_), _) => "token: the one given with --token".to_owned(),
            (None, Some(file)) => format!(
                "token: {}{} (commands run from this folder use it; elsewhere give --token-file)",
                file.display(),
                if self.created { ", made now" } else { "" }
            ),
            (None, None) => "tokens: none".to_owned(),
        }
    }
}

impl Setting {
    /// Prepares the data folder and checks that the fixed addresses are free.
    async fn prepare(options: &UpOptions) -> anyhow::Result<Self> {
        let data_dir = prepare_data_dir(&options.data_dir)?;
        let tokens = MeshTokens::settle(&options.auth, &data_dir)?;
        let certificates = match options.tls {
            true => {
                let listen = [options.directory_listen, options.dashboard_listen];
                let (certificates, own) = MeshCertificates::prepare(&data_dir, &listen)?;
                owlmesh_mesh::tls::install(own);
                Some(certificates)
            }
            false => None,
        };
        ensure_free(options.directory_listen, "--directory-listen").await?;
        let executable = std::env::current_exe().context("cannot find the owlmesh executable")?;
        let dashboard = dashboard_help(&executable).await;
        if dashboard.is_some() {
            ensure_free(options.dashboard_listen, "--dashboard-listen").await?;
        }
        Ok(Self {
            data_dir,
            executable,
            dashboard,
            tokens,
            certificates,
        })
    }
}

/// Starts every child, then watches them (and runs the demo) until it is time to stop.
async fn run_mesh(
    supervisor: &mut Supervisor,
    options: &UpOptions,
    setting: &Setting,
    site: Option<Arc<Site>>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut allowed_networks = options.egress.allow_networks.clone();
    if let Some(site) = &site {
        allowed_networks.extend(crate::demo::networks(site));
    }
    let mesh = MeshShape {
        dispatchers: options.dispatchers,
        scrapers: options.scrapers,
        archivers: options.archivers,
        data_dir: setting.data_dir.clone(),
        allowed_networks,
        durability: options.durability.durability,
        frontier_database: options.database.clone(),
        archive_database: options.archive_database.clone(),
    };
    start_mesh(supervisor, options, &mesh, setting).await?;
    let console = supervisor.console().clone();
    print_table(&console, supervisor, setting, &mesh);
    let demo = site.map(|site| spawn_demo(site, supervisor, options, &setting.data_dir, &console));
    supervise(supervisor, demo, shutdown, options, &console).await
}

/// Parses `--database` and `--archive-database`: only PostgreSQL, SQLite being the default.
fn parse_postgres_url(text: &str) -> Result<String, String> {
    let not_postgres = || {
        format!(
            "{text:?} is not a postgres:// URL (leave the flag out for SQLite in the data folder)"
        )
    };
    let url = url::Url::parse(text).map_err(|_| not_postgres())?;
    match url.scheme() {
        "postgres" | "postgresql" if url.has_host() => Ok(text.to_owned()),
        _ => Err(not_postgres()),
    }
}

/// Checks the options that clap cannot.
fn validate(options: &UpOptions) -> anyhow::Result<()> {
    if options.demo {
        let counts = [
            ("--dispatchers", options.dispatchers),
            ("--scrapers", options.scrapers),
            ("--archivers", options.archivers),
        ];
        if let Some((flag, _)) = counts.iter().find(|(_, count)| *count == 0) {
            bail!("{flag} must be at least 1 for the demo to crawl");
        }
    }
    if !(1..=MAX_PRODUCTS).contains(&options.demo_products) {
        bail!("--demo-products must be between 1 and {MAX_PRODUCTS}");
    }
    Ok(())
}

/// Creates the data folder and its `logs` folder; returns the folder as an absolute path.
fn prepare_data_dir(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let data_dir = std::path::absolute(data_dir)
        .with_context(|| format!("cannot resolve the data folder {}", data_dir.display()))?;
    let logs = data_dir.join("logs");
    std::fs::create_dir_all(&logs)
        .with_context(|| format!("cannot create the data folder {}", logs.display()))?;
    Ok(data_dir)
}

/// Fails with one line naming the address when something already listens there.
///
/// The child would fail too, but only after the rest of `up` started; asking first gives
/// the clearest message. `SO_REUSEADDR`, as the services set it, so a port that only has
/// closed connections lingering (TIME_WAIT) counts as free.
async fn ensure_free(address: SocketAddr, flag: &str) -> anyhow::Result<()> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    let bound = socket.bind(address).and_then(|()| socket.listen(1));
    match bound {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => bail!(
            "{address} is already in use (is another mesh running? stop it, or choose another address with {flag})"
        ),
        Err(error) => bail!("cannot listen on {address}: {error}"),
    }
}

/// The dashboard's `--help` text, if this build has a `monitoring` subcommand.
async fn dashboard_help(executable: &Path) -> Option<String> {
    let output = Command::new(executable)
        .args(["monitoring", "--help"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The directory, then the services pointed at it, then the dashboard; each with its
/// certificate under `--tls`.
async fn start_mesh(
    supervisor: &mut Supervisor,
    options: &UpOptions,
    mesh: &MeshShape,
    setting: &Setting,
) -> anyhow::Result<()> {
    let with_certificates = |mut specs: Vec<plan::ChildSpec>| -> anyhow::Result<_> {
        if let Some(certificates) = &setting.certificates {
            certificates.attach(&mut specs)?;
        }
        Ok(specs)
    };
    supervisor
        .start(with_certificates(vec![plan::directory(
            options.directory_listen,
        )])?)
        .await?;
    let directory = supervisor
        .address_of(Kind::Directory)
        .context("the directory did not start")?;
    let directory = plan::dialable(directory);
    supervisor
        .start(with_certificates(plan::services(mesh, directory))?)
        .await?;
    if let Some(help) = setting.dashboard.as_deref() {
        let spec = plan::monitoring(options.dashboard_listen, directory, &mesh.data_dir, help);
        // A dashboard of a build without TLS flags still serves the page, over HTTP.
        let spec = match help.contains("--tls-cert") {
            true => with_certificates(vec![spec])?,
            false => vec![spec],
        };
        // The mesh crawls without its dashboard: say why it is missing and carry on.
        if let Err(error) = supervisor.start(spec).await {
            supervisor
                .console()
                .line(format!("the dashboard did not start: {error:#}"));
        }
    }
    Ok(())
}

/// Where everything listens, where the logs go, the dashboard's URL, and how to call the
/// mesh.
fn print_table(console: &Console, supervisor: &Supervisor, setting: &Setting, mesh: &MeshShape) {
    let (data_dir, tokens) = (&setting.data_dir, &setting.tokens);
    let dashboard = setting.dashboard.is_some();
    let listings = supervisor.listings();
    console.line(format!(
        "owlmesh is up: {} processes on this machine, data in {}",
        listings.len(),
        data_dir.display()
    ));
    console.line(format!(
        "logs (each child's stderr) in {}",
        supervisor.log_path("<id>").display()
    ));
    for line in mesh.storage() {
        console.line(line);
    }
    console.line(format!("  {:<11} {:<14} {}", "KIND", "ID", "LISTENS ON"));
    for listing in &listings {
        console.line(format!(
            "  {:<11} {:<14} {}",
            listing.kind.name(),
            listing.id,
            listing.address
        ));
    }
    match supervisor.address_of(Kind::Monitoring) {
        Some(address) => {
            let https = setting.certificates.is_some()
                && setting
                    .dashboard
                    .as_deref()
                    .is_some_and(|help| help.contains("--tls-cert"));
            console.line(format!(
                "dashboard: {}",
                tokens.dashboard_link(address, https)
            ));
        }
        None if dashboard => console.line("dashboard: not running (see above)"),
        None => console.line("dashboard: not available in this build (no `owlmesh monitoring`)"),
    }
    let directory = supervisor.address_of(Kind::Directory);
    if let Some(directory) = directory.filter(|d| d.to_string() != DEFAULT_DIRECTORY_LISTEN) {
        console.line(format!(
            "talk to it with --directory {directory} (or OWLMESH_DIRECTORY={directory})"
        ));
    }
    console.line(tokens.describe());
    match (&setting.certificates, directory) {
        (Some(certificates), Some(directory)) => {
            let header = tokens.grpcurl_header();
            for line in certificates.describe(directory, header.as_deref()) {
                console.line(line);
            }
        }
        _ => {
            let leftover = data_dir.join(crate::identity::TLS_FOLDER);
            if leftover.join(crate::identity::CA_CERTIFICATE_FILE).exists() {
                console.line(format!(
                    "note: {} holds certificates of an earlier `owlmesh up --tls`; commands run \
                     from this folder would use TLS with this mesh, which has none: start with \
                     --tls, or remove that folder",
                    leftover.display()
                ));
            }
        }
    }
    console.line("press Ctrl-C to stop the mesh");
}

fn spawn_demo(
    site: Arc<Site>,
    supervisor: &Supervisor,
    options: &UpOptions,
    data_dir: &Path,
    console: &Console,
) -> JoinHandle<anyhow::Result<DemoOutcome>> {
    let directory = supervisor
        .address_of(Kind::Directory)
        .unwrap_or(options.directory_listen);
    let context = DemoContext {
        site,
        directory,
        default_directory: directory.to_string() == DEFAULT_DIRECTORY_LISTEN,
        data_dir: data_dir.to_owned(),
        started: [
            ("dispatcher", supervisor.count(Kind::Dispatcher)),
            ("scraper", supervisor.count(Kind::Scraper)),
            ("archiver", supervisor.count(Kind::Archiver)),
        ],
        console: console.clone(),
    };
    tokio::spawn(demo::run(context))
}

/// Watches the children until a signal, or until the demo is over when `--exit-when-done`
/// asks to stop then.
async fn supervise(
    supervisor: &mut Supervisor,
    mut demo: Option<JoinHandle<anyhow::Result<DemoOutcome>>>,
    shutdown: &CancellationToken,
    options: &UpOptions,
    console: &Console,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(WATCH_PERIOD);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => {
                if let Some(demo) = demo.take() {
                    demo.abort();
                }
                console.end_progress();
                return Ok(());
            }
            joined = async { demo.as_mut().expect("polled only while running").await }, if demo.is_some() => {
                demo = None;
                let outcome = joined.context("the demo stopped unexpectedly").and_then(|result| result);
                if options.exit_when_done {
                    return demo_verdict(outcome);
                }
                match outcome {
                    Ok(_) => console.line("the mesh keeps running: press Ctrl-C to stop it"),
                    Err(error) => console.line(format!("demo: {error:#} (the mesh keeps running)")),
                }
            }
            _ = tick.tick() => supervisor.watch(shutdown).await,
        }
    }
}

/// `--exit-when-done`: success only when the archive holds exactly the shop's products.
fn demo_verdict(outcome: anyhow::Result<DemoOutcome>) -> anyhow::Result<()> {
    match outcome {
        Ok(DemoOutcome { verified: true }) => Ok(()),
        Ok(DemoOutcome { verified: false }) => {
            bail!("the demo's archive does not hold exactly the shop's products")
        }
        Err(error) => Err(error.context("the demo did not finish")),
    }
}

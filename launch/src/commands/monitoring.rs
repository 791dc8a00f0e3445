//! `owlmesh monitoring`: runs the dashboard.

use crate::output::outln;
use std::time::Duration;

use clap::Args;
use owlmesh_monitoring::MonitoringConfig;
use tracing::info;

use crate::cli::{ServiceOptions, parse_duration};

/// What `--listen` means for the dashboard.
const LISTEN_HELP: &str = "Address to serve the dashboard (HTTP, or HTTPS with --tls-cert) on; port 0 picks a free port (the bound address is printed). gRPC is served on a second, free port of the same host";

/// Options of `owlmesh monitoring`.
#[derive(Debug, Args)]
// The shared `--listen` is the dashboard's HTTP address here; gRPC takes a second port.
#[command(mut_arg("listen", |arg| arg.help(LISTEN_HELP)))]
pub(crate) struct MonitoringOptions {
    #[command(flatten)]
    pub(crate) service: ServiceOptions,
    /// How often every instance's stats are polled.
    #[arg(long, env = "OWLMESH_POLL_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub(crate) poll_interval: Duration,
    /// Time allowed for one instance's answer; at most the poll interval.
    #[arg(long, env = "OWLMESH_POLL_TIMEOUT", default_value = "800ms", value_parser = parse_duration)]
    pub(crate) poll_timeout: Duration,
    /// How long an instance that is still listed may go unanswered before it shows as gone.
    #[arg(long, env = "OWLMESH_GONE_AFTER", default_value = "3s", value_parser = parse_duration)]
    pub(crate) gone_after: Duration,
    /// A name the page may be opened by (its `Host`), besides IP addresses and `localhost`;
    /// repeatable. Other names are refused, so a page elsewhere cannot reach the dashboard
    /// by pointing its own name at this machine.
    #[arg(
        long = "allow-host",
        env = "OWLMESH_ALLOW_HOSTS",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub(crate) allow_hosts: Vec<String>,
}

/// Serves the dashboard until SIGINT/SIGTERM.
pub(crate) async fn run(options: MonitoringOptions) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signal()?;
    let service = options.service;
    crate::identity::install_for_service(&service.auth, &service.data_dir)?;
    super::check_dialable(service.listen, service.advertise.as_deref())?;
    let listener = super::bind("monitoring", service.listen).await?;
    let scheme = match owlmesh_mesh::tls::setting().server {
        Some(_) => "https",
        None => "http",
    };
    outln!("dashboard: {scheme}://{}/", listener.local_addr()?)?;
    let config = MonitoringConfig {
        id: super::instance_id("monitoring", service.id, &listener),
        directories: service.directory,
        advertise: service.advertise,
        poll_interval: options.poll_interval,
        poll_timeout: options.poll_timeout,
        gone_after: options.gone_after,
        allowed_hosts: options.allow_hosts,
        ..MonitoringConfig::default()
    };
    config.validate()?;
    info!(?config, "starting monitoring");
    owlmesh_monitoring::serve(listener, config, shutdown).await?;
    Ok(())
}

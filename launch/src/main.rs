//! `owlmesh`: runs each service of the mesh, the whole mesh, and talks to a running mesh.

mod cli;
mod commands;
mod demo;
mod identity;
mod logging;
mod mesh;
mod output;
mod shutdown;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// mimalloc rather than the system allocator: the mesh allocates and frees many short-lived
/// buffers (page bodies, protobuf messages, SQL rows) from several threads, which glibc's
/// malloc answers with lock traffic and heap consolidation that showed up high in profiles.
/// Built without transparent huge pages (`no_thp`): with them every process's heap grew in
/// 2 MiB steps, doubling the mesh's resident memory and spending CPU zeroing the pages.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Inside the runtime: the trace exporter's gRPC channel lives there.
    let exporter =
        match runtime.block_on(async { logging::init(&cli.log, &cli.trace, cli.command.kind()) }) {
            Ok(exporter) => exporter,
            Err(error) => {
                eprintln!("error: {error:#}");
                return ExitCode::FAILURE;
            }
        };
    let result = runtime.block_on(run(cli.command, cli.trace));
    if let Some(exporter) = exporter {
        exporter.shutdown();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Stdout's reader has gone (`owlmesh job list | head -1`): it has what it wanted.
        Err(error) if output::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, trace: telemetry::TraceOptions) -> anyhow::Result<()> {
    if let Some(client) = command.client() {
        identity::install_for_client(&client.tokens)?;
    }
    if let Some((options, side)) = command.tls() {
        let setting = identity::install_tls(options, side)?;
        if side == cli::TlsSide::Service {
            tracing::info!(?setting, "tls");
        }
    }
    match command {
        Command::Directory(options) => commands::directory::run(options).await,
        Command::Dispatcher(options) => commands::dispatcher::run(options).await,
        Command::Scraper(options) => commands::scraper::run(options).await,
        Command::Archiver(options) => commands::archiver::run(options).await,
        Command::Monitoring(options) => commands::monitoring::run(options).await,
        Command::Up(options) => commands::up::run(options, trace).await,
        Command::Job(options) => commands::job::run(options).await,
        Command::Export(options) => commands::export::run(options).await,
        Command::Services(options) => commands::services::services(options).await,
        Command::Route(options) => commands::services::route(options).await,
        Command::Try(options) => commands::try_page::run(options).await,
    }
}

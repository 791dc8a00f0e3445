//! `owlmesh`: runs each service of the mesh, the whole mesh, and talks to a running mesh.

mod cli;
mod commands;
mod demo;
mod logging;
mod mesh;
mod shutdown;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// mimalloc rather than the system allocator: the mesh allocates and frees many short-lived
/// buffers (page bodies, protobuf messages, SQL rows) from several threads, which glibc's
/// malloc answers with lock traffic and heap consolidation that showed up high in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(&cli.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Directory(options) => commands::directory::run(options).await,
        Command::Dispatcher(options) => commands::dispatcher::run(options).await,
        Command::Scraper(options) => commands::scraper::run(options).await,
        Command::Archiver(options) => commands::archiver::run(options).await,
        Command::Monitoring(options) => commands::monitoring::run(options).await,
        Command::Up(options) => commands::up::run(options).await,
        Command::Job(options) => commands::job::run(options).await,
        Command::Export(options) => commands::export::run(options).await,
        Command::Services(options) => commands::services::services(options).await,
        Command::Route(options) => commands::services::route(options).await,
        Command::Try(options) => commands::try_page::run(options).await,
    }
}

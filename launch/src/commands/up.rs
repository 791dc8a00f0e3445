//! `owlmesh up`: the whole mesh on this machine, as child processes.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::cli::DEFAULT_DATA_DIR;

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
    /// Also serve the bundled demo website on loopback and crawl it.
    #[arg(long)]
    pub(crate) demo: bool,
}

/// Starts the mesh and supervises it until Ctrl-C.
pub(crate) async fn run(options: UpOptions) -> anyhow::Result<()> {
    anyhow::bail!("owlmesh up is not available yet ({options:?})")
}

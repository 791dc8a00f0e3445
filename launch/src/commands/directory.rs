//! `owlmesh directory`: runs the directory service.

use owlmesh_directory::DirectoryConfig;
use tracing::info;

use crate::cli::DirectoryOptions;

/// Serves the directory until SIGINT/SIGTERM.
pub(crate) async fn run(options: DirectoryOptions) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signal()?;
    let data_dir = std::path::Path::new(crate::cli::DEFAULT_DATA_DIR);
    crate::identity::install_for_service(&options.auth, data_dir)?;
    let listener = super::bind("directory", options.listen).await?;
    let config = DirectoryConfig {
        lease_ttl: options.lease_ttl,
    };
    info!(?config, "starting directory");
    owlmesh_directory::serve(listener, config, shutdown).await?;
    Ok(())
}

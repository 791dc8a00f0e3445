//! `owlmesh dispatcher`: runs a dispatcher.

use owlmesh_dispatcher::{DispatcherConfig, default_database_url};
use tracing::info;

use crate::cli::DispatcherOptions;

/// Serves a dispatcher until SIGINT/SIGTERM.
pub(crate) async fn run(options: DispatcherOptions) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signal()?;
    let service = options.service;
    crate::identity::install_for_service(&service.auth, &service.data_dir)?;
    super::check_dialable(service.listen, service.advertise.as_deref())?;
    let listener = super::bind("dispatcher", service.listen).await?;
    let id = super::instance_id("dispatcher", service.id, &listener);
    let mut config = DispatcherConfig::new(id, &service.data_dir);
    config.priority = options.priority;
    config.directories = service.directory;
    config.advertise = service.advertise;
    config.database_url = options
        .database
        .unwrap_or_else(|| default_database_url(&service.data_dir));
    config.lease = options.lease;
    config.durability = options.durability.durability;
    info!(?config, "starting dispatcher");
    owlmesh_dispatcher::serve(listener, config, shutdown).await?;
    Ok(())
}

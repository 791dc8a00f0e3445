//! `owlmesh archiver`: runs an archiver shard.

use owlmesh_archiver::{ArchiveConfig, ArchiverConfig};
use tracing::info;

use crate::cli::ArchiverOptions;

/// Serves an archiver until SIGINT/SIGTERM.
pub(crate) async fn run(options: ArchiverOptions) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signal()?;
    let service = options.service;
    crate::identity::install_for_service(&service.auth, &service.data_dir)?;
    super::check_dialable(service.listen, service.advertise.as_deref())?;
    let listener = super::bind("archiver", service.listen).await?;
    let id = super::instance_id("archiver", service.id, &listener);
    let mut archive = ArchiveConfig::with_data_dir(&service.data_dir);
    archive.database_url = options.database;
    archive.event_retention = Some(options.event_retention);
    archive.webhooks.urls = options.webhooks;
    archive.webhooks.egress = options.egress.guard();
    archive.jsonl_files = !options.no_jsonl;
    archive.durability = options.durability.durability;
    archive.validate()?;
    let config = ArchiverConfig {
        id,
        directories: service.directory,
        advertise: service.advertise,
        archive,
    };
    info!(?config, "starting archiver");
    owlmesh_archiver::serve(listener, config, shutdown).await?;
    Ok(())
}

//! `owlmesh scraper`: runs a scraper.

use owlmesh_scraper::ScraperConfig;
use tracing::info;

use crate::cli::ScraperOptions;

/// Serves a scraper until SIGINT/SIGTERM.
pub(crate) async fn run(options: ScraperOptions) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signal()?;
    let service = options.service;
    crate::identity::install_for_service(&service.auth, &service.data_dir)?;
    super::check_dialable(service.listen, service.advertise.as_deref())?;
    let listener = super::bind("scraper", service.listen).await?;
    let mut config = ScraperConfig::new(super::instance_id("scraper", service.id, &listener));
    config.directories = service.directory;
    config.advertise = service.advertise;
    config.slots = options.slots;
    config.fetch.connect_timeout = options.connect_timeout;
    config.fetch.read_timeout = options.read_timeout;
    config.fetch.request_timeout = options.request_timeout;
    config.fetch.max_body_bytes = options.max_body_bytes;
    config.fetch.egress = options.egress.guard();
    info!(?config, "starting scraper");
    owlmesh_scraper::serve(listener, config, shutdown).await?;
    Ok(())
}

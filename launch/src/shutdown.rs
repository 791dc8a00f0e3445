//! One cancellation token for the whole process: the first SIGINT or SIGTERM starts a
//! graceful shutdown, a second one exits at once.

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How long a graceful shutdown may take before the process exits anyway.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A token cancelled on the first SIGINT/SIGTERM; the second exits the process.
pub(crate) fn on_signal() -> anyhow::Result<CancellationToken> {
    let token = CancellationToken::new();
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        info!("shutting down (signal again to force)");
        cancel.cancel();
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
            _ = tokio::time::sleep(DRAIN_TIMEOUT) => warn!("shutdown took too long"),
        }
        std::process::exit(130);
    });
    Ok(token)
}

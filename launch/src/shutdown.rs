//! One cancellation token for the whole process: the first SIGINT or SIGTERM starts a
//! graceful shutdown, a second one exits at once.

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How long a graceful shutdown may take before the process exits anyway.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The variable `owlmesh up` sets in its children: its own process id.
pub(crate) const PARENT_PID_VARIABLE: &str = "OWLMESH_PARENT_PID";

/// How often a child of `owlmesh up` checks that its parent still lives.
const PARENT_CHECK_PERIOD: Duration = Duration::from_millis(250);

/// A token cancelled on the first SIGINT/SIGTERM (the second exits the process), or when the
/// `owlmesh up` that started this process is gone, however it died.
pub(crate) fn on_signal() -> anyhow::Result<CancellationToken> {
    let token = CancellationToken::new();
    if let Some(parent) = std::env::var(PARENT_PID_VARIABLE)
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok())
    {
        tokio::spawn(leave_with_parent(parent, token.clone()));
    }
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

/// Cancels `token` once this process is no longer the child of `parent` (it was re-parented
/// because `owlmesh up` died, even by SIGKILL).
async fn leave_with_parent(parent: u32, token: CancellationToken) {
    let mut tick = tokio::time::interval(PARENT_CHECK_PERIOD);
    loop {
        tick.tick().await;
        if std::os::unix::process::parent_id() != parent {
            warn!(parent, "owlmesh up is gone: shutting down");
            token.cancel();
            return;
        }
    }
}

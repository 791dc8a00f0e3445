//! Event retention: a task that periodically deletes events older than the configured age.
//! Data items and documents are never purged.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::store::ArchiveStore;
use crate::{ArchiverStats, Counter};

/// When and what to purge.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetentionPolicy {
    /// Events that happened longer ago than this are deleted.
    pub max_age: Duration,
    /// The time between two purges; the first runs at once.
    pub interval: Duration,
}

/// Purges old events every `policy.interval` until `shutdown` is cancelled. A failed purge is
/// logged and retried at the next tick.
pub(crate) async fn purge_periodically(
    store: ArchiveStore,
    policy: RetentionPolicy,
    stats: Arc<ArchiverStats>,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(policy.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match store.purge_events_older_than(policy.max_age).await {
            Ok(0) => {}
            Ok(purged) => {
                stats.add(Counter::EventsPurged, purged);
                tracing::info!(purged, "purged old events");
            }
            Err(error) => tracing::warn!(%error, "event purge failed"),
        }
    }
}

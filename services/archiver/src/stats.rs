//! The archiver's counters since start, as `GetStats` reports them.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the archiver's work since start; read with [`ArchiverStats::snapshot`].
#[derive(Debug, Default)]
pub struct ArchiverStats {
    batches: AtomicU64,
    pages_stored: AtomicU64,
    duplicates: AtomicU64,
    events_stored: AtomicU64,
    events_purged: AtomicU64,
    writer_failures: AtomicU64,
    webhook_delivered: AtomicU64,
    webhook_failed: AtomicU64,
    webhook_dropped: AtomicU64,
}

/// The counters of [`ArchiverStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Batches stored and acknowledged.
    pub batches: u64,
    /// Pages newly stored.
    pub pages_stored: u64,
    /// Pages dropped as duplicates of their idempotency key.
    pub duplicates: u64,
    /// Events newly stored.
    pub events_stored: u64,
    /// Events deleted by retention.
    pub events_purged: u64,
    /// Batches a JSON-lines file could not be written for.
    pub writer_failures: u64,
    /// Items a webhook accepted.
    pub webhook_delivered: u64,
    /// Items a webhook still refused after every attempt.
    pub webhook_failed: u64,
    /// Items not queued for a webhook because its queue was full or closed.
    pub webhook_dropped: u64,
}

/// Which counter of [`ArchiverStats`] to add to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    Batches,
    PagesStored,
    Duplicates,
    EventsStored,
    EventsPurged,
    WriterFailures,
    WebhookDelivered,
    WebhookFailed,
    WebhookDropped,
}

impl ArchiverStats {
    /// Adds `amount` to one counter.
    pub(crate) fn add(&self, counter: Counter, amount: u64) {
        let cell = match counter {
            Counter::Batches => &self.batches,
            Counter::PagesStored => &self.pages_stored,
            Counter::Duplicates => &self.duplicates,
            Counter::EventsStored => &self.events_stored,
            Counter::EventsPurged => &self.events_purged,
            Counter::WriterFailures => &self.writer_failures,
            Counter::WebhookDelivered => &self.webhook_delivered,
            Counter::WebhookFailed => &self.webhook_failed,
            Counter::WebhookDropped => &self.webhook_dropped,
        };
        cell.fetch_add(amount, Ordering::Relaxed);
    }

    /// The current value of every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let read = |cell: &AtomicU64| cell.load(Ordering::Relaxed);
        StatsSnapshot {
            batches: read(&self.batches),
            pages_stored: read(&self.pages_stored),
            duplicates: read(&self.duplicates),
            events_stored: read(&self.events_stored),
            events_purged: read(&self.events_purged),
            writer_failures: read(&self.writer_failures),
            webhook_delivered: read(&self.webhook_delivered),
            webhook_failed: read(&self.webhook_failed),
            webhook_dropped: read(&self.webhook_dropped),
        }
    }
}

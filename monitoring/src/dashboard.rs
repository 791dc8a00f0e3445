//! The state every part of the dashboard shares: the picture of the mesh behind one lock,
//! a signal that wakes the browsers' event streams after each poll round, and the
//! dashboard's own counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use owlmesh_mesh::telemetry::LatencyHistogram;
use owlmesh_proto::v1::Event;
use tokio::sync::watch;

use crate::MonitoringConfig;
use crate::picture::{Picture, PictureConfig, PollRound};

/// What the dashboard counts about itself, for its own `GetStats`.
#[derive(Debug, Default)]
pub(crate) struct DashboardCounters {
    /// `GetStats` calls made.
    pub(crate) polls: AtomicU64,
    /// `GetStats` calls that failed or timed out.
    pub(crate) poll_failures: AtomicU64,
    /// Events received from the primary dispatcher.
    pub(crate) events_received: AtomicU64,
    /// `/metrics` scrapes served.
    pub(crate) metrics_scrapes: AtomicU64,
    /// Browsers connected to `/api/events` now.
    pub(crate) browsers: AtomicU64,
    /// How long a whole poll round took.
    pub(crate) round_seconds: LatencyHistogram,
}

/// The dashboard's shared state.
#[derive(Debug)]
pub(crate) struct Dashboard {
    /// The instance id it registered with.
    pub(crate) id: String,
    /// When it started.
    pub(crate) started_at: Instant,
    /// Its own counters.
    pub(crate) counters: DashboardCounters,
    picture: Mutex<Picture>,
    rounds: watch::Sender<u64>,
}

impl Dashboard {
    /// An empty dashboard.
    pub(crate) fn new(config: &MonitoringConfig) -> Self {
        let millis = |duration: std::time::Duration| duration.as_millis() as i64;
        let picture = Picture::new(PictureConfig {
            gone_after_ms: millis(config.gone_after),
            gone_retention_ms: millis(config.gone_retention),
            history: config.history,
            recent_events: config.recent_events,
            recent_failures: config.recent_failures,
        });
        Self {
            id: config.id.clone(),
            started_at: Instant::now(),
            counters: DashboardCounters::default(),
            picture: Mutex::new(picture),
            rounds: watch::channel(0).0,
        }
    }

    /// The picture, locked. Keep the guard short: the poller, the event stream and every
    /// browser take turns on it.
    pub(crate) fn picture(&self) -> MutexGuard<'_, Picture> {
        self.picture.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a poll round and wakes every browser stream. Returns the primary
    /// dispatcher's address afterwards.
    pub(crate) fn apply(&self, round: PollRound) -> Option<String> {
        let primary = {
            let mut picture = self.picture();
            picture.apply(round);
            picture.primary_address()
        };
        self.rounds.send_modify(|rounds| *rounds += 1);
        primary
    }

    /// Records an event of the primary dispatcher.
    pub(crate) fn record_event(&self, event: Event) {
        self.counters
            .events_received
            .fetch_add(1, Ordering::Relaxed);
        self.picture().record_event(event);
    }

    /// A receiver that wakes after every poll round.
    pub(crate) fn subscribe_rounds(&self) -> watch::Receiver<u64> {
        self.rounds.subscribe()
    }
}

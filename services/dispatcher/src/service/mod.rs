//! The running dispatcher: its gRPC face, the dispatch loop, the outcome writer and upkeep.

mod dispatch;
mod events;
mod jobs;
mod outcomes;
mod requests;
mod rpc;
mod sessions;
mod telemetry;
mod trace;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use owlmesh_mesh::client::{ArchiveOutbox, MembershipWatcher};
use tokio::sync::mpsc;

use crate::config::DispatcherConfig;
use crate::frontier::Frontier;
use events::EventHub;
use jobs::JobCache;
use sessions::{Delivered, Sessions};

pub(crate) use dispatch::{dispatch_loop, upkeep_loop};
pub use outcomes::admitted_link;
pub(crate) use outcomes::outcome_writer;
pub use requests::{DEFAULT_JOBS_PAGE_SIZE, MAX_JOBS_PAGE_SIZE, MAX_REQUEST_ID_BYTES};
pub(crate) use rpc::DispatcherService;
pub(crate) use telemetry::DispatcherTelemetry;

/// Counters since start, for telemetry.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) assigned: AtomicU64,
    pub(crate) outcomes: AtomicU64,
    pub(crate) done: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) stale: AtomicU64,
    pub(crate) links_admitted: AtomicU64,
    pub(crate) leases_expired: AtomicU64,
    /// Leases returned without an outcome because their scraper left, or no longer held
    /// them when it opened a new session.
    pub(crate) leases_released: AtomicU64,
}

/// Everything the dispatcher's tasks share.
pub(crate) struct Dispatcher {
    pub(crate) config: DispatcherConfig,
    pub(crate) frontier: Frontier,
    pub(crate) dispatchers: MembershipWatcher,
    pub(crate) scrapers: MembershipWatcher,
    pub(crate) sessions: Sessions,
    pub(crate) jobs: JobCache,
    pub(crate) events: EventHub,
    pub(crate) outcomes: mpsc::Sender<Delivered>,
    pub(crate) counters: Counters,
    pub(crate) started_at: Instant,
    primary: AtomicBool,
}

impl Dispatcher {
    pub(crate) fn new(
        config: DispatcherConfig,
        frontier: Frontier,
        dispatchers: MembershipWatcher,
        scrapers: MembershipWatcher,
        archive: ArchiveOutbox,
        outcomes: mpsc::Sender<Delivered>,
    ) -> Arc<Self> {
        let events = EventHub::new(&config.id, archive);
        Arc::new(Self {
            config,
            frontier,
            dispatchers,
            scrapers,
            sessions: Sessions::default(),
            jobs: JobCache::default(),
            events,
            outcomes,
            counters: Counters::default(),
            started_at: Instant::now(),
            primary: AtomicBool::new(false),
        })
    }

    /// The id of the dispatcher that should work now: the first live one in failover order.
    pub(crate) fn primary_id(&self) -> Option<String> {
        let view = self.dispatchers.view();
        view.failover_order().first().map(|first| first.id.clone())
    }

    /// Whether this dispatcher is the primary (updated by the dispatch loop).
    pub(crate) fn is_primary(&self) -> bool {
        self.primary.load(Ordering::Relaxed)
    }

    /// Items waiting in the archive outbox.
    pub(crate) fn events_outbox_depth(&self) -> usize {
        self.events.outbox_depth()
    }

    /// Re-evaluates leadership; returns whether this dispatcher is primary now.
    pub(crate) fn refresh_primary(&self) -> bool {
        let primary = self.primary_id().as_deref() == Some(self.config.id.as_str());
        self.primary.store(primary, Ordering::Relaxed);
        primary
    }
}

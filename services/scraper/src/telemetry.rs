//! What a scraper counts, and its `Telemetry.GetStats` and load reports: queues (inbox,
//! fetching, archive outbox, undelivered outcomes), counters and latency histograms.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use owlmesh_mesh::client::{ArchiveOutbox, LoadReporter};
use owlmesh_mesh::clock::unix_ms;
use owlmesh_mesh::telemetry::{LatencyHistogram, counter};
use owlmesh_proto::v1::telemetry_server::Telemetry;
use owlmesh_proto::v1::{Counter, GetStatsRequest, Load, LoadState, QueueDepth, Stats};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::inbox::Inbox;

/// How long a host counts as owned after its last assignment.
const HOSTS_WINDOW: Duration = Duration::from_secs(60);
/// Hosts remembered before the ones outside the window are swept.
const HOSTS_SWEEP_ABOVE: usize = 10_000;
/// How often the load is refreshed for the directory's heartbeats.
const LOAD_REPORT_INTERVAL: Duration = Duration::from_millis(250);

/// Counters and histograms since start; shared by every task of the scraper.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Pages fetched with a 2xx answer.
    pub(crate) pages_fetched: AtomicU64,
    /// Data items archived (pages a handler matched).
    pub(crate) items_extracted: AtomicU64,
    /// Documents archived.
    pub(crate) documents_found: AtomicU64,
    /// Fetches that failed, for any reason.
    pub(crate) fetch_errors: AtomicU64,
    /// Body bytes read.
    pub(crate) bytes_fetched: AtomicU64,
    /// Assignments robots.txt forbade.
    pub(crate) robots_disallowed: AtomicU64,
    /// Outcomes taken off the queue because the dispatcher kept refusing them.
    pub(crate) outcomes_dead_lettered: AtomicU64,
    /// From the request's start to the answer read.
    pub(crate) fetch_seconds: LatencyHistogram,
    /// From an assignment's arrival to the archiver's acknowledgement of its page.
    pub(crate) dispatch_to_archive_seconds: LatencyHistogram,
    hosts: RecentHosts,
}

impl Counters {
    /// Adds `value` to `counter`.
    pub(crate) fn add(counter: &AtomicU64, value: u64) {
        counter.fetch_add(value, Ordering::Relaxed);
    }

    /// Notes that an assignment for `host` arrived.
    pub(crate) fn host_seen(&self, host: &str) {
        self.hosts.seen(host);
    }
}

/// Hosts with an assignment in the last [`HOSTS_WINDOW`]: the hosts this scraper owns, as
/// far as it can tell without the ring.
#[derive(Debug, Default)]
struct RecentHosts {
    last_seen: Mutex<HashMap<String, Instant>>,
}

impl RecentHosts {
    fn seen(&self, host: &str) {
        let now = Instant::now();
        let mut hosts = self.lock();
        if let Some(at) = hosts.get_mut(host) {
            *at = now;
            return;
        }
        if hosts.len() >= HOSTS_SWEEP_ABOVE {
            hosts.retain(|_, at| now.duration_since(*at) < HOSTS_WINDOW);
        }
        hosts.insert(host.to_owned(), now);
    }

    fn count(&self) -> u64 {
        let now = Instant::now();
        let mut hosts = self.lock();
        hosts.retain(|_, at| now.duration_since(*at) < HOSTS_WINDOW);
        hosts.len() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Everything a snapshot of the scraper reads; cheap to clone.
#[derive(Clone)]
pub(crate) struct Gauges {
    pub(crate) id: String,
    pub(crate) started_at: Instant,
    pub(crate) counters: Arc<Counters>,
    pub(crate) inbox: Arc<Inbox>,
    pub(crate) outbox: ArchiveOutbox,
    pub(crate) draining: CancellationToken,
}

impl Gauges {
    /// The coarse state: draining once shutdown began, else busy while anything is held.
    fn state(&self) -> LoadState {
        if self.draining.is_cancelled() {
            LoadState::Draining
        } else if self.inbox.is_idle() {
            LoadState::Idle
        } else {
            LoadState::Busy
        }
    }

    /// The load reported with heartbeats.
    pub(crate) fn load(&self) -> Load {
        Load {
            state: self.state().into(),
            free_slots: self.inbox.free_slots(),
            queue_depth: self.inbox.stages().waiting as u64,
        }
    }

    /// A `GetStats` snapshot.
    pub(crate) fn stats(&self) -> Stats {
        let stages = self.inbox.stages();
        let slots = u64::from(self.inbox.slots());
        let queues = vec![
            queue("inbox", stages.waiting as u64, slots),
            queue("fetching", stages.fetching as u64, slots),
            queue(
                "outbox",
                self.outbox.depth() as u64,
                self.outbox.capacity() as u64,
            ),
            queue("outcomes", self.inbox.undelivered_outcomes() as u64, slots),
        ];
        let counters = &self.counters;
        let hosts_owned = Counter {
            name: "hosts_owned".into(),
            value: counters.hosts.count(),
            labels: HashMap::new(),
        };
        Stats {
            kind: "scraper".into(),
            id: self.id.clone(),
            state: state_name(self.state()).into(),
            uptime_ms: self.started_at.elapsed().as_millis() as u64,
            queues,
            counters: vec![
                counter("pages_fetched", &counters.pages_fetched),
                counter("items_extracted", &counters.items_extracted),
                counter("documents_found", &counters.documents_found),
                counter("fetch_errors", &counters.fetch_errors),
                counter("bytes_fetched", &counters.bytes_fetched),
                counter("robots_disallowed", &counters.robots_disallowed),
                counter("outcomes_dead_lettered", &counters.outcomes_dead_lettered),
                hosts_owned,
            ],
            histograms: vec![
                counters.fetch_seconds.to_proto("fetch_seconds"),
                counters
                    .dispatch_to_archive_seconds
                    .to_proto("dispatch_to_archive_seconds"),
            ],
            taken_at_ms: unix_ms(),
        }
    }

    /// Keeps the load of the next heartbeat current until `stop` is cancelled.
    pub(crate) async fn report_load(self, reporter: LoadReporter, stop: CancellationToken) {
        let mut tick = tokio::time::interval(LOAD_REPORT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => reporter.set(self.load()),
            }
        }
    }
}

fn state_name(state: LoadState) -> &'static str {
    match state {
        LoadState::Draining => "draining",
        LoadState::Busy => "busy",
        LoadState::Idle | LoadState::Unspecified => "idle",
    }
}

fn queue(name: &str, depth: u64, capacity: u64) -> QueueDepth {
    QueueDepth {
        name: name.into(),
        depth,
        capacity,
        labels: HashMap::new(),
    }
}

/// The `Telemetry` service of a scraper.
pub(crate) struct ScraperTelemetry(pub(crate) Gauges);

#[tonic::async_trait]
impl Telemetry for ScraperTelemetry {
    async fn get_stats(&self, _: Request<GetStatsRequest>) -> Result<Response<Stats>, Status> {
        Ok(Response::new(self.0.stats()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_counted_once_each() {
        let hosts = RecentHosts::default();
        hosts.seen("a:80");
        hosts.seen("b:80");
        hosts.seen("a:80");
        assert_eq!(hosts.count(), 2);
    }
}

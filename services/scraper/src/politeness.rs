//! Per-host politeness, enforced where the fetching happens. The ring routes every URL of a
//! host to one scraper, so a local gate per host is the whole truth: it spaces the starts of
//! requests by max(job delay, Crawl-delay, a 429 back-off) and caps the requests in flight.
//! When a host moves to another scraper its timing can be exported and imported, so the
//! spacing survives the move.
//!
//! The hot path takes a read lock on the host map, one semaphore acquire and a mutex held
//! for a few instructions to reserve a start time; nobody sleeps holding a lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use owlmesh_proto::v1::JobSpec;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use owlmesh_job::{DEFAULT_CONCURRENCY_PER_HOST, DEFAULT_OBEY_ROBOTS, DEFAULT_USER_AGENT};

/// The highest per-host concurrency honoured.
pub(crate) const MAX_CONCURRENCY_PER_HOST: u32 = 1024;
/// Permits of a host's semaphore. A request under a limit of `n` takes `PERMITS / n` of
/// them, so one semaphore enforces each job's own limit even when jobs with different limits
/// share a host. `PERMITS` is far above the square of [`MAX_CONCURRENCY_PER_HOST`], so the
/// rounding of `PERMITS / n` never admits an extra request.
const PERMITS: u32 = 1 << 30;

/// A job's politeness settings with their defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPoliteness {
    /// Honour robots.txt (default true).
    pub obey_robots: bool,
    /// Minimum time between two request starts on one host.
    pub delay: Duration,
    /// Requests in flight to one host at most.
    pub concurrency: u32,
    /// User-Agent header and robots.txt agent.
    pub user_agent: String,
}

impl JobPoliteness {
    /// Reads the spec's `politeness`, defaulting what is unset.
    pub fn from_spec(spec: &JobSpec) -> Self {
        let politeness = spec.politeness.clone().unwrap_or_default();
        let user_agent = match politeness.user_agent.trim() {
            "" => DEFAULT_USER_AGENT.to_owned(),
            agent => agent.to_owned(),
        };
        let concurrency = match politeness.concurrency_per_host {
            0 => DEFAULT_CONCURRENCY_PER_HOST,
            limit => limit.min(MAX_CONCURRENCY_PER_HOST),
        };
        Self {
            obey_robots: politeness.obey_robots.unwrap_or(DEFAULT_OBEY_ROBOTS),
            delay: Duration::from_millis(politeness.delay_ms),
            concurrency,
            user_agent,
        }
    }

    /// The gate policy for a host whose robots.txt asks for `crawl_delay`.
    pub fn host_policy(&self, crawl_delay: Option<Duration>) -> HostPolicy {
        HostPolicy {
            delay: self.delay,
            crawl_delay: crawl_delay.filter(|_| self.obey_robots),
            concurrency: self.concurrency,
        }
    }
}

/// How one request must treat its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPolicy {
    /// The job's minimum spacing.
    pub delay: Duration,
    /// The host's Crawl-delay, when it has one and the job obeys robots.txt.
    pub crawl_delay: Option<Duration>,
    /// Requests in flight to the host at most.
    pub concurrency: u32,
}

impl HostPolicy {
    /// The spacing between request starts: the larger of the delays.
    pub fn spacing(&self) -> Duration {
        self.crawl_delay
            .map_or(self.delay, |crawl| crawl.max(self.delay))
    }

    /// Semaphore permits one request takes; see [`PERMITS`].
    fn weight(&self) -> u32 {
        PERMITS / self.concurrency.clamp(1, MAX_CONCURRENCY_PER_HOST)
    }
}

/// A host's timing, portable between processes: Unix milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostTiming {
    /// When the latest request started (or is scheduled to start).
    pub last_request_at_ms: Option<i64>,
    /// No request starts before this, after a 429.
    pub back_off_until_ms: Option<i64>,
}

/// One host's gate: a concurrency cap and a schedule of request starts.
#[derive(Debug)]
pub struct HostGate {
    permits: Arc<Semaphore>,
    schedule: Mutex<Schedule>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Schedule {
    last_start: Option<Instant>,
    back_off_until: Option<Instant>,
}

/// The right to send one request to a host; the slot frees when it is dropped.
#[derive(Debug)]
pub struct HostPermit {
    _permit: OwnedSemaphorePermit,
}

impl Default for HostGate {
    fn default() -> Self {
        Self::new()
    }
}

impl HostGate {
    /// A gate with no history.
    pub fn new() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(PERMITS as usize)),
            schedule: Mutex::new(Schedule::default()),
        }
    }

    /// A gate for a host that may have been fetched elsewhere a moment ago: a host that moved
    /// here on the ring keeps its spacing, because its first request here waits one spacing
    /// as if a request had just started.
    pub fn handed_over() -> Self {
        let gate = Self::new();
        gate.lock().last_start = Some(Instant::now());
        gate
    }

    /// Waits for a free slot under `policy.concurrency`, then for this request's start time.
    pub async fn acquire(&self, policy: &HostPolicy) -> HostPermit {
        // Slot first, then time: a request that waited for a slot must still keep its
        // distance from the one before it.
        let permit = Arc::clone(&self.permits)
            .acquire_many_owned(policy.weight())
            .await
            .expect("host semaphores are never closed");
        loop {
            let start = self.reserve(policy.spacing());
            tokio::time::sleep_until(start).await;
            // A 429 seen while waiting pushes this request behind the back-off.
            if self
                .lock()
                .back_off_until
                .is_none_or(|until| until <= start)
            {
                break;
            }
        }
        HostPermit { _permit: permit }
    }

    /// Holds every request until `wait` from now, e.g. after a 429 with Retry-After.
    pub fn back_off(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut schedule = self.lock();
        schedule.back_off_until = Some(schedule.back_off_until.map_or(until, |at| at.max(until)));
    }

    /// The gate's timing, to hand over with the host.
    pub fn timing(&self) -> HostTiming {
        let schedule = *self.lock();
        HostTiming {
            last_request_at_ms: schedule.last_start.map(unix_ms),
            back_off_until_ms: schedule.back_off_until.map(unix_ms),
        }
    }

    /// Adopts timing exported elsewhere, keeping whichever of each time is later.
    pub fn restore(&self, timing: HostTiming) {
        let mut schedule = self.lock();
        let later = |mine: Option<Instant>, theirs: Option<i64>| match (mine, theirs.map(instant)) {
            (Some(mine), Some(theirs)) => Some(mine.max(theirs)),
            (mine, theirs) => mine.or(theirs),
        };
        schedule.last_start = later(schedule.last_start, timing.last_request_at_ms);
        schedule.back_off_until = later(schedule.back_off_until, timing.back_off_until_ms);
    }

    /// Reserves the earliest start at least `spacing` after the previous one.
    fn reserve(&self, spacing: Duration) -> Instant {
        let now = Instant::now();
        let mut schedule = self.lock();
        let mut start = schedule
            .last_start
            .map_or(now, |last| (last + spacing).max(now));
        if let Some(until) = schedule.back_off_until {
            start = start.max(until);
        }
        schedule.last_start = Some(start);
        start
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Schedule> {
        self.schedule.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The gates of every host this scraper fetches from, keyed by [`HostKey`](owlmesh_job::HostKey): the key the
/// ring routes by, so http and https of one host share one gate.
#[derive(Debug, Default)]
pub struct HostGates {
    gates: RwLock<HashMap<String, Arc<HostGate>>>,
}

impl HostGates {
    /// No hosts yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The gate of `host`, created on first use (see [`HostGate::handed_over`]: nothing
    /// tells a scraper whether another one fetched the host just before it came here).
    pub fn gate(&self, host: &str) -> Arc<HostGate> {
        let gates = self.gates.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(gate) = gates.get(host) {
            return Arc::clone(gate);
        }
        drop(gates);
        let mut gates = self.gates.write().unwrap_or_else(PoisonError::into_inner);
        let gate = gates
            .entry(host.to_owned())
            .or_insert_with(|| Arc::new(HostGate::handed_over()));
        Arc::clone(gate)
    }

    /// Waits until a request to `host` may start under `policy`.
    pub async fn acquire(&self, host: &str, policy: &HostPolicy) -> HostPermit {
        self.gate(host).acquire(policy).await
    }

    /// See [`HostGate::back_off`].
    pub fn back_off(&self, host: &str, wait: Duration) {
        self.gate(host).back_off(wait);
    }

    /// The timing of `host`, when this scraper has a gate for it.
    pub fn export(&self, host: &str) -> Option<HostTiming> {
        let gates = self.gates.read().unwrap_or_else(PoisonError::into_inner);
        gates.get(host).map(|gate| gate.timing())
    }

    /// Adopts `timing` for `host`, e.g. when the host moves here from another scraper.
    pub fn import(&self, host: &str, timing: HostTiming) {
        self.gate(host).restore(timing);
    }

    /// Drops the gate of a host that moved away, returning its timing to hand over.
    /// Requests already admitted keep their permits.
    pub fn remove(&self, host: &str) -> Option<HostTiming> {
        let mut gates = self.gates.write().unwrap_or_else(PoisonError::into_inner);
        gates.remove(host).map(|gate| gate.timing())
    }
}

/// An instant as Unix milliseconds, through the wall clock.
fn unix_ms(at: Instant) -> i64 {
    let now = Instant::now();
    let wall = SystemTime::now();
    let wall_at = if at >= now {
        wall + (at - now)
    } else {
        wall - (now - at)
    };
    let millis = wall_at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    i64::try_from(millis).unwrap_or(i64::MAX)
}

/// Unix milliseconds as an instant; times too far back to represent become now.
fn instant(unix_ms: i64) -> Instant {
    let now = Instant::now();
    let wall_ms = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX);
    let offset = Duration::from_millis(unix_ms.abs_diff(wall_ms));
    if unix_ms >= wall_ms {
        now + offset
    } else {
        now.checked_sub(offset).unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use owlmesh_proto::v1::Politeness;

    use super::*;

    fn policy(delay_ms: u64, concurrency: u32) -> HostPolicy {
        HostPolicy {
            delay: Duration::from_millis(delay_ms),
            crawl_delay: None,
            concurrency,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_host_new_to_this_scraper_keeps_its_spacing_from_the_previous_owner() {
        let gates = HostGates::new();
        let spaced = policy(500, 4);
        let begin = Instant::now();
        let _first = gates.acquire("moved.example", &spaced).await;
        assert_eq!(Instant::now() - begin, Duration::from_millis(500));
        let unspaced = policy(0, 4);
        let begin = Instant::now();
        let _other = gates.acquire("other.example", &unspaced).await;
        assert_eq!(Instant::now() - begin, Duration::ZERO, "no delay, no wait");
    }

    #[tokio::test(start_paused = true)]
    async fn request_starts_are_spaced_by_the_delay() {
        let gate = HostGate::new();
        let policy = policy(500, 4);
        let begin = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..4 {
            let _permit = gate.acquire(&policy).await;
            starts.push(Instant::now() - begin);
        }
        let expected: Vec<Duration> = (0..4).map(|n| Duration::from_millis(500 * n)).collect();
        assert_eq!(starts, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn the_crawl_delay_wins_when_it_is_longer() {
        let gate = HostGate::new();
        let policy = HostPolicy {
            crawl_delay: Some(Duration::from_secs(2)),
            ..policy(100, 1)
        };
        assert_eq!(policy.spacing(), Duration::from_secs(2));
        drop(gate.acquire(&policy).await);
        let begin = Instant::now();
        drop(gate.acquire(&policy).await);
        assert_eq!(Instant::now() - begin, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_back_off_holds_every_request() {
        let gate = HostGate::new();
        drop(gate.acquire(&policy(0, 2)).await);
        gate.back_off(Duration::from_secs(3));
        let begin = Instant::now();
        drop(gate.acquire(&policy(0, 2)).await);
        assert_eq!(Instant::now() - begin, Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_never_exceeds_the_limit() {
        let gate = Arc::new(HostGate::new());
        let (current, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let (gate, current, peak) =
                (Arc::clone(&gate), Arc::clone(&current), Arc::clone(&peak));
            tasks.spawn(async move {
                let _permit = gate.acquire(&policy(0, 3)).await;
                let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                current.fetch_sub(1, Ordering::SeqCst);
            });
        }
        while tasks.join_next().await.is_some() {}
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn weights_admit_exactly_the_limit() {
        for limit in [1, 2, 3, 7, 16, 100, 999, MAX_CONCURRENCY_PER_HOST] {
            let weight = u64::from(policy(0, limit).weight());
            let admitted = u64::from(PERMITS) / weight;
            assert_eq!(admitted, u64::from(limit), "limit {limit}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn timing_survives_export_and_import() {
        let here = HostGates::new();
        drop(here.acquire("h:80", &policy(0, 1)).await);
        let timing = here.remove("h:80").expect("a gate for h:80");
        assert!(here.export("h:80").is_none());
        let there = HostGates::new();
        there.import("h:80", timing);
        let begin = Instant::now();
        drop(there.acquire("h:80", &policy(1000, 1)).await);
        // Millisecond rounding of the wall clock may shave off up to a millisecond.
        assert!(Instant::now() - begin >= Duration::from_millis(998));
    }

    #[test]
    fn job_politeness_applies_defaults() {
        let defaults = JobPoliteness::from_spec(&JobSpec::default());
        assert!(defaults.obey_robots);
        assert_eq!(defaults.concurrency, DEFAULT_CONCURRENCY_PER_HOST);
        assert_eq!(defaults.user_agent, DEFAULT_USER_AGENT);
        let spec = JobSpec {
            politeness: Some(Politeness {
                obey_robots: Some(false),
                delay_ms: 250,
                concurrency_per_host: 16,
                user_agent: "owlmesh-test".into(),
            }),
            ..JobSpec::default()
        };
        let custom = JobPoliteness::from_spec(&spec);
        assert_eq!(
            custom.host_policy(Some(Duration::from_secs(5))).spacing(),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn http_and_https_of_one_host_share_a_gate() {
        let key = |text: &str| {
            owlmesh_job::HostKey::of(&url::Url::parse(text).expect("url")).expect("key")
        };
        assert_eq!(key("https://example.com/"), key("http://example.com/"));
        assert_ne!(key("http://example.com:8080/"), key("http://example.com/"));
    }
}

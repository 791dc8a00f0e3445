//! What the dashboard knows about each instance: its directory record, its latest stats,
//! the rates of its counters, and whether it is still there.

use std::collections::BTreeMap;

use owlmesh_mesh::telemetry::quantile_of;
use owlmesh_proto::v1::{Histogram, Instance, LoadState, Stats};
use serde::Serialize;

use crate::rates::{CounterRates, counter_key};

/// The kind of the directories, which are polled by address rather than found in themselves.
pub(crate) const DIRECTORY_KIND: &str = "directory";
/// The kind of the dispatchers, whose primary the dashboard follows.
pub(crate) const DISPATCHER_KIND: &str = "dispatcher";

/// Counters that report a current amount rather than a running total: shown and exported
/// as gauges, without a rate.
pub(crate) const GAUGE_LIKE_COUNTERS: &[&str] = &["hosts_owned"];

/// Queues whose depth means the instance has work on hand.
const WORK_QUEUES: &[&str] = &["frontier", "in_flight", "inbox", "fetching", "outbox"];
/// Counters whose growth means the instance is working even without a queue to show it.
const WORK_COUNTERS: &[&str] = &["pages_stored", "events_stored", "pages_fetched", "assigned"];

/// An instance's identity on the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct MemberKey {
    /// Service kind, e.g. "scraper".
    pub(crate) kind: String,
    /// Instance id (the address, for directories).
    pub(crate) id: String,
}

/// An instance to poll in one round: from the directory's membership, or a directory itself.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Who it is.
    pub(crate) key: MemberKey,
    /// Where it serves gRPC.
    pub(crate) address: String,
    /// Its directory record; `None` for the directories themselves.
    pub(crate) instance: Option<Instance>,
}

/// What the dashboard shows an instance doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Listed, not answered yet.
    Starting,
    /// Waiting for work.
    Idle,
    /// Working.
    Busy,
    /// Shutting down.
    Draining,
    /// Left the directory or stopped answering; kept visible for a while.
    Gone,
}

/// One instance as the dashboard last saw it.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    /// Who it is.
    pub(crate) key: MemberKey,
    /// Where it serves gRPC.
    pub(crate) address: String,
    /// Its latest directory record (load, priority), if it is a registered instance.
    pub(crate) instance: Option<Instance>,
    /// Its latest answer to `GetStats`.
    pub(crate) stats: Option<Stats>,
    /// Its counters' latest rates.
    pub(crate) rates: CounterRates,
    /// When it was first seen, ms since the Unix epoch.
    pub(crate) first_seen_ms: i64,
    /// When it last answered.
    pub(crate) last_answer_ms: Option<i64>,
    /// Why its latest poll failed, if it did.
    pub(crate) last_error: Option<String>,
    /// Since when it has been gone.
    pub(crate) gone_since_ms: Option<i64>,
}

impl Member {
    /// A member first seen at `now_ms`.
    pub(crate) fn new(target: &Target, now_ms: i64) -> Self {
        Self {
            key: target.key.clone(),
            address: target.address.clone(),
            instance: target.instance.clone(),
            stats: None,
            rates: CounterRates::default(),
            first_seen_ms: now_ms,
            last_answer_ms: None,
            last_error: None,
            gone_since_ms: None,
        }
    }

    /// Takes one poll's outcome into account. A restarted instance may come back on another
    /// address under the same id: the latest record wins.
    pub(crate) fn answered(&mut self, target: &Target, answer: Result<Stats, String>, now_ms: i64) {
        self.address.clone_from(&target.address);
        if target.instance.is_some() {
            self.instance.clone_from(&target.instance);
        }
        match answer {
            Ok(stats) => {
                self.rates.observe(&stats);
                self.stats = Some(stats);
                self.last_answer_ms = Some(now_ms);
                self.last_error = None;
            }
            Err(error) => self.last_error = Some(error),
        }
    }

    /// Decides whether the instance is gone: it left the directory (`listed` is false), or
    /// has not answered for `gone_after_ms`. One that is listed and answers again is back.
    pub(crate) fn update_liveness(&mut self, listed: bool, now_ms: i64, gone_after_ms: i64) {
        let heard_from = self.last_answer_ms.unwrap_or(self.first_seen_ms);
        let silent = now_ms - heard_from >= gone_after_ms;
        if !listed || silent {
            self.gone_since_ms.get_or_insert(now_ms);
        } else {
            self.gone_since_ms = None;
        }
    }

    /// Whether the instance is gone.
    pub(crate) fn is_gone(&self) -> bool {
        self.gone_since_ms.is_some()
    }

    /// What the instance is doing: its own word when it says idle, busy or draining, else
    /// the load it reports to the directory, else whether it has work on hand.
    pub(crate) fn state(&self) -> MemberState {
        if self.is_gone() {
            return MemberState::Gone;
        }
        let Some(stats) = &self.stats else {
            return self.load_state().unwrap_or(MemberState::Starting);
        };
        match stats.state.as_str() {
            // A standby dispatcher sees the shared frontier but does none of its work.
            "idle" | "standby" => MemberState::Idle,
            "busy" => MemberState::Busy,
            "draining" => MemberState::Draining,
            _ => self.load_state().unwrap_or_else(|| self.work_state(stats)),
        }
    }

    fn load_state(&self) -> Option<MemberState> {
        let load = self.instance.as_ref()?.load.as_ref()?;
        match LoadState::try_from(load.state).ok()? {
            LoadState::Idle => Some(MemberState::Idle),
            LoadState::Busy => Some(MemberState::Busy),
            LoadState::Draining => Some(MemberState::Draining),
            LoadState::Unspecified => None,
        }
    }

    fn work_state(&self, stats: &Stats) -> MemberState {
        let queued = stats
            .queues
            .iter()
            .any(|queue| WORK_QUEUES.contains(&queue.name.as_str()) && queue.depth > 0);
        let counting = WORK_COUNTERS
            .iter()
            .any(|name| self.rates.get(name).is_some_and(|rate| rate > 0.0));
        if queued || counting {
            MemberState::Busy
        } else {
            MemberState::Idle
        }
    }

    /// The unlabelled queue `name`'s depth.
    pub(crate) fn queue(&self, name: &str) -> Option<u64> {
        self.stats
            .as_ref()?
            .queues
            .iter()
            .find(|queue| queue.name == name && queue.labels.is_empty())
            .map(|queue| queue.depth)
    }

    /// The unlabelled counter `name`'s value.
    pub(crate) fn counter(&self, name: &str) -> Option<u64> {
        self.stats
            .as_ref()?
            .counters
            .iter()
            .find(|counter| counter.name == name && counter.labels.is_empty())
            .map(|counter| counter.value)
    }

    /// Whether this is a dispatcher that says it is the primary.
    pub(crate) fn says_primary(&self) -> bool {
        self.key.kind == DISPATCHER_KIND
            && self
                .stats
                .as_ref()
                .is_some_and(|stats| stats.state == "primary")
    }

    /// Failover order among dispatchers: priority, then registration time, then id.
    pub(crate) fn failover_rank(&self) -> (i32, i64, &str) {
        let (priority, registered) = self
            .instance
            .as_ref()
            .map_or((i32::MAX, i64::MAX), |i| (i.priority, i.registered_at_ms));
        (priority, registered, &self.key.id)
    }

    /// The member as `/api/snapshot` and the page show it.
    pub(crate) fn view(&self, primary: bool) -> MemberView {
        let stats = self.stats.as_ref();
        MemberView {
            kind: self.key.kind.clone(),
            id: self.key.id.clone(),
            address: self.address.clone(),
            state: self.state(),
            status: stats.map(|stats| stats.state.clone()),
            primary,
            priority: self.instance.as_ref().map(|i| i.priority),
            load: self.load_view(),
            uptime_ms: stats.map(|stats| stats.uptime_ms),
            taken_at_ms: stats.map(|stats| stats.taken_at_ms),
            last_answer_ms: self.last_answer_ms,
            gone_since_ms: self.gone_since_ms,
            last_error: self.last_error.clone(),
            queues: stats.map_or_else(Vec::new, queue_views),
            counters: stats.map_or_else(Vec::new, |stats| self.counter_views(stats)),
            histograms: stats.map_or_else(Vec::new, histogram_views),
        }
    }

    fn load_view(&self) -> Option<LoadView> {
        let load = self.instance.as_ref()?.load.as_ref()?;
        // Only instances that report their load have one; the others show none, not zeros.
        let state = LoadState::try_from(load.state)
            .ok()
            .filter(|state| *state != LoadState::Unspecified)?;
        let state = state
            .as_str_name()
            .trim_start_matches("LOAD_STATE_")
            .to_lowercase();
        Some(LoadView {
            state,
            free_slots: load.free_slots,
            queue_depth: load.queue_depth,
        })
    }

    fn counter_views(&self, stats: &Stats) -> Vec<CounterView> {
        stats
            .counters
            .iter()
            .map(|counter| {
                let gauge = GAUGE_LIKE_COUNTERS.contains(&counter.name.as_str());
                CounterView {
                    name: counter.name.clone(),
                    labels: counter.labels.clone().into_iter().collect(),
                    value: counter.value,
                    gauge,
                    rate: if gauge {
                        None
                    } else {
                        self.rates.get(&counter_key(counter))
                    },
                }
            })
            .collect()
    }
}

fn queue_views(stats: &Stats) -> Vec<QueueView> {
    stats
        .queues
        .iter()
        .map(|queue| QueueView {
            name: queue.name.clone(),
            labels: queue.labels.clone().into_iter().collect(),
            depth: queue.depth,
            capacity: queue.capacity,
        })
        .collect()
}

fn histogram_views(stats: &Stats) -> Vec<HistogramView> {
    stats.histograms.iter().map(HistogramView::from).collect()
}

/// An instance on the dashboard, as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    /// Service kind.
    pub kind: String,
    /// Instance id.
    pub id: String,
    /// Where it serves gRPC.
    pub address: String,
    /// What it is doing.
    pub state: MemberState,
    /// Its own word for its state (`Stats.state`), e.g. "primary" or "standby".
    pub status: Option<String>,
    /// Whether this is the dispatcher the mesh follows now.
    pub primary: bool,
    /// Failover priority, for registered instances.
    pub priority: Option<i32>,
    /// The load it last reported to the directory.
    pub load: Option<LoadView>,
    /// Milliseconds since it started.
    pub uptime_ms: Option<u64>,
    /// When its latest stats were taken.
    pub taken_at_ms: Option<i64>,
    /// When it last answered the dashboard.
    pub last_answer_ms: Option<i64>,
    /// Since when it has been gone.
    pub gone_since_ms: Option<i64>,
    /// Why its latest poll failed.
    pub last_error: Option<String>,
    /// Its queues.
    pub queues: Vec<QueueView>,
    /// Its counters, with their rates.
    pub counters: Vec<CounterView>,
    /// Its latency histograms.
    pub histograms: Vec<HistogramView>,
}

/// A load report, as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct LoadView {
    /// "idle", "busy" or "draining".
    pub state: String,
    /// Work it can take now.
    pub free_slots: u32,
    /// Items waiting in its queues.
    pub queue_depth: u64,
}

/// A queue depth, as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct QueueView {
    /// Queue name.
    pub name: String,
    /// Extra dimensions, e.g. the job.
    pub labels: BTreeMap<String, String>,
    /// Items in it now.
    pub depth: u64,
    /// Its bound, 0 when unbounded.
    pub capacity: u64,
}

/// A counter, as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct CounterView {
    /// Counter name.
    pub name: String,
    /// Extra dimensions.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: u64,
    /// Whether it reports a current amount rather than a running total.
    pub gauge: bool,
    /// Its increase per second between the latest two polls.
    pub rate: Option<f64>,
}

/// A latency histogram, as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct HistogramView {
    /// Histogram name.
    pub name: String,
    /// Bucket upper bounds, ascending.
    pub bounds: Vec<f64>,
    /// Cumulative counts, one per bound.
    pub cumulative_counts: Vec<u64>,
    /// Sum of the observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
    /// Median, as the bound of its bucket (`null` when empty or beyond the last bound).
    pub p50: Option<f64>,
    /// 99th percentile, likewise.
    pub p99: Option<f64>,
}

impl From<&Histogram> for HistogramView {
    fn from(histogram: &Histogram) -> Self {
        // JSON has no infinity: a quantile beyond the last bound shows as unknown.
        let quantile = |q| quantile_of(histogram, q).filter(|value: &f64| value.is_finite());
        Self {
            name: histogram.name.clone(),
            bounds: histogram.bounds.clone(),
            cumulative_counts: histogram.cumulative_counts.clone(),
            sum: histogram.sum,
            count: histogram.count,
            p50: quantile(0.5),
            p99: quantile(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use owlmesh_proto::v1::{Load, QueueDepth};

    use super::*;

    fn scraper() -> Target {
        Target {
            key: MemberKey {
                kind: "scraper".into(),
                id: "scraper-0".into(),
            },
            address: "127.0.0.1:7801".into(),
            instance: Some(Instance::default()),
        }
    }

    fn stats(state: &str) -> Stats {
        Stats {
            state: state.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_member_that_leaves_the_directory_is_gone_at_once() {
        let mut member = Member::new(&scraper(), 0);
        member.answered(&scraper(), Ok(stats("idle")), 0);
        member.update_liveness(true, 0, 3000);
        assert_eq!(member.state(), MemberState::Idle);
        member.update_liveness(false, 1000, 3000);
        assert_eq!(member.state(), MemberState::Gone);
        assert_eq!(member.gone_since_ms, Some(1000));
    }

    #[test]
    fn a_listed_member_that_stops_answering_is_gone_after_the_grace() {
        let mut member = Member::new(&scraper(), 0);
        member.answered(&scraper(), Ok(stats("busy")), 0);
        member.answered(&scraper(), Err("deadline".into()), 2000);
        member.update_liveness(true, 2000, 3000);
        assert_eq!(member.state(), MemberState::Busy);
        member.update_liveness(true, 3000, 3000);
        assert_eq!(member.state(), MemberState::Gone);
        // It answers again: it is back.
        member.answered(&scraper(), Ok(stats("idle")), 4000);
        member.update_liveness(true, 4000, 3000);
        assert_eq!(member.state(), MemberState::Idle);
    }

    #[test]
    fn the_state_falls_back_to_the_load_then_to_the_queues() {
        let mut target = scraper();
        target.instance = Some(Instance {
            load: Some(Load {
                state: LoadState::Busy.into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        let mut member = Member::new(&target, 0);
        member.answered(&target, Ok(stats("serving")), 0);
        assert_eq!(member.state(), MemberState::Busy);

        let mut primary = Member::new(&scraper(), 0);
        let mut with_queue = stats("primary");
        with_queue.queues.push(QueueDepth {
            name: "frontier".into(),
            depth: 3,
            ..Default::default()
        });
        primary.answered(&scraper(), Ok(with_queue), 0);
        assert_eq!(primary.state(), MemberState::Busy);
        let mut standby = stats("standby");
        standby.queues = primary.stats.as_ref().unwrap().queues.clone();
        primary.answered(&scraper(), Ok(standby), 1000);
        assert_eq!(primary.state(), MemberState::Idle, "a standby does no work");
        primary.answered(&scraper(), Ok(stats("serving")), 2000);
        assert_eq!(primary.state(), MemberState::Idle);
    }
}

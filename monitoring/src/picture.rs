//! The whole current picture of the mesh: every instance with its latest stats, which
//! dispatcher is primary, the jobs, the latest events and the history of the charted
//! series. One poll round updates it; the page, `/api/snapshot` and `/metrics` read it.

use std::collections::{BTreeMap, BTreeSet};

use owlmesh_proto::v1::{Event, Job, Stats};

use crate::events::EventLog;
use crate::history::{History, HistoryConfig};
use crate::members::{DISPATCHER_KIND, Member, MemberKey, MemberView, Target};
use crate::series::{SeriesKey, SeriesMetric, frontier_series};
use crate::snapshot::{JobView, SeriesView, Snapshot, Totals};

/// Kinds in the order the members table lists them; others follow by name.
const KIND_ORDER: &[&str] = &[
    "directory",
    "dispatcher",
    "scraper",
    "archiver",
    "monitoring",
];

/// The outcome of one poll round.
#[derive(Debug)]
pub(crate) struct PollRound {
    /// When the round ended, ms since the Unix epoch.
    pub(crate) at_ms: i64,
    /// Whether a directory has answered the membership watch yet.
    pub(crate) synced: bool,
    /// Every polled instance with its answer or the reason it gave none.
    pub(crate) answers: Vec<(Target, Result<Stats, String>)>,
    /// The primary dispatcher's jobs; `None` when it could not be asked.
    pub(crate) jobs: Option<Vec<Job>>,
}

/// Timings and bounds of a [`Picture`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct PictureConfig {
    /// A listed instance silent this long is gone.
    pub(crate) gone_after_ms: i64,
    /// A gone instance is forgotten after this long.
    pub(crate) gone_retention_ms: i64,
    /// The history's resolutions and spans.
    pub(crate) history: HistoryConfig,
    /// Events kept.
    pub(crate) recent_events: usize,
    /// Failures kept apart.
    pub(crate) recent_failures: usize,
}

/// How much of the picture a [`Snapshot`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SnapshotScope {
    /// Everything: the whole history and every kept event.
    Whole,
    /// What changed for a client that has seen events up to `event_seq`: the latest point
    /// of each series updated in the last round, and the newer events.
    Since {
        /// The newest event the client has.
        event_seq: u64,
    },
}

/// The whole current picture of the mesh.
#[derive(Debug)]
pub(crate) struct Picture {
    config: PictureConfig,
    members: BTreeMap<MemberKey, Member>,
    primary: Option<MemberKey>,
    jobs: Vec<Job>,
    jobs_at_ms: Option<i64>,
    events: EventLog,
    history: History<SeriesKey>,
    synced: bool,
    at_ms: i64,
}

impl Picture {
    /// An empty picture.
    pub(crate) fn new(config: PictureConfig) -> Self {
        Self {
            config,
            members: BTreeMap::new(),
            primary: None,
            jobs: Vec::new(),
            jobs_at_ms: None,
            events: EventLog::new(config.recent_events, config.recent_failures),
            history: History::new(config.history),
            synced: false,
            at_ms: 0,
        }
    }

    /// Takes a poll round into account: members, liveness, primary, jobs, history.
    pub(crate) fn apply(&mut self, round: PollRound) {
        self.at_ms = round.at_ms;
        self.synced = round.synced;
        self.update_members(round.at_ms, round.answers);
        self.primary = self.choose_primary();
        if let Some(jobs) = round.jobs {
            self.jobs = jobs;
            self.jobs_at_ms = Some(round.at_ms);
        }
        let totals = self.totals();
        let frame = self.frame(&totals);
        self.history.record(round.at_ms, frame);
    }

    fn update_members(&mut self, at_ms: i64, answers: Vec<(Target, Result<Stats, String>)>) {
        let mut listed = BTreeSet::new();
        for (target, answer) in answers {
            let member = self
                .members
                .entry(target.key.clone())
                .or_insert_with(|| Member::new(&target, at_ms));
            member.answered(&target, answer, at_ms);
            listed.insert(target.key);
        }
        let gone_after = self.config.gone_after_ms;
        for member in self.members.values_mut() {
            member.update_liveness(listed.contains(&member.key), at_ms, gone_after);
        }
        let retention = self.config.gone_retention_ms;
        self.members.retain(|_, member| {
            member
                .gone_since_ms
                .is_none_or(|since| at_ms - since < retention)
        });
    }

    /// The dispatcher that says it is primary, first in failover order; or, before any has
    /// said so, the first live one in failover order.
    fn choose_primary(&self) -> Option<MemberKey> {
        let mut dispatchers: Vec<&Member> = self
            .members
            .values()
            .filter(|member| member.key.kind == DISPATCHER_KIND && !member.is_gone())
            .collect();
        dispatchers.sort_by(|a, b| a.failover_rank().cmp(&b.failover_rank()));
        let chosen = dispatchers
            .iter()
            .find(|member| member.says_primary())
            .or(dispatchers.first());
        chosen.map(|member| member.key.clone())
    }

    fn primary_member(&self) -> Option<&Member> {
        self.members.get(self.primary.as_ref()?)
    }

    /// Where the primary dispatcher serves gRPC.
    pub(crate) fn primary_address(&self) -> Option<String> {
        self.primary_member().map(|member| member.address.clone())
    }

    fn live_members(&self) -> impl Iterator<Item = &Member> {
        self.members.values().filter(|member| !member.is_gone())
    }

    /// The headline figures.
    pub(crate) fn totals(&self) -> Totals {
        let primary = self.primary_member();
        // A fold from +0.0: an empty f64 sum is -0.0, which reads oddly on the page.
        let rate = |name: &str| {
            self.live_members()
                .filter_map(|member| member.rates.get(name))
                .fold(0.0, |sum, rate| sum + rate)
        };
        let sum = |name: &str| {
            self.live_members()
                .filter_map(|member| member.counter(name))
                .sum::<u64>()
        };
        let live = self.live_members().count();
        Totals {
            frontier: primary.and_then(|member| member.queue("frontier")),
            in_flight: primary.and_then(|member| member.queue("in_flight")),
            pages_per_second: rate("pages_fetched"),
            items_per_second: rate("items_extracted"),
            errors_per_second: rate("fetch_errors"),
            pages_fetched: sum("pages_fetched"),
            items_extracted: sum("items_extracted"),
            fetch_errors: sum("fetch_errors"),
            live_members: live,
            gone_members: self.members.len() - live,
        }
    }

    /// This round's value of every charted series.
    fn frame(&self, totals: &Totals) -> Vec<(SeriesKey, f64)> {
        let mut frame = Vec::new();
        if let Some(stats) = self
            .primary_member()
            .and_then(|member| member.stats.as_ref())
        {
            frame.extend(frontier_series(stats));
        }
        for member in self.live_members() {
            let Some(stats) = &member.stats else { continue };
            for queue in stats.queues.iter().filter(|queue| queue.labels.is_empty()) {
                let metric = match queue.name.as_str() {
                    "inbox" => SeriesMetric::Inbox,
                    "outbox" => SeriesMetric::Outbox,
                    _ => continue,
                };
                let key = SeriesKey {
                    metric,
                    subject: member.key.id.clone(),
                };
                frame.push((key, queue.depth as f64));
            }
        }
        frame.extend([
            (
                SeriesKey::total(SeriesMetric::PagesPerSecond),
                totals.pages_per_second,
            ),
            (
                SeriesKey::total(SeriesMetric::ItemsPerSecond),
                totals.items_per_second,
            ),
            (
                SeriesKey::total(SeriesMetric::ErrorsPerSecond),
                totals.errors_per_second,
            ),
        ]);
        frame
    }

    /// Records one event of the primary dispatcher.
    pub(crate) fn record_event(&mut self, event: Event) {
        self.events.push(event);
    }

    /// Instances known, gone ones included.
    pub(crate) fn members_len(&self) -> usize {
        self.members.len()
    }

    /// Events kept.
    pub(crate) fn events_len(&self) -> usize {
        self.events.len()
    }

    /// The picture as JSON-ready values.
    pub(crate) fn snapshot(&self, scope: SnapshotScope) -> Snapshot {
        let (events, series) = match scope {
            SnapshotScope::Whole => (self.events.after(0), self.whole_series()),
            SnapshotScope::Since { event_seq } => {
                (self.events.after(event_seq), self.latest_series())
            }
        };
        Snapshot {
            at_ms: self.at_ms,
            directory_synced: self.synced,
            primary: self.primary.as_ref().map(|key| key.id.clone()),
            totals: self.totals(),
            members: self.member_views(),
            jobs: self.jobs.iter().map(JobView::from).collect(),
            jobs_at_ms: self.jobs_at_ms,
            events,
            failures: self.events.failures(),
            last_event_seq: self.events.last_seq(),
            series,
        }
    }

    fn member_views(&self) -> Vec<MemberView> {
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|member| (kind_rank(&member.key.kind), &member.key));
        members
            .into_iter()
            .map(|member| member.view(Some(&member.key) == self.primary.as_ref()))
            .collect()
    }

    fn whole_series(&self) -> Vec<SeriesView> {
        let mut series: Vec<SeriesView> = self
            .history
            .iter()
            .map(|(key, series)| SeriesView::new(key, series.points()))
            .collect();
        series.sort_by(|a, b| a.key.cmp(&b.key));
        series
    }

    /// The newest point of each series recorded in the latest round.
    fn latest_series(&self) -> Vec<SeriesView> {
        let mut series: Vec<SeriesView> = self
            .history
            .iter()
            .filter_map(|(key, series)| {
                let last = series.last()?;
                (last.at_ms() == self.at_ms).then(|| SeriesView::new(key, vec![last]))
            })
            .collect();
        series.sort_by(|a, b| a.key.cmp(&b.key));
        series
    }
}

fn kind_rank(kind: &str) -> usize {
    KIND_ORDER
        .iter()
        .position(|known| *known == kind)
        .unwrap_or(KIND_ORDER.len())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use owlmesh_proto::v1::{Counter, Instance, QueueDepth};

    use super::*;
    use crate::history::Point;

    fn config() -> PictureConfig {
        PictureConfig {
            gone_after_ms: 3000,
            gone_retention_ms: 60_000,
            history: HistoryConfig::default(),
            recent_events: 100,
            recent_failures: 20,
        }
    }

    fn target(kind: &str, id: &str, priority: i32) -> Target {
        Target {
            key: MemberKey {
                kind: kind.into(),
                id: id.into(),
            },
            address: format!("127.0.0.1:{}", 7000 + priority),
            instance: Some(Instance {
                kind: kind.into(),
                id: id.into(),
                priority,
                ..Default::default()
            }),
        }
    }

    fn queue(name: &str, depth: u64, job: Option<&str>) -> QueueDepth {
        QueueDepth {
            name: name.into(),
            depth,
            capacity: 0,
            labels: job.map_or_else(HashMap::new, |job| {
                HashMap::from([("job".to_owned(), job.to_owned())])
            }),
        }
    }

    fn dispatcher_stats(state: &str, frontier: u64) -> Stats {
        Stats {
            kind: "dispatcher".into(),
            state: state.into(),
            queues: vec![
                queue("frontier", frontier, None),
                queue("in_flight", 4, None),
                queue("frontier", frontier, Some("job-1")),
            ],
            ..Default::default()
        }
    }

    fn scraper_stats(at_ms: i64, pages: u64) -> Stats {
        Stats {
            kind: "scraper".into(),
            state: "busy".into(),
            uptime_ms: at_ms as u64,
            taken_at_ms: at_ms,
            queues: vec![queue("inbox", 7, None)],
            counters: vec![Counter {
                name: "pages_fetched".into(),
                value: pages,
                labels: HashMap::new(),
            }],
            ..Default::default()
        }
    }

    fn round(at_ms: i64, pages: u64, with_scraper: bool) -> PollRound {
        let mut answers = vec![
            (
                target("dispatcher", "dispatcher-1", 1),
                Ok(dispatcher_stats("standby", 0)),
            ),
            (
                target("dispatcher", "dispatcher-0", 0),
                Ok(dispatcher_stats("primary", 100 - pages / 10)),
            ),
        ];
        if with_scraper {
            answers.push((
                target("scraper", "scraper-0", 0),
                Ok(scraper_stats(at_ms, pages)),
            ));
        }
        PollRound {
            at_ms,
            synced: true,
            answers,
            jobs: None,
        }
    }

    #[test]
    fn an_empty_mesh_has_zero_throughput_not_negative_zero() {
        let picture = Picture::new(config());
        let totals = picture.totals();
        assert!(totals.pages_per_second.is_sign_positive());
        assert_eq!(
            serde_json::to_string(&totals.pages_per_second).unwrap(),
            "0.0"
        );
    }

    #[test]
    fn the_primary_is_the_dispatcher_that_says_so() {
        let mut picture = Picture::new(config());
        picture.apply(round(1000, 0, true));
        let snapshot = picture.snapshot(SnapshotScope::Whole);
        assert_eq!(snapshot.primary.as_deref(), Some("dispatcher-0"));
        assert_eq!(snapshot.totals.frontier, Some(100));
        assert_eq!(snapshot.totals.in_flight, Some(4));
        let ids: Vec<&str> = snapshot.members.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["dispatcher-0", "dispatcher-1", "scraper-0"]);
    }

    #[test]
    fn throughput_comes_from_counter_deltas_and_is_charted() {
        let mut picture = Picture::new(config());
        picture.apply(round(1000, 0, true));
        picture.apply(round(2000, 50, true));
        let snapshot = picture.snapshot(SnapshotScope::Whole);
        assert_eq!(snapshot.totals.pages_per_second, 50.0);
        let pages = snapshot
            .series
            .iter()
            .find(|series| series.key == "pages_per_second")
            .unwrap();
        assert_eq!(pages.points, [Point(1000, 0.0), Point(2000, 50.0)]);
        let keys: Vec<&str> = snapshot.series.iter().map(|s| s.key.as_str()).collect();
        for expected in ["frontier", "in_flight", "frontier/job-1", "inbox/scraper-0"] {
            assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
        }
    }

    #[test]
    fn a_member_that_left_shows_as_gone_then_is_forgotten() {
        let mut picture = Picture::new(config());
        picture.apply(round(1000, 0, true));
        picture.apply(round(2000, 10, false));
        let snapshot = picture.snapshot(SnapshotScope::Whole);
        let scraper = snapshot
            .members
            .iter()
            .find(|m| m.id == "scraper-0")
            .unwrap();
        assert_eq!(scraper.state, crate::members::MemberState::Gone);
        assert_eq!(snapshot.totals.gone_members, 1);
        picture.apply(round(62_000, 10, false));
        assert_eq!(picture.members_len(), 2);
    }

    #[test]
    fn an_update_carries_only_the_latest_points_and_new_events() {
        let mut picture = Picture::new(config());
        picture.apply(round(1000, 0, true));
        picture.record_event(Event {
            kind: "job_submitted".into(),
            ..Default::default()
        });
        let seen = picture.snapshot(SnapshotScope::Whole).last_event_seq;
        picture.record_event(Event {
            kind: "epoch_started".into(),
            ..Default::default()
        });
        picture.apply(round(2000, 10, true));
        let update = picture.snapshot(SnapshotScope::Since { event_seq: seen });
        assert!(update.series.iter().all(|series| series.points.len() == 1));
        let kinds: Vec<&str> = update.events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["epoch_started"]);
    }
}

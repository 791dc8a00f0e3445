//! The latest events of the mesh: followed live on the primary dispatcher's `WatchEvents`
//! stream (again on the new primary when it changes) and kept in a bounded log, with the
//! latest failures kept apart so a flood of successful outcomes does not push them out.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use owlmesh_mesh::api;
use owlmesh_mesh::client::{ChannelOptions, connect_lazy};
use owlmesh_proto::v1::{Event, WatchEventsRequest};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tracing::{debug, info};

use crate::dashboard::Dashboard;

/// How long to wait before subscribing again after the stream broke.
const RESUBSCRIBE_DELAY: Duration = Duration::from_millis(500);

/// Outcome statuses that mean a fetch did not succeed (a returned URL is only moved).
const FAILED_OUTCOMES: &[&str] = &["transient", "failed", "disallowed"];

/// An event as the dashboard shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    /// The dashboard's own sequence number: higher is newer.
    pub seq: u64,
    /// The producer's event id.
    pub id: String,
    /// E.g. "outcome", "job_state", "epoch_started".
    pub kind: String,
    /// The job it concerns.
    pub job_id: String,
    /// The URL it concerns, if any.
    pub url: String,
    /// When it happened, ms since the Unix epoch.
    pub at_ms: i64,
    /// Who reported it, "kind/id".
    pub source: String,
    /// Details for people, e.g. a failure's reason.
    pub message: String,
    /// An outcome's status, e.g. "done" or "failed".
    pub status: Option<String>,
    /// An outcome's HTTP status, when there was a response.
    pub http_status: Option<u32>,
    /// Whether it reports a failure.
    pub failure: bool,
    /// Every structured detail.
    pub attributes: BTreeMap<String, String>,
}

impl EventView {
    fn new(seq: u64, event: Event) -> Self {
        let status = event.attributes.get("status").map(|status| {
            status
                .trim_start_matches("OUTCOME_STATUS_")
                .to_ascii_lowercase()
        });
        let http_status = event
            .attributes
            .get("http_status")
            .and_then(|code| code.parse().ok())
            .filter(|code| *code != 0);
        let failure = match event.kind.as_str() {
            "outcome" => status
                .as_deref()
                .is_some_and(|status| FAILED_OUTCOMES.contains(&status)),
            "job_state" => event.attributes.get("state").is_some_and(|s| s == "failed"),
            _ => false,
        };
        Self {
            seq,
            id: event.id,
            kind: event.kind,
            job_id: event.job_id,
            url: event.url,
            at_ms: event.at_ms,
            source: event.source,
            message: event.message,
            status,
            http_status,
            failure,
            attributes: event.attributes.into_iter().collect(),
        }
    }
}

/// The latest events and, apart, the latest failures; both bounded.
#[derive(Debug, Clone)]
pub(crate) struct EventLog {
    recent: VecDeque<EventView>,
    failures: VecDeque<EventView>,
    capacity: usize,
    failure_capacity: usize,
    last_seq: u64,
}

impl EventLog {
    /// A log keeping `capacity` events and `failure_capacity` failures.
    pub(crate) fn new(capacity: usize, failure_capacity: usize) -> Self {
        Self {
            recent: VecDeque::with_capacity(capacity),
            failures: VecDeque::with_capacity(failure_capacity),
            capacity,
            failure_capacity,
            last_seq: 0,
        }
    }

    /// Records an event, forgetting the oldest beyond the bounds.
    pub(crate) fn push(&mut self, event: Event) {
        self.last_seq += 1;
        let view = EventView::new(self.last_seq, event);
        if view.failure && self.failure_capacity > 0 {
            push_bounded(&mut self.failures, view.clone(), self.failure_capacity);
        }
        push_bounded(&mut self.recent, view, self.capacity);
    }

    /// The sequence number of the newest event (0 before any).
    pub(crate) fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Events held now.
    pub(crate) fn len(&self) -> usize {
        self.recent.len()
    }

    /// The kept events newer than `seq`, newest first.
    pub(crate) fn after(&self, seq: u64) -> Vec<EventView> {
        self.recent
            .iter()
            .rev()
            .take_while(|event| event.seq > seq)
            .cloned()
            .collect()
    }

    /// The kept failures, newest first.
    pub(crate) fn failures(&self) -> Vec<EventView> {
        self.failures.iter().rev().cloned().collect()
    }
}

fn push_bounded(queue: &mut VecDeque<EventView>, event: EventView, capacity: usize) {
    if queue.len() == capacity {
        queue.pop_front();
    }
    queue.push_back(event);
}

/// Follows the events of the dispatcher at the address `primary` holds, switching streams
/// whenever it changes, until `shutdown`.
pub(crate) async fn follow_primary(
    dashboard: Arc<Dashboard>,
    mut primary: watch::Receiver<Option<String>>,
    shutdown: CancellationToken,
) {
    loop {
        let address = primary.borrow_and_update().clone();
        let following = async {
            let Some(address) = address else {
                return std::future::pending().await;
            };
            if let Err(status) = stream_events(&dashboard, &address).await {
                debug!(%address, error = %status.message(), "event stream broke: subscribing again");
            }
            tokio::time::sleep(RESUBSCRIBE_DELAY).await;
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = primary.changed() => if changed.is_err() { return },
            () = following => {}
        }
    }
}

/// Records every event of one dispatcher's stream until it breaks.
async fn stream_events(dashboard: &Dashboard, address: &str) -> Result<(), Status> {
    let channel = connect_lazy(address, &ChannelOptions::default()).map_err(Status::from)?;
    let mut events = api::dispatcher_client(channel)
        .watch_events(WatchEventsRequest::default())
        .await?
        .into_inner();
    info!(%address, "following the primary dispatcher's events");
    while let Some(event) = events.message().await? {
        dashboard.record_event(event);
    }
    Err(Status::unavailable("the event stream ended"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: &str, message: &str) -> Event {
        Event {
            kind: "outcome".into(),
            message: message.into(),
            attributes: [
                ("status".into(), format!("OUTCOME_STATUS_{status}")),
                ("http_status".into(), "404".into()),
            ]
            .into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_log_keeps_the_latest_events_and_failures_apart() {
        let mut log = EventLog::new(3, 2);
        log.push(outcome("FAILED", "404 not found"));
        for _ in 0..5 {
            log.push(outcome("DONE", ""));
        }
        assert_eq!(log.len(), 3);
        assert!(log.after(0).iter().all(|event| !event.failure));
        let failures = log.failures();
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].status.as_deref(), Some("failed"));
        assert_eq!(failures[0].http_status, Some(404));
        assert_eq!(failures[0].message, "404 not found");
    }

    #[test]
    fn after_gives_only_newer_events_newest_first() {
        let mut log = EventLog::new(10, 0);
        for _ in 0..4 {
            log.push(outcome("DONE", ""));
        }
        let seqs: Vec<u64> = log.after(2).iter().map(|event| event.seq).collect();
        assert_eq!(seqs, [4, 3]);
        assert!(log.failures().is_empty());
    }
}

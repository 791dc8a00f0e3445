//! The dashboard's own `Telemetry.GetStats`: what it tracks and how its polling goes, so it
//! shows up in its own members table like every other instance.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use owlmesh_mesh::clock::unix_ms;
use owlmesh_mesh::telemetry::counter;
use owlmesh_proto::v1::telemetry_server::Telemetry;
use owlmesh_proto::v1::{GetStatsRequest, QueueDepth, Stats};
use tonic::{Request, Response, Status};

use crate::dashboard::Dashboard;

/// The service kind the dashboard registers as.
pub const MONITORING_KIND: &str = "monitoring";

/// The `Telemetry` service of the dashboard.
pub(crate) struct DashboardTelemetry(pub(crate) Arc<Dashboard>);

#[tonic::async_trait]
impl Telemetry for DashboardTelemetry {
    async fn get_stats(&self, _: Request<GetStatsRequest>) -> Result<Response<Stats>, Status> {
        Ok(Response::new(stats(&self.0)))
    }
}

fn stats(dashboard: &Dashboard) -> Stats {
    let (members, events) = {
        let picture = dashboard.picture();
        (picture.members_len(), picture.events_len())
    };
    let counters = &dashboard.counters;
    let browsers = counters.browsers.load(Ordering::Relaxed);
    Stats {
        kind: MONITORING_KIND.into(),
        id: dashboard.id.clone(),
        state: "serving".into(),
        uptime_ms: dashboard.started_at.elapsed().as_millis() as u64,
        queues: vec![
            queue("members", members as u64),
            queue("events", events as u64),
            queue("browsers", browsers),
        ],
        counters: vec![
            counter("polls", &counters.polls),
            counter("poll_failures", &counters.poll_failures),
            counter("events_received", &counters.events_received),
            counter("metrics_scrapes", &counters.metrics_scrapes),
        ],
        histograms: vec![counters.round_seconds.to_proto("poll_round_seconds")],
        taken_at_ms: unix_ms(),
    }
}

fn queue(name: &str, depth: u64) -> QueueDepth {
    QueueDepth {
        name: name.into(),
        depth,
        capacity: 0,
        labels: HashMap::new(),
    }
}

/// Counts a connected browser for as long as it is alive.
#[derive(Debug)]
pub(crate) struct BrowserGuard(Arc<Dashboard>);

impl BrowserGuard {
    /// Counts one more browser until the guard is dropped.
    pub(crate) fn new(dashboard: Arc<Dashboard>) -> Self {
        dashboard.counters.browsers.fetch_add(1, Ordering::Relaxed);
        Self(dashboard)
    }

    /// The dashboard the browser watches.
    pub(crate) fn dashboard(&self) -> &Dashboard {
        &self.0
    }
}

impl Drop for BrowserGuard {
    fn drop(&mut self) {
        let browsers: &AtomicU64 = &self.0.counters.browsers;
        browsers.fetch_sub(1, Ordering::Relaxed);
    }
}

//! The archiver's `Telemetry` service: its counters for the dashboard and `owlmesh services`.

use std::sync::Arc;
use std::time::Instant;

use owlmesh_mesh::clock::unix_ms;
use owlmesh_proto::v1::telemetry_server::Telemetry;
use owlmesh_proto::v1::{Counter, GetStatsRequest, Stats};
use tonic::{Request, Response, Status};

use crate::ArchiverStats;

/// The `Telemetry` service of an archiver.
pub(crate) struct ArchiverTelemetry {
    pub(crate) id: String,
    pub(crate) stats: Arc<ArchiverStats>,
    pub(crate) started_at: Instant,
}

#[tonic::async_trait]
impl Telemetry for ArchiverTelemetry {
    async fn get_stats(&self, _: Request<GetStatsRequest>) -> Result<Response<Stats>, Status> {
        let snapshot = self.stats.snapshot();
        let counter = |name: &str, value: u64| Counter {
            name: name.into(),
            value,
            labels: Default::default(),
        };
        let counters = vec![
            counter("batches", snapshot.batches),
            counter("pages_stored", snapshot.pages_stored),
            counter("duplicates", snapshot.duplicates),
            counter("events_stored", snapshot.events_stored),
            counter("events_purged", snapshot.events_purged),
            counter("writer_failures", snapshot.writer_failures),
            counter("webhook_delivered", snapshot.webhook_delivered),
            counter("webhook_failed", snapshot.webhook_failed),
            counter("webhook_dropped", snapshot.webhook_dropped),
        ];
        Ok(Response::new(Stats {
            kind: "archiver".into(),
            id: self.id.clone(),
            state: "serving".into(),
            uptime_ms: self.started_at.elapsed().as_millis() as u64,
            queues: Vec::new(),
            counters,
            histograms: Vec::new(),
            taken_at_ms: unix_ms(),
        }))
    }
}

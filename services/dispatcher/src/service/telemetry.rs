//! `GetStats` of a dispatcher: frontier depth per job, sessions, counters.

use std::collections::HashMap;
use std::sync::Arc;

use owlmesh_mesh::clock::unix_ms;
use owlmesh_mesh::telemetry::counter;
use owlmesh_proto::v1::telemetry_server::Telemetry;
use owlmesh_proto::v1::{GetStatsRequest, QueueDepth, Stats};
use tonic::{Request, Response, Status};

use super::Dispatcher;

/// The `Telemetry` service of a dispatcher.
pub(crate) struct DispatcherTelemetry(pub(crate) Arc<Dispatcher>);

fn queue(name: &str, depth: u64, labels: HashMap<String, String>) -> QueueDepth {
    QueueDepth {
        name: name.into(),
        depth,
        capacity: 0,
        labels,
    }
}

#[tonic::async_trait]
impl Telemetry for DispatcherTelemetry {
    async fn get_stats(&self, _: Request<GetStatsRequest>) -> Result<Response<Stats>, Status> {
        let dispatcher = &self.0;
        let depth = dispatcher
            .frontier
            .queue_depth()
            .await
            .map_err(|error| Status::unavailable(error.to_string()))?;
        let mut queues = vec![
            queue("frontier", depth.queued, HashMap::new()),
            queue("in_flight", depth.in_flight, HashMap::new()),
            queue("sessions", dispatcher.sessions.len() as u64, HashMap::new()),
            queue(
                "outcomes",
                (dispatcher.outcomes.max_capacity() - dispatcher.outcomes.capacity()) as u64,
                HashMap::new(),
            ),
        ];
        for job in depth.jobs {
            let labels = HashMap::from([("job".to_owned(), job.job_id.clone())]);
            queues.push(queue("frontier", job.queued, labels.clone()));
            queues.push(queue("in_flight", job.in_flight, labels));
        }
        let archive = dispatcher.events_outbox_depth();
        queues.push(queue("outbox", archive as u64, HashMap::new()));
        let counters = &dispatcher.counters;
        let counters = vec![
            counter("assigned", &counters.assigned),
            counter("outcomes", &counters.outcomes),
            counter("pages_done", &counters.done),
            counter("pages_failed", &counters.failed),
            counter("retries", &counters.retried),
            counter("stale_outcomes", &counters.stale),
            counter("links_admitted", &counters.links_admitted),
            counter("leases_expired", &counters.leases_expired),
            counter("leases_released", &counters.leases_released),
        ];
        let state = if dispatcher.is_primary() {
            "primary"
        } else {
            "standby"
        };
        Ok(Response::new(Stats {
            kind: "dispatcher".into(),
            id: dispatcher.config.id.clone(),
            state: state.into(),
            uptime_ms: dispatcher.started_at.elapsed().as_millis() as u64,
            queues,
            counters,
            histograms: Vec::new(),
            taken_at_ms: unix_ms(),
        }))
    }
}

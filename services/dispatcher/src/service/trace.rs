//! The dispatcher's part of a URL's trace: the `dispatch` span that starts it (one root per
//! claimed URL, sampled by the process's sampler) and the `outcome` span that ends it, a
//! child of the scraper's span. Both are only made when the process exports traces.

use std::time::Duration;

use owlmesh_mesh::trace_context::{self, TARGET};
use owlmesh_proto::v1::{Assignment, Outcome, OutcomeStatus};
use tracing::{Span, field::Empty, info_span};

use super::sessions::Delivered;
use crate::frontier::Claimed;

/// One `dispatch` span per claimed URL, whose context each assignment carries to the
/// scraper. The spans end when dropped: after the assignments were handed to the session.
pub(crate) fn dispatch_spans(
    claimed: &[Claimed],
    assignments: &mut [Assignment],
    scraper: &str,
    claim: Duration,
) -> Vec<Span> {
    if !trace_context::is_enabled() {
        return Vec::new();
    }
    let claim_ms = claim.as_secs_f64() * 1000.0;
    claimed
        .iter()
        .zip(assignments)
        .map(|(claimed, assignment)| {
            let span = info_span!(
                target: TARGET,
                parent: None,
                "dispatch",
                url = %claimed.url,
                job = %claimed.job_id,
                host = %claimed.host_key,
                epoch = claimed.epoch,
                depth = claimed.depth,
                attempt = claimed.attempt,
                lease_id = claimed.lease_id,
                scraper,
                claim_ms,
                trace_id = Empty,
            );
            assignment.trace_context = trace_context::of(&span);
            trace_context::record_trace_id(&span);
            span
        })
        .collect()
}

/// One `outcome` span per traced outcome of `delivered`, ending when dropped: after the
/// outcomes were recorded in the frontier.
pub(crate) fn outcome_spans(delivered: &[Delivered]) -> Vec<Span> {
    if !trace_context::is_enabled() {
        return Vec::new();
    }
    delivered
        .iter()
        .map(|item| outcome_span(&item.outcome))
        .filter(|span| !span.is_none())
        .collect()
}

fn outcome_span(outcome: &Outcome) -> Span {
    trace_context::child_span(&outcome.trace_context, || {
        let status = OutcomeStatus::try_from(outcome.status).unwrap_or_default();
        info_span!(
            target: TARGET,
            "outcome",
            url = %outcome.url,
            job = %outcome.job_id,
            lease_id = outcome.lease_id,
            status = status.as_str_name(),
            http_status = outcome.http_status,
            bytes = outcome.bytes,
            links = outcome.links.len(),
            items = outcome.items,
            documents = outcome.documents,
            trace_id = Empty,
        )
    })
}

//! The archiver's part of a URL's trace: an `archive` span for each traced page of a batch,
//! a child of the scraper's `scrape` span, from the batch's arrival until it is stored and
//! written. Batches are stored in group transactions, so the spans of pages stored together
//! share their timing.

use owlmesh_mesh::trace_context::{self, TARGET};
use owlmesh_proto::v1::ArchiveBatch;
use tracing::{Span, field::Empty, info_span};

/// The `archive` spans of the traced pages of `batch`, by position in the batch.
pub(crate) fn page_spans(batch: &ArchiveBatch) -> Vec<(usize, Span)> {
    if !trace_context::is_enabled() {
        return Vec::new();
    }
    batch
        .pages
        .iter()
        .enumerate()
        .filter(|(_, page)| !page.trace_context.is_empty())
        .map(|(at, page)| {
            let span = trace_context::child_span(&page.trace_context, || {
                info_span!(
                    target: TARGET,
                    "archive",
                    url = %page.url,
                    job = %page.job_id,
                    epoch = page.epoch,
                    handler = %page.handler,
                    http_status = page.http_status,
                    fields = page.fields.len(),
                    documents = page.documents.len(),
                    batch_id = batch.batch_id,
                    batch_pages = batch.pages.len(),
                    stored = Empty,
                    trace_id = Empty,
                )
            });
            (at, span)
        })
        .collect()
}

/// Records which pages were stored and which were duplicates of their key.
pub(crate) fn stored(spans: &[(usize, Span)], new_pages: &[usize]) {
    for (at, span) in spans {
        span.record("stored", new_pages.contains(at));
    }
}

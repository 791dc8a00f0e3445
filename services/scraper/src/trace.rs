//! The scraper's part of a URL's trace: a `scrape` span for each traced assignment, a child
//! of the dispatcher's `dispatch` span, with `fetch` and `extract` spans under it. The page
//! record and the outcome carry the `scrape` span's context on to the archiver and back to
//! the dispatcher. Nothing is made for assignments that carry no context.

use owlmesh_job::HostKey;
use owlmesh_mesh::trace_context::{self, TARGET};
use owlmesh_proto::v1::{Assignment, Outcome, OutcomeStatus};
use tracing::{Span, field::Empty, info_span};
use url::Url;

use crate::fetch::FetchResult;
use crate::page::Page;

/// The `scrape` span of `assignment`: a disabled span unless its trace is sampled.
pub(crate) fn scrape_span(assignment: &Assignment) -> Span {
    trace_context::child_span(&assignment.trace_context, || {
        let host = Url::parse(&assignment.url)
            .ok()
            .and_then(|url| HostKey::of(&url).map(String::from))
            .unwrap_or_default();
        info_span!(
            target: TARGET,
            "scrape",
            url = %assignment.url,
            job = %assignment.job_id,
            host,
            epoch = assignment.epoch,
            attempt = assignment.attempt,
            lease_id = assignment.lease_id,
            status = Empty,
            http_status = Empty,
            bytes = Empty,
            trace_id = Empty,
        )
    })
}

/// Records how the scrape ended and lets the outcome carry its context to the dispatcher.
pub(crate) fn finish(span: &Span, outcome: &mut Outcome) {
    if span.is_none() {
        return;
    }
    let status = OutcomeStatus::try_from(outcome.status).unwrap_or_default();
    span.record("status", status.as_str_name());
    span.record("http_status", outcome.http_status);
    span.record("bytes", outcome.bytes);
    outcome.trace_context = trace_context::of(span);
}

/// A `fetch` span under the current `scrape` span, if there is one.
pub(crate) fn fetch_span(url: &Url) -> Span {
    if !trace_context::is_enabled() || Span::current().is_none() {
        return Span::none();
    }
    info_span!(
        target: TARGET,
        "fetch",
        url = %url,
        http_status = Empty,
        bytes = Empty,
        final_url = Empty,
        error = Empty,
    )
}

/// Records what the fetch got.
pub(crate) fn fetched(span: &Span, result: &FetchResult) {
    if span.is_none() {
        return;
    }
    match result {
        Ok(fetched) => {
            span.record("http_status", fetched.status);
            span.record("bytes", fetched.bytes);
            span.record("final_url", tracing::field::display(&fetched.final_url));
        }
        Err(failure) => {
            span.record("http_status", failure.status);
            span.record("error", tracing::field::display(&failure.error));
        }
    }
}

/// An `extract` span under the current `scrape` span, if there is one.
pub(crate) fn extract_span() -> Span {
    if !trace_context::is_enabled() || Span::current().is_none() {
        return Span::none();
    }
    info_span!(
        target: TARGET,
        "extract",
        handler = Empty,
        fields = Empty,
        links = Empty,
        documents = Empty,
    )
}

/// Records what the extraction found.
pub(crate) fn extracted(span: &Span, page: &Page) {
    if span.is_none() {
        return;
    }
    let extraction = &page.extraction;
    span.record("handler", extraction.handler.as_deref().unwrap_or_default());
    span.record("fields", extraction.fields.len());
    span.record("links", extraction.links.len());
    span.record("documents", extraction.documents.len());
}

//! A tower layer that continues the caller's trace on the server side of a gRPC call: when
//! the call's metadata carries a W3C `traceparent`, the call is handled inside an `rpc` span
//! whose parent is the caller's span. Calls without one, and every call while the process
//! does not export traces, pass straight through.

use std::task::{Context, Poll};

use futures::future::Either;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing::instrument::Instrumented;

use crate::trace_context;

/// Adds [`TraceContextService`] around a server's routes.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextLayer;

/// The layer's constructor.
pub fn layer() -> TraceContextLayer {
    TraceContextLayer
}

impl<S> Layer<S> for TraceContextLayer {
    type Service = TraceContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceContextService { inner }
    }
}

/// Runs each traced call inside a span that continues the caller's trace.
#[derive(Debug, Clone)]
pub struct TraceContextService<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for TraceContextService<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, Instrumented<S::Future>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let span = trace_context::server_span(request.headers(), || {
            let method = request.uri().path();
            tracing::info_span!(
                target: trace_context::TARGET,
                "rpc",
                otel.name = method,
                otel.kind = "server",
                rpc.method = method,
                trace_id = tracing::field::Empty,
            )
        });
        if span.is_none() {
            return Either::Left(self.inner.call(request));
        }
        Either::Right(self.inner.call(request).instrument(span))
    }
}

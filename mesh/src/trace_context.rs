//! W3C trace context across the mesh: how one URL's trace travels between processes.
//!
//! Unary calls carry the context in gRPC metadata (`traceparent`, `tracestate`): clients
//! build their requests with [`request`], and every [`crate::grpc::GrpcServer`] continues
//! the caller's trace (see [`crate::trace_layer`]). Stream messages cannot carry metadata,
//! so the messages that carry work (`Assignment`, `PageRecord`, `Outcome`) have a
//! `trace_context` map that [`of`] fills and [`child_span`] reads.
//!
//! Nothing here costs anything unless the process exports traces: the launcher calls
//! [`enable`] once it installed an exporter, and until then every function returns at once,
//! with empty maps (which protobuf does not even encode) and disabled spans.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt, TraceId};
use opentelemetry::{Context, global};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// A W3C trace context as carried in messages: `traceparent`, maybe `tracestate`.
pub type TraceContext = HashMap<String, String>;

/// The target of the spans that follow work across the mesh: the OpenTelemetry layer
/// exports these (and warnings), whatever the log filter.
pub const TARGET: &str = "owlmesh::trace";

/// The span field that carries the trace id into log lines.
pub const TRACE_ID_FIELD: &str = "trace_id";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns propagation on: called once by a process that exports traces, after it installed
/// its tracer provider and the W3C propagator.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether this process exports traces (and so propagates their context).
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The context of `span` to send along with work, empty when tracing is off or the span's
/// trace is not sampled (the receiver then records nothing for it).
pub fn of(span: &Span) -> TraceContext {
    let mut carrier = TraceContext::new();
    if is_enabled() && !span.is_none() {
        inject(&span.context(), &mut MapCarrier(&mut carrier));
    }
    carrier
}

/// The context of the current span (see [`of`]).
pub fn current() -> TraceContext {
    if !is_enabled() {
        return TraceContext::new();
    }
    of(&Span::current())
}

/// A span that continues the trace in `carrier`: `make` builds it, and it becomes the child
/// of the remote span. A disabled span when tracing is off or `carrier` holds no valid
/// context, so that unsampled work costs no more than an empty map check.
pub fn child_span(carrier: &TraceContext, make: impl FnOnce() -> Span) -> Span {
    if !is_enabled() || carrier.is_empty() {
        return Span::none();
    }
    let parent = extract(&ReadMap(carrier));
    continue_trace(make, parent)
}

/// A tonic request for `message` that carries the current span's context in its metadata.
pub fn request<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if is_enabled() {
        let context = Span::current().context();
        inject(&context, &mut MetadataCarrier(request.metadata_mut()));
    }
    request
}

/// A span that continues the trace in `headers` (a call's metadata), or a disabled span
/// when tracing is off or the caller sent no context.
pub fn server_span(headers: &http::HeaderMap, make: impl FnOnce() -> Span) -> Span {
    if !is_enabled() || !headers.contains_key(TRACEPARENT) {
        return Span::none();
    }
    let parent = extract(&HeaderCarrier(headers));
    continue_trace(make, parent)
}

/// Writes the trace id of `span` into its [`TRACE_ID_FIELD`] field (when it declares one
/// and its trace is sampled), so every log line inside it names its trace.
pub fn record_trace_id(span: &Span) {
    if !is_enabled() || span.is_none() {
        return;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if span_context.is_sampled() && span_context.trace_id() != TraceId::INVALID {
        span.record(
            TRACE_ID_FIELD,
            tracing::field::display(span_context.trace_id()),
        );
    }
}

/// The header (and map key) of the W3C trace parent.
const TRACEPARENT: &str = "traceparent";

fn continue_trace(make: impl FnOnce() -> Span, parent: Context) -> Span {
    if !parent.span().span_context().is_valid() {
        return Span::none();
    }
    let span = make();
    if span.set_parent(parent).is_err() {
        return span;
    }
    record_trace_id(&span);
    span
}

/// Injects `context` when it is sampled: an unsampled trace is not propagated at all.
fn inject(context: &Context, injector: &mut dyn Injector) {
    if context.span().span_context().is_sampled() {
        global::get_text_map_propagator(|propagator| propagator.inject_context(context, injector));
    }
}

fn extract(extractor: &dyn Extractor) -> Context {
    global::get_text_map_propagator(|propagator| propagator.extract(extractor))
}

/// A message's `trace_context` map, to write.
struct MapCarrier<'a>(&'a mut TraceContext);

impl Injector for MapCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

/// A message's `trace_context` map, to read.
struct ReadMap<'a>(&'a TraceContext);

impl Extractor for ReadMap<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// A request's metadata, to write.
struct MetadataCarrier<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        let key = tonic::metadata::MetadataKey::from_bytes(key.as_bytes());
        if let (Ok(key), Ok(value)) = (key, value.parse()) {
            self.0.insert(key, value);
        }
    }
}

/// A request's headers, to read.
struct HeaderCarrier<'a>(&'a http::HeaderMap);

impl Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Runs `test` with an OpenTelemetry layer that samples everything, and propagation on.
    fn traced(test: impl FnOnce()) {
        global::set_text_map_propagator(TraceContextPropagator::new());
        enable();
        let provider = SdkTracerProvider::builder().build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, test);
    }

    fn trace_id_of(span: &Span) -> TraceId {
        span.context().span().span_context().trace_id()
    }

    #[test]
    fn a_sampled_span_travels_as_a_traceparent_and_its_child_joins_the_trace() {
        traced(|| {
            let root = tracing::info_span!(parent: None, "dispatch");
            let carrier = of(&root);
            let traceparent = &carrier[TRACEPARENT];
            assert!(traceparent.starts_with("00-"), "{traceparent}");
            assert!(traceparent.ends_with("-01"), "sampled flag: {traceparent}");
            let child = child_span(&carrier, || {
                tracing::info_span!("scrape", trace_id = tracing::field::Empty)
            });
            assert!(!child.is_none());
            assert_eq!(trace_id_of(&child), trace_id_of(&root));
            assert!(traceparent.contains(&trace_id_of(&root).to_string()));
        });
    }

    #[test]
    fn without_a_context_no_span_is_made() {
        traced(|| {
            let mut made = false;
            let span = child_span(&TraceContext::new(), || {
                made = true;
                tracing::info_span!("scrape")
            });
            assert!(span.is_none());
            assert!(!made);
            let garbage = TraceContext::from([(TRACEPARENT.to_owned(), "nonsense".to_owned())]);
            assert!(child_span(&garbage, || tracing::info_span!("scrape")).is_none());
        });
    }

    #[test]
    fn requests_carry_the_current_context_in_metadata() {
        traced(|| {
            let root = tracing::info_span!(parent: None, "submit");
            let request = root.in_scope(|| request(()));
            let header = request.metadata().get(TRACEPARENT).expect("traceparent");
            let headers = request.metadata().clone().into_headers();
            let span = server_span(&headers, || tracing::info_span!("rpc"));
            assert_eq!(trace_id_of(&span), trace_id_of(&root));
            assert!(
                header
                    .to_str()
                    .unwrap()
                    .contains(&trace_id_of(&root).to_string())
            );
        });
    }

    /// A log destination the test can read back.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_lines_inside_a_traced_span_name_the_trace() {
        global::set_text_map_propagator(TraceContextPropagator::new());
        enable();
        let provider = SdkTracerProvider::builder().build();
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let logs = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(move || writer.clone());
        let subscriber = tracing_subscriber::registry()
            .with(logs)
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let root = tracing::info_span!(parent: None, "dispatch");
            let carrier = of(&root);
            let span = child_span(&carrier, || {
                tracing::info_span!(
                    "scrape",
                    url = "http://site.test/a",
                    trace_id = tracing::field::Empty
                )
            });
            span.in_scope(|| tracing::warn!("slow page"));
            let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
            let expected = format!("trace_id={}", trace_id_of(&root));
            assert!(text.contains(&expected), "{expected} not in {text:?}");
            assert!(text.contains("slow page"), "{text:?}");
        });
    }

    #[test]
    fn a_span_without_the_layer_yields_an_empty_context() {
        enable();
        let span = tracing::info_span!("untraced");
        assert!(of(&span).is_empty());
        assert!(of(&Span::none()).is_empty());
    }
}

//! Tracing set-up: human-readable lines by default, JSON on request, always on stderr so
//! stdout stays for results and bound addresses; plus, when an OTLP endpoint is set, an
//! OpenTelemetry layer that exports the mesh's spans (see `crate::telemetry`).
//!
//! The two layers filter apart: `--log` chooses log lines, while the OpenTelemetry layer
//! takes the per-URL spans (target `owlmesh::trace`) and warnings, whatever the log level.
//! Those spans carry a `trace_id` field, so log lines inside them name their trace.

use owlmesh_mesh::trace_context::TARGET;
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::cli::{LogFormat, LogOptions};
use crate::telemetry::{Exporter, TraceOptions};

/// Installs the global subscriber for a process of `kind`; returns the exporter to shut
/// down at exit, if the process exports traces.
pub(crate) fn init(
    options: &LogOptions,
    trace: &TraceOptions,
    kind: &str,
) -> anyhow::Result<Option<Exporter>> {
    let filter = EnvFilter::try_new(&options.log).unwrap_or_else(|error| {
        eprintln!(
            "warning: --log {:?} is not a filter ({error}); using info",
            options.log
        );
        EnvFilter::new("info")
    });
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match options.log_format {
        LogFormat::Human => logs.boxed(),
        LogFormat::Json => logs.json().boxed(),
    };
    let (exporter, spans) = match trace.export_config(kind).map_err(anyhow::Error::msg)? {
        Some(config) => {
            let (exporter, tracer) = Exporter::start(&config)?;
            let spans = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_tracked_inactivity(false)
                // The mesh's trace spans are all at INFO. Asking for more (TRACE) would
                // raise the subscriber's level hint and make every debug and trace
                // callsite of the libraries (h2, hyper, sqlx…) be checked at run time.
                .with_filter(
                    Targets::new()
                        .with_target(TARGET, Level::INFO)
                        .with_default(Level::WARN),
                );
            (Some(exporter), Some(spans))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(spans)
        .init();
    Ok(exporter)
}

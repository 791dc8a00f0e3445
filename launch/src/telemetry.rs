//! OpenTelemetry traces: the options (the standard `OTEL_…` variables, or flags), the
//! sampler they name, and the tracer provider that exports spans over OTLP/gRPC. Without an
//! endpoint there is no provider at all, and tracing costs nothing beyond logging.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};

/// The sampler when `OTEL_TRACES_SAMPLER` is not set: follow the caller's decision, and
/// sample new traces (one per URL, started by the dispatcher) at the ratio.
pub(crate) const DEFAULT_SAMPLER: &str = "parentbased_traceidratio";
/// The ratio of ratio samplers when `OTEL_TRACES_SAMPLER_ARG` is not set: one URL in ten.
pub(crate) const DEFAULT_SAMPLE_RATIO: f64 = 0.1;
/// The only OTLP transport built in.
pub(crate) const PROTOCOL_GRPC: &str = "grpc";
/// How long a stopping process waits for its last spans to be exported.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(3);

/// Where and what to trace. Each option is a standard OpenTelemetry variable.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct TraceOptions {
    /// Export spans over OTLP to this collector, e.g. http://127.0.0.1:4317; no export
    /// when unset.
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub(crate) otlp_endpoint: Option<String>,
    /// OTLP transport: only "grpc" is built in.
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_PROTOCOL", default_value = PROTOCOL_GRPC)]
    pub(crate) otlp_protocol: String,
    /// Sampler: always_on, always_off, traceidratio, parentbased_always_on,
    /// parentbased_always_off or parentbased_traceidratio.
    #[arg(long, global = true, env = "OTEL_TRACES_SAMPLER", default_value = DEFAULT_SAMPLER)]
    pub(crate) trace_sampler: String,
    /// The ratio of the ratio samplers, between 0 and 1 (default 0.1).
    #[arg(long, global = true, env = "OTEL_TRACES_SAMPLER_ARG")]
    pub(crate) trace_sampler_arg: Option<String>,
    /// The `service.name` of this process; default: owlmesh-KIND, e.g. owlmesh-scraper.
    #[arg(long, global = true, env = "OTEL_SERVICE_NAME")]
    pub(crate) service_name: Option<String>,
}

/// A sampler as configured, before it becomes the SDK's.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SamplerChoice {
    AlwaysOn,
    AlwaysOff,
    /// Samples this fraction of trace ids.
    Ratio(f64),
    /// Follows the parent's decision; roots decide with the inner sampler.
    ParentBased(Box<SamplerChoice>),
}

impl SamplerChoice {
    /// The sampler named `name` (an `OTEL_TRACES_SAMPLER` value) with its argument.
    pub(crate) fn parse(name: &str, arg: Option<&str>) -> Result<Self, String> {
        let ratio = || parse_ratio(arg);
        let parent_based = |inner| Self::ParentBased(Box::new(inner));
        Ok(match name.trim() {
            "always_on" => Self::AlwaysOn,
            "always_off" => Self::AlwaysOff,
            "traceidratio" => Self::Ratio(ratio()?),
            "parentbased_always_on" => parent_based(Self::AlwaysOn),
            "parentbased_always_off" => parent_based(Self::AlwaysOff),
            "parentbased_traceidratio" => parent_based(Self::Ratio(ratio()?)),
            other => {
                return Err(format!(
                    "OTEL_TRACES_SAMPLER: {other:?} is not supported; use always_on, always_off, \
                     traceidratio, parentbased_always_on, parentbased_always_off or \
                     parentbased_traceidratio"
                ));
            }
        })
    }

    fn to_sdk(&self) -> Sampler {
        match self {
            Self::AlwaysOn => Sampler::AlwaysOn,
            Self::AlwaysOff => Sampler::AlwaysOff,
            Self::Ratio(ratio) => Sampler::TraceIdRatioBased(*ratio),
            Self::ParentBased(inner) => Sampler::ParentBased(Box::new(inner.to_sdk())),
        }
    }
}

fn parse_ratio(arg: Option<&str>) -> Result<f64, String> {
    let Some(text) = arg.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(DEFAULT_SAMPLE_RATIO);
    };
    match text.parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err(format!(
            "OTEL_TRACES_SAMPLER_ARG: expected a ratio between 0 and 1, got {text:?}"
        )),
    }
}

/// What a process exports, once its options are checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExportConfig {
    pub(crate) endpoint: String,
    pub(crate) sampler: SamplerChoice,
    pub(crate) service_name: String,
}

impl TraceOptions {
    /// The export configuration, `None` when no endpoint is set; an error names the
    /// variable that is wrong.
    pub(crate) fn export_config(&self, kind: &str) -> Result<Option<ExportConfig>, String> {
        let Some(endpoint) = self
            .otlp_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|endpoint| !endpoint.is_empty())
        else {
            return Ok(None);
        };
        if self.otlp_protocol.trim() != PROTOCOL_GRPC {
            return Err(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL: {:?} is not supported; use {PROTOCOL_GRPC}",
                self.otlp_protocol
            ));
        }
        let sampler = SamplerChoice::parse(&self.trace_sampler, self.trace_sampler_arg.as_deref())?;
        let service_name = self
            .service_name
            .clone()
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| default_service_name(kind));
        Ok(Some(ExportConfig {
            endpoint: endpoint.to_owned(),
            sampler,
            service_name,
        }))
    }

    /// The variables a child process of `owlmesh up` gets, so that options given to `up`
    /// as flags reach it too. `OTEL_SERVICE_NAME` only when it was set: otherwise each child
    /// names itself after its kind.
    pub(crate) fn child_environment(&self) -> Vec<(&'static str, String)> {
        let mut variables = Vec::new();
        if let Some(endpoint) = &self.otlp_endpoint {
            variables.push(("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()));
        }
        variables.push(("OTEL_EXPORTER_OTLP_PROTOCOL", self.otlp_protocol.clone()));
        variables.push(("OTEL_TRACES_SAMPLER", self.trace_sampler.clone()));
        if let Some(arg) = &self.trace_sampler_arg {
            variables.push(("OTEL_TRACES_SAMPLER_ARG", arg.clone()));
        }
        if let Some(name) = &self.service_name {
            variables.push(("OTEL_SERVICE_NAME", name.clone()));
        }
        variables
    }
}

/// `owlmesh-KIND`, the `service.name` of a process that was given none.
pub(crate) fn default_service_name(kind: &str) -> String {
    format!("owlmesh-{kind}")
}

/// The tracer provider of a process that exports, flushed when dropped through
/// [`Exporter::shutdown`].
pub(crate) struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    /// Starts exporting as `config` says; must run inside the Tokio runtime (the gRPC
    /// channel's connection lives there).
    pub(crate) fn start(config: &ExportConfig) -> anyhow::Result<(Self, SdkTracer)> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(&config.endpoint)
            .build()
            .with_context(|| format!("cannot export traces to {}", config.endpoint))?;
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(config.sampler.to_sdk())
            .with_resource(resource)
            .build();
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let tracer = provider.tracer("owlmesh");
        owlmesh_mesh::trace_context::enable();
        Ok((Self { provider }, tracer))
    }

    /// Exports the spans still queued, waiting a few seconds at most.
    pub(crate) fn shutdown(self) {
        if let Err(error) = self.provider.shutdown_with_timeout(FLUSH_TIMEOUT) {
            eprintln!("warning: the last spans were not exported: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(endpoint: Option<&str>) -> TraceOptions {
        TraceOptions {
            otlp_endpoint: endpoint.map(str::to_owned),
            otlp_protocol: PROTOCOL_GRPC.into(),
            trace_sampler: DEFAULT_SAMPLER.into(),
            trace_sampler_arg: None,
            service_name: None,
        }
    }

    #[test]
    fn without_an_endpoint_nothing_is_exported() {
        assert_eq!(options(None).export_config("scraper"), Ok(None));
        assert_eq!(options(Some("  ")).export_config("scraper"), Ok(None));
    }

    #[test]
    fn the_default_is_a_parent_based_ratio_and_a_name_after_the_kind() {
        let config = options(Some("http://127.0.0.1:4317"))
            .export_config("dispatcher")
            .unwrap()
            .unwrap();
        assert_eq!(config.endpoint, "http://127.0.0.1:4317");
        assert_eq!(config.service_name, "owlmesh-dispatcher");
        assert_eq!(
            config.sampler,
            SamplerChoice::ParentBased(Box::new(SamplerChoice::Ratio(DEFAULT_SAMPLE_RATIO)))
        );
    }

    #[test]
    fn an_explicit_service_name_wins() {
        let mut options = options(Some("http://collector:4317"));
        options.service_name = Some("crawler".into());
        let config = options.export_config("scraper").unwrap().unwrap();
        assert_eq!(config.service_name, "crawler");
    }

    #[test]
    fn every_standard_sampler_is_understood() {
        use SamplerChoice::*;
        let parent = |inner| ParentBased(Box::new(inner));
        let cases = [
            ("always_on", None, AlwaysOn),
            ("always_off", None, AlwaysOff),
            ("traceidratio", Some("0.25"), Ratio(0.25)),
            ("traceidratio", None, Ratio(DEFAULT_SAMPLE_RATIO)),
            ("parentbased_always_on", None, parent(AlwaysOn)),
            ("parentbased_always_off", None, parent(AlwaysOff)),
            ("parentbased_traceidratio", Some("1"), parent(Ratio(1.0))),
        ];
        for (name, arg, expected) in cases {
            assert_eq!(SamplerChoice::parse(name, arg), Ok(expected), "{name}");
        }
    }

    #[test]
    fn bad_sampler_settings_name_their_variable() {
        let error = SamplerChoice::parse("jaeger_remote", None).unwrap_err();
        assert!(
            error.starts_with("OTEL_TRACES_SAMPLER: \"jaeger_remote\""),
            "{error}"
        );
        for arg in ["2", "-0.1", "half"] {
            let error = SamplerChoice::parse("traceidratio", Some(arg)).unwrap_err();
            assert!(error.starts_with("OTEL_TRACES_SAMPLER_ARG:"), "{error}");
        }
    }

    #[test]
    fn only_grpc_is_accepted_as_the_protocol() {
        let mut options = options(Some("http://127.0.0.1:4318"));
        options.otlp_protocol = "http/protobuf".into();
        let error = options.export_config("archiver").unwrap_err();
        assert_eq!(
            error,
            "OTEL_EXPORTER_OTLP_PROTOCOL: \"http/protobuf\" is not supported; use grpc"
        );
    }

    #[test]
    fn children_get_the_options_given_to_up() {
        let mut options = options(Some("http://127.0.0.1:4317"));
        options.trace_sampler = "always_on".into();
        let variables = options.child_environment();
        assert!(variables.contains(&(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://127.0.0.1:4317".into()
        )));
        assert!(variables.contains(&("OTEL_TRACES_SAMPLER", "always_on".into())));
        assert!(
            !variables
                .iter()
                .any(|(name, _)| *name == "OTEL_SERVICE_NAME")
        );
    }
}

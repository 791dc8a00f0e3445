//! `owlmesh try URL --job FILE`: fetch one page through a scraper and show what the job's
//! handlers extract, without archiving anything. For writing job specs.

use crate::output::outln;
use owlmesh_mesh::api;
use owlmesh_mesh::trace_context::{self, TARGET};
use owlmesh_proto::v1::TryRequest;
use owlmesh_proto::v1::field_value::Value;
use serde_json::json;
use tracing::Instrument;
use tracing::field::Empty;

use crate::cli::TryOptions;
use crate::mesh::{Mesh, status_error};

/// Prints the extraction of one page.
pub(crate) async fn run(options: TryOptions) -> anyhow::Result<()> {
    let spec = owlmesh_job::parse_job_file(&options.job)?;
    let mesh = Mesh::connect(&options.client.directory).await?;
    let scrapers = mesh.list("scraper").await?;
    let scraper = scrapers
        .first()
        .ok_or_else(|| anyhow::anyhow!("no scraper is running in the mesh"))?;
    // Traced as one call: the scraper's `rpc` span continues this one.
    let span = tracing::info_span!(target: TARGET, "try", url = %options.url, trace_id = Empty);
    trace_context::record_trace_id(&span);
    let request = span.in_scope(|| {
        trace_context::request(TryRequest {
            url: options.url.clone(),
            spec: Some(spec),
        })
    });
    let answer = api::scraper_client(mesh.channel(scraper)?)
        .r#try(request)
        .instrument(span)
        .await
        .map_err(status_error)?
        .into_inner();
    let fields: serde_json::Map<String, serde_json::Value> = answer
        .fields
        .iter()
        .map(|(name, value)| {
            let value = match &value.value {
                Some(Value::Text(text)) => json!(text),
                Some(Value::List(list)) => json!(list.values),
                None => serde_json::Value::Null,
            };
            (name.clone(), value)
        })
        .collect();
    let documents: Vec<serde_json::Value> = answer
        .documents
        .iter()
        .map(|d| json!({"url": d.url, "type": d.r#type, "found_on": d.found_on}))
        .collect();
    let report = json!({
        "url": options.url,
        "final_url": answer.final_url,
        "http_status": answer.http_status,
        "handler": answer.handler,
        "fields": fields,
        "links": answer.links,
        "documents": documents,
        "error": answer.error,
    });
    if options.client.json {
        outln!("{report}")?;
    } else {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    }
    if !answer.error.is_empty() {
        anyhow::bail!("{}: {}", options.url, answer.error);
    }
    Ok(())
}

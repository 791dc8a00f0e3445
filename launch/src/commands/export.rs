//! `owlmesh export`: a job's data items (or documents) from every archiver shard, as JSON
//! lines or CSV, streamed so memory stays flat however large the job.

use std::collections::BTreeSet;
use std::io::Write;

use anyhow::Context;
use owlmesh_proto::v1::ExportRequest;
use owlmesh_proto::v1::archiver_client::ArchiverClient;

use crate::cli::{ExportFormat, ExportOptions};
use crate::mesh::{Mesh, status_error};

/// Writes the export to stdout or `--output`.
pub(crate) async fn run(options: ExportOptions) -> anyhow::Result<()> {
    let mesh = Mesh::connect(&options.client.directory).await?;
    let mut output: Box<dyn Write> = match &options.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    match options.format {
        ExportFormat::Jsonl => {
            each_line(&mesh, &options, |line| {
                output.write_all(line)?;
                output.write_all(b"\n")?;
                Ok(())
            })
            .await?
        }
        ExportFormat::Csv => write_csv(&mesh, &options, &mut output).await?,
    }
    output.flush()?;
    Ok(())
}

/// Calls `each` with every JSON line of the job's export, shard after shard.
async fn each_line(
    mesh: &Mesh,
    options: &ExportOptions,
    mut each: impl FnMut(&[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let archivers = mesh.list("archiver").await?;
    anyhow::ensure!(!archivers.is_empty(), "no archiver is running in the mesh");
    for archiver in archivers {
        let mut client = ArchiverClient::new(mesh.channel(&archiver)?);
        let request = ExportRequest {
            job_id: options.id.clone(),
            format: "jsonl".into(),
            documents: options.documents,
        };
        let mut chunks = client
            .export(request)
            .await
            .map_err(status_error)?
            .into_inner();
        let mut pending = Vec::new();
        while let Some(chunk) = chunks.message().await.map_err(status_error)? {
            pending.extend_from_slice(&chunk.data);
            let mut start = 0;
            while let Some(end) = pending[start..].iter().position(|b| *b == b'\n') {
                each(&pending[start..start + end])?;
                start += end + 1;
            }
            pending.drain(..start);
        }
        if !pending.is_empty() {
            each(&pending)?;
        }
    }
    Ok(())
}

/// CSV over every shard: a first pass learns the columns, a second writes the rows.
async fn write_csv(
    mesh: &Mesh,
    options: &ExportOptions,
    output: &mut dyn Write,
) -> anyhow::Result<()> {
    let fixed: &[&str] = if options.documents {
        &["url", "type", "found_on"]
    } else {
        &["url", "handler", "fetched_at"]
    };
    let mut field_names = BTreeSet::new();
    if !options.documents {
        each_line(mesh, options, |line| {
            let item: serde_json::Value = serde_json::from_slice(line)?;
            if let Some(fields) = item["fields"].as_object() {
                field_names.extend(fields.keys().cloned());
            }
            Ok(())
        })
        .await?;
    }
    let mut writer = csv::Writer::from_writer(output);
    let header: Vec<&str> = fixed
        .iter()
        .copied()
        .chain(field_names.iter().map(String::as_str))
        .collect();
    writer.write_record(&header)?;
    each_line(mesh, options, |line| {
        let item: serde_json::Value = serde_json::from_slice(line)?;
        let mut row: Vec<String> = fixed.iter().map(|key| text(&item[*key])).collect();
        row.extend(field_names.iter().map(|name| text(&item["fields"][name])));
        writer.write_record(&row)?;
        Ok(())
    })
    .await?;
    writer.flush()?;
    Ok(())
}

/// A JSON value as a CSV cell: strings as they are, lists joined with " | ".
fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Array(values) => values.iter().map(text).collect::<Vec<_>>().join(" | "),
        other => other.to_string(),
    }
}

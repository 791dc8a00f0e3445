//! `owlmesh export`: a job's data items (or documents) from every archiver shard, as JSON
//! lines or CSV, streamed so that memory holds one hash per record, not the records.
//!
//! Each shard stores a page once (its idempotency key is job, URL and epoch), but two shards
//! may both hold it: when an archiver dies after storing a batch and before its
//! acknowledgement arrives, the producers send the batch again to the key's new owner. The
//! export merges the shards so that such a page is written once (see [`ShardMerge`]).

use std::collections::{BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;

use anyhow::Context;
use owlmesh_archiver::spreadsheet_safe;
use owlmesh_mesh::api;
use owlmesh_proto::v1::ExportRequest;

use crate::cli::{ExportFormat, ExportOptions};
use crate::mesh::{Mesh, status_error};

/// Writes the export to stdout or `--output`. When stdout is closed before the export ends
/// (`owlmesh export … | head`), the write fails with a broken pipe and `main` ends quietly.
///
/// The export is machine-readable in either format, so the global `--json` asks for nothing
/// beyond the default JSON lines; with `--format csv` it contradicts itself and is refused.
pub(crate) async fn run(options: ExportOptions) -> anyhow::Result<()> {
    if options.client.json && options.format == ExportFormat::Csv {
        anyhow::bail!(
            "--json and --format csv ask for two formats: the export writes JSON lines \
             (the default, also with --json) or CSV (--format csv), not both"
        );
    }
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
    let mut merge = ShardMerge::default();
    let mut each = |merge: &mut ShardMerge, line: &[u8]| -> anyhow::Result<()> {
        if merge.admit(record_key(line, options.documents)) {
            each(line)?;
        }
        Ok(())
    };
    for archiver in archivers {
        merge.next_shard();
        let mut client = api::archiver_client(mesh.channel(&archiver)?);
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
                each(&mut merge, &pending[start..start + end])?;
                start += end + 1;
            }
            pending.drain(..start);
        }
        if !pending.is_empty() {
            each(&mut merge, &pending)?;
        }
    }
    Ok(())
}

/// Merges the records of several shards: a record is written as many times as the one shard
/// that holds it most often. A data item is one record per (URL, epoch) in a shard, so a page
/// two shards hold is written once; a document found on one page is one record per epoch, so
/// its rows are not merged away within a shard.
#[derive(Default)]
struct ShardMerge {
    written: HashMap<u128, u32>,
    in_shard: HashMap<u128, u32>,
}

impl ShardMerge {
    /// The next records come from another shard.
    fn next_shard(&mut self) {
        self.in_shard.clear();
    }

    /// Whether a record with this key is to be written.
    fn admit(&mut self, key: u128) -> bool {
        let in_shard = self.in_shard.entry(key).or_default();
        *in_shard += 1;
        let written = self.written.entry(key).or_default();
        if *in_shard > *written {
            *written += 1;
            return true;
        }
        false
    }
}

/// The identity of an exported line: (URL, epoch) for a data item, the whole line for a
/// document; 128 bits of hash, so that memory stays small and a clash is out of reach.
fn record_key(line: &[u8], documents: bool) -> u128 {
    let item = (!documents)
        .then(|| serde_json::from_slice::<serde_json::Value>(line).ok())
        .flatten();
    let hash = |salt: u8| {
        let mut hasher = DefaultHasher::new();
        salt.hash(&mut hasher);
        match &item {
            Some(item) => {
                item["url"].as_str().hash(&mut hasher);
                item["epoch"].as_u64().hash(&mut hasher);
            }
            None => line.hash(&mut hasher),
        }
        hasher.finish()
    };
    (u128::from(hash(0)) << 64) | u128::from(hash(1))
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
    writer.write_record(
        header
            .iter()
            .map(|cell| spreadsheet_safe(cell).into_owned()),
    )?;
    each_line(mesh, options, |line| {
        let item: serde_json::Value = serde_json::from_slice(line)?;
        let mut row: Vec<String> = fixed.iter().map(|key| text(&item[*key])).collect();
        row.extend(field_names.iter().map(|name| text(&item["fields"][name])));
        writer.write_record(row.iter().map(|cell| spreadsheet_safe(cell).into_owned()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn item(url: &str, epoch: u64, fetched_at: &str) -> Vec<u8> {
        let line = serde_json::json!({"url": url, "handler": "product", "fields": {},
            "fetched_at": fetched_at, "epoch": epoch});
        line.to_string().into_bytes()
    }

    #[test]
    fn a_page_two_shards_hold_is_exported_once() {
        let mut merge = ShardMerge::default();
        let admit = |merge: &mut ShardMerge, line: &[u8], documents| {
            merge.admit(record_key(line, documents))
        };
        merge.next_shard();
        assert!(admit(&mut merge, &item("http://a/1", 1, "t1"), false));
        assert!(admit(&mut merge, &item("http://a/1", 2, "t2"), false));
        merge.next_shard();
        // The same page stored again by the next shard, from a resent batch or a re-fetch.
        assert!(!admit(&mut merge, &item("http://a/1", 1, "t3"), false));
        assert!(admit(&mut merge, &item("http://a/2", 1, "t1"), false));
    }

    #[test]
    fn documents_repeated_within_a_shard_are_kept() {
        let mut merge = ShardMerge::default();
        let line = br#"{"url":"http://a/x.pdf","type":"pdf","found_on":"http://a/1"}"#;
        merge.next_shard();
        assert!(merge.admit(record_key(line, true)));
        assert!(
            merge.admit(record_key(line, true)),
            "found again in epoch 2"
        );
        merge.next_shard();
        assert!(
            !merge.admit(record_key(line, true)),
            "the same rows, from a copy"
        );
        assert!(!merge.admit(record_key(line, true)));
        assert!(
            merge.admit(record_key(line, true)),
            "this shard has one more"
        );
    }
}

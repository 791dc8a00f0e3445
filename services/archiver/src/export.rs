//! The body of the streaming `Export` RPC: a job's data items as JSON lines or CSV, or its
//! found documents, rendered page by page from keyset-paged queries so that memory stays flat
//! however large the job.
//!
//! An item export is a snapshot: it covers the items stored when it started. CSV needs its
//! columns up front (url, handler, fetched_at, then the union of field names, sorted), so it
//! reads the snapshot's field names in a first pass.

use std::collections::{BTreeSet, VecDeque};

use futures::Stream;

use crate::error::{ArchiverError, Result};
use crate::item::{DocumentLine, Fields, ItemLine, rfc3339};
use crate::store::{
    ArchiveStore, DocumentQuery, ItemQuery, MAX_PAGE_SIZE, PageToken, StoredDocument, StoredItem,
};

/// The most bytes in one streamed chunk, well under gRPC's default 4 MiB message limit.
pub(crate) const MAX_CHUNK_BYTES: usize = 256 * 1024;
/// The columns every item CSV starts with.
const ITEM_COLUMNS: [&str; 3] = ["url", "handler", "fetched_at"];
/// The columns of a document CSV.
const DOCUMENT_COLUMNS: [&str; 3] = ["url", "type", "found_on"];

/// How an export is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExportFormat {
    /// One JSON object per line.
    JsonLines,
    /// A header row, then one row per record.
    Csv,
}

impl ExportFormat {
    /// Reads the request's `format`: `"jsonl"` (also the default, `""`) or `"csv"`.
    pub(crate) fn parse(format: &str) -> Result<Self> {
        match format {
            "" | "jsonl" => Ok(Self::JsonLines),
            "csv" => Ok(Self::Csv),
            _ => Err(ArchiverError::invalid(
                "format",
                "must be \"jsonl\" or \"csv\"",
            )),
        }
    }
}

/// What to export.
#[derive(Debug, Clone)]
pub(crate) struct ExportSpec {
    /// The job.
    pub job_id: String,
    /// The rendering.
    pub format: ExportFormat,
    /// Found documents instead of data items.
    pub documents: bool,
}

/// The export as a stream of byte chunks; it ends after the first error.
pub(crate) fn export_stream(
    store: ArchiveStore,
    spec: ExportSpec,
) -> impl Stream<Item = Result<Vec<u8>>> + Send + 'static {
    let exporter = Exporter::new(store, spec);
    futures::stream::unfold(exporter, |mut exporter| async move {
        match exporter.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), exporter)),
            Ok(None) => None,
            Err(error) => {
                exporter.finished = true;
                Some((Err(error), exporter))
            }
        }
    })
}

/// The state of one export between chunks.
struct Exporter {
    store: ArchiveStore,
    spec: ExportSpec,
    started: bool,
    finished: bool,
    /// The last item of the snapshot.
    up_to: Option<PageToken>,
    /// Where the next page starts.
    after: Option<PageToken>,
    /// The CSV field columns, after the fixed ones.
    field_columns: Vec<String>,
    /// Rendered chunks not yet handed out.
    pending: VecDeque<Vec<u8>>,
}

impl Exporter {
    fn new(store: ArchiveStore, spec: ExportSpec) -> Self {
        Self {
            store,
            spec,
            started: false,
            finished: false,
            up_to: None,
            after: None,
            field_columns: Vec::new(),
            pending: VecDeque::new(),
        }
    }

    /// The next chunk, or `None` when the export is complete.
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                return Ok(Some(chunk));
            }
            if self.finished {
                return Ok(None);
            }
            let rendered = if !self.started {
                self.started = true;
                self.start().await?
            } else if self.spec.documents {
                self.document_page().await?
            } else {
                self.item_page().await?
            };
            self.pending.extend(split_chunks(rendered));
        }
    }

    /// Takes the snapshot and renders the CSV header, if any.
    async fn start(&mut self) -> Result<Vec<u8>> {
        if !self.spec.documents {
            self.up_to = self.store.last_item(&self.spec.job_id).await?;
            self.finished = self.up_to.is_none();
        }
        if self.spec.format != ExportFormat::Csv {
            return Ok(Vec::new());
        }
        if self.spec.documents {
            return csv_rows([DOCUMENT_COLUMNS.map(String::from).to_vec()]);
        }
        if self.up_to.is_some() {
            self.field_columns = self.field_names().await?;
        }
        let header = ITEM_COLUMNS.iter().map(|column| column.to_string());
        csv_rows([header.chain(self.field_columns.iter().cloned()).collect()])
    }

    /// The sorted union of the snapshot's field names.
    async fn field_names(&self) -> Result<Vec<String>> {
        let mut names = BTreeSet::new();
        let mut after = None;
        loop {
            let page = self.store.items(&self.item_query(after)).await?;
            for item in &page.rows {
                names.extend(item.fields.keys().cloned());
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(names.into_iter().collect()),
            }
        }
    }

    fn item_query(&self, after: Option<PageToken>) -> ItemQuery {
        ItemQuery {
            job_id: self.spec.job_id.clone(),
            handler: None,
            after,
            limit: MAX_PAGE_SIZE,
            up_to: self.up_to,
        }
    }

    async fn item_page(&mut self) -> Result<Vec<u8>> {
        let page = self.store.items(&self.item_query(self.after)).await?;
        self.advance(page.next);
        match self.spec.format {
            ExportFormat::JsonLines => json_lines(page.rows.iter().map(item_line)),
            ExportFormat::Csv => csv_rows(page.rows.iter().map(|item| self.item_row(item))),
        }
    }

    async fn document_page(&mut self) -> Result<Vec<u8>> {
        let query = DocumentQuery {
            job_id: self.spec.job_id.clone(),
            after: self.after,
            limit: MAX_PAGE_SIZE,
        };
        let page = self.store.documents(&query).await?;
        self.advance(page.next);
        match self.spec.format {
            ExportFormat::JsonLines => json_lines(page.rows.iter().map(document_line)),
            ExportFormat::Csv => csv_rows(page.rows.iter().map(document_row)),
        }
    }

    fn advance(&mut self, next: Option<PageToken>) {
        self.after = next;
        self.finished = next.is_none();
    }

    fn item_row(&self, item: &StoredItem) -> Vec<String> {
        let fixed = [
            item.url.clone(),
            item.handler.clone(),
            rfc3339(item.fetched_at_ms),
        ];
        let fields = self.field_columns.iter().map(|name| {
            item.fields
                .get(name)
                .map(|value| value.to_cell())
                .unwrap_or_default()
        });
        fixed.into_iter().chain(fields).collect()
    }
}

fn item_line(item: &StoredItem) -> ItemLine<'_, &Fields> {
    ItemLine {
        job_id: None,
        url: &item.url,
        handler: &item.handler,
        fields: &item.fields,
        fetched_at: rfc3339(item.fetched_at_ms),
        epoch: item.epoch,
        changed: item.changed,
    }
}

fn document_line(document: &StoredDocument) -> DocumentLine<'_> {
    DocumentLine {
        url: &document.url,
        document_type: &document.document_type,
        found_on: &document.found_on,
    }
}

fn document_row(document: &StoredDocument) -> Vec<String> {
    vec![
        document.url.clone(),
        document.document_type.clone(),
        document.found_on.clone(),
    ]
}

/// Renders records as JSON lines.
fn json_lines<T: serde::Serialize>(records: impl Iterator<Item = T>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for record in records {
        serde_json::to_writer(&mut out, &record)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Renders rows as CSV, every cell [`spreadsheet_safe`].
fn csv_rows(rows: impl IntoIterator<Item = Vec<String>>) -> Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.write_record(row.iter().map(|cell| spreadsheet_safe(cell).into_owned()))?;
    }
    writer
        .into_inner()
        .map_err(|error| ArchiverError::Csv(error.into_error().into()))
}

/// A CSV cell that a spreadsheet shows as text: one starting with `=`, `+`, `-`, `@`, a tab
/// or a carriage return would be read as a formula (CSV injection: a crawled page titled
/// `=HYPERLINK(…)` runs in whoever opens the export), so it gets a leading `'`, as OWASP
/// advises. Numbers such as `-5` are quoted too; the JSON lines export keeps every value as
/// it was crawled.
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// Cuts rendered bytes into chunks of at most [`MAX_CHUNK_BYTES`]; nothing for no bytes.
fn split_chunks(bytes: Vec<u8>) -> Vec<Vec<u8>> {
    match bytes.len() {
        0 => Vec::new(),
        length if length <= MAX_CHUNK_BYTES => vec![bytes],
        _ => bytes.chunks(MAX_CHUNK_BYTES).map(<[u8]>::to_vec).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_with_jsonl_as_default() {
        assert_eq!(ExportFormat::parse("").ok(), Some(ExportFormat::JsonLines));
        assert_eq!(ExportFormat::parse("csv").ok(), Some(ExportFormat::Csv));
        let error = ExportFormat::parse("xml")
            .err()
            .map(|error| error.to_string());
        assert_eq!(
            error.as_deref(),
            Some("format: must be \"jsonl\" or \"csv\"")
        );
    }

    #[test]
    fn chunks_are_bounded_and_lossless() {
        let bytes: Vec<u8> = (0..MAX_CHUNK_BYTES * 2 + 10).map(|i| i as u8).collect();
        let chunks = split_chunks(bytes.clone());
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|chunk| chunk.len() <= MAX_CHUNK_BYTES));
        assert_eq!(chunks.concat(), bytes);
        assert!(split_chunks(Vec::new()).is_empty());
    }
}

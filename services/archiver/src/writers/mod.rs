//! The result writers, fed with the new data items of each committed batch: a JSON-lines file
//! per job and any number of webhooks. They never fail a write: the archive is the record, and
//! a writer's failure is logged and counted (the `Export` RPC can always redo a file).

mod jsonl;
mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;

use owlmesh_proto::v1::PageRecord;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::Result;
use crate::item::{ItemLine, borrow_fields, rfc3339};
use crate::{ArchiveConfig, ArchiverStats, Counter};

pub(crate) use jsonl::JsonLinesWriter;
pub(crate) use webhook::WebhookWriter;

/// Every configured writer, fed together.
#[derive(Debug)]
pub(crate) struct ResultWriters {
    jsonl: Option<JsonLinesWriter>,
    webhooks: Vec<WebhookWriter>,
    stats: Arc<ArchiverStats>,
}

/// What the writers need besides the configuration: the counters to update, the tracker that
/// owns their tasks, and the token that starts their drain at shutdown.
#[derive(Debug, Clone)]
pub(crate) struct WriterContext {
    /// Counters of deliveries and failures.
    pub stats: Arc<ArchiverStats>,
    /// Tracks the webhook delivery tasks.
    pub tasks: TaskTracker,
    /// Cancelled at shutdown: queues close and drain what they hold.
    pub shutdown: CancellationToken,
}

impl ResultWriters {
    /// Starts the writers that `config` asks for.
    pub(crate) fn start(config: &ArchiveConfig, context: &WriterContext) -> Result<Self> {
        let jsonl = config.jsonl_files.then(|| {
            JsonLinesWriter::new(config.data_dir.clone(), config.durability.syncs_files())
        });
        let webhooks = match config.webhooks.urls.is_empty() {
            true => Vec::new(),
            false => {
                let client =
                    webhook::http_client(config.webhooks.timeout, &config.webhooks.egress)?;
                let start = |url: &String| {
                    WebhookWriter::start(url.clone(), &config.webhooks, client.clone(), context)
                };
                config.webhooks.urls.iter().map(start).collect()
            }
        };
        Ok(Self {
            jsonl,
            webhooks,
            stats: context.stats.clone(),
        })
    }

    /// Hands newly stored pages to every writer; pages without a handler are not data items
    /// and are skipped.
    pub(crate) async fn write_items(&self, pages: &[&PageRecord]) {
        let items: Vec<&PageRecord> = pages
            .iter()
            .copied()
            .filter(|page| !page.handler.is_empty())
            .collect();
        if items.is_empty() {
            return;
        }
        if let Some(jsonl) = &self.jsonl
            && let Err(error) = write_files(jsonl, &items).await
        {
            tracing::warn!(%error, "json-lines writer failed");
            self.stats.add(Counter::WriterFailures, 1);
        }
        if !self.webhooks.is_empty() {
            self.enqueue_webhooks(&items);
        }
    }

    fn enqueue_webhooks(&self, items: &[&PageRecord]) {
        for page in items {
            let body = match serde_json::to_vec(&item_line(page, Some(&page.job_id))) {
                Ok(body) => body,
                Err(error) => {
                    tracing::warn!(%error, url = %page.url, "item could not be encoded");
                    continue;
                }
            };
            for webhook in &self.webhooks {
                webhook.enqueue(body.clone());
            }
        }
    }
}

/// Appends each job's items to its file, one write per job.
async fn write_files(jsonl: &JsonLinesWriter, items: &[&PageRecord]) -> Result<()> {
    let mut by_job: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for page in items {
        let lines = by_job.entry(page.job_id.as_str()).or_default();
        serde_json::to_writer(&mut *lines, &item_line(page, None))?;
        lines.push(b'\n');
    }
    for (job_id, lines) in by_job {
        jsonl.append(job_id, &lines).await?;
    }
    Ok(())
}

/// The JSON line of a wire page: `{"url","handler","fields","fetched_at","epoch"}`, with `job_id` in
/// front when given.
fn item_line<'a>(
    page: &'a PageRecord,
    job_id: Option<&'a str>,
) -> ItemLine<'a, impl serde::Serialize + 'a> {
    ItemLine {
        job_id,
        url: &page.url,
        handler: &page.handler,
        fields: borrow_fields(&page.fields),
        fetched_at: rfc3339(page.fetched_at_ms),
        epoch: page.epoch,
        // Change detection runs in the store's transaction; the file records the fetch only.
        changed: None,
    }
}

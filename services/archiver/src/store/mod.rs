//! The archive: pages and their data items, found documents and the mesh's events, in SQLite
//! (the default, a file) or PostgreSQL (when the URL starts with `postgres://`), through one
//! set of runtime queries.
//!
//! A page is stored once per idempotency key (job, canonical URL, epoch); storing it again is a
//! duplicate and changes nothing. When a later epoch of a URL is stored, its content hash is
//! compared with the latest earlier epoch's and the result kept in the `changed` column.

mod batch;
mod query;

use std::fmt;
use std::time::Duration;

use owlmesh_proto::v1::ArchiveBatch;

use crate::error::{ArchiverError, Result};
use crate::item::{Fields, now_ms};
use owlmesh_storage::{Durability, Pool, Schema};

/// The page size of queries that do not ask for one.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// The largest page a query returns; larger limits are clamped to it.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// The archive's database: a cheap handle to a connection pool.
#[derive(Debug, Clone)]
pub struct ArchiveStore {
    pool: Pool,
}

/// What storing one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredBatch {
    /// Pages newly stored.
    pub stored: u32,
    /// Pages dropped because their idempotency key was already stored (or repeated in the batch).
    pub duplicates: u32,
    /// Events newly stored; the others had an id already stored.
    pub events_stored: u32,
    /// Positions in `batch.pages` of the pages newly stored, in the archive's order (pages
    /// are inserted sorted by key, so that concurrent batches lock rows in one order).
    pub new_pages: Vec<usize>,
}

/// What storing several batches in one transaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredGroup {
    /// What each batch stored, in the order given; `events_stored` is left at 0.
    pub batches: Vec<StoredBatch>,
    /// The pages newly stored, as (batch, position in its pages), in the archive's order.
    pub new_pages: Vec<(usize, usize)>,
    /// Events newly stored, over all the batches.
    pub events_stored: u64,
}

/// Where a paged query resumes: opaque to clients, the id of the last row returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PageToken(i64);

impl PageToken {
    /// Reads a client's token; an empty token means the first page.
    pub fn parse(token: &str) -> Result<Option<Self>> {
        if token.is_empty() {
            return Ok(None);
        }
        match token.parse::<i64>() {
            Ok(id) if id > 0 => Ok(Some(Self(id))),
            _ => Err(ArchiverError::invalid("page_token", "malformed page token")),
        }
    }

    fn after(token: Option<Self>) -> i64 {
        token.map_or(0, |Self(id)| id)
    }
}

impl fmt::Display for PageToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

/// One page of query results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows, oldest first.
    pub rows: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<PageToken>,
}

/// Which data items to read.
#[derive(Debug, Clone, Default)]
pub struct ItemQuery {
    /// The job; required.
    pub job_id: String,
    /// Only items of this handler.
    pub handler: Option<String>,
    /// Resume after this token.
    pub after: Option<PageToken>,
    /// At most this many rows (0 for [`DEFAULT_PAGE_SIZE`], clamped to [`MAX_PAGE_SIZE`]).
    pub limit: u32,
    /// Only rows up to and including this token, for a consistent snapshot across pages.
    pub up_to: Option<PageToken>,
}

/// A stored data item: a page that a handler extracted fields from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredItem {
    /// Its place in the archive, for paging.
    pub token: PageToken,
    /// The page's canonical URL.
    pub url: String,
    /// The handler that extracted the fields.
    pub handler: String,
    /// The extracted fields.
    pub fields: Fields,
    /// When the page was fetched, ms since the Unix epoch.
    pub fetched_at_ms: i64,
    /// The crawl epoch it was fetched in.
    pub epoch: u64,
    /// Whether its content differs from the latest earlier epoch's (true for the first).
    pub changed: Option<bool>,
}

/// Which documents to read.
#[derive(Debug, Clone, Default)]
pub struct DocumentQuery {
    /// The job; required.
    pub job_id: String,
    /// Resume after this token.
    pub after: Option<PageToken>,
    /// At most this many rows (0 for [`DEFAULT_PAGE_SIZE`], clamped to [`MAX_PAGE_SIZE`]).
    pub limit: u32,
}

/// A stored document found on a job's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    /// Its place in the archive, for paging.
    pub token: PageToken,
    /// The document's URL.
    pub url: String,
    /// The type it matched, e.g. `pdf`.
    pub document_type: String,
    /// The page that links to it.
    pub found_on: String,
}

/// Which events to read; `None` filters match everything.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only events of this job.
    pub job_id: Option<String>,
    /// Only events of this kind.
    pub kind: Option<String>,
    /// Only events at or after this time, ms since the Unix epoch.
    pub since_ms: Option<i64>,
    /// Only events before this time, ms since the Unix epoch.
    pub until_ms: Option<i64>,
    /// Resume after this token.
    pub after: Option<PageToken>,
    /// At most this many rows (0 for [`DEFAULT_PAGE_SIZE`], clamped to [`MAX_PAGE_SIZE`]).
    pub limit: u32,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its place in the archive, for paging.
    pub token: PageToken,
    /// The producer's unique id.
    pub id: String,
    /// What happened, e.g. `outcome`.
    pub kind: String,
    /// The job it concerns, or empty.
    pub job_id: String,
    /// The URL it concerns, or empty.
    pub url: String,
    /// When it happened, ms since the Unix epoch.
    pub at_ms: i64,
    /// The reporting instance, `kind/id`.
    pub source: String,
    /// Details for people.
    pub message: String,
    /// Structured details.
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// One stored epoch of a page, for change detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageVersion {
    /// The crawl epoch.
    pub epoch: u64,
    /// The hash of the body.
    pub content_hash: String,
    /// Whether the hash differs from the latest earlier epoch's (true for the first epoch).
    pub changed: Option<bool>,
    /// The HTTP status of the fetch.
    pub http_status: u32,
}

impl ArchiveStore {
    /// Opens the archive at `url` (`postgres://…`, `sqlite:…` or an SQLite file path), creating
    /// an SQLite file if missing, and runs the migrations of its backend.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self> {
        Self::open_durable(url, max_connections, Durability::default()).await
    }

    /// Opens the archive as [`Self::open`] does, committing to `durability` on SQLite.
    pub async fn open_durable(
        url: &str,
        max_connections: u32,
        durability: Durability,
    ) -> Result<Self> {
        let pool = Pool::connect_durable(url, max_connections, durability, &schema()).await?;
        Ok(Self { pool })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        self.pool.backend().name()
    }

    /// Stores a batch's pages, their documents and the batch's events in one transaction.
    /// Pages and events already stored are skipped, so redelivering a batch is harmless.
    pub async fn store_batch(&self, batch: &ArchiveBatch) -> Result<StoredBatch> {
        let group = batch::store_batches(&self.pool, &[batch]).await?;
        let mut stored = group.batches.into_iter().next().unwrap_or_default();
        stored.events_stored = u32::try_from(group.events_stored).unwrap_or(u32::MAX);
        Ok(stored)
    }

    /// Stores several batches in one transaction, as [`Self::store_batch`] stores one. A
    /// page repeated across the batches is stored for the first and a duplicate for the
    /// others.
    pub async fn store_batches(&self, batches: &[&ArchiveBatch]) -> Result<StoredGroup> {
        batch::store_batches(&self.pool, batches).await
    }

    /// A page of a job's data items, oldest first.
    pub async fn items(&self, query: &ItemQuery) -> Result<Page<StoredItem>> {
        query::items(&self.pool, query).await
    }

    /// A page of a job's found documents, oldest first.
    pub async fn documents(&self, query: &DocumentQuery) -> Result<Page<StoredDocument>> {
        query::documents(&self.pool, query).await
    }

    /// A page of events, oldest stored first.
    pub async fn events(&self, query: &EventQuery) -> Result<Page<StoredEvent>> {
        query::events(&self.pool, query).await
    }

    /// Every stored epoch of one page, earliest first.
    pub async fn page_versions(&self, job_id: &str, url: &str) -> Result<Vec<PageVersion>> {
        query::page_versions(&self.pool, job_id, url).await
    }

    /// The token of a job's newest data item, to bound an export to a snapshot.
    pub async fn last_item(&self, job_id: &str) -> Result<Option<PageToken>> {
        query::last_item(&self.pool, job_id).await
    }

    /// Deletes events that happened more than `age` ago; data items are kept. Returns how many
    /// were deleted.
    pub async fn purge_events_older_than(&self, age: Duration) -> Result<u64> {
        let age_ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        self.purge_events_before(now_ms().saturating_sub(age_ms))
            .await
    }

    /// Deletes events that happened before `cutoff_ms` (ms since the Unix epoch).
    pub async fn purge_events_before(&self, cutoff_ms: i64) -> Result<u64> {
        query::purge_events_before(&self.pool, cutoff_ms).await
    }

    /// Closes the pool's connections; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A query's row limit: 0 means the default, more than the maximum means the maximum.
fn page_size(limit: u32) -> u32 {
    match limit {
        0 => DEFAULT_PAGE_SIZE,
        limit => limit.min(MAX_PAGE_SIZE),
    }
}

/// Turns `page_size + 1` fetched rows into a page, with a token when there are more.
fn into_page<T>(mut rows: Vec<T>, page_size: u32, token: impl Fn(&T) -> PageToken) -> Page<T> {
    let page_size = page_size as usize;
    let next = (rows.len() > page_size).then(|| {
        rows.truncate(page_size);
        rows.last().map(&token)
    });
    Page {
        rows,
        next: next.flatten(),
    }
}

/// The archive's tables; their migrations are tracked in sqlx's default table, as they always
/// have been.
fn schema() -> Schema {
    Schema::new(
        sqlx::migrate!("migrations/sqlite"),
        sqlx::migrate!("migrations/postgres"),
    )
}

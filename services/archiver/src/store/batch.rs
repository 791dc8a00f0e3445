//! Storing batches in one transaction: multi-row inserts that skip rows already stored
//! (`ON CONFLICT DO NOTHING`), then change detection for the pages that were new. Several
//! batches (from several producers) may share a transaction: that is the archiver's group
//! commit, and each batch still learns which of its own pages were new.

use std::collections::{BTreeMap, HashMap, HashSet};

use owlmesh_proto::v1::{ArchiveBatch, Event, PageRecord};

use super::{StoredBatch, StoredGroup};
use crate::error::{ArchiverError, Result};
use crate::item::borrow_fields;
use owlmesh_storage::{Param, Pool, Statement, WriteTx};
/// Rows per multi-row insert; with at most 9 parameters a row this stays far below the bound-parameter
/// limits of SQLite (32766) and PostgreSQL (65535).
const ROWS_PER_STATEMENT: usize = 512;
/// Ids per `IN (…)` list of the change-detection update.
const IDS_PER_STATEMENT: usize = 1024;

const INSERT_PAGES: &str = "INSERT INTO pages \
    (job_id, url, epoch, handler, fields, content_hash, http_status, fetched_at_ms, changed) \
    VALUES ";
const INSERT_PAGES_END: &str =
    " ON CONFLICT (job_id, url, epoch) DO NOTHING RETURNING id, job_id, url, epoch";
/// A page of the first epoch has no earlier one: it is changed, set as it is inserted.
const FIRST_EPOCH_CHANGED: &str = " <= 1 THEN TRUE END)";
/// Compares each new page of a later epoch with the latest earlier epoch of its URL; a URL
/// seen for the first time counts as changed. Runs after the inserts so that several epochs of one URL in one batch
/// are compared with each other too.
const MARK_CHANGES: &str = "UPDATE pages SET changed = COALESCE((\
    SELECT earlier.content_hash <> pages.content_hash FROM pages AS earlier \
    WHERE earlier.job_id = pages.job_id AND earlier.url = pages.url \
    AND earlier.epoch < pages.epoch ORDER BY earlier.epoch DESC LIMIT 1), TRUE) WHERE id IN ";
const INSERT_DOCUMENTS: &str =
    "INSERT INTO documents (job_id, url, document_type, found_on) VALUES ";
const INSERT_DOCUMENTS_END: &str = " ON CONFLICT (job_id, url) DO NOTHING";
const INSERT_EVENTS: &str = "INSERT INTO events \
    (event_id, kind, job_id, url, at_ms, source, message, attributes) VALUES ";
const INSERT_EVENTS_END: &str = " ON CONFLICT (event_id) DO NOTHING";

/// A page's place in a group of batches: (batch, position in its pages).
type Position = (usize, usize);

/// A page ready to insert: borrowed from its batch, with its fields rendered as JSON.
struct PageRow<'a> {
    position: Position,
    key: (&'a str, &'a str, i64),
    page: &'a PageRecord,
    fields: String,
}

/// A row returned by the page insert: the key of a page that was new.
#[derive(sqlx::FromRow)]
struct InsertedPage {
    id: i64,
    job_id: String,
    url: String,
    epoch: i64,
}

/// Stores `batches` in one transaction; see [`super::ArchiveStore::store_batches`].
pub(super) async fn store_batches(pool: &Pool, batches: &[&ArchiveBatch]) -> Result<StoredGroup> {
    let rows = page_rows(batches)?;
    let mut transaction = pool.begin_write().await?;
    let inserted = insert_pages(&mut transaction, &rows).await?;
    let later_epochs: Vec<i64> = inserted
        .iter()
        .filter(|&&(_, (batch, at))| batches[batch].pages[at].epoch > 1)
        .map(|&(id, _)| id)
        .collect();
    mark_changes(&mut transaction, &later_epochs).await?;
    let new_pages: Vec<Position> = inserted.into_iter().map(|(_, at)| at).collect();
    insert_documents(&mut transaction, batches, &new_pages).await?;
    let events = batches.iter().flat_map(|batch| &batch.events);
    let events_stored = insert_events(&mut transaction, events).await?;
    transaction.commit().await?;
    let mut stored: Vec<StoredBatch> = vec![StoredBatch::default(); batches.len()];
    for &(batch, position) in &new_pages {
        stored[batch].new_pages.push(position);
    }
    for (outcome, batch) in stored.iter_mut().zip(batches) {
        outcome.stored = count(outcome.new_pages.len());
        outcome.duplicates = count(batch.pages.len()).saturating_sub(outcome.stored);
    }
    Ok(StoredGroup {
        batches: stored,
        new_pages,
        events_stored,
    })
}

fn count(length: usize) -> u32 {
    u32::try_from(length).unwrap_or(u32::MAX)
}

/// The batches' pages as rows, without repeats of a key: the first of them is stored, the
/// others are duplicates.
fn page_rows<'a>(batches: &[&'a ArchiveBatch]) -> Result<Vec<PageRow<'a>>> {
    let pages = batches.iter().map(|batch| batch.pages.len()).sum();
    let mut seen = HashSet::with_capacity(pages);
    let mut rows = Vec::with_capacity(pages);
    let positioned = batches.iter().enumerate().flat_map(|(index, batch)| {
        let pages = batch.pages.iter().enumerate();
        pages.map(move |(position, page)| ((index, position), page))
    });
    for (position, page) in positioned {
        let epoch = i64::try_from(page.epoch).map_err(|_| {
            ArchiverError::invalid(format!("pages[{}].epoch", position.1), "must be below 2^63")
        })?;
        let key = (page.job_id.as_str(), page.url.as_str(), epoch);
        if !seen.insert(key) {
            continue;
        }
        let fields = serde_json::to_string(&borrow_fields(&page.fields))?;
        rows.push(PageRow {
            position,
            key,
            page,
            fields,
        });
    }
    // One lock order for every transaction: two batches that share keys wait for each other
    // instead of deadlocking.
    rows.sort_unstable_by(|left, right| left.key.cmp(&right.key));
    Ok(rows)
}

/// Inserts the pages whose key is new; returns their ids and positions, in the order of the
/// ids.
async fn insert_pages(
    transaction: &mut WriteTx,
    rows: &[PageRow<'_>],
) -> Result<Vec<(i64, Position)>> {
    let mut inserted = Vec::with_capacity(rows.len());
    for chunk in cached_sizes(rows, ROWS_PER_STATEMENT) {
        let mut statement = Statement::new(INSERT_PAGES);
        for (index, row) in chunk.iter().enumerate() {
            if index > 0 {
                statement.push_sql(", ");
            }
            push_page_row(&mut statement, row);
        }
        statement.push_sql(INSERT_PAGES_END);
        let positions: HashMap<_, _> = chunk.iter().map(|row| (row.key, row.position)).collect();
        let returned: Vec<InsertedPage> = transaction.fetch_all(statement).await?;
        for page in &returned {
            let key = (page.job_id.as_str(), page.url.as_str(), page.epoch);
            if let Some(&position) = positions.get(&key) {
                inserted.push((page.id, position));
            }
        }
    }
    inserted.sort_unstable();
    Ok(inserted)
}

/// `($1, …, $8, CASE WHEN $9 <= 1 THEN TRUE END)`: the page's columns, and `changed` set for
/// a first epoch (the epoch bound again, as a placeholder of its own).
fn push_page_row<'a>(statement: &mut Statement<'a>, row: &'a PageRow<'a>) {
    statement.push_sql("(");
    for param in page_params(row) {
        statement.push_bind(param);
        statement.push_sql(", ");
    }
    statement.push_sql("CASE WHEN ");
    statement.push_bind(Param::Int(row.key.2));
    statement.push_sql(FIRST_EPOCH_CHANGED);
}

fn page_params<'a>(row: &'a PageRow<'a>) -> [Param<'a>; 8] {
    let (job_id, url, epoch) = row.key;
    [
        Param::Text(job_id),
        Param::Text(url),
        Param::Int(epoch),
        Param::Text(&row.page.handler),
        Param::Text(&row.fields),
        Param::Text(&row.page.content_hash),
        Param::Int(i64::from(row.page.http_status)),
        Param::Int(row.page.fetched_at_ms),
    ]
}

/// Sets `changed` on the pages of later epochs just inserted.
async fn mark_changes(transaction: &mut WriteTx, ids: &[i64]) -> Result<()> {
    for chunk in cached_sizes(ids, IDS_PER_STATEMENT) {
        let mut statement = Statement::new(MARK_CHANGES);
        statement.push_row(chunk.iter().map(|&id| Param::Int(id)));
        transaction.execute(statement).await?;
    }
    Ok(())
}

/// Inserts the documents found on the new pages, in key order; a document already known for
/// the job keeps its first `found_on`.
async fn insert_documents(
    transaction: &mut WriteTx,
    batches: &[&ArchiveBatch],
    new_pages: &[Position],
) -> Result<()> {
    let mut documents = BTreeMap::new();
    let pages = new_pages
        .iter()
        .filter_map(|&(batch, at)| batches.get(batch)?.pages.get(at));
    for page in pages {
        for document in &page.documents {
            let found_on = match document.found_on.as_str() {
                "" => page.url.as_str(),
                found_on => found_on,
            };
            let key = (page.job_id.as_str(), document.url.as_str());
            documents
                .entry(key)
                .or_insert((document.r#type.as_str(), found_on));
        }
    }
    let rows = documents
        .into_iter()
        .map(|((job_id, url), (kind, found_on))| {
            [
                Param::Text(job_id),
                Param::Text(url),
                Param::Text(kind),
                Param::Text(found_on),
            ]
        });
    insert_rows(
        transaction,
        INSERT_DOCUMENTS,
        INSERT_DOCUMENTS_END,
        rows.collect(),
    )
    .await?;
    Ok(())
}

/// Inserts the events whose id is new; returns how many.
async fn insert_events<'a>(
    transaction: &mut WriteTx,
    events: impl Iterator<Item = &'a Event>,
) -> Result<u64> {
    let mut seen = HashSet::new();
    let unique: Vec<&Event> = events
        .filter(|event| seen.insert(event.id.as_str()))
        .collect();
    let attributes = unique
        .iter()
        .map(|event| {
            let sorted: BTreeMap<&str, &str> = event
                .attributes
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            serde_json::to_string(&sorted)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let rows = unique.iter().zip(&attributes).map(|(event, attributes)| {
        [
            Param::Text(&event.id),
            Param::Text(&event.kind),
            Param::Text(&event.job_id),
            Param::Text(&event.url),
            Param::Int(event.at_ms),
            Param::Text(&event.source),
            Param::Text(&event.message),
            Param::Text(attributes),
        ]
    });
    insert_rows(
        transaction,
        INSERT_EVENTS,
        INSERT_EVENTS_END,
        rows.collect(),
    )
    .await
}

/// Inserts `rows` with multi-row statements `head (…), (…) tail`; returns how many were new.
async fn insert_rows<'a, const COLUMNS: usize>(
    transaction: &mut WriteTx,
    head: &'static str,
    tail: &str,
    rows: Vec<[Param<'a>; COLUMNS]>,
) -> Result<u64> {
    let mut inserted = 0;
    for chunk in cached_sizes(&rows, ROWS_PER_STATEMENT) {
        let mut statement = Statement::new(head);
        for (index, row) in chunk.iter().enumerate() {
            if index > 0 {
                statement.push_sql(", ");
            }
            statement.push_row(*row);
        }
        statement.push_sql(tail);
        inserted += transaction.execute(statement).await?;
    }
    Ok(inserted)
}

/// Splits `rows` into chunks whose sizes are powers of two, at most `max` (a power of two
/// too). The statement text depends on the row count, so these few sizes are each prepared
/// once and then found in the connection's statement cache, where a statement per batch
/// size would be prepared anew for nearly every batch.
fn cached_sizes<T>(mut rows: &[T], max: usize) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    while !rows.is_empty() {
        let size = max.min(1 << rows.len().ilog2());
        let (chunk, rest) = rows.split_at(size);
        chunks.push(chunk);
        rows = rest;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::cached_sizes;

    #[test]
    fn chunks_are_powers_of_two_covering_every_row_in_order() {
        let rows: Vec<u32> = (0..1300).collect();
        let chunks = cached_sizes(&rows, 512);
        let sizes: Vec<usize> = chunks.iter().map(|chunk| chunk.len()).collect();
        assert_eq!(sizes, [512, 512, 256, 16, 4]);
        assert_eq!(chunks.concat(), rows);
        assert!(cached_sizes::<u32>(&[], 512).is_empty());
    }
}

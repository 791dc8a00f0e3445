//! Reading the archive back: keyset-paged queries (by row id, so every row is returned exactly
//! once even while writes go on), page versions, and the retention purge.

use std::collections::BTreeMap;

use super::{
    DocumentQuery, EventQuery, ItemQuery, Page, PageToken, PageVersion, StoredDocument,
    StoredEvent, StoredItem, into_page, page_size,
};
use crate::error::{ArchiverError, Result};
use crate::item::Fields;
use owlmesh_storage::{Param, Pool, Statement};

/// Events deleted per statement, so that a large purge never holds the write lock for long.
const PURGE_ROWS_PER_STATEMENT: i64 = 5000;

const SELECT_ITEMS: &str = "SELECT id, url, handler, fields, fetched_at_ms, epoch, changed FROM pages \
    WHERE job_id = $1 AND id > $2 AND id <= $3 AND handler <> '' ";
const SELECT_DOCUMENTS: &str = "SELECT id, url, document_type, found_on FROM documents \
    WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3";
const SELECT_EVENTS: &str = "SELECT id, event_id, kind, job_id, url, at_ms, source, message, \
    attributes FROM events WHERE id > $1";
const SELECT_VERSIONS: &str = "SELECT epoch, content_hash, changed, http_status FROM pages \
    WHERE job_id = $1 AND url = $2 ORDER BY epoch";
const SELECT_LAST_ITEM: &str = "SELECT MAX(id) FROM pages WHERE job_id = $1 AND handler <> ''";
const PURGE_EVENTS: &str = "DELETE FROM events WHERE id IN \
    (SELECT id FROM events WHERE at_ms < $1 LIMIT $2)";

#[derive(sqlx::FromRow)]
struct ItemRow {
    id: i64,
    url: String,
    handler: String,
    fields: String,
    fetched_at_ms: i64,
    epoch: i64,
    changed: Option<bool>,
}

#[derive(sqlx::FromRow)]
struct DocumentRow {
    id: i64,
    url: String,
    document_type: String,
    found_on: String,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    event_id: String,
    kind: String,
    job_id: String,
    url: String,
    at_ms: i64,
    source: String,
    message: String,
    attributes: String,
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    epoch: i64,
    content_hash: String,
    changed: Option<bool>,
    http_status: i64,
}

/// A page of data items; see [`super::ArchiveStore::items`].
pub(super) async fn items(pool: &Pool, query: &ItemQuery) -> Result<Page<StoredItem>> {
    let size = page_size(query.limit);
    let up_to = query.up_to.map_or(i64::MAX, |PageToken(id)| id);
    let mut statement = Statement::new(SELECT_ITEMS)
        .text(&query.job_id)
        .int(PageToken::after(query.after))
        .int(up_to);
    if let Some(handler) = &query.handler {
        statement.push_sql("AND handler = ");
        statement.push_bind(Param::Text(handler));
    }
    statement.push_sql(" ORDER BY id LIMIT ");
    statement.push_bind(Param::Int(i64::from(size) + 1));
    let rows: Vec<ItemRow> = pool.fetch_all(statement).await?;
    let items = rows.into_iter().map(item).collect::<Result<Vec<_>>>()?;
    Ok(into_page(items, size, |item| item.token))
}

fn item(row: ItemRow) -> Result<StoredItem> {
    let fields: Fields =
        serde_json::from_str(&row.fields).map_err(|error| ArchiverError::Corrupt {
            what: format!("fields of page {}", row.id),
            reason: error.to_string(),
        })?;
    Ok(StoredItem {
        token: PageToken(row.id),
        url: row.url,
        handler: row.handler,
        fields,
        fetched_at_ms: row.fetched_at_ms,
        epoch: row.epoch.unsigned_abs(),
        changed: row.changed,
    })
}

/// A page of documents; see [`super::ArchiveStore::documents`].
pub(super) async fn documents(pool: &Pool, query: &DocumentQuery) -> Result<Page<StoredDocument>> {
    let size = page_size(query.limit);
    let statement = Statement::new(SELECT_DOCUMENTS)
        .text(&query.job_id)
        .int(PageToken::after(query.after))
        .int(i64::from(size) + 1);
    let rows: Vec<DocumentRow> = pool.fetch_all(statement).await?;
    let documents = rows.into_iter().map(|row| StoredDocument {
        token: PageToken(row.id),
        url: row.url,
        document_type: row.document_type,
        found_on: row.found_on,
    });
    Ok(into_page(documents.collect(), size, |document| {
        document.token
    }))
}

/// A page of events; see [`super::ArchiveStore::events`].
pub(super) async fn events(pool: &Pool, query: &EventQuery) -> Result<Page<StoredEvent>> {
    let size = page_size(query.limit);
    let mut statement = Statement::new(SELECT_EVENTS).int(PageToken::after(query.after));
    let filters = [
        ("job_id = ", query.job_id.as_deref().map(Param::Text)),
        ("kind = ", query.kind.as_deref().map(Param::Text)),
        ("at_ms >= ", query.since_ms.map(Param::Int)),
        ("at_ms < ", query.until_ms.map(Param::Int)),
    ];
    for (condition, value) in filters {
        if let Some(value) = value {
            statement.push_sql(" AND ");
            statement.push_sql(condition);
            statement.push_bind(value);
        }
    }
    statement.push_sql(" ORDER BY id LIMIT ");
    statement.push_bind(Param::Int(i64::from(size) + 1));
    let rows: Vec<EventRow> = pool.fetch_all(statement).await?;
    let events = rows.into_iter().map(event).collect::<Result<Vec<_>>>()?;
    Ok(into_page(events, size, |event| event.token))
}

fn event(row: EventRow) -> Result<StoredEvent> {
    let attributes: BTreeMap<String, String> =
        serde_json::from_str(&row.attributes).map_err(|error| ArchiverError::Corrupt {
            what: format!("attributes of event {}", row.event_id),
            reason: error.to_string(),
        })?;
    Ok(StoredEvent {
        token: PageToken(row.id),
        id: row.event_id,
        kind: row.kind,
        job_id: row.job_id,
        url: row.url,
        at_ms: row.at_ms,
        source: row.source,
        message: row.message,
        attributes,
    })
}

/// Every stored epoch of a page; see [`super::ArchiveStore::page_versions`].
pub(super) async fn page_versions(
    pool: &Pool,
    job_id: &str,
    url: &str,
) -> Result<Vec<PageVersion>> {
    let statement = Statement::new(SELECT_VERSIONS).text(job_id).text(url);
    let rows: Vec<VersionRow> = pool.fetch_all(statement).await?;
    let versions = rows.into_iter().map(|row| PageVersion {
        epoch: row.epoch.unsigned_abs(),
        content_hash: row.content_hash,
        changed: row.changed,
        http_status: u32::try_from(row.http_status).unwrap_or_default(),
    });
    Ok(versions.collect())
}

/// The newest data item's token; see [`super::ArchiveStore::last_item`].
pub(super) async fn last_item(pool: &Pool, job_id: &str) -> Result<Option<PageToken>> {
    let statement = Statement::new(SELECT_LAST_ITEM).text(job_id);
    let rows: Vec<(Option<i64>,)> = pool.fetch_all(statement).await?;
    Ok(rows.first().and_then(|&(id,)| id).map(PageToken))
}

/// Deletes old events in short transactions; see [`super::ArchiveStore::purge_events_before`].
pub(super) async fn purge_events_before(pool: &Pool, cutoff_ms: i64) -> Result<u64> {
    let mut deleted = 0;
    loop {
        let statement = Statement::new(PURGE_EVENTS)
            .int(cutoff_ms)
            .int(PURGE_ROWS_PER_STATEMENT);
        let mut transaction = pool.begin_write().await?;
        let count = transaction.execute(statement).await?;
        transaction.commit().await?;
        deleted += count;
        if count < PURGE_ROWS_PER_STATEMENT.unsigned_abs() {
            return Ok(deleted);
        }
    }
}

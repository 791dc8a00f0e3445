-- The archive on SQLite: fetched pages (data items are the pages with a handler), the
-- documents they link to, and the mesh's events. Times are milliseconds since the Unix epoch.

-- One row per fetched page version, keyed by the idempotency key (job_id, url, epoch).
CREATE TABLE pages (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    url TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    -- The handler that produced `fields`; '' when none matched (the page is not a data item).
    handler TEXT NOT NULL,
    -- JSON object: field name -> string, or array of strings for many-fields.
    fields TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    fetched_at_ms INTEGER NOT NULL,
    -- Whether content_hash differs from the latest earlier epoch of the URL (true when there is
    -- none); set in the transaction that stores the row.
    changed BOOLEAN,
    UNIQUE (job_id, url, epoch)
);
CREATE INDEX pages_by_job ON pages (job_id, id);
CREATE INDEX pages_by_job_handler ON pages (job_id, handler, id);

-- Documents of a wanted type found on a job's pages, one row per job and document URL.
CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    url TEXT NOT NULL,
    document_type TEXT NOT NULL,
    found_on TEXT NOT NULL,
    UNIQUE (job_id, url)
);

-- Events of the mesh, one row per producer-chosen event id. AUTOINCREMENT keeps ids of purged
-- events from being reused, so page tokens stay valid across a purge.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    job_id TEXT NOT NULL,
    url TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    source TEXT NOT NULL,
    message TEXT NOT NULL,
    -- JSON object: attribute name -> string.
    attributes TEXT NOT NULL
);
CREATE INDEX events_by_time ON events (at_ms);
CREATE INDEX events_by_job ON events (job_id, id);
CREATE INDEX events_by_kind ON events (kind, id);

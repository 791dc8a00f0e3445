-- The frontier on SQLite: jobs, the hosts they crawl and every URL they have seen. Times are
-- milliseconds since the Unix epoch; fingerprints and lease ids are u64 stored bit for bit.

-- One row per job. The counters describe the current epoch and change in the same
-- transaction as the URLs they count, so progress never needs a COUNT(*) over the URLs.
CREATE TABLE frontier_jobs (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    -- The accepted JobSpec, encoded protobuf.
    spec BLOB NOT NULL,
    -- queued | running | paused | done | cancelled | failed
    state TEXT NOT NULL,
    priority INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    -- Limits and schedule copied out of the spec; 0 (or '') means none.
    max_pages INTEGER NOT NULL,
    max_depth INTEGER NOT NULL,
    max_retries INTEGER NOT NULL,
    recrawl_every_ms INTEGER NOT NULL,
    recrawl_cron TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    epoch_started_at INTEGER NOT NULL,
    -- When the next epoch starts; 0 when none is scheduled.
    next_epoch_at INTEGER NOT NULL,
    -- URLs admitted in this epoch, the figure max_pages caps.
    admitted INTEGER NOT NULL,
    queued INTEGER NOT NULL,
    in_flight INTEGER NOT NULL,
    done INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    items INTEGER NOT NULL,
    documents INTEGER NOT NULL
);

-- The next rank to give a URL of each host of a job. Ranks number a host's URLs in the order
-- they were found, so claiming in rank order takes every host's first URL before any host's
-- second: hosts interleave, and a big host cannot starve the small ones.
CREATE TABLE frontier_hosts (
    job_id TEXT NOT NULL,
    host_key TEXT NOT NULL,
    next_rank INTEGER NOT NULL,
    PRIMARY KEY (job_id, host_key)
) WITHOUT ROWID;

CREATE TABLE frontier_urls (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    fingerprint INTEGER NOT NULL,
    url TEXT NOT NULL,
    host_key TEXT NOT NULL,
    depth INTEGER NOT NULL,
    host_rank INTEGER NOT NULL,
    -- 1 for a URL known only as a step of a redirect chain: seen, never dispatched.
    redirect INTEGER NOT NULL,
    -- queued | leased | done | failed
    state TEXT NOT NULL,
    -- The epoch the URL is queued, leased or settled in.
    epoch INTEGER NOT NULL,
    -- Transient failures in this epoch.
    attempts INTEGER NOT NULL DEFAULT 0,
    -- When the URL may be dispatched (backoff and recrawl).
    due_at INTEGER NOT NULL,
    lease_id INTEGER,
    lease_owner TEXT,
    lease_expires_at INTEGER,
    last_fetched_at INTEGER,
    last_error TEXT,
    done_epoch INTEGER
);

-- Dedup: a job sees each fingerprint once.
CREATE UNIQUE INDEX frontier_urls_seen ON frontier_urls (job_id, fingerprint);
-- Claims in host-interleaved order (rank, then the order URLs were found); due_at and
-- host_key ride along so the scan needs no table lookups.
CREATE INDEX frontier_urls_queue ON frontier_urls (job_id, host_rank, id, due_at, host_key)
    WHERE state = 'queued';
-- Claims for a set of hosts: one short seek per host.
CREATE INDEX frontier_urls_queue_by_host ON frontier_urls (job_id, host_key, host_rank, due_at)
    WHERE state = 'queued';
-- Leases: outcomes find their URL by lease id, the reaper by expiry, a departing scraper by
-- owner. Only leased rows are indexed, so these stay as small as the work in flight.
CREATE UNIQUE INDEX frontier_urls_lease ON frontier_urls (lease_id) WHERE state = 'leased';
CREATE INDEX frontier_urls_lease_expiry ON frontier_urls (lease_expires_at)
    WHERE state = 'leased';
CREATE INDEX frontier_urls_lease_owner ON frontier_urls (lease_owner) WHERE state = 'leased';

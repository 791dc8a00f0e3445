-- The frontier on PostgreSQL: jobs, the hosts they crawl and every URL they have seen. Times
-- are milliseconds since the Unix epoch; fingerprints and lease ids are u64 stored bit for bit.
-- Every writer locks the jobs rows it touches first, in id order, then their URLs: one job's
-- writers take turns, and no two transactions can wait on each other in a cycle.

-- One row per job. The counters describe the current epoch and change in the same
-- transaction as the URLs they count, so progress never needs a COUNT(*) over the URLs.
CREATE TABLE frontier_jobs (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    -- The accepted JobSpec, encoded protobuf.
    spec BYTEA NOT NULL,
    -- queued | running | paused | done | cancelled | failed
    state TEXT NOT NULL,
    priority BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    -- Limits and schedule copied out of the spec; 0 (or '') means none.
    max_pages BIGINT NOT NULL,
    max_depth BIGINT NOT NULL,
    max_retries BIGINT NOT NULL,
    recrawl_every_ms BIGINT NOT NULL,
    recrawl_cron TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    epoch_started_at BIGINT NOT NULL,
    -- When the next epoch starts; 0 when none is scheduled.
    next_epoch_at BIGINT NOT NULL,
    -- URLs admitted in this epoch, the figure max_pages caps.
    admitted BIGINT NOT NULL,
    queued BIGINT NOT NULL,
    in_flight BIGINT NOT NULL,
    done BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    items BIGINT NOT NULL,
    documents BIGINT NOT NULL
);

-- The next rank to give a URL of each host of a job. Ranks number a host's URLs in the order
-- they were found, so claiming in rank order takes every host's first URL before any host's
-- second: hosts interleave, and a big host cannot starve the small ones.
CREATE TABLE frontier_hosts (
    job_id TEXT NOT NULL,
    host_key TEXT NOT NULL,
    next_rank BIGINT NOT NULL,
    PRIMARY KEY (job_id, host_key)
);

CREATE TABLE frontier_urls (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id TEXT NOT NULL,
    fingerprint BIGINT NOT NULL,
    url TEXT NOT NULL,
    host_key TEXT NOT NULL,
    depth BIGINT NOT NULL,
    host_rank BIGINT NOT NULL,
    -- 1 for a URL known only as a step of a redirect chain: seen, never dispatched.
    redirect BIGINT NOT NULL,
    -- queued | leased | done | failed
    state TEXT NOT NULL,
    -- The epoch the URL is queued, leased or settled in.
    epoch BIGINT NOT NULL,
    -- Transient failures in this epoch.
    attempts BIGINT NOT NULL DEFAULT 0,
    -- When the URL may be dispatched (backoff and recrawl).
    due_at BIGINT NOT NULL,
    lease_id BIGINT,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    last_fetched_at BIGINT,
    last_error TEXT,
    done_epoch BIGINT
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

-- Lease ids: unique across every dispatcher sharing the database, never reused.
CREATE SEQUENCE frontier_lease_ids;

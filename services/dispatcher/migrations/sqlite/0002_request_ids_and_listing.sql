-- Idempotent submissions and paged listing.

-- The client's request id of the SubmitJob call that created the job (NULL when it sent
-- none). Unique, so that a retry, on this dispatcher or another sharing the frontier,
-- finds the job instead of creating a second one.
ALTER TABLE frontier_jobs ADD COLUMN request_id TEXT;
CREATE UNIQUE INDEX frontier_jobs_request_id ON frontier_jobs (request_id)
    WHERE request_id IS NOT NULL;
-- ListJobs pages newest first by (created_at, id), starting after the previous page's last.
CREATE INDEX frontier_jobs_listing ON frontier_jobs (created_at, id);

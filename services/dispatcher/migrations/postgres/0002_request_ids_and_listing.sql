-- Idempotent submissions, paged listing and random lease ids.

-- The client's request id of the SubmitJob call that created the job (NULL when it sent
-- none). Unique, so that a retry, on this dispatcher or another sharing the frontier,
-- finds the job instead of creating a second one.
ALTER TABLE frontier_jobs ADD COLUMN request_id TEXT;
CREATE UNIQUE INDEX frontier_jobs_request_id ON frontier_jobs (request_id)
    WHERE request_id IS NOT NULL;
-- ListJobs pages newest first by (created_at, id), starting after the previous page's last.
CREATE INDEX frontier_jobs_listing ON frontier_jobs (created_at, id);
-- Lease ids are random 63-bit numbers chosen by the dispatcher now (a sequential id is one
-- an attacker can guess). The sequence is no longer read; it stays so that a dispatcher of
-- the previous version sharing this database keeps working until it is replaced.

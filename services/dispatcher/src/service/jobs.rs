//! Specs and compiled rules of the jobs being dispatched, loaded once per job.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use owlmesh_proto::v1::JobSpec;

use crate::Result;
use crate::frontier::Frontier;
use owlmesh_job::CompiledJob;

/// A job's spec and its compiled rules (link filters, schedule).
pub(crate) struct KnownJob {
    pub(crate) spec: JobSpec,
    pub(crate) rules: CompiledJob,
}

/// Job specs by id, read from the frontier on first use.
#[derive(Default)]
pub(crate) struct JobCache {
    jobs: RwLock<HashMap<String, Arc<KnownJob>>>,
}

impl JobCache {
    /// The job, from memory or the frontier.
    pub(crate) async fn get(&self, frontier: &Frontier, job_id: &str) -> Result<Arc<KnownJob>> {
        if let Some(job) = self.cached(job_id) {
            return Ok(job);
        }
        let record = frontier.get_job(job_id).await?;
        let rules = CompiledJob::compile(&record.spec)?;
        let job = Arc::new(KnownJob {
            spec: record.spec,
            rules,
        });
        self.jobs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job_id.to_owned(), job.clone());
        Ok(job)
    }

    /// The job if it is in memory.
    pub(crate) fn cached(&self, job_id: &str) -> Option<Arc<KnownJob>> {
        let jobs = self.jobs.read().unwrap_or_else(|p| p.into_inner());
        jobs.get(job_id).cloned()
    }
}

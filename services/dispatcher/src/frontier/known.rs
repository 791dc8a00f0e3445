//! A bounded memory of URLs each job's frontier already holds, so that the links of an
//! outcome that were seen before (most of them, on any site with navigation) are dropped
//! before they are parsed and offered to the database. Only what a committed transaction
//! stored is remembered, and rows are never removed from a job that still admits URLs, so a
//! URL found here is one the database would have ignored: forgetting costs a database
//! lookup, never a URL. Several dispatchers may each remember what they stored.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

/// Fingerprints remembered across jobs at most (about 10 MiB); past that the memory starts
/// over, which only sends lookups to the database again.
pub const KNOWN_URLS_CAPACITY: usize = 1 << 20;

/// Fingerprints of URLs the frontier holds, per job.
#[derive(Debug)]
pub(super) struct KnownUrls {
    capacity: usize,
    jobs: Mutex<Known>,
}

#[derive(Debug, Default)]
struct Known {
    by_job: HashMap<String, HashSet<u64>>,
    total: usize,
}

impl KnownUrls {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            jobs: Mutex::new(Known::default()),
        }
    }

    /// Whether the job's frontier is known to hold this fingerprint.
    #[cfg(test)]
    pub(super) fn contains(&self, job_id: &str, fingerprint: u64) -> bool {
        self.unknown(job_id, vec![(fingerprint, ())]).is_empty()
    }

    /// The items whose fingerprint the job's frontier is not known to hold, in order; one
    /// lock for all of them.
    pub(super) fn unknown<T>(&self, job_id: &str, items: Vec<(u64, T)>) -> Vec<T> {
        let known = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        let held = known.by_job.get(job_id);
        items
            .into_iter()
            .filter(|(fingerprint, _)| !held.is_some_and(|held| held.contains(fingerprint)))
            .map(|(_, item)| item)
            .collect()
    }

    /// Remembers fingerprints a committed transaction stored for the job.
    pub(super) fn remember(&self, job_id: &str, fingerprints: &[u64]) {
        if fingerprints.is_empty() {
            return;
        }
        let mut known = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        if known.total + fingerprints.len() > self.capacity {
            *known = Known::default();
        }
        let Known { by_job, total } = &mut *known;
        let job = by_job.entry(job_id.to_owned()).or_default();
        for &fingerprint in fingerprints {
            if job.insert(fingerprint) {
                *total += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_per_job() {
        let known = KnownUrls::new(16);
        known.remember("a", &[1, 2]);
        assert!(known.contains("a", 1));
        assert!(!known.contains("b", 1));
        assert!(!known.contains("a", 3));
    }

    #[test]
    fn starts_over_when_full_rather_than_growing() {
        let known = KnownUrls::new(3);
        known.remember("a", &[1, 2, 3]);
        known.remember("a", &[4]);
        assert!(known.contains("a", 4));
        assert!(!known.contains("a", 1), "the memory started over");
    }
}

//! The job spec's defaults, and filling them into a spec that left fields empty.
//!
//! proto3 cannot tell an unset scalar from a zero, so an empty string or a zero here means
//! "the default" wherever the field documents one.

use owlmesh_proto::v1::{DocumentRules, FollowRules, JobSpec, Politeness, RecrawlSchedule};

use crate::canonical::canonicalize;

/// Link elements followed when `follow.selector` is not given.
pub const DEFAULT_FOLLOW_SELECTOR: &str = "a[href]";
/// Whether robots.txt is honoured when `politeness.obey_robots` is not given.
pub const DEFAULT_OBEY_ROBOTS: bool = true;
/// Requests in flight to one host when `politeness.concurrency_per_host` is 0 or not given.
pub const DEFAULT_CONCURRENCY_PER_HOST: u32 = 2;
/// User-Agent and robots.txt agent when `politeness.user_agent` is empty or not given.
pub const DEFAULT_USER_AGENT: &str = "owlmesh";
/// Retries for transient failures when `max_retries` is 0 or not given.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// Fills every default into `spec`: the effective spec, as stored and sent to scrapers.
///
/// Besides defaults it tidies spellings that mean the same thing: allowed hosts are
/// lowercased and document types lowercased without a leading dot. Seeds that are not valid
/// URLs are left for validation to report.
pub fn with_defaults(mut spec: JobSpec) -> JobSpec {
    if spec.allowed_hosts.is_empty() {
        spec.allowed_hosts = seed_hosts(&spec.seeds);
    } else {
        for host in &mut spec.allowed_hosts {
            *host = host.trim().to_ascii_lowercase();
        }
    }
    let follow = spec.follow.get_or_insert_with(FollowRules::default);
    if follow.selector.trim().is_empty() {
        follow.selector = DEFAULT_FOLLOW_SELECTOR.to_owned();
    }
    let documents = spec.documents.get_or_insert_with(DocumentRules::default);
    for kind in &mut documents.types {
        *kind = kind.trim().trim_start_matches('.').to_ascii_lowercase();
    }
    fill_politeness(spec.politeness.get_or_insert_with(Politeness::default));
    spec.recrawl.get_or_insert_with(RecrawlSchedule::default);
    if spec.max_retries == 0 {
        spec.max_retries = DEFAULT_MAX_RETRIES;
    }
    spec
}

fn fill_politeness(politeness: &mut Politeness) {
    politeness.obey_robots.get_or_insert(DEFAULT_OBEY_ROBOTS);
    if politeness.concurrency_per_host == 0 {
        politeness.concurrency_per_host = DEFAULT_CONCURRENCY_PER_HOST;
    }
    if politeness.user_agent.trim().is_empty() {
        politeness.user_agent = DEFAULT_USER_AGENT.to_owned();
    }
}

/// The host keys of the valid seeds, each once, in seed order.
fn seed_hosts(seeds: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for seed in seeds {
        if let Ok(url) = canonicalize(seed) {
            let host = url.host_key().to_string();
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
    }
    hosts
}

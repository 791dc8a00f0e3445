//! Jobs as the scraper uses them: a spec compiled once (by the job crate, as the dispatcher
//! compiles it) with its politeness, and the cache of compiled jobs by id, kept across work sessions because a
//! dispatcher defines each job once per session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use owlmesh_job::{CompiledJob, SpecError};
use owlmesh_proto::v1::JobSpec;

use crate::error::{Result, ScraperError};
use crate::politeness::JobPoliteness;

/// Jobs remembered before unused ones are forgotten.
const MAX_CACHED_JOBS: usize = 1024;

/// A job ready to scrape with.
#[derive(Debug)]
pub(crate) struct Job {
    /// The compiled job: allowed hosts, follow rules, handlers and document types.
    pub(crate) rules: CompiledJob,
    /// robots.txt, delays, concurrency and user agent.
    pub(crate) politeness: JobPoliteness,
}

impl Job {
    /// Validates and compiles `spec`; the error names the first invalid part by its path in a
    /// request, e.g. `spec.handlers[0].pattern`, and lists every problem found.
    pub(crate) fn compile(spec: &JobSpec) -> Result<Self> {
        let rules = CompiledJob::compile(spec).map_err(invalid_spec)?;
        let politeness = JobPoliteness::from_spec(rules.spec());
        Ok(Self { rules, politeness })
    }
}

/// The request error for a spec that does not compile.
fn invalid_spec(error: SpecError) -> ScraperError {
    let SpecError::Invalid(invalid) = &error else {
        return ScraperError::InvalidArgument {
            field: "spec".into(),
            reason: error.to_string(),
        };
    };
    let field = invalid
        .errors
        .first()
        .map_or_else(|| "spec".to_owned(), |first| in_request(&first.field));
    // The error shows the field first, so the first problem's reason follows it bare.
    let reason = invalid
        .errors
        .iter()
        .enumerate()
        .map(|(index, problem)| match index {
            0 => problem.reason.clone(),
            _ => format!("{}: {}", in_request(&problem.field), problem.reason),
        })
        .collect::<Vec<_>>()
        .join("; ");
    ScraperError::InvalidArgument { field, reason }
}

/// A spec's field path as a path in the request; the whole spec (its size) is `spec`.
fn in_request(field: &str) -> String {
    match field {
        "" => "spec".to_owned(),
        field => format!("spec.{field}"),
    }
}

/// What a job id stands for: a compiled job, or why its spec did not compile.
pub(crate) type Definition = std::result::Result<Arc<Job>, Arc<str>>;

/// Compiled jobs by id.
#[derive(Debug, Default)]
pub(crate) struct JobCache {
    jobs: Mutex<HashMap<String, Definition>>,
}

impl JobCache {
    /// Compiles and remembers a job the first time it is defined; later definitions of the
    /// same id are the same spec and cost nothing.
    pub(crate) fn define(&self, job_id: &str, spec: Option<&JobSpec>) {
        let mut jobs = self.lock();
        if jobs.get(job_id).is_some_and(|known| known.is_ok()) {
            return;
        }
        let definition = match spec {
            Some(spec) => Job::compile(spec)
                .map(Arc::new)
                .map_err(|error| Arc::from(error.to_string())),
            None => Err(Arc::from("the dispatcher sent no spec")),
        };
        if let Err(reason) = &definition {
            tracing::warn!(job = job_id, %reason, "job definition does not compile");
        }
        if jobs.len() >= MAX_CACHED_JOBS {
            // Jobs no assignment holds any more are the ones safe to forget.
            jobs.retain(|_, known| known.as_ref().is_ok_and(|job| Arc::strong_count(job) > 1));
        }
        jobs.insert(job_id.to_owned(), definition);
    }

    /// The definition of `job_id`, if the job was defined.
    pub(crate) fn get(&self, job_id: &str) -> Option<Definition> {
        self.lock().get(job_id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Definition>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use owlmesh_proto::v1::{FieldRule, FollowRules, Handler};

    use super::*;

    fn valid() -> JobSpec {
        JobSpec {
            name: "t".into(),
            seeds: vec!["http://fine/".into()],
            ..JobSpec::default()
        }
    }

    fn field_of(spec: &JobSpec) -> String {
        match Job::compile(spec) {
            Err(ScraperError::InvalidArgument { field, .. }) => field,
            other => panic!("expected an invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn compile_errors_name_the_field() {
        let handler = |pattern: &str, selector: &str| Handler {
            name: pattern.into(),
            pattern: pattern.into(),
            fields: [(
                "title".to_owned(),
                FieldRule {
                    selector: selector.into(),
                    ..FieldRule::default()
                },
            )]
            .into(),
        };
        let spec = JobSpec {
            handlers: vec![handler("^/ok$", "h1"), handler("(", "h1")],
            ..valid()
        };
        assert_eq!(field_of(&spec), "spec.handlers[1].pattern");
        let spec = JobSpec {
            handlers: vec![handler("^/ok$", "h1["), handler("^/x$", "h1")],
            ..valid()
        };
        assert_eq!(field_of(&spec), "spec.handlers[0].fields.title.selector");
        let spec = JobSpec {
            follow: Some(FollowRules {
                deny: vec!["ok".into(), "[".into()],
                ..FollowRules::default()
            }),
            ..valid()
        };
        assert_eq!(field_of(&spec), "spec.follow.deny[1]");
        let spec = JobSpec {
            seeds: vec!["http://fine/".into(), "ftp://nope/".into()],
            ..valid()
        };
        assert_eq!(field_of(&spec), "spec.seeds[1]");
        let spec = JobSpec {
            allowed_hosts: vec!["fine".into(), "a/b".into()],
            ..valid()
        };
        assert_eq!(field_of(&spec), "spec.allowed_hosts[1]");
    }

    #[test]
    fn the_message_names_each_field_once_and_the_whole_spec_as_spec() {
        let spec = JobSpec {
            name: "t\n".into(),
            seeds: vec!["ftp://nope/".into()],
            ..valid()
        };
        let error = Job::compile(&spec).expect_err("invalid").to_string();
        assert_eq!(
            error,
            "spec.name: must not contain control characters such as newlines or tabs; \
             spec.seeds[0]: expected an http or https URL, found scheme \"ftp\""
        );
        let seed = format!("http://fine/{}", "a".repeat(1000));
        let huge = JobSpec {
            seeds: vec![seed; 5000],
            ..valid()
        };
        assert_eq!(field_of(&huge), "spec");
    }

    #[test]
    fn a_job_is_compiled_once_and_bad_specs_are_remembered_with_their_reason() {
        let cache = JobCache::default();
        cache.define("a", Some(&valid()));
        let first = cache.get("a").expect("defined").expect("compiles");
        cache.define("a", Some(&valid()));
        let second = cache.get("a").expect("defined").expect("compiles");
        assert!(Arc::ptr_eq(&first, &second));
        cache.define("b", None);
        assert!(cache.get("b").expect("defined").is_err());
        assert!(cache.get("c").is_none());
    }
}

//! Jobs as the scraper uses them: a spec compiled once into its extraction rules and its
//! politeness, and the cache of compiled jobs by id, kept across work sessions because a
//! dispatcher defines each job once per session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use owlmesh_proto::v1::JobSpec;

use crate::error::{Error, Result};
use crate::extract::CompiledJob;
use crate::politeness::JobPoliteness;

/// Jobs remembered before unused ones are forgotten.
const MAX_CACHED_JOBS: usize = 1024;

/// A job ready to scrape with.
#[derive(Debug)]
pub(crate) struct Job {
    /// Handlers, follow rules and document types.
    pub(crate) rules: CompiledJob,
    /// robots.txt, delays, concurrency and user agent.
    pub(crate) politeness: JobPoliteness,
}

impl Job {
    /// Compiles `spec`; the error names the invalid part by its path in a request, e.g.
    /// `spec.handlers[0].pattern`.
    pub(crate) fn compile(spec: &JobSpec) -> Result<Self> {
        let rules = CompiledJob::compile(spec).map_err(|error| Error::InvalidArgument {
            field: spec_field(spec, &error),
            reason: error.to_string(),
        })?;
        Ok(Self {
            rules,
            politeness: JobPoliteness::from_spec(spec),
        })
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

/// The request path of the part of `spec` that `error` is about.
fn spec_field(spec: &JobSpec, error: &Error) -> String {
    let handlers = &spec.handlers;
    let found = match error {
        Error::InvalidPattern {
            handler, pattern, ..
        } => handlers
            .iter()
            .position(|h| &h.name == handler && &h.pattern == pattern)
            .map(|index| format!("spec.handlers[{index}].pattern")),
        Error::InvalidSelector { selector, .. } => selector_field(spec, selector),
        Error::InvalidFollowRule { pattern, .. } => follow_rule_field(spec, pattern),
        Error::InvalidHost { host } => spec
            .allowed_hosts
            .iter()
            .position(|written| written == host)
            .map(|index| format!("spec.allowed_hosts[{index}]")),
        Error::InvalidSeed { url, .. } => spec
            .seeds
            .iter()
            .position(|seed| seed == url)
            .map(|index| format!("spec.seeds[{index}]")),
        _ => None,
    };
    found.unwrap_or_else(|| "spec".to_owned())
}

fn selector_field(spec: &JobSpec, selector: &str) -> Option<String> {
    for (index, handler) in spec.handlers.iter().enumerate() {
        let mut names: Vec<&String> = handler
            .fields
            .iter()
            .filter(|(_, rule)| rule.selector == selector)
            .map(|(name, _)| name)
            .collect();
        // Fields compile in name order, so the first bad one by name is the one reported.
        names.sort();
        if let Some(name) = names.first() {
            return Some(format!("spec.handlers[{index}].fields.{name}.selector"));
        }
    }
    spec.follow
        .as_ref()
        .filter(|follow| follow.selector.trim() == selector)
        .map(|_| "spec.follow.selector".to_owned())
}

fn follow_rule_field(spec: &JobSpec, pattern: &str) -> Option<String> {
    let follow = spec.follow.as_ref()?;
    let position = |list: &[String]| list.iter().position(|rule| rule == pattern);
    position(&follow.allow)
        .map(|index| format!("spec.follow.allow[{index}]"))
        .or_else(|| position(&follow.deny).map(|index| format!("spec.follow.deny[{index}]")))
}

#[cfg(test)]
mod tests {
    use owlmesh_proto::v1::{FieldRule, FollowRules, Handler};

    use super::*;

    fn field_of(spec: &JobSpec) -> String {
        match Job::compile(spec) {
            Err(Error::InvalidArgument { field, .. }) => field,
            other => panic!("expected an invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn compile_errors_name_the_field() {
        let handler = |pattern: &str, selector: &str| Handler {
            name: "product".into(),
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
            ..JobSpec::default()
        };
        assert_eq!(field_of(&spec), "spec.handlers[1].pattern");
        let spec = JobSpec {
            handlers: vec![handler("^/ok$", "h1["), handler("^/x$", "h1")],
            ..JobSpec::default()
        };
        assert_eq!(field_of(&spec), "spec.handlers[0].fields.title.selector");
        let spec = JobSpec {
            follow: Some(FollowRules {
                deny: vec!["ok".into(), "[".into()],
                ..FollowRules::default()
            }),
            ..JobSpec::default()
        };
        assert_eq!(field_of(&spec), "spec.follow.deny[1]");
        let spec = JobSpec {
            seeds: vec!["http://fine/".into(), "ftp://nope/".into()],
            ..JobSpec::default()
        };
        assert_eq!(field_of(&spec), "spec.seeds[1]");
    }

    #[test]
    fn a_job_is_compiled_once_and_bad_specs_are_remembered_with_their_reason() {
        let cache = JobCache::default();
        cache.define("a", Some(&JobSpec::default()));
        let first = cache.get("a").expect("defined").expect("compiles");
        cache.define("a", Some(&JobSpec::default()));
        let second = cache.get("a").expect("defined").expect("compiles");
        assert!(Arc::ptr_eq(&first, &second));
        cache.define("b", None);
        assert!(cache.get("b").expect("defined").is_err());
        assert!(cache.get("c").is_none());
    }
}

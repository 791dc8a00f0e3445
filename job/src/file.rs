//! The TOML job file's shape, and how it becomes a proto [`JobSpec`].
//!
//! Every key may be left out; unknown keys are errors. A field of a handler is either a bare
//! CSS selector string (`title = "h1"`) or a table (`sku = { selector = "div", attr = "x" }`).
//! Where the proto reads 0 or "" as "the default", writing that value explicitly in the file
//! is reported instead of being silently replaced.

use std::collections::BTreeMap;
use std::fmt;

use owlmesh_proto::v1::{
    DocumentRules, FieldRule, FollowRules, Handler, JobSpec, Politeness, RecrawlSchedule,
};
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, MapAccess, Visitor};

use crate::path::{FieldPath, Issue};

/// Parses the text of a job file into its TOML shape.
pub(super) fn parse(source: &str) -> Result<JobFile, toml::de::Error> {
    toml::from_str(source)
}

/// A whole job file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct JobFile {
    name: String,
    seeds: Vec<String>,
    allowed_hosts: Vec<String>,
    max_depth: u32,
    max_pages: u64,
    follow: Option<FollowFile>,
    handlers: Vec<HandlerFile>,
    documents: Option<DocumentsFile>,
    politeness: Option<PolitenessFile>,
    recrawl: Option<RecrawlFile>,
    priority: i32,
    max_retries: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FollowFile {
    selector: Option<String>,
    allow: Vec<String>,
    deny: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct HandlerFile {
    name: String,
    pattern: String,
    fields: BTreeMap<String, FieldEntry>,
}

/// A handler field: a bare selector string or a [`FieldTable`].
#[derive(Debug, Default)]
struct FieldEntry(FieldTable);

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FieldTable {
    selector: String,
    attr: String,
    html: bool,
    many: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct DocumentsFile {
    types: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PolitenessFile {
    obey_robots: Option<bool>,
    delay_ms: u64,
    concurrency_per_host: Option<u32>,
    user_agent: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RecrawlFile {
    every: String,
    cron: String,
}

impl<'de> Deserialize<'de> for FieldEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldEntryVisitor)
    }
}

struct FieldEntryVisitor;

impl<'de> Visitor<'de> for FieldEntryVisitor {
    type Value = FieldEntry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CSS selector string or a table with selector, attr, html and many")
    }

    fn visit_str<E: serde::de::Error>(self, selector: &str) -> Result<FieldEntry, E> {
        Ok(FieldEntry(FieldTable {
            selector: selector.to_owned(),
            ..FieldTable::default()
        }))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FieldEntry, A::Error> {
        FieldTable::deserialize(MapAccessDeserializer::new(map)).map(FieldEntry)
    }
}

impl JobFile {
    /// The proto spec this file describes, and the explicit values that cannot be kept.
    pub(super) fn into_spec(self) -> (JobSpec, Vec<Issue>) {
        let mut issues = Vec::new();
        if self.max_retries == Some(0) {
            issues.push(Issue::new(
                FieldPath::root("max_retries"),
                "must be at least 1 (0 is read as the default, 3); leave it out for the default",
            ));
        }
        let spec = JobSpec {
            name: self.name,
            seeds: self.seeds,
            allowed_hosts: self.allowed_hosts,
            max_depth: self.max_depth,
            max_pages: self.max_pages,
            follow: self.follow.map(|follow| follow.into_proto(&mut issues)),
            handlers: self
                .handlers
                .into_iter()
                .map(HandlerFile::into_proto)
                .collect(),
            documents: self.documents.map(|documents| DocumentRules {
                types: documents.types,
            }),
            politeness: self
                .politeness
                .map(|politeness| politeness.into_proto(&mut issues)),
            recrawl: self.recrawl.map(|recrawl| RecrawlSchedule {
                every: recrawl.every,
                cron: recrawl.cron,
            }),
            priority: self.priority,
            max_retries: self.max_retries.unwrap_or_default(),
        };
        (spec, issues)
    }
}

impl FollowFile {
    fn into_proto(self, issues: &mut Vec<Issue>) -> FollowRules {
        let written_empty = self
            .selector
            .as_ref()
            .is_some_and(|selector| selector.trim().is_empty());
        if written_empty {
            issues.push(Issue::new(
                FieldPath::root("follow").key("selector"),
                "must be a CSS selector; leave it out for the default \"a[href]\"",
            ));
        }
        FollowRules {
            selector: self.selector.unwrap_or_default(),
            allow: self.allow,
            deny: self.deny,
        }
    }
}

impl HandlerFile {
    fn into_proto(self) -> Handler {
        let fields = self
            .fields
            .into_iter()
            .map(|(name, FieldEntry(field))| {
                let rule = FieldRule {
                    selector: field.selector,
                    attr: field.attr,
                    html: field.html,
                    many: field.many,
                };
                (name, rule)
            })
            .collect();
        Handler {
            name: self.name,
            pattern: self.pattern,
            fields,
        }
    }
}

impl PolitenessFile {
    fn into_proto(self, issues: &mut Vec<Issue>) -> Politeness {
        let path = FieldPath::root("politeness");
        if self.concurrency_per_host == Some(0) {
            issues.push(Issue::new(
                path.key("concurrency_per_host"),
                "must be at least 1; leave it out for the default, 2",
            ));
        }
        if self
            .user_agent
            .as_ref()
            .is_some_and(|agent| agent.trim().is_empty())
        {
            issues.push(Issue::new(
                path.key("user_agent"),
                "must not be empty; leave it out for the default \"owlmesh\"",
            ));
        }
        Politeness {
            obey_robots: self.obey_robots,
            delay_ms: self.delay_ms,
            concurrency_per_host: self.concurrency_per_host.unwrap_or_default(),
            user_agent: self.user_agent.unwrap_or_default(),
        }
    }
}

//! The compiled form of a job spec: selectors, regular expressions, the allowed hosts, the
//! document types and the recrawl schedule, built once per job. It is the one form both the
//! dispatcher (which links to admit) and the scrapers (what to fetch and extract) decide by,
//! so the two cannot disagree about a link.

use std::str::FromStr;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use owlmesh_proto::v1::{JobSpec, RecrawlSchedule};
use regex::{Regex, RegexSet};
use scraper::Selector;
use url::Url;

use crate::canonical::CanonicalUrl;
use crate::documents::DocumentTypes;
use crate::host::AllowedHosts;
use crate::{InvalidSpec, SpecError, check, location, with_defaults};

/// The longest link followed, in bytes of its canonical form. Longer ones are mostly traps
/// (session ids, calendars, repeated path segments); browsers and servers commonly stop
/// near 2,000 too. It also bounds an outcome's size with [`MAX_LINKS_PER_PAGE`].
pub const MAX_LINK_BYTES: usize = 2048;
/// Links followed from one page at most, in document order (Heritrix's default outlink cap
/// is of the same size): a page of a million links would otherwise become one message too
/// large for any dispatcher to read.
pub const MAX_LINKS_PER_PAGE: usize = 6000;

/// A job spec made ready to apply: everything parsed and compiled, defaults filled in.
#[derive(Debug, Clone)]
pub struct CompiledJob {
    pub(super) spec: JobSpec,
    pub(super) allowed_hosts: AllowedHosts,
    pub(super) follow_selector: Selector,
    pub(super) allow: RegexSet,
    pub(super) deny: RegexSet,
    pub(super) handlers: Vec<CompiledHandler>,
    pub(super) document_types: Vec<String>,
    pub(super) documents: DocumentTypes,
    pub(super) recrawl: Recrawl,
}

/// A handler: a URL path pattern and the fields it extracts.
#[derive(Debug, Clone)]
pub struct CompiledHandler {
    pub(super) name: String,
    pub(super) pattern: Regex,
    pub(super) fields: Vec<CompiledField>,
}

/// How to extract one field of a handler.
#[derive(Debug, Clone)]
pub struct CompiledField {
    pub(super) name: String,
    pub(super) selector: Selector,
    pub(super) attr: Option<String>,
    pub(super) html: bool,
    pub(super) many: bool,
}

/// When a job crawls again.
#[derive(Debug, Clone)]
pub enum Recrawl {
    /// Once only.
    Never,
    /// This long after each epoch starts.
    Every(Duration),
    /// At the times of a cron schedule, in UTC.
    Cron(Box<cron::Schedule>),
}

impl CompiledJob {
    /// Validates `spec` (with defaults filled in) and compiles it.
    pub fn compile(spec: &JobSpec) -> Result<Self, SpecError> {
        let spec = with_defaults(spec.clone());
        check::compile(&spec).map_err(|issues| {
            SpecError::from(InvalidSpec {
                origin: None,
                errors: location::unplaced_field_errors(issues),
            })
        })
    }

    /// The effective spec it was compiled from (defaults filled in).
    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    /// Whether `url` is on one of the allowed hosts (an entry without a port allows every
    /// port of its host).
    pub fn allows_host(&self, url: &Url) -> bool {
        self.allowed_hosts.allows(url)
    }

    /// Whether a link may be followed: at most [`MAX_LINK_BYTES`] long, on an allowed host,
    /// matching an allow pattern (when there are any) and no deny pattern. Patterns match
    /// the whole canonical URL.
    pub fn allows_link(&self, url: &CanonicalUrl) -> bool {
        let text = url.as_str();
        text.len() <= MAX_LINK_BYTES
            && self.allows_host(url.as_url())
            && (self.allow.is_empty() || self.allow.is_match(text))
            && !self.deny.is_match(text)
    }

    /// Selects the link elements whose `href` is followed.
    pub fn follow_selector(&self) -> &Selector {
        &self.follow_selector
    }

    /// The handlers, in the order they are tried.
    pub fn handlers(&self) -> &[CompiledHandler] {
        &self.handlers
    }

    /// The first handler whose pattern matches the URL's path and query.
    pub fn handler_for(&self, url: &CanonicalUrl) -> Option<&CompiledHandler> {
        let path = url.path_and_query();
        self.handlers
            .iter()
            .find(|handler| handler.pattern.is_match(path))
    }

    /// The document types to report as written (lowercase): extensions such as "pdf" or
    /// media types such as "application/pdf".
    pub fn document_types(&self) -> &[String] {
        &self.document_types
    }

    /// The wanted document types, to recognise links and responses by.
    pub fn documents(&self) -> &DocumentTypes {
        &self.documents
    }

    /// The recrawl schedule.
    pub fn recrawl(&self) -> &Recrawl {
        &self.recrawl
    }
}

impl Recrawl {
    /// Reads a schedule (`every` or `cron`, not both), with the same checks and messages as
    /// a whole spec's validation.
    pub fn of_schedule(schedule: &RecrawlSchedule) -> Result<Self, SpecError> {
        let mut issues = Vec::new();
        match check::compile_recrawl(schedule, &mut issues) {
            Some(recrawl) if issues.is_empty() => Ok(recrawl),
            _ => Err(SpecError::from(InvalidSpec {
                origin: None,
                errors: location::unplaced_field_errors(issues),
            })),
        }
    }

    /// The schedule as stored with a job: an interval in milliseconds (0 for none) and a
    /// cron expression (empty for none). `None` when the stored cron no longer parses.
    pub fn from_stored(every_ms: i64, cron: &str) -> Option<Self> {
        if every_ms > 0 {
            return Some(Self::Every(Duration::from_millis(every_ms.unsigned_abs())));
        }
        if cron.is_empty() {
            return Some(Self::Never);
        }
        cron::Schedule::from_str(cron)
            .ok()
            .map(|schedule| Self::Cron(Box::new(schedule)))
    }

    /// The interval to store, in milliseconds; 0 when there is none.
    pub fn every_ms(&self) -> i64 {
        match self {
            Self::Every(interval) => i64::try_from(interval.as_millis()).unwrap_or(i64::MAX),
            Self::Never | Self::Cron(_) => 0,
        }
    }

    /// The cron expression to store; empty when there is none.
    pub fn cron_source(&self) -> &str {
        match self {
            Self::Cron(schedule) => schedule.source(),
            Self::Never | Self::Every(_) => "",
        }
    }

    /// In Unix milliseconds, when the epoch that started at `epoch_started_at` and finished
    /// at `now` is followed by the next one; 0 for never. Never earlier than `now`: an epoch
    /// that outlasted its interval is followed at once.
    pub fn next_epoch_at(&self, epoch_started_at: i64, now: i64) -> i64 {
        match self {
            Self::Never => 0,
            Self::Every(_) => epoch_started_at.saturating_add(self.every_ms()).max(now),
            Self::Cron(schedule) => Utc
                .timestamp_millis_opt(now)
                .single()
                .and_then(|after| schedule.after(&after).next())
                .map_or(0, |next| next.timestamp_millis()),
        }
    }
}

impl CompiledHandler {
    /// The handler's name, recorded with each item it produces.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pattern matched against a URL's path and query; named captures become fields.
    pub fn pattern(&self) -> &Regex {
        &self.pattern
    }

    /// The fields to extract, sorted by name.
    pub fn fields(&self) -> &[CompiledField] {
        &self.fields
    }
}

impl CompiledField {
    /// The field's name in the extracted item.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Selects the element(s) to extract from.
    pub fn selector(&self) -> &Selector {
        &self.selector
    }

    /// The attribute to take instead of the text, if any.
    pub fn attr(&self) -> Option<&str> {
        self.attr.as_deref()
    }

    /// Whether to take the inner HTML instead of the text.
    pub fn html(&self) -> bool {
        self.html
    }

    /// Whether to take every match (a list) instead of the first.
    pub fn many(&self) -> bool {
        self.many
    }
}

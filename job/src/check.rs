//! Validation of a job spec, done by compiling it: every selector, pattern, URL, host and
//! schedule is parsed once, each failure becomes an [`Issue`] naming its field, and a spec
//! without issues yields its [`CompiledJob`].

use std::collections::HashMap;
use std::str::FromStr;

use owlmesh_proto::v1::{
    DocumentRules, FieldRule, FollowRules, Handler, JobSpec, Politeness, RecrawlSchedule,
};
use regex::{Regex, RegexSet};
use scraper::Selector;
use scraper::error::SelectorErrorKind;

use crate::canonical::{CanonicalError, canonicalize};
use crate::documents::{DocumentTypes, is_document_type};
use crate::host::{AllowedHost, AllowedHosts};
use crate::path::{FieldPath, Issue};
use crate::rules::{CompiledField, CompiledHandler, CompiledJob, Recrawl};

/// Longest job name, in characters.
pub const NAME_LENGTH_LIMIT: usize = 200;
/// Largest `max_depth` (0 means unlimited).
pub const DEPTH_LIMIT: u32 = 100_000;
/// Largest `max_pages` (0 means unlimited).
pub const PAGES_LIMIT: u64 = 1_000_000_000_000;
/// Largest `max_retries`.
pub const RETRIES_LIMIT: u32 = 100;
/// Largest `politeness.delay_ms`: one hour.
pub const DELAY_MS_LIMIT: u64 = 3_600_000;
/// Largest `politeness.concurrency_per_host`.
pub const CONCURRENCY_PER_HOST_LIMIT: u32 = 1_000;
/// Longest `politeness.user_agent`, in characters.
pub const USER_AGENT_LENGTH_LIMIT: usize = 512;
/// Longest document type (a file extension or a media type), in bytes.
pub const DOCUMENT_TYPE_LENGTH_LIMIT: usize = 128;

/// Checks a spec whose defaults are filled in and compiles it, or lists every problem.
pub(super) fn compile(spec: &JobSpec) -> Result<CompiledJob, Vec<Issue>> {
    let mut issues = Vec::new();
    check_name(&spec.name, &mut issues);
    check_seeds(&spec.seeds, &mut issues);
    let allowed_hosts = compile_allowed_hosts(&spec.allowed_hosts, &mut issues);
    check_limits(spec, &mut issues);
    let follow = compile_follow(&spec.follow.clone().unwrap_or_default(), &mut issues);
    let handlers = compile_handlers(&spec.handlers, &mut issues);
    let document_types = compile_document_types(spec.documents.as_ref(), &mut issues);
    check_politeness(&spec.politeness.clone().unwrap_or_default(), &mut issues);
    let recrawl = compile_recrawl(&spec.recrawl.clone().unwrap_or_default(), &mut issues);
    match (follow, recrawl) {
        (Some((follow_selector, allow, deny)), Some(recrawl)) if issues.is_empty() => {
            Ok(CompiledJob {
                allowed_hosts,
                follow_selector,
                allow,
                deny,
                handlers,
                document_types: document_types.0,
                documents: document_types.1,
                recrawl,
                spec: spec.clone(),
            })
        }
        _ => Err(issues),
    }
}

fn check_name(name: &str, issues: &mut Vec<Issue>) {
    let path = FieldPath::root("name");
    if name.trim().is_empty() {
        issues.push(Issue::new(path, "a job needs a name"));
    } else if name.chars().count() > NAME_LENGTH_LIMIT {
        let reason = format!("must be at most {NAME_LENGTH_LIMIT} characters");
        issues.push(Issue::new(path, reason));
    } else if name.chars().any(char::is_control) {
        // A newline in a name would forge lines in every log and listing that shows it.
        let reason = "must not contain control characters such as newlines or tabs";
        issues.push(Issue::new(path, reason));
    }
}

fn check_seeds(seeds: &[String], issues: &mut Vec<Issue>) {
    let path = FieldPath::root("seeds");
    if seeds.is_empty() {
        issues.push(Issue::new(
            path.clone(),
            "at least one seed URL is required",
        ));
    }
    for (index, seed) in seeds.iter().enumerate() {
        if has_credentials(seed) {
            // They would be kept in the frontier, every event and every export.
            let reason = "must not carry credentials (user:password@); a crawl sends none";
            issues.push(Issue::new(path.index(index), reason));
            continue;
        }
        if let Err(error) = canonicalize(seed) {
            let reason = match error {
                CanonicalError::UnsupportedScheme { scheme, .. } => {
                    format!("expected an http or https URL, found scheme {scheme:?}")
                }
                CanonicalError::Invalid { source, .. } => {
                    format!("expected an http or https URL, found {seed:?} ({source})")
                }
            };
            issues.push(Issue::new(path.index(index), reason));
        }
    }
}

/// Whether a URL names a user or a password before its host.
fn has_credentials(url: &str) -> bool {
    url::Url::parse(url.trim())
        .is_ok_and(|url| !url.username().is_empty() || url.password().is_some())
}

fn compile_allowed_hosts(hosts: &[String], issues: &mut Vec<Issue>) -> AllowedHosts {
    let path = FieldPath::root("allowed_hosts");
    let mut entries = Vec::with_capacity(hosts.len());
    for (index, host) in hosts.iter().enumerate() {
        match AllowedHost::parse(host) {
            Some(entry) => entries.push(entry),
            None => issues.push(Issue::new(
                path.index(index),
                format!(
                    "expected a host or host:port such as \"example.com\" or \
                     \"127.0.0.2:8081\", found {host:?}"
                ),
            )),
        }
    }
    AllowedHosts::new(entries)
}

fn check_limits(spec: &JobSpec, issues: &mut Vec<Issue>) {
    if spec.max_depth > DEPTH_LIMIT {
        let reason = format!("must be at most {DEPTH_LIMIT} (0 means unlimited)");
        issues.push(Issue::new(FieldPath::root("max_depth"), reason));
    }
    if spec.max_pages > PAGES_LIMIT {
        let reason = format!("must be at most {PAGES_LIMIT} (0 means unlimited)");
        issues.push(Issue::new(FieldPath::root("max_pages"), reason));
    }
    if spec.max_retries > RETRIES_LIMIT {
        let reason = format!("must be at most {RETRIES_LIMIT}");
        issues.push(Issue::new(FieldPath::root("max_retries"), reason));
    }
}

fn compile_follow(
    follow: &FollowRules,
    issues: &mut Vec<Issue>,
) -> Option<(Selector, RegexSet, RegexSet)> {
    let path = FieldPath::root("follow");
    let selector = compile_selector(&follow.selector, &path.key("selector"), issues);
    let allow = compile_regex_set(&follow.allow, &path.key("allow"), issues);
    let deny = compile_regex_set(&follow.deny, &path.key("deny"), issues);
    Some((selector?, allow?, deny?))
}

fn compile_handlers(handlers: &[Handler], issues: &mut Vec<Issue>) -> Vec<CompiledHandler> {
    let path = FieldPath::root("handlers");
    let mut first_use: HashMap<&str, usize> = HashMap::new();
    let mut compiled = Vec::with_capacity(handlers.len());
    for (index, handler) in handlers.iter().enumerate() {
        let path = path.index(index);
        let name = handler.name.trim();
        if name.is_empty() {
            issues.push(Issue::new(path.key("name"), "a handler needs a name"));
        } else if let Some(first) = first_use.insert(name, index) {
            let reason = format!("duplicate handler name {name:?}, also used by handlers[{first}]");
            issues.push(Issue::new(path.key("name"), reason));
        }
        let pattern = compile_regex(&handler.pattern, &path.key("pattern"), issues);
        let fields = compile_fields(&handler.fields, &path.key("fields"), issues);
        if let Some(pattern) = pattern {
            compiled.push(CompiledHandler {
                name: handler.name.clone(),
                pattern,
                fields,
            });
        }
    }
    compiled
}

fn compile_fields(
    fields: &HashMap<String, FieldRule>,
    path: &FieldPath,
    issues: &mut Vec<Issue>,
) -> Vec<CompiledField> {
    let mut names: Vec<&String> = fields.keys().collect();
    names.sort();
    let mut compiled = Vec::with_capacity(names.len());
    for name in names {
        let path = path.key(name);
        if name.trim().is_empty() {
            issues.push(Issue::new(path.clone(), "a field needs a name"));
        }
        if let Some(field) = fields
            .get(name)
            .and_then(|rule| compile_field(name, rule, &path, issues))
        {
            compiled.push(field);
        }
    }
    compiled
}

fn compile_field(
    name: &str,
    rule: &FieldRule,
    path: &FieldPath,
    issues: &mut Vec<Issue>,
) -> Option<CompiledField> {
    let selector = if rule.selector.trim().is_empty() {
        issues.push(Issue::new(
            path.key("selector"),
            "a field needs a CSS selector",
        ));
        None
    } else {
        compile_selector(&rule.selector, &path.key("selector"), issues)
    };
    let attr = rule.attr.trim();
    if !attr.is_empty() && !is_attribute_name(attr) {
        let reason = format!("expected an HTML attribute name such as \"href\", found {attr:?}");
        issues.push(Issue::new(path.key("attr"), reason));
    }
    if rule.html && !attr.is_empty() {
        let reason = "cannot be combined with attr: take an attribute or the inner HTML";
        issues.push(Issue::new(path.key("html"), reason));
    }
    Some(CompiledField {
        name: name.to_owned(),
        selector: selector?,
        // HTML attribute names are case-insensitive and the parser lowercases them.
        attr: (!attr.is_empty()).then(|| attr.to_ascii_lowercase()),
        html: rule.html,
        many: rule.many,
    })
}

/// The attribute-name rule of the HTML standard.
fn is_attribute_name(name: &str) -> bool {
    name.chars().all(|c| {
        !c.is_whitespace() && !c.is_control() && !matches!(c, '"' | '\'' | '>' | '/' | '=')
    })
}

fn compile_document_types(
    documents: Option<&DocumentRules>,
    issues: &mut Vec<Issue>,
) -> (Vec<String>, DocumentTypes) {
    let path = FieldPath::root("documents").key("types");
    let mut types: Vec<String> = Vec::new();
    for (index, kind) in documents
        .map(|d| d.types.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let written = kind.trim().trim_start_matches('.').to_ascii_lowercase();
        if !is_document_type(&written, DOCUMENT_TYPE_LENGTH_LIMIT) {
            let reason = format!(
                "expected a file extension such as \"pdf\" or a media type such as \
                 \"application/pdf\", found {kind:?}"
            );
            issues.push(Issue::new(path.index(index), reason));
        } else if !types.contains(&written) {
            types.push(written);
        }
    }
    let compiled = DocumentTypes::new(&types);
    (types, compiled)
}

fn check_politeness(politeness: &Politeness, issues: &mut Vec<Issue>) {
    let path = FieldPath::root("politeness");
    if politeness.delay_ms > DELAY_MS_LIMIT {
        let reason = format!("must be at most {DELAY_MS_LIMIT} (one hour)");
        issues.push(Issue::new(path.key("delay_ms"), reason));
    }
    if politeness.concurrency_per_host > CONCURRENCY_PER_HOST_LIMIT {
        let reason = format!("must be at most {CONCURRENCY_PER_HOST_LIMIT}");
        issues.push(Issue::new(path.key("concurrency_per_host"), reason));
    }
    let agent = &politeness.user_agent;
    if agent.chars().count() > USER_AGENT_LENGTH_LIMIT {
        let reason = format!("must be at most {USER_AGENT_LENGTH_LIMIT} characters");
        issues.push(Issue::new(path.key("user_agent"), reason));
    } else if agent.chars().any(char::is_control) {
        let reason = "must be printable: no line breaks or control characters";
        issues.push(Issue::new(path.key("user_agent"), reason));
    }
}

pub(crate) fn compile_recrawl(
    recrawl: &RecrawlSchedule,
    issues: &mut Vec<Issue>,
) -> Option<Recrawl> {
    let path = FieldPath::root("recrawl");
    let every = recrawl.every.trim();
    let cron = recrawl.cron.trim();
    match (every.is_empty(), cron.is_empty()) {
        (true, true) => Some(Recrawl::Never),
        (false, true) => compile_every(every, &path.key("every"), issues),
        (true, false) => compile_cron(cron, &path.key("cron"), issues),
        (false, false) => {
            compile_every(every, &path.key("every"), issues);
            compile_cron(cron, &path.key("cron"), issues);
            issues.push(Issue::new(path, "give either every or cron, not both"));
            None
        }
    }
}

fn compile_every(every: &str, path: &FieldPath, issues: &mut Vec<Issue>) -> Option<Recrawl> {
    match humantime::parse_duration(every) {
        Ok(interval) if interval.is_zero() => {
            issues.push(Issue::new(path.clone(), "must be longer than zero"));
            None
        }
        Ok(interval) => Some(Recrawl::Every(interval)),
        Err(error) => {
            let reason = format!(
                "expected a duration such as \"24h\" or \"90m\", found {every:?} ({error})"
            );
            issues.push(Issue::new(path.clone(), reason));
            None
        }
    }
}

fn compile_cron(cron: &str, path: &FieldPath, issues: &mut Vec<Issue>) -> Option<Recrawl> {
    match cron::Schedule::from_str(cron) {
        Ok(schedule) => Some(Recrawl::Cron(Box::new(schedule))),
        Err(error) => {
            let reason = format!(
                "expected a cron expression with seconds first such as \"0 0 3 * * *\", \
                 found {cron:?} ({error})"
            );
            issues.push(Issue::new(path.clone(), reason));
            None
        }
    }
}

fn compile_selector(selector: &str, path: &FieldPath, issues: &mut Vec<Issue>) -> Option<Selector> {
    match Selector::parse(selector) {
        Ok(selector) => Some(selector),
        Err(error) => {
            let reason = format!(
                "not a valid CSS selector: {selector:?} ({})",
                selector_problem(&error)
            );
            issues.push(Issue::new(path.clone(), reason));
            None
        }
    }
}

fn compile_regex(pattern: &str, path: &FieldPath, issues: &mut Vec<Issue>) -> Option<Regex> {
    match Regex::new(pattern) {
        Ok(regex) => Some(regex),
        Err(error) => {
            let reason = format!("not a valid regular expression: {}", regex_problem(&error));
            issues.push(Issue::new(path.clone(), reason));
            None
        }
    }
}

/// What is wrong with a selector, in words a job's author can act on. The parser's own text
/// for its less common errors asks the reader to report a bug, which helps nobody here.
fn selector_problem(error: &SelectorErrorKind) -> String {
    let kind = match error {
        SelectorErrorKind::UnexpectedSelectorParseError(kind) => kind,
        SelectorErrorKind::UnexpectedToken => return "an unexpected character or token".into(),
        SelectorErrorKind::EndOfLine => return "the selector ends too early".into(),
        SelectorErrorKind::TooManyNestedBlocks => return "too many nested brackets".into(),
        SelectorErrorKind::ExpectedColonOnPseudoElement
        | SelectorErrorKind::ExpectedIdentityOnPseudoElement => {
            return "a pseudo-element needs a name after ::, as in ::before".into();
        }
        other => return other.to_string().to_lowercase(),
    };
    // The kinds carry no data, so their names are stable keys.
    let problem = match format!("{kind:?}").as_str() {
        "EmptySelector" => "the selector is empty",
        "DanglingCombinator" => "a combinator (>, +, ~ or a space) has nothing after it",
        "NoQualifiedNameInAttributeSelector" | "InvalidQualNameInAttr" => {
            "an attribute selector needs an attribute name, as in [href]"
        }
        "UnexpectedTokenInAttributeSelector" | "BadValueInAttr" | "ExpectedBarInAttr" => {
            "an attribute selector is malformed; write [name], [name=value] or [name^=\"value\"]"
        }
        "UnsupportedPseudoClassOrElement" | "NoIdentForPseudo" => {
            "an unknown or unsupported pseudo-class or pseudo-element"
        }
        "ClassNeedsIdent" => "a class selector needs a name after the dot, as in .price",
        "UnexpectedIdent" => "a name stands where the selector expects something else",
        "ExpectedNamespace" | "ExplicitNamespaceUnexpectedToken" => {
            "namespaces are not supported in selectors"
        }
        _ => "this selector syntax is not supported",
    };
    problem.to_owned()
}

/// Compiles each pattern alone (so an error names its index), then all of them as one set.
fn compile_regex_set(
    patterns: &[String],
    path: &FieldPath,
    issues: &mut Vec<Issue>,
) -> Option<RegexSet> {
    let before = issues.len();
    for (index, pattern) in patterns.iter().enumerate() {
        compile_regex(pattern, &path.index(index), issues);
    }
    if issues.len() > before {
        return None;
    }
    match RegexSet::new(patterns) {
        Ok(set) => Some(set),
        Err(error) => {
            let reason = format!("patterns too large together: {}", regex_problem(&error));
            issues.push(Issue::new(path.clone(), reason));
            None
        }
    }
}

/// The one-line cause of a regex error (its Display draws the pattern over several lines).
fn regex_problem(error: &regex::Error) -> String {
    let text = error.to_string();
    text.lines()
        .rev()
        .find_map(|line| line.strip_prefix("error: "))
        .unwrap_or(text.lines().next().unwrap_or_default())
        .to_owned()
}

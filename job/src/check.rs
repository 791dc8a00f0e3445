//! Validation of a job spec, done by compiling it: every selector, pattern, URL, host and
//! schedule is parsed once, each failure becomes an [`Issue`] naming its field, and a spec
//! without issues yields its [`CompiledJob`].

use std::collections::HashMap;
use std::str::FromStr;

use owlmesh_proto::v1::{
    DocumentRules, FieldRule, FollowRules, Handler, JobSpec, Politeness, RecrawlSchedule,
};
use prost::Message;
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use scraper::Selector;
use scraper::error::SelectorErrorKind;

use crate::canonical::{CanonicalError, canonicalize};
use crate::documents::{DocumentTypes, is_document_type};
use crate::host::{AllowedHost, AllowedHosts};
use crate::path::{FieldPath, Issue};
use crate::rules::{CompiledField, CompiledHandler, CompiledJob, MAX_LINK_BYTES, Recrawl};
use crate::selector_depth::selector_depth;

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

/// Largest spec, in bytes of its protobuf encoding: 4 MiB, gRPC's default message size, so
/// a spec that passes is one every client and server can carry. Ten thousand seeds of
/// ordinary length take well under 1 MiB. Checked first, so that nothing larger is compiled.
pub const SPEC_BYTES_LIMIT: usize = 4 * 1024 * 1024;
/// Most seeds: a job may start from a few thousand listing or sitemap pages; longer lists
/// belong in the pages the crawl reaches (every seed is a frontier row at submission).
pub const SEEDS_LIMIT: usize = 10_000;
/// Longest seed URL, in bytes: the longest link a crawl follows ([`MAX_LINK_BYTES`]), so
/// that a seed is never a URL its own crawl would refuse.
pub const SEED_LENGTH_LIMIT: usize = MAX_LINK_BYTES;
/// Most `allowed_hosts` entries (which default to the seeds' hosts): every link a page yields
/// is checked against the list in turn, so it stays small enough to scan.
pub const ALLOWED_HOSTS_LIMIT: usize = 1_000;
/// Longest `allowed_hosts` entry, in bytes: a DNS name (253) and `:65535`.
pub const HOST_LENGTH_LIMIT: usize = 259;
/// Most handlers: a site has a handful of page kinds; each page tries them in turn.
pub const HANDLERS_LIMIT: usize = 100;
/// Most fields of one handler: every one is a selector run over every page it matches.
pub const FIELDS_LIMIT: usize = 100;
/// Most patterns in `follow.allow` and in `follow.deny`, and types in `documents.types`.
pub const PATTERNS_LIMIT: usize = 100;
/// Longest regular expression (a handler's pattern, an allow or deny pattern), in bytes.
pub const PATTERN_LENGTH_LIMIT: usize = 4 * 1024;
/// Largest compiled form of one regular expression: 1 MiB, a tenth of the regex crate's
/// default. URL patterns compile to a few KiB; what passes this is a counted repetition
/// inside another (`(a{1,1000}){1,1000}`), which no URL needs.
pub const REGEX_SIZE_LIMIT: usize = 1024 * 1024;
/// Largest compiled form of one `follow.allow` or `follow.deny` list, matched as one set.
pub const REGEX_SET_SIZE_LIMIT: usize = 4 * REGEX_SIZE_LIMIT;
/// Largest cache of one regular expression's lazy DFA (the regex crate's default is 2 MiB):
/// past it the search carries on, more slowly, instead of using more memory.
pub const REGEX_DFA_SIZE_LIMIT: usize = 1024 * 1024;
/// Longest CSS selector (a field's or `follow.selector`), in bytes: a real one is a few dozen.
pub const SELECTOR_LENGTH_LIMIT: usize = 1024;
/// Deepest CSS selector: compound selectors along one chain, with those inside `:not()`,
/// `:is()` and `:has()` added (`div.product > span.price` is 2). Matching one element walks
/// them all, and `:has()` walks them below every element; hand-written selectors stay
/// under ten.
pub const SELECTOR_DEPTH_LIMIT: usize = 32;

/// Checks a spec whose defaults are filled in and compiles it, or lists every problem.
pub(super) fn compile(spec: &JobSpec) -> Result<CompiledJob, Vec<Issue>> {
    let size = spec.encoded_len();
    if size > SPEC_BYTES_LIMIT {
        let reason = format!(
            "the whole spec must be at most {SPEC_BYTES_LIMIT} bytes encoded, found {size}"
        );
        return Err(vec![Issue::new(FieldPath::default(), reason)]);
    }
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
    if !within_count(seeds.len(), SEEDS_LIMIT, "seeds", &path, issues) {
        return;
    }
    for (index, seed) in seeds.iter().enumerate() {
        if seed.len() > SEED_LENGTH_LIMIT {
            let reason = format!("must be at most {SEED_LENGTH_LIMIT} bytes long");
            issues.push(Issue::new(path.index(index), reason));
            continue;
        }
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
    // Unless given, the list is the seeds' hosts: say so, as the author may not have written it.
    let what = "hosts (when not given, allowed_hosts lists the seeds' hosts)";
    if !within_count(hosts.len(), ALLOWED_HOSTS_LIMIT, what, &path, issues) {
        return AllowedHosts::default();
    }
    let mut entries = Vec::with_capacity(hosts.len());
    for (index, host) in hosts.iter().enumerate() {
        if host.len() > HOST_LENGTH_LIMIT {
            let reason = format!("must be at most {HOST_LENGTH_LIMIT} bytes long");
            issues.push(Issue::new(path.index(index), reason));
            continue;
        }
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
    if !within_count(handlers.len(), HANDLERS_LIMIT, "handlers", &path, issues) {
        return Vec::new();
    }
    let mut first_use: HashMap<&str, usize> = HashMap::new();
    let mut compiled = Vec::with_capacity(handlers.len());
    for (index, handler) in handlers.iter().enumerate() {
        let path = path.index(index);
        let name = handler.name.trim();
        if name.is_empty() {
            issues.push(Issue::new(path.key("name"), "a handler needs a name"));
        } else if name.chars().count() > NAME_LENGTH_LIMIT {
            let reason = format!("must be at most {NAME_LENGTH_LIMIT} characters");
            issues.push(Issue::new(path.key("name"), reason));
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
    if !within_count(fields.len(), FIELDS_LIMIT, "fields", path, issues) {
        return Vec::new();
    }
    let mut names: Vec<&String> = fields.keys().collect();
    names.sort();
    let mut compiled = Vec::with_capacity(names.len());
    for name in names {
        let path = path.key(name);
        if name.trim().is_empty() {
            issues.push(Issue::new(path.clone(), "a field needs a name"));
        } else if name.chars().count() > NAME_LENGTH_LIMIT {
            let reason = format!("a field's name must be at most {NAME_LENGTH_LIMIT} characters");
            issues.push(Issue::new(path.clone(), reason));
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
    let written = documents.map(|d| d.types.as_slice()).unwrap_or_default();
    if !within_count(written.len(), PATTERNS_LIMIT, "types", &path, issues) {
        return (types, DocumentTypes::new(&[]));
    }
    for (index, kind) in written.iter().enumerate() {
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
    // Bounded before parsing: the parser recurses into nested pseudo-classes.
    if selector.len() > SELECTOR_LENGTH_LIMIT {
        let reason = format!(
            "must be at most {SELECTOR_LENGTH_LIMIT} bytes long, found {}",
            selector.len()
        );
        issues.push(Issue::new(path.clone(), reason));
        return None;
    }
    let depth = selector_depth(selector);
    if depth > SELECTOR_DEPTH_LIMIT {
        let reason = format!(
            "must be at most {SELECTOR_DEPTH_LIMIT} deep (compound selectors along one chain, \
             with those inside :not(), :is() and :has()), found {depth}"
        );
        issues.push(Issue::new(path.clone(), reason));
        return None;
    }
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
    if pattern.len() > PATTERN_LENGTH_LIMIT {
        let reason = format!(
            "must be at most {PATTERN_LENGTH_LIMIT} bytes long, found {}",
            pattern.len()
        );
        issues.push(Issue::new(path.clone(), reason));
        return None;
    }
    let compiled = RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build();
    match compiled {
        Ok(regex) => Some(regex),
        Err(regex::Error::CompiledTooBig(limit)) => {
            let reason = format!(
                "compiles to more than {limit} bytes, the limit for one pattern: a counted \
                 repetition such as {{1,1000}} copies what it repeats, nested ones multiply, \
                 and a Unicode class such as \\w is large ([a-z0-9_] is not)"
            );
            issues.push(Issue::new(path.clone(), reason));
            None
        }
        Err(error) => {
            let reason = format!("not a valid regular expression: {}", regex_problem(&error));
            issues.push(Issue::new(path.clone(), reason));
            None
        }
    }
}

/// Whether a list of `count` items is within `limit`; if not, an issue at `path` says so.
fn within_count(
    count: usize,
    limit: usize,
    what: &str,
    path: &FieldPath,
    issues: &mut Vec<Issue>,
) -> bool {
    if count > limit {
        issues.push(Issue::new(
            path.clone(),
            format!("at most {limit} {what} are allowed, found {count}"),
        ));
    }
    count <= limit
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
    if !within_count(patterns.len(), PATTERNS_LIMIT, "patterns", path, issues) {
        return None;
    }
    let before = issues.len();
    for (index, pattern) in patterns.iter().enumerate() {
        compile_regex(pattern, &path.index(index), issues);
    }
    if issues.len() > before {
        return None;
    }
    let set = RegexSetBuilder::new(patterns)
        .size_limit(REGEX_SET_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build();
    match set {
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

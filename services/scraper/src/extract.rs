//! Extraction: a job spec's handlers, follow rules and document types compiled once per job
//! into a [`CompiledJob`], which then reads a page's fields, links and documents from a
//! single parse of its HTML.

use std::collections::{HashMap, HashSet};

use owlmesh_dispatcher::canonical::canonicalize_url;
use owlmesh_proto::v1::{
    Document, FieldRule, FieldValue, Handler, JobSpec, StringList, field_value,
};
use regex::{Regex, RegexSet};
use scraper::{ElementRef, Html, Selector};
use url::Url;

use crate::charset;
use crate::error::{Error, Result};

/// Link elements followed when a job names no selector.
pub const DEFAULT_LINK_SELECTOR: &str = "a[href]";
/// Elements whose target may be a document, whatever the follow selector.
const DOCUMENT_SELECTOR: &str = "a[href], area[href], embed[src], iframe[src], object[data]";
/// File types known by both extension and media type; others match by extension only, and
/// a type written as a media type matches by media type only.
const KNOWN_TYPES: [(&str, &str); 14] = [
    ("pdf", "application/pdf"),
    ("doc", "application/msword"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("xls", "application/vnd.ms-excel"),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("ppt", "application/vnd.ms-powerpoint"),
    (
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    ("odt", "application/vnd.oasis.opendocument.text"),
    ("csv", "text/csv"),
    ("zip", "application/zip"),
    ("epub", "application/epub+zip"),
    ("json", "application/json"),
    ("xml", "application/xml"),
    ("rtf", "application/rtf"),
];

/// What one page yields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extraction {
    /// The handler whose pattern matched the URL, if any.
    pub handler: Option<String>,
    /// The handler's fields: its pattern's named captures, then its field rules (which win
    /// on a name clash). A single field with no match is absent; a list field is present,
    /// maybe empty.
    pub fields: HashMap<String, FieldValue>,
    /// Links the follow rules allow: absolute, http(s), in the frontier's canonical form
    /// (no fragment, sorted query), each once, in document order.
    pub links: Vec<String>,
    /// Linked or embedded documents of the wanted types, each once, on any host.
    pub documents: Vec<Document>,
}

/// A job spec, compiled for extraction.
#[derive(Debug)]
pub struct CompiledJob {
    handlers: Vec<CompiledHandler>,
    follow: CompiledFollow,
    documents: DocumentTypes,
    base: Selector,
    document_links: Selector,
}

#[derive(Debug)]
struct CompiledHandler {
    name: String,
    pattern: Regex,
    fields: Vec<(String, CompiledField)>,
}

#[derive(Debug)]
struct CompiledField {
    selector: Selector,
    take: Take,
    many: bool,
}

/// What a field takes from a matching element.
#[derive(Debug, PartialEq, Eq)]
enum Take {
    Text,
    InnerHtml,
    Attribute(String),
}

#[derive(Debug)]
struct CompiledFollow {
    links: Selector,
    allow: Option<RegexSet>,
    deny: RegexSet,
    hosts: Vec<HostRule>,
}

/// An allowed host; without a port any port matches.
#[derive(Debug, PartialEq, Eq)]
struct HostRule {
    host: String,
    port: Option<u16>,
}

#[derive(Debug, Default)]
struct DocumentTypes {
    by_extension: HashMap<String, String>,
    by_media_type: HashMap<String, String>,
}

impl CompiledJob {
    /// Compiles every pattern, selector and rule of `spec`, naming the first that is invalid.
    pub fn compile(spec: &JobSpec) -> Result<Self> {
        let handlers = spec
            .handlers
            .iter()
            .map(CompiledHandler::compile)
            .collect::<Result<_>>()?;
        Ok(Self {
            handlers,
            follow: CompiledFollow::compile(spec)?,
            documents: DocumentTypes::new(
                spec.documents
                    .as_ref()
                    .map_or(&[][..], |rules| &rules.types),
            ),
            base: parse_selector("base[href]", "the document base")?,
            document_links: parse_selector(DOCUMENT_SELECTOR, "document links")?,
        })
    }

    /// The name of the handler whose pattern matches `url`'s path and query.
    pub fn handler_for(&self, url: &Url) -> Option<&str> {
        let target = path_and_query(url);
        self.handlers
            .iter()
            .find(|handler| handler.pattern.is_match(&target))
            .map(|handler| handler.name.as_str())
    }

    /// Whether the follow rules allow `url`: an allowed host, an allow pattern (when there
    /// are any) and no deny pattern.
    pub fn allows(&self, url: &Url) -> bool {
        self.follow.allows(url)
    }

    /// Whether `url` is on an allowed host.
    pub fn allows_host(&self, url: &Url) -> bool {
        self.follow.allows_host(url)
    }

    /// The wanted document type `url` has by its extension, e.g. `pdf`.
    pub fn document_type_of_url(&self, url: &Url) -> Option<&str> {
        self.documents.of_url(url)
    }

    /// The wanted document type a Content-Type value stands for, e.g. `pdf` for
    /// `application/pdf; name=x.pdf`.
    pub fn document_type_of_content_type(&self, content_type: &str) -> Option<&str> {
        self.documents.of_content_type(content_type)
    }

    /// Decodes `body` by its charset (lossily) and extracts from it.
    pub fn extract_bytes(
        &self,
        page_url: &Url,
        body: &[u8],
        content_type: Option<&str>,
    ) -> Extraction {
        self.extract(page_url, &charset::decode(body, content_type))
    }

    /// Parses `html` once and reads the matching handler's fields, the allowed links and the
    /// documents from it.
    pub fn extract(&self, page_url: &Url, html: &str) -> Extraction {
        let document = Html::parse_document(html);
        let base = self.base_url(&document, page_url);
        let mut extraction = Extraction {
            links: self.links(&document, &base),
            documents: self.documents(&document, &base, page_url),
            ..Extraction::default()
        };
        let target = path_and_query(page_url);
        let matched = self.handlers.iter().find_map(|handler| {
            handler
                .pattern
                .captures(&target)
                .map(|captures| (handler, captures))
        });
        if let Some((handler, captures)) = matched {
            extraction.handler = Some(handler.name.clone());
            extraction.fields = handler.fields(&document, &captures, &base);
        }
        extraction
    }

    /// The URL relative links resolve against: the page's `<base href>`, if valid.
    fn base_url(&self, document: &Html, page_url: &Url) -> Url {
        document
            .select(&self.base)
            .next()
            .and_then(|base| base.attr("href"))
            .and_then(|href| page_url.join(href.trim()).ok())
            .filter(is_web_url)
            .unwrap_or_else(|| page_url.clone())
    }

    fn links(&self, document: &Html, base: &Url) -> Vec<String> {
        let mut seen = HashSet::new();
        document
            .select(&self.follow.links)
            .filter_map(|element| element.attr("href"))
            // `#section` points into this very page: nothing to fetch.
            .filter(|href| !href.trim_start().starts_with('#'))
            .filter_map(|href| resolve(base, href))
            .filter(|url| self.follow.allows(url))
            // The frontier's spelling: the dispatcher recognises links it holds by their text.
            .filter_map(|url| canonicalize_url(url).ok())
            .map(String::from)
            .filter(|url| seen.insert(url.clone()))
            .collect()
    }

    fn documents(&self, document: &Html, base: &Url, page_url: &Url) -> Vec<Document> {
        if self.documents.is_empty() {
            return Vec::new();
        }
        let mut seen = HashSet::new();
        let mut found = Vec::new();
        for element in document.select(&self.document_links) {
            let Some(url) = element_target(element).and_then(|target| resolve(base, target)) else {
                continue;
            };
            if let Some(kind) = self.documents.of_url(&url)
                && seen.insert(url.to_string())
            {
                found.push(Document {
                    url: url.into(),
                    r#type: kind.to_owned(),
                    found_on: page_url.to_string(),
                });
            }
        }
        found
    }
}

impl CompiledHandler {
    fn compile(handler: &Handler) -> Result<Self> {
        let pattern = Regex::new(&handler.pattern).map_err(|error| Error::InvalidPattern {
            handler: handler.name.clone(),
            pattern: handler.pattern.clone(),
            reason: error.to_string(),
        })?;
        let mut fields: Vec<(String, CompiledField)> = handler
            .fields
            .iter()
            .map(|(name, rule)| {
                let context = format!("field {name} of handler {}", handler.name);
                Ok((name.clone(), CompiledField::compile(rule, &context)?))
            })
            .collect::<Result<_>>()?;
        // Map order is arbitrary; a fixed order keeps extraction deterministic.
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self {
            name: handler.name.clone(),
            pattern,
            fields,
        })
    }

    fn fields(
        &self,
        document: &Html,
        captures: &regex::Captures<'_>,
        base: &Url,
    ) -> HashMap<String, FieldValue> {
        let mut fields = HashMap::new();
        for name in self.pattern.capture_names().flatten() {
            if let Some(value) = captures.name(name) {
                fields.insert(name.to_owned(), text_value(value.as_str().to_owned()));
            }
        }
        for (name, field) in &self.fields {
            if let Some(value) = field.extract(document, base) {
                fields.insert(name.clone(), value);
            }
        }
        fields
    }
}

impl CompiledField {
    fn compile(rule: &FieldRule, context: &str) -> Result<Self> {
        let take = if !rule.attr.trim().is_empty() {
            Take::Attribute(rule.attr.trim().to_ascii_lowercase())
        } else if rule.html {
            Take::InnerHtml
        } else {
            Take::Text
        };
        Ok(Self {
            selector: parse_selector(&rule.selector, context)?,
            take,
            many: rule.many,
        })
    }

    fn extract(&self, document: &Html, base: &Url) -> Option<FieldValue> {
        let mut values = document
            .select(&self.selector)
            .filter_map(|element| self.take(element, base));
        if self.many {
            let values = values.collect();
            Some(FieldValue {
                value: Some(field_value::Value::List(StringList { values })),
            })
        } else {
            values.next().map(text_value)
        }
    }

    fn take(&self, element: ElementRef<'_>, base: &Url) -> Option<String> {
        match &self.take {
            Take::Text => Some(collapse_whitespace(element.text())),
            Take::InnerHtml => Some(element.inner_html().trim().to_owned()),
            Take::Attribute(name) => {
                let value = element.attr(name)?.trim();
                // Link-like attributes are made absolute, as links are.
                let is_link = matches!(name.as_str(), "href" | "src");
                let absolute = is_link.then(|| base.join(value).ok()).flatten();
                Some(absolute.map_or_else(|| value.to_owned(), String::from))
            }
        }
    }
}

impl CompiledFollow {
    fn compile(spec: &JobSpec) -> Result<Self> {
        let rules = spec.follow.clone().unwrap_or_default();
        let selector = match rules.selector.trim() {
            "" => DEFAULT_LINK_SELECTOR,
            selector => selector,
        };
        let allow = match rules.allow.is_empty() {
            true => None,
            false => Some(regex_set(&rules.allow)?),
        };
        Ok(Self {
            links: parse_selector(selector, "the follow rules")?,
            allow,
            deny: regex_set(&rules.deny)?,
            hosts: allowed_hosts(spec)?,
        })
    }

    fn allows(&self, url: &Url) -> bool {
        self.allows_host(url)
            && self
                .allow
                .as_ref()
                .is_none_or(|allow| allow.is_match(url.as_str()))
            && !self.deny.is_match(url.as_str())
    }

    fn allows_host(&self, url: &Url) -> bool {
        if self.hosts.is_empty() {
            return true;
        }
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        self.hosts.iter().any(|rule| {
            rule.host.eq_ignore_ascii_case(host) && rule.port.is_none_or(|wanted| wanted == port)
        })
    }
}

impl DocumentTypes {
    fn new(types: &[String]) -> Self {
        let mut documents = Self::default();
        for written in types {
            let kind = written.trim().trim_start_matches('.').to_ascii_lowercase();
            if kind.is_empty() {
                continue;
            }
            if kind.contains('/') {
                let extension = KNOWN_TYPES.iter().find(|(_, media)| *media == kind);
                if let Some((extension, _)) = extension {
                    documents
                        .by_extension
                        .insert((*extension).to_owned(), kind.clone());
                }
                documents.by_media_type.insert(kind.clone(), kind);
                continue;
            }
            if let Some((_, media)) = KNOWN_TYPES.iter().find(|(extension, _)| *extension == kind) {
                documents
                    .by_media_type
                    .insert((*media).to_owned(), kind.clone());
            }
            documents.by_extension.insert(kind.clone(), kind);
        }
        documents
    }

    fn is_empty(&self) -> bool {
        self.by_extension.is_empty() && self.by_media_type.is_empty()
    }

    fn of_url(&self, url: &Url) -> Option<&str> {
        let name = url.path_segments()?.next_back()?;
        let (_, extension) = name.rsplit_once('.')?;
        self.by_extension
            .get(&extension.to_ascii_lowercase())
            .map(String::as_str)
    }

    fn of_content_type(&self, content_type: &str) -> Option<&str> {
        let media = crate::fetch::media_type(content_type);
        self.by_media_type.get(&media).map(String::as_str)
    }
}

fn allowed_hosts(spec: &JobSpec) -> Result<Vec<HostRule>> {
    if !spec.allowed_hosts.is_empty() {
        return spec
            .allowed_hosts
            .iter()
            .map(|host| host_rule(host))
            .collect();
    }
    spec.seeds
        .iter()
        .map(|seed| {
            let invalid = |reason: &str| Error::InvalidSeed {
                url: seed.clone(),
                reason: reason.to_owned(),
            };
            let url = Url::parse(seed.trim()).map_err(|error| invalid(&error.to_string()))?;
            match (url.host_str(), url.port_or_known_default()) {
                (Some(host), Some(port)) if is_web_url(&url) => Ok(HostRule {
                    host: host.to_ascii_lowercase(),
                    port: Some(port),
                }),
                _ => Err(invalid("not an http(s) url with a host")),
            }
        })
        .collect()
}

/// Reads `host` or `host:port` (IPv6 in brackets).
fn host_rule(written: &str) -> Result<HostRule> {
    let invalid = || Error::InvalidHost {
        host: written.to_owned(),
    };
    let trimmed = written.trim();
    let url = Url::parse(&format!("http://{trimmed}/")).map_err(|_| invalid())?;
    let host = url
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or_else(invalid)?;
    if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
        return Err(invalid());
    }
    // The url crate drops a port that is the scheme's default, so read it as written.
    let port = trimmed
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse::<u16>().ok());
    Ok(HostRule {
        host: host.to_ascii_lowercase(),
        port,
    })
}

fn regex_set(patterns: &[String]) -> Result<RegexSet> {
    for pattern in patterns {
        Regex::new(pattern).map_err(|error| Error::InvalidFollowRule {
            pattern: pattern.clone(),
            reason: error.to_string(),
        })?;
    }
    RegexSet::new(patterns).map_err(|error| Error::InvalidFollowRule {
        pattern: patterns.join(" | "),
        reason: error.to_string(),
    })
}

fn parse_selector(selector: &str, context: &str) -> Result<Selector> {
    Selector::parse(selector).map_err(|error| Error::InvalidSelector {
        context: context.to_owned(),
        selector: selector.to_owned(),
        reason: error.to_string(),
    })
}

/// The URL an element points at: `href`, `src` or `data`.
fn element_target(element: ElementRef<'_>) -> Option<&str> {
    element
        .attr("href")
        .or_else(|| element.attr("src"))
        .or_else(|| element.attr("data"))
}

/// Resolves a link against `base`: absolute, http(s) only, fragment dropped.
fn resolve(base: &Url, href: &str) -> Option<Url> {
    let mut url = base.join(href.trim()).ok()?;
    if !is_web_url(&url) {
        return None;
    }
    url.set_fragment(None);
    Some(url)
}

fn is_web_url(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https") && url.host_str().is_some()
}

/// The part of a URL handler patterns match: path, and `?query` when there is one.
fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Joins text nodes as they read (`<span>$</span>12` is `$12`), then trims and collapses
/// every run of whitespace to one space.
fn collapse_whitespace<'a>(pieces: impl Iterator<Item = &'a str>) -> String {
    let mut text = String::new();
    let mut space_pending = false;
    for character in pieces.flat_map(str::chars) {
        if character.is_whitespace() {
            space_pending = !text.is_empty();
        } else {
            if space_pending {
                text.push(' ');
                space_pending = false;
            }
            text.push(character);
        }
    }
    text
}

fn text_value(text: String) -> FieldValue {
    FieldValue {
        value: Some(field_value::Value::Text(text)),
    }
}

#[cfg(test)]
mod tests;

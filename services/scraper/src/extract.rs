//! Extraction: a compiled job's handlers, follow rules and document types applied to a page,
//! reading its fields, links and documents from a single parse of its HTML. What the rules
//! are is the job crate's to say; this module only applies them.
//!
//! A page and a job's selectors may be slow to match together (a large page, `:has()`), so
//! [`extract_within`] keeps to a deadline: every selector walks the page element by element
//! and stops once the time is over, and the page fails with [`OverBudget`].

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use html5ever::driver::{self, ParseOpts};
use html5ever::tendril::{StrTendril, TendrilSink};
use owlmesh_job::{
    CompiledField, CompiledHandler, CompiledJob, MAX_LINKS_PER_PAGE, canonicalize_url, is_web_url,
};
use owlmesh_proto::v1::{Document, FieldValue, StringList, field_value};
use scraper::{ElementRef, Html, HtmlTreeSink, Selector};
use url::Url;

use crate::charset;

/// Elements whose target may be a document, whatever the follow selector.
static DOCUMENT_LINKS: LazyLock<Selector> = LazyLock::new(|| {
    Selector::parse("a[href], area[href], embed[src], iframe[src], object[data]")
        .expect("a valid selector")
});
/// The element that sets the URL relative links resolve against.
static BASE: LazyLock<Selector> =
    LazyLock::new(|| Selector::parse("base[href]").expect("a valid selector"));

/// How long extracting one page may take, parse included, before it fails: ordinary pages
/// take a millisecond or two and a 5 MiB one a fraction of a second, so only a pathological
/// page and selector pair reaches it. It bounds how long one page holds a core.
pub const EXTRACTION_BUDGET: Duration = Duration::from_secs(5);
/// Elements matched between two looks at the clock: reading it costs about as much as
/// matching one simple selector.
const ELEMENTS_PER_CLOCK_CHECK: u32 = 32;

/// Extraction ran past its time budget; nothing it found is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("extraction exceeded its time budget of {}ms", .budget.as_millis())]
pub struct OverBudget {
    /// The budget it had.
    pub budget: Duration,
}

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

/// Decodes `body` by its charset (lossily) and extracts from it, without a time budget.
pub fn extract_bytes(
    job: &CompiledJob,
    page_url: &Url,
    body: &[u8],
    content_type: Option<&str>,
) -> Extraction {
    extract(job, page_url, &charset::decode(body, content_type))
}

/// Decodes `body` by its charset (lossily) and extracts from it within `budget`, counted
/// from the call. Blocks for up to about the budget: run it off the async runtime.
pub fn extract_within(
    job: &CompiledJob,
    page_url: &Url,
    body: &[u8],
    content_type: Option<&str>,
    budget: Duration,
) -> Result<Extraction, OverBudget> {
    let clock = Clock::new(budget);
    let html = charset::decode(body, content_type);
    let extraction = extract_on(job, page_url, &html, &clock);
    if clock.is_over() {
        return Err(OverBudget { budget });
    }
    Ok(extraction)
}

/// Parses `html` once and reads the matching handler's fields, the links the job follows and
/// the documents it wants from it, without a time budget.
pub fn extract(job: &CompiledJob, page_url: &Url, html: &str) -> Extraction {
    extract_on(job, page_url, html, &Clock::unlimited())
}

/// The deadline of one extraction, looked at every few elements.
#[derive(Debug)]
struct Clock {
    deadline: Option<Instant>,
    /// Elements matched since the clock was last read.
    elements: Cell<u32>,
    over: Cell<bool>,
}

impl Clock {
    fn new(budget: Duration) -> Self {
        Self {
            deadline: Instant::now().checked_add(budget),
            ..Self::unlimited()
        }
    }

    fn unlimited() -> Self {
        Self {
            deadline: None,
            elements: Cell::new(0),
            over: Cell::new(false),
        }
    }

    /// Counts one element; false once the deadline has passed (and from then on).
    fn tick(&self) -> bool {
        if self.over.get() {
            return false;
        }
        let Some(deadline) = self.deadline else {
            return true;
        };
        let elements = self.elements.get() + 1;
        if elements < ELEMENTS_PER_CLOCK_CHECK {
            self.elements.set(elements);
            return true;
        }
        self.elements.set(0);
        let over = Instant::now() >= deadline;
        self.over.set(over);
        !over
    }

    fn is_over(&self) -> bool {
        self.over.get()
            || self
                .deadline
                .is_some_and(|deadline| Instant::now() >= deadline)
    }
}

/// The elements of `document` that match `selector`, in document order, as
/// [`Html::select`] yields them, but ending early once `clock` runs out. (Matching here
/// goes without the selector crate's per-walk cache for `:nth-child()` counts, which
/// `Html::select` keeps to itself: those count siblings afresh.)
fn select<'a>(
    document: &'a Html,
    selector: &'a Selector,
    clock: &'a Clock,
) -> impl Iterator<Item = ElementRef<'a>> + 'a {
    document
        .tree
        .nodes()
        .filter_map(ElementRef::wrap)
        .filter(|element| element.parent().is_some())
        .take_while(|_| clock.tick())
        .filter(|element| selector.matches(element))
}

/// The bytes of HTML parsed between two looks at the clock: a few hundred tags.
const PARSE_CHUNK_BYTES: usize = 4 * 1024;

/// Parses `html` a piece at a time, looking at the clock between pieces, or gives up (`None`)
/// once it has run out. html5ever's tree building costs time in proportion to how deeply
/// elements nest, for every element, so 400 KB of unclosed `<div>`s take half a minute and a
/// 5 MiB page hours: the budget must hold during the parse, not only after it.
fn parse_within(html: &str, clock: &Clock) -> Option<Html> {
    let sink = HtmlTreeSink::new(Html::new_document());
    let mut parser = driver::parse_document(sink, ParseOpts::default());
    let mut rest = html;
    while !rest.is_empty() {
        if clock.is_over() {
            return None;
        }
        let mut end = rest.len().min(PARSE_CHUNK_BYTES);
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        let (chunk, after) = rest.split_at(end);
        parser.process(StrTendril::from_slice(chunk));
        rest = after;
    }
    Some(parser.finish())
}

fn extract_on(job: &CompiledJob, page_url: &Url, html: &str, clock: &Clock) -> Extraction {
    let Some(document) = parse_within(html, clock) else {
        return Extraction::default();
    };
    let base = base_url(&document, page_url, clock);
    let mut extraction = Extraction {
        links: links(job, &document, &base, clock),
        documents: documents(job, &document, &base, page_url, clock),
        ..Extraction::default()
    };
    let target = path_and_query(page_url);
    let matched = job.handlers().iter().find_map(|handler| {
        handler
            .pattern()
            .captures(&target)
            .map(|captures| (handler, captures))
    });
    if let Some((handler, captures)) = matched {
        extraction.handler = Some(handler.name().to_owned());
        extraction.fields = fields(handler, &document, &captures, &base, clock);
    }
    extraction
}

/// The URL relative links resolve against: the page's `<base href>`, if valid.
fn base_url(document: &Html, page_url: &Url, clock: &Clock) -> Url {
    select(document, &BASE, clock)
        .next()
        .and_then(|base| base.attr("href"))
        .and_then(|href| page_url.join(href.trim()).ok())
        .filter(is_web_url)
        .unwrap_or_else(|| page_url.clone())
}

/// The links the job follows, in canonical form: the dispatcher recognises links it holds
/// by their text, and decides by the same [`CompiledJob::allows_link`]. At most
/// [`MAX_LINKS_PER_PAGE`], the first in document order.
fn links(job: &CompiledJob, document: &Html, base: &Url, clock: &Clock) -> Vec<String> {
    let mut seen = HashSet::new();
    select(document, job.follow_selector(), clock)
        .filter_map(|element| element.attr("href"))
        // `#section` points into this very page: nothing to fetch.
        .filter(|href| !href.trim_start().starts_with('#'))
        .filter_map(|href| resolve(base, href))
        .filter_map(|url| canonicalize_url(url).ok())
        .filter(|url| job.allows_link(url))
        .map(String::from)
        .filter(|url| seen.insert(url.clone()))
        .take(MAX_LINKS_PER_PAGE)
        .collect()
}

fn documents(
    job: &CompiledJob,
    document: &Html,
    base: &Url,
    page_url: &Url,
    clock: &Clock,
) -> Vec<Document> {
    let types = job.documents();
    if types.is_empty() {
        return Vec::new();
    }
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    for element in select(document, &DOCUMENT_LINKS, clock) {
        let Some(url) = element_target(element).and_then(|target| resolve(base, target)) else {
            continue;
        };
        if let Some(kind) = types.of_url(&url)
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

/// A handler's fields: its pattern's named captures, then its field rules (which win on a
/// name clash).
fn fields(
    handler: &CompiledHandler,
    document: &Html,
    captures: &regex::Captures<'_>,
    base: &Url,
    clock: &Clock,
) -> HashMap<String, FieldValue> {
    let mut fields = HashMap::new();
    for name in handler.pattern().capture_names().flatten() {
        if let Some(value) = captures.name(name) {
            fields.insert(name.to_owned(), text_value(value.as_str().to_owned()));
        }
    }
    for field in handler.fields() {
        if let Some(value) = extract_field(field, document, base, clock) {
            fields.insert(field.name().to_owned(), value);
        }
    }
    fields
}

fn extract_field(
    field: &CompiledField,
    document: &Html,
    base: &Url,
    clock: &Clock,
) -> Option<FieldValue> {
    let mut values =
        select(document, field.selector(), clock).filter_map(|element| take(field, element, base));
    if field.many() {
        let values = values.collect();
        Some(FieldValue {
            value: Some(field_value::Value::List(StringList { values })),
        })
    } else {
        values.next().map(text_value)
    }
}

/// What a field takes from a matching element: an attribute, the inner HTML or the text.
fn take(field: &CompiledField, element: ElementRef<'_>, base: &Url) -> Option<String> {
    if let Some(name) = field.attr() {
        let value = element.attr(name)?.trim();
        // Link-like attributes are made absolute, as links are.
        let is_link = matches!(name, "href" | "src");
        let absolute = is_link.then(|| base.join(value).ok()).flatten();
        return Some(absolute.map_or_else(|| value.to_owned(), String::from));
    }
    if field.html() {
        return Some(element.inner_html().trim().to_owned());
    }
    Some(collapse_whitespace(element.text()))
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

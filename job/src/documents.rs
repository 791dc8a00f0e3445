//! The document types a job looks for, and how a link or a response is recognised as one.
//!
//! A type is written as a file extension (`pdf`) or a media type (`application/pdf`). The
//! common formats below are known both ways, so `pdf` also matches a response sent as
//! `application/pdf` and `application/pdf` also matches a link ending in `.pdf`; other
//! extensions match by extension only, other media types by media type only.

use std::collections::HashMap;

use url::Url;

/// File types known by both extension and media type.
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

/// The wanted document types, by extension and by media type; each maps to the type as the
/// job wrote it (lowercased), which is what a found document reports.
#[derive(Debug, Clone, Default)]
pub struct DocumentTypes {
    by_extension: HashMap<String, String>,
    by_media_type: HashMap<String, String>,
}

impl DocumentTypes {
    /// The types of a spec whose defaults are filled in (lowercase, no leading dot).
    pub(crate) fn new(types: &[String]) -> Self {
        let mut documents = Self::default();
        for kind in types {
            if kind.contains('/') {
                let known = KNOWN_TYPES.iter().find(|(_, media)| media == kind);
                if let Some((extension, _)) = known {
                    documents
                        .by_extension
                        .insert((*extension).to_owned(), kind.clone());
                }
                documents.by_media_type.insert(kind.clone(), kind.clone());
            } else {
                let known = KNOWN_TYPES.iter().find(|(extension, _)| extension == kind);
                if let Some((_, media)) = known {
                    documents
                        .by_media_type
                        .insert((*media).to_owned(), kind.clone());
                }
                documents.by_extension.insert(kind.clone(), kind.clone());
            }
        }
        documents
    }

    /// Whether the job looks for no documents at all.
    pub fn is_empty(&self) -> bool {
        self.by_extension.is_empty() && self.by_media_type.is_empty()
    }

    /// The wanted type `url` has by the extension of its last path segment.
    pub fn of_url(&self, url: &Url) -> Option<&str> {
        let name = url.path_segments()?.next_back()?;
        let (_, extension) = name.rsplit_once('.')?;
        self.by_extension
            .get(&extension.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The wanted type a Content-Type value stands for, e.g. `pdf` for
    /// `application/pdf; name=x.pdf`.
    pub fn of_content_type(&self, content_type: &str) -> Option<&str> {
        self.by_media_type
            .get(&media_type(content_type))
            .map(String::as_str)
    }
}

/// The media type of a Content-Type value, lowercase, without parameters.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Whether `kind` is a document type as written in a spec: an extension of letters and
/// digits, or a media type `type/subtype` of token characters.
pub(crate) fn is_document_type(kind: &str, length_limit: usize) -> bool {
    let token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    if kind.is_empty() || kind.len() > length_limit {
        return false;
    }
    match kind.split_once('/') {
        Some((kind, subtype)) => token(kind) && token(subtype),
        None => kind.bytes().all(|b| b.is_ascii_alphanumeric()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).expect("test url")
    }

    #[test]
    fn known_types_match_by_extension_and_media_type_whichever_way_they_are_written() {
        let types = DocumentTypes::new(&["pdf".into(), "application/zip".into(), "dat".into()]);
        assert_eq!(types.of_url(&url("http://h/a/B.PDF?x=1")), Some("pdf"));
        assert_eq!(
            types.of_content_type("Application/PDF; name=x"),
            Some("pdf")
        );
        assert_eq!(
            types.of_url(&url("http://h/files.zip")),
            Some("application/zip")
        );
        assert_eq!(
            types.of_content_type("application/zip"),
            Some("application/zip")
        );
        assert_eq!(types.of_url(&url("http://h/x.dat")), Some("dat"));
        assert_eq!(types.of_content_type("application/octet-stream"), None);
        assert_eq!(types.of_url(&url("http://h/pdf")), None);
    }

    #[test]
    fn document_types_are_extensions_or_media_types() {
        for kind in ["pdf", "docx", "application/pdf", "application/epub+zip"] {
            assert!(is_document_type(kind, 128), "{kind}");
        }
        for kind in ["", "p df", "a/", "/b", "a/b/c", "pdf;x", "ex\u{e9}"] {
            assert!(!is_document_type(kind, 128), "{kind:?}");
        }
    }
}

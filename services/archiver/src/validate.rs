//! Validation of requests before they reach the archive: every rejection names the offending
//! field by its path in the request, e.g. `pages[3].url`.

use owlmesh_proto::v1::{ArchiveBatch, Event, PageRecord};

use crate::error::{ArchiverError, Result};

/// Whether `url` is an absolute `http` or `https` URL with a host.
pub(crate) fn is_http_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|url| {
        matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty())
    })
}

/// Rejects an empty `job_id`.
pub(crate) fn require_job_id(field: &str, job_id: &str) -> Result<()> {
    require_text(field, job_id)
}

fn require_text(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(ArchiverError::invalid(field, "must not be empty"));
    }
    Ok(())
}

fn require_http_url(field: impl FnOnce() -> String, url: &str) -> Result<()> {
    if !is_http_url(url) {
        return Err(ArchiverError::invalid(
            field(),
            "must be an absolute http(s) URL",
        ));
    }
    Ok(())
}

fn require_time(field: impl FnOnce() -> String, ms: i64) -> Result<()> {
    if ms < 0 {
        return Err(ArchiverError::invalid(field(), "must not be negative"));
    }
    Ok(())
}

/// Checks every page and event of a batch.
pub(crate) fn validate_batch(batch: &ArchiveBatch) -> Result<()> {
    for (position, page) in batch.pages.iter().enumerate() {
        validate_page(position, page)?;
    }
    for (position, event) in batch.events.iter().enumerate() {
        validate_event(position, event)?;
    }
    Ok(())
}

fn validate_page(position: usize, page: &PageRecord) -> Result<()> {
    let field = |name: &str| format!("pages[{position}].{name}");
    require_text(&field("job_id"), &page.job_id)?;
    require_http_url(|| field("url"), &page.url)?;
    if page.epoch == 0 {
        return Err(ArchiverError::invalid(
            field("epoch"),
            "must be at least 1 (crawl epochs start at 1)",
        ));
    }
    if i64::try_from(page.epoch).is_err() {
        return Err(ArchiverError::invalid(field("epoch"), "must be below 2^63"));
    }
    require_time(|| field("fetched_at_ms"), page.fetched_at_ms)?;
    for (name, value) in &page.fields {
        if value.value.is_none() {
            return Err(ArchiverError::invalid(
                field(&format!("fields.{name}")),
                "must hold a text or a list",
            ));
        }
    }
    for (index, document) in page.documents.iter().enumerate() {
        require_http_url(|| field(&format!("documents[{index}].url")), &document.url)?;
    }
    Ok(())
}

fn validate_event(position: usize, event: &Event) -> Result<()> {
    let field = |name: &str| format!("events[{position}].{name}");
    require_text(&field("id"), &event.id)?;
    require_text(&field("kind"), &event.kind)?;
    require_time(|| field("at_ms"), event.at_ms)
}

/// Checks the time range of an events query: when both bounds are set, `until_ms` must come
/// after `since_ms`.
pub(crate) fn validate_time_range(since_ms: i64, until_ms: i64) -> Result<()> {
    if since_ms != 0 && until_ms != 0 && until_ms <= since_ms {
        return Err(ArchiverError::invalid("until_ms", "must be after since_ms"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use owlmesh_proto::v1::{Document, FieldValue};

    fn page(url: &str) -> PageRecord {
        PageRecord {
            job_id: "job".into(),
            url: url.into(),
            epoch: 1,
            ..PageRecord::default()
        }
    }

    fn rejection(batch: &ArchiveBatch) -> String {
        match validate_batch(batch) {
            Err(error) => error.to_string(),
            Ok(()) => "accepted".into(),
        }
    }

    #[test]
    fn rejections_name_the_field() {
        let mut batch = ArchiveBatch {
            pages: vec![page("https://a.example/"), page("ftp://a.example/x")],
            ..ArchiveBatch::default()
        };
        assert_eq!(
            rejection(&batch),
            "pages[1].url: must be an absolute http(s) URL"
        );
        batch.pages[1] = page("/relative");
        assert_eq!(
            rejection(&batch),
            "pages[1].url: must be an absolute http(s) URL"
        );
        batch.pages[1] = page("http://b.example/");
        batch.pages[1].job_id.clear();
        assert_eq!(rejection(&batch), "pages[1].job_id: must not be empty");
        batch.pages[1].job_id = "job".into();
        batch.pages[1]
            .fields
            .insert("title".into(), FieldValue { value: None });
        assert_eq!(
            rejection(&batch),
            "pages[1].fields.title: must hold a text or a list"
        );
        batch.pages[1].fields.clear();
        batch.pages[1].documents.push(Document::default());
        assert_eq!(
            rejection(&batch),
            "pages[1].documents[0].url: must be an absolute http(s) URL"
        );
        batch.pages[1].documents.clear();
        batch.pages[1].epoch = 0;
        assert_eq!(
            rejection(&batch),
            "pages[1].epoch: must be at least 1 (crawl epochs start at 1)"
        );
        batch.pages[1].epoch = 1;
        batch.events.push(Event::default());
        assert_eq!(rejection(&batch), "events[0].id: must not be empty");
    }

    #[test]
    fn accepts_a_well_formed_batch() {
        let batch = ArchiveBatch {
            pages: vec![page("https://a.example/path?q=1")],
            events: vec![Event {
                id: "e1".into(),
                kind: "outcome".into(),
                ..Event::default()
            }],
            ..ArchiveBatch::default()
        };
        assert_eq!(rejection(&batch), "accepted");
    }
}

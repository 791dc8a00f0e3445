//! The job RPCs' request fields that are not the spec, checked in one place: `SubmitJob`'s
//! request id, `ListJobs`' page size and page token.

use crate::frontier::JobCursor;
use crate::{DispatcherError, Result};

/// The longest `SubmitJobRequest.request_id` accepted (a UUID is 36 characters).
pub const MAX_REQUEST_ID_BYTES: usize = 128;
/// Jobs in a `ListJobs` page when the request does not say.
pub const DEFAULT_JOBS_PAGE_SIZE: usize = 100;
/// The most jobs in one `ListJobs` page; a larger `page_size` reads as this.
pub const MAX_JOBS_PAGE_SIZE: usize = 1000;
/// The longest page token this dispatcher makes: a time, a dot and a job id.
const MAX_PAGE_TOKEN_BYTES: usize = 128;

/// The request id of a `SubmitJob` call: `None` when empty (the call is not idempotent).
pub(crate) fn request_id(text: &str) -> Result<Option<&str>> {
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_REQUEST_ID_BYTES {
        return Err(DispatcherError::InvalidArgument {
            field: "request_id",
            reason: format!("longer than {MAX_REQUEST_ID_BYTES} bytes"),
        });
    }
    if !text.bytes().all(is_id_byte) {
        return Err(DispatcherError::InvalidArgument {
            field: "request_id",
            reason: format!("expected letters, digits, '-', '_', '.' or ':', got {text:?}"),
        });
    }
    Ok(Some(text))
}

fn is_id_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b':')
}

/// Jobs per page for a requested `page_size`: the default for 0, at most the maximum.
pub(crate) fn page_size(requested: u32) -> usize {
    match usize::try_from(requested) {
        Ok(0) => DEFAULT_JOBS_PAGE_SIZE,
        Ok(size) => size.min(MAX_JOBS_PAGE_SIZE),
        Err(_) => MAX_JOBS_PAGE_SIZE,
    }
}

/// The token that lets the next page start after `cursor`: `<created_at_ms>.<job id>`.
/// Clients treat it as opaque.
pub(crate) fn page_token(cursor: &JobCursor) -> String {
    format!("{}.{}", cursor.created_at_ms, cursor.id)
}

/// Where the page of `token` starts; `None` (the first page) for an empty token.
pub(crate) fn page_cursor(token: &str) -> Result<Option<JobCursor>> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || DispatcherError::InvalidArgument {
        field: "page_token",
        reason: "not a token this service gave: pass a previous answer's next_page_token, \
                 or nothing for the first page"
            .into(),
    };
    if token.len() > MAX_PAGE_TOKEN_BYTES {
        return Err(invalid());
    }
    let (created_at, id) = token.split_once('.').ok_or_else(invalid)?;
    let created_at_ms = created_at.parse::<i64>().map_err(|_| invalid())?;
    if id.is_empty() || !id.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
        return Err(invalid());
    }
    Ok(Some(JobCursor {
        created_at_ms,
        id: id.to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_request_id_is_short_and_plain() {
        assert_eq!(request_id("").unwrap(), None);
        let uuid = "6f1c1b0e-3d2a-4c55-9a57-0c1f9b8f2f3e";
        assert_eq!(request_id(uuid).unwrap(), Some(uuid));
        let long = "a".repeat(MAX_REQUEST_ID_BYTES + 1);
        let refused = request_id(&long).unwrap_err().to_string();
        assert_eq!(refused, "request_id: longer than 128 bytes");
        let refused = request_id("retry\n1").unwrap_err().to_string();
        assert!(
            refused.starts_with("request_id: expected letters"),
            "{refused}"
        );
    }

    #[test]
    fn page_sizes_default_and_stay_bounded() {
        assert_eq!(page_size(0), DEFAULT_JOBS_PAGE_SIZE);
        assert_eq!(page_size(7), 7);
        assert_eq!(page_size(u32::MAX), MAX_JOBS_PAGE_SIZE);
    }

    #[test]
    fn a_page_token_not_made_here_is_refused_naming_the_field() {
        for token in ["nonsense", "12.", ".abc", "x.abc", "12.a b", "12.a'--"] {
            let refused = page_cursor(token).unwrap_err().to_string();
            assert!(refused.starts_with("page_token: "), "{token}: {refused}");
        }
        assert_eq!(page_cursor("").unwrap(), None);
    }

    proptest! {
        #[test]
        fn a_page_token_reads_back_as_its_cursor(
            created_at_ms in any::<i64>(),
            id in "[0-9a-z]{1,12}",
        ) {
            let cursor = JobCursor { created_at_ms, id };
            prop_assert_eq!(page_cursor(&page_token(&cursor)).unwrap(), Some(cursor));
        }
    }
}

//! Reading bodies within the cap: kept (HTML, or a prefix), counted and discarded, or
//! drained so that the connection can be reused.

use reqwest::Response;

use super::outcome::{FetchError, classify};

/// How much of a redirect or error body is read so that its connection can be reused.
const DRAIN_BYTES: u64 = 64 * 1024;

/// A body as read: the bytes kept (if any), how many there were, whether it was cut.
pub(super) struct BodyRead {
    pub(super) kept: Option<Vec<u8>>,
    pub(super) bytes: u64,
    pub(super) truncated: bool,
}

/// Reads the body up to `limit` bytes. Past the limit: cut it when `truncate`, else fail
/// with [`FetchError::TooLarge`] without reading further.
pub(super) async fn read_body(
    response: &mut Response,
    limit: u64,
    truncate: bool,
) -> std::result::Result<BodyRead, FetchError> {
    if !truncate
        && response
            .content_length()
            .is_some_and(|length| length > limit)
    {
        return Err(FetchError::TooLarge { limit });
    }
    let capacity = response.content_length().unwrap_or(0).min(limit);
    let mut body = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(|error| classify(&error))? {
        let room = usize::try_from(limit).unwrap_or(usize::MAX) - body.len();
        if chunk.len() > room {
            if !truncate {
                return Err(FetchError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk[..room]);
            let bytes = body.len() as u64;
            return Ok(BodyRead {
                kept: Some(body),
                bytes,
                truncated: true,
            });
        }
        body.extend_from_slice(&chunk);
    }
    let bytes = body.len() as u64;
    Ok(BodyRead {
        kept: Some(body),
        bytes,
        truncated: false,
    })
}

/// Counts a body that is not kept. A declared length above `limit` is trusted rather than
/// read; otherwise the body is read and discarded (so the connection can be reused), up to
/// `limit` bytes.
pub(super) async fn count_body(
    response: &mut Response,
    limit: u64,
) -> std::result::Result<BodyRead, FetchError> {
    if let Some(length) = response.content_length().filter(|length| *length > limit) {
        return Ok(BodyRead {
            kept: None,
            bytes: length,
            truncated: false,
        });
    }
    let mut bytes = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(|error| classify(&error))? {
        bytes += chunk.len() as u64;
        if bytes > limit {
            break;
        }
    }
    Ok(BodyRead {
        kept: None,
        bytes,
        truncated: false,
    })
}

/// Reads a little of a body nobody needs, so that a small one leaves its connection
/// reusable; a large one is dropped with its connection.
pub(super) async fn drain(mut response: Response) {
    let mut read = 0u64;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len() as u64;
        if read > DRAIN_BYTES {
            return;
        }
    }
}

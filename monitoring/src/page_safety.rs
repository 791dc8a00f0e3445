//! What keeps the page safe in a browser: a `Host` check, so that a web page elsewhere cannot
//! reach the dashboard through a name it re-points at this machine (DNS rebinding); headers
//! that forbid the page anything beyond its own script, style and data; and a cap on open
//! event streams.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Event streams open at once at most; each holds a task and is sent every update.
pub const MAX_EVENT_STREAMS: u64 = 64;

/// The page loads only its own script, style and data, and no other site may frame it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Names the dashboard answers to besides IP addresses and `localhost`.
pub(crate) type AllowedHosts = Arc<[String]>;

/// Answers 403 to a request whose `Host` is a name the dashboard was not told about.
pub(crate) async fn check_host(
    State(allowed): State<AllowedHosts>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if host_allowed(host, &allowed) {
        return next.run(request).await;
    }
    let name = host_name(host);
    let body = format!(
        "403: this dashboard is not {name:?}. Open it by its address or as localhost, or \
         start it with --allow-host {name}.\n"
    );
    (StatusCode::FORBIDDEN, body).into_response()
}

/// Adds the security headers to every answer.
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Whether `host` (a `Host` header: a name or address, maybe with a port) may be answered:
/// an IP address or `localhost` always (a rebinding attack needs a name of its own), a
/// name only when allowed.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = host_name(host);
    name.parse::<std::net::IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(name))
}

/// The name or address of a `Host` header, without port or IPv6 brackets.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_localhost_pass_and_names_only_when_allowed() {
        let allowed = ["dash.internal".to_owned()];
        for host in [
            "127.0.0.1:7780",
            "[::1]:7780",
            "localhost:7780",
            "LOCALHOST",
            "10.0.0.5",
            "dash.internal:7780",
        ] {
            assert!(host_allowed(host, &allowed), "{host}");
        }
        for host in [
            "evil.example:7780",
            "evil.example",
            "",
            "127.0.0.1.evil.example",
        ] {
            assert!(!host_allowed(host, &allowed), "{host}");
        }
    }
}

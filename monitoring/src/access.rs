//! Who may see the dashboard: callers with a token of the `reader` role, as for the mesh's
//! reading RPCs. A browser brings it once in the address (`/?token=TOKEN`, the link
//! `owlmesh up` prints), which sets a cookie and leads to the same page without it; scripts
//! and Prometheus send `Authorization: Bearer TOKEN`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use owlmesh_mesh::auth::{Role, TokenSet};

/// The cookie a browser keeps the token in.
const COOKIE: &str = "owlmesh_token";

/// The tokens the dashboard accepts; `None` lets everyone in (`--insecure-no-auth`).
pub(crate) type Trusted = Option<Arc<TokenSet>>;

/// Lets a request through with a reader's token, or answers 401 and says how to bring one.
pub(crate) async fn require_reader(
    State(trusted): State<Trusted>,
    request: Request,
    next: Next,
) -> Response {
    let Some(trusted) = trusted else {
        return next.run(request).await;
    };
    if let Some(token) = query_token(request.uri()) {
        return match is_reader(&trusted, &token) {
            true => keep_in_cookie(request.uri(), &token),
            false => refusal("the token in the address is not a reader's token of this mesh"),
        };
    }
    match presented(request.headers()) {
        Some(token) if is_reader(&trusted, &token) => next.run(request).await,
        Some(_) => refusal("the token is not a reader's token of this mesh"),
        None => refusal("the dashboard needs a reader's token"),
    }
}

fn is_reader(trusted: &TokenSet, token: &str) -> bool {
    trusted
        .roles_of(token)
        .is_some_and(|roles| roles.contains(Role::Reader))
}

/// The token of `Authorization: Bearer …`, else of the cookie.
fn presented(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if let Some(token) = bearer {
        return Some(token.trim().to_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .map(str::to_owned)
}

fn query_token(uri: &Uri) -> Option<String> {
    uri.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .map(str::to_owned)
}

/// 303 to the same path without the token, with the token kept in an HTTP-only cookie that
/// goes to this dashboard only.
fn keep_in_cookie(uri: &Uri, token: &str) -> Response {
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
    let Ok(cookie) = HeaderValue::from_str(&cookie) else {
        return refusal("the token in the address is not a reader's token of this mesh");
    };
    let location = HeaderValue::from_str(uri.path()).unwrap_or(HeaderValue::from_static("/"));
    let mut response = StatusCode::SEE_OTHER.into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response.headers_mut().insert(header::LOCATION, location);
    response
}

fn refusal(reason: &str) -> Response {
    let body = format!(
        "401: {reason}. Open this address with ?token=TOKEN once (owlmesh up prints that \
         link; the token is the first line of its data folder's token file), or send \
         Authorization: Bearer TOKEN.\n"
    );
    let mut response = (StatusCode::UNAUTHORIZED, body).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"owlmesh\""),
    );
    response
}

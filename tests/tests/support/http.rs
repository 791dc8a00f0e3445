//! HTTP GETs to a local server's pages and JSON, through reqwest (the client the scrapers
//! fetch with), with a deadline per request, sending `Authorization: Bearer` with the tests'
//! token unless told not to.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Duration;

use anyhow::{Context, bail};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One client for every request of a test binary. reqwest is built without a TLS provider
/// of its own, so the process gets ring's, as the scraper's does.
static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .no_proxy()
        .build()
        .expect("an HTTP client")
});

/// An answer: status code, `Content-Type`, and the body as text.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
    /// The `Content-Security-Policy` header, when sent.
    pub content_security_policy: Option<String>,
}

/// `GET path` from `address`, with the tests' token.
pub async fn get(address: SocketAddr, path: &str) -> anyhow::Result<Answer> {
    let tokens = owlmesh_mesh::auth::TokenSet::read(super::support::test_token_file())?;
    get_with(address, path, Some(tokens.own().expose())).await
}

/// `GET path` from `address` with `token` as its bearer token, or with none.
pub async fn get_with(
    address: SocketAddr,
    path: &str,
    token: Option<&str>,
) -> anyhow::Result<Answer> {
    get_as(address, path, token, None).await
}

/// `GET path` from `address`, with `token` (if any) and a `Host` header other than the
/// address (if any), as a browser sends when it reaches the server through a name.
pub async fn get_as(
    address: SocketAddr,
    path: &str,
    token: Option<&str>,
    host: Option<&str>,
) -> anyhow::Result<Answer> {
    let mut request = CLIENT.get(format!("http://{address}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(host) = host {
        request = request.header(reqwest::header::HOST, host);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("GET {path}"))?;
    let status = response.status().as_u16();
    let content_security_policy = response
        .headers()
        .get(reqwest::header::CONTENT_SECURITY_POLICY)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response
        .text()
        .await
        .with_context(|| format!("GET {path}: body"))?;
    Ok(Answer {
        status,
        content_type,
        body,
        content_security_policy,
    })
}

/// `GET path`, which must answer 200; returns the body.
pub async fn get_ok(address: SocketAddr, path: &str) -> anyhow::Result<String> {
    let answer = get(address, path).await?;
    if answer.status != 200 {
        bail!("GET {path}: {} {}", answer.status, answer.body);
    }
    Ok(answer.body)
}

/// `GET path` as JSON.
pub async fn get_json(address: SocketAddr, path: &str) -> anyhow::Result<serde_json::Value> {
    let body = get_ok(address, path).await?;
    serde_json::from_str(&body).with_context(|| format!("GET {path}: not JSON"))
}

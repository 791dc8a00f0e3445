//! A minimal HTTP/1.1 GET over a plain TCP connection, enough to read a local server's
//! pages and JSON without an HTTP client crate.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An answer: status code, `Content-Type`, and the body as text.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// `GET path` from `address`.
pub async fn get(address: SocketAddr, path: &str) -> anyhow::Result<Answer> {
    tokio::time::timeout(REQUEST_TIMEOUT, exchange(address, path))
        .await
        .with_context(|| format!("GET {path}: no answer in time"))?
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

async fn exchange(address: SocketAddr, path: &str) -> anyhow::Result<Answer> {
    let mut stream = TcpStream::connect(address).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> anyhow::Result<Answer> {
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = std::str::from_utf8(&raw[..split])?;
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().context("no status line")?;
    let status = status_line
        .split(' ')
        .nth(1)
        .context("no status code")?
        .parse()?;
    let mut content_type = String::new();
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-type" => content_type = value.to_owned(),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            _ => {}
        }
    }
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok(Answer {
        status,
        content_type,
        body: String::from_utf8(body)?,
    })
}

/// The body of a chunked transfer: each chunk is its size in hex, CRLF, the bytes, CRLF.
fn dechunk(mut raw: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let end = raw
            .windows(2)
            .position(|window| window == b"\r\n")
            .context("chunk size line")?;
        let size_text = std::str::from_utf8(&raw[..end])?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)?;
        raw = &raw[end + 2..];
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(raw.get(..size).context("truncated chunk")?);
        raw = raw.get(size + 2..).context("truncated chunk end")?;
    }
}

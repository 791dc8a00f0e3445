//! The demo shop over HTTP: one small axum server per host, inside the `owlmesh up`
//! process, counting what it serves so the demo can show that robots.txt was obeyed.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::catalogue::Catalogue;
use super::pages::respond;

/// The running demo shop.
pub(crate) struct DemoSite {
    catalogue: Arc<Catalogue>,
    counters: Arc<Counters>,
}

/// What the shop has served so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SiteStats {
    /// Every request, robots.txt included.
    pub(crate) requests: u64,
    /// Requests under `/private/`, which robots.txt forbids.
    pub(crate) private: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    private: AtomicU64,
}

#[derive(Clone)]
struct HostState {
    host: usize,
    catalogue: Arc<Catalogue>,
    counters: Arc<Counters>,
}

impl DemoSite {
    /// Binds the shop's hosts and serves a catalogue of `products` products on them until
    /// `shutdown` is cancelled.
    pub(crate) async fn start(
        products: usize,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let listeners = bind_hosts().await?;
        let bases = listeners
            .iter()
            .map(|listener| Ok(format!("http://{}", listener.local_addr()?)))
            .collect::<io::Result<Vec<_>>>()?;
        let catalogue = Arc::new(Catalogue::new(products, bases));
        let counters = Arc::new(Counters::default());
        for (host, listener) in listeners.into_iter().enumerate() {
            let state = HostState {
                host,
                catalogue: Arc::clone(&catalogue),
                counters: Arc::clone(&counters),
            };
            let app = Router::new().fallback(serve_page).with_state(state);
            let stopped = shutdown.clone().cancelled_owned();
            tokio::spawn(async move {
                let served = axum::serve(listener, app).with_graceful_shutdown(stopped);
                if let Err(error) = served.await {
                    warn!(%error, "the demo site stopped");
                }
            });
        }
        Ok(Self {
            catalogue,
            counters,
        })
    }

    /// What the shop holds.
    pub(crate) fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// What the shop has served so far.
    pub(crate) fn stats(&self) -> SiteStats {
        SiteStats {
            requests: self.counters.requests.load(Ordering::Relaxed),
            private: self.counters.private.load(Ordering::Relaxed),
        }
    }
}

/// Two hosts, so the crawl spreads over two scrapers as on the web: 127.0.0.2 and 127.0.0.3
/// where the system routes them (Linux does), else two ports of 127.0.0.1.
async fn bind_hosts() -> anyhow::Result<Vec<TcpListener>> {
    let mut distinct = Vec::new();
    for address in ["127.0.0.2:0", "127.0.0.3:0"] {
        match TcpListener::bind(address).await {
            Ok(listener) => distinct.push(listener),
            Err(_) => break,
        }
    }
    if distinct.len() == 2 {
        return Ok(distinct);
    }
    let mut listeners = Vec::new();
    for _ in 0..2 {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot listen on 127.0.0.1 for the demo site")?;
        listeners.push(listener);
    }
    Ok(listeners)
}

async fn serve_page(State(state): State<HostState>, uri: Uri) -> Response {
    state.counters.requests.fetch_add(1, Ordering::Relaxed);
    if uri.path().starts_with("/private/") {
        state.counters.private.fetch_add(1, Ordering::Relaxed);
    }
    let reply = respond(&state.catalogue, state.host, uri.path());
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, reply.content_type)],
        reply.body,
    )
        .into_response()
}

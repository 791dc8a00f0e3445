//! The owlmesh scraper: fetches politely and extracts structured data.
//!
//! The library pieces, one concept each:
//! - [`fetch`]: HTTP fetching with timeouts, a body cap, recorded redirects and classified
//!   failures;
//! - `charset`: decoding fetched bytes into text;
//! - `robots`: robots.txt, fetched once per origin and cached;
//! - `politeness`: per-host spacing and concurrency;
//! - [`extract`](mod@extract): a compiled job (from the job crate, as the dispatcher compiles it)
//!   applied to each page: fields, links and documents from one parse.
//!
//! The running service, a [`ScraperNode`] (run by [`serve`], in the shape every service
//! has: a config, an error, a node that starts and shuts down), puts them to work: it joins
//! the mesh, holds a work session with the primary dispatcher (assignments in, outcomes
//! out), archives each page before reporting it done, answers `Scraper.Try` and
//! `Telemetry.GetStats`, and drains in order at shutdown.

mod charset;
mod config;
mod error;
pub mod extract;
pub mod fetch;
mod inbox;
mod jobs;
mod node;
mod outcome_queue;
mod page;
mod politeness;
mod robots;
mod session;
mod telemetry;
mod trace;
mod try_page;
mod worker;

pub use config::{
    DEFAULT_DRAIN_TIMEOUT, DEFAULT_FLUSH_TIMEOUT, DEFAULT_ID, DEFAULT_OUTBOX_CAPACITY,
    DEFAULT_OUTCOME_BATCH, DEFAULT_OUTCOME_LINGER, DEFAULT_SLOTS, MAX_SLOTS, ScraperConfig,
};
pub use error::{Result, ScraperError};
pub use extract::{Extraction, extract, extract_bytes};
pub use fetch::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_READ_TIMEOUT, DEFAULT_REQUEST_TIMEOUT,
    FetchConfig, FetchError, FetchFailure, FetchOptions, FetchResult, Fetched, Fetcher,
};
pub use node::ScraperNode;
pub use outcome_queue::{
    DEAD_LETTER_AFTER_REFUSALS, MAX_OUTCOME_BATCH_BYTES, OUTCOME_REFUSED, OUTCOME_TOO_LARGE,
};
pub use page::{DEFAULT_RATE_LIMIT_BACK_OFF, MAX_BACK_OFF};
pub use politeness::{HostGate, HostGates, HostPermit, HostPolicy, HostTiming, JobPoliteness};
pub use robots::{RobotsCache, RobotsConfig, RobotsVerdict};
pub use try_page::MAX_CONCURRENT_TRIES;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Runs a scraper on `listener` until `shutdown` is cancelled: registers as kind `scraper`,
/// works for the primary dispatcher, then drains (bounded by the configured timeouts) and
/// leaves the mesh.
pub async fn serve(
    listener: TcpListener,
    config: ScraperConfig,
    shutdown: CancellationToken,
) -> Result<()> {
    let node = ScraperNode::start(listener, config).await?;
    shutdown.cancelled().await;
    node.shut_down().await
}

#[cfg(test)]
mod tests;

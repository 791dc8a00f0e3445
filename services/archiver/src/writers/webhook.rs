//! The webhook writer: POSTs each new item as a JSON object to a URL. Items wait in a bounded
//! queue drained by a task, so a slow or dead receiver never holds up the write path; when the
//! queue is full, items skip this webhook and are counted as dropped. Connection errors,
//! timeouts, 408, 429 and 5xx answers are retried with exponential backoff.
//!
//! Deliveries pass the egress guard (the archiver's `--allow-network`): a webhook on a
//! loopback or private address must be allowed by the operator. Redirects are not followed,
//! and no proxy is used, so the guard sees the address each item actually goes to.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use owlmesh_egress::{EgressGuard, blocked_cause};
use reqwest::header::CONTENT_TYPE;
use reqwest::{StatusCode, redirect};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::WriterContext;
use crate::error::{ArchiverError, Result};
use crate::{ArchiverStats, Counter, WebhookConfig};

/// Requests in flight per webhook.
const CONCURRENT_REQUESTS: usize = 4;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The HTTP client shared by every webhook.
///
/// reqwest is built without a TLS crypto provider (`rustls-no-provider`); ring's is installed
/// here for `https` webhooks, unless the process already installed one. Plain `http` needs none.
pub(super) fn http_client(timeout: Duration, egress: &EgressGuard) -> Result<reqwest::Client> {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(redirect::Policy::none())
        .no_proxy()
        .dns_resolver(egress.resolver())
        .build()
        .map_err(|error| ArchiverError::Config(format!("webhook http client: {error}")))
}

/// One webhook: its queue and the task that drains it.
#[derive(Debug)]
pub(crate) struct WebhookWriter {
    url: String,
    queue: mpsc::Sender<Vec<u8>>,
    stats: Arc<ArchiverStats>,
    /// Set while items are being dropped, to warn once per episode rather than per item.
    dropping: AtomicBool,
}

impl WebhookWriter {
    /// Starts the delivery task for `url` on the context's tracker.
    pub(crate) fn start(
        url: String,
        config: &WebhookConfig,
        client: reqwest::Client,
        context: &WriterContext,
    ) -> Self {
        let (queue, receiver) = mpsc::channel(config.queue_capacity);
        let delivery = Delivery {
            url: url.clone(),
            client,
            attempts: config.attempts,
            initial_backoff: config.initial_backoff,
            stats: context.stats.clone(),
        };
        context
            .tasks
            .spawn(drain(receiver, delivery, context.shutdown.clone()));
        Self {
            url,
            queue,
            stats: context.stats.clone(),
            dropping: AtomicBool::new(false),
        }
    }

    /// Queues one JSON body without waiting; returns false (and counts a drop) when the queue
    /// is full or closed.
    pub(crate) fn enqueue(&self, body: Vec<u8>) -> bool {
        if self.queue.try_send(body).is_ok() {
            self.dropping.store(false, Ordering::Relaxed);
            return true;
        }
        self.stats.add(Counter::WebhookDropped, 1);
        if !self.dropping.swap(true, Ordering::Relaxed) {
            tracing::warn!(url = %self.url, "webhook queue full or closed, dropping items");
        }
        false
    }
}

/// Delivers queued bodies until the queue is closed and empty. At shutdown the queue closes,
/// and what it still holds is delivered.
async fn drain(receiver: mpsc::Receiver<Vec<u8>>, delivery: Delivery, shutdown: CancellationToken) {
    let bodies = futures::stream::unfold(receiver, move |mut receiver| {
        let shutdown = shutdown.clone();
        async move {
            let body = tokio::select! {
                biased;
                body = receiver.recv() => body,
                () = shutdown.cancelled() => {
                    receiver.close();
                    receiver.recv().await
                }
            };
            body.map(|body| (body, receiver))
        }
    });
    bodies
        .for_each_concurrent(CONCURRENT_REQUESTS, |body| delivery.deliver(body))
        .await;
}

/// How one webhook is called.
#[derive(Debug)]
struct Delivery {
    url: String,
    client: reqwest::Client,
    attempts: u32,
    initial_backoff: Duration,
    stats: Arc<ArchiverStats>,
}

/// Why an attempt failed, and whether another may succeed.
enum Failure {
    Transient(String),
    Permanent(String),
}

impl Delivery {
    /// POSTs one body, retrying transient failures; counts the outcome.
    async fn deliver(&self, body: Vec<u8>) {
        let mut reason = String::new();
        for attempt in 1..=self.attempts {
            match self.post(body.clone()).await {
                Ok(()) => {
                    self.stats.add(Counter::WebhookDelivered, 1);
                    return;
                }
                Err(Failure::Permanent(why)) => {
                    reason = why;
                    break;
                }
                Err(Failure::Transient(why)) => reason = why,
            }
            if attempt < self.attempts {
                tokio::time::sleep(backoff(self.initial_backoff, attempt)).await;
            }
        }
        self.stats.add(Counter::WebhookFailed, 1);
        tracing::warn!(url = %self.url, %reason, "webhook delivery failed, item skipped");
    }

    async fn post(&self, body: Vec<u8>) -> Result<(), Failure> {
        let request = self
            .client
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let response = request
            .send()
            .await
            .map_err(|error| match blocked_cause(&error) {
                Some(blocked) => Failure::Permanent(blocked.to_string()),
                None => Failure::Transient(error.to_string()),
            })?;
        let status = response.status();
        match status {
            _ if status.is_success() => Ok(()),
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
                Err(Failure::Transient(format!("status {status}")))
            }
            _ if status.is_server_error() => Err(Failure::Transient(format!("status {status}"))),
            _ => Err(Failure::Permanent(format!("status {status}"))),
        }
    }
}

/// The wait after failed attempt `attempt` (1-based): `initial`, doubled for each further
/// attempt, at most [`MAX_BACKOFF`].
fn backoff(initial: Duration, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    initial.saturating_mul(factor).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        let initial = Duration::from_millis(100);
        assert_eq!(backoff(initial, 1), Duration::from_millis(100));
        assert_eq!(backoff(initial, 3), Duration::from_millis(400));
        assert_eq!(backoff(initial, 40), MAX_BACKOFF);
    }
}

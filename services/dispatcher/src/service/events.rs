//! Dispatcher events: pushed to `WatchEvents` subscribers and sent to the archivers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use owlmesh_mesh::client::ArchiveOutbox;
use owlmesh_mesh::clock::unix_ms;
use owlmesh_proto::v1::Event;
use tokio::sync::broadcast;

/// Events buffered per slow `WatchEvents` subscriber before it misses some.
const SUBSCRIBER_BUFFER: usize = 4096;

/// Where the dispatcher reports what happens.
pub(crate) struct EventHub {
    source: String,
    watchers: broadcast::Sender<Event>,
    archive: ArchiveOutbox,
    sequence: AtomicU64,
    prefix: String,
}

impl EventHub {
    pub(crate) fn new(dispatcher_id: &str, archive: ArchiveOutbox) -> Self {
        Self {
            source: format!("dispatcher/{dispatcher_id}"),
            watchers: broadcast::channel(SUBSCRIBER_BUFFER).0,
            archive,
            sequence: AtomicU64::new(0),
            // Unique per process start, so ids never repeat across restarts.
            prefix: format!("{dispatcher_id}-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// Events waiting in the archive outbox.
    pub(crate) fn outbox_depth(&self) -> usize {
        self.archive.depth()
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.watchers.subscribe()
    }

    /// Records an event: to the watchers and the archive; waits only while the archive
    /// outbox is full.
    pub(crate) async fn emit(
        &self,
        kind: &str,
        job_id: &str,
        url: &str,
        message: String,
        attributes: HashMap<String, String>,
    ) {
        let event = self.event(kind, job_id, url, message, attributes);
        let _ = self.watchers.send(event.clone());
        let _ = self.archive.publish(event).await;
    }

    /// Whether anyone follows the events (`WatchEvents`).
    pub(crate) fn has_watchers(&self) -> bool {
        self.watchers.receiver_count() > 0
    }

    /// Shows an event to the watchers only: for news the archive keeps in another form.
    pub(crate) fn announce(
        &self,
        kind: &str,
        job_id: &str,
        url: &str,
        message: String,
        attributes: HashMap<String, String>,
    ) {
        if !self.has_watchers() {
            return;
        }
        let _ = self
            .watchers
            .send(self.event(kind, job_id, url, message, attributes));
    }

    fn event(
        &self,
        kind: &str,
        job_id: &str,
        url: &str,
        message: String,
        attributes: HashMap<String, String>,
    ) -> Event {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        Event {
            id: format!("{}-{sequence}", self.prefix),
            kind: kind.to_owned(),
            job_id: job_id.to_owned(),
            url: url.to_owned(),
            at_ms: unix_ms(),
            source: self.source.clone(),
            message,
            attributes,
        }
    }
}

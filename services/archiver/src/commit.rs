//! Group commit: every `Archive` stream hands its validated batches to one committer task,
//! which stores whatever has gathered since its last commit in one transaction and feeds the
//! writers once for all of them. Producers batch per archiver shard, but at crawl rates a
//! shard's batch holds a handful of pages; a transaction per batch made the archiver spend
//! its time switching between the runtime and the database thread rather than storing.
//!
//! A failed group is retried batch by batch, so a batch the database refuses fails alone.

use std::sync::Arc;

use owlmesh_proto::v1::{ArchiveBatch, PageRecord};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::error::{ArchiverError, Result};
use crate::store::{ArchiveStore, StoredBatch};
use crate::writers::ResultWriters;
use crate::{ArchiverStats, Counter};

/// Batches waiting for the committer at most; further streams wait for room.
const QUEUE: usize = 64;
/// Pages and events in one transaction at most: beyond this a group only delays its first
/// batch's acknowledgement.
const GROUP_ROWS: usize = 4096;

/// A batch waiting to be committed, and where its result goes.
struct Pending {
    batch: ArchiveBatch,
    reply: oneshot::Sender<Result<Committed>>,
}

/// A committed batch: the batch back, and what storing it did.
#[derive(Debug)]
pub(crate) struct Committed {
    pub(crate) batch: ArchiveBatch,
    pub(crate) stored: StoredBatch,
}

/// The handle the streams commit through.
#[derive(Debug, Clone)]
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Pending>,
}

/// What the committer task works with.
pub(crate) struct Committer {
    pub(crate) store: ArchiveStore,
    pub(crate) writers: Arc<ResultWriters>,
    pub(crate) stats: Arc<ArchiverStats>,
}

impl GroupCommit {
    /// The handle, and the committer task to spawn; the task ends when `shutdown` is cancelled
    /// or every handle is gone.
    pub(crate) fn start(
        committer: Committer,
        shutdown: CancellationToken,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (queue, receiver) = mpsc::channel(QUEUE);
        (Self { queue }, committer.run(receiver, shutdown))
    }

    /// Stores `batch` with whatever else is waiting, writes its new items, and gives it back
    /// with what was stored.
    pub(crate) async fn commit(&self, batch: ArchiveBatch) -> Result<Committed> {
        let (reply, result) = oneshot::channel();
        self.queue
            .send(Pending { batch, reply })
            .await
            .map_err(|_| ArchiverError::ShuttingDown)?;
        result.await.map_err(|_| ArchiverError::ShuttingDown)?
    }
}

impl Committer {
    async fn run(self, mut receiver: mpsc::Receiver<Pending>, shutdown: CancellationToken) {
        let mut group = Vec::new();
        loop {
            let received = tokio::select! {
                received = receiver.recv() => received,
                _ = shutdown.cancelled() => return,
            };
            let Some(first) = received else { return };
            let mut rows = rows_of(&first.batch);
            group.push(first);
            while rows < GROUP_ROWS {
                let Ok(next) = receiver.try_recv() else { break };
                rows += rows_of(&next.batch);
                group.push(next);
            }
            self.commit_group(std::mem::take(&mut group)).await;
        }
    }

    async fn commit_group(&self, group: Vec<Pending>) {
        let batches: Vec<&ArchiveBatch> = group.iter().map(|pending| &pending.batch).collect();
        let (results, new_pages) = match self.store.store_batches(&batches).await {
            Ok(stored) => {
                self.stats.add(Counter::EventsStored, stored.events_stored);
                let results = stored.batches.into_iter().map(Ok).collect();
                (results, stored.new_pages)
            }
            Err(error) if group.len() == 1 => (vec![Err(error)], Vec::new()),
            Err(error) => {
                tracing::warn!(%error, batches = group.len(), "group commit failed: storing its batches one by one");
                self.store_one_by_one(&batches).await
            }
        };
        let items: Vec<&PageRecord> = new_pages
            .iter()
            .filter_map(|&(batch, position)| batches.get(batch)?.pages.get(position))
            .collect();
        self.writers.write_items(&items).await;
        for (pending, result) in group.into_iter().zip(results) {
            let reply = result.map(|stored| {
                self.stats.add(Counter::Batches, 1);
                self.stats.add(Counter::PagesStored, stored.stored.into());
                self.stats
                    .add(Counter::Duplicates, stored.duplicates.into());
                Committed {
                    batch: pending.batch,
                    stored,
                }
            });
            // A stream that went away no longer needs its acknowledgement.
            let _ = pending.reply.send(reply);
        }
    }

    /// Stores each batch in a transaction of its own: what each stored, and the new pages in
    /// the order stored.
    async fn store_one_by_one(
        &self,
        batches: &[&ArchiveBatch],
    ) -> (Vec<Result<StoredBatch>>, Vec<(usize, usize)>) {
        let mut results = Vec::with_capacity(batches.len());
        let mut new_pages = Vec::new();
        for (index, batch) in batches.iter().enumerate() {
            let result = self.store.store_batch(batch).await;
            if let Ok(stored) = &result {
                self.stats
                    .add(Counter::EventsStored, stored.events_stored.into());
                new_pages.extend(stored.new_pages.iter().map(|&position| (index, position)));
            }
            results.push(result);
        }
        (results, new_pages)
    }
}

/// The rows a batch adds to a transaction.
fn rows_of(batch: &ArchiveBatch) -> usize {
    batch.pages.len() + batch.events.len()
}

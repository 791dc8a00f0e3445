//! The producers' outbox to the archivers: pages and events go, in batches over one
//! `Archive` stream per archiver, to the archiver that owns their document key on the ring.
//!
//! A page is done only when its archiver acknowledges the batch that carried it; until then
//! it stays here. When an archiver's stream fails, its unacknowledged items are routed again
//! after a short pause: to a new owner once the directory says the archiver is gone, or to
//! the same one when it returns. Resending is safe because the archive is idempotent (pages
//! by job, URL and epoch; events by id). The outbox is bounded: when it is full, callers wait,
//! which is how a dead archive tier slows the crawl down instead of losing results.
//!
//! A batch an archiver refuses (INVALID_ARGUMENT, OUT_OF_RANGE: it will refuse it again) is
//! not sent again as it was: its items go again one per batch, and an item refused alone is
//! dead-lettered: dropped, logged and counted, and its page's caller told why.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use owlmesh_proto::v1::{ArchiveBatch, Event, PageRecord};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tracing::{debug, warn};

use super::channels::{ChannelOptions, connect_lazy};
use super::membership::MembershipWatcher;
use crate::api;

/// Items (pages and events) the outbox holds at most, unless configured otherwise.
pub const DEFAULT_OUTBOX_CAPACITY: usize = 8192;
/// Items per batch at most.
pub const DEFAULT_BATCH_SIZE: usize = 256;
/// How long a partial batch waits for company before it is sent.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(5);
/// Pause before items of a failed stream are routed again.
const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// Batches in flight per archiver stream.
const BATCHES_IN_FLIGHT: usize = 8;

/// Sizes of the outbox.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Items held at most (queued or awaiting acknowledgement).
    pub capacity: usize,
    /// Items per batch at most.
    pub batch_size: usize,
    /// How long a partial batch waits before it is sent.
    pub linger: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_OUTBOX_CAPACITY,
            batch_size: DEFAULT_BATCH_SIZE,
            linger: DEFAULT_LINGER,
        }
    }
}

/// Why a page was not archived.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The outbox stopped (shutdown) before an archiver acknowledged the page.
    #[error("archive outbox closed before the page was acknowledged")]
    Closed,
    /// An archiver refused the page even in a batch of its own: sending it again would not
    /// help.
    #[error("archiver refused the page: {0}")]
    Refused(String),
}

/// Counters of an outbox, for telemetry.
#[derive(Debug, Default)]
pub struct OutboxStats {
    /// Pages acknowledged by an archiver.
    pub pages_acknowledged: AtomicU64,
    /// Events acknowledged by an archiver.
    pub events_acknowledged: AtomicU64,
    /// Batches sent (including resends).
    pub batches_sent: AtomicU64,
    /// Items routed again after a stream failed.
    pub items_resent: AtomicU64,
    /// Items an archiver refused alone, dropped.
    pub items_dead_lettered: AtomicU64,
}

/// What became of an archived page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archived {
    /// The archive did not have it: it is stored now.
    Stored,
    /// The archive already had a page with its key (job, URL, epoch): nothing was stored.
    Duplicate,
}

enum Payload {
    Page(PageRecord, oneshot::Sender<Result<Archived, OutboxError>>),
    Event(Event),
}

/// A page or an event on its way, and whether it must go in a batch of its own (it was in
/// a batch an archiver refused).
struct Item {
    payload: Payload,
    alone: bool,
}

impl Item {
    fn new(payload: Payload) -> Self {
        Self {
            payload,
            alone: false,
        }
    }

    /// The document key that picks the archiver: job and URL (events of a whole job: job).
    fn key(&self) -> String {
        match &self.payload {
            Payload::Page(page, _) => owlmesh_job::document_key(&page.job_id, &page.url),
            Payload::Event(event) => owlmesh_job::document_key(&event.job_id, &event.url),
        }
    }
}

/// A handle to the outbox; cheap to clone.
#[derive(Clone)]
pub struct ArchiveOutbox {
    input: mpsc::Sender<Item>,
    room: Arc<Semaphore>,
    held: Arc<AtomicUsize>,
    stats: Arc<OutboxStats>,
    capacity: usize,
}

impl ArchiveOutbox {
    /// Starts routing to the archivers in `archivers`; stops when `shutdown` is cancelled.
    pub fn start(
        archivers: MembershipWatcher,
        config: OutboxConfig,
        shutdown: CancellationToken,
    ) -> Self {
        let (input, receiver) = mpsc::channel(config.batch_size);
        let outbox = Self {
            input,
            room: Arc::new(Semaphore::new(config.capacity)),
            held: Arc::default(),
            stats: Arc::default(),
            capacity: config.capacity,
        };
        let router = Router {
            archivers,
            config,
            shards: HashMap::new(),
            parked: Vec::new(),
            outbox: outbox.clone(),
        };
        tokio::spawn(router.run(receiver, shutdown));
        outbox
    }

    /// Archives a page: returns once an archiver has acknowledged it, saying whether it was
    /// stored or already there. Waits while the outbox is full.
    pub async fn archive(&self, page: PageRecord) -> Result<Archived, OutboxError> {
        let (done, acknowledged) = oneshot::channel();
        self.enqueue(Item::new(Payload::Page(page, done))).await?;
        acknowledged.await.map_err(|_| OutboxError::Closed)?
    }

    /// Queues an event; returns once it is in the outbox (delivery continues in the
    /// background). Waits while the outbox is full.
    pub async fn publish(&self, event: Event) -> Result<(), OutboxError> {
        self.enqueue(Item::new(Payload::Event(event))).await
    }

    /// Items held now: queued or awaiting acknowledgement.
    pub fn depth(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The most items the outbox holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Counters since start.
    pub fn stats(&self) -> &OutboxStats {
        &self.stats
    }

    async fn enqueue(&self, item: Item) -> Result<(), OutboxError> {
        let permit = self.room.acquire().await.map_err(|_| OutboxError::Closed)?;
        permit.forget();
        self.held.fetch_add(1, Ordering::Relaxed);
        self.input.send(item).await.map_err(|_| OutboxError::Closed)
    }

    /// Settles a batch's items; `duplicate_pages` are positions among the batch's pages.
    fn acknowledged(&self, items: Vec<Item>, duplicate_pages: &[u32]) {
        let count = items.len();
        let mut page_position = 0;
        for item in items {
            match item.payload {
                Payload::Page(_, done) => {
                    self.stats
                        .pages_acknowledged
                        .fetch_add(1, Ordering::Relaxed);
                    let archived = if duplicate_pages.contains(&page_position) {
                        Archived::Duplicate
                    } else {
                        Archived::Stored
                    };
                    page_position += 1;
                    let _ = done.send(Ok(archived));
                }
                Payload::Event(_) => {
                    self.stats
                        .events_acknowledged
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.held.fetch_sub(count, Ordering::Relaxed);
        self.room.add_permits(count);
    }

    /// Drops an item an archiver refused alone, telling its page's caller why.
    fn dead_letter(&self, item: Item, archiver: &str, reason: &str) {
        let url = match &item.payload {
            Payload::Page(page, _) => page.url.as_str(),
            Payload::Event(event) => event.url.as_str(),
        };
        warn!(archiver, %url, reason, "archive item dead-lettered: refused in a batch of its own");
        if let Payload::Page(_, done) = item.payload {
            let _ = done.send(Err(OutboxError::Refused(reason.to_owned())));
        }
        self.stats
            .items_dead_lettered
            .fetch_add(1, Ordering::Relaxed);
        self.held.fetch_sub(1, Ordering::Relaxed);
        self.room.add_permits(1);
    }
}

/// Whether an archiver ended a stream with `code` because of what it was sent, so that the
/// same batch would be refused again.
fn is_refusal(code: tonic::Code) -> bool {
    matches!(code, tonic::Code::InvalidArgument | tonic::Code::OutOfRange)
}

/// An open shard writer: where it writes, its queue, and the token that ends it.
struct ShardHandle {
    address: String,
    queue: mpsc::Sender<Item>,
    /// Cancelled when its archiver leaves the membership.
    gone: CancellationToken,
}

/// Puts items on the shard of their owner, and routes failed items again.
struct Router {
    archivers: MembershipWatcher,
    config: OutboxConfig,
    /// Open shard writers by archiver id.
    shards: HashMap<String, ShardHandle>,
    /// Items with no archiver to go to, waiting for one to join.
    parked: Vec<Item>,
    outbox: ArchiveOutbox,
}

impl Router {
    async fn run(mut self, mut input: mpsc::Receiver<Item>, shutdown: CancellationToken) {
        let (retry_sender, mut retry) = mpsc::unbounded_channel::<Vec<Item>>();
        let mut membership = self.archivers.subscribe();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                item = input.recv() => match item {
                    Some(item) => self.route(item, &retry_sender, &shutdown).await,
                    None => return,
                },
                Some(items) = retry.recv() => {
                    self.outbox.stats.items_resent.fetch_add(items.len() as u64, Ordering::Relaxed);
                    for item in items {
                        self.route(item, &retry_sender, &shutdown).await;
                    }
                }
                changed = membership.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    self.end_departed_shards();
                    for item in std::mem::take(&mut self.parked) {
                        self.route(item, &retry_sender, &shutdown).await;
                    }
                }
            }
        }
    }

    /// Ends the shards of archivers the directory no longer lists. A dead archiver's stream
    /// fails by itself, but a hung one (stopped, or cut off without a reset) keeps it open
    /// with nothing acknowledged: once its lease expires, its items go to the keys' new
    /// owners instead of waiting for HTTP/2 keep-alive to notice.
    fn end_departed_shards(&mut self) {
        let view = self.archivers.view();
        if !view.synced {
            return;
        }
        self.shards.retain(|id, shard| {
            let live = view.get(id).is_some();
            if !live {
                shard.gone.cancel();
            }
            live
        });
    }

    async fn route(
        &mut self,
        item: Item,
        retry: &mpsc::UnboundedSender<Vec<Item>>,
        shutdown: &CancellationToken,
    ) {
        let view = self.archivers.view();
        let Some(owner) = view.route(&item.key()) else {
            self.parked.push(item);
            return;
        };
        let (id, address) = (owner.id.clone(), owner.address.clone());
        let current = self
            .shards
            .get(&id)
            .filter(|shard| shard.address == address && !shard.queue.is_closed());
        let queue = match current {
            Some(shard) => shard.queue.clone(),
            None => {
                let (queue, receiver) = mpsc::channel(self.config.batch_size * 2);
                let gone = CancellationToken::new();
                let shard = Shard {
                    address: address.clone(),
                    config: self.config.clone(),
                    outbox: self.outbox.clone(),
                    retry: retry.clone(),
                };
                tokio::spawn(shard.run(receiver, gone.clone(), shutdown.clone()));
                let handle = ShardHandle {
                    address,
                    queue: queue.clone(),
                    gone,
                };
                if let Some(replaced) = self.shards.insert(id, handle) {
                    replaced.gone.cancel();
                }
                queue
            }
        };
        if let Err(mpsc::error::SendError(item)) = queue.send(item).await {
            let _ = retry.send(vec![item]);
        }
    }
}

/// Writes one archiver's batches over its `Archive` stream.
struct Shard {
    address: String,
    config: OutboxConfig,
    outbox: ArchiveOutbox,
    retry: mpsc::UnboundedSender<Vec<Item>>,
}

/// Items a shard holds: gathered for the next batch, and sent but not acknowledged.
#[derive(Default)]
struct Held {
    gathering: Vec<Item>,
    /// Items that go one per batch, once `gathering` has gone.
    alone: VecDeque<Item>,
    in_flight: HashMap<u64, Vec<Item>>,
}

impl Shard {
    async fn run(
        self,
        mut queue: mpsc::Receiver<Item>,
        gone: CancellationToken,
        shutdown: CancellationToken,
    ) {
        let mut held = Held::default();
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => Ok(()),
            _ = gone.cancelled() => Err(Status::unavailable("the archiver left the mesh")),
            outcome = self.stream(&mut queue, &mut held) => outcome,
        };
        if let Err(status) = &outcome {
            warn!(archiver = %self.address, error = %status.message(), "archive stream failed: routing its items again");
        }
        // The archiver answers in order, so a refusal is of the oldest batch unanswered:
        // its items go again one per batch, and one refused alone is dropped.
        if let Err(status) = &outcome
            && is_refusal(status.code())
            && let Some(oldest) = held.in_flight.keys().min().copied()
            && let Some(mut refused) = held.in_flight.remove(&oldest)
        {
            match refused.pop() {
                Some(item) if refused.is_empty() => {
                    self.outbox
                        .dead_letter(item, &self.address, status.message());
                }
                Some(item) => {
                    refused.push(item);
                    for mut item in refused {
                        item.alone = true;
                        held.alone.push_back(item);
                    }
                }
                None => {}
            }
        }
        // Whatever was not acknowledged goes back to the router, after a pause.
        queue.close();
        let mut unacknowledged = held.gathering;
        unacknowledged.extend(held.alone);
        unacknowledged.extend(held.in_flight.into_values().flatten());
        while let Ok(item) = queue.try_recv() {
            unacknowledged.push(item);
        }
        if !unacknowledged.is_empty() && !shutdown.is_cancelled() {
            tokio::time::sleep(RETRY_PAUSE).await;
            let _ = self.retry.send(unacknowledged);
        }
    }

    /// Sends batches and settles acknowledgements until the queue closes or the stream fails.
    /// Every item stays in `held` until acknowledged, so nothing is lost when this future is
    /// dropped or fails half-way.
    async fn stream(
        &self,
        queue: &mut mpsc::Receiver<Item>,
        held: &mut Held,
    ) -> Result<(), Status> {
        let channel =
            connect_lazy(&self.address, &ChannelOptions::default()).map_err(Status::from)?;
        let (batches, receiver) = mpsc::channel(BATCHES_IN_FLIGHT);
        let mut acks = api::archiver_client(channel)
            .archive(ReceiverStream::new(receiver))
            .await?
            .into_inner();
        let mut next_batch_id = 0u64;
        let mut send_by = tokio::time::Instant::now();
        let mut queue_open = true;
        loop {
            let room = held.in_flight.len() < BATCHES_IN_FLIGHT;
            // An item that must go alone waits for the batch being gathered to go first.
            let full = held.gathering.len() >= self.config.batch_size || !held.alone.is_empty();
            let due = !held.gathering.is_empty()
                && (full || !queue_open || tokio::time::Instant::now() >= send_by);
            let lone = held.gathering.is_empty() && !held.alone.is_empty();
            if room && (due || lone) {
                next_batch_id += 1;
                let items = match held.alone.pop_front() {
                    Some(item) if lone => vec![item],
                    Some(item) => {
                        held.alone.push_front(item);
                        std::mem::take(&mut held.gathering)
                    }
                    None => std::mem::take(&mut held.gathering),
                };
                let batch = to_batch(next_batch_id, &items);
                held.in_flight.insert(next_batch_id, items);
                self.outbox
                    .stats
                    .batches_sent
                    .fetch_add(1, Ordering::Relaxed);
                batches
                    .send(batch)
                    .await
                    .map_err(|_| Status::unavailable("archive stream closed"))?;
                continue;
            }
            if !queue_open
                && held.gathering.is_empty()
                && held.alone.is_empty()
                && held.in_flight.is_empty()
            {
                return Ok(());
            }
            let lingering = !held.gathering.is_empty() && room;
            tokio::select! {
                item = queue.recv(), if queue_open && !full => match item {
                    Some(item) if item.alone => held.alone.push_back(item),
                    Some(item) => {
                        if held.gathering.is_empty() {
                            send_by = tokio::time::Instant::now() + self.config.linger;
                        }
                        held.gathering.push(item);
                    }
                    None => queue_open = false,
                },
                _ = tokio::time::sleep_until(send_by), if lingering => {}
                ack = acks.message() => {
                    let ack = ack?.ok_or_else(|| Status::unavailable("archive stream ended"))?;
                    if let Some(items) = held.in_flight.remove(&ack.batch_id) {
                        debug!(batch = ack.batch_id, stored = ack.stored, duplicates = ack.duplicates, "acknowledged");
                        self.outbox.acknowledged(items, &ack.duplicate_pages);
                    }
                }
            }
        }
    }
}

fn to_batch(batch_id: u64, items: &[Item]) -> ArchiveBatch {
    let mut batch = ArchiveBatch {
        batch_id,
        ..Default::default()
    };
    for item in items {
        match &item.payload {
            Payload::Page(page, _) => batch.pages.push(page.clone()),
            Payload::Event(event) => batch.events.push(event.clone()),
        }
    }
    batch
}

//! Fake dispatchers and a fake archiver, real gRPC servers in-process, that record what the
//! scraper does into one ordered log.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use owlmesh_proto::v1::archiver_server::Archiver;
use owlmesh_proto::v1::dispatcher_server::Dispatcher;
use owlmesh_proto::v1::work_message::Message as ToScraper;
use owlmesh_proto::v1::worker_message::Message as FromScraper;
use owlmesh_proto::v1::{
    ArchiveAck, ArchiveBatch, Assignment, AssignmentBatch, Event, ExportChunk, ExportRequest, Job,
    JobDefinition, JobRequest, JobSpec, ListJobsRequest, ListJobsResponse, Outcome,
    OutcomesRecorded, PageRecord, QueryDocumentsRequest, QueryDocumentsResponse,
    QueryEventsRequest, QueryEventsResponse, QueryItemsRequest, QueryItemsResponse, Revocation,
    SubmitJobRequest, SubmitJobResponse, WatchEventsRequest, WorkMessage, WorkerHello,
    WorkerMessage,
};
use tokio::sync::{Notify, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// The job every fake dispatcher hands out.
pub(crate) const JOB_ID: &str = "job-1";
/// The crawl epoch of every assignment.
pub(crate) const EPOCH: u64 = 1;

/// One thing that happened, as the fakes saw it.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    /// The archiver acknowledged this page (recorded just before the ack is sent).
    Archived(PageRecord),
    /// A dispatcher received this outcome.
    Received {
        dispatcher: String,
        outcome: Outcome,
    },
    /// A dispatcher sent this assignment.
    Assigned { dispatcher: String, lease_id: u64 },
    /// A dispatcher accepted a session.
    Hello { dispatcher: String, slots: u32 },
    /// A dispatcher refused a session as a standby.
    Refused { dispatcher: String },
    /// A dispatcher took these assignments back.
    Revoked { lease_ids: Vec<u64> },
    /// A dispatcher received a slot credit.
    Credit { free_slots: u32 },
}

/// Everything the fakes saw, in order.
#[derive(Debug, Default)]
pub(crate) struct Log {
    entries: Mutex<Vec<Entry>>,
}

impl Log {
    fn push(&self, entry: Entry) {
        self.lock().push(entry);
    }

    /// A copy of the log.
    pub(crate) fn entries(&self) -> Vec<Entry> {
        self.lock().clone()
    }

    /// Outcomes received, with the dispatcher that received each.
    pub(crate) fn outcomes(&self) -> Vec<(String, Outcome)> {
        self.entries()
            .into_iter()
            .filter_map(|entry| match entry {
                Entry::Received {
                    dispatcher,
                    outcome,
                } => Some((dispatcher, outcome)),
                _ => None,
            })
            .collect()
    }

    /// Pages acknowledged by the archiver.
    pub(crate) fn archived(&self) -> Vec<PageRecord> {
        self.entries()
            .into_iter()
            .filter_map(|entry| match entry {
                Entry::Archived(page) => Some(page),
                _ => None,
            })
            .collect()
    }

    /// Assignments sent, by any dispatcher.
    pub(crate) fn assigned(&self) -> Vec<(String, u64)> {
        self.entries()
            .into_iter()
            .filter_map(|entry| match entry {
                Entry::Assigned {
                    dispatcher,
                    lease_id,
                } => Some((dispatcher, lease_id)),
                _ => None,
            })
            .collect()
    }

    /// Leases taken back.
    pub(crate) fn revoked(&self) -> Vec<u64> {
        self.entries()
            .into_iter()
            .filter_map(|entry| match entry {
                Entry::Revoked { lease_ids } => Some(lease_ids),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Slot credits received, in order.
    pub(crate) fn credits(&self) -> Vec<u32> {
        self.entries()
            .into_iter()
            .filter_map(|entry| match entry {
                Entry::Credit { free_slots } => Some(free_slots),
                _ => None,
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// URLs waiting to be assigned, shared by every fake dispatcher like the real frontier
/// database, with globally unique lease ids.
pub(crate) struct Frontier {
    spec: JobSpec,
    queue: Mutex<VecDeque<Assignment>>,
    revocations: Mutex<Vec<u64>>,
    next_lease: AtomicU64,
    added: Notify,
}

impl Frontier {
    /// An empty frontier for the job `spec`.
    pub(crate) fn new(spec: JobSpec) -> Self {
        Self {
            spec,
            queue: Mutex::default(),
            revocations: Mutex::default(),
            next_lease: AtomicU64::new(1),
            added: Notify::new(),
        }
    }

    /// Queues `urls`.
    pub(crate) fn add(&self, urls: &[String]) {
        let mut queue = self.lock();
        for url in urls {
            queue.push_back(Assignment {
                lease_id: self.next_lease.fetch_add(1, Ordering::Relaxed),
                job_id: JOB_ID.into(),
                url: url.clone(),
                depth: 0,
                epoch: EPOCH,
                lease_expires_at_ms: i64::MAX,
                attempt: 1,
                trace_context: Default::default(),
            });
        }
        drop(queue);
        self.added.notify_waiters();
    }

    /// Has the session take these assignments back.
    pub(crate) fn revoke(&self, lease_ids: &[u64]) {
        let mut revocations = self
            .revocations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        revocations.extend_from_slice(lease_ids);
        drop(revocations);
        self.added.notify_waiters();
    }

    fn take_revocations(&self) -> Vec<u64> {
        std::mem::take(
            &mut *self
                .revocations
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    fn take(&self, limit: usize) -> Vec<Assignment> {
        let mut queue = self.lock();
        let count = limit.min(queue.len());
        queue.drain(..count).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Assignment>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How a fake dispatcher treats work sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Accepts sessions and hands out work within the scraper's credit.
    Primary,
    /// Refuses sessions with FAILED_PRECONDITION.
    Standby,
    /// Like a primary until it has received this many outcomes in a session; then the
    /// session breaks with UNAVAILABLE and it stands by, as a primary that lost its lead.
    BreakAfterOutcomes(usize),
}

/// A fake `Dispatcher`: only `Work` is implemented.
#[derive(Clone)]
pub(crate) struct FakeDispatcher {
    pub(crate) name: String,
    pub(crate) mode: Arc<Mutex<Mode>>,
    pub(crate) frontier: Arc<Frontier>,
    pub(crate) log: Arc<Log>,
}

impl FakeDispatcher {
    fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap_or_else(PoisonError::into_inner) = mode;
    }

    /// Serves one session: assignments within the credit, outcomes recorded.
    async fn session(
        self,
        hello: WorkerHello,
        mut inbound: Streaming<WorkerMessage>,
        outbound: mpsc::Sender<Result<WorkMessage, Status>>,
    ) {
        let mut credit = hello.slots as usize;
        let mut defined = false;
        let mut received = 0usize;
        loop {
            let added = self.frontier.added.notified();
            if !self.hand_out(&mut credit, &mut defined, &outbound).await {
                return;
            }
            let message = tokio::select! {
                message = inbound.message() => message,
                _ = added => continue,
                _ = tokio::time::sleep(Duration::from_millis(20)) => continue,
            };
            let Ok(Some(WorkerMessage {
                message: Some(message),
            })) = message
            else {
                return;
            };
            match message {
                FromScraper::Outcomes(batch) => {
                    credit += batch.outcomes.len();
                    received += batch.outcomes.len();
                    for outcome in batch.outcomes {
                        let dispatcher = self.name.clone();
                        self.log.push(Entry::Received {
                            dispatcher,
                            outcome,
                        });
                    }
                    // Logged is recorded: say so, as a dispatcher does once its frontier has
                    // them (the scraper sends unrecorded outcomes again on its next session).
                    let recorded = OutcomesRecorded {
                        count: received as u64,
                    };
                    let message = Some(ToScraper::Recorded(recorded));
                    let _ = outbound.send(Ok(WorkMessage { message })).await;
                    if let Mode::BreakAfterOutcomes(limit) = self.mode()
                        && received >= limit
                    {
                        self.set_mode(Mode::Standby);
                        let lost = Status::unavailable("the dispatcher lost its database");
                        let _ = outbound.send(Err(lost)).await;
                        return;
                    }
                }
                FromScraper::Credit(offered) => {
                    credit += offered.free_slots as usize;
                    self.log.push(Entry::Credit {
                        free_slots: offered.free_slots,
                    });
                }
                FromScraper::Hello(_) => {}
            }
        }
    }

    /// Sends revocations, then assignments while there is credit and work; false once the
    /// session is gone.
    async fn hand_out(
        &self,
        credit: &mut usize,
        defined: &mut bool,
        outbound: &mpsc::Sender<Result<WorkMessage, Status>>,
    ) -> bool {
        let lease_ids = self.frontier.take_revocations();
        if !lease_ids.is_empty() {
            self.log.push(Entry::Revoked {
                lease_ids: lease_ids.clone(),
            });
            if send(outbound, ToScraper::Revoked(Revocation { lease_ids }))
                .await
                .is_err()
            {
                return false;
            }
        }
        while *credit > 0 {
            let assignments = self.frontier.take((*credit).min(16));
            if assignments.is_empty() {
                break;
            }
            if !*defined {
                let definition = JobDefinition {
                    job_id: JOB_ID.into(),
                    spec: Some(self.frontier.spec.clone()),
                };
                if send(outbound, ToScraper::Job(definition)).await.is_err() {
                    return false;
                }
                *defined = true;
            }
            *credit -= assignments.len();
            for assignment in &assignments {
                self.log.push(Entry::Assigned {
                    dispatcher: self.name.clone(),
                    lease_id: assignment.lease_id,
                });
            }
            let batch = ToScraper::Assignments(AssignmentBatch { assignments });
            if send(outbound, batch).await.is_err() {
                return false;
            }
        }
        true
    }
}

async fn send(
    outbound: &mpsc::Sender<Result<WorkMessage, Status>>,
    message: ToScraper,
) -> Result<(), ()> {
    let message = WorkMessage {
        message: Some(message),
    };
    outbound.send(Ok(message)).await.map_err(|_| ())
}

fn unimplemented<T>() -> Result<T, Status> {
    Err(Status::unimplemented("not part of the fake"))
}

#[tonic::async_trait]
impl Dispatcher for FakeDispatcher {
    async fn submit_job(
        &self,
        _: Request<SubmitJobRequest>,
    ) -> Result<Response<SubmitJobResponse>, Status> {
        unimplemented()
    }

    async fn get_job(&self, _: Request<JobRequest>) -> Result<Response<Job>, Status> {
        unimplemented()
    }

    async fn list_jobs(
        &self,
        _: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        unimplemented()
    }

    async fn pause_job(&self, _: Request<JobRequest>) -> Result<Response<Job>, Status> {
        unimplemented()
    }

    async fn resume_job(&self, _: Request<JobRequest>) -> Result<Response<Job>, Status> {
        unimplemented()
    }

    async fn cancel_job(&self, _: Request<JobRequest>) -> Result<Response<Job>, Status> {
        unimplemented()
    }

    async fn expedite_job(&self, _: Request<JobRequest>) -> Result<Response<Job>, Status> {
        unimplemented()
    }

    type WatchEventsStream = ReceiverStream<Result<Event, Status>>;

    async fn watch_events(
        &self,
        _: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        unimplemented()
    }

    type WorkStream = ReceiverStream<Result<WorkMessage, Status>>;

    async fn work(
        &self,
        request: Request<Streaming<WorkerMessage>>,
    ) -> Result<Response<Self::WorkStream>, Status> {
        let mut inbound = request.into_inner();
        let Some(WorkerMessage {
            message: Some(FromScraper::Hello(hello)),
        }) = inbound.message().await?
        else {
            return Err(Status::invalid_argument(
                "message: the first message must be hello",
            ));
        };
        let dispatcher = self.name.clone();
        if self.mode() == Mode::Standby {
            self.log.push(Entry::Refused { dispatcher });
            return Err(Status::failed_precondition(
                "standby: the primary dispatcher is another",
            ));
        }
        self.log.push(Entry::Hello {
            dispatcher,
            slots: hello.slots,
        });
        let (outbound, receiver) = mpsc::channel(64);
        tokio::spawn(self.clone().session(hello, inbound, outbound));
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}

/// A fake `Archiver`: acknowledges batches, or holds them unacknowledged while told to.
#[derive(Clone)]
pub(crate) struct FakeArchiver {
    pub(crate) log: Arc<Log>,
    /// Whether batches are acknowledged; held ones are when it turns true.
    pub(crate) acking: Arc<watch::Sender<bool>>,
    /// Pages received, acknowledged or not.
    pub(crate) pages_received: Arc<AtomicUsize>,
    /// A URL whose batches are refused with INVALID_ARGUMENT as the stream's last word, as
    /// a real archiver refuses a batch that fails validation.
    pub(crate) refused_url: Arc<Mutex<Option<String>>>,
}

impl FakeArchiver {
    async fn stream(
        self,
        mut inbound: Streaming<ArchiveBatch>,
        acks: mpsc::Sender<Result<ArchiveAck, Status>>,
    ) {
        let mut acking = self.acking.subscribe();
        let mut held = Vec::new();
        loop {
            tokio::select! {
                batch = inbound.message() => {
                    let Ok(Some(batch)) = batch else { return };
                    self.pages_received.fetch_add(batch.pages.len(), Ordering::SeqCst);
                    let refused = self.refused_url.lock().unwrap_or_else(PoisonError::into_inner).clone();
                    if let Some(at) = batch.pages.iter().position(|page| Some(&page.url) == refused.as_ref()) {
                        let status = Status::invalid_argument(format!("pages[{at}].fields: refused by the test"));
                        let _ = acks.send(Err(status)).await;
                        return;
                    }
                    if *acking.borrow() {
                        self.acknowledge(batch, &acks).await;
                    } else {
                        held.push(batch);
                    }
                }
                changed = acking.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if *acking.borrow_and_update() {
                        for batch in std::mem::take(&mut held) {
                            self.acknowledge(batch, &acks).await;
                        }
                    }
                }
            }
        }
    }

    async fn acknowledge(
        &self,
        batch: ArchiveBatch,
        acks: &mpsc::Sender<Result<ArchiveAck, Status>>,
    ) {
        let stored = batch.pages.len() as u32;
        for page in batch.pages {
            self.log.push(Entry::Archived(page));
        }
        let ack = ArchiveAck {
            batch_id: batch.batch_id,
            stored,
            ..ArchiveAck::default()
        };
        let _ = acks.send(Ok(ack)).await;
    }
}

#[tonic::async_trait]
impl Archiver for FakeArchiver {
    type ArchiveStream = ReceiverStream<Result<ArchiveAck, Status>>;

    async fn archive(
        &self,
        request: Request<Streaming<ArchiveBatch>>,
    ) -> Result<Response<Self::ArchiveStream>, Status> {
        let (acks, receiver) = mpsc::channel(64);
        tokio::spawn(self.clone().stream(request.into_inner(), acks));
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn query_items(
        &self,
        _: Request<QueryItemsRequest>,
    ) -> Result<Response<QueryItemsResponse>, Status> {
        unimplemented()
    }

    async fn query_documents(
        &self,
        _: Request<QueryDocumentsRequest>,
    ) -> Result<Response<QueryDocumentsResponse>, Status> {
        unimplemented()
    }

    async fn query_events(
        &self,
        _: Request<QueryEventsRequest>,
    ) -> Result<Response<QueryEventsResponse>, Status> {
        unimplemented()
    }

    type ExportStream = ReceiverStream<Result<ExportChunk, Status>>;

    async fn export(
        &self,
        _: Request<ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        unimplemented()
    }
}

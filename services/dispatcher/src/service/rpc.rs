//! The `Dispatcher` gRPC service: jobs, events and the scrapers' work sessions.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use owlmesh_mesh::auth::Caller;
use owlmesh_proto::v1::dispatcher_server::Dispatcher as DispatcherRpc;
use owlmesh_proto::v1::worker_message::Message;
use owlmesh_proto::v1::{
    Event, Job, JobRequest, ListJobsRequest, ListJobsResponse, SubmitJobRequest, SubmitJobResponse,
    UnreadableJob, WatchEventsRequest, WorkMessage, WorkerMessage,
};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, instrument, warn};

use super::Dispatcher;
use super::requests;
use super::sessions::{Delivered, SESSION_BUFFER, Session};
use crate::frontier::{JobState, NewJob, UrlKey, now_ms};
use crate::{DispatcherError, Result};
use owlmesh_job::canonicalize;

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The gRPC face of a dispatcher.
#[derive(Clone)]
pub(crate) struct DispatcherService {
    pub(crate) dispatcher: Arc<Dispatcher>,
    pub(crate) shutdown: CancellationToken,
}

impl DispatcherService {
    async fn submit(&self, request: SubmitJobRequest) -> Result<String> {
        let request_id = requests::request_id(&request.request_id)?;
        let spec = request.spec.ok_or(DispatcherError::InvalidArgument {
            field: "spec",
            reason: "is required".into(),
        })?;
        let spec = owlmesh_job::validated(spec)?;
        let seeds = seed_keys(&spec.seeds)?;
        let submitted = self
            .dispatcher
            .frontier
            .create_job(NewJob {
                spec: &spec,
                seeds: &seeds,
                now_ms: now_ms(),
                request_id,
            })
            .await?;
        let record = submitted.job;
        if !submitted.created {
            info!(job = %record.id, request_id, "job submitted again: the first submission's job");
            return Ok(record.id);
        }
        info!(job = %record.id, name = %record.name, seeds = seeds.len(), "job submitted");
        let message = format!("job {:?} submitted with {} seeds", record.name, seeds.len());
        self.dispatcher
            .events
            .emit("job_submitted", &record.id, "", message, HashMap::new())
            .await;
        self.dispatcher.sessions.work_changed();
        Ok(record.id)
    }

    async fn change_state(&self, request: JobRequest, to: JobState) -> Result<Job> {
        let id = job_id(request)?;
        let record = self
            .dispatcher
            .frontier
            .set_state(&id, to, now_ms())
            .await?;
        let attributes = HashMap::from([("state".to_owned(), to.as_str().to_owned())]);
        self.dispatcher
            .events
            .emit("job_state", &id, "", format!("job {to}"), attributes)
            .await;
        self.dispatcher.sessions.work_changed();
        Ok(record.to_proto())
    }

    /// Runs one scraper's session until its stream ends.
    async fn run_session(
        dispatcher: Arc<Dispatcher>,
        session: Arc<Session>,
        mut inbound: Streaming<WorkerMessage>,
        shutdown: CancellationToken,
    ) {
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => break,
                next = inbound.next() => next,
            };
            let message = match next {
                Some(Ok(WorkerMessage {
                    message: Some(message),
                })) => message,
                Some(Ok(_)) => continue,
                Some(Err(status)) => {
                    warn!(scraper = %session.scraper_id, error = %status.message(), "work session broke");
                    break;
                }
                None => break,
            };
            match message {
                Message::Credit(credit) => session.add_slots(credit.free_slots),
                Message::Outcomes(batch) => {
                    let count = batch.outcomes.len() as u32;
                    for outcome in batch.outcomes {
                        let session = session.clone();
                        let delivered = Delivered { outcome, session };
                        if dispatcher.outcomes.send(delivered).await.is_err() {
                            return;
                        }
                    }
                    session.add_slots(count);
                }
                Message::Hello(_) => {}
            }
            dispatcher.sessions.wake.notify_one();
        }
        info!(scraper = %session.scraper_id, "work session closed");
        dispatcher.sessions.close(&session);
    }
}

/// Returns to the frontier every lease of the session's scraper but the ones it says it still
/// holds, then lets the session take work. The scraper counts as held every assignment it has
/// and every outcome no dispatcher has said it recorded, so the others are assignments that
/// never reached it (claimed for a session that broke, or by a dispatcher that died with them
/// in its buffers): without this they would wait for their leases to expire. While the
/// database refuses (e.g. another dispatcher holds SQLite's write lock) it retries; after
/// [`RECONCILE_ATTEMPTS`] it gives up and the leases come back when they expire.
async fn reconcile(dispatcher: Arc<Dispatcher>, session: Arc<Session>, held: Vec<u64>) {
    let scraper = session.scraper_id.as_str();
    for attempt in 1..=RECONCILE_ATTEMPTS {
        if session.is_ended() {
            return;
        }
        // Asked again inside the transaction: an attempt that waited long for the database
        // must not release what a newer session of this scraper was given meanwhile.
        let current = || !session.is_ended();
        let released = dispatcher
            .frontier
            .release_owner_except(scraper, &held, now_ms(), &current)
            .await;
        match released {
            Ok(released) => {
                if released > 0 {
                    info!(
                        scraper,
                        released,
                        held = held.len(),
                        "leases the scraper no longer holds are back in the frontier"
                    );
                    dispatcher
                        .counters
                        .leases_released
                        .fetch_add(released, std::sync::atomic::Ordering::Relaxed);
                }
                break;
            }
            Err(error) if attempt == RECONCILE_ATTEMPTS => {
                warn!(scraper, %error, "cannot reconcile leases: they come back when they expire");
            }
            Err(_) => tokio::time::sleep(RECONCILE_RETRY_PAUSE).await,
        }
    }
    if !session.is_ended() {
        session.set_ready();
        dispatcher.sessions.work_changed();
    }
}

/// Whether a work session under `scraper_id`, opened with the token of fingerprint
/// `caller` (`None` when tokens are not checked here), may open. Only a registered scraper
/// takes work: an id nobody registered would take hosts on the ring. And only that
/// scraper: a session under its id closes its own and, with its hello, returns its leases,
/// so the caller's token must be the one the scraper registered with, as the directory
/// publishes it. A directory that checks no tokens publishes no fingerprint, and then
/// any member may speak for any scraper (the mesh is open by choice).
async fn admit_session(
    dispatcher: &Dispatcher,
    scraper_id: &str,
    caller: Option<&str>,
) -> Result<(), Status> {
    let registered_by = |instance: &owlmesh_proto::v1::Instance| {
        let published = instance.token_fingerprint.as_str();
        published.is_empty() || caller.is_none_or(|caller| caller == published)
    };
    // At start, registering and opening the session race, and a scraper that restarted
    // with another token shows its new registration a moment later: wait for either.
    let scrapers = &dispatcher.scrapers;
    let admitted = scrapers
        .wait_for(REGISTRATION_GRACE, |view| {
            view.get(scraper_id).is_some_and(registered_by)
        })
        .await;
    if admitted.is_some() {
        return Ok(());
    }
    if scrapers.view().get(scraper_id).is_some() {
        warn!(
            scraper = scraper_id,
            "work session refused: another member's token"
        );
        return Err(Status::permission_denied(format!(
            "hello.scraper_id: scraper {scraper_id:?} registered with another token; a work \
             session under a scraper's id must carry the token that scraper registered with"
        )));
    }
    Err(Status::failed_precondition(format!(
        "hello.scraper_id: no scraper {scraper_id:?} is registered in the directory; a \
         scraper registers before it opens a work session"
    )))
}

/// Attempts at reconciling a new session's leases before it takes work without.
const RECONCILE_ATTEMPTS: u32 = 10;
/// How long a work session's hello waits for its scraper to show in the directory's
/// membership: at start, registering and opening the session race.
const REGISTRATION_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
/// Pause between two of those attempts.
const RECONCILE_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// The seeds as frontier keys; a seed that is not an http(s) URL is the caller's error.
fn seed_keys(seeds: &[String]) -> Result<Vec<UrlKey>> {
    seeds
        .iter()
        .map(|seed| {
            let canonical =
                canonicalize(seed).map_err(|error| DispatcherError::InvalidArgument {
                    field: "spec.seeds",
                    reason: error.to_string(),
                })?;
            Ok(UrlKey {
                host_key: canonical.host_key().into(),
                fingerprint: canonical.fingerprint(),
                url: canonical.as_str().to_owned(),
            })
        })
        .collect()
}

fn job_id(request: JobRequest) -> Result<String> {
    if request.id.is_empty() {
        return Err(DispatcherError::InvalidArgument {
            field: "id",
            reason: "must not be empty".into(),
        });
    }
    Ok(request.id)
}

#[tonic::async_trait]
impl DispatcherRpc for DispatcherService {
    #[instrument(skip_all)]
    async fn submit_job(
        &self,
        request: Request<SubmitJobRequest>,
    ) -> Result<Response<SubmitJobResponse>, Status> {
        let id = self.submit(request.into_inner()).await?;
        Ok(Response::new(SubmitJobResponse { id }))
    }

    async fn get_job(&self, request: Request<JobRequest>) -> Result<Response<Job>, Status> {
        let id = job_id(request.into_inner())?;
        let record = self
            .dispatcher
            .frontier
            .get_job(&id)
            .await
            .map_err(DispatcherError::from)?;
        Ok(Response::new(record.to_proto()))
    }

    async fn list_jobs(
        &self,
        request: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        let request = request.into_inner();
        let after = requests::page_cursor(&request.page_token)?;
        let limit = requests::page_size(request.page_size);
        let page = self
            .dispatcher
            .frontier
            .list_jobs(after.as_ref(), limit)
            .await
            .map_err(DispatcherError::from)?;
        // Reported to the caller, who shows it; the dashboard lists jobs every second, so
        // a warning here would repeat as often.
        for job in &page.unreadable {
            debug!(job = %job.id, reason = %job.reason, "a stored job cannot be read");
        }
        Ok(Response::new(ListJobsResponse {
            jobs: page.jobs.iter().map(|record| record.to_proto()).collect(),
            next_page_token: page
                .next
                .as_ref()
                .map(requests::page_token)
                .unwrap_or_default(),
            unreadable: page
                .unreadable
                .into_iter()
                .map(|job| UnreadableJob {
                    id: job.id,
                    reason: job.reason,
                })
                .collect(),
        }))
    }

    async fn pause_job(&self, request: Request<JobRequest>) -> Result<Response<Job>, Status> {
        let job = self
            .change_state(request.into_inner(), JobState::Paused)
            .await?;
        Ok(Response::new(job))
    }

    async fn resume_job(&self, request: Request<JobRequest>) -> Result<Response<Job>, Status> {
        let job = self
            .change_state(request.into_inner(), JobState::Running)
            .await?;
        Ok(Response::new(job))
    }

    async fn cancel_job(&self, request: Request<JobRequest>) -> Result<Response<Job>, Status> {
        let job = self
            .change_state(request.into_inner(), JobState::Cancelled)
            .await?;
        Ok(Response::new(job))
    }

    async fn expedite_job(&self, request: Request<JobRequest>) -> Result<Response<Job>, Status> {
        let id = job_id(request.into_inner())?;
        let frontier = &self.dispatcher.frontier;
        frontier
            .expedite(&id, now_ms())
            .await
            .map_err(DispatcherError::from)?;
        self.dispatcher.sessions.work_changed();
        let record = frontier.get_job(&id).await.map_err(DispatcherError::from)?;
        Ok(Response::new(record.to_proto()))
    }

    type WatchEventsStream = ResponseStream<Event>;

    async fn watch_events(
        &self,
        request: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let job_id = request.into_inner().job_id;
        let mut events = self.dispatcher.events.subscribe();
        let (sender, receiver) = mpsc::channel(SESSION_BUFFER);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = sender.closed() => return,
                    event = events.recv() => event,
                };
                match event {
                    Ok(event) if job_id.is_empty() || event.job_id == job_id => {
                        if sender.send(Ok(event)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    type WorkStream = ResponseStream<WorkMessage>;

    async fn work(
        &self,
        request: Request<Streaming<WorkerMessage>>,
    ) -> Result<Response<Self::WorkStream>, Status> {
        // Which token opened the session: `None` when this server checks no tokens.
        let caller = Caller::of(&request).map(|caller| caller.fingerprint.to_string());
        let mut inbound = request.into_inner();
        let hello = match inbound.next().await {
            Some(Ok(WorkerMessage {
                message: Some(Message::Hello(hello)),
            })) => hello,
            Some(Err(status)) => return Err(status),
            _ => {
                return Err(Status::invalid_argument(
                    "message: the first message must be hello",
                ));
            }
        };
        if hello.scraper_id.is_empty() {
            return Err(Status::invalid_argument(
                "hello.scraper_id: must not be empty",
            ));
        }
        admit_session(&self.dispatcher, &hello.scraper_id, caller.as_deref()).await?;
        if !self.dispatcher.refresh_primary() {
            let primary = self
                .dispatcher
                .primary_id()
                .unwrap_or_else(|| "unknown".into());
            return Err(DispatcherError::Standby(primary).into());
        }
        // The scraper opens a session only when its last one ended for it: end ours too, so
        // that nothing more is sent (and claimed) for it before the reconciliation below.
        self.dispatcher.sessions.close_scraper(&hello.scraper_id);
        let (sender, receiver) = mpsc::channel(SESSION_BUFFER);
        // The hello is answered at once; the session takes work once its scraper's lost
        // leases are back in the frontier, since claiming before could hand it a URL that
        // the reconciliation then takes back.
        let session = self.dispatcher.sessions.open(
            &hello.scraper_id,
            hello.slots,
            sender,
            hello.held.is_none(),
        );
        if let Some(held) = hello.held {
            let reconcile = reconcile(self.dispatcher.clone(), session.clone(), held.lease_ids);
            tokio::spawn(reconcile);
        }
        info!(scraper = %hello.scraper_id, slots = hello.slots, "work session opened");
        let shutdown = self.shutdown.clone();
        tokio::spawn(Self::run_session(
            self.dispatcher.clone(),
            session,
            inbound,
            shutdown,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

//! The work sessions with the dispatchers (`Dispatcher.Work`): one at a time, with the first
//! dispatcher in failover order that accepts it.
//!
//! A session starts with a hello offering the free slots. The dispatcher then defines jobs,
//! sends assignments and may revoke some; the scraper answers with outcome batches (each
//! outcome frees one slot on both sides) and credits for slots freed without an outcome.
//! When a session breaks, nothing held is lost: assignments keep running, and outcomes wait
//! for the next session, with whichever dispatcher is primary then (lease ids are global, so
//! any primary accepts them). That includes outcomes already sent: the dispatcher says how
//! many of a session's outcomes its frontier has recorded, and the others are sent again
//! (one recorded twice is found stale and ignored), so an outcome that died or hung with a
//! dispatcher is not lost. Assignments on their way here may be: the hello of the next
//! session lists every lease still held (running, or with an outcome not yet recorded), and
//! the dispatcher returns the others to the frontier at once instead of when they expire.
//!
//! At shutdown the outcomes are held until every assignment has finished or been handed
//! back, then sent together, and the session ends. Sent one by one, each outcome would free
//! a slot and draw a new assignment only to hand it back again.

use std::sync::Arc;
use std::time::Duration;

use owlmesh_mesh::api;
use owlmesh_mesh::client::{Backoff, ChannelOptions, MembershipWatcher, connect_lazy};
use owlmesh_proto::v1::work_message::Message as Inbound;
use owlmesh_proto::v1::worker_message::Message as Outbound;
use owlmesh_proto::v1::{
    HeldLeases, Instance, Outcome, OutcomeBatch, SlotCredit, WorkMessage, WorkerHello,
    WorkerMessage,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status, Streaming};
use tracing::{debug, info, warn};

use crate::inbox::Inbox;
use crate::jobs::JobCache;
use crate::outcome_queue::{BatchPolicy, OutcomeQueue, SentOutcomes};
use crate::telemetry::Counters;
use crate::worker::Worker;
use transport::Transport;

mod inbound;
mod transport;

/// First pause between two session attempts; it doubles up to [`RECONNECT_MAX`].
const RECONNECT_INITIAL: Duration = Duration::from_millis(100);
/// Longest pause between two session attempts.
const RECONNECT_MAX: Duration = Duration::from_secs(2);
/// How long a dispatcher may take to accept or refuse a session.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the dispatcher to close a session whose last outcomes went out.
const CLOSING_GRACE: Duration = Duration::from_millis(500);

/// How the link batches and whom it says it is.
#[derive(Debug, Clone)]
pub(crate) struct LinkConfig {
    /// The scraper's registered id.
    pub(crate) id: String,
    /// Outcomes per batch at most.
    pub(crate) batch: usize,
    /// How long a partial batch waits.
    pub(crate) linger: Duration,
}

/// The scraper's side of the work sessions; runs until the drain is over or `stop`.
pub(crate) struct WorkLink {
    pub(crate) config: LinkConfig,
    pub(crate) dispatchers: MembershipWatcher,
    pub(crate) inbox: Arc<Inbox>,
    pub(crate) jobs: JobCache,
    pub(crate) worker: Arc<Worker>,
    pub(crate) outcomes: OutcomeQueue,
    /// Handed to every assignment's task; dropped when the drain begins, so the queue
    /// closes once the last task has reported.
    pub(crate) sender: Option<mpsc::Sender<Outcome>>,
    /// Shutdown began.
    pub(crate) draining: CancellationToken,
    /// Give up on undelivered outcomes and end now.
    pub(crate) stop: CancellationToken,
    /// Slots freed without an outcome (revoked or duplicate assignments), to offer to the
    /// dispatcher with a credit.
    pub(crate) owed_credit: usize,
    /// Outcomes sent on the current session and not yet recorded by its dispatcher.
    pub(crate) sent: SentOutcomes,
}

/// An open session: the dispatcher's messages, and the scraper's side of the stream.
struct Opened {
    inbound: Streaming<WorkMessage>,
    outbound: mpsc::Sender<WorkerMessage>,
    transport: Transport,
}

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// Every outcome was delivered after the drain, or the link was stopped.
    Finished,
    /// The dispatcher did not accept a session (standby, unreachable): try the next one.
    Refused,
    /// An open session broke: start again from the top of the failover order. `refused`:
    /// the dispatcher ended the stream, as it does when it cannot take what was sent.
    Broken { refused: bool },
}

impl WorkLink {
    /// Holds sessions, one after another, until the drain is over or the link is stopped.
    pub(crate) async fn run(mut self) {
        let mut backoff = Backoff::new(RECONNECT_INITIAL, RECONNECT_MAX);
        let mut skip = 0usize;
        let mut failing = false;
        loop {
            self.check_drain();
            if self.outcomes.is_finished() || self.stop.is_cancelled() {
                return;
            }
            let order = self.dispatchers.view().failover_order();
            let Some(dispatcher) = order.get(skip % order.len().max(1)) else {
                self.await_dispatchers(backoff.next_delay()).await;
                continue;
            };
            let ended = self.session(dispatcher, &mut backoff).await;
            match ended {
                Ended::Finished => return,
                Ended::Broken { .. } => (skip, failing) = (0, false),
                Ended::Refused => {
                    skip += 1;
                    if skip >= order.len() && !failing {
                        warn!(
                            dispatchers = order.len(),
                            "no dispatcher accepts a work session: retrying"
                        );
                        failing = true;
                    }
                }
            }
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(backoff.next_delay()) => {}
            }
        }
    }

    /// Waits for the membership to change, at most `pause`, when no dispatcher is known.
    async fn await_dispatchers(&self, pause: Duration) {
        let mut membership = self.dispatchers.subscribe();
        // Only a view newer than the one just read counts as a change.
        membership.borrow_and_update();
        tokio::select! {
            _ = self.stop.cancelled() => {}
            _ = self.draining.cancelled(), if self.sender.is_some() => {}
            _ = membership.changed() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }

    /// One session with `dispatcher`, from hello to its end.
    async fn session(&mut self, dispatcher: &Instance, backoff: &mut Backoff) -> Ended {
        let Some(Opened {
            mut inbound,
            outbound,
            transport,
        }) = self.open(dispatcher).await
        else {
            return Ended::Refused;
        };
        backoff.reset();
        info!(dispatcher = %dispatcher.id, "work session opened");
        let ended = self.converse(&dispatcher.id, &mut inbound, &outbound).await;
        drop(outbound);
        match ended {
            // The last outcomes may still sit in the transport's queue: ending the stream
            // lets them go first, and the dispatcher closes its side once it has read them.
            Ended::Finished if !self.stop.is_cancelled() => closing_grace(&mut inbound).await,
            Ended::Finished => {}
            Ended::Broken { refused } => self.recover(&transport, refused),
            Ended::Refused => self.recover(&transport, false),
        }
        ended
    }

    /// Says hello to `dispatcher`; `None` when it refuses, does not answer, or the link was
    /// stopped.
    async fn open(&mut self, dispatcher: &Instance) -> Option<Opened> {
        let channel = match connect_lazy(&dispatcher.address, &ChannelOptions::default()) {
            Ok(channel) => channel,
            Err(error) => {
                warn!(dispatcher = %dispatcher.id, %error, "cannot dial the dispatcher");
                return None;
            }
        };
        let (outbound, transport) = Transport::channel();
        // The hello offers every free slot, those owed to the last session included.
        self.owed_credit = 0;
        let hello = WorkerHello {
            scraper_id: self.config.id.clone(),
            slots: self.inbox.free_slots(),
            held: Some(HeldLeases {
                lease_ids: self.held_leases(),
            }),
        };
        let _ = outbound.try_send(message(Outbound::Hello(hello)));
        let mut client = api::dispatcher_client(channel);
        let opening = tokio::time::timeout(OPEN_TIMEOUT, client.work(transport.clone()));
        let opened = tokio::select! {
            _ = self.stop.cancelled() => return None,
            opened = opening => opened.unwrap_or_else(|_| Err(Status::deadline_exceeded("no answer to hello"))),
        };
        match opened {
            Ok(response) => Some(Opened {
                inbound: response.into_inner(),
                outbound,
                transport,
            }),
            Err(status) => {
                debug!(dispatcher = %dispatcher.id, code = ?status.code(), error = %status.message(), "work session refused");
                None
            }
        }
    }

    /// Every lease this scraper still answers for: assignments under way and outcomes no
    /// dispatcher has recorded (waiting, or back from an ended session). The dispatcher
    /// returns this scraper's other leases to the frontier when the session opens (they are
    /// assignments lost on the way here), instead of waiting for them to expire.
    fn held_leases(&mut self) -> Vec<u64> {
        // Outcomes first: a task queues its outcome before it leaves the inbox, so every
        // lease is in one of the two when they are read in this order.
        self.outcomes.absorb();
        let mut held = self.outcomes.lease_ids();
        held.extend(self.inbox.lease_ids());
        held.sort_unstable();
        held.dedup();
        held
    }

    /// Exchanges messages until the session breaks or the drain is over.
    async fn converse(
        &mut self,
        dispatcher_id: &str,
        inbound: &mut Streaming<WorkMessage>,
        outbound: &mpsc::Sender<WorkerMessage>,
    ) -> Ended {
        let mut membership = self.dispatchers.subscribe();
        membership.borrow_and_update();
        let mut watching = true;
        loop {
            self.check_drain();
            if self.outcomes.is_finished() {
                return Ended::Finished;
            }
            let policy = BatchPolicy {
                size: self.config.batch,
                linger: self.config.linger,
                hold: self.sender.is_none(),
            };
            tokio::select! {
                biased;
                _ = self.stop.cancelled() => return Ended::Finished,
                _ = self.draining.cancelled(), if self.sender.is_some() => {}
                Ok(permit) = outbound.reserve(), if self.owed_credit > 0 => {
                    let free_slots = u32::try_from(self.owed_credit).unwrap_or(u32::MAX);
                    permit.send(message(Outbound::Credit(SlotCredit { free_slots })));
                    self.owed_credit = 0;
                }
                Ok(permit) = batch_room(&mut self.outcomes, policy, outbound), if self.sent.may_send() => {
                    let outcomes = self.outcomes.take(self.sent.batch_limit(self.config.batch));
                    let count = outcomes.len();
                    self.sent.sent(&outcomes);
                    permit.send(message(Outbound::Outcomes(OutcomeBatch { outcomes })));
                    self.inbox.delivered(count);
                }
                received = inbound.message() => match received {
                    Ok(Some(received)) => self.handle(received),
                    Ok(None) => {
                        warn!("work session ended by the dispatcher");
                        return Ended::Broken { refused: true };
                    }
                    Err(status) => {
                        warn!(code = ?status.code(), error = %status.message(), "work session broke");
                        return Ended::Broken { refused: is_refusal(status.code()) };
                    }
                },
                // A dead dispatcher breaks the stream at once; a hung one keeps it open and
                // silent. Once its lease expires in the directory, move on to the next one
                // rather than wait for HTTP/2 keep-alive to give up on it.
                changed = membership.changed(), if watching => {
                    watching = changed.is_ok();
                    let view = membership.borrow_and_update().clone();
                    if watching && view.synced && view.get(dispatcher_id).is_none() {
                        warn!(dispatcher = dispatcher_id, "the dispatcher left the directory: ending the session");
                        return Ended::Broken { refused: false };
                    }
                }
            }
        }
    }

    /// Begins the drain once shutdown began: no new assignments, and the outcome queue
    /// closes when the last running one reports.
    fn check_drain(&mut self) {
        if self.draining.is_cancelled() && self.sender.is_some() {
            self.sender = None;
            self.inbox.drain();
            info!("draining: taking no more assignments");
        }
    }

    /// Takes back every outcome of the ended session that its dispatcher did not record:
    /// those the transport still held, and those it sent that may have died with the
    /// dispatcher. They go first in the next session, which probes with them (see
    /// [`SentOutcomes::after_break`]); one that keeps breaking sessions is dead-lettered here.
    fn recover(&mut self, transport: &Transport, refused: bool) {
        // Ends the stream; the outcomes it still held are among the unrecorded ones.
        let _ = transport.take_unsent();
        let recovered = self.sent.after_break(refused);
        if let Some(letter) = &recovered.dead_letter {
            warn!(
                lease = letter.outcome.lease_id,
                url = %letter.outcome.url,
                reason = %letter.reason,
                replaced = letter.replaced,
                "outcome dead-lettered: the dispatcher kept refusing it"
            );
            Counters::add(&self.worker.counters.outcomes_dead_lettered, 1);
        }
        if !recovered.outcomes.is_empty() {
            debug!(
                outcomes = recovered.outcomes.len(),
                "outcomes kept for the next session"
            );
            self.inbox.undelivered(recovered.outcomes.len());
            self.outcomes.restore(recovered.outcomes);
        }
    }
}

/// Whether a session that broke with `code` was ended by its dispatcher refusing what it was
/// sent, rather than by the dispatcher or the network going away.
fn is_refusal(code: Code) -> bool {
    !matches!(
        code,
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
    )
}

/// Waits until a batch of outcomes may go and the transport has room for it. Cancel-safe:
/// outcomes received meanwhile stay in the queue.
async fn batch_room<'a>(
    outcomes: &mut OutcomeQueue,
    policy: BatchPolicy,
    outbound: &'a mpsc::Sender<WorkerMessage>,
) -> Result<mpsc::Permit<'a, WorkerMessage>, mpsc::error::SendError<()>> {
    outcomes.ready(policy).await;
    outbound.reserve().await
}

/// Waits (briefly) for the dispatcher to close a session whose stream of outcomes ended: it
/// does so once it has read them all. Says whether assignments were still on the way: those
/// cannot be handed back any more and return to the frontier when their leases expire.
async fn closing_grace(inbound: &mut Streaming<WorkMessage>) {
    let mut late = 0usize;
    let watch = async {
        while let Ok(Some(received)) = inbound.message().await {
            if let Some(Inbound::Assignments(batch)) = received.message {
                late += batch.assignments.len();
            }
        }
    };
    let _ = tokio::time::timeout(CLOSING_GRACE, watch).await;
    if late > 0 {
        warn!(
            assignments = late,
            "assignments arrived after the last outcomes: they return when their leases expire"
        );
    }
}

pub(crate) fn message(message: Outbound) -> WorkerMessage {
    WorkerMessage {
        message: Some(message),
    }
}

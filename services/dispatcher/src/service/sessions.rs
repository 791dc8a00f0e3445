//! The scrapers' open work sessions: where assignments go, and how many each can take.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use owlmesh_mesh::ownership::HostOwners;
use owlmesh_proto::v1::work_message::Message;
use owlmesh_proto::v1::{
    Assignment, AssignmentBatch, JobDefinition, JobSpec, Outcome, OutcomesRecorded, WorkMessage,
};
use tokio::sync::{Notify, mpsc};
use tonic::Status;

/// Messages queued to one scraper at most before sending waits.
pub(crate) const SESSION_BUFFER: usize = 64;

/// One scraper's open `Work` stream.
pub(crate) struct Session {
    pub(crate) scraper_id: String,
    connection: u64,
    /// The only sender of the stream to the scraper: taking it ends the stream once what
    /// was queued has gone out, so the scraper sees the session end and opens a new one
    /// (with whichever dispatcher is primary then). Tasks that hold the session do not keep
    /// the stream open.
    sender: Mutex<Option<mpsc::Sender<Result<WorkMessage, Status>>>>,
    free_slots: AtomicI64,
    /// Slots the scraper offered when the session opened.
    slots: i64,
    /// The frontier version at which a claim for this session last came back empty, and
    /// when: see [`Session::worth_claiming`].
    came_up_empty: Mutex<Option<(u64, Instant)>>,
    /// Whether work may be claimed for it: not before the leases the scraper no longer holds
    /// are back in the frontier (see `reconcile` in `rpc.rs`).
    ready: AtomicBool,
    /// Outcomes of this session recorded in the frontier so far.
    recorded: AtomicU64,
    jobs_sent: Mutex<HashSet<String>>,
}

/// An outcome on its way to the frontier, with the session that carried it (to be told once
/// it is recorded).
pub(crate) struct Delivered {
    pub(crate) outcome: Outcome,
    pub(crate) session: Arc<Session>,
}

impl Session {
    /// Slots the scraper has free now; none until the session is ready.
    pub(crate) fn free_slots(&self) -> usize {
        if !self.ready.load(Ordering::Acquire) {
            return 0;
        }
        self.free_slots.load(Ordering::Relaxed).max(0) as usize
    }

    /// How many assignments to claim for this session now, if any: its free slots, once
    /// they are worth a claim. A claim is a database transaction whatever its size, so
    /// while the scraper still holds plenty of work its freed slots are gathered into
    /// claims of `batch` (or a quarter of its slots); once it runs low it gets whatever it
    /// has room for. A session whose last claim found nothing is skipped until the
    /// frontier changed (`version`) or [`EMPTY_CLAIM_PAUSE`] passed, for URLs coming due.
    pub(crate) fn worth_claiming(&self, batch: usize, version: u64) -> usize {
        let free = self.free_slots();
        if free == 0 {
            return 0;
        }
        let enough = batch.min((self.slots / 4).max(1) as usize);
        let held = (self.slots.max(0) as usize).saturating_sub(free);
        if free < enough && held >= enough {
            return 0;
        }
        let empty = *self.came_up_empty.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at_version, since)) = empty
            && at_version == version
            && since.elapsed() < EMPTY_CLAIM_PAUSE
        {
            return 0;
        }
        free.min(batch)
    }

    /// Records whether the claim made for this session at frontier `version` found work.
    pub(crate) fn claimed(&self, found: bool, version: u64) {
        let mut empty = self.came_up_empty.lock().unwrap_or_else(|p| p.into_inner());
        *empty = (!found).then(|| (version, Instant::now()));
    }

    /// Work may be claimed for this session from now on.
    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Whether the stream to the scraper was ended.
    pub(crate) fn is_ended(&self) -> bool {
        self.sender
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    /// The scraper freed `count` slots (it reported outcomes or offered more).
    pub(crate) fn add_slots(&self, count: u32) {
        self.free_slots
            .fetch_add(i64::from(count), Ordering::Relaxed);
    }

    /// Sends assignments, preceded by the definitions of jobs this session has not seen.
    pub(crate) async fn assign(
        &self,
        assignments: Vec<Assignment>,
        spec_of: impl Fn(&str) -> Option<JobSpec>,
    ) -> Result<(), Status> {
        self.free_slots
            .fetch_sub(assignments.len() as i64, Ordering::Relaxed);
        let new_jobs: Vec<String> = {
            let mut sent = self.jobs_sent.lock().unwrap_or_else(|p| p.into_inner());
            let mut new_jobs = Vec::new();
            for assignment in &assignments {
                if sent.insert(assignment.job_id.clone()) {
                    new_jobs.push(assignment.job_id.clone());
                }
            }
            new_jobs
        };
        for job_id in new_jobs {
            let spec = spec_of(&job_id);
            let message = Message::Job(JobDefinition { job_id, spec });
            self.send(message).await?;
        }
        self.send(Message::Assignments(AssignmentBatch { assignments }))
            .await
    }

    async fn send(&self, message: Message) -> Result<(), Status> {
        let closed = || Status::unavailable("work session closed");
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(closed)?;
        let message = WorkMessage {
            message: Some(message),
        };
        sender.send(Ok(message)).await.map_err(|_| closed())
    }

    /// `count` more of this session's outcomes are recorded: tells the scraper how many are
    /// now, so it can forget them. Never waits: when the stream's buffer is full the news is
    /// dropped, and the next count (a running total) carries it.
    pub(crate) fn recorded(&self, count: u64) {
        let total = self.recorded.fetch_add(count, Ordering::Relaxed) + count;
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(sender) = sender {
            let message = Message::Recorded(OutcomesRecorded { count: total });
            let _ = sender.try_send(Ok(WorkMessage {
                message: Some(message),
            }));
        }
    }

    /// Ends the stream to the scraper: nothing more is sent (a send under way may still go
    /// out); the scraper's own stream is still read until it ends it.
    pub(crate) fn end(&self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// How long a session whose claim found nothing waits for another, unless the frontier
/// changed: long enough that scrapers owning no host with work cost nothing, short enough
/// that URLs coming due after a back-off are not held up.
pub(crate) const EMPTY_CLAIM_PAUSE: Duration = Duration::from_millis(200);

/// Every open session, by scraper id.
#[derive(Default)]
pub(crate) struct Sessions {
    open: RwLock<HashMap<String, Arc<Session>>>,
    connections: AtomicU64,
    /// Woken when work may be dispatched: slots freed, sessions opened, URLs added.
    pub(crate) wake: Notify,
    /// Bumped (under the write lock) whenever sessions open or close.
    membership: AtomicU64,
    /// The ring of the open sessions, and the membership it was built for.
    ring: Mutex<Option<(u64, Arc<HostOwners>)>>,
    /// Bumped whenever the frontier may hold new work (URLs added or put back, jobs
    /// resumed), so that sessions whose claims came up empty are tried again.
    version: AtomicU64,
}

impl Sessions {
    /// The frontier may hold new work: bumps the version and wakes the dispatch loop.
    pub(crate) fn work_changed(&self) {
        self.version.fetch_add(1, Ordering::Release);
        self.wake.notify_one();
    }

    /// The frontier version, for [`Session::worth_claiming`].
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Registers a new session (replacing an older one of the same scraper); it takes work
    /// at once when `ready`, else once [`Session::set_ready`] is called.
    pub(crate) fn open(
        &self,
        scraper_id: &str,
        slots: u32,
        sender: mpsc::Sender<Result<WorkMessage, Status>>,
        ready: bool,
    ) -> Arc<Session> {
        let session = Arc::new(Session {
            scraper_id: scraper_id.to_owned(),
            connection: self.connections.fetch_add(1, Ordering::Relaxed),
            sender: Mutex::new(Some(sender)),
            free_slots: AtomicI64::new(i64::from(slots)),
            slots: i64::from(slots),
            came_up_empty: Mutex::new(None),
            ready: AtomicBool::new(ready),
            recorded: AtomicU64::new(0),
            jobs_sent: Mutex::default(),
        });
        self.write().insert(scraper_id.to_owned(), session.clone());
        self.wake.notify_one();
        session
    }

    /// Ends a session and forgets it, unless a newer one of the same scraper replaced it.
    pub(crate) fn close(&self, session: &Session) {
        session.end();
        let mut open = self.write();
        if open
            .get(&session.scraper_id)
            .is_some_and(|current| current.connection == session.connection)
        {
            open.remove(&session.scraper_id);
        }
    }

    /// Ends and forgets the open session of this scraper, if any (it is opening a new one).
    pub(crate) fn close_scraper(&self, scraper_id: &str) {
        if let Some(session) = self.write().remove(scraper_id) {
            session.end();
        }
    }

    /// Ends every session (this dispatcher stopped being primary): the scrapers move to the
    /// new primary.
    pub(crate) fn close_all(&self) {
        for (_, session) in self.write().drain() {
            session.end();
        }
    }

    /// The open sessions now.
    pub(crate) fn snapshot(&self) -> Vec<Arc<Session>> {
        self.read().values().cloned().collect()
    }

    /// How many sessions are open.
    pub(crate) fn len(&self) -> usize {
        self.read().len()
    }

    /// Who owns which host among the scrapers with an open session (see
    /// [`owlmesh_mesh::ownership`] for how that relates to the directory's `Route`). Built again only
    /// when the sessions changed, not on every dispatch round.
    pub(crate) fn host_owners(&self) -> Arc<HostOwners> {
        let open = self.read();
        // Stable while the read lock is held: writers bump it under the write lock.
        let membership = self.membership.load(Ordering::Acquire);
        let mut cached = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        match &*cached {
            Some((built_for, ring)) if *built_for == membership => ring.clone(),
            _ => {
                let ring = Arc::new(HostOwners::new(open.keys().cloned()));
                *cached = Some((membership, ring.clone()));
                ring
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Session>>> {
        self.open.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Session>>> {
        let open = self.open.write().unwrap_or_else(|p| p.into_inner());
        self.membership.fetch_add(1, Ordering::AcqRel);
        open
    }
}

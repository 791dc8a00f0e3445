//! The dispatch loop (claim URLs for each scraper's hosts, send them down its session) and
//! upkeep (lease expiry, scrapers that left, due recrawls). Only the primary does either.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use owlmesh_proto::v1::{Assignment, OutcomeStatus};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Dispatcher;
use super::sessions::Session;
use super::trace;
use crate::frontier::{ClaimRequest, Claimed, HostFilter, now_ms};
use owlmesh_mesh::ownership::HostOwners;

/// How long the loop sleeps when nothing woke it.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// Hands out work while this dispatcher is primary.
pub(crate) async fn dispatch_loop(dispatcher: Arc<Dispatcher>, shutdown: CancellationToken) {
    let mut leadership = dispatcher.dispatchers.subscribe();
    loop {
        let was_primary = dispatcher.is_primary();
        let primary = dispatcher.refresh_primary();
        if primary != was_primary {
            if primary {
                info!("this dispatcher is now primary");
            } else {
                info!(primary = ?dispatcher.primary_id(), "standing by");
                dispatcher.sessions.close_all();
            }
        }
        let dispatched = primary && dispatch_round(&dispatcher).await;
        if dispatched {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = dispatcher.sessions.wake.notified() => {}
            _ = leadership.changed() => {}
            _ = tokio::time::sleep(IDLE_POLL) => {}
        }
    }
}

/// Claims work for every session with free slots; returns whether anything was sent.
async fn dispatch_round(dispatcher: &Dispatcher) -> bool {
    let sessions = dispatcher.sessions.snapshot();
    if sessions.is_empty() {
        return false;
    }
    let owners = dispatcher.sessions.host_owners();
    let mut dispatched = false;
    for session in sessions {
        let version = dispatcher.sessions.version();
        let limit = session.worth_claiming(dispatcher.config.claim_batch, version);
        if limit > 0 {
            let found = dispatch_to(dispatcher, &owners, &session, limit).await;
            session.claimed(found, version);
            dispatched |= found;
        }
    }
    dispatched
}

async fn dispatch_to(
    dispatcher: &Dispatcher,
    owners: &HostOwners,
    session: &Session,
    limit: usize,
) -> bool {
    let owner = session.scraper_id.as_str();
    let owns = |host: &str| owners.owner_of(host) == Some(owner);
    let request = ClaimRequest {
        limit,
        per_host: None,
        hosts: HostFilter::Owned(&owns),
        owner,
        now_ms: now_ms(),
        lease_ms: dispatcher.config.lease.as_millis() as i64,
    };
    let claim_started = std::time::Instant::now();
    let claimed = match dispatcher.frontier.claim(&request).await {
        Ok(claimed) if !claimed.is_empty() => claimed,
        Ok(_) => return false,
        Err(error) => {
            warn!(%error, "claim failed");
            return false;
        }
    };
    let job_ids: BTreeSet<&str> = claimed.iter().map(|c| c.job_id.as_str()).collect();
    for job_id in job_ids {
        if let Err(error) = dispatcher.jobs.get(&dispatcher.frontier, job_id).await {
            warn!(job_id, %error, "cannot load job spec");
        }
    }
    let mut assignments: Vec<Assignment> = claimed.iter().map(|c| c.to_assignment()).collect();
    let _spans = trace::dispatch_spans(&claimed, &mut assignments, owner, claim_started.elapsed());
    let count = assignments.len();
    let spec_of = |job_id: &str| dispatcher.jobs.cached(job_id).map(|job| job.spec.clone());
    if let Err(error) = session.assign(assignments, spec_of).await {
        // The session closed under us: give the URLs back at once rather than after the lease.
        warn!(scraper = owner, %error, "assignment not delivered: requeueing");
        let lease_ids: Vec<u64> = claimed.iter().map(|c| c.lease_id).collect();
        let _ = dispatcher
            .frontier
            .requeue_leases(&lease_ids, now_ms())
            .await;
        dispatcher.sessions.close(session);
        return false;
    }
    dispatcher
        .counters
        .assigned
        .fetch_add(count as u64, Ordering::Relaxed);
    report_assigned(dispatcher, owner, &claimed).await;
    true
}

/// One "assigned" event per job and batch (not per URL: the outcome events name each URL).
async fn report_assigned(dispatcher: &Dispatcher, scraper: &str, claimed: &[Claimed]) {
    let mut per_job: HashMap<&str, usize> = HashMap::new();
    for claim in claimed {
        *per_job.entry(claim.job_id.as_str()).or_default() += 1;
    }
    for (job_id, count) in per_job {
        let attributes = HashMap::from([
            ("scraper".to_owned(), scraper.to_owned()),
            ("count".to_owned(), count.to_string()),
        ]);
        let message = format!("{count} URLs assigned to {scraper}");
        dispatcher
            .events
            .emit("assigned", job_id, "", message, attributes)
            .await;
    }
}

/// Expires leases, releases the leases of scrapers that left, and starts due recrawls.
pub(crate) async fn upkeep_loop(dispatcher: Arc<Dispatcher>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(dispatcher.config.maintenance_interval);
    let mut scrapers = dispatcher.scrapers.subscribe();
    let mut known: BTreeSet<String> = BTreeSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
            _ = scrapers.changed() => {}
        }
        let view = dispatcher.scrapers.view();
        let live: BTreeSet<String> = view.instances.iter().map(|i| i.id.clone()).collect();
        let left: Vec<String> = known.difference(&live).cloned().collect();
        if view.synced {
            known = live;
        }
        if !dispatcher.is_primary() {
            continue;
        }
        for scraper_id in left {
            // Back already (restarted under the same id): the hello of its new session
            // reconciled its leases, and releasing them now would take back what that
            // session was just given.
            if dispatcher.scrapers.view().get(&scraper_id).is_some() {
                continue;
            }
            release_scraper(&dispatcher, &scraper_id).await;
        }
        expire_leases(&dispatcher).await;
        start_due_epochs(&dispatcher).await;
    }
}

async fn release_scraper(dispatcher: &Dispatcher, scraper_id: &str) {
    for session in dispatcher.sessions.snapshot() {
        if session.scraper_id == scraper_id {
            dispatcher.sessions.close(&session);
        }
    }
    match dispatcher
        .frontier
        .release_owner(scraper_id, now_ms())
        .await
    {
        Ok(released) => {
            info!(
                scraper = scraper_id,
                released, "scraper left: its leases are back in the frontier"
            );
            dispatcher
                .counters
                .leases_released
                .fetch_add(released, Ordering::Relaxed);
            dispatcher.sessions.work_changed();
        }
        Err(error) => warn!(scraper = scraper_id, %error, "cannot release leases"),
    }
}

/// Ends expired leases. A URL whose retries they spend fails for good, and is reported as
/// a failed outcome like any other failure: no scraper will ever report on it.
async fn expire_leases(dispatcher: &Dispatcher) {
    let expired = match dispatcher.frontier.expire_leases(now_ms()).await {
        Ok(expired) if expired.returned == 0 => return,
        Ok(expired) => expired,
        Err(error) => {
            warn!(%error, "lease expiry failed");
            return;
        }
    };
    info!(
        expired = expired.returned,
        failed = expired.failed.len(),
        "leases expired: URLs back in the frontier"
    );
    let counters = &dispatcher.counters;
    counters
        .leases_expired
        .fetch_add(expired.returned, Ordering::Relaxed);
    counters
        .failed
        .fetch_add(expired.failed.len() as u64, Ordering::Relaxed);
    dispatcher.sessions.work_changed();
    for failed in expired.failed {
        let attributes = HashMap::from([(
            "status".to_owned(),
            OutcomeStatus::Failed.as_str_name().to_owned(),
        )]);
        dispatcher
            .events
            .emit(
                "outcome",
                &failed.job_id,
                &failed.url,
                failed.reason,
                attributes,
            )
            .await;
    }
}

async fn start_due_epochs(dispatcher: &Dispatcher) {
    let started = match dispatcher.frontier.start_due_epochs(now_ms()).await {
        Ok(started) => started,
        Err(error) => {
            warn!(%error, "recrawl check failed");
            return;
        }
    };
    for epoch in started {
        info!(job = %epoch.job_id, epoch = epoch.epoch, requeued = epoch.requeued, "recrawl started");
        let attributes = HashMap::from([
            ("epoch".to_owned(), epoch.epoch.to_string()),
            ("requeued".to_owned(), epoch.requeued.to_string()),
        ]);
        let message = format!("epoch {} started", epoch.epoch);
        dispatcher
            .events
            .emit("epoch_started", &epoch.job_id, "", message, attributes)
            .await;
        dispatcher.sessions.work_changed();
    }
}

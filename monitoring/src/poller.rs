//! The poll loop: once per interval, every instance the directory lists (and the
//! directories themselves) is asked for its `GetStats`, all at once and each with a short
//! timeout, the primary dispatcher for its jobs and a directory for the latest loads; the
//! answers become the next picture.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::future::join_all;
use owlmesh_mesh::api;
use owlmesh_mesh::auth::MeshChannel;
use owlmesh_mesh::client::{ChannelOptions, MembershipView, MembershipWatcher, connect_lazy};
use owlmesh_mesh::clock::unix_ms;
use owlmesh_proto::v1::{GetStatsRequest, Instance, Job, ListJobsRequest, ListRequest, Stats};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::dashboard::Dashboard;
use crate::members::{DIRECTORY_KIND, MemberKey, Target};
use crate::picture::PollRound;

/// Polls the mesh into the dashboard's picture.
pub(crate) struct Poller {
    dashboard: Arc<Dashboard>,
    members: MembershipWatcher,
    directories: Vec<String>,
    interval: Duration,
    timeout: Duration,
    channels: HashMap<String, MeshChannel>,
    primary: watch::Sender<Option<String>>,
}

/// What one round learnt.
struct Answers {
    /// Each target's stats, in the targets' order, or why it gave none.
    stats: Vec<Result<Stats, String>>,
    /// The primary dispatcher's jobs, if it answered.
    jobs: Option<Vec<Job>>,
    /// Every registered instance with its latest load, if a directory answered.
    listed: Option<Vec<Instance>>,
}

/// Where [`Poller`] looks and how patiently.
pub(crate) struct PollerConfig {
    /// The directories' addresses, polled too.
    pub(crate) directories: Vec<String>,
    /// Time between rounds.
    pub(crate) interval: Duration,
    /// Time allowed for each answer.
    pub(crate) timeout: Duration,
}

impl Poller {
    /// A poller that publishes the primary dispatcher's address on `primary`.
    pub(crate) fn new(
        dashboard: Arc<Dashboard>,
        members: MembershipWatcher,
        config: PollerConfig,
        primary: watch::Sender<Option<String>>,
    ) -> Self {
        Self {
            dashboard,
            members,
            directories: config.directories,
            interval: config.interval,
            timeout: config.timeout,
            channels: HashMap::new(),
            primary,
        }
    }

    /// Polls once per interval until `shutdown`.
    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.interval);
        // A slow round pushes the next one back rather than bunching rounds up.
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => self.round().await,
            }
        }
    }

    /// One round: ask everyone, publish the picture, follow the primary.
    async fn round(&mut self) {
        let started = Instant::now();
        let view = self.members.view();
        let mut targets = targets(&view, &self.directories);
        let answers = self.ask(&targets).await;
        self.count(&answers.stats, started);
        refresh_loads(&mut targets, answers.listed);
        let round = PollRound {
            at_ms: unix_ms(),
            synced: view.synced,
            answers: targets.into_iter().zip(answers.stats).collect(),
            jobs: answers.jobs,
        };
        let primary = self.dashboard.apply(round);
        self.forget_channels(&view, primary.as_deref());
        self.primary.send_if_modified(|current| {
            let changed = *current != primary;
            *current = primary;
            changed
        });
    }

    /// Asks everything of one round at once: every target for its stats, the previous
    /// round's primary for its jobs, and a directory for the latest loads.
    async fn ask(&mut self, targets: &[Target]) -> Answers {
        let polls: Vec<_> = targets
            .iter()
            .map(|target| get_stats(self.channel(&target.address), self.timeout))
            .collect();
        let primary = self.primary.borrow().clone();
        let jobs_channel = primary.and_then(|address| self.channel(&address));
        let addresses = self.directories.clone();
        let directories: Vec<MeshChannel> = addresses
            .iter()
            .filter_map(|address| self.channel(address))
            .collect();
        let (stats, jobs, listed) = tokio::join!(
            join_all(polls),
            list_jobs(jobs_channel, self.timeout),
            list_members(directories, self.timeout),
        );
        Answers {
            stats,
            jobs,
            listed,
        }
    }

    /// The pooled channel to `address`; `None` when the address cannot be dialled at all.
    fn channel(&mut self, address: &str) -> Option<MeshChannel> {
        if let Some(channel) = self.channels.get(address) {
            return Some(channel.clone());
        }
        let options = ChannelOptions {
            connect_timeout: self.timeout,
            request_timeout: None,
        };
        let channel = connect_lazy(address, &options).ok()?;
        self.channels.insert(address.to_owned(), channel.clone());
        Some(channel)
    }

    /// Drops the channels of instances no longer listed, so churn does not pile them up.
    fn forget_channels(&mut self, view: &MembershipView, primary: Option<&str>) {
        self.channels.retain(|address, _| {
            Some(address.as_str()) == primary
                || self.directories.contains(address)
                || view.instances.iter().any(|i| &i.address == address)
        });
    }

    fn count(&self, answers: &[Result<Stats, String>], started: Instant) {
        let counters = &self.dashboard.counters;
        let failures = answers.iter().filter(|answer| answer.is_err()).count();
        counters
            .polls
            .fetch_add(answers.len() as u64, Ordering::Relaxed);
        counters
            .poll_failures
            .fetch_add(failures as u64, Ordering::Relaxed);
        counters.round_seconds.record(started.elapsed());
    }
}

/// Everyone to poll: the listed instances, then the directories.
fn targets(view: &MembershipView, directories: &[String]) -> Vec<Target> {
    let listed = view.instances.iter().map(|instance| Target {
        key: MemberKey {
            kind: instance.kind.clone(),
            id: instance.id.clone(),
        },
        address: instance.address.clone(),
        instance: Some(instance.clone()),
    });
    let directories = directories.iter().map(|address| Target {
        key: MemberKey {
            kind: DIRECTORY_KIND.into(),
            id: address.clone(),
        },
        address: address.clone(),
        instance: None,
    });
    listed.chain(directories).collect()
}

/// Every live instance with the load of its latest heartbeat, from the first directory that
/// answers in time.
async fn list_members(directories: Vec<MeshChannel>, timeout: Duration) -> Option<Vec<Instance>> {
    let first_answer = async {
        for channel in directories {
            let request = ListRequest {
                kind: String::new(),
            };
            if let Ok(membership) = api::directory_client(channel).list(request).await {
                return Some(membership.into_inner().instances);
            }
        }
        None
    };
    tokio::time::timeout(timeout, first_answer)
        .await
        .ok()
        .flatten()
}

/// Gives the targets the loads `listed` reports. The watch's snapshots change only when
/// membership does, so the loads they carry are as old as the latest join or leave.
fn refresh_loads(targets: &mut [Target], listed: Option<Vec<Instance>>) {
    let Some(listed) = listed else { return };
    for instance in targets
        .iter_mut()
        .filter_map(|target| target.instance.as_mut())
    {
        let fresh = listed
            .iter()
            .find(|fresh| fresh.kind == instance.kind && fresh.id == instance.id);
        if let Some(fresh) = fresh {
            instance.load.clone_from(&fresh.load);
            instance.last_seen_ms = fresh.last_seen_ms;
        }
    }
}

/// Jobs asked for per `ListJobs` page: the most a dispatcher gives in one.
const JOBS_PAGE_SIZE: u32 = 1000;

/// The primary's jobs, every page of them, or `None` when there is no primary or it did not
/// answer them all in time (the picture then keeps the jobs it had).
async fn list_jobs(channel: Option<MeshChannel>, timeout: Duration) -> Option<Vec<Job>> {
    let mut client = api::dispatcher_client(channel?);
    let every_page = async {
        let mut jobs = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = ListJobsRequest {
                page_size: JOBS_PAGE_SIZE,
                page_token,
            };
            let page = client.list_jobs(request).await?.into_inner();
            jobs.extend(page.jobs);
            if page.next_page_token.is_empty() {
                return Ok::<_, tonic::Status>(jobs);
            }
            page_token = page.next_page_token;
        }
    };
    match tokio::time::timeout(timeout, every_page).await {
        Ok(Ok(jobs)) => Some(jobs),
        Ok(Err(status)) => {
            debug!(error = %status.message(), "listing jobs failed");
            None
        }
        Err(_) => None,
    }
}

/// One instance's stats, or why there are none.
async fn get_stats(channel: Option<MeshChannel>, timeout: Duration) -> Result<Stats, String> {
    let channel = channel.ok_or("the address cannot be dialled")?;
    let mut client = api::telemetry_client(channel);
    match tokio::time::timeout(timeout, client.get_stats(GetStatsRequest {})).await {
        Ok(Ok(stats)) => Ok(stats.into_inner()),
        Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

#[cfg(test)]
mod tests {
    use owlmesh_proto::v1::Load;

    use super::*;

    fn instance(id: &str, free_slots: u32) -> Instance {
        Instance {
            kind: "scraper".into(),
            id: id.into(),
            load: Some(Load {
                free_slots,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn loads_come_from_the_latest_listing() {
        let view = MembershipView::default();
        let mut targets = targets(&view, &["127.0.0.1:7700".into()]);
        targets.push(Target {
            key: MemberKey {
                kind: "scraper".into(),
                id: "s1".into(),
            },
            address: "127.0.0.1:7801".into(),
            instance: Some(instance("s1", 8)),
        });
        refresh_loads(
            &mut targets,
            Some(vec![instance("s1", 3), instance("s2", 1)]),
        );
        let load = targets[1].instance.as_ref().unwrap().load.as_ref().unwrap();
        assert_eq!(load.free_slots, 3);
        assert!(targets[0].instance.is_none(), "directories have no record");
        refresh_loads(&mut targets, None);
        let load = targets[1].instance.as_ref().unwrap().load.as_ref().unwrap();
        assert_eq!(load.free_slots, 3, "no listing keeps what was known");
    }
}

//! A live, locally cached view of one kind's members, fed by the directory's `Watch`.

use std::sync::Arc;
use std::time::Duration;

use owlmesh_proto::v1::{Instance, ListRequest, Membership};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tracing::{debug, warn};

use super::backoff::Backoff;
use super::channels::{ChannelOptions, connect_lazy};
use crate::api;
use crate::client::failover::sort_failover;
use crate::ring::HashRouter;

/// The members of one kind as last seen, with their hash ring.
#[derive(Debug, Clone, Default)]
pub struct MembershipView {
    /// The directory's membership version of this snapshot.
    pub version: u64,
    /// Live instances, ordered by id.
    pub instances: Vec<Instance>,
    /// Whether any directory has answered yet.
    pub synced: bool,
    router: HashRouter,
}

impl MembershipView {
    fn new(version: u64, mut instances: Vec<Instance>) -> Self {
        instances.sort_by(|a, b| a.id.cmp(&b.id));
        let router = HashRouter::new(instances.iter().map(|instance| instance.id.clone()));
        Self {
            version,
            instances,
            synced: true,
            router,
        }
    }

    /// The view after `snapshot` from the directory's `Watch`: the snapshot, or while the
    /// directory is recovering after a restart, the snapshot plus the members known before
    /// (they are still re-registering). Whatever a directory sends becomes a view; its fuzz
    /// target (`fuzz/fuzz_targets/membership.rs`) holds it to that.
    pub fn after(&self, snapshot: Membership) -> Self {
        let mut instances = snapshot.instances;
        if snapshot.recovering {
            for known in &self.instances {
                if !instances.iter().any(|instance| instance.id == known.id) {
                    instances.push(known.clone());
                }
            }
        }
        Self::new(snapshot.version, instances)
    }

    /// The instance that owns `key` on the ring, computed locally.
    pub fn route(&self, key: &str) -> Option<&Instance> {
        self.router.route(key).and_then(|id| self.get(id))
    }

    /// The id of the instance that owns `key`, computed locally.
    pub fn route_id(&self, key: &str) -> Option<&str> {
        self.router.route(key)
    }

    /// The instance with this id, if live.
    pub fn get(&self, id: &str) -> Option<&Instance> {
        self.instances
            .binary_search_by(|instance| instance.id.as_str().cmp(id))
            .ok()
            .map(|index| &self.instances[index])
    }

    /// Live instances in failover order: priority, then registration time.
    pub fn failover_order(&self) -> Vec<Instance> {
        let mut instances = self.instances.clone();
        sort_failover(&mut instances);
        instances
    }
}

/// Watches one kind's membership and keeps the latest view; cheap to clone.
#[derive(Clone)]
pub struct MembershipWatcher {
    view: watch::Receiver<Arc<MembershipView>>,
}

impl MembershipWatcher {
    /// Starts watching `kind` through the first directory that answers, moving to the next
    /// when it goes away. The view survives directory outages unchanged.
    pub fn start(directories: Vec<String>, kind: &str, shutdown: CancellationToken) -> Self {
        let (sender, view) = watch::channel(Arc::new(MembershipView::default()));
        tokio::spawn(follow(directories, kind.to_owned(), sender, shutdown));
        Self { view }
    }

    /// A watcher whose view never changes, for tests and fixed topologies.
    pub fn fixed(instances: Vec<Instance>) -> Self {
        let (_, view) = watch::channel(Arc::new(MembershipView::new(0, instances)));
        Self { view }
    }

    /// The latest view.
    pub fn view(&self) -> Arc<MembershipView> {
        self.view.borrow().clone()
    }

    /// A receiver that wakes on every new view.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MembershipView>> {
        self.view.clone()
    }

    /// Waits (up to `timeout`) for a view that satisfies `condition`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        condition: impl FnMut(&Arc<MembershipView>) -> bool,
    ) -> Option<Arc<MembershipView>> {
        let mut view = self.view.clone();
        let found = tokio::time::timeout(timeout, view.wait_for(condition)).await;
        found.ok()?.ok().map(|view| view.clone())
    }
}

async fn follow(
    directories: Vec<String>,
    kind: String,
    sender: watch::Sender<Arc<MembershipView>>,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    let mut warned = false;
    for directory in directories.iter().cycle() {
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return,
            outcome = watch_one(directory, &kind, &sender, &mut backoff) => outcome,
        };
        if let Err(status) = outcome {
            if !warned {
                warn!(%directory, %kind, error = %status.message(), "membership watch lost: keeping the last view");
            }
            warned = true;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

async fn watch_one(
    directory: &str,
    kind: &str,
    sender: &watch::Sender<Arc<MembershipView>>,
    backoff: &mut Backoff,
) -> Result<(), Status> {
    let channel = connect_lazy(directory, &ChannelOptions::default()).map_err(Status::from)?;
    let mut client = api::directory_client(channel);
    let request = ListRequest {
        kind: kind.to_owned(),
    };
    let mut snapshots = client.watch(request).await?.into_inner();
    while let Some(snapshot) = snapshots.message().await? {
        backoff.reset();
        let view = sender.borrow().after(snapshot);
        debug!(
            kind,
            version = view.version,
            members = view.instances.len(),
            "membership"
        );
        sender.send_replace(Arc::new(view));
    }
    Err(Status::unavailable("watch stream ended"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str) -> Instance {
        Instance {
            kind: "scraper".into(),
            id: id.into(),
            ..Default::default()
        }
    }

    #[test]
    fn recovering_snapshots_keep_known_members() {
        let before = MembershipView::new(7, vec![instance("a"), instance("b")]);
        let recovering = Membership {
            version: 1,
            instances: vec![instance("b")],
            recovering: true,
        };
        let ids: Vec<String> = before
            .after(recovering)
            .instances
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
        let whole = Membership {
            version: 2,
            instances: vec![instance("b")],
            recovering: false,
        };
        assert_eq!(before.after(whole).instances.len(), 1);
    }
}

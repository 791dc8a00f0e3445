//! Calls the first live instance of an ordered kind, moving down the list on failure.
//!
//! The order comes from the local membership view (priority, then registration time). When
//! an instance does not answer (UNAVAILABLE, a deadline, a connect timeout) the call moves to
//! the next one at once and the failed instance is marked suspect, so later calls skip it
//! without waiting for the directory to expire its lease.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::auth::MeshChannel;
use owlmesh_proto::v1::Instance;
use tonic::{Code, Status};
use tracing::warn;

use super::channels::{ChannelOptions, ChannelPool};
use super::membership::MembershipWatcher;

/// How long a failed instance is tried last, unless it answers again sooner.
pub const SUSPECT_PERIOD: Duration = Duration::from_secs(5);

/// Ordered-failover calls over one kind's members; cheap to clone.
#[derive(Clone)]
pub struct FailoverChannel {
    members: MembershipWatcher,
    pool: ChannelPool,
    suspects: Arc<Mutex<HashMap<String, Instant>>>,
}

impl FailoverChannel {
    /// Failover over `members`, with channels built from `options`.
    pub fn new(members: MembershipWatcher, options: ChannelOptions) -> Self {
        Self {
            members,
            pool: ChannelPool::new(options),
            suspects: Arc::default(),
        }
    }

    /// The members this channel follows.
    pub fn members(&self) -> &MembershipWatcher {
        &self.members
    }

    /// Instances in the order calls will try them: live ones in failover order, then the
    /// recently failed ones.
    pub fn candidates(&self) -> Vec<Instance> {
        let order = self.members.view().failover_order();
        let mut suspects = self.suspects.lock().unwrap_or_else(|p| p.into_inner());
        suspects.retain(|_, since| since.elapsed() < SUSPECT_PERIOD);
        let (suspect, healthy): (Vec<Instance>, Vec<Instance>) = order
            .into_iter()
            .partition(|instance| suspects.contains_key(&instance.id));
        healthy.into_iter().chain(suspect).collect()
    }

    /// Runs `call` against the first instance that answers. Errors other than "not there"
    /// (UNAVAILABLE, DEADLINE_EXCEEDED, a client-side timeout) are returned as they are.
    pub async fn call<T, F, Fut>(&self, mut call: F) -> Result<T, Status>
    where
        F: FnMut(MeshChannel, Instance) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut last_error = None;
        for instance in self.candidates() {
            let channel = self.pool.get(&instance.address).map_err(Status::from)?;
            let id = instance.id.clone();
            match call(channel, instance).await {
                Ok(answer) => {
                    self.set_suspect(&id, false);
                    return Ok(answer);
                }
                Err(status) if is_unreachable(&status) => {
                    warn!(instance = %id, error = %status.message(), "failing over to the next instance");
                    self.set_suspect(&id, true);
                    last_error = Some(status);
                }
                Err(status) => return Err(status),
            }
        }
        Err(last_error.unwrap_or_else(|| Status::unavailable("no live instance to call")))
    }

    fn set_suspect(&self, id: &str, suspect: bool) {
        let mut suspects = self.suspects.lock().unwrap_or_else(|p| p.into_inner());
        if suspect {
            suspects.insert(id.to_owned(), Instant::now());
        } else {
            suspects.remove(id);
        }
    }
}

/// Whether a call failed because the instance is not there (as opposed to refusing it).
pub fn is_unreachable(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled
    )
}

/// Sorts instances into failover order: priority, then registration time, then id. The
/// directory's `Resolve` and every client's local view use this one order.
pub fn sort_failover(instances: &mut [owlmesh_proto::v1::Instance]) {
    instances.sort_by(|a, b| {
        (a.priority, a.registered_at_ms, &a.id).cmp(&(b.priority, b.registered_at_ms, &b.id))
    });
}

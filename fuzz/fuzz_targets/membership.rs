//! Fuzz target `membership`: arbitrary bytes as a directory `Membership` message, as a
//! member's watcher receives one from `Watch`, decoded with prost and turned into the
//! mesh's view of that kind's members (`MembershipView::after`, with its hash ring), after a
//! view that already knows three members.
//!
//! Checks that decoding never panics and that a decoded message encodes back to itself;
//! and that the view keeps its promises whatever the directory sends: it has the snapshot's
//! version and every instance of it, plus the members known before while the directory is
//! recovering; its instances are ordered by id and found by their id; every key routes to
//! one of them whenever there is one; the failover order holds the same instances, by
//! priority, then registration time.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use owlmesh_mesh::client::MembershipView;
use owlmesh_proto::v1::{Instance, Membership};
use prost::Message;

/// The view before the fuzzed snapshot: three scrapers, among them the empty id.
static BEFORE: LazyLock<MembershipView> = LazyLock::new(|| {
    let instances = ["scraper-0", "scraper-1", ""]
        .into_iter()
        .map(|id| Instance {
            kind: "scraper".to_owned(),
            id: id.to_owned(),
            address: "127.0.0.1:7801".to_owned(),
            ..Instance::default()
        })
        .collect();
    MembershipView::default().after(Membership {
        version: 3,
        instances,
        recovering: false,
    })
});

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

    let view = BEFORE.after(membership.clone());
    assert_eq!(view.version, membership.version, "another version");
    assert!(view.synced, "a view from a snapshot is not synced");
    let known_before = if membership.recovering {
        BEFORE
            .instances
            .iter()
            .filter(|known| !membership.instances.iter().any(|new| new.id == known.id))
            .count()
    } else {
        0
    };
    assert_eq!(
        view.instances.len(),
        membership.instances.len() + known_before,
        "instances lost or invented"
    );
    assert!(
        view.instances
            .windows(2)
            .all(|pair| pair[0].id <= pair[1].id),
        "instances are not ordered by id"
    );
    if membership.recovering {
        for known in &BEFORE.instances {
            assert!(
                view.get(&known.id).is_some(),
                "{:?} is dropped while the directory recovers",
                known.id
            );
        }
    }
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

//! The storage suite, written once and run against every backend: SQLite always, PostgreSQL
//! when `OWLMESH_TEST_POSTGRES_URL` is set (each test in a fresh schema).

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{batch, document, event, page, pages};
use owlmesh_archiver::item::FieldJson;
use owlmesh_archiver::store::{
    ArchiveStore, DocumentQuery, EventQuery, ItemQuery, PageToken, StoredBatch,
};

/// Generates one test per backend for each suite function.
macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $test() {
                crate::common::with_sqlite(super::$test).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $test() {
                crate::common::with_postgres(super::$test).await;
            })*
        }
    };
}

suite!(
    same_page_twice_is_stored_once,
    batches_stored_together_each_learn_their_own_new_pages,
    new_epoch_is_stored_again_and_change_is_recorded,
    several_epochs_in_one_batch_are_compared_in_order,
    events_are_deduplicated_by_id,
    retention_purges_old_events_but_keeps_items,
    paging_returns_every_item_exactly_once,
    handler_filter_returns_only_that_handler,
    pages_without_handler_are_stored_but_not_items,
    fields_round_trip_as_texts_and_lists,
    documents_are_unique_per_job_and_paged,
    events_filter_by_job_kind_and_time,
    large_batches_span_several_statements,
    snapshot_bound_hides_later_items,
    concurrent_overlapping_batches_store_each_page_once,
);

async fn all_items(
    store: &ArchiveStore,
    job_id: &str,
    handler: Option<&str>,
    limit: u32,
) -> Vec<String> {
    let mut urls = Vec::new();
    let mut after = None;
    loop {
        let query = ItemQuery {
            job_id: job_id.into(),
            handler: handler.map(String::from),
            after,
            limit,
            up_to: None,
        };
        let page = store.items(&query).await.unwrap();
        assert!(page.rows.len() <= limit as usize);
        urls.extend(page.rows.into_iter().map(|item| item.url));
        match page.next {
            Some(next) => after = Some(next),
            None => return urls,
        }
    }
}

async fn same_page_twice_is_stored_once(store: ArchiveStore) {
    let first = batch(
        1,
        vec![page("job", "https://a.example/1", 1, "article")],
        vec![],
    );
    let stored = store.store_batch(&first).await.unwrap();
    assert_eq!((stored.stored, stored.duplicates), (1, 0));
    assert_eq!(stored.new_pages, vec![0]);

    let again = store.store_batch(&first).await.unwrap();
    assert_eq!(
        again,
        StoredBatch {
            stored: 0,
            duplicates: 1,
            events_stored: 0,
            new_pages: vec![]
        }
    );

    let repeated = batch(
        2,
        vec![
            page("job", "https://a.example/2", 1, "article"),
            page("job", "https://a.example/2", 1, "article"),
            page("job", "https://a.example/1", 1, "article"),
        ],
        vec![],
    );
    let stored = store.store_batch(&repeated).await.unwrap();
    assert_eq!((stored.stored, stored.duplicates), (1, 2));
    assert_eq!(stored.new_pages, vec![0]);
    assert_eq!(all_items(&store, "job", None, 10).await.len(), 2);
}

async fn batches_stored_together_each_learn_their_own_new_pages(store: ArchiveStore) {
    let known = batch(
        1,
        vec![page("job", "https://a.example/0", 1, "article")],
        vec![],
    );
    store.store_batch(&known).await.unwrap();
    let first = batch(
        2,
        vec![
            page("job", "https://a.example/2", 1, "article"),
            page("job", "https://a.example/0", 1, "article"),
        ],
        vec![event("e1", "outcome", "job", 1)],
    );
    let second = batch(
        3,
        vec![
            page("job", "https://a.example/2", 1, "article"),
            page("job", "https://a.example/1", 1, "article"),
        ],
        vec![
            event("e1", "outcome", "job", 1),
            event("e2", "outcome", "job", 2),
        ],
    );
    let group = store.store_batches(&[&first, &second]).await.unwrap();
    let seen: Vec<_> = group
        .batches
        .iter()
        .map(|stored| (stored.stored, stored.duplicates, stored.new_pages.clone()))
        .collect();
    // The page both carry is the first batch's; the one stored before is nobody's.
    assert_eq!(seen, [(1, 1, vec![0]), (1, 1, vec![1])]);
    // In the archive's order: sorted by key, so /1 (second batch) before /2 (first batch).
    assert_eq!(group.new_pages, [(1, 1), (0, 0)]);
    assert_eq!(group.events_stored, 2);
    assert_eq!(all_items(&store, "job", None, 10).await.len(), 3);
}

async fn new_epoch_is_stored_again_and_change_is_recorded(store: ArchiveStore) {
    let url = "https://a.example/page";
    let version = |epoch: u64, hash: &str| {
        let mut page = page("job", url, epoch, "article");
        page.content_hash = hash.into();
        batch(epoch, vec![page], vec![])
    };
    for (epoch, hash) in [(1, "h1"), (2, "h1"), (3, "h2")] {
        let stored = store.store_batch(&version(epoch, hash)).await.unwrap();
        assert_eq!((stored.stored, stored.duplicates), (1, 0), "epoch {epoch}");
    }
    let stored = store.store_batch(&version(3, "h2")).await.unwrap();
    assert_eq!((stored.stored, stored.duplicates), (0, 1));

    let versions = store.page_versions("job", url).await.unwrap();
    let seen: Vec<_> = versions
        .iter()
        .map(|version| {
            (
                version.epoch,
                version.content_hash.as_str(),
                version.changed,
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (1, "h1", Some(true)),
            (2, "h1", Some(false)),
            (3, "h2", Some(true))
        ]
    );
    assert_eq!(all_items(&store, "job", None, 10).await.len(), 3);
}

async fn several_epochs_in_one_batch_are_compared_in_order(store: ArchiveStore) {
    let url = "https://a.example/page";
    let versions = [(2, "same"), (1, "same"), (3, "other")].map(|(epoch, hash)| {
        let mut page = page("job", url, epoch, "article");
        page.content_hash = hash.into();
        page
    });
    store
        .store_batch(&batch(1, versions.to_vec(), vec![]))
        .await
        .unwrap();
    let changed: Vec<_> = store
        .page_versions("job", url)
        .await
        .unwrap()
        .into_iter()
        .map(|version| (version.epoch, version.changed))
        .collect();
    assert_eq!(
        changed,
        vec![(1, Some(true)), (2, Some(false)), (3, Some(true))]
    );
}

async fn events_are_deduplicated_by_id(store: ArchiveStore) {
    let events = vec![
        event("e1", "assigned", "job", 1_000),
        event("e2", "outcome", "job", 2_000),
        event("e1", "assigned", "job", 1_000),
    ];
    let stored = store.store_batch(&batch(1, vec![], events)).await.unwrap();
    assert_eq!(stored.events_stored, 2);
    let again = vec![
        event("e2", "outcome", "job", 2_000),
        event("e3", "outcome", "job", 3_000),
    ];
    let stored = store.store_batch(&batch(2, vec![], again)).await.unwrap();
    assert_eq!(stored.events_stored, 1);

    let page = store.events(&EventQuery::default()).await.unwrap();
    let ids: Vec<_> = page.rows.iter().map(|event| event.id.as_str()).collect();
    assert_eq!(ids, ["e1", "e2", "e3"]);
    assert_eq!(
        page.rows[0].attributes.get("reason").map(String::as_str),
        Some("test")
    );
    assert_eq!(page.rows[0].source, "scraper/1");
}

async fn retention_purges_old_events_but_keeps_items(store: ArchiveStore) {
    let now = owlmesh_archiver::item::now_ms();
    let day = 24 * 60 * 60 * 1000;
    let events = vec![
        event("old-1", "outcome", "job", now - 3 * day),
        event("old-2", "outcome", "job", now - 2 * day),
        event("fresh", "outcome", "job", now - 1000),
    ];
    let items = pages("job", 0, 3, "article");
    store.store_batch(&batch(1, items, events)).await.unwrap();

    let purged = store
        .purge_events_older_than(Duration::from_secs(24 * 60 * 60))
        .await
        .unwrap();
    assert_eq!(purged, 2);
    let left = store.events(&EventQuery::default()).await.unwrap();
    let ids: Vec<_> = left.rows.iter().map(|event| event.id.as_str()).collect();
    assert_eq!(ids, ["fresh"]);
    assert_eq!(all_items(&store, "job", None, 10).await.len(), 3);
    assert_eq!(store.purge_events_before(now - 3 * day).await.unwrap(), 0);
}

async fn paging_returns_every_item_exactly_once(store: ArchiveStore) {
    for (number, first) in (0..250).step_by(50).enumerate() {
        let batch = batch(number as u64, pages("job", first, 50, "article"), vec![]);
        store.store_batch(&batch).await.unwrap();
    }
    store
        .store_batch(&batch(99, pages("other-job", 0, 20, "article"), vec![]))
        .await
        .unwrap();
    for limit in [1, 7, 100, 250, 1000] {
        let urls = all_items(&store, "job", None, limit).await;
        let unique: HashSet<_> = urls.iter().collect();
        assert_eq!(urls.len(), 250, "limit {limit}");
        assert_eq!(unique.len(), 250, "limit {limit}");
    }
    let page = store
        .items(&ItemQuery {
            job_id: "job".into(),
            limit: 250,
            ..ItemQuery::default()
        })
        .await
        .unwrap();
    assert_eq!((page.rows.len(), page.next), (250, None));
    let default_page = store
        .items(&ItemQuery {
            job_id: "job".into(),
            ..ItemQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(default_page.rows.len(), 100);
    assert!(default_page.next.is_some());
}

async fn handler_filter_returns_only_that_handler(store: ArchiveStore) {
    let mut mixed = pages("job", 0, 10, "article");
    mixed.extend(pages("job", 10, 5, "listing"));
    mixed.extend(pages("job", 15, 10, "article"));
    store.store_batch(&batch(1, mixed, vec![])).await.unwrap();
    let listings = all_items(&store, "job", Some("listing"), 2).await;
    let expected: Vec<_> = (10..15)
        .map(|n| format!("https://site.example/{n}"))
        .collect();
    assert_eq!(listings, expected);
    assert_eq!(all_items(&store, "job", Some("article"), 3).await.len(), 20);
    assert!(
        all_items(&store, "job", Some("missing"), 3)
            .await
            .is_empty()
    );
}

async fn pages_without_handler_are_stored_but_not_items(store: ArchiveStore) {
    let mut plain = page("job", "https://a.example/plain", 1, "");
    plain.fields.clear();
    let stored = store
        .store_batch(&batch(
            1,
            vec![plain.clone(), page("job", "https://a.example/x", 1, "h")],
            vec![],
        ))
        .await
        .unwrap();
    assert_eq!(stored.stored, 2);
    assert_eq!(
        all_items(&store, "job", None, 10).await,
        ["https://a.example/x"]
    );
    let stored = store
        .store_batch(&batch(2, vec![plain], vec![]))
        .await
        .unwrap();
    assert_eq!(stored.duplicates, 1);
    let versions = store
        .page_versions("job", "https://a.example/plain")
        .await
        .unwrap();
    assert_eq!(versions.len(), 1);
}

async fn fields_round_trip_as_texts_and_lists(store: ArchiveStore) {
    let mut item = page("job", "https://a.example/1", 7, "article");
    item.fields
        .insert("quote".into(), common::text("say \"hi\" | ünïcode\n"));
    item.fields.insert("empty".into(), common::list(&[]));
    store
        .store_batch(&batch(1, vec![item.clone()], vec![]))
        .await
        .unwrap();
    let page = store
        .items(&ItemQuery {
            job_id: "job".into(),
            ..ItemQuery::default()
        })
        .await
        .unwrap();
    let stored = &page.rows[0];
    assert_eq!(
        (stored.epoch, stored.fetched_at_ms),
        (7, item.fetched_at_ms)
    );
    assert_eq!(stored.handler, "article");
    assert_eq!(
        stored.fields["quote"],
        FieldJson::Text("say \"hi\" | ünïcode\n".into())
    );
    assert_eq!(
        stored.fields["tags"],
        FieldJson::List(vec!["a".into(), "b".into()])
    );
    assert_eq!(stored.fields["empty"], FieldJson::List(vec![]));
    assert_eq!(stored.fields.len(), 4);
}

async fn documents_are_unique_per_job_and_paged(store: ArchiveStore) {
    let mut first = page("job", "https://a.example/1", 1, "article");
    first.documents = (0..5)
        .map(|n| document(&format!("https://a.example/{n}.pdf"), ""))
        .collect();
    let mut second = page("job", "https://a.example/2", 1, "article");
    second.documents = vec![
        document("https://a.example/0.pdf", "https://a.example/2"),
        document("https://a.example/9.pdf", "https://a.example/2"),
    ];
    let mut elsewhere = page("other", "https://a.example/1", 1, "article");
    elsewhere.documents = vec![document("https://a.example/0.pdf", "")];
    store
        .store_batch(&batch(1, vec![first, second, elsewhere], vec![]))
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut after: Option<PageToken> = None;
    loop {
        let query = DocumentQuery {
            job_id: "job".into(),
            after,
            limit: 2,
        };
        let page = store.documents(&query).await.unwrap();
        seen.extend(page.rows);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    assert_eq!(
        seen[0].found_on, "https://a.example/1",
        "empty found_on means the page"
    );
    assert_eq!(seen[0].document_type, "pdf");
    assert_eq!(seen[5].url, "https://a.example/9.pdf");
    let first_pdf = seen.iter().find(|doc| doc.url == "https://a.example/0.pdf");
    assert_eq!(
        first_pdf.map(|doc| doc.found_on.as_str()),
        Some("https://a.example/1")
    );
}

async fn events_filter_by_job_kind_and_time(store: ArchiveStore) {
    let events = (0..30)
        .map(|n| {
            let kind = if n % 3 == 0 { "outcome" } else { "assigned" };
            let job = if n % 2 == 0 { "a" } else { "b" };
            event(&format!("e{n}"), kind, job, 1_000 * n)
        })
        .collect();
    store.store_batch(&batch(1, vec![], events)).await.unwrap();
    let ids = |query: EventQuery| {
        let store = store.clone();
        async move {
            let mut ids = Vec::new();
            let mut query = query;
            loop {
                let page = store.events(&query).await.unwrap();
                ids.extend(page.rows.into_iter().map(|event| event.id));
                match page.next {
                    Some(next) => query.after = Some(next),
                    None => return ids,
                }
            }
        }
    };
    let outcomes_of_a = ids(EventQuery {
        job_id: Some("a".into()),
        kind: Some("outcome".into()),
        limit: 2,
        ..EventQuery::default()
    })
    .await;
    assert_eq!(outcomes_of_a, ["e0", "e6", "e12", "e18", "e24"]);
    let window = ids(EventQuery {
        since_ms: Some(5_000),
        until_ms: Some(9_000),
        limit: 3,
        ..EventQuery::default()
    })
    .await;
    assert_eq!(window, ["e5", "e6", "e7", "e8"]);
    assert_eq!(ids(EventQuery::default()).await.len(), 30);
}

async fn large_batches_span_several_statements(store: ArchiveStore) {
    let mut big = pages("job", 0, 1300, "article");
    for (n, page) in big.iter_mut().enumerate().take(600) {
        page.documents = vec![document(&format!("https://d.example/{n}.pdf"), "")];
    }
    let events = (0..700)
        .map(|n| event(&format!("e{n}"), "outcome", "job", n))
        .collect();
    let stored = store
        .store_batch(&batch(1, big.clone(), events))
        .await
        .unwrap();
    assert_eq!(
        (stored.stored, stored.duplicates, stored.events_stored),
        (1300, 0, 700)
    );
    assert_eq!(stored.new_pages.len(), 1300);
    big.extend(pages("job", 1300, 10, "article"));
    let stored = store.store_batch(&batch(2, big, vec![])).await.unwrap();
    assert_eq!((stored.stored, stored.duplicates), (10, 1300));
    assert_eq!(stored.new_pages, (1300..1310).collect::<Vec<_>>());
    assert_eq!(all_items(&store, "job", None, 1000).await.len(), 1310);
}

async fn snapshot_bound_hides_later_items(store: ArchiveStore) {
    store
        .store_batch(&batch(1, pages("job", 0, 5, "article"), vec![]))
        .await
        .unwrap();
    let snapshot = store.last_item("job").await.unwrap();
    assert!(snapshot.is_some());
    assert_eq!(store.last_item("nobody").await.unwrap(), None);
    store
        .store_batch(&batch(2, pages("job", 5, 5, "article"), vec![]))
        .await
        .unwrap();
    let page = store
        .items(&ItemQuery {
            job_id: "job".into(),
            up_to: snapshot,
            ..ItemQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 5);
}

async fn concurrent_overlapping_batches_store_each_page_once(store: ArchiveStore) {
    let writers = (0..4).map(|writer| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut stored = 0;
            for round in 0..10 {
                let mut overlapping = pages("job", round * 100, 400, "article");
                if writer % 2 == 1 {
                    overlapping.reverse();
                }
                let batch = batch(round as u64, overlapping, vec![]);
                stored += store.store_batch(&batch).await.unwrap().stored;
            }
            stored
        })
    });
    let mut stored = 0;
    for writer in writers.collect::<Vec<_>>() {
        stored += writer.await.unwrap();
    }
    assert_eq!(
        stored, 1300,
        "pages 0..1300, each stored by exactly one writer"
    );
    let items = all_items(&store, "job", None, 1000).await;
    assert_eq!(items.iter().collect::<HashSet<_>>().len(), 1300);
}

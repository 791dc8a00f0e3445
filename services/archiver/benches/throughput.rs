//! Archive throughput: 10,000 pages in batches of 256 into SQLite (and PostgreSQL when
//! `OWLMESH_TEST_POSTGRES_URL` is set), directly and over gRPC with the JSON-lines writer.
//! Run with `cargo bench -p owlmesh-archiver --bench throughput`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::{Harness, batch, pages, with_postgres, with_sqlite};
use owlmesh_archiver::store::ArchiveStore;
use owlmesh_proto::v1::ArchiveBatch;

const PAGES: usize = 10_000;
const BATCH: usize = 256;

/// [`PAGES`] pages of one job, in batches of [`BATCH`].
fn all_batches() -> Vec<ArchiveBatch> {
    (0..PAGES)
        .step_by(BATCH)
        .enumerate()
        .map(|(number, first)| {
            batch(
                number as u64,
                pages("job", first, BATCH.min(PAGES - first), "article"),
                vec![],
            )
        })
        .collect()
}

async fn store_pages(store: ArchiveStore) {
    let batches = all_batches();
    let started = Instant::now();
    for batch in &batches {
        store.store_batch(batch).await.unwrap();
    }
    let elapsed = started.elapsed();
    let rate = PAGES as f64 / elapsed.as_secs_f64();
    println!(
        "{}: stored {PAGES} pages in batches of {BATCH} in {elapsed:.2?} ({rate:.0} pages/s)",
        store.backend_name()
    );
    let started = Instant::now();
    for batch in &batches {
        let stored = store.store_batch(batch).await.unwrap();
        assert_eq!(stored.stored, 0);
    }
    println!(
        "{}: redelivered them as duplicates in {:.2?}",
        store.backend_name(),
        started.elapsed()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    with_sqlite(store_pages).await;
    with_postgres(store_pages).await;
    archive_over_grpc_with_jsonl_writer().await;
}

async fn archive_over_grpc_with_jsonl_writer() {
    let harness = Harness::start(|_| {}).await;
    let batches = all_batches();
    let started = Instant::now();
    let (acks, status) = harness.archive(batches).await;
    let elapsed = started.elapsed();
    assert!(status.is_none());
    assert_eq!(
        acks.iter().map(|ack| ack.stored as usize).sum::<usize>(),
        PAGES
    );
    let rate = PAGES as f64 / elapsed.as_secs_f64();
    println!(
        "grpc+sqlite+jsonl: archived {PAGES} pages in batches of {BATCH} in {elapsed:.2?} ({rate:.0} pages/s)"
    );
    harness.stop().await;
}

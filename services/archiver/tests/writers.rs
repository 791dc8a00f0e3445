//! The result writers seen from outside: the JSON-lines file of a job after batches arrive over
//! the socket, and webhook delivery to a small axum server on `127.0.0.1:0`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use common::{Harness, batch, page, pages};
use owlmesh_archiver::ArchiveConfig;
use owlmesh_egress::{EgressGuard, parse_network};
use owlmesh_tests::eventually_true;
use serde_json::{Value, json};

#[tokio::test]
async fn jsonl_file_gets_one_line_per_new_item() {
    let harness = Harness::start(|_| {}).await;
    let mut first = pages("job", 0, 2, "article");
    first.push(page("job", "https://site.example/plain", 1, ""));
    harness.archive(vec![batch(1, first.clone(), vec![])]).await;
    harness.archive(vec![batch(2, first, vec![])]).await;
    harness
        .archive(vec![batch(3, pages("other/job", 0, 1, "listing"), vec![])])
        .await;

    let written = std::fs::read_to_string(harness.dir.path().join("job.jsonl")).unwrap();
    let expected = [0, 1].map(|n| {
        format!(
            "{{\"url\":\"https://site.example/{n}\",\"handler\":\"article\",\"fields\":\
             {{\"tags\":[\"a\",\"b\"],\"title\":\"title of https://site.example/{n}\"}},\
             \"fetched_at\":\"2024-05-01T12:00:00.001Z\",\"epoch\":1}}\n"
        )
    });
    assert_eq!(
        written,
        expected.concat(),
        "duplicates and handler-less pages are not written"
    );
    let other = harness.dir.path().join("other%2Fjob.jsonl");
    assert_eq!(std::fs::read_to_string(other).unwrap().lines().count(), 1);
    harness.stop().await;
}

/// A crash in the middle of an append leaves a partial last line: the next append cuts it
/// off (keeping it beside the file), so the file stays valid JSON lines, every whole record
/// stays, and the new records start on a line of their own.
#[tokio::test]
async fn a_torn_last_line_is_cut_off_before_the_next_append() {
    let whole =
        "{\"url\":\"https://site.example/old-1\"}\n{\"url\":\"https://site.example/old-2\"}\n";
    let torn = "{\"url\":\"https://site.exa";
    let harness = Harness::start(|config| {
        std::fs::write(config.data_dir.join("job.jsonl"), format!("{whole}{torn}")).unwrap();
    })
    .await;
    harness
        .archive(vec![batch(1, pages("job", 0, 2, "article"), vec![])])
        .await;

    let written = std::fs::read_to_string(harness.dir.path().join("job.jsonl")).unwrap();
    let urls: Vec<String> = written
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).expect("every line is JSON");
            record["url"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        urls,
        [
            "https://site.example/old-1",
            "https://site.example/old-2",
            "https://site.example/0",
            "https://site.example/1"
        ]
    );
    assert!(written.ends_with('\n'));
    let aside = std::fs::read_to_string(harness.dir.path().join("job.jsonl.torn")).unwrap();
    assert_eq!(
        aside,
        format!("{torn}\n"),
        "the fragment is kept, not thrown away"
    );
    harness.stop().await;
}

/// With power-loss durability every append is flushed before the acknowledgement; the file
/// reads the same.
#[tokio::test]
async fn jsonl_file_is_written_the_same_when_flushed_for_power_loss() {
    let harness = Harness::start(|config| {
        config.durability = owlmesh_archiver::Durability::PowerLoss;
    })
    .await;
    let (acks, failure) = harness
        .archive(vec![batch(1, pages("job", 0, 3, "article"), vec![])])
        .await;
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!(acks.len(), 1);
    let written = std::fs::read_to_string(harness.dir.path().join("job.jsonl")).unwrap();
    assert_eq!(written.lines().count(), 3);
    harness.stop().await;
}

/// What the webhook receiver saw.
#[derive(Clone, Default)]
struct Receiver {
    calls: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<Value>>>,
    /// The status of every call after the first, which always fails with 500.
    status: Arc<Mutex<Option<StatusCode>>>,
}

async fn receive(
    State(receiver): State<Receiver>,
    axum::Json(body): axum::Json<Value>,
) -> StatusCode {
    let call = receiver.calls.fetch_add(1, Ordering::SeqCst);
    if call == 0 {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let status = receiver.status.lock().unwrap().unwrap_or(StatusCode::OK);
    if status.is_success() {
        receiver.bodies.lock().unwrap().push(body);
    }
    status
}

async fn start_receiver(receiver: Receiver) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(receiver);
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{address}/hook"), server)
}

/// The guard of an archiver run with `--allow-network 127.0.0.1`, as these tests' receivers
/// listen there.
fn loopback_allowed() -> EgressGuard {
    EgressGuard::allowing([parse_network("127.0.0.1").unwrap()])
}

#[tokio::test]
async fn webhook_retries_a_failed_post_and_delivers_every_item() {
    let receiver = Receiver::default();
    let (url, server) = start_receiver(receiver.clone()).await;
    let harness = Harness::start(|config| {
        config.webhooks.urls = vec![url];
        config.webhooks.egress = loopback_allowed();
        config.webhooks.initial_backoff = Duration::from_millis(20);
        config.webhooks.attempts = 3;
    })
    .await;
    let (acks, status) = harness
        .archive(vec![batch(1, pages("job", 0, 3, "article"), vec![])])
        .await;
    assert!(
        status.is_none() && acks.len() == 1,
        "the write is acknowledged at once"
    );

    let bodies = receiver.bodies.clone();
    eventually_true(Duration::from_secs(10), "the writer's output", || {
        bodies.lock().unwrap().len() == 3
    })
    .await;
    assert_eq!(
        receiver.calls.load(Ordering::SeqCst),
        4,
        "one failure, retried once"
    );
    let mut urls: Vec<String> = bodies
        .lock()
        .unwrap()
        .iter()
        .map(|body| body["url"].as_str().unwrap_or_default().to_string())
        .collect();
    urls.sort();
    assert_eq!(
        urls,
        [
            "https://site.example/0",
            "https://site.example/1",
            "https://site.example/2"
        ]
    );
    let first = bodies.lock().unwrap()[0].clone();
    assert_eq!(first["job_id"], json!("job"));
    assert_eq!(first["handler"], json!("article"));
    assert_eq!(first["fields"]["tags"], json!(["a", "b"]));
    assert_eq!(first["fetched_at"], json!("2024-05-01T12:00:00.001Z"));

    let stats = harness.service.stats().snapshot();
    assert_eq!((stats.webhook_delivered, stats.webhook_failed), (3, 0));
    harness.stop().await;
    server.abort();
}

#[tokio::test]
async fn webhook_gives_up_at_once_on_a_client_error() {
    let receiver = Receiver::default();
    *receiver.status.lock().unwrap() = Some(StatusCode::BAD_REQUEST);
    let (url, server) = start_receiver(receiver.clone()).await;
    let harness = Harness::start(|config| {
        config.webhooks.urls = vec![url];
        config.webhooks.egress = loopback_allowed();
        config.webhooks.initial_backoff = Duration::from_millis(20);
        config.webhooks.attempts = 3;
    })
    .await;
    harness
        .archive(vec![batch(1, pages("job", 0, 1, "article"), vec![])])
        .await;

    let stats = harness.service.stats();
    eventually_true(Duration::from_secs(10), "the writer's output", || {
        stats.snapshot().webhook_failed == 1
    })
    .await;
    assert_eq!(
        receiver.calls.load(Ordering::SeqCst),
        2,
        "500 retried, 400 not"
    );
    assert!(receiver.bodies.lock().unwrap().is_empty());
    harness.stop().await;
    server.abort();
}

#[test]
fn a_webhook_on_a_loopback_address_needs_its_network_allowed() {
    let mut config = ArchiveConfig::default();
    config.webhooks.urls = vec!["http://127.0.0.1:9/hook".into()];
    let error = config
        .validate()
        .expect_err("loopback is refused")
        .to_string();
    assert!(
        error.contains("webhooks.urls[0]: blocked address 127.0.0.1 (loopback)")
            && error.contains("--allow-network"),
        "{error}"
    );
    config.webhooks.egress = loopback_allowed();
    config.validate().expect("allowed");
}

#[tokio::test]
async fn a_webhook_name_that_resolves_to_loopback_gets_nothing_unless_allowed() {
    let receiver = Receiver::default();
    let (url, server) = start_receiver(receiver.clone()).await;
    // The same receiver under a name: only resolution shows that it is loopback.
    let by_name = url.replace("127.0.0.1", "localhost");
    let harness = Harness::start(|config| {
        config.webhooks.urls = vec![by_name];
        config.webhooks.initial_backoff = Duration::from_millis(20);
        config.webhooks.attempts = 3;
    })
    .await;
    harness
        .archive(vec![batch(1, pages("job", 0, 2, "article"), vec![])])
        .await;

    let stats = harness.service.stats();
    eventually_true(Duration::from_secs(10), "both items given up", || {
        stats.snapshot().webhook_failed == 2
    })
    .await;
    assert_eq!(
        receiver.calls.load(Ordering::SeqCst),
        0,
        "the receiver was never connected to"
    );
    harness.stop().await;
    server.abort();
}

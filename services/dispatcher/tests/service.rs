//! The dispatcher's job RPCs over a real socket: dispatchers on `127.0.0.1:0` sharing one
//! SQLite frontier, an in-process directory, and the generated client, as a CLI would call
//! them.

use std::time::Duration;

use owlmesh_directory::DirectoryConfig;
use owlmesh_dispatcher::{
    DEFAULT_JOBS_PAGE_SIZE, DispatcherConfig, DispatcherNode, MAX_REQUEST_ID_BYTES,
};
use owlmesh_proto::v1::directory_client::DirectoryClient;
use owlmesh_proto::v1::dispatcher_client::DispatcherClient;
use owlmesh_proto::v1::{
    Instance, JobSpec, ListJobsRequest, ListJobsResponse, RegisterRequest, SubmitJobRequest,
    WorkerHello, WorkerMessage, worker_message,
};
use owlmesh_tests::eventually;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;

/// An in-process directory and dispatchers sharing one frontier file.
struct Harness {
    directory: CancellationToken,
    directory_address: String,
    data_dir: tempfile::TempDir,
    dispatchers: Vec<DispatcherNode>,
}

impl Harness {
    async fn start(dispatchers: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind directory");
        let directory_address = listener.local_addr().expect("address").to_string();
        let directory = CancellationToken::new();
        let config = DirectoryConfig {
            lease_ttl: Duration::from_secs(2),
        };
        tokio::spawn(owlmesh_directory::serve(
            listener,
            config,
            directory.clone(),
        ));
        let mut harness = Self {
            directory,
            directory_address,
            data_dir: tempfile::tempdir().expect("data folder"),
            dispatchers: Vec::new(),
        };
        for index in 0..dispatchers {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind dispatcher");
            let mut config = DispatcherConfig::new(
                format!("dispatcher-{index}"),
                harness.data_dir.path().to_owned(),
            );
            config.priority = index as i32;
            config.directories = vec![harness.directory_address.clone()];
            let node = DispatcherNode::start(listener, config)
                .await
                .expect("start dispatcher");
            harness.dispatchers.push(node);
        }
        harness
    }

    async fn client(&self, index: usize) -> DispatcherClient<Channel> {
        let address = format!("http://{}", self.dispatchers[index].address());
        DispatcherClient::connect(address).await.expect("connect")
    }

    /// The frontier file the dispatchers share.
    fn database_url(&self) -> String {
        owlmesh_dispatcher::default_database_url(self.data_dir.path())
    }

    async fn stop(self) {
        for node in self.dispatchers {
            node.shut_down().await.expect("shut down");
        }
        self.directory.cancel();
    }
}

fn spec(name: &str) -> JobSpec {
    JobSpec {
        name: name.into(),
        seeds: vec!["http://127.0.0.1:9/".into()],
        ..JobSpec::default()
    }
}

fn submit(spec: JobSpec, request_id: &str) -> SubmitJobRequest {
    SubmitJobRequest {
        spec: Some(spec),
        request_id: request_id.into(),
    }
}

async fn list_page(
    client: &mut DispatcherClient<Channel>,
    page_size: u32,
    page_token: &str,
) -> ListJobsResponse {
    let request = ListJobsRequest {
        page_size,
        page_token: page_token.into(),
    };
    client.list_jobs(request).await.expect("list").into_inner()
}

/// Every job's id, following the pages to the end; also how many pages it took.
async fn list_all(client: &mut DispatcherClient<Channel>, page_size: u32) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = list_page(client, page_size, &token).await;
        pages += 1;
        ids.extend(page.jobs.into_iter().map(|job| job.id));
        if page.next_page_token.is_empty() {
            return (ids, pages);
        }
        token = page.next_page_token;
    }
}

#[tokio::test]
async fn a_submission_retried_with_its_request_id_creates_one_job_even_after_failover() {
    let harness = Harness::start(2).await;
    let mut first = harness.client(0).await;
    let mut standby = harness.client(1).await;
    let request_id = "0d9c7a52-4f8e-4b8f-a7c4-1f7e0f2b9a11";

    let created = first
        .submit_job(submit(spec("once"), request_id))
        .await
        .expect("submit")
        .into_inner()
        .id;
    // The answer was lost: the client tries again, here and on the next dispatcher.
    let again = first.submit_job(submit(spec("once"), request_id)).await;
    assert_eq!(again.expect("retry").into_inner().id, created);
    let elsewhere = standby.submit_job(submit(spec("once"), request_id)).await;
    assert_eq!(elsewhere.expect("failover").into_inner().id, created);
    let (ids, _) = list_all(&mut first, 0).await;
    assert_eq!(ids, std::slice::from_ref(&created), "one job");

    // The same id for another job is a mistake the caller hears about.
    let reused = first
        .submit_job(submit(spec("another"), request_id))
        .await
        .expect_err("another spec under the same id");
    assert_eq!(reused.code(), Code::AlreadyExists);
    assert!(
        reused.message().starts_with("request_id: ") && reused.message().contains(&created),
        "{}",
        reused.message()
    );
    // Ids are bounded and plain; no id at all creates a job per call, as before.
    let too_long = "r".repeat(MAX_REQUEST_ID_BYTES + 1);
    let refused = first
        .submit_job(submit(spec("long"), &too_long))
        .await
        .expect_err("too long");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused
            .message()
            .starts_with("request_id: longer than 128 bytes")
    );
    let refused = first
        .submit_job(submit(spec("odd"), "id with spaces"))
        .await
        .expect_err("spaces");
    assert_eq!(refused.code(), Code::InvalidArgument);
    for _ in 0..2 {
        first
            .submit_job(submit(spec("plain"), ""))
            .await
            .expect("submit");
    }
    assert_eq!(list_all(&mut first, 0).await.0.len(), 3);
    harness.stop().await;
}

#[tokio::test]
async fn list_jobs_pages_through_more_jobs_than_a_page_newest_first() {
    let harness = Harness::start(1).await;
    let mut client = harness.client(0).await;
    let total = DEFAULT_JOBS_PAGE_SIZE + 1;
    let mut submitted = Vec::new();
    for index in 0..total {
        let request = submit(spec(&format!("job-{index}")), "");
        submitted.push(
            client
                .submit_job(request)
                .await
                .expect("submit")
                .into_inner()
                .id,
        );
    }

    // The default page holds DEFAULT_JOBS_PAGE_SIZE; the rest is one token away.
    let first = list_page(&mut client, 0, "").await;
    assert_eq!(first.jobs.len(), DEFAULT_JOBS_PAGE_SIZE);
    assert!(!first.next_page_token.is_empty());
    let (ids, pages) = list_all(&mut client, 0).await;
    assert_eq!(pages, 2);
    let mut expected = submitted.clone();
    expected.sort();
    let mut listed = ids.clone();
    listed.sort();
    assert_eq!(listed, expected, "every job exactly once");
    let times: Vec<i64> = first.jobs.iter().map(|job| job.created_at_ms).collect();
    assert!(times.is_sorted_by(|a, b| a >= b), "newest first: {times:?}");

    let (small_pages, count) = list_all(&mut client, 40).await;
    assert_eq!((small_pages, count), (ids, 3));

    let refused = client
        .list_jobs(ListJobsRequest {
            page_size: 10,
            page_token: "not-a-token".into(),
        })
        .await
        .expect_err("a forged token");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().starts_with("page_token: "),
        "{}",
        refused.message()
    );
    harness.stop().await;
}

#[tokio::test]
async fn a_job_row_that_does_not_decode_is_reported_and_the_others_listed() {
    let harness = Harness::start(1).await;
    let mut client = harness.client(0).await;
    let mut ids = Vec::new();
    for name in ["kept", "broken", "also-kept"] {
        let request = submit(spec(name), "");
        ids.push(
            client
                .submit_job(request)
                .await
                .expect("submit")
                .into_inner()
                .id,
        );
    }
    // Someone edits the database by hand.
    let database = sqlx::SqlitePool::connect(&harness.database_url())
        .await
        .expect("open the frontier file");
    sqlx::query("UPDATE frontier_jobs SET spec = x'ffffffff' WHERE id = ?")
        .bind(&ids[1])
        .execute(&database)
        .await
        .expect("corrupt the spec");
    database.close().await;

    let page = list_page(&mut client, 0, "").await;
    let mut listed: Vec<&str> = page.jobs.iter().map(|job| job.id.as_str()).collect();
    listed.sort_unstable();
    let mut kept = [ids[0].as_str(), ids[2].as_str()];
    kept.sort_unstable();
    assert_eq!(listed, kept);
    assert_eq!(page.unreadable.len(), 1);
    assert_eq!(page.unreadable[0].id, ids[1]);
    assert!(
        page.unreadable[0].reason.contains("does not decode"),
        "{:?}",
        page.unreadable[0]
    );
    harness.stop().await;
}

#[tokio::test]
async fn without_tokens_a_registered_scraper_still_opens_its_work_session() {
    // Nothing here checks tokens (as under --insecure-no-auth): the directory publishes no
    // fingerprint, and the dispatcher has no caller's token to compare.
    let harness = Harness::start(1).await;
    let directory = format!("http://{}", harness.directory_address);
    let mut directory = DirectoryClient::connect(directory)
        .await
        .expect("directory");
    let scraper = Instance {
        kind: "scraper".into(),
        id: "scraper-0".into(),
        address: "127.0.0.1:9".into(),
        ..Instance::default()
    };
    let request = RegisterRequest {
        instance: Some(scraper),
    };
    directory.register(request).await.expect("register");

    let client = harness.client(0).await;
    let hello = || WorkerMessage {
        message: Some(worker_message::Message::Hello(WorkerHello {
            scraper_id: "scraper-0".into(),
            slots: 1,
            held: None,
        })),
    };
    // The dispatcher takes a moment to see itself primary.
    eventually(Duration::from_secs(10), "the work session opens", || {
        let mut client = client.clone();
        async move {
            let opened = client.work(futures::stream::iter([hello()])).await;
            match opened {
                Ok(_) => true,
                Err(status) => {
                    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                    assert!(status.message().starts_with("standby"), "{status:?}");
                    false
                }
            }
        }
    })
    .await;
    harness.stop().await;
}

//! Helpers shared by the archiver's integration tests: temporary folders, the backends the
//! storage suite runs against, batch builders and an "eventually" poll.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use owlmesh_archiver::store::ArchiveStore;
use owlmesh_proto::v1::field_value::Value;
use owlmesh_proto::v1::{ArchiveBatch, Document, Event, FieldValue, PageRecord, StringList};
use owlmesh_storage::Backend;
use owlmesh_storage::testing;

/// A folder under the system's temporary folder, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let name = format!("owlmesh-archiver-test-{}", uuid::Uuid::new_v4().simple());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("create temporary folder");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `test` against a fresh SQLite file.
pub async fn with_sqlite<F, Fut>(test: F)
where
    F: FnOnce(ArchiveStore) -> Fut,
    Fut: Future<Output = ()>,
{
    with_backend(Backend::Sqlite, test).await;
}

/// Runs `test` against PostgreSQL in a fresh schema (dropped afterwards), or says loudly that
/// it was skipped when `OWLMESH_TEST_POSTGRES_URL` is not set.
pub async fn with_postgres<F, Fut>(test: F)
where
    F: FnOnce(ArchiveStore) -> Fut,
    Fut: Future<Output = ()>,
{
    with_backend(Backend::Postgres, test).await;
}

async fn with_backend<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(ArchiveStore) -> Fut,
    Fut: Future<Output = ()>,
{
    testing::run_on(backend, "archive.sqlite", async |database| {
        let store = ArchiveStore::open(database.url(), 4)
            .await
            .expect("open the archive");
        assert_eq!(store.backend_name(), backend.name());
        test(store.clone()).await;
        store.close().await;
    })
    .await;
}

/// A page of `job_id` with one text field `title` and a list field `tags`.
pub fn page(job_id: &str, url: &str, epoch: u64, handler: &str) -> PageRecord {
    PageRecord {
        job_id: job_id.into(),
        url: url.into(),
        epoch,
        handler: handler.into(),
        fields: HashMap::from([
            ("title".to_string(), text(&format!("title of {url}"))),
            ("tags".to_string(), list(&["a", "b"])),
        ]),
        documents: Vec::new(),
        http_status: 200,
        content_hash: format!("hash-{url}"),
        fetched_at_ms: 1_714_564_800_000 + i64::try_from(epoch).unwrap_or_default(),
        trace_context: HashMap::new(),
    }
}

pub fn text(value: &str) -> FieldValue {
    FieldValue {
        value: Some(Value::Text(value.into())),
    }
}

pub fn list(values: &[&str]) -> FieldValue {
    FieldValue {
        value: Some(Value::List(StringList {
            values: values.iter().map(|value| value.to_string()).collect(),
        })),
    }
}

pub fn document(url: &str, found_on: &str) -> Document {
    Document {
        url: url.into(),
        r#type: "pdf".into(),
        found_on: found_on.into(),
    }
}

pub fn event(id: &str, kind: &str, job_id: &str, at_ms: i64) -> Event {
    Event {
        id: id.into(),
        kind: kind.into(),
        job_id: job_id.into(),
        url: String::new(),
        at_ms,
        source: "scraper/1".into(),
        message: format!("event {id}"),
        attributes: HashMap::from([("reason".to_string(), "test".to_string())]),
    }
}

pub fn batch(batch_id: u64, pages: Vec<PageRecord>, events: Vec<Event>) -> ArchiveBatch {
    ArchiveBatch {
        batch_id,
        pages,
        events,
    }
}

/// `count` pages of `job_id` in epoch 1, `https://site.example/{first + i}`.
pub fn pages(job_id: &str, first: usize, count: usize, handler: &str) -> Vec<PageRecord> {
    (first..first + count)
        .map(|n| page(job_id, &format!("https://site.example/{n}"), 1, handler))
        .collect()
}

/// An archiver serving on `127.0.0.1:0` over a fresh data folder, with a connected client.
pub struct Harness {
    pub dir: TempDir,
    pub service: owlmesh_archiver::ArchiverService,
    pub client: ArchiverClient<tonic::transport::Channel>,
    shutdown: tokio_util::sync::CancellationToken,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

use owlmesh_proto::v1::archiver_client::ArchiverClient;
use owlmesh_proto::v1::{ArchiveAck, ExportRequest};

impl Harness {
    /// Starts the service with the test defaults (SQLite in a temporary folder, no retention
    /// task), changed by `configure`.
    pub async fn start(configure: impl FnOnce(&mut owlmesh_archiver::ArchiveConfig)) -> Self {
        let dir = TempDir::new();
        let mut config = owlmesh_archiver::ArchiveConfig::with_data_dir(dir.path());
        config.event_retention = None;
        configure(&mut config);
        let service = owlmesh_archiver::ArchiverService::start(config)
            .await
            .expect("build the archiver");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("local address");
        let shutdown = tokio_util::sync::CancellationToken::new();
        let server = tonic::transport::Server::builder()
            .add_service(service.clone().into_server())
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                shutdown.clone().cancelled_owned(),
            );
        let server = tokio::spawn(server);
        let client = ArchiverClient::connect(format!("http://{address}"))
            .await
            .expect("connect to the archiver");
        Self {
            dir,
            service,
            client,
            shutdown,
            server,
        }
    }

    /// Streams `batches` over one `Archive` call and collects the acknowledgements; the error
    /// is the status the stream ended with.
    pub async fn archive(
        &self,
        batches: Vec<ArchiveBatch>,
    ) -> (Vec<ArchiveAck>, Option<tonic::Status>) {
        let mut client = self.client.clone();
        let mut acks = Vec::new();
        let mut responses = match client.archive(futures::stream::iter(batches)).await {
            Ok(response) => response.into_inner(),
            Err(status) => return (acks, Some(status)),
        };
        loop {
            match responses.message().await {
                Ok(Some(ack)) => acks.push(ack),
                Ok(None) => return (acks, None),
                Err(status) => return (acks, Some(status)),
            }
        }
    }

    /// Runs an export and joins its chunks.
    pub async fn export(&self, request: ExportRequest) -> Result<Vec<u8>, tonic::Status> {
        let mut client = self.client.clone();
        let mut chunks = client.export(request).await?.into_inner();
        let mut data = Vec::new();
        while let Some(chunk) = chunks.message().await? {
            assert!(!chunk.data.is_empty(), "no empty chunks");
            data.extend(chunk.data);
        }
        Ok(data)
    }

    /// Stops the server, then the service's tasks.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let served = self.server.await.expect("server task");
        served.expect("server ran");
        self.service.shutdown(Duration::from_secs(5)).await;
    }
}

//! The tonic implementation of the `Archiver` service: the `Archive` write stream, the paged
//! queries and the streaming export, with request validation in front and conversions between
//! stored rows and wire messages.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::{BoxStream, FuturesOrdered};
use owlmesh_mesh::api;
use owlmesh_proto::v1::archiver_server::{Archiver, ArchiverServer};
use owlmesh_proto::v1::{
    ArchiveAck, ArchiveBatch, DataItem, Document, Event, ExportChunk, ExportRequest,
    QueryDocumentsRequest, QueryDocumentsResponse, QueryEventsRequest, QueryEventsResponse,
    QueryItemsRequest, QueryItemsResponse,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};

use crate::commit::{Committed, Committer, GroupCommit};
use crate::error::{ArchiverError, Result};
use crate::export::{ExportFormat, ExportSpec, export_stream};
use crate::item::fields_to_proto;
use crate::retention::{RetentionPolicy, purge_periodically};
use crate::store::{
    ArchiveStore, DocumentQuery, EventQuery, ItemQuery, Page, PageToken, StoredDocument,
    StoredEvent, StoredItem,
};
use crate::validate::{require_job_id, validate_batch, validate_time_range};
use crate::writers::{ResultWriters, WriterContext};
use crate::{ArchiveConfig, ArchiverStats};

/// Acknowledgements an `Archive` stream buffers before it waits for the client to read them.
const ACK_BUFFER: usize = 16;
/// Batches of one `Archive` stream being committed at once: a producer's next batches join
/// the group commit while its earlier ones are still being stored.
const BATCHES_IN_PROGRESS: usize = 4;
/// The largest request the server decodes (one home: [`owlmesh_mesh::api`]).
pub use owlmesh_mesh::api::ARCHIVER_REQUEST_BYTES as MAX_REQUEST_BYTES;

/// The archiver: a cheap handle to the store, the writers and the background tasks.
#[derive(Debug, Clone)]
pub struct ArchiverService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: ArchiveStore,
    commits: GroupCommit,
    stats: Arc<ArchiverStats>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    /// Stops the background tasks when the last handle goes away without a shutdown.
    _cancel_on_drop: DropGuard,
}

impl ArchiverService {
    /// Validates `config`, creates the data folder, opens the archive and starts the rest.
    pub async fn start(config: ArchiveConfig) -> Result<Self> {
        config.validate()?;
        tokio::fs::create_dir_all(&config.data_dir)
            .await
            .map_err(|source| ArchiverError::Io {
                path: config.data_dir.clone(),
                source,
            })?;
        let url = config.effective_database_url();
        let store =
            ArchiveStore::open_durable(&url, config.max_connections, config.durability).await?;
        tracing::info!(backend = store.backend_name(), durability = %config.durability, "archive open");
        Self::with_store(store, &config)
    }

    /// A service over an archive that is already open: starts the writers and the retention
    /// task that `config` asks for.
    pub fn with_store(store: ArchiveStore, config: &ArchiveConfig) -> Result<Self> {
        config.validate()?;
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let stats = Arc::new(ArchiverStats::default());
        let context = WriterContext {
            stats: stats.clone(),
            tasks: tasks.clone(),
            shutdown: shutdown.clone(),
        };
        let writers = Arc::new(ResultWriters::start(config, &context)?);
        let committer = Committer {
            store: store.clone(),
            writers,
            stats: stats.clone(),
        };
        let (commits, committing) = GroupCommit::start(committer, shutdown.clone());
        tasks.spawn(committing);
        if let Some(max_age) = config.event_retention {
            let policy = RetentionPolicy {
                max_age,
                interval: config.retention_interval,
            };
            let purge = purge_periodically(store.clone(), policy, stats.clone(), shutdown.clone());
            tasks.spawn(purge);
        }
        let inner = Inner {
            store,
            commits,
            stats,
            _cancel_on_drop: shutdown.clone().drop_guard(),
            shutdown,
            tasks,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The tonic server for this service, ready for `add_service`.
    pub fn into_server(self) -> ArchiverServer<Self> {
        api::archiver_server(self)
    }

    /// The archive.
    pub fn store(&self) -> &ArchiveStore {
        &self.inner.store
    }

    /// The counters, for a stats endpoint.
    pub fn stats(&self) -> Arc<ArchiverStats> {
        self.inner.stats.clone()
    }

    /// Stops the background tasks: the retention task ends, webhook queues close and deliver
    /// what they hold, for at most `timeout`; then the database pool closes. Call it once the
    /// server has stopped.
    pub async fn shutdown(&self, timeout: Duration) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        if tokio::time::timeout(timeout, self.inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(?timeout, "archiver tasks still running at shutdown");
        }
        self.inner.store.close().await;
    }

    /// Validates, stores and writes one batch, and returns its acknowledgement.
    #[tracing::instrument(skip_all, fields(batch_id = batch.batch_id, pages = batch.pages.len()))]
    pub async fn archive_batch(&self, batch: ArchiveBatch) -> Result<ArchiveAck> {
        validate_batch(&batch)?;
        self.commit_valid(batch).await
    }

    /// Stores and writes a batch that passed validation, and returns its acknowledgement.
    async fn commit_valid(&self, batch: ArchiveBatch) -> Result<ArchiveAck> {
        let spans = crate::trace::page_spans(&batch);
        let Committed { batch, stored } = self.inner.commits.commit(batch).await?;
        crate::trace::stored(&spans, &stored.new_pages);
        let duplicate_pages = (0..batch.pages.len())
            .filter(|at| !stored.new_pages.contains(at))
            .map(|at| at as u32)
            .collect();
        Ok(ArchiveAck {
            batch_id: batch.batch_id,
            stored: stored.stored,
            duplicates: stored.duplicates,
            duplicate_pages,
        })
    }

    /// Reads batches until the client closes its side, answering each with an acknowledgement
    /// in the order received; the first failure goes out as the stream's final status. A
    /// batch that fails validation is answered after the batches before it, and nothing
    /// after it is read.
    async fn pump_archive_stream(
        self,
        mut incoming: Streaming<ArchiveBatch>,
        acks: mpsc::Sender<Result<ArchiveAck, Status>>,
    ) {
        let mut in_progress = FuturesOrdered::new();
        let mut reading = true;
        loop {
            let room = in_progress.len() < BATCHES_IN_PROGRESS;
            tokio::select! {
                message = incoming.message(), if reading && room => match message {
                    Ok(Some(batch)) => {
                        let service = self.clone();
                        let valid = validate_batch(&batch);
                        reading = valid.is_ok();
                        in_progress.push_back(async move {
                            valid?;
                            service.commit_valid(batch).await
                        });
                    }
                    Ok(None) => reading = false,
                    Err(status) => {
                        tracing::debug!(%status, "archive stream broke off");
                        return;
                    }
                },
                Some(reply) = in_progress.next(), if !in_progress.is_empty() => {
                    let reply = reply.map_err(Status::from);
                    let failed = reply.is_err();
                    if acks.send(reply).await.is_err() || failed {
                        return;
                    }
                }
                else => return,
            }
        }
    }

    async fn query_items_page(&self, request: QueryItemsRequest) -> Result<QueryItemsResponse> {
        require_job_id("job_id", &request.job_id)?;
        let query = ItemQuery {
            after: PageToken::parse(&request.page_token)?,
            handler: non_empty(request.handler),
            job_id: request.job_id,
            limit: request.limit,
            up_to: None,
        };
        let (items, next_page_token) = wire_page(self.inner.store.items(&query).await?, data_item);
        Ok(QueryItemsResponse {
            items,
            next_page_token,
        })
    }

    async fn query_documents_page(
        &self,
        request: QueryDocumentsRequest,
    ) -> Result<QueryDocumentsResponse> {
        require_job_id("job_id", &request.job_id)?;
        let query = DocumentQuery {
            after: PageToken::parse(&request.page_token)?,
            job_id: request.job_id,
            limit: request.limit,
        };
        let page = self.inner.store.documents(&query).await?;
        let (documents, next_page_token) = wire_page(page, document);
        Ok(QueryDocumentsResponse {
            documents,
            next_page_token,
        })
    }

    async fn query_events_page(&self, request: QueryEventsRequest) -> Result<QueryEventsResponse> {
        validate_time_range(request.since_ms, request.until_ms)?;
        let query = EventQuery {
            after: PageToken::parse(&request.page_token)?,
            job_id: non_empty(request.job_id),
            kind: non_empty(request.kind),
            since_ms: (request.since_ms != 0).then_some(request.since_ms),
            until_ms: (request.until_ms != 0).then_some(request.until_ms),
            limit: request.limit,
        };
        let (events, next_page_token) = wire_page(self.inner.store.events(&query).await?, event);
        Ok(QueryEventsResponse {
            events,
            next_page_token,
        })
    }

    fn export_chunks(&self, request: ExportRequest) -> Result<BoxStream<'static, Chunk>> {
        require_job_id("job_id", &request.job_id)?;
        let spec = ExportSpec {
            format: ExportFormat::parse(&request.format)?,
            job_id: request.job_id,
            documents: request.documents,
        };
        let chunks = export_stream(self.inner.store.clone(), spec)
            .map(|chunk| chunk.map(|data| ExportChunk { data }).map_err(Status::from));
        Ok(chunks.boxed())
    }
}

/// One item of the `Export` response stream.
type Chunk = Result<ExportChunk, Status>;

#[tonic::async_trait]
impl Archiver for ArchiverService {
    type ArchiveStream = ReceiverStream<Result<ArchiveAck, Status>>;
    type ExportStream = BoxStream<'static, Chunk>;

    async fn archive(
        &self,
        request: Request<Streaming<ArchiveBatch>>,
    ) -> Result<Response<Self::ArchiveStream>, Status> {
        let (acks, receiver) = mpsc::channel(ACK_BUFFER);
        let pump = self.clone().pump_archive_stream(request.into_inner(), acks);
        self.inner.tasks.spawn(pump);
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    #[tracing::instrument(skip_all)]
    async fn query_items(
        &self,
        request: Request<QueryItemsRequest>,
    ) -> Result<Response<QueryItemsResponse>, Status> {
        Ok(Response::new(
            self.query_items_page(request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn query_documents(
        &self,
        request: Request<QueryDocumentsRequest>,
    ) -> Result<Response<QueryDocumentsResponse>, Status> {
        let response = self.query_documents_page(request.into_inner()).await?;
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all)]
    async fn query_events(
        &self,
        request: Request<QueryEventsRequest>,
    ) -> Result<Response<QueryEventsResponse>, Status> {
        Ok(Response::new(
            self.query_events_page(request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn export(
        &self,
        request: Request<ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        Ok(Response::new(self.export_chunks(request.into_inner())?))
    }
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

/// A page's rows as wire messages, and its next page token (empty on the last page).
fn wire_page<T, W>(page: Page<T>, convert: impl Fn(T) -> W) -> (Vec<W>, String) {
    let next = page.next.map(|token| token.to_string()).unwrap_or_default();
    (page.rows.into_iter().map(convert).collect(), next)
}

fn data_item(item: StoredItem) -> DataItem {
    DataItem {
        fields: fields_to_proto(&item.fields),
        url: item.url,
        handler: item.handler,
        fetched_at_ms: item.fetched_at_ms,
        epoch: item.epoch,
    }
}

fn document(document: StoredDocument) -> Document {
    Document {
        url: document.url,
        r#type: document.document_type,
        found_on: document.found_on,
    }
}

fn event(event: StoredEvent) -> Event {
    Event {
        id: event.id,
        kind: event.kind,
        job_id: event.job_id,
        url: event.url,
        at_ms: event.at_ms,
        source: event.source,
        message: event.message,
        attributes: event.attributes.into_iter().collect(),
    }
}

//! The directory service: the gRPC face of the [`Registry`].

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::Stream;
use owlmesh_mesh::auth::Caller;
use owlmesh_proto::v1::directory_server::Directory;
use owlmesh_proto::v1::telemetry_server::Telemetry;
use owlmesh_proto::v1::{
    Counter, DeregisterRequest, DeregisterResponse, GetStatsRequest, HeartbeatRequest,
    HeartbeatResponse, Instance, Lease, ListRequest, Membership, QueueDepth, RegisterRequest,
    ResolveRequest, ResolveResponse, RouteRequest, Stats,
};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, instrument};

use owlmesh_mesh::clock::unix_ms;

use crate::registry::Registry;
use crate::validate::{require_kind, validate_instance};
use crate::{DirectoryConfig, DirectoryError, Result};

/// The `Directory` and `Telemetry` gRPC services over one registry.
#[derive(Clone)]
pub(crate) struct DirectoryService {
    pub(crate) registry: Arc<Registry>,
    counters: Arc<DirectoryCounters>,
    shutdown: CancellationToken,
    started_at: Instant,
}

#[derive(Default)]
struct DirectoryCounters {
    registrations: AtomicU64,
    heartbeats: AtomicU64,
    deregistrations: AtomicU64,
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

impl DirectoryService {
    /// A service over a fresh registry; its streams end when `shutdown` is cancelled.
    pub(crate) fn new(config: DirectoryConfig, shutdown: CancellationToken) -> Self {
        Self {
            registry: Arc::new(Registry::new(config.lease_ttl)),
            counters: Arc::default(),
            shutdown,
            started_at: Instant::now(),
        }
    }

    fn lease(&self, lease_id: String) -> Lease {
        let ttl = self.registry.ttl();
        Lease {
            lease_id,
            ttl_ms: ttl.as_millis() as u32,
            heartbeat_ms: (ttl / 3).as_millis() as u32,
        }
    }

    fn heartbeat_once(&self, request: HeartbeatRequest) -> Result<HeartbeatResponse> {
        if request.lease_id.is_empty() {
            return Err(DirectoryError::InvalidArgument {
                field: "lease_id",
                reason: "must not be empty".into(),
            });
        }
        self.counters.heartbeats.fetch_add(1, Ordering::Relaxed);
        let version = self.registry.heartbeat(&request.lease_id, request.load)?;
        Ok(HeartbeatResponse {
            ttl_ms: self.registry.ttl().as_millis() as u32,
            version,
        })
    }
}

#[tonic::async_trait]
impl Directory for DirectoryService {
    #[instrument(skip_all, fields(kind, id))]
    async fn register(&self, request: Request<RegisterRequest>) -> Result<Response<Lease>, Status> {
        let caller = Caller::of(&request);
        let mut instance = validate_instance(request.into_inner().instance)?;
        // The directory's own word on which token registered the instance; whatever the
        // request said is replaced, so no registration can claim another's fingerprint.
        instance.token_fingerprint = caller
            .map(|caller| caller.fingerprint.to_string())
            .unwrap_or_default();
        let owner = caller.map(|caller| caller.token);
        tracing::Span::current()
            .record("kind", &instance.kind)
            .record("id", &instance.id);
        info!(address = %instance.address, priority = instance.priority, "registered");
        self.counters.registrations.fetch_add(1, Ordering::Relaxed);
        let lease_id = self.registry.register(instance, owner)?;
        Ok(Response::new(self.lease(lease_id)))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        Ok(Response::new(self.heartbeat_once(request.into_inner())?))
    }

    type KeepAliveStream = ResponseStream<HeartbeatResponse>;

    async fn keep_alive(
        &self,
        request: Request<Streaming<HeartbeatRequest>>,
    ) -> Result<Response<Self::KeepAliveStream>, Status> {
        let mut heartbeats = request.into_inner();
        let (sender, receiver) = mpsc::channel(4);
        let service = self.clone();
        tokio::spawn(async move {
            let mut leases_seen = Vec::new();
            while let Some(Ok(heartbeat)) = heartbeats.next().await {
                if !leases_seen.contains(&heartbeat.lease_id) {
                    leases_seen.push(heartbeat.lease_id.clone());
                }
                let answer = service.heartbeat_once(heartbeat).map_err(Status::from);
                let failed = answer.is_err();
                if sender.send(answer).await.is_err() || failed {
                    break;
                }
            }
            // The stream is gone: the process died or closed its connection. Removing its
            // leases now tells watchers at once instead of after the TTL.
            for lease_id in leases_seen {
                if service.registry.deregister(&lease_id) {
                    info!(lease_id, "keep-alive stream closed: instance removed");
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn deregister(
        &self,
        request: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        let lease_id = request.into_inner().lease_id;
        if !self.registry.deregister(&lease_id) {
            return Err(DirectoryError::LeaseNotFound(lease_id).into());
        }
        self.counters
            .deregistrations
            .fetch_add(1, Ordering::Relaxed);
        info!(lease_id, "deregistered");
        Ok(Response::new(DeregisterResponse {}))
    }

    async fn list(&self, request: Request<ListRequest>) -> Result<Response<Membership>, Status> {
        Ok(Response::new(
            self.registry.list(&request.into_inner().kind),
        ))
    }

    type WatchStream = ResponseStream<Membership>;

    async fn watch(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let kind = request.into_inner().kind;
        let mut changes = self.registry.subscribe();
        let (sender, receiver) = mpsc::channel(1);
        let registry = self.registry.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            loop {
                changes.mark_unchanged();
                if sender.send(Ok(registry.list(&kind))).await.is_err() {
                    return;
                }
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return },
                    _ = sender.closed() => return,
                    _ = shutdown.cancelled() => return,
                }
            }
        });
        debug!("watch opened");
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn route(&self, request: Request<RouteRequest>) -> Result<Response<Instance>, Status> {
        let RouteRequest { kind, key } = request.into_inner();
        require_kind(&kind)?;
        if key.is_empty() {
            return Err(DirectoryError::InvalidArgument {
                field: "key",
                reason: "must not be empty".into(),
            }
            .into());
        }
        Ok(Response::new(self.registry.route(&kind, &key)?))
    }

    async fn resolve(
        &self,
        request: Request<ResolveRequest>,
    ) -> Result<Response<ResolveResponse>, Status> {
        let kind = request.into_inner().kind;
        require_kind(&kind)?;
        Ok(Response::new(ResolveResponse {
            instances: self.registry.resolve(&kind),
        }))
    }
}

#[tonic::async_trait]
impl Telemetry for DirectoryService {
    async fn get_stats(&self, _: Request<GetStatsRequest>) -> Result<Response<Stats>, Status> {
        let queues = self
            .registry
            .counts_by_kind()
            .into_iter()
            .map(|(kind, count)| QueueDepth {
                name: "members".into(),
                depth: count,
                labels: [("member_kind".to_owned(), kind)].into(),
                ..Default::default()
            })
            .collect();
        let counter = |name: &str, value: &AtomicU64| Counter {
            name: name.into(),
            value: value.load(Ordering::Relaxed),
            ..Default::default()
        };
        let counters = vec![
            counter("registrations", &self.counters.registrations),
            counter("heartbeats", &self.counters.heartbeats),
            counter("deregistrations", &self.counters.deregistrations),
        ];
        let state = if self.registry.recovering() {
            "recovering"
        } else {
            "serving"
        };
        Ok(Response::new(Stats {
            kind: "directory".into(),
            id: "directory".into(),
            state: state.into(),
            uptime_ms: self.started_at.elapsed().as_millis() as u64,
            queues,
            counters,
            histograms: Vec::new(),
            taken_at_ms: unix_ms(),
        }))
    }
}

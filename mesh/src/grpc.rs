//! The gRPC server every owlmesh service runs: its own services, plus `grpc.health.v1` and
//! server reflection (v1 and v1alpha) so `grpcurl list` and `describe` work everywhere, and
//! the caller's trace continued on every call that carries one, and every call's token
//! checked (see [`crate::auth`]); over TLS when the process has a certificate (see
//! [`crate::tls`]).
//!
//! Reflection advertises only the services this port serves, and a call of any other
//! service answers UNIMPLEMENTED with a message that says what is served here.

mod connections;
mod not_served;

pub use connections::MAX_CONNECTIONS;

use std::convert::Infallible;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tonic_reflection::pb::{v1, v1alpha};

use crate::Result;
use crate::auth::{self, AuthLayer};
use crate::tls::{self, ServerTls};

/// Streams one connection may have open at once on any server: a member uses a handful
/// (membership watches, a work session, archive streams), so thousands from one peer can
/// only be an attack on the server's memory.
pub const MAX_CONCURRENT_STREAMS: u32 = 256;
/// The largest header block a call may send (HTTP/2 `SETTINGS_MAX_HEADER_LIST_SIZE`): the
/// token and trace context need a few hundred bytes.
pub const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;

/// A gRPC server under construction: health is already in, reflection is added when it
/// serves, once every service it advertises is known.
pub struct GrpcServer {
    routes: RoutesBuilder,
    health: ServiceHealth,
    max_connections: usize,
    /// TLS other than the installed setting's, e.g. in a test.
    tls: Option<ServerTls>,
}

/// Sets the health status of every service of one server at once.
///
/// A server starts NOT_SERVING; its owner marks it SERVING once its dependencies (database,
/// upstream channels) are ready, and [`GrpcServer::serve`] marks it NOT_SERVING as soon as
/// shutdown begins.
#[derive(Clone)]
pub struct ServiceHealth {
    reporter: HealthReporter,
    service_names: Vec<&'static str>,
    /// The status last set, `None` until someone sets one.
    status: Arc<Mutex<Option<ServingStatus>>>,
}

impl ServiceHealth {
    /// Reports SERVING for the server ("") and each of its services.
    pub async fn set_serving(&self) {
        self.set(ServingStatus::Serving).await;
    }

    /// Reports NOT_SERVING for the server ("") and each of its services.
    pub async fn set_not_serving(&self) {
        self.set(ServingStatus::NotServing).await;
    }

    async fn set(&self, status: ServingStatus) {
        *self.status.lock().await = Some(status);
        self.report(status).await;
    }

    /// Reports NOT_SERVING unless the owner already set a status.
    async fn set_initial(&self) {
        let mut current = self.status.lock().await;
        if current.is_none() {
            *current = Some(ServingStatus::NotServing);
            self.report(ServingStatus::NotServing).await;
        }
    }

    async fn report(&self, status: ServingStatus) {
        self.reporter.set_service_status("", status).await;
        for name in &self.service_names {
            self.reporter.set_service_status(*name, status).await;
        }
    }
}

impl Default for GrpcServer {
    fn default() -> Self {
        Self::new()
    }
}

impl GrpcServer {
    /// A server with health and reflection for the owlmesh API.
    pub fn new() -> Self {
        let (reporter, health_service) = tonic_health::server::health_reporter();
        let mut routes = RoutesBuilder::default();
        routes.add_service(health_service);
        Self {
            routes,
            health: ServiceHealth {
                reporter,
                service_names: Vec::new(),
                status: Arc::default(),
            },
            max_connections: MAX_CONNECTIONS,
            tls: None,
        }
    }

    /// Serves over `tls` instead of the process's installed TLS setting.
    pub fn with_tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Holds at most `max` connections open at once instead of [`MAX_CONNECTIONS`].
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// Adds one of the service's gRPC services.
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: tower::Service<http::Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.health.service_names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// The handle that switches this server's health status.
    pub fn health(&self) -> ServiceHealth {
        self.health.clone()
    }

    /// Serves on `listener` until `shutdown` is cancelled, then drains in-flight calls.
    pub async fn serve(self, listener: TcpListener, shutdown: CancellationToken) -> Result<()> {
        let health = self.health.clone();
        health.set_initial().await;
        let signal = async move {
            shutdown.cancelled().await;
            health.set_not_serving().await;
        };
        let incoming = connections::limited(listener, self.max_connections);
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = self.tls.clone().or_else(|| tls::setting().server) {
            builder = builder.tls_config(tls.config())?;
        }
        builder
            .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
            .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(10)))
            .layer(crate::trace_layer::layer())
            .layer(AuthLayer::new(auth::identity().trusted))
            .add_routes(self.into_routes())
            .serve_with_incoming_shutdown(incoming, signal)
            .await?;
        Ok(())
    }

    /// This port's own services, then health and reflection: what reflection lists and
    /// what a call of another service is told is served here.
    fn served(&self) -> Vec<&'static str> {
        let mut served = self.health.service_names.clone();
        served.extend([
            tonic_health::pb::health_server::SERVICE_NAME,
            v1::server_reflection_server::SERVICE_NAME,
            v1alpha::server_reflection_server::SERVICE_NAME,
        ]);
        served
    }

    /// The routes with reflection in and the fallback that names what is served.
    fn into_routes(self) -> tonic::service::Routes {
        let served = self.served();
        let mut routes = self.routes;
        routes.add_service(
            reflection_builder(&served)
                .build_v1()
                .expect("the compiled descriptor sets are valid"),
        );
        routes.add_service(
            reflection_builder(&served)
                .build_v1alpha()
                .expect("the compiled descriptor sets are valid"),
        );
        let router = routes.routes().into_axum_router();
        not_served::fallback(router, &served).into()
    }
}

/// Reflection that knows every owlmesh message (so `describe` resolves every type a served
/// service uses) but advertises only `served`: without the names it would list every service
/// of the descriptor sets, the other kinds' too.
///
/// Both reflection versions' descriptors are in both services, as each would otherwise only
/// know its own and fail to describe the other, which it advertises.
fn reflection_builder(served: &[&'static str]) -> tonic_reflection::server::Builder<'static> {
    served.iter().fold(
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(owlmesh_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(v1alpha::FILE_DESCRIPTOR_SET),
        |builder, name| builder.with_service_name(*name),
    )
}

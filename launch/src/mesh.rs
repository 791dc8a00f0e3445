//! The CLI's view of a running mesh: found through the directory, dispatchers called in
//! failover order, archivers read shard by shard.

use std::time::Duration;

use anyhow::{Context, bail};
use owlmesh_mesh::MeshError;
use owlmesh_mesh::api;
use owlmesh_mesh::auth::MeshChannel;
use owlmesh_mesh::client::{
    ChannelOptions, FailoverChannel, MembershipWatcher, connect, connect_lazy,
};
use owlmesh_proto::v1::directory_client::DirectoryClient;
use owlmesh_proto::v1::dispatcher_client::DispatcherClient;
use owlmesh_proto::v1::{Instance, ListRequest, ResolveRequest};

/// How long one call may take before the CLI gives up on an instance.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to a running mesh.
pub(crate) struct Mesh {
    directory: DirectoryClient<MeshChannel>,
    address: String,
}

impl Mesh {
    /// Connects to the first directory that answers.
    pub(crate) async fn connect(directories: &[String]) -> anyhow::Result<Self> {
        for address in directories {
            let options = ChannelOptions {
                request_timeout: Some(CALL_TIMEOUT),
                ..Default::default()
            };
            match connect(address, &options).await {
                Ok(channel) => {
                    return Ok(Self {
                        directory: api::directory_client(channel),
                        address: address.clone(),
                    });
                }
                Err(MeshError::InvalidArgument { .. }) => {
                    bail!("--directory {address:?} is not host:port")
                }
                Err(_) => {}
            }
        }
        bail!(
            "cannot reach the directory at {} (is the mesh running? start it with `owlmesh up`)",
            directories.join(", ")
        )
    }

    /// The directory client.
    pub(crate) fn directory(&self) -> DirectoryClient<MeshChannel> {
        self.directory.clone()
    }

    /// Live instances of `kind` ("" for all).
    pub(crate) async fn list(&self, kind: &str) -> anyhow::Result<Vec<Instance>> {
        let request = ListRequest { kind: kind.into() };
        let membership = self
            .directory()
            .list(request)
            .await
            .map_err(with_tls_hint)
            .with_context(|| format!("listing the mesh at {}", self.address))?;
        Ok(membership.into_inner().instances)
    }

    /// Dispatchers in failover order, as one channel that moves down the list on failure.
    pub(crate) async fn dispatchers(&self) -> anyhow::Result<FailoverChannel> {
        let request = ResolveRequest {
            kind: "dispatcher".into(),
        };
        let resolved = self
            .directory()
            .resolve(request)
            .await
            .map_err(with_tls_hint)
            .with_context(|| format!("asking the directory at {} for dispatchers", self.address))?
            .into_inner();
        if resolved.instances.is_empty() {
            bail!("no dispatcher is running in the mesh at {}", self.address);
        }
        let options = ChannelOptions {
            request_timeout: Some(CALL_TIMEOUT),
            ..Default::default()
        };
        Ok(FailoverChannel::new(
            MembershipWatcher::fixed(resolved.instances),
            options,
        ))
    }

    /// Calls the primary dispatcher (or the next one in order if it does not answer).
    pub(crate) async fn with_dispatcher<T, F, Fut>(&self, call: F) -> anyhow::Result<T>
    where
        F: FnMut(DispatcherClient<MeshChannel>) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        let dispatchers = self.dispatchers().await?;
        let mut call = call;
        let answer = dispatchers
            .call(|channel, _| call(api::dispatcher_client(channel)))
            .await;
        answer.map_err(status_error)
    }

    /// A channel to one instance (for streams, no request deadline).
    pub(crate) fn channel(&self, instance: &Instance) -> anyhow::Result<MeshChannel> {
        Ok(connect_lazy(&instance.address, &ChannelOptions::default())?)
    }
}

/// A gRPC error as one line for people: the server's message, which names the field.
pub(crate) fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{} ({:?})", status.message(), status.code())
}

/// A call that failed below gRPC (the connection closed or never came up), with what the
/// command's TLS suggests: a server that wants TLS closes a plaintext connection, and one
/// that wants a client certificate closes a connection without one, both without a word.
fn with_tls_hint(status: tonic::Status) -> anyhow::Error {
    use tonic::Code;
    let hint = match owlmesh_mesh::tls::setting().client {
        _ if !matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Cancelled
        ) =>
        {
            ""
        }
        None => {
            " (if the mesh runs with TLS, give --tls-ca, --tls-cert and --tls-key, or run from \
             the folder of `owlmesh up --tls`)"
        }
        Some(tls) if !tls.presents_certificate() => {
            " (if the mesh requires client certificates, give --tls-cert and --tls-key)"
        }
        Some(_) => "",
    };
    anyhow::anyhow!("{}{hint}", status.message())
}

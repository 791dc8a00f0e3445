//! One reusable gRPC channel per instance address, each carrying this process's token and
//! dialling with its TLS setting (see [`crate::tls`]): every channel of the mesh is made here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::transport::Endpoint;

use crate::auth::{self, MeshChannel};
use crate::tls::{self, ClientTls};
use crate::{MeshError, Result};

/// How long to wait for a TCP connection before trying the next instance.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Connect and request timeouts of pooled channels.
#[derive(Debug, Clone)]
pub struct ChannelOptions {
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Deadline of each call; leave `None` for channels that carry long-lived streams.
    pub request_timeout: Option<Duration>,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: None,
        }
    }
}

/// Channels by address, created lazily and reused: one HTTP/2 connection per instance.
#[derive(Debug, Clone, Default)]
pub struct ChannelPool {
    channels: Arc<Mutex<HashMap<String, MeshChannel>>>,
    options: ChannelOptions,
}

impl ChannelPool {
    /// An empty pool whose channels use `options`.
    pub fn new(options: ChannelOptions) -> Self {
        Self {
            channels: Arc::default(),
            options,
        }
    }

    /// The channel to `address` (host:port), created on first use.
    pub fn get(&self, address: &str) -> Result<MeshChannel> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get(address) {
            return Ok(channel.clone());
        }
        let channel = connect_lazy(address, &self.options)?;
        channels.insert(address.to_owned(), channel.clone());
        Ok(channel)
    }
}

/// An endpoint for `address` (host:port) with the given timeouts: `https` with `tls`,
/// plain HTTP/2 without.
fn endpoint(address: &str, options: &ChannelOptions, tls: Option<&ClientTls>) -> Result<Endpoint> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let endpoint = Endpoint::from_shared(format!("{scheme}://{address}")).map_err(|error| {
        MeshError::InvalidArgument {
            field: "address",
            reason: format!("{address:?} is not host:port: {error}"),
        }
    })?;
    let endpoint = match tls {
        Some(tls) => endpoint.tls_config(tls.config())?,
        None => endpoint,
    };
    let endpoint = endpoint
        .connect_timeout(options.connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_while_idle(true);
    Ok(match options.request_timeout {
        Some(timeout) => endpoint.timeout(timeout),
        None => endpoint,
    })
}

/// A channel to `address` that connects on first use; its calls carry this process's token
/// over its TLS setting.
pub fn connect_lazy(address: &str, options: &ChannelOptions) -> Result<MeshChannel> {
    let channel = endpoint(address, options, tls::setting().client.as_ref())?.connect_lazy();
    Ok(auth::identity().credentials.attach(channel))
}

/// A channel to `address`, connected now; its calls carry this process's token over its
/// TLS setting.
pub async fn connect(address: &str, options: &ChannelOptions) -> Result<MeshChannel> {
    connect_with_tls(address, options, tls::setting().client.as_ref()).await
}

/// [`connect`] with `tls` (`None`: plain HTTP/2) instead of the installed setting: for a
/// process that talks to meshes of different CAs, such as a test.
pub async fn connect_with_tls(
    address: &str,
    options: &ChannelOptions,
    tls: Option<&ClientTls>,
) -> Result<MeshChannel> {
    let channel = endpoint(address, options, tls)?.connect().await?;
    Ok(auth::identity().credentials.attach(channel))
}

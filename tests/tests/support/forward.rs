//! A TCP forwarder in the test process: what makes a server that listens on loopback only
//! (PostgreSQL here) reachable from the multi-host tests' namespaces over the bridge. A host
//! cut off the bridge finds its connections through it stalled, as with a real server.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Forwards every connection made to [`Forwarder::address`] to a target; stops, its
/// connections closed, when dropped.
pub struct Forwarder {
    /// Where it listens.
    pub address: SocketAddr,
    stop: CancellationToken,
}

impl Forwarder {
    /// Listens on `listen` (port 0: a free one) and forwards to `target`.
    pub async fn start(listen: SocketAddr, target: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        let stop = CancellationToken::new();
        tokio::spawn(forward(listener, target, stop.clone()));
        Ok(Self { address, stop })
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Accepts until `stop`, copying each connection both ways; the connections' tasks end
/// with it (dropping the set aborts them).
async fn forward(listener: TcpListener, target: SocketAddr, stop: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => {
                let Ok((mut inbound, _)) = accepted else { continue };
                connections.spawn(async move {
                    let mut outbound = TcpStream::connect(target).await?;
                    // Small queries: send each at once rather than wait for more.
                    inbound.set_nodelay(true)?;
                    outbound.set_nodelay(true)?;
                    tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await?;
                    std::io::Result::Ok(())
                });
            }
            // Reaps finished connections, so that the set does not grow with the test.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

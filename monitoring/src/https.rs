//! The page over HTTPS when the process has a certificate (`--tls-cert`, `--tls-key`): a
//! listener that hands axum connections whose TLS handshake is done.
//!
//! Handshakes run in tasks of their own, at most [`MAX_PENDING_HANDSHAKES`] at once and each
//! for at most [`TLS_HANDSHAKE_TIMEOUT`], so a peer that connects and stays silent holds
//! neither the accept loop nor a slot for long. No client certificate is asked for: a
//! browser has none, and the page wants a reader's token in any case.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use owlmesh_mesh::tls::TLS_HANDSHAKE_TIMEOUT;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::debug;

/// TLS handshakes of the page in progress at once; further connections wait to be accepted.
pub const MAX_PENDING_HANDSHAKES: usize = 64;

/// Connections whose handshake is done, for `axum::serve`.
pub(crate) struct HttpsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    address: SocketAddr,
}

impl HttpsListener {
    /// Accepts on `listener` and shakes hands with `config`; stops accepting once the
    /// returned listener is dropped.
    pub(crate) fn new(
        listener: TcpListener,
        config: Arc<rustls::ServerConfig>,
    ) -> io::Result<Self> {
        let address = listener.local_addr()?;
        let (sender, ready) = mpsc::channel(MAX_PENDING_HANDSHAKES);
        tokio::spawn(accept(listener, TlsAcceptor::from(config), sender));
        Ok(Self { ready, address })
    }
}

impl axum::serve::Listener for HttpsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop ends only when this listener is gone or its socket failed for
            // good; either way no connection comes again.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.address)
    }
}

/// Accepts connections and shakes hands with each in a task, until `ready` is closed.
async fn accept(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let slots = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let accepted = tokio::select! {
            () = ready.closed() => return,
            accepted = async {
                let slot = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
                (slot, listener.accept().await)
            } => accepted,
        };
        let (slot, (stream, peer)) = match accepted {
            (slot, Ok(connection)) => (slot, connection),
            (_, Err(error)) => {
                // Out of file descriptors and the like: pause rather than spin.
                debug!(%error, "cannot accept a dashboard connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _ = stream.set_nodelay(true);
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(connection)) => {
                    let _ = ready.send((connection, peer)).await;
                }
                Ok(Err(error)) => debug!(%peer, %error, "dashboard TLS handshake failed"),
                Err(_) => debug!(%peer, "dashboard TLS handshake timed out"),
            }
        });
    }
}

//! The connections one server holds open at once, capped: each costs memory (HTTP/2 state,
//! buffers, a TLS session), so a peer that opens thousands must not exhaust the server.
//!
//! A connection over the cap is accepted and closed at once, so the peer learns at once
//! instead of waiting in the listen backlog; the members of a mesh each hold one connection
//! per peer, far below the cap.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{Connected, TcpConnectInfo};
use tracing::warn;

/// Connections one gRPC server holds open at once, by default.
pub const MAX_CONNECTIONS: usize = 1024;

/// How long accepting pauses after the operating system refuses to accept (out of file
/// descriptors, say), instead of spinning on the error.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The connections `listener` accepts, at most `limit` open at once.
pub(super) fn limited(
    listener: TcpListener,
    limit: usize,
) -> impl Stream<Item = io::Result<LimitedConnection>> {
    let permits = Arc::new(Semaphore::new(limit));
    futures::stream::unfold((listener, permits), move |(listener, permits)| async move {
        let connection = accept(&listener, &permits, limit).await;
        Some((Ok(connection), (listener, permits)))
    })
}

/// The next connection that fits under the cap.
async fn accept(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
    limit: usize,
) -> LimitedConnection {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(permits).try_acquire_owned() else {
            warn!(%peer, limit, "connection refused: the server holds its maximum of connections");
            drop(stream);
            continue;
        };
        // Small request and answer frames must not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        return LimitedConnection {
            stream,
            _permit: permit,
        };
    }
}

/// An accepted connection that gives its place under the cap back when it closes.
#[derive(Debug)]
pub(super) struct LimitedConnection {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl Connected for LimitedConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for LimitedConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(context, buffer)
    }
}

impl AsyncWrite for LimitedConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(context, buffer)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(context)
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn a_connection_over_the_cap_is_closed_and_its_place_comes_back() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut accepted = Box::pin(limited(listener, 2));

        let first = TcpStream::connect(address).await.unwrap();
        let held_first = accepted.next().await.unwrap().unwrap();
        let _second = TcpStream::connect(address).await.unwrap();
        let _held_second = accepted.next().await.unwrap().unwrap();

        // The third is accepted by the system, then closed by the server: it reads the end.
        let mut third = TcpStream::connect(address).await.unwrap();
        let waiting = tokio::spawn(async move { accepted.next().await.map(|c| c.is_ok()) });
        let mut byte = [0u8; 1];
        assert_eq!(
            third.read(&mut byte).await.unwrap(),
            0,
            "the third was closed"
        );

        // When one of the two closes, the next connection is served.
        drop(held_first);
        drop(first);
        let _fourth = TcpStream::connect(address).await.unwrap();
        assert_eq!(
            waiting.await.unwrap(),
            Some(true),
            "the fourth was accepted"
        );
    }
}

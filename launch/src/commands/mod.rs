//! One module per subcommand.

pub(crate) mod directory;

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

/// Binds `address` and prints the bound address on stdout (scripts read it when port 0 was
/// asked for).
pub(crate) async fn bind(kind: &str, address: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let bound = listener.local_addr()?;
    println!("owlmesh {kind} listening on {bound}");
    Ok(listener)
}

//! One module per subcommand.

pub(crate) mod archiver;
pub(crate) mod directory;
pub(crate) mod dispatcher;
pub(crate) mod export;
pub(crate) mod job;
pub(crate) mod monitoring;
pub(crate) mod scraper;
pub(crate) mod services;
pub(crate) mod try_page;
pub(crate) mod up;

use crate::output::outln;
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
    outln!("owlmesh {kind} listening on {bound}")?;
    Ok(listener)
}

/// Refuses, before anything starts, a service whose registered address nobody could dial:
/// one listening on an unspecified address (0.0.0.0 or [::]) without `--advertise`.
pub(crate) fn check_dialable(listen: SocketAddr, advertise: Option<&str>) -> anyhow::Result<()> {
    if advertise.is_none() && listen.ip().is_unspecified() {
        anyhow::bail!(
            "--listen {listen} is not an address others can dial: give --advertise HOST:PORT, \
             the address other hosts reach this service at"
        );
    }
    Ok(())
}

/// The instance id: the one given, or the kind and the bound port.
pub(crate) fn instance_id(kind: &str, given: Option<String>, listener: &TcpListener) -> String {
    given.unwrap_or_else(|| {
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        format!("{kind}-{port}")
    })
}

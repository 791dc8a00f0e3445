//! Joining the mesh: serve gRPC, register in the directory, and leave in the right order.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use owlmesh_proto::v1::Instance;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::client::{LoadReporter, Registrar, RegistrarConfig};
use crate::grpc::GrpcServer;
use crate::{MeshError, Result, is_host_port};

/// Who a service is in the mesh and where its directories are.
#[derive(Debug, Clone)]
pub struct MemberConfig {
    /// Service kind, e.g. "scraper".
    pub kind: String,
    /// Instance id, unique within the kind.
    pub id: String,
    /// Failover order (dispatchers): lower first.
    pub priority: i32,
    /// Directory addresses (host:port).
    pub directories: Vec<String>,
    /// The address others should dial (`--advertise`), `host:port` as [`check_advertise`]
    /// accepts; port 0 stands for the port the listener bound. `None` registers the
    /// listener's own address, which must then be one others can dial.
    pub advertise: Option<String>,
    /// Free-form labels.
    pub labels: HashMap<String, String>,
}

/// A service that is serving and registered.
pub struct MeshMember {
    registrar: Registrar,
    stop_serving: CancellationToken,
    serving: JoinHandle<Result<()>>,
    address: String,
}

impl MeshMember {
    /// Serves `server` on `listener` (reporting SERVING) and registers it.
    pub async fn join(
        server: GrpcServer,
        listener: TcpListener,
        config: MemberConfig,
    ) -> Result<Self> {
        let address = advertised_address(config.advertise.as_deref(), listener.local_addr()?)?;
        server.health().set_serving().await;
        let stop_serving = CancellationToken::new();
        let serving = tokio::spawn(server.serve(listener, stop_serving.clone()));
        let registrar = Registrar::start(RegistrarConfig {
            directories: config.directories,
            instance: Instance {
                kind: config.kind.clone(),
                id: config.id.clone(),
                address: address.clone(),
                priority: config.priority,
                labels: config.labels,
                ..Default::default()
            },
        });
        info!(kind = %config.kind, id = %config.id, %address, "joined the mesh");
        Ok(Self {
            registrar,
            stop_serving,
            serving,
            address,
        })
    }

    /// The address the member registered.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Reports load with the heartbeats.
    pub fn load_reporter(&self) -> LoadReporter {
        self.registrar.load_reporter()
    }

    /// Waits until a directory has accepted the registration.
    pub async fn wait_registered(&self) {
        self.registrar.wait_registered().await;
    }

    /// Leaves: deregisters first so traffic moves elsewhere, then stops serving and drains.
    pub async fn leave(self) -> Result<()> {
        self.registrar.shutdown().await;
        self.stop_serving.cancel();
        match self.serving.await {
            Ok(result) => result,
            Err(_) => Ok(()),
        }
    }
}

/// Checks an advertised address: `host:port` (see [`is_host_port`]) whose host is not an
/// unspecified address; port 0 is allowed and stands for the port the listener bound, for a
/// service that listens on port 0 behind a name or address of its own.
pub fn check_advertise(address: &str) -> std::result::Result<(), String> {
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(format!("{address:?} is not host:port"));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{address:?} is not host:port (the port is not a number)"))?;
    // Port 0 passes the shape check as any port would.
    let shape = format!("{host}:{}", port.max(1));
    if !is_host_port(&shape) {
        return Err(format!("{address:?} is not host:port"));
    }
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>();
    if ip.is_ok_and(|ip| ip.is_unspecified()) {
        return Err(format!(
            "{address:?} is not an address others can dial: give the host other hosts reach this \
             service at"
        ));
    }
    Ok(())
}

/// The address a member registers: `advertise`, its port 0 replaced by the port of `bound`;
/// without it, `bound` itself, refused when it is unspecified (`0.0.0.0` or `[::]`), since a
/// registration nobody can dial would take its share of the work and never do it.
pub fn advertised_address(advertise: Option<&str>, bound: SocketAddr) -> Result<String> {
    let invalid = |reason: String| MeshError::InvalidArgument {
        field: "advertise",
        reason,
    };
    let Some(advertise) = advertise else {
        if bound.ip().is_unspecified() {
            return Err(invalid(format!(
                "the listener's address {bound} is not an address others can dial: give the \
                 address other hosts reach this service at"
            )));
        }
        return Ok(bound.to_string());
    };
    check_advertise(advertise).map_err(invalid)?;
    match advertise.rsplit_once(':') {
        Some((host, "0")) => Ok(format!("{host}:{}", bound.port())),
        _ => Ok(advertise.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(address: &str) -> SocketAddr {
        address.parse().unwrap()
    }

    #[test]
    fn the_listener_address_is_registered_without_advertise() {
        let address = advertised_address(None, bound("127.0.0.1:7801")).unwrap();
        assert_eq!(address, "127.0.0.1:7801");
    }

    #[test]
    fn an_unspecified_listener_without_advertise_is_refused() {
        for listen in ["0.0.0.0:7801", "[::]:7801"] {
            let error = advertised_address(None, bound(listen)).unwrap_err();
            let message = error.to_string();
            assert!(message.starts_with("advertise: "), "{message}");
            assert!(message.contains(listen), "{message}");
        }
    }

    #[test]
    fn advertise_wins_and_its_port_zero_is_the_bound_port() {
        let listen = bound("0.0.0.0:7801");
        let named = advertised_address(Some("scraper-1.internal:9000"), listen).unwrap();
        assert_eq!(named, "scraper-1.internal:9000");
        let bound_port = advertised_address(Some("10.0.0.7:0"), listen).unwrap();
        assert_eq!(bound_port, "10.0.0.7:7801");
        let v6 = advertised_address(Some("[fd00::7]:0"), listen).unwrap();
        assert_eq!(v6, "[fd00::7]:7801");
    }

    #[test]
    fn an_advertise_that_cannot_be_dialled_is_refused() {
        for bad in [
            "10.0.0.7",
            ":7801",
            "http://10.0.0.7:80",
            "host:port",
            "0.0.0.0:7801",
            "[::]:7801",
            "10.0.0.7:70000",
        ] {
            assert!(check_advertise(bad).is_err(), "{bad}");
            assert!(
                advertised_address(Some(bad), bound("127.0.0.1:1")).is_err(),
                "{bad}"
            );
        }
    }
}

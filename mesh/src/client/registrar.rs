//! Keeps one instance registered with every directory it knows.
//!
//! Per directory, a task registers, heartbeats on a `KeepAlive` stream, registers again at
//! once when a heartbeat answers NOT_FOUND (the directory restarted or the lease expired),
//! and reconnects with backoff while the directory is away. On shutdown it deregisters.

use std::sync::Arc;
use std::time::Duration;

use owlmesh_proto::v1::directory_client::DirectoryClient;
use owlmesh_proto::v1::{DeregisterRequest, HeartbeatRequest, Instance, Load, RegisterRequest};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};
use tracing::{debug, info, warn};

use super::backoff::Backoff;
use super::channels::{ChannelOptions, connect_lazy};
use crate::api;
use crate::auth::MeshChannel;

/// How long a graceful deregistration may take per directory.
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(1);
/// First pause before registering again with a directory that does not answer.
const RETRY_INITIAL: Duration = Duration::from_millis(100);
/// Longest pause between two attempts, until a directory has said how often to heartbeat;
/// from then on the pauses stay within that interval (a third of the lease TTL), so that a
/// directory that restarts has every instance back within one TTL, however long it was away.
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Who to register, and where.
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    /// Directory addresses (host:port); the instance registers with each.
    pub directories: Vec<String>,
    /// The instance to register (kind, id, address, priority, labels).
    pub instance: Instance,
}

/// A running registration; dropping it without [`Registrar::shutdown`] stops heartbeats and
/// lets the directories notice through the closed stream.
pub struct Registrar {
    load: LoadReporter,
    registered: watch::Receiver<usize>,
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

impl Registrar {
    /// Starts registering `config.instance` with every directory.
    pub fn start(config: RegistrarConfig) -> Self {
        let (load, load_receiver) = watch::channel(Load::default());
        let (registered_sender, registered) = watch::channel(0);
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for directory in config.directories {
            let session = Session {
                directory,
                instance: config.instance.clone(),
                load: load_receiver.clone(),
                registered: registered_sender.clone(),
                stop: stop.clone(),
            };
            tasks.spawn(session.run());
        }
        Self {
            load: LoadReporter(Arc::new(load)),
            registered,
            stop,
            tasks,
        }
    }

    /// Reports a new load with the next heartbeat.
    pub fn set_load(&self, load: Load) {
        self.load.set(load);
    }

    /// A handle that reports load, for the parts of a service that know it.
    pub fn load_reporter(&self) -> LoadReporter {
        self.load.clone()
    }

    /// Waits until at least one directory has accepted the registration.
    pub async fn wait_registered(&self) {
        let mut registered = self.registered.clone();
        let _ = registered.wait_for(|count| *count > 0).await;
    }

    /// Stops heartbeating and deregisters from every directory (bounded in time).
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Reports an instance's load with its heartbeats; cheap to clone.
#[derive(Clone)]
pub struct LoadReporter(Arc<watch::Sender<Load>>);

impl LoadReporter {
    /// The load to send with the next heartbeat.
    pub fn set(&self, load: Load) {
        self.0.send_replace(load);
    }
}

struct Session {
    directory: String,
    instance: Instance,
    load: watch::Receiver<Load>,
    registered: watch::Sender<usize>,
    stop: CancellationToken,
}

impl Session {
    async fn run(mut self) {
        let options = ChannelOptions::default();
        let channel = match connect_lazy(&self.directory, &options) {
            Ok(channel) => channel,
            Err(error) => {
                warn!(directory = %self.directory, %error, "cannot register");
                return;
            }
        };
        let mut client = api::directory_client(channel);
        let mut backoff = Backoff::new(RETRY_INITIAL, RETRY_MAX);
        let mut lease_id = None;
        let mut was_failing = false;
        while !self.stop.is_cancelled() {
            let error = self
                .keep_alive(&mut client, &mut lease_id, &mut backoff)
                .await;
            let Err(status) = error else { break };
            if status.code() == Code::NotFound {
                info!(directory = %self.directory, "lease lost: registering again");
                continue;
            }
            if !was_failing {
                warn!(directory = %self.directory, error = %status.message(), "directory unreachable: retrying");
            }
            was_failing = true;
            tokio::select! {
                _ = self.stop.cancelled() => break,
                _ = tokio::time::sleep(backoff.next_delay()) => {}
            }
        }
        if let Some(lease_id) = lease_id {
            let request = tonic::Request::new(DeregisterRequest { lease_id });
            let _ = tokio::time::timeout(DEREGISTER_TIMEOUT, client.deregister(request)).await;
            debug!(directory = %self.directory, "deregistered");
        }
    }

    /// Registers, then heartbeats until stopped (`Ok`) or the session fails (`Err`).
    async fn keep_alive(
        &mut self,
        client: &mut DirectoryClient<MeshChannel>,
        lease_id: &mut Option<String>,
        backoff: &mut Backoff,
    ) -> Result<(), Status> {
        let request = RegisterRequest {
            instance: Some(self.instance.clone()),
        };
        let lease = client.register(request).await?.into_inner();
        *lease_id = Some(lease.lease_id.clone());
        let heartbeat = Duration::from_millis(u64::from(lease.heartbeat_ms));
        *backoff = Backoff::new(RETRY_INITIAL, heartbeat.clamp(RETRY_INITIAL, RETRY_MAX));
        self.registered.send_modify(|count| *count += 1);
        let result = self
            .heartbeat(client, &lease.lease_id, lease.heartbeat_ms)
            .await;
        self.registered.send_modify(|count| *count -= 1);
        result
    }

    async fn heartbeat(
        &mut self,
        client: &mut DirectoryClient<MeshChannel>,
        lease_id: &str,
        heartbeat_ms: u32,
    ) -> Result<(), Status> {
        let (sender, receiver) = mpsc::channel(2);
        let heartbeat = |load: Load| HeartbeatRequest {
            lease_id: lease_id.to_owned(),
            load: Some(load),
        };
        let _ = sender.try_send(heartbeat(*self.load.borrow()));
        let mut answers = client
            .keep_alive(ReceiverStream::new(receiver))
            .await?
            .into_inner();
        let period = Duration::from_millis(u64::from(heartbeat_ms.max(10)));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return Ok(()),
                _ = tick.tick() => {
                    let load = *self.load.borrow();
                    if sender.send(heartbeat(load)).await.is_err() {
                        return Err(Status::unavailable("keep-alive stream closed"));
                    }
                }
                answer = answers.message() => match answer {
                    Ok(Some(_)) => {}
                    Ok(None) => return Err(Status::unavailable("keep-alive stream ended")),
                    Err(status) => return Err(status),
                },
            }
        }
    }
}

//! Directory load benchmark: registrations and heartbeats from 1,000 simulated instances,
//! `Route` calls per second, and local ring lookups per second.
//!
//! Run with `cargo bench -p owlmesh-directory --bench directory`. Client and server share
//! the machine, so the figures are a floor for a directory on its own host.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use owlmesh_directory::DirectoryConfig;
use owlmesh_mesh::client::MembershipWatcher;
use owlmesh_proto::v1::directory_client::DirectoryClient;
use owlmesh_proto::v1::{HeartbeatRequest, Instance, Load, RegisterRequest, RouteRequest};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const INSTANCES: usize = 1_000;
const CONNECTIONS: usize = 8;
const PHASE: Duration = Duration::from_secs(3);

fn instance(index: usize) -> Instance {
    Instance {
        kind: "scraper".into(),
        id: format!("scraper-{index}"),
        address: format!("10.0.{}.{}:7801", index / 250, index % 250 + 1),
        ..Default::default()
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let config = DirectoryConfig {
        lease_ttl: Duration::from_secs(10),
    };
    tokio::spawn(owlmesh_directory::serve(listener, config, shutdown.clone()));
    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        let channel = Channel::from_shared(format!("http://{address}"))?;
        channels.push(channel.connect().await?);
    }
    println!("directory benchmark: {INSTANCES} instances, {CONNECTIONS} connections");

    let leases = register_all(&channels).await?;
    let registered = heartbeat_load(&channels, leases).await?;
    route_load(&channels).await?;
    registered.iter().for_each(|task| task.abort());
    local_routing();
    shutdown.cancel();
    Ok(())
}

async fn register_all(channels: &[Channel]) -> anyhow::Result<Vec<String>> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for index in 0..INSTANCES {
        let mut client = DirectoryClient::new(channels[index % CONNECTIONS].clone());
        tasks.push(tokio::spawn(async move {
            let request = RegisterRequest {
                instance: Some(instance(index)),
            };
            client
                .register(request)
                .await
                .map(|lease| lease.into_inner().lease_id)
        }));
    }
    let mut leases = Vec::new();
    for task in tasks {
        leases.push(task.await??);
    }
    let took = started.elapsed();
    report("register", INSTANCES as u64, took);
    Ok(leases)
}

/// Every instance holds a KeepAlive stream and heartbeats as fast as it is answered.
async fn heartbeat_load(
    channels: &[Channel],
    leases: Vec<String>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<anyhow::Result<()>>>> {
    let answered = Arc::new(AtomicU64::new(0));
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    for (index, lease_id) in leases.into_iter().enumerate() {
        let mut client = DirectoryClient::new(channels[index % CONNECTIONS].clone());
        let answered = answered.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let (sender, receiver) = mpsc::channel(1);
            let heartbeat = || HeartbeatRequest {
                lease_id: lease_id.clone(),
                load: Some(Load {
                    free_slots: 8,
                    ..Default::default()
                }),
            };
            sender.send(heartbeat()).await?;
            let mut answers = client
                .keep_alive(ReceiverStream::new(receiver))
                .await?
                .into_inner();
            while let Some(answer) = answers.next().await {
                answer?;
                answered.fetch_add(1, Ordering::Relaxed);
                if stop.is_cancelled() {
                    // Stay registered (the stream stays open) for the routing phase.
                    futures::future::pending::<()>().await;
                }
                sender.send(heartbeat()).await?;
            }
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = answered.load(Ordering::Relaxed);
    tokio::time::sleep(PHASE).await;
    let count = answered.load(Ordering::Relaxed) - before;
    stop.cancel();
    report("heartbeat (keep-alive streams)", count, PHASE);
    Ok(tasks)
}

async fn route_load(channels: &[Channel]) -> anyhow::Result<()> {
    let calls = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + PHASE;
    let mut tasks = Vec::new();
    for worker in 0..64 {
        let mut client = DirectoryClient::new(channels[worker % CONNECTIONS].clone());
        let calls = calls.clone();
        tasks.push(tokio::spawn(async move {
            let mut key = 0u64;
            while Instant::now() < deadline {
                key += 1;
                let request = RouteRequest {
                    kind: "scraper".into(),
                    key: format!("host-{worker}-{key}.example"),
                };
                client.route(request).await?;
                calls.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    report(
        "route (64 concurrent callers)",
        calls.load(Ordering::Relaxed),
        PHASE,
    );
    Ok(())
}

fn local_routing() {
    for members in [10, INSTANCES] {
        let watcher = MembershipWatcher::fixed((0..members).map(instance).collect());
        let view = watcher.view();
        let keys: Vec<String> = (0..100_000).map(|i| format!("host-{i}.example")).collect();
        let started = Instant::now();
        let mut owners = 0usize;
        for _ in 0..10 {
            for key in &keys {
                owners += view.route(key).map_or(0, |owner| owner.id.len());
            }
        }
        std::hint::black_box(owners);
        report(
            &format!("local route lookup ({members} members)"),
            keys.len() as u64 * 10,
            started.elapsed(),
        );
    }
}

fn report(what: &str, count: u64, took: Duration) {
    let rate = count as f64 / took.as_secs_f64();
    println!("{what:<40} {count:>10} in {took:>8.2?}  {rate:>12.0}/s");
}

//! `--advertise`: a service registers the address others dial, not the one it listens on;
//! one listening on every interface without it refuses to start and says what to do.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use owlmesh_mesh::auth::MeshChannel;
use owlmesh_proto::v1::ListRequest;
use owlmesh_proto::v1::directory_client::DirectoryClient;
use owlmesh_tests::eventually;
use support::OwlmeshProcess;

/// How long a service may take to appear in the directory.
const REGISTRATION_DEADLINE: Duration = Duration::from_secs(10);

/// The addresses the directory lists for instances of `kind`.
async fn listed(client: &mut DirectoryClient<MeshChannel>, kind: &str) -> Vec<String> {
    let request = ListRequest { kind: kind.into() };
    match client.list(request).await {
        Ok(answer) => answer
            .into_inner()
            .instances
            .into_iter()
            .map(|instance| instance.address)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Waits until the directory lists exactly `address` for `kind`.
async fn wait_listed(client: &mut DirectoryClient<MeshChannel>, kind: &str, address: &str) {
    let what = format!("the directory lists the {kind} at {address}");
    eventually(REGISTRATION_DEADLINE, &what, || {
        let mut client = client.clone();
        async move { listed(&mut client, kind).await == [address] }
    })
    .await;
}

async fn start_directory() -> (OwlmeshProcess, DirectoryClient<MeshChannel>) {
    let directory = OwlmeshProcess::start(&["directory", "--listen", "127.0.0.1:0"])
        .await
        .unwrap();
    let client = DirectoryClient::new(support::channel(directory.address).await.unwrap());
    (directory, client)
}

#[test]
fn a_service_on_every_interface_without_advertise_refuses_to_start_and_says_what_to_do() {
    for kind in ["dispatcher", "scraper", "archiver", "monitoring"] {
        let data = tempfile::tempdir().unwrap();
        let output = std::process::Command::new(support::owlmesh_bin())
            .args([kind, "--listen", "0.0.0.0:0", "--insecure-no-auth"])
            .arg("--data-dir")
            .arg(data.path())
            .output()
            .expect("run owlmesh");
        assert!(!output.status.success(), "{kind} started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(
                "--listen 0.0.0.0:0 is not an address others can dial: give --advertise \
                 HOST:PORT, the address other hosts reach this service at"
            ),
            "{kind}: {stderr}"
        );
        // Refused before binding: nothing was printed as listening.
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!stdout.contains("listening on"), "{kind}: {stdout}");
    }
}

#[test]
fn an_advertise_that_is_not_host_port_is_named() {
    for (value, reason) in [
        ("10.0.0.7", "is not host:port"),
        ("0.0.0.0:7801", "is not an address others can dial"),
    ] {
        let output = std::process::Command::new(support::owlmesh_bin())
            .args(["scraper", "--advertise", value, "--insecure-no-auth"])
            .output()
            .expect("run owlmesh");
        assert!(!output.status.success(), "{value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--advertise") && stderr.contains(reason),
            "{value}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_lists_the_advertised_address() {
    let (directory, mut client) = start_directory().await;
    let directory = directory.address.to_string();
    let data = tempfile::tempdir().unwrap();
    let data = data.path().display().to_string();
    // A port of this machine that stands for a forwarded one: the directory lists it as given.
    let forwarded = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let advertised = format!("localhost:{}", forwarded.local_addr().unwrap().port());
    let _archiver = OwlmeshProcess::start(&[
        "archiver",
        "--listen",
        "127.0.0.1:0",
        "--advertise",
        &advertised,
        "--directory",
        &directory,
        "--data-dir",
        &data,
        "--no-jsonl",
    ])
    .await
    .unwrap();
    wait_listed(&mut client, "archiver", &advertised).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advertise_port_zero_registers_the_bound_port_and_the_service_answers_there() {
    let (directory, mut client) = start_directory().await;
    let directory = directory.address.to_string();
    let scraper = OwlmeshProcess::start(&[
        "scraper",
        "--listen",
        "0.0.0.0:0",
        "--advertise",
        "127.0.0.1:0",
        "--directory",
        &directory,
    ])
    .await
    .unwrap();
    assert!(scraper.address.ip().is_unspecified(), "{}", scraper.address);
    let advertised = SocketAddr::from(([127, 0, 0, 1], scraper.address.port()));
    wait_listed(&mut client, "scraper", &advertised.to_string()).await;
    // The registered address is one a caller can use.
    let stats = support::stats(advertised).await.unwrap();
    assert_eq!(stats.kind, "scraper");
    assert_eq!(stats.id, format!("scraper-{}", scraper.address.port()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_registers_its_grpc_port_and_page_at_the_advertised_host() {
    let (directory, mut client) = start_directory().await;
    let directory = directory.address.to_string();
    let data = tempfile::tempdir().unwrap();
    let data = data.path().display().to_string();
    let dashboard = OwlmeshProcess::start(&[
        "monitoring",
        "--listen",
        "0.0.0.0:0",
        "--advertise",
        "127.0.0.1:0",
        "--directory",
        &directory,
        "--data-dir",
        &data,
    ])
    .await
    .unwrap();
    let page_port = dashboard.address.port();
    eventually(REGISTRATION_DEADLINE, "the dashboard registers", || {
        let mut client = client.clone();
        async move { listed(&mut client, "monitoring").await.len() == 1 }
    })
    .await;
    let request = ListRequest {
        kind: "monitoring".into(),
    };
    let listing = client.list(request).await.unwrap().into_inner();
    let instance = listing.instances.into_iter().next().unwrap();
    // gRPC on its own port of the advertised host; the page at the advertised address.
    let grpc: SocketAddr = instance.address.parse().unwrap();
    assert_eq!(grpc.ip().to_string(), "127.0.0.1", "{instance:?}");
    assert_ne!(grpc.port(), page_port, "{instance:?}");
    assert_eq!(
        instance.labels["dashboard"],
        format!("http://127.0.0.1:{page_port}/")
    );
    let stats = support::stats(grpc).await.unwrap();
    assert_eq!(stats.kind, "monitoring");
}

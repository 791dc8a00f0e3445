//! The directory and the mesh client, over real sockets: leases, routing, failover,
//! restarts, reflection (each port advertising only what it serves) and bad input.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use owlmesh_mesh::auth::{MeshChannel, TokenSet};
use owlmesh_mesh::client::{
    ChannelOptions, FailoverChannel, MembershipWatcher, Registrar, RegistrarConfig,
};
use owlmesh_proto::v1::directory_client::DirectoryClient;
use owlmesh_proto::v1::telemetry_client::TelemetryClient;
use owlmesh_proto::v1::telemetry_server::{Telemetry, TelemetryServer};
use owlmesh_proto::v1::{
    GetStatsRequest, HeartbeatRequest, Instance, ListRequest, RegisterRequest, RouteRequest, Stats,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, Response, Status};

use owlmesh_tests::eventually;
use support::mesh::{TestMesh, Topology};
use support::{OwlmeshProcess, grpcurl, reflection, start_directory};

fn instance(kind: &str, id: &str, address: &str, priority: i32) -> Instance {
    Instance {
        kind: kind.into(),
        id: id.into(),
        address: address.into(),
        priority,
        ..Default::default()
    }
}

async fn directory_client(address: SocketAddr) -> DirectoryClient<MeshChannel> {
    DirectoryClient::new(
        support::channel(address)
            .await
            .expect("connect to the directory"),
    )
}

async fn register(client: &mut DirectoryClient<MeshChannel>, instance: Instance) -> String {
    let request = RegisterRequest {
        instance: Some(instance),
    };
    client
        .register(request)
        .await
        .unwrap()
        .into_inner()
        .lease_id
}

async fn live_ids(client: &mut DirectoryClient<MeshChannel>, kind: &str) -> Vec<String> {
    let request = ListRequest { kind: kind.into() };
    match client.list(request).await {
        Ok(answer) => answer
            .into_inner()
            .instances
            .into_iter()
            .map(|i| i.id)
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn the_same_key_routes_the_same_way_in_two_directory_processes() {
    let first = OwlmeshProcess::start(&["directory", "--listen", "127.0.0.1:0"])
        .await
        .unwrap();
    let second = OwlmeshProcess::start(&["directory", "--listen", "127.0.0.1:0"])
        .await
        .unwrap();
    let mut clients = [
        directory_client(first.address).await,
        directory_client(second.address).await,
    ];
    // Register in opposite orders: the ring must not depend on arrival order.
    for (index, client) in clients.iter_mut().enumerate() {
        let mut ids: Vec<usize> = (0..5).collect();
        if index == 1 {
            ids.reverse();
        }
        for id in ids {
            let address = format!("127.0.0.1:{}", 7801 + id);
            register(
                client,
                instance("scraper", &format!("scraper-{id}"), &address, 0),
            )
            .await;
        }
    }
    let mut owners_seen = std::collections::HashSet::new();
    for host in 0..200 {
        let key = format!("shop-{host}.example");
        let mut owners = Vec::new();
        for client in &mut clients {
            let request = RouteRequest {
                kind: "scraper".into(),
                key: key.clone(),
            };
            owners.push(client.route(request).await.unwrap().into_inner().id);
        }
        assert_eq!(owners[0], owners[1], "{key} routes differently");
        let local = MembershipWatcher::fixed(
            (0..5)
                .map(|id| instance("scraper", &format!("scraper-{id}"), "127.0.0.1:1", 0))
                .collect(),
        );
        assert_eq!(
            local.view().route_id(&key),
            Some(owners[0].as_str()),
            "local ring disagrees"
        );
        owners_seen.insert(owners[0].clone());
    }
    assert_eq!(owners_seen.len(), 5, "every scraper owns some hosts");
}

#[tokio::test]
async fn a_silent_instance_leaves_list_route_and_watch_within_ttl_plus_one_heartbeat() {
    let ttl = Duration::from_millis(600);
    let (address, _shutdown) = start_directory(ttl).await;
    let mut client = directory_client(address).await;
    let lease = client
        .register(RegisterRequest {
            instance: Some(instance("scraper", "quiet", "127.0.0.1:7801", 0)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(lease.ttl_ms, 600);
    let heartbeat = Duration::from_millis(u64::from(lease.heartbeat_ms));
    let mut watch = client
        .watch(ListRequest {
            kind: "scraper".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.instances.len(), 1);
    let last_heartbeat = Instant::now();
    client
        .heartbeat(HeartbeatRequest {
            lease_id: lease.lease_id.clone(),
            load: None,
        })
        .await
        .unwrap();
    // Now silence. The watch must deliver a snapshot without it.
    let gone = loop {
        let snapshot = watch.message().await.unwrap().unwrap();
        if snapshot.instances.is_empty() {
            break last_heartbeat.elapsed();
        }
    };
    let bound = ttl + heartbeat + Duration::from_millis(300);
    assert!(
        gone <= bound,
        "expired after {gone:?}, expected within {bound:?}"
    );
    assert!(live_ids(&mut client, "scraper").await.is_empty());
    let route = client
        .route(RouteRequest {
            kind: "scraper".into(),
            key: "example.com".into(),
        })
        .await;
    assert_eq!(route.unwrap_err().code(), Code::Unavailable);
    let late = client
        .heartbeat(HeartbeatRequest {
            lease_id: lease.lease_id,
            load: None,
        })
        .await;
    assert_eq!(
        late.unwrap_err().code(),
        Code::NotFound,
        "a late heartbeat is told to register again"
    );
}

#[tokio::test]
async fn a_dropped_keep_alive_stream_removes_the_instance_at_once() {
    let (address, _shutdown) = start_directory(Duration::from_secs(30)).await;
    let mut client = directory_client(address).await;
    let lease_id = register(
        &mut client,
        instance("scraper", "crashy", "127.0.0.1:7801", 0),
    )
    .await;
    // The "process": its own runtime and connection, holding a keep-alive stream. Shutting
    // that runtime down closes its sockets, as the death of a process would.
    let process = tokio::runtime::Runtime::new().unwrap();
    let (held, stream_open) = tokio::sync::oneshot::channel();
    process.spawn(async move {
        let mut own = directory_client(address).await;
        let heartbeats = futures::stream::iter([HeartbeatRequest {
            lease_id,
            load: None,
        }])
        .chain(futures::stream::pending());
        let mut answers = own.keep_alive(heartbeats).await.unwrap().into_inner();
        answers.message().await.unwrap();
        let _ = held.send(());
        futures::future::pending::<()>().await;
    });
    stream_open.await.unwrap();
    assert_eq!(live_ids(&mut client, "scraper").await, ["crashy"]);
    let killed = Instant::now();
    process.shutdown_background();
    let took = eventually(Duration::from_secs(2), "instance removed", || {
        let mut client = client.clone();
        async move { live_ids(&mut client, "scraper").await.is_empty() }
    })
    .await;
    assert!(
        killed.elapsed() < Duration::from_secs(1),
        "removal took {took:?} with a 30 s TTL"
    );
}

use futures::StreamExt as _;

#[tokio::test]
async fn instances_register_again_after_a_directory_restart() {
    let mut directory =
        OwlmeshProcess::start(&["directory", "--listen", "127.0.0.1:0", "--lease-ttl", "1s"])
            .await
            .unwrap();
    let address = directory.address;
    let registrar = Registrar::start(RegistrarConfig {
        directories: vec![address.to_string()],
        instance: instance("scraper", "survivor", "127.0.0.1:7801", 0),
    });
    registrar.wait_registered().await;
    let shutdown = CancellationToken::new();
    let watcher = MembershipWatcher::start(vec![address.to_string()], "scraper", shutdown.clone());
    watcher
        .wait_for(Duration::from_secs(5), |view| {
            view.get("survivor").is_some()
        })
        .await
        .unwrap();

    directory.kill().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        watcher.view().get("survivor").is_some(),
        "the cached view outlives the directory"
    );
    let listen = address.to_string();
    let _restarted =
        OwlmeshProcess::start(&["directory", "--listen", &listen, "--lease-ttl", "1s"])
            .await
            .unwrap();
    let restarted_at = Instant::now();
    let mut client = directory_client(address).await;
    eventually(Duration::from_secs(5), "re-registered", || {
        let mut client = client.clone();
        async move { live_ids(&mut client, "scraper").await == ["survivor"] }
    })
    .await;
    let took = restarted_at.elapsed();
    assert!(
        took <= Duration::from_millis(1500),
        "membership whole after {took:?}, TTL is 1 s"
    );
    assert_eq!(live_ids(&mut client, "scraper").await, ["survivor"]);
    watcher
        .wait_for(Duration::from_secs(5), |view| {
            view.get("survivor").is_some()
        })
        .await
        .unwrap();
    registrar.shutdown().await;
    eventually(Duration::from_secs(2), "deregistered on shutdown", || {
        let mut client = client.clone();
        async move { live_ids(&mut client, "scraper").await.is_empty() }
    })
    .await;
    shutdown.cancel();
}

/// A stand-in service that says who it is.
struct Named(String);

#[tonic::async_trait]
impl Telemetry for Named {
    async fn get_stats(&self, _: Request<GetStatsRequest>) -> Result<Response<Stats>, Status> {
        Ok(Response::new(Stats {
            id: self.0.clone(),
            ..Default::default()
        }))
    }
}

async fn start_named(id: &str) -> (SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = owlmesh_mesh::grpc::GrpcServer::new()
        .add_service(TelemetryServer::new(Named(id.to_owned())));
    tokio::spawn(server.serve(listener, stop.clone()));
    (address, stop)
}

#[tokio::test]
async fn failover_moves_to_the_next_priority_without_surfacing_an_error() {
    let (directory, _shutdown) = start_directory(Duration::from_secs(3)).await;
    let mut servers = Vec::new();
    let mut registrars = Vec::new();
    for priority in 0..3 {
        let id = format!("dispatcher-{priority}");
        let (address, stop) = start_named(&id).await;
        let registrar = Registrar::start(RegistrarConfig {
            directories: vec![directory.to_string()],
            instance: instance("dispatcher", &id, &address.to_string(), priority),
        });
        registrar.wait_registered().await;
        servers.push(stop);
        registrars.push(registrar);
    }
    let members = MembershipWatcher::start(
        vec![directory.to_string()],
        "dispatcher",
        CancellationToken::new(),
    );
    members
        .wait_for(Duration::from_secs(5), |view| view.instances.len() == 3)
        .await
        .unwrap();
    let options = ChannelOptions {
        request_timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    let dispatchers = FailoverChannel::new(members, options);
    let who = || {
        dispatchers.call(|channel, _| async move {
            let stats = TelemetryClient::new(channel)
                .get_stats(GetStatsRequest {})
                .await?;
            Ok(stats.into_inner().id)
        })
    };
    assert_eq!(who().await.unwrap(), "dispatcher-0");
    // Kill the primary's server; its lease is still live in the directory.
    servers[0].cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    assert_eq!(
        who().await.unwrap(),
        "dispatcher-1",
        "the caller sees no error"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "failover took {:?}",
        started.elapsed()
    );
    assert_eq!(
        who().await.unwrap(),
        "dispatcher-1",
        "the dead primary is skipped afterwards"
    );
}

#[tokio::test]
async fn reflection_lists_the_services_and_route_answers_json() {
    let (address, _shutdown) = start_directory(Duration::from_secs(3)).await;
    let mut client = directory_client(address).await;
    register(&mut client, instance("scraper", "s1", "127.0.0.1:7801", 0)).await;
    let channel = support::channel(address).await.unwrap();

    let mut services = reflection::list_services(&channel).await.unwrap();
    services.sort();
    assert_eq!(services, sorted(served_by("owlmesh.v1.Directory")));
    let route = reflection::call_json(
        &channel,
        "owlmesh.v1.Directory",
        "Route",
        r#"{"kind":"scraper","key":"example.com"}"#,
    )
    .await
    .unwrap();
    assert_eq!(route["id"], "s1");
    assert_eq!(route["address"], "127.0.0.1:7801");
    let resolve = reflection::call_json(
        &channel,
        "owlmesh.v1.Directory",
        "List",
        r#"{"kind":"scraper"}"#,
    )
    .await
    .unwrap();
    assert_eq!(resolve["instances"][0]["kind"], "scraper");

    let mut alpha =
        tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient::new(
            channel.clone(),
        );
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut answers = alpha
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    assert!(format!("{:?}", answers.message().await.unwrap()).contains("owlmesh.v1.Directory"));

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    for service in ["", "owlmesh.v1.Directory"] {
        let request = tonic_health::pb::HealthCheckRequest {
            service: service.into(),
        };
        let status = health.check(request).await.unwrap().into_inner().status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }
}

#[tokio::test]
async fn bad_requests_are_rejected_with_the_field_and_reason() {
    let (address, _shutdown) = start_directory(Duration::from_secs(3)).await;
    let mut client = directory_client(address).await;
    let cases = [
        (instance("", "s1", "127.0.0.1:7801", 0), "instance.kind"),
        (instance("scraper", "", "127.0.0.1:7801", 0), "instance.id"),
        (
            instance("scraper", "s1", "127.0.0.1", 0),
            "instance.address",
        ),
        (
            instance("scraper", "s1", "http://x:1/", 0),
            "instance.address",
        ),
    ];
    for (bad, field) in cases {
        let error = client
            .register(RegisterRequest {
                instance: Some(bad),
            })
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument);
        assert!(
            error.message().starts_with(field),
            "{:?} should name {field}",
            error.message()
        );
    }
    let error = client
        .heartbeat(HeartbeatRequest {
            lease_id: "no-such-lease".into(),
            load: None,
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    assert!(
        error.message().contains("no-such-lease"),
        "{}",
        error.message()
    );
    let error = client
        .route(RouteRequest {
            kind: "scraper".into(),
            key: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (error.code(), error.message()),
        (Code::InvalidArgument, "key: must not be empty")
    );
    assert!(
        live_ids(&mut client, "").await.is_empty(),
        "nothing was registered half-way"
    );
}

/// One method of each kind's own service, which no other kind serves.
const OWN_METHODS: [&str; 4] = [
    "owlmesh.v1.Directory/List",
    "owlmesh.v1.Dispatcher/GetJob",
    "owlmesh.v1.Scraper/Try",
    "owlmesh.v1.Archiver/QueryEvents",
];

/// What a port serving `own` serves, in the order its server names them.
fn served_by(own: &str) -> Vec<String> {
    [
        own,
        "owlmesh.v1.Telemetry",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]
    .map(String::from)
    .to_vec()
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

/// The message of a call of `method` on a port that serves `served`.
fn not_served_message(method: &str, served: &[String]) -> String {
    format!(
        "{method} is not served here; this port serves {}",
        served.join(", ")
    )
}

/// A mesh of one process of each kind, and each one's own method and address.
async fn one_of_each_kind() -> (TestMesh, Vec<(&'static str, SocketAddr)>) {
    let topology = Topology {
        dispatchers: 1,
        scrapers: 1,
        archivers: 1,
    };
    let mesh = TestMesh::start(topology, &[]).await.unwrap();
    let ports = OWN_METHODS
        .into_iter()
        .zip([
            mesh.directory.address,
            mesh.dispatchers[0].address,
            mesh.scrapers[0].address,
            mesh.archivers[0].address,
        ])
        .collect();
    (mesh, ports)
}

/// Calls `method` with an empty request through its generated client.
async fn call(channel: &MeshChannel, method: &str) -> Result<(), Status> {
    use owlmesh_proto::v1::archiver_client::ArchiverClient;
    use owlmesh_proto::v1::dispatcher_client::DispatcherClient;
    use owlmesh_proto::v1::scraper_client::ScraperClient;
    use owlmesh_proto::v1::{JobRequest, QueryEventsRequest, TryRequest};
    let channel = channel.clone();
    match method {
        "owlmesh.v1.Directory/List" => DirectoryClient::new(channel)
            .list(ListRequest::default())
            .await
            .map(drop),
        "owlmesh.v1.Dispatcher/GetJob" => DispatcherClient::new(channel)
            .get_job(JobRequest::default())
            .await
            .map(drop),
        "owlmesh.v1.Scraper/Try" => ScraperClient::new(channel)
            .r#try(TryRequest::default())
            .await
            .map(drop),
        "owlmesh.v1.Archiver/QueryEvents" => ArchiverClient::new(channel)
            .query_events(QueryEventsRequest::default())
            .await
            .map(drop),
        other => panic!("no client for {other}"),
    }
}

#[tokio::test]
async fn each_port_advertises_and_answers_only_the_services_it_serves() {
    let (_mesh, ports) = one_of_each_kind().await;
    for (own_method, address) in ports {
        let own = own_method.split_once('/').unwrap().0;
        let served = served_by(own);
        let channel = support::channel(address).await.unwrap();

        let v1 = reflection::list_services(&channel).await.unwrap();
        assert_eq!(sorted(v1), sorted(served.clone()), "v1 reflection of {own}");
        let v1alpha = reflection::list_services_v1alpha(&channel).await.unwrap();
        assert_eq!(
            sorted(v1alpha),
            sorted(served.clone()),
            "v1alpha reflection of {own}"
        );
        for service in &served {
            let pool = reflection::descriptors(&channel, service).await.unwrap();
            assert!(
                pool.get_service_by_name(service).is_some(),
                "{own}'s port cannot describe {service}"
            );
        }

        for method in OWN_METHODS.into_iter().filter(|&m| m != own_method) {
            let status = call(&channel, method).await.unwrap_err();
            assert_eq!(status.code(), Code::Unimplemented, "{method} on {own}");
            assert_eq!(
                status.message(),
                not_served_message(method, &served),
                "{method} on {own}"
            );
        }
        // Its own method is served: whatever it makes of an empty request, not UNIMPLEMENTED.
        if let Err(status) = call(&channel, own_method).await {
            assert_ne!(
                status.code(),
                Code::Unimplemented,
                "{own_method}: {status:?}"
            );
        }
    }
}

#[tokio::test]
async fn grpcurl_lists_describes_and_is_told_what_each_port_serves() {
    let test = "grpcurl_lists_describes_and_is_told_what_each_port_serves";
    let Some(grpcurl) = grpcurl::find(test) else {
        return;
    };
    let (_mesh, ports) = one_of_each_kind().await;
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    for (own_method, address) in ports {
        let own = own_method.split_once('/').unwrap().0;
        let served = served_by(own);
        let address = address.to_string();

        let list = grpcurl::run(&grpcurl, &["-plaintext", &address, "list"])
            .await
            .unwrap();
        assert!(
            list.status.success(),
            "list on {own}: {}",
            text(&list.stderr)
        );
        let lines: Vec<String> = text(&list.stdout).lines().map(String::from).collect();
        assert_eq!(lines, sorted(served.clone()), "grpcurl list on {own}");

        for service in &served {
            let args = ["-plaintext", &address, "describe", service];
            let describe = grpcurl::run(&grpcurl, &args).await.unwrap();
            assert!(
                describe.status.success(),
                "describe {service} on {own}: {}",
                text(&describe.stderr)
            );
            assert!(
                text(&describe.stdout).starts_with(&format!("{service} is a service:")),
                "describe {service} on {own}: {}",
                text(&describe.stdout)
            );
        }

        for method in OWN_METHODS.into_iter().filter(|&m| m != own_method) {
            let args = ["-plaintext", "-d", "{}", &address, method];
            let call = grpcurl::run(&grpcurl, &args).await.unwrap();
            assert!(!call.status.success(), "{method} on {own} succeeded");
            let stderr = text(&call.stderr);
            let expected = format!(
                "Code: Unimplemented\n  Message: {}\n",
                not_served_message(method, &served)
            );
            assert!(
                stderr.contains(&expected),
                "{method} on {own}: expected {expected:?} in {stderr:?}"
            );
        }
    }
}

#[tokio::test]
async fn the_directory_publishes_which_token_registered_an_instance_whatever_it_claims() {
    let directory = OwlmeshProcess::start(&["directory", "--listen", "127.0.0.1:0"])
        .await
        .unwrap();
    let mut client = directory_client(directory.address).await;
    let mut claims = instance("scraper", "scraper-0", "127.0.0.1:7801", 0);
    claims.token_fingerprint = "0".repeat(32);
    register(&mut client, claims).await;

    let request = ListRequest {
        kind: "scraper".into(),
    };
    let listed = client.list(request).await.unwrap().into_inner().instances;
    let tokens = TokenSet::read(support::test_token_file()).unwrap();
    let expected = tokens.own().fingerprint().to_string();
    assert_eq!(listed[0].token_fingerprint, expected);
    assert!(!expected.contains(tokens.own().expose()));
}

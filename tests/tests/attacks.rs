//! Attacks on a real mesh, each with the outcome docs/security.md promises: the attack fails
//! with a reason that says why, and the crawl around it stays whole.
//!
//! - Calls without a token, with an unknown one, or with one whose role does not allow the
//!   call: steering jobs, reading them, registering, opening a work session, writing to the
//!   archive.
//! - Server-side request forgery: a job (or `owlmesh try`) that leads a scraper to an address
//!   the operator did not allow, by seed, by redirect or by robots.txt redirect. The scrapers
//!   are allowed into 127.0.0.2 only; the site on 127.0.0.3 stands in for what must not be
//!   reached (a metadata service, a database), and must hear nothing.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use owlmesh_mesh::auth::{Credentials, MeshChannel, Token, TokenSet};
use owlmesh_proto::v1::archiver_client::ArchiverClient;
use owlmesh_proto::v1::directory_client::DirectoryClient;
use owlmesh_proto::v1::dispatcher_client::DispatcherClient;
use owlmesh_proto::v1::{
    ArchiveBatch, HeldLeases, Instance, JobRequest, ListRequest, RegisterRequest, SubmitJobRequest,
    WorkerHello, WorkerMessage, worker_message,
};
use owlmesh_site::{CatalogueJob, RobotsMode, Site, SiteConfig, paths};
use support::mesh::{TestMesh, Topology};
use tonic::Code;

/// A site of a few products on `127.0.0.<last>` only.
async fn site_on(last: u8, robots: RobotsMode) -> Site {
    Site::start(SiteConfig {
        listen: vec![SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)),
            0,
        )],
        products: 20,
        bad_pages: false,
        robots,
        ..SiteConfig::default()
    })
    .await
    .expect("site")
}

fn encoded(url: &str) -> String {
    url::form_urlencoded::byte_serialize(url.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cannot_lead_a_scraper_outside_the_allowed_networks() {
    let forbidden = site_on(3, RobotsMode::Served).await;
    let allowed = site_on(2, RobotsMode::Redirect(forbidden.url(paths::ROBOTS))).await;
    let topology = Topology {
        dispatchers: 1,
        scrapers: 1,
        archivers: 1,
    };
    let mesh = TestMesh::start(topology, &["--allow-network", "127.0.0.2/32"])
        .await
        .unwrap();

    // By seed, and by the allowed site's open redirect; its robots.txt redirects there too.
    let secret = forbidden.product_url(0);
    let lure = format!(
        "{}?location={}",
        allowed.url(paths::REDIRECT_TO),
        encoded(&forbidden.product_url(1))
    );
    let mut seeds = allowed.seeds();
    seeds.extend([secret.clone(), lure.clone()]);
    let mut hosts = allowed.hosts();
    hosts.extend(forbidden.hosts());
    let job = CatalogueJob::default().toml(&seeds, &hosts);
    let id = mesh.submit(&job).await.unwrap();
    mesh.wait_done(&id, Duration::from_secs(60)).await.unwrap();

    assert!(
        forbidden.requests().is_empty(),
        "the forbidden site heard {:?}",
        forbidden.requests()
    );
    // The crawl of the allowed site is whole.
    mesh.assert_every_product_once(&id, &allowed).await;
    // Each refusal says what was refused and why.
    let outcomes = mesh.events(&id, "outcome").await.unwrap();
    let refusal = |url: &str| {
        outcomes
            .iter()
            .find(|event| event.url == url)
            .map(|event| (event.attributes["status"].clone(), event.message.clone()))
    };
    let blocked = Some((
        "OUTCOME_STATUS_FAILED".to_owned(),
        "blocked address 127.0.0.3 (loopback)".to_owned(),
    ));
    assert_eq!(refusal(&secret), blocked, "{outcomes:?}");
    // The redirect leaves the lure's host, so its target is scheduled as a URL of its own.
    assert_eq!(refusal(&forbidden.product_url(1)), blocked, "{outcomes:?}");

    // `owlmesh try` fetches through a scraper, under the same guard.
    let job_path = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(job_path.path(), &job).unwrap();
    let output = mesh
        .cli(&[
            "try",
            &secret,
            "--job",
            &job_path.path().display().to_string(),
        ])
        .await
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        said.contains("blocked address 127.0.0.3 (loopback)"),
        "owlmesh try said: {said}"
    );
    assert!(
        forbidden.requests().is_empty(),
        "try reached the forbidden site"
    );
}

const READER: &str = "reader-token-of-the-attack-tests";
const OPERATOR: &str = "operator-token-of-the-attack-tests";
/// A member of the mesh, but not the one that registered its services.
const OTHER_MEMBER: &str = "another-member-token-of-the-attack-tests";

/// A channel to `address` whose calls carry `token` (or nothing).
async fn channel_with(address: impl std::fmt::Display, token: Option<&str>) -> MeshChannel {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let credentials = match token {
        Some(token) => Credentials::bearer(&Token::new(token).unwrap()),
        None => Credentials::default(),
    };
    credentials.attach(channel)
}

/// A mesh of one dispatcher, scraper and archiver, accepting the tests' own token (every
/// role, the one its services register with) and `others` (token, roles), and a site of 30
/// products over two hosts for it to crawl. The token file lives as long as the handle.
async fn small_mesh_accepting(
    others: &[(&str, &str)],
) -> (Site, TestMesh, tempfile::NamedTempFile) {
    let tokens = tempfile::NamedTempFile::new().unwrap();
    let own = TokenSet::read(support::test_token_file()).unwrap();
    let mut text = format!("{}\n", own.own().expose());
    for (token, roles) in others {
        text.push_str(&format!("{token} {roles}\n"));
    }
    std::fs::write(tokens.path(), text).unwrap();
    let token_file = tokens.path().display().to_string();
    let site = Site::start(SiteConfig {
        products: 30,
        bad_pages: false,
        ..SiteConfig::spread_over(2)
    })
    .await
    .unwrap();
    let topology = Topology {
        dispatchers: 1,
        scrapers: 1,
        archivers: 1,
    };
    let environment = [("OWLMESH_TOKEN_FILE", token_file.as_str())];
    let mesh = TestMesh::start_with_environment(topology, &[], &[], &environment)
        .await
        .unwrap();
    (site, mesh, tokens)
}

fn refused(result: Result<impl std::fmt::Debug, tonic::Status>, code: Code, says: &str) {
    let status = result.expect_err("the call is refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(status.message().contains(says), "{}", status.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_right_token_nothing_can_be_steered_read_joined_or_written() {
    // The mesh accepts the tests' token (every role), a reader's and an operator's.
    let (site, mesh, _tokens) = small_mesh_accepting(&[
        (READER, "reader"),
        (OPERATOR, "operator"),
        (OTHER_MEMBER, "member"),
    ])
    .await;
    let directory = mesh.directory_address();
    let dispatcher = mesh.dispatchers[0].address;
    let archiver = mesh.archivers[0].address;

    // No token, or a forged one: nothing is answered but what is missing.
    refused(
        DirectoryClient::new(channel_with(&directory, None).await)
            .list(ListRequest::default())
            .await,
        Code::Unauthenticated,
        "needs a token",
    );
    refused(
        DispatcherClient::new(channel_with(dispatcher, Some("forged-token-0123456789")).await)
            .get_job(JobRequest::default())
            .await,
        Code::Unauthenticated,
        "not one this mesh accepts",
    );
    // A reader may read, not steer, join or write.
    let job = CatalogueJob::default().toml(&site.seeds(), &site.hosts());
    let job_path = mesh.data_dir.path().join("attack-job.toml");
    std::fs::write(&job_path, &job).unwrap();
    let job_path = job_path.display().to_string();
    let as_reader = mesh
        .cli(&["job", "submit", &job_path, "--token", READER])
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&as_reader.stderr);
    assert!(
        !as_reader.status.success()
            && said.contains("SubmitJob needs the role operator; this token has reader"),
        "{said}"
    );
    let impostor = |id: &str, priority: i32| RegisterRequest {
        instance: Some(Instance {
            kind: "dispatcher".into(),
            id: id.into(),
            address: "127.0.0.1:9".into(),
            priority,
            ..Default::default()
        }),
    };
    refused(
        DirectoryClient::new(channel_with(&directory, Some(READER)).await)
            .register(impostor("impostor", 0))
            .await,
        Code::PermissionDenied,
        "Register needs the role member",
    );
    // Even a member may not take a live instance's place, jump the failover order, or
    // hand every watcher a membership too large to decode.
    let mut as_member = DirectoryClient::new(channel_with(&directory, Some(OTHER_MEMBER)).await);
    refused(
        as_member.register(impostor("dispatcher-0", 0)).await,
        Code::PermissionDenied,
        "dispatcher dispatcher-0 is live and registered with another token",
    );
    refused(
        as_member.register(impostor("impostor", i32::MIN)).await,
        Code::InvalidArgument,
        "instance.priority: must be between -1000 and 1000",
    );
    let mut bomb = impostor("impostor", 0);
    let labels = &mut bomb.instance.as_mut().unwrap().labels;
    labels.insert("bomb".into(), "x".repeat(512 * 1024));
    refused(
        as_member.register(bomb).await,
        Code::InvalidArgument,
        "instance.labels: value of \"bomb\"",
    );
    let hello = |scraper_id: &str| WorkerMessage {
        message: Some(worker_message::Message::Hello(WorkerHello {
            scraper_id: scraper_id.into(),
            slots: 10,
            ..Default::default()
        })),
    };
    refused(
        DispatcherClient::new(channel_with(dispatcher, Some(OPERATOR)).await)
            .work(futures::stream::iter([hello("scraper-0")]))
            .await,
        Code::PermissionDenied,
        "Work needs the role member",
    );
    // A member's session under an id nobody registered takes no hosts and no work.
    refused(
        DispatcherClient::new(support::channel(dispatcher).await.unwrap())
            .work(futures::stream::iter([hello("ghost-scraper")]))
            .await,
        Code::FailedPrecondition,
        "no scraper \"ghost-scraper\" is registered in the directory",
    );
    refused(
        ArchiverClient::new(channel_with(archiver, Some(READER)).await)
            .archive(futures::stream::iter([ArchiveBatch::default()]))
            .await,
        Code::PermissionDenied,
        "Archive needs the role member",
    );

    // The operator's token submits; the crawl is whole and the impostor never joined.
    let submitted = mesh
        .cli(&["job", "submit", &job_path, "--json", "--token", OPERATOR])
        .await
        .unwrap();
    assert!(submitted.status.success(), "{submitted:?}");
    let answer: serde_json::Value = serde_json::from_slice(&submitted.stdout).unwrap();
    let id = answer["id"].as_str().unwrap().to_owned();
    mesh.wait_done(&id, Duration::from_secs(60)).await.unwrap();
    let items = mesh.export(&id, false).await.unwrap();
    assert_eq!(items.len(), site.expected_products().len());
    let services = mesh.cli_json(&["services"]).await.unwrap();
    assert!(
        !services.to_string().contains("impostor"),
        "the impostor is listed: {services}"
    );
}

/// A URL that hangs its scraper for longer than a lease (or crashes it) comes back each time
/// its lease expires; each expiry counts an attempt, so it fails for good once the job's
/// retries are spent, and the rest of the crawl is not held up by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_url_fails_after_its_retries_and_the_crawl_around_it_completes() {
    let site = Site::start(SiteConfig {
        products: 20,
        bad_pages: false,
        ..SiteConfig::default()
    })
    .await
    .unwrap();
    // A host of its own whose slow page answers long after any lease has expired.
    let poison_site = Site::start(SiteConfig {
        products: 1,
        bad_pages: true,
        ..SiteConfig::default()
    })
    .await
    .unwrap();
    let topology = Topology {
        dispatchers: 1,
        scrapers: 1,
        archivers: 1,
    };
    let mesh = TestMesh::start_with(topology, &["--lease", "1s"], &[])
        .await
        .unwrap();

    let poison = poison_site.url(&format!("{}?ms=120000", paths::SLOW));
    let mut seeds = site.seeds();
    seeds.push(poison.clone());
    let mut hosts = site.hosts();
    hosts.extend(poison_site.hosts());
    let id = mesh
        .submit(&CatalogueJob::default().toml(&seeds, &hosts))
        .await
        .unwrap();
    let status = mesh.wait_done(&id, Duration::from_secs(60)).await.unwrap();

    // The poison fails with its reason; the only other failures are what the poison site's
    // robots.txt disallows.
    let failures: Vec<_> = mesh
        .events(&id, "outcome")
        .await
        .unwrap()
        .into_iter()
        .filter(|event| event.attributes["status"] != "OUTCOME_STATUS_DONE")
        .map(|event| (event.url, event.message))
        .collect();
    // The first attempt and each retry of the job's budget ended in an expired lease.
    let reason = format!(
        "lease expired {} times",
        owlmesh_job::DEFAULT_MAX_RETRIES + 1
    );
    let poison_failures: Vec<_> = failures.iter().filter(|(url, _)| url == &poison).collect();
    assert_eq!(poison_failures, [&(poison.clone(), reason)], "{failures:?}");
    assert!(
        failures
            .iter()
            .all(|(url, reason)| url == &poison || reason == "disallowed by robots.txt"),
        "{failures:?}"
    );
    assert_eq!(status["failed"], failures.len(), "{status} {failures:?}");
    assert!(
        poison_site.request_count(&poison) >= 1,
        "the poison URL was fetched"
    );
    mesh.assert_every_product_once(&id, &site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_open_a_work_session_under_another_members_scraper() {
    // The services register with the tests' token; another member token is valid too.
    let (site, mesh, _tokens) = small_mesh_accepting(&[(OTHER_MEMBER, "member")]).await;
    let dispatcher = mesh.dispatchers[0].address;
    let id = mesh
        .submit(&CatalogueJob::default().toml(&site.seeds(), &site.hosts()))
        .await
        .unwrap();

    // While scraper-0 crawls, a session under its id that says it holds nothing would end
    // its session and hand its leases back; with another member's token it is refused.
    let hijack = WorkerMessage {
        message: Some(worker_message::Message::Hello(WorkerHello {
            scraper_id: "scraper-0".into(),
            slots: 64,
            held: Some(HeldLeases::default()),
        })),
    };
    refused(
        DispatcherClient::new(channel_with(dispatcher, Some(OTHER_MEMBER)).await)
            .work(futures::stream::iter([hijack]))
            .await,
        Code::PermissionDenied,
        "scraper \"scraper-0\" registered with another token",
    );

    // The real scraper kept its session: the crawl is whole, nothing was returned.
    mesh.wait_done(&id, Duration::from_secs(60)).await.unwrap();
    let items = mesh.export(&id, false).await.unwrap();
    assert_eq!(items.len(), site.expected_products().len());
    let stats = support::stats(dispatcher).await.unwrap();
    assert_eq!(support::counter(&stats, "leases_released"), 0);
}

/// A job spec large enough to cost the mesh memory or CPU (too many seeds, a regular
/// expression that compiles to megabytes, a selector nested 200 deep, a spec of megabytes)
/// is refused at submission with the field that is over its limit, by the operator's token
/// as by any other, while a crawl submitted around those attempts completes whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_job_spec_is_refused_naming_its_field_and_the_crawl_around_it_completes() {
    let tokens = tempfile::NamedTempFile::new().unwrap();
    let own = TokenSet::read(support::test_token_file()).unwrap();
    let text = format!("{}\n{OPERATOR} operator\n", own.own().expose());
    std::fs::write(tokens.path(), text).unwrap();
    let token_file = tokens.path().display().to_string();
    let site = Site::start(SiteConfig {
        products: 20,
        bad_pages: false,
        ..SiteConfig::default()
    })
    .await
    .unwrap();
    let topology = Topology {
        dispatchers: 1,
        scrapers: 1,
        archivers: 1,
    };
    let environment = [("OWLMESH_TOKEN_FILE", token_file.as_str())];
    let mesh = TestMesh::start_with_environment(topology, &[], &[], &environment)
        .await
        .unwrap();
    let job = CatalogueJob::default().toml(&site.seeds(), &site.hosts());
    let spec = owlmesh_job::parse_job_toml(&job, "catalogue.toml").unwrap();
    let mut as_operator =
        DispatcherClient::new(channel_with(mesh.dispatchers[0].address, Some(OPERATOR)).await);

    let crawl = as_operator
        .submit_job(SubmitJobRequest {
            spec: Some(spec.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .id;

    let mut many_seeds = spec.clone();
    many_seeds.seeds = (0..20_000)
        .map(|index| site.url(&format!("/seed/{index}")))
        .collect();
    let mut huge_regex = spec.clone();
    huge_regex.handlers[0].pattern = "(a{1,1000}){1,1000}".into();
    let mut deep_selector = spec.clone();
    let title = deep_selector.handlers[0].fields.get_mut("title").unwrap();
    title.selector = vec!["div"; 200].join(" ");
    let mut megabytes = spec.clone();
    megabytes.seeds = (0..5_000)
        .map(|index| site.url(&format!("/{index}/{}", "x".repeat(1_000))))
        .collect();
    let attacks = [
        (
            many_seeds,
            "seeds: at most 10000 seeds are allowed, found 20000",
        ),
        (
            huge_regex,
            "handlers[0].pattern: compiles to more than 1048576 bytes",
        ),
        (
            deep_selector,
            "handlers[0].fields.title.selector: must be at most 32 deep",
        ),
        (megabytes, "the whole spec must be at most 4194304 bytes"),
    ];
    for (attack, says) in attacks {
        refused(
            as_operator
                .submit_job(SubmitJobRequest {
                    spec: Some(attack),
                    ..Default::default()
                })
                .await,
            Code::InvalidArgument,
            says,
        );
    }

    mesh.wait_done(&crawl, Duration::from_secs(60))
        .await
        .unwrap();
    mesh.assert_every_product_once(&crawl, &site).await;
}

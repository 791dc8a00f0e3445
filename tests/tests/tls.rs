//! The mesh over mutual TLS, as a person runs it: `owlmesh up --tls` crawls its demo and the
//! commands run beside it find the certificates by themselves; a mesh whose every process
//! has a certificate crawls a site whole; plaintext callers, callers without a client
//! certificate and callers that trust another CA are refused; grpcurl works with
//! `-cacert`, `-cert`, `-key` and the bearer token.

mod support;

use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use owlmesh_mesh::client::{ChannelOptions, connect_with_tls};
use owlmesh_mesh::tls::{CertificateAuthority, ClientTls};
use owlmesh_proto::v1::ListRequest;
use owlmesh_proto::v1::directory_client::DirectoryClient;
use owlmesh_site::{CatalogueJob, Site, SiteConfig};
use owlmesh_tests::eventually_true;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use support::mesh::{TestMesh, Topology};
use support::{grpcurl, owlmesh_bin};

/// Products in the demo shop: enough for listings that paginate, small enough to be quick.
const DEMO_PRODUCTS: &str = "120";
/// How long the demo crawl may take, builds of every speed included.
const DEMO_DEADLINE: Duration = Duration::from_secs(150);
/// How long `owlmesh up` may take to stop after SIGINT.
const STOP_DEADLINE: Duration = Duration::from_secs(20);
/// How long a test mesh's crawl may take.
const CRAWL_DEADLINE: Duration = Duration::from_secs(120);

/// A free loopback address: bound, then released for the code under test.
fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").to_string()
}

fn keep_lines(stream: impl AsyncRead + Unpin + Send + 'static, output: &Arc<Mutex<Vec<String>>>) {
    let output = Arc::clone(output);
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            output.lock().unwrap().push(line);
        }
    });
}

/// Runs `owlmesh ARGS…` in `folder` with no TLS or token settings from the environment,
/// as a person in that folder would.
async fn owlmesh_in(folder: &Path, args: &[&str]) -> Output {
    Command::new(owlmesh_bin())
        .current_dir(folder)
        .args(args)
        .env("OWLMESH_LOG", "warn")
        .env_remove("OWLMESH_TLS_CERT")
        .env_remove("OWLMESH_TLS_KEY")
        .env_remove("OWLMESH_TLS_CA")
        .env_remove("OWLMESH_TOKEN_FILE")
        .env_remove("OWLMESH_TOKEN")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run owlmesh")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_tls_crawls_its_demo_and_commands_beside_it_find_the_certificates() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("owlmesh-data");
    let directory = free_address();
    let mut up = Command::new(owlmesh_bin())
        .current_dir(work.path())
        .arg("up")
        .args(["--tls", "--demo", "--demo-products", DEMO_PRODUCTS])
        .args(["--directory-listen", &directory])
        .args(["--dashboard-listen", &free_address()])
        .env("OWLMESH_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn owlmesh up");
    let output = Arc::new(Mutex::new(Vec::new()));
    keep_lines(up.stdout.take().unwrap(), &output);
    keep_lines(up.stderr.take().unwrap(), &output);
    let printed = || output.lock().unwrap().join("\n");
    eventually_true(DEMO_DEADLINE, "the demo crawl verified over TLS", || {
        printed().contains("the mesh keeps running")
    })
    .await;
    assert!(
        printed().contains("verified: the archive holds 120 product items"),
        "{}",
        printed()
    );

    // `up` says how to call the mesh with grpcurl over TLS, with the token.
    let folder = data.join("tls");
    let grpcurl_line = format!(
        "grpcurl -cacert {0}/ca.pem -cert {0}/client.pem -key {0}/client.key -H \"authorization: Bearer $(grep -v '^#' {1} | head -1)\" {directory} list",
        folder.display(),
        data.join("token").display()
    );
    assert!(printed().contains(&grpcurl_line), "{}", printed());
    dashboard_answers_over_https_only(&printed(), &data).await;

    // A command in the folder `up` runs in finds the token and the certificates itself.
    let listed = owlmesh_in(
        work.path(),
        &["services", "--json", "--directory", &directory],
    )
    .await;
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let services: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    // Every child but the directory, which lists the others.
    assert_eq!(services.as_array().unwrap().len(), 8, "{services}");

    // Elsewhere, with the token but in clear text: refused.
    let elsewhere = tempfile::tempdir().unwrap();
    let token_file = data.join("token").display().to_string();
    let with_token = [
        "services",
        "--directory",
        &directory,
        "--token-file",
        &token_file,
    ];
    let plaintext = owlmesh_in(elsewhere.path(), &with_token).await;
    assert!(!plaintext.status.success(), "a plaintext command got in");

    // Elsewhere with the CA only: the servers want a client certificate.
    let ca = folder.join("ca.pem").display().to_string();
    let mut no_certificate = with_token.to_vec();
    no_certificate.extend(["--tls-ca", &ca]);
    let refused = owlmesh_in(elsewhere.path(), &no_certificate).await;
    assert!(
        !refused.status.success(),
        "a command without a certificate got in"
    );

    // Elsewhere with the flags: in.
    let certificate = folder.join("client.pem").display().to_string();
    let key = folder.join("client.key").display().to_string();
    let mut with_flags = no_certificate.clone();
    with_flags.extend(["--tls-cert", &certificate, "--tls-key", &key]);
    let admitted = owlmesh_in(elsewhere.path(), &with_flags).await;
    assert!(admitted.status.success(), "{}", text(&admitted.stderr));

    let pid = up.id().expect("running").to_string();
    let signalled = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status();
    assert!(signalled.unwrap().success());
    let status = tokio::time::timeout(STOP_DEADLINE, up.wait())
        .await
        .expect("owlmesh up stops")
        .unwrap();
    assert!(status.success(), "{status}:\n{}", printed());
}

/// The dashboard `up` printed serves its snapshot over HTTPS, with a certificate of the
/// mesh's CA, and nothing in clear text.
async fn dashboard_answers_over_https_only(printed: &str, data: &Path) {
    let link = printed
        .lines()
        .find_map(|line| line.strip_prefix("dashboard: https://"))
        .unwrap_or_else(|| panic!("no https dashboard link in:\n{printed}"));
    let address = link.split('/').next().unwrap();
    let token = owlmesh_mesh::auth::TokenSet::read(&data.join("token")).unwrap();
    let ca = std::fs::read(data.join("tls").join("ca.pem")).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let snapshot = client
        .get(format!("https://{address}/api/snapshot"))
        .bearer_auth(token.own().expose())
        .send()
        .await
        .unwrap();
    assert_eq!(snapshot.status(), 200);
    let plain = client
        .get(format!("http://{address}/api/snapshot"))
        .send()
        .await;
    assert!(plain.is_err(), "the page answered in clear text: {plain:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mesh_over_mutual_tls_crawls_a_site_whole_and_refuses_other_callers() {
    let site = Site::start(SiteConfig::spread_over(2)).await.unwrap();
    let topology = Topology {
        dispatchers: 1,
        scrapers: 2,
        archivers: 2,
    };
    let mesh = TestMesh::start_with_tls(topology, &[]).await.unwrap();
    let job = CatalogueJob::default().toml(&site.seeds(), &site.hosts());
    let id = mesh.submit(&job).await.unwrap();
    mesh.wait_done(&id, CRAWL_DEADLINE).await.unwrap();
    let items = mesh.export(&id, false).await.unwrap();
    assert_eq!(items.len(), site.expected_products().len());

    // This process, with the mesh's CA and certificate, is let in.
    let directory = mesh.directory_address();
    let mut admitted = DirectoryClient::new(mesh.channel(&directory).await.unwrap());
    let listed = admitted.list(ListRequest::default()).await.unwrap();
    assert_eq!(listed.into_inner().instances.len(), 5);

    let tls = mesh.tls.as_ref().unwrap();
    let ca = std::fs::read_to_string(tls.folder.path().join("ca.pem")).unwrap();
    let stranger = CertificateAuthority::generate().unwrap();
    let foreign = stranger
        .issue("stranger", &["127.0.0.1".to_owned()])
        .unwrap();
    let callers = [
        ("plaintext", None),
        (
            "no client certificate",
            Some(ClientTls::from_pem(&ca, None).unwrap()),
        ),
        (
            "a certificate of another CA",
            Some(
                ClientTls::from_pem(&ca, Some((&foreign.certificate_pem, &foreign.key_pem)))
                    .unwrap(),
            ),
        ),
        (
            "trusting another CA",
            Some(
                ClientTls::from_pem(
                    stranger.certificate_pem(),
                    Some((&foreign.certificate_pem, &foreign.key_pem)),
                )
                .unwrap(),
            ),
        ),
    ];
    for (caller, tls) in callers {
        let options = ChannelOptions::default();
        let answer = match connect_with_tls(&directory, &options, tls.as_ref()).await {
            Ok(channel) => DirectoryClient::new(channel)
                .list(ListRequest::default())
                .await
                .map(|_| ())
                .map_err(|status| status.to_string()),
            Err(error) => Err(error.to_string()),
        };
        assert!(answer.is_err(), "{caller} got in");
    }
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_the_services_with_the_ca_a_client_certificate_and_the_token() {
    let Some(grpcurl) =
        grpcurl::find("grpcurl_lists_the_services_with_the_ca_a_client_certificate_and_the_token")
    else {
        return;
    };
    let topology = Topology {
        dispatchers: 1,
        scrapers: 1,
        archivers: 1,
    };
    let mesh = TestMesh::start_with_tls(topology, &[]).await.unwrap();
    let folder = mesh.tls.as_ref().unwrap().folder.path();
    let file = |name: &str| folder.join(name).display().to_string();
    let directory = mesh.directory_address();
    let (ca, certificate, key) = (file("ca.pem"), file("member.pem"), file("member.key"));
    let tls_flags = ["-cacert", &ca, "-cert", &certificate, "-key", &key];
    let mut args = tls_flags.to_vec();
    args.extend([directory.as_str(), "list"]);
    let listed = grpcurl::run(&grpcurl, &args).await.unwrap();
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let services = text(&listed.stdout);
    assert!(services.contains("owlmesh.v1.Directory"), "{services}");

    let mut call = tls_flags.to_vec();
    call.extend([
        "-d",
        r#"{"kind":"scraper"}"#,
        directory.as_str(),
        "owlmesh.v1.Directory/List",
    ]);
    let membership = grpcurl::run(&grpcurl, &call).await.unwrap();
    assert!(membership.status.success(), "{}", text(&membership.stderr));
    assert!(text(&membership.stdout).contains("scraper-0"));

    // Without the client certificate, or in clear text, grpcurl is turned away.
    let only_ca = grpcurl::run(&grpcurl, &["-cacert", &ca, &directory, "list"])
        .await
        .unwrap();
    assert!(!only_ca.status.success(), "{}", text(&only_ca.stdout));
    let plaintext = grpcurl::run(&grpcurl, &["-plaintext", &directory, "list"])
        .await
        .unwrap();
    assert!(!plaintext.status.success(), "{}", text(&plaintext.stdout));
}

#[tokio::test]
async fn a_service_with_a_bad_certificate_file_stops_naming_the_file() {
    let folder = tempfile::tempdir().unwrap();
    let authority = CertificateAuthority::generate().unwrap();
    let issued = authority
        .issue("directory", &["127.0.0.1".to_owned()])
        .unwrap();
    let other = authority.issue("other", &["127.0.0.1".to_owned()]).unwrap();
    let write = |name: &str, text: &str| {
        let path = folder.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let ca = write("ca.pem", authority.certificate_pem());
    let certificate = write("directory.pem", &issued.certificate_pem);
    let wrong_key = write("other.key", &other.key_pem);
    let missing = folder.path().join("missing.pem").display().to_string();
    let listen = ["directory", "--listen", "127.0.0.1:0", "--insecure-no-auth"];

    let mut mismatched = listen.to_vec();
    mismatched.extend([
        "--tls-cert",
        &certificate,
        "--tls-key",
        &wrong_key,
        "--tls-ca",
        &ca,
    ]);
    let refused = owlmesh_in(folder.path(), &mismatched).await;
    assert!(!refused.status.success());
    let said = text(&refused.stderr);
    assert!(
        said.contains(&format!(
            "{wrong_key}: is not the key of the certificate in {certificate}"
        )),
        "{said}"
    );

    let mut unreadable = listen.to_vec();
    unreadable.extend([
        "--tls-cert",
        &missing,
        "--tls-key",
        &wrong_key,
        "--tls-ca",
        &ca,
    ]);
    let refused = owlmesh_in(folder.path(), &unreadable).await;
    assert!(text(&refused.stderr).contains(&format!("{missing}: cannot read")));

    let mut without_ca = listen.to_vec();
    without_ca.extend(["--tls-cert", &certificate, "--tls-key", &wrong_key]);
    let refused = owlmesh_in(folder.path(), &without_ca).await;
    assert!(text(&refused.stderr).contains("--tls-ca is needed with --tls-cert"));
}

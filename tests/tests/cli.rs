//! The `owlmesh` client commands against a running mesh, as a script or a person uses them:
//! JSON contracts, and one clear line for every kind of bad input.

mod support;

use std::process::{Output, Stdio};
use std::time::Duration;

use owlmesh_site::{CatalogueJob, Site, SiteConfig};
use support::mesh::{TestMesh, Topology};

/// The catalogue job for the test site, with a politeness delay of `delay_ms`.
fn job_for(site: &Site, delay_ms: u64) -> String {
    let job = CatalogueJob {
        delay_ms,
        ..CatalogueJob::default()
    };
    job.toml(&[site.url("/")], &site.hosts())
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs a client command whose stdout is closed before it writes anything, as a reader such
/// as `head` closes it once it has what it wanted.
async fn cli_into_closed_pipe(mesh: &TestMesh, args: &[&str]) -> Output {
    let mut child = tokio::process::Command::new(support::owlmesh_bin())
        .args(args)
        .args(["--directory", &mesh.directory_address()])
        .envs(mesh.environment.iter().cloned())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_speak_the_documented_json() {
    let site = Site::start(SiteConfig {
        products: 40,
        ..SiteConfig::default()
    })
    .await
    .unwrap();
    let topology = Topology {
        dispatchers: 2,
        scrapers: 2,
        archivers: 1,
    };
    let mesh = TestMesh::start(topology, &[]).await.unwrap();

    // services: every instance, one primary dispatcher.
    let services = mesh.cli_json(&["services"]).await.unwrap();
    let services = services.as_array().unwrap();
    assert_eq!(services.len(), 5);
    for service in services {
        for key in ["kind", "id", "address", "state", "priority", "primary"] {
            assert!(service.get(key).is_some(), "{key} missing in {service}");
        }
    }
    let primaries: Vec<&serde_json::Value> =
        services.iter().filter(|s| s["primary"] == true).collect();
    assert_eq!(primaries.len(), 1);
    assert_eq!(primaries[0]["id"], "dispatcher-0");

    // route: the owner of a host is a live scraper, the same every time.
    let host = site.hosts()[0].clone();
    let owner = mesh.cli_json(&["route", "scraper", &host]).await.unwrap();
    assert!(owner["id"].as_str().unwrap().starts_with("scraper-"));
    assert_eq!(
        mesh.cli_json(&["route", "scraper", &host]).await.unwrap(),
        owner
    );

    // try: what the handlers extract from one product page, nothing archived.
    let job_path = mesh.data_dir.path().join("cli.toml");
    std::fs::write(&job_path, job_for(&site, 0)).unwrap();
    let job_file = job_path.display().to_string();
    let product = &site.expected_products()[3];
    let tried = mesh
        .cli_json(&["try", &product.url, "--job", &job_file])
        .await
        .unwrap();
    assert_eq!(tried["handler"], "product");
    assert_eq!(tried["fields"]["title"], product.title.as_str());
    assert_eq!(tried["fields"]["sku"], product.sku.as_str());

    // job submit / status / list / export.
    let submitted = mesh.cli_json(&["job", "submit", &job_file]).await.unwrap();
    let id = submitted["id"].as_str().unwrap().to_owned();
    let done = mesh.wait_done(&id, Duration::from_secs(60)).await.unwrap();
    for key in [
        "id",
        "name",
        "state",
        "queued",
        "in_flight",
        "done",
        "failed",
        "items",
        "documents",
    ] {
        assert!(done.get(key).is_some(), "{key} missing in {done}");
    }
    assert_eq!(done["items"], 40);
    let list = mesh.cli_json(&["job", "list"]).await.unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|job| job["id"] == id.as_str())
    );
    let items = mesh.export(&id, false).await.unwrap();
    assert_eq!(items.len(), 40);
    for item in &items {
        for key in ["url", "handler", "fields", "fetched_at"] {
            assert!(item.get(key).is_some(), "{key} missing in {item}");
        }
    }
    let documents = mesh.export(&id, true).await.unwrap();
    assert!(!documents.is_empty());
    for document in &documents {
        for key in ["url", "type", "found_on"] {
            assert!(document.get(key).is_some(), "{key} missing in {document}");
        }
    }
    let csv = mesh.cli(&["export", &id, "--format", "csv"]).await.unwrap();
    let csv = String::from_utf8(csv.stdout).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("url,handler,fetched_at,price,sku,slug,title")
    );
    assert_eq!(lines.count(), 40);

    // A command whose reader has gone (`owlmesh export ID | head`) ends quietly.
    let host = site.hosts()[0].clone();
    let quiet_into_closed_pipe: [&[&str]; 8] = [
        &["export", &id, "--format", "jsonl"],
        &["export", &id, "--format", "csv"],
        &["job", "list"],
        &["job", "list", "--json"],
        &["job", "status", &id],
        &["services"],
        &["services", "--json"],
        &["route", "scraper", &host],
    ];
    for args in quiet_into_closed_pipe {
        let output = cli_into_closed_pipe(&mesh, args).await;
        assert!(
            output.status.success()
                && !stderr(&output).contains("panicked")
                && !stderr(&output).contains("Broken pipe"),
            "{args:?} into a closed pipe: {:?} {}",
            output.status,
            stderr(&output)
        );
    }

    // `--json` asks an export for its default JSON lines; with CSV it contradicts itself.
    let output = mesh
        .cli(&["export", &id, "--json", "--format", "csv"])
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--json and --format csv ask for two formats"),
        "{}",
        stderr(&output)
    );

    // A finished job cannot be paused or cancelled; a slow one can, then resumed and cancelled.
    let output = mesh.cli(&["job", "pause", &id]).await.unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("cannot go from done to paused"),
        "{}",
        stderr(&output)
    );
    let output = mesh.cli(&["job", "cancel", &id]).await.unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains(&format!("job {id} is done already"))
            && stderr(&output).contains("FailedPrecondition"),
        "{}",
        stderr(&output)
    );
    let still = mesh.cli_json(&["job", "status", &id]).await.unwrap();
    assert_eq!(still["state"], "done");
    let slow_path = mesh.data_dir.path().join("slow.toml");
    std::fs::write(&slow_path, job_for(&site, 1000)).unwrap();
    let slow = mesh
        .cli_json(&["job", "submit", &slow_path.display().to_string()])
        .await
        .unwrap();
    let id = slow["id"].as_str().unwrap().to_owned();
    let paused = mesh.cli_json(&["job", "pause", &id]).await.unwrap();
    assert_eq!(paused["state"], "paused");
    let resumed = mesh.cli_json(&["job", "resume", &id]).await.unwrap();
    assert_ne!(resumed["state"], "paused");
    let cancelled = mesh.cli_json(&["job", "cancel", &id]).await.unwrap();
    assert_eq!(cancelled["state"], "cancelled");
    site.stop().await;
}

#[tokio::test]
async fn bad_input_gets_one_clear_line_and_a_failing_exit() {
    let topology = Topology {
        dispatchers: 1,
        scrapers: 0,
        archivers: 0,
    };
    let mesh = TestMesh::start(topology, &[]).await.unwrap();

    // A job file with an error names the file, the line and the field.
    let bad = mesh.data_dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"x\"\nseeds = [\"ftp://nowhere/\"]\nmax_depth = -1\n",
    )
    .unwrap();
    let output = mesh
        .cli(&["job", "submit", &bad.display().to_string()])
        .await
        .unwrap();
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("bad.toml"), "{message}");
    assert!(message.contains("max_depth"), "{message}");

    // A missing file and an unknown job.
    let output = mesh
        .cli(&["job", "submit", "/no/such/job.toml"])
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("/no/such/job.toml"));
    let output = mesh.cli(&["job", "status", "nosuchjob"]).await.unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("nosuchjob"), "{}", stderr(&output));

    // An unknown flag.
    let output = mesh.cli(&["job", "list", "--frobnicate"]).await.unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--frobnicate"));

    // A mesh that is not running.
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = nowhere.local_addr().unwrap().to_string();
    drop(nowhere);
    let output = tokio::process::Command::new(support::owlmesh_bin())
        .args(["services", "--directory", &address])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains(&address) && message.contains("is the mesh running"),
        "{message}"
    );
    assert_eq!(message.trim().lines().count(), 1, "one line: {message}");
}

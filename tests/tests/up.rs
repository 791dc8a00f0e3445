//! `owlmesh up` as a person runs it: the whole mesh as child processes, the demo crawl to its
//! checked end (on SQLite, and on PostgreSQL when a server is given), Ctrl-C stopping every
//! child, a busy port named in one line, and children that leave on their own when
//! `owlmesh up` is killed.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use owlmesh_tests::eventually;
use support::owlmesh_bin;
use support::postgres::{FreshDatabase, count_rows};

/// Products in the demo shop: enough for listings that paginate, small enough to be quick.
const PRODUCTS: usize = 300;
/// How long the demo crawl may take, builds of every speed included.
const DEMO_DEADLINE: Duration = Duration::from_secs(150);
/// How long `owlmesh up` may take to start every child.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long `owlmesh up` may take to stop after SIGINT (it gives its children 9 s).
const STOP_DEADLINE: Duration = Duration::from_secs(20);
/// Children started by default: a directory, 2 dispatchers, 2 archivers, 3 scrapers.
const DEFAULT_CHILDREN: usize = 8;
/// What `owlmesh up` prints once every child listens.
const READY_LINE: &str = "press Ctrl-C to stop the mesh";

/// A free loopback address: bound, then released for the code under test.
fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").to_string()
}

/// A running `owlmesh up`, its output kept for assertion messages; killed when dropped.
struct Up {
    child: Child,
    directory: String,
    output: Arc<Mutex<Vec<String>>>,
}

impl Up {
    /// Starts `owlmesh up` with its own data folder, directory and dashboard addresses.
    fn start(data_dir: &Path, extra: &[&str]) -> Self {
        let directory = free_address();
        let dashboard = free_address();
        let mut child = Command::new(owlmesh_bin())
            .arg("up")
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--directory-listen",
                &directory,
                "--dashboard-listen",
                &dashboard,
            ])
            .args(extra)
            .env("OWLMESH_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn owlmesh up");
        let output = Arc::new(Mutex::new(Vec::new()));
        keep_lines(child.stdout.take().expect("stdout"), &output);
        keep_lines(child.stderr.take().expect("stderr"), &output);
        Self {
            child,
            directory,
            output,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("owlmesh up is running")
    }

    /// Its pid, or 0 once it has been waited for.
    fn pid_or_zero(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Everything it printed so far.
    fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// Fails the test, with the output, if `owlmesh up` has exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("owlmesh up exited early ({status}):\n{}", self.output());
        }
    }

    /// Waits until every child listens.
    async fn wait_ready(&mut self) {
        let started = Instant::now();
        while !self.output().contains(READY_LINE) {
            self.assert_running();
            assert!(
                started.elapsed() < START_DEADLINE,
                "owlmesh up did not start in time:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGINT, as Ctrl-C in its terminal, then its exit status.
    async fn interrupt(&mut self) -> ExitStatus {
        let status = std::process::Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        match tokio::time::timeout(STOP_DEADLINE, self.child.wait()).await {
            Ok(status) => status.expect("wait for owlmesh up"),
            Err(_) => panic!(
                "owlmesh up did not stop within {STOP_DEADLINE:?}:\n{}",
                self.output()
            ),
        }
    }
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

/// Runs the `owlmesh` CLI with the token `owlmesh up` made in `data_dir` and returns its
/// stdout (failing the test if it fails).
async fn cli(args: &[&str], data_dir: &Path) -> anyhow::Result<String> {
    let output = Command::new(owlmesh_bin())
        .args(args)
        .arg("--token-file")
        .arg(data_dir.join("token"))
        .env("OWLMESH_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .await?;
    anyhow::ensure!(
        output.status.success(),
        "owlmesh {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// The demo job, once `owlmesh job list` shows it done.
async fn finished_demo_job(directory: &str, data_dir: &Path) -> Option<Value> {
    let listed = cli(
        &["job", "list", "--json", "--directory", directory],
        data_dir,
    )
    .await
    .ok()?;
    let jobs: Value = serde_json::from_str(&listed).ok()?;
    let job = jobs
        .as_array()?
        .iter()
        .find(|job| job["name"] == "owlmesh-demo")?;
    (job["state"] == "done").then(|| job.clone())
}

/// A process as /proc shows it: its parent and whether it has exited (a zombie).
struct ProcessState {
    parent: u32,
    zombie: bool,
}

fn process_state(pid: u32) -> Option<ProcessState> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (command) state ppid …": the command may hold spaces and parentheses.
    let after_command = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_command.split_whitespace();
    let state = fields.next()?;
    let parent = fields.next()?.parse().ok()?;
    Some(ProcessState {
        parent,
        zombie: state == "Z",
    })
}

/// Whether the process still runs (a zombie has exited, whoever reaps it).
fn is_alive(pid: u32) -> bool {
    process_state(pid).is_some_and(|state| !state.zombie)
}

/// The live children of `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            process_state(*pid).is_some_and(|state| state.parent == parent && !state.zombie)
        })
        .collect()
}

/// Live processes, other than `except`, whose command line names `data_dir`.
fn processes_using(data_dir: &Path, except: u32) -> Vec<u32> {
    let needle = data_dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != except && is_alive(*pid))
        .filter(|pid| {
            let command = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&command).contains(&needle)
        })
        .collect()
}

/// Every child of `owlmesh up` once they all run (the dashboard too when the build has one).
fn mesh_children(up: &Up) -> Vec<u32> {
    let children = children_of(up.pid());
    assert!(
        children.len() >= DEFAULT_CHILDREN,
        "expected at least {DEFAULT_CHILDREN} children, found {children:?}:\n{}",
        up.output()
    );
    children
}

/// Whether something can listen on `address` again, as a restarted directory would.
async fn can_listen_on(address: &str) -> bool {
    // tokio binds with SO_REUSEADDR, as the services do, so connections lingering in
    // TIME_WAIT do not count as the port being in use.
    tokio::net::TcpListener::bind(address).await.is_ok()
}

/// The last lines of every child's log, for a failure message.
fn log_tails(data_dir: &Path) -> String {
    let Ok(entries) = std::fs::read_dir(data_dir.join("logs")) else {
        return "no logs".to_owned();
    };
    let mut text = String::new();
    for entry in entries.flatten() {
        let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(5)..].join("\n");
        text.push_str(&format!("== {}\n{tail}\n", entry.path().display()));
    }
    text
}

/// Checks one exported item: a product page with its title, price and SKU.
fn product_sku(line: &str) -> String {
    let item: Value = serde_json::from_str(line).expect("a JSON line");
    assert!(
        item["url"]
            .as_str()
            .is_some_and(|url| url.contains("/product/")),
        "{line}"
    );
    assert_eq!(item["handler"], "product", "{line}");
    for field in ["title", "price", "sku"] {
        let value = item["fields"][field].as_str().unwrap_or_default();
        assert!(!value.is_empty(), "no {field}: {line}");
    }
    item["fields"]["sku"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_crawls_every_product_and_ctrl_c_stops_every_child() {
    let data_dir = tempfile::tempdir().unwrap();
    let products = PRODUCTS.to_string();
    let mut up = Up::start(data_dir.path(), &["--demo", "--demo-products", &products]);
    up.wait_ready().await;
    let children = mesh_children(&up);

    let started = Instant::now();
    let job = loop {
        up.assert_running();
        if let Some(job) = finished_demo_job(&up.directory, data_dir.path()).await {
            break job;
        }
        assert!(
            started.elapsed() < DEMO_DEADLINE,
            "the demo job is not done after {DEMO_DEADLINE:?}:\n{}\n{}",
            up.output(),
            log_tails(data_dir.path())
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(job["items"], PRODUCTS, "{job}");

    // `up` made the mesh's token, readable by its owner only, and said where it is.
    let token = data_dir.path().join("token");
    let mode = std::fs::metadata(&token).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the token file's mode");
    let made = format!("token: {}, made now", token.display());
    assert!(up.output().contains(&made), "{}", up.output());
    // A command without it is told what is missing (its folder has no owlmesh-data/token).
    let anonymous = Command::new(owlmesh_bin())
        .args(["job", "list", "--directory", &up.directory])
        .current_dir(data_dir.path())
        .env_remove("OWLMESH_TOKEN_FILE")
        .env_remove("OWLMESH_TOKEN")
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&anonymous.stderr);
    assert!(
        !anonymous.status.success()
            && said.contains("needs a token")
            && said.contains("--token-file"),
        "{said}"
    );

    let id = job["id"].as_str().unwrap();
    let export = [
        "export",
        id,
        "--format",
        "jsonl",
        "--directory",
        &up.directory,
    ];
    let exported = cli(&export, data_dir.path()).await.unwrap();
    let skus: Vec<String> = exported.lines().map(product_sku).collect();
    assert_eq!(skus.len(), PRODUCTS, "exported items");
    let distinct: std::collections::HashSet<&String> = skus.iter().collect();
    assert_eq!(distinct.len(), PRODUCTS, "one item per product");
    eventually(
        Duration::from_secs(30),
        "the demo reports its check",
        || async {
            up.output()
                .contains("verified: the archive holds 300 product items")
        },
    )
    .await;

    let status = up.interrupt().await;
    assert!(status.success(), "exit {status}:\n{}", up.output());
    let alive: Vec<u32> = children
        .iter()
        .copied()
        .filter(|pid| is_alive(*pid))
        .collect();
    assert!(alive.is_empty(), "children still running: {alive:?}");
    let using = processes_using(data_dir.path(), up.pid_or_zero());
    assert!(
        using.is_empty(),
        "processes still using the data folder: {using:?}"
    );
    assert!(
        can_listen_on(&up.directory).await,
        "{} is still in use",
        up.directory
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_crawls_on_postgresql_with_each_archiver_in_its_schema() {
    let skipped = "`owlmesh up --database` was not tested";
    let Some(fresh) = FreshDatabase::create("owlmesh_up", skipped).await.unwrap() else {
        return;
    };
    let database = fresh.url().to_owned();
    {
        let data_dir = tempfile::tempdir().unwrap();
        let products = PRODUCTS.to_string();
        let extra = [
            "--demo",
            "--demo-products",
            &products,
            "--exit-when-done",
            "--database",
            &database,
            "--archive-database",
            &database,
        ];
        let mut up = Up::start(data_dir.path(), &extra);
        let status = tokio::time::timeout(DEMO_DEADLINE + START_DEADLINE, up.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "owlmesh up did not finish the demo:\n{}\n{}",
                    up.output(),
                    log_tails(data_dir.path())
                )
            })
            .unwrap();
        let output = up.output();
        assert!(
            status.success(),
            "exit {status}:\n{output}\n{}",
            log_tails(data_dir.path())
        );
        let shown = database.replace("postgres://", "");
        assert!(
            output.contains(&format!("frontier: PostgreSQL postgres://{shown}")),
            "{output}"
        );
        assert!(output.contains("schemas archive_0 … archive_1"), "{output}");
        assert!(
            output.contains("verified: the archive holds 300 product items"),
            "{output}"
        );
        // Nothing went to SQLite: the frontier and both shards are in the database.
        for file in ["frontier.sqlite3", "archive-0.sqlite", "archive-1.sqlite"] {
            assert!(!data_dir.path().join(file).exists(), "{file} was made");
        }
        let queued = count_rows(&database, "public", "frontier_urls").await;
        assert!(queued > PRODUCTS as i64, "{queued} URLs in the frontier");
        for schema in ["archive_0", "archive_1"] {
            let pages = count_rows(&database, schema, "pages").await;
            assert!(pages > 0, "no page archived in {schema}");
        }
    }
    // `fresh` drops the database here, or as the test unwinds from a failed assertion.
}

#[tokio::test]
async fn a_directory_port_in_use_is_named_in_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let data_dir = tempfile::tempdir().unwrap();
    let run = Command::new(owlmesh_bin())
        .arg("up")
        .arg("--data-dir")
        .arg(data_dir.path())
        .args([
            "--directory-listen",
            &address,
            "--dashboard-listen",
            &free_address(),
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("owlmesh up gave up in time")
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains(&address), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_leave_when_owlmesh_up_is_killed() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut up = Up::start(data_dir.path(), &[]);
    up.wait_ready().await;
    let children = mesh_children(&up);

    up.child.kill().await.unwrap();
    eventually(Duration::from_secs(10), "every child exits", || async {
        children.iter().all(|pid| !is_alive(*pid))
    })
    .await;
    eventually(Duration::from_secs(5), "the directory port is free", || {
        can_listen_on(&up.directory)
    })
    .await;
}

/// The child of `owlmesh up` whose command line has `--id ID`.
fn child_with_id(up: &Up, id: &str) -> u32 {
    let found = children_of(up.pid()).into_iter().find(|pid| {
        let command = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let words: Vec<&[u8]> = command.split(|byte| *byte == 0).collect();
        words
            .windows(2)
            .any(|pair| pair == [&b"--id"[..], id.as_bytes()])
    });
    found.unwrap_or_else(|| panic!("no child {id}:\n{}", up.output()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_dies_is_named_and_restarted() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut up = Up::start(data_dir.path(), &[]);
    up.wait_ready().await;
    let scraper = child_with_id(&up, "scraper-1");

    let status = std::process::Command::new("kill")
        .args(["-KILL", &scraper.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    eventually(
        Duration::from_secs(30),
        "scraper-1 is restarted",
        || async { up.output().contains("restarted scraper-1: listening on") },
    )
    .await;
    let output = up.output();
    let log = data_dir.path().join("logs").join("scraper-1.log");
    let reported = format!(
        "scraper-1 exited unexpectedly (signal: 9 (SIGKILL)); its log: {}",
        log.display()
    );
    assert!(output.contains(&reported), "{output}");
    eventually(
        Duration::from_secs(10),
        "scraper-1 registers again",
        || async {
            let Ok(listed) = cli(
                &["services", "--json", "--directory", &up.directory],
                data_dir.path(),
            )
            .await
            else {
                return false;
            };
            listed.contains("\"scraper-1\"") && children_of(up.pid()).len() >= DEFAULT_CHILDREN
        },
    )
    .await;

    let status = up.interrupt().await;
    assert!(status.success(), "exit {status}:\n{}", up.output());
}

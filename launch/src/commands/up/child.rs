//! Starting one child process: its log file, its environment, and the line it prints once
//! it listens, which is how `owlmesh up` learns where it is.

use std::io::SeekFrom;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use super::plan::ChildSpec;
use crate::shutdown::PARENT_PID_VARIABLE;

/// How long a child may take to print its address: a dispatcher migrates its database first.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Log lines shown when a child fails to start.
const TAIL_LINES: usize = 12;
/// How much of the end of a log file is read to find those lines.
const TAIL_BYTES: u64 = 16 * 1024;

/// Starts children: the `owlmesh` executable run again with a subcommand.
///
/// Children inherit the environment of `owlmesh up` (so every `OTEL_…` and `OWLMESH_…`
/// variable reaches them), plus the variables given with [`Launcher::with_environment`].
#[derive(Debug, Clone)]
pub(super) struct Launcher {
    executable: PathBuf,
    logs: PathBuf,
    environment: Vec<(&'static str, String)>,
}

/// A child that is listening.
#[derive(Debug)]
pub(super) struct Started {
    pub(super) child: Child,
    pub(super) address: SocketAddr,
}

/// Whether a child's log starts afresh or continues (after a restart, the crash stays
/// readable above the new start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LogMode {
    Fresh,
    Append,
}

impl Launcher {
    /// Children of `executable` that log into files in `logs`.
    pub(super) fn new(executable: PathBuf, logs: PathBuf) -> Self {
        Self {
            executable,
            logs,
            environment: Vec::new(),
        }
    }

    /// Sets these variables in every child's environment as well.
    pub(super) fn with_environment(mut self, environment: Vec<(&'static str, String)>) -> Self {
        self.environment = environment;
        self
    }

    /// Where the child with this id writes its logs.
    pub(super) fn log_path(&self, id: &str) -> PathBuf {
        self.logs.join(format!("{id}.log"))
    }

    /// Starts the child and waits until it says where it listens.
    pub(super) async fn start(&self, spec: &ChildSpec, mode: LogMode) -> anyhow::Result<Started> {
        let log_path = self.log_path(&spec.id);
        let mut child = self.spawn(spec, &log_path, mode)?;
        let stdout = child
            .stdout
            .take()
            .context("the child's stdout is not piped")?;
        let mut lines = BufReader::new(stdout).lines();
        let address = match tokio::time::timeout(STARTUP_TIMEOUT, read_address(&mut lines)).await {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill().await;
                let tail = log_tail(&log_path).await;
                bail!(
                    "{} did not say where it listens within {STARTUP_TIMEOUT:?}{}",
                    spec.id,
                    describe_tail(&log_path, &tail)
                );
            }
        };
        let Some(address) = address else {
            return Err(early_exit(spec, &mut child, &log_path).await);
        };
        tokio::spawn(discard(lines.into_inner().into_inner()));
        Ok(Started { child, address })
    }

    fn spawn(&self, spec: &ChildSpec, log_path: &Path, mode: LogMode) -> anyhow::Result<Child> {
        let log = open_log(log_path, mode)?;
        Command::new(&self.executable)
            .args(&spec.args)
            .envs(self.environment.iter().cloned())
            // Spans say which instance made them, not only which kind.
            .env(
                RESOURCE_ATTRIBUTES_VARIABLE,
                with_instance_id(std::env::var(RESOURCE_ATTRIBUTES_VARIABLE).ok(), &spec.id),
            )
            // Children watch this pid and leave when it is gone, even after a SIGKILL.
            .env(PARENT_PID_VARIABLE, std::process::id().to_string())
            // Their stderr is a file: plain text reads and greps better than colour codes.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            // Their own process group: a Ctrl-C in the terminal reaches `owlmesh up` alone,
            // which then stops the children in order.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", self.executable.display()))
    }
}

/// The OpenTelemetry resource attributes, `key=value` pairs separated by commas.
const RESOURCE_ATTRIBUTES_VARIABLE: &str = "OTEL_RESOURCE_ATTRIBUTES";

/// The resource attributes of a child: those `owlmesh up` was given, plus
/// `service.instance.id` set to the child's id unless they name one already.
fn with_instance_id(inherited: Option<String>, id: &str) -> String {
    let inherited = inherited.unwrap_or_default();
    let names_one = inherited
        .split(',')
        .any(|pair| pair.trim().starts_with("service.instance.id="));
    match (inherited.trim().is_empty(), names_one) {
        (_, true) => inherited,
        (true, false) => format!("service.instance.id={id}"),
        (false, false) => format!("{inherited},service.instance.id={id}"),
    }
}

/// Reads the child's stdout up to its listening line; `None` if the output ends first.
async fn read_address(lines: &mut Lines<BufReader<ChildStdout>>) -> Option<SocketAddr> {
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(address) = listening_address(&line) {
            return Some(address);
        }
    }
    None
}

/// The address in `owlmesh KIND listening on ADDRESS`.
pub(super) fn listening_address(line: &str) -> Option<SocketAddr> {
    let (_, address) = line
        .strip_prefix("owlmesh ")?
        .split_once(" listening on ")?;
    address.trim().parse().ok()
}

fn open_log(path: &Path, mode: LogMode) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    match mode {
        LogMode::Fresh => options.write(true).create(true).truncate(true),
        LogMode::Append => options.append(true).create(true),
    };
    options
        .open(path)
        .with_context(|| format!("cannot write the log file {}", path.display()))
}

/// Why a child exited before listening: its exit status and the end of its log.
async fn early_exit(spec: &ChildSpec, child: &mut Child, log_path: &Path) -> anyhow::Error {
    let status = match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
        Ok(Ok(status)) => status.to_string(),
        _ => {
            let _ = child.kill().await;
            "it closed its output".to_owned()
        }
    };
    let tail = log_tail(log_path).await;
    anyhow::anyhow!(
        "{} exited before listening ({status}){}",
        spec.id,
        describe_tail(log_path, &tail)
    )
}

/// The log's last lines, indented under a heading, or where the (empty) log is.
pub(super) fn describe_tail(log_path: &Path, tail: &[String]) -> String {
    if tail.is_empty() {
        return format!("; its log {} is empty", log_path.display());
    }
    let mut text = format!("; the end of {}:", log_path.display());
    for line in tail {
        text.push_str("\n    ");
        text.push_str(line);
    }
    text
}

/// The last lines of a log file (none if it cannot be read).
pub(super) async fn log_tail(path: &Path) -> Vec<String> {
    let Ok(mut file) = tokio::fs::File::open(path).await else {
        return Vec::new();
    };
    let length = file.metadata().await.map(|m| m.len()).unwrap_or_default();
    let start = length.saturating_sub(TAIL_BYTES);
    if file.seek(SeekFrom::Start(start)).await.is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).await.is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    let keep = lines.len().saturating_sub(TAIL_LINES);
    lines[keep..]
        .iter()
        .map(|line| (*line).to_owned())
        .collect()
}

/// Reads and drops a child's further output, so it never blocks on a full pipe.
async fn discard(mut stdout: ChildStdout) {
    let _ = tokio::io::copy(&mut stdout, &mut tokio::io::sink()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_gives_the_address() {
        let address = listening_address("owlmesh scraper listening on 127.0.0.1:40123");
        assert_eq!(address, Some("127.0.0.1:40123".parse().unwrap()));
        assert_eq!(listening_address("warming up"), None);
        assert_eq!(listening_address("owlmesh scraper listening on soon"), None);
    }

    #[test]
    fn each_child_names_its_instance_in_the_resource_attributes() {
        assert_eq!(
            with_instance_id(None, "scraper-1"),
            "service.instance.id=scraper-1"
        );
        assert_eq!(
            with_instance_id(Some("deployment.environment=lab".into()), "scraper-1"),
            "deployment.environment=lab,service.instance.id=scraper-1"
        );
        let chosen = "service.instance.id=mine,team=crawl";
        assert_eq!(with_instance_id(Some(chosen.into()), "scraper-1"), chosen);
    }

    #[test]
    fn an_empty_log_is_named() {
        let text = describe_tail(Path::new("/d/logs/scraper-0.log"), &[]);
        assert_eq!(text, "; its log /d/logs/scraper-0.log is empty");
        let text = describe_tail(Path::new("/d/x.log"), &["error: boom".to_owned()]);
        assert_eq!(text, "; the end of /d/x.log:\n    error: boom");
    }
}

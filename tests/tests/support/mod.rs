//! Shared helpers of the end-to-end tests: the `owlmesh` binary as a child process,
//! in-process servers on 127.0.0.1:0, and an "eventually" poll with a deadline; hosts made
//! of network namespaces, a TCP forwarder and fresh PostgreSQL databases for the multi-host
//! tests.

#![allow(dead_code, unreachable_pub)]

pub mod collector;
pub mod forward;
pub mod grpcurl;
pub mod mesh;
pub mod netns;
pub mod postgres;
pub mod reflection;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, bail};
use owlmesh_directory::DirectoryConfig;
use owlmesh_mesh::auth::{self, Credentials, Identity, MeshChannel, TokenSet};
use owlmesh_mesh::client::ChannelOptions;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// The `owlmesh` binary of this build (`cargo test --workspace` builds it first), or the
/// one named by `OWLMESH_BIN`.
pub fn owlmesh_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("OWLMESH_BIN") {
        return path.into();
    }
    let test_exe = std::env::current_exe().expect("test executable path");
    let profile_dir = test_exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let binary = profile_dir.join("owlmesh");
    assert!(
        binary.exists(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds it",
        binary.display()
    );
    binary
}

/// The token file every `owlmesh` process and command of the tests uses (one token with
/// every role, in the build's scratch folder), so that the mesh under test checks tokens as
/// a real one does. This test process's own clients send the same token.
pub fn test_token_file() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("owlmesh-test-token");
        if !path.exists() {
            // Another test binary may make it at the same moment: either file serves.
            let _ = auth::create_token_file(&path);
        }
        let tokens = TokenSet::read(&path).expect("the test token file");
        auth::install(Identity {
            trusted: None,
            credentials: Credentials::bearer(tokens.own()),
        });
        path
    })
}

/// A channel to `address` whose calls carry the test token.
pub async fn channel(address: impl std::fmt::Display) -> anyhow::Result<MeshChannel> {
    test_token_file();
    let address = address.to_string();
    let address = address.trim_start_matches("http://");
    Ok(owlmesh_mesh::client::connect(address, &ChannelOptions::default()).await?)
}

/// A running `owlmesh` child process; killed when dropped.
pub struct OwlmeshProcess {
    pub child: Child,
    /// The address it printed after binding; a mesh that places it on a host of its own
    /// listening on 0.0.0.0 sets the host's address here, the one it is dialled at.
    pub address: SocketAddr,
    /// The arguments it was started with.
    pub args: Vec<String>,
}

impl OwlmeshProcess {
    /// Starts `owlmesh ARGS…` and waits for its "listening on ADDRESS" line.
    pub async fn start(args: &[&str]) -> anyhow::Result<Self> {
        Self::start_with_environment(args, &[]).await
    }

    /// [`OwlmeshProcess::start`] with these variables in the process's environment.
    pub async fn start_with_environment(
        args: &[&str],
        environment: &[(String, String)],
    ) -> anyhow::Result<Self> {
        Self::start_under(&[], args, environment).await
    }

    /// [`OwlmeshProcess::start_with_environment`] under a command that runs the binary,
    /// such as `ip netns exec NAMESPACE` (which execs it, so the child is `owlmesh` itself).
    pub async fn start_under(
        command_prefix: &[String],
        args: &[&str],
        environment: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let mut command = match command_prefix.split_first() {
            Some((program, prefix_args)) => {
                let mut command = Command::new(program);
                command.args(prefix_args).arg(owlmesh_bin());
                command
            }
            None => Command::new(owlmesh_bin()),
        };
        let mut child = command
            .args(args)
            .env("OWLMESH_TOKEN_FILE", test_token_file())
            .envs(environment.iter().cloned())
            // OWLMESH_TEST_LOG (e.g. "info") shows more of the children's logs.
            .env(
                "OWLMESH_LOG",
                std::env::var("OWLMESH_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("spawn owlmesh")?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let address = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await? {
                if let Some((_, address)) = line.split_once(" listening on ") {
                    return Ok(address.trim().parse::<SocketAddr>()?);
                }
            }
            bail!("owlmesh exited before printing its address")
        })
        .await
        .context("owlmesh did not print its address in time")??;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let args = args.iter().map(|arg| arg.to_string()).collect();
        Ok(Self {
            child,
            address,
            args,
        })
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Sends a signal by name (`STOP`, `CONT`, `INT`…) with kill(1).
    pub fn signal(&self, name: &str) -> anyhow::Result<()> {
        let pid = self.pid().context("already exited")?;
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -{name} {pid} failed");
        Ok(())
    }

    /// SIGSTOP: the process hangs, its sockets stay open.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("STOP")
    }

    /// SIGCONT: a paused process runs again.
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("CONT")
    }

    /// The `GetStats` snapshot of the service.
    pub async fn stats(&self) -> anyhow::Result<owlmesh_proto::v1::Stats> {
        stats(self.address).await
    }

    /// SIGKILL, as a crash would.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGINT, then waits for the exit status.
    pub async fn interrupt(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self.child.id().context("already exited")?;
        std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()?;
        Ok(tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await??)
    }
}

/// The `GetStats` snapshot of the service at `address`.
pub async fn stats(address: SocketAddr) -> anyhow::Result<owlmesh_proto::v1::Stats> {
    use owlmesh_proto::v1::GetStatsRequest;
    use owlmesh_proto::v1::telemetry_client::TelemetryClient;
    let mut client = TelemetryClient::new(channel(address).await?);
    Ok(client.get_stats(GetStatsRequest {}).await?.into_inner())
}

/// A counter of a stats snapshot (0 when absent), summed over its labels.
pub fn counter(stats: &owlmesh_proto::v1::Stats, name: &str) -> u64 {
    stats
        .counters
        .iter()
        .filter(|counter| counter.name == name)
        .map(|counter| counter.value)
        .sum()
}

/// The unlabelled queue depth of a stats snapshot, and its capacity (0 when absent).
pub fn queue(stats: &owlmesh_proto::v1::Stats, name: &str) -> (u64, u64) {
    stats
        .queues
        .iter()
        .find(|queue| queue.name == name && queue.labels.is_empty())
        .map_or((0, 0), |queue| (queue.depth, queue.capacity))
}

/// An in-process directory on 127.0.0.1:0; stops when the token is cancelled.
pub async fn start_directory(lease_ttl: Duration) -> (SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("local address");
    let shutdown = CancellationToken::new();
    let config = DirectoryConfig { lease_ttl };
    tokio::spawn(owlmesh_directory::serve(listener, config, shutdown.clone()));
    (address, shutdown)
}

//! Shared helpers of the end-to-end tests: the `owlmesh` binary as a child process,
//! in-process servers on 127.0.0.1:0, and an "eventually" poll with a deadline.

#![allow(dead_code, unreachable_pub)]

pub mod mesh;
pub mod reflection;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use owlmesh_directory::DirectoryConfig;
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

/// A running `owlmesh` child process; killed when dropped.
pub struct OwlmeshProcess {
    pub child: Child,
    /// The address it printed after binding.
    pub address: SocketAddr,
}

impl OwlmeshProcess {
    /// Starts `owlmesh ARGS…` and waits for its "listening on ADDRESS" line.
    pub async fn start(args: &[&str]) -> anyhow::Result<Self> {
        let mut child = Command::new(owlmesh_bin())
            .args(args)
            .env("OWLMESH_LOG", "warn")
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
        Ok(Self { child, address })
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

/// An in-process directory on 127.0.0.1:0; stops when the token is cancelled.
pub async fn start_directory(lease_ttl: Duration) -> (SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("local address");
    let shutdown = CancellationToken::new();
    let config = DirectoryConfig { lease_ttl };
    tokio::spawn(owlmesh_directory::serve(listener, config, shutdown.clone()));
    (address, shutdown)
}

/// Polls `condition` until it holds, or fails after `deadline`.
pub async fn eventually<F, Fut>(deadline: Duration, what: &str, mut condition: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if condition().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < deadline,
            "{what}: not true after {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

//! Keeping the children alive while the mesh runs (a child that dies is named, with its log,
//! and restarted a few times), and stopping them in order when it is time.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::child::{Launcher, LogMode, Started, log_tail};
use super::console::Console;
use super::plan::{self, ChildSpec, Kind};

/// Restarts of one child at most: a child that keeps dying has a reason its log tells.
const MAX_RESTARTS: u32 = 3;
/// Pause before a restart, so a crash loop does not spin.
const RESTART_DELAY: Duration = Duration::from_secs(1);
/// Time the children get to stop after SIGINT. It ends a second before the forced exit
/// that a first Ctrl-C arms (see `crate::shutdown`), so stragglers are killed here, in order,
/// rather than left to notice that their parent is gone.
const STOP_TIMEOUT: Duration =
    crate::shutdown::DRAIN_TIMEOUT.saturating_sub(Duration::from_secs(1));
/// Time a SIGKILLed child gets to be reaped.
const KILL_WAIT: Duration = Duration::from_millis(500);

/// The children of `owlmesh up`.
pub(super) struct Supervisor {
    launcher: Launcher,
    console: Console,
    members: Vec<Member>,
}

/// One child: running, waiting for a restart, or given up on.
struct Member {
    spec: ChildSpec,
    process: Option<Child>,
    address: SocketAddr,
    restarts: u32,
    restart_at: Option<Instant>,
}

/// Where one child listens, for the table `owlmesh up` prints.
#[derive(Debug, Clone)]
pub(super) struct Listing {
    pub(super) kind: Kind,
    pub(super) id: String,
    pub(super) address: SocketAddr,
}

impl Supervisor {
    /// No children yet.
    pub(super) fn new(launcher: Launcher, console: Console) -> Self {
        Self {
            launcher,
            console,
            members: Vec::new(),
        }
    }

    /// Where the supervisor's messages go.
    pub(super) fn console(&self) -> &Console {
        &self.console
    }

    /// Where child `id` writes its logs.
    pub(super) fn log_path(&self, id: &str) -> PathBuf {
        self.launcher.log_path(id)
    }

    /// Starts these children side by side and waits until each listens. On failure the
    /// ones that started are kept, for [`Supervisor::stop`], and the first error returned.
    pub(super) async fn start(&mut self, specs: Vec<ChildSpec>) -> anyhow::Result<()> {
        let mut starting = JoinSet::new();
        for spec in specs {
            let launcher = self.launcher.clone();
            starting.spawn(async move {
                let started = launcher.start(&spec, LogMode::Fresh).await;
                (spec, started)
            });
        }
        let mut first_error = None;
        while let Some(joined) = starting.join_next().await {
            let (mut spec, started) = joined?;
            if let (Kind::Directory, Ok(started)) = (spec.kind, &started) {
                // A restarted directory must come back where every service looks for it,
                // even when port 0 was asked for.
                spec = plan::directory(started.address);
            }
            match started {
                Ok(Started { child, address }) => self.members.push(Member {
                    spec,
                    process: Some(child),
                    address,
                    restarts: 0,
                    restart_at: None,
                }),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        self.members
            .sort_by_key(|member| (member.spec.kind.start_rank(), member.spec.index));
        first_error.map_or(Ok(()), Err)
    }

    /// Every child that listens, in start order.
    pub(super) fn listings(&self) -> Vec<Listing> {
        self.members
            .iter()
            .map(|member| Listing {
                kind: member.spec.kind,
                id: member.spec.id.clone(),
                address: member.address,
            })
            .collect()
    }

    /// Where the first child of `kind` listens.
    pub(super) fn address_of(&self, kind: Kind) -> Option<SocketAddr> {
        let member = self
            .members
            .iter()
            .find(|member| member.spec.kind == kind)?;
        Some(member.address)
    }

    /// How many children of `kind` were started.
    pub(super) fn count(&self, kind: Kind) -> usize {
        self.members.iter().filter(|m| m.spec.kind == kind).count()
    }

    /// One round of watching: reports children that died and restarts those that are due.
    pub(super) async fn watch(&mut self, shutdown: &CancellationToken) {
        for member in &mut self.members {
            let Some(process) = &mut member.process else {
                continue;
            };
            if let Ok(Some(status)) = process.try_wait() {
                member.process = None;
                report_death(&self.console, &self.launcher, member, status).await;
            }
        }
        let now = Instant::now();
        for member in &mut self.members {
            if member.restart_at.is_some_and(|at| at <= now) {
                restart(&self.console, &self.launcher, member, shutdown).await;
            }
        }
    }

    /// Stops every child with SIGINT, kind by kind (scrapers and the dashboard, then
    /// dispatchers, archivers, the directory last), and SIGKILLs what is still running when
    /// the time is up. Returns the ids of the children that had to be killed.
    pub(super) async fn stop(&mut self) -> Vec<String> {
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut kinds: Vec<Kind> = self.members.iter().map(|m| m.spec.kind).collect();
        kinds.sort();
        kinds.dedup();
        for kind in kinds {
            let group = self.members.iter_mut().filter(|m| m.spec.kind == kind);
            let running: Vec<&mut Member> = group.filter(|m| m.process.is_some()).collect();
            for member in &running {
                if let Some(process) = &member.process {
                    interrupt(process).await;
                }
            }
            for member in running {
                wait_until(member, deadline).await;
            }
        }
        let mut killed = Vec::new();
        for member in &mut self.members {
            member.restart_at = None;
            if let Some(mut process) = member.process.take() {
                let _ = process.start_kill();
                let _ = tokio::time::timeout(KILL_WAIT, process.wait()).await;
                killed.push(member.spec.id.clone());
            }
        }
        killed
    }
}

/// Names the child that died, its log, and its last error when it printed one.
async fn report_death(
    console: &Console,
    launcher: &Launcher,
    member: &mut Member,
    status: ExitStatus,
) {
    let log = launcher.log_path(&member.spec.id);
    console.line(format!(
        "{} exited unexpectedly ({status}); its log: {}",
        member.spec.id,
        log.display()
    ));
    let tail = log_tail(&log).await;
    // `owlmesh` prints a fatal error as one "error: …" line, last.
    if let Some(error) = tail.iter().rev().find(|line| line.starts_with("error: ")) {
        console.line(format!("    {error}"));
    }
    schedule_restart(console, member);
}

/// Restarts a member in a second, unless it has had its share of restarts.
fn schedule_restart(console: &Console, member: &mut Member) {
    if member.restarts >= MAX_RESTARTS {
        console.line(format!(
            "{} is not restarted again (restarted {MAX_RESTARTS} times already)",
            member.spec.id
        ));
        return;
    }
    member.restart_at = Some(Instant::now() + RESTART_DELAY);
    console.line(format!(
        "restarting {} in {RESTART_DELAY:?} (restart {} of {MAX_RESTARTS})",
        member.spec.id,
        member.restarts + 1
    ));
}

async fn restart(
    console: &Console,
    launcher: &Launcher,
    member: &mut Member,
    shutdown: &CancellationToken,
) {
    member.restart_at = None;
    member.restarts += 1;
    let started = tokio::select! {
        _ = shutdown.cancelled() => return,
        started = launcher.start(&member.spec, LogMode::Append) => started,
    };
    match started {
        Ok(Started { child, address }) => {
            member.process = Some(child);
            member.address = address;
            console.line(format!(
                "restarted {}: listening on {address}",
                member.spec.id
            ));
        }
        Err(error) => {
            console.line(format!("{error:#}"));
            schedule_restart(console, member);
        }
    }
}

/// Sends SIGINT, the signal every service treats as "drain and stop", with the `kill`
/// command (unsafe code, and so `libc`, is not allowed here). Slim images may lack
/// `/bin/kill`, so the shell's built-in `kill` is the fallback.
async fn interrupt(process: &Child) {
    let Some(pid) = process.id() else {
        return;
    };
    let pid = pid.to_string();
    let sent = quietly(Command::new("kill").args(["-INT", &pid])).await;
    if !sent {
        quietly(Command::new("sh").args(["-c", "kill -INT \"$0\"", &pid])).await;
    }
}

/// Runs a command without output; whether it ran and succeeded.
async fn quietly(command: &mut Command) -> bool {
    let status = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    status.is_ok_and(|status| status.success())
}

/// Waits for a member's exit until `deadline`; a member that exits is no longer running.
async fn wait_until(member: &mut Member, deadline: Instant) {
    let Some(process) = &mut member.process else {
        return;
    };
    if let Ok(Ok(_)) = tokio::time::timeout_at(deadline, process.wait()).await {
        member.process = None;
    }
}

//! A real headless Chromium, for tests that look at a page as a person would: open it, read
//! values from its live DOM at chosen moments, and take a screenshot.
//!
//! The browser is driven over WebDriver with fantoccini, through Debian's `chromedriver`,
//! which runs as a child process on a free loopback port. chromedriver and the Chromium it
//! starts share a process group of their own and a temporary folder (the browser's profile,
//! chromedriver's scratch files): dropping the [`Browser`] kills the group and removes the
//! folder, so a failing test leaves nothing behind.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Where Debian's `chromium` package installs the browser.
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// Where Debian's `chromium-driver` package installs chromedriver.
pub const DEFAULT_CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The packages that bring both, at matching versions.
const INSTALL: &str = "apt-get install -y chromium chromium-driver";

/// How long chromedriver may take to listen and answer, and the browser to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one WebDriver command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// The browser to run: `OWLMESH_CHROMIUM`, else `/usr/bin/chromium`. A missing browser
/// fails the test loudly: CI installs it, so its absence is a broken set-up, not a skip.
pub fn chromium_path() -> PathBuf {
    required("Chromium", "OWLMESH_CHROMIUM", DEFAULT_CHROMIUM)
}

/// The driver to run: `OWLMESH_CHROMEDRIVER`, else `/usr/bin/chromedriver`; required like
/// the browser.
pub fn chromedriver_path() -> PathBuf {
    required("chromedriver", "OWLMESH_CHROMEDRIVER", DEFAULT_CHROMEDRIVER)
}

fn required(what: &str, variable: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.exists(),
        "{what} is required for the dashboard test and was not found at {} \
         (install it with `{INSTALL}`, or set {variable})",
        path.display()
    );
    path
}

/// A headless Chromium showing one page; killed, with its driver, when dropped.
pub struct Browser {
    client: Client,
    driver: Chromedriver,
    /// The profile and scratch files; removed after the processes are gone.
    _folder: tempfile::TempDir,
}

impl Browser {
    /// Starts a browser with a fresh profile and opens `url` in a viewport of
    /// `width`×`height` CSS pixels, one device pixel each.
    pub async fn open(url: &str, width: u32, height: u32) -> anyhow::Result<Self> {
        let folder = tempfile::tempdir()?;
        let driver = Chromedriver::start(folder.path()).await?;
        let profile = folder.path().join("profile");
        let args = [
            "--headless=new".to_owned(),
            // CI runs as root, where Chromium starts only without its sandbox; no GPU
            // there, and /dev/shm may be small.
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            // Nothing but the page's own traffic: no updates, no QUIC probes.
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--hide-scrollbars".to_owned(),
            "--force-device-scale-factor=1".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut capabilities = Capabilities::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "binary": chromium_path(), "args": args }),
        );
        let client = tokio::time::timeout(
            START_TIMEOUT,
            ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities)
                .connect(&driver.url),
        )
        .await
        .context("chromedriver did not start a browser in time")?
        .context("chromedriver could not start a browser")?;
        let browser = Self {
            client,
            driver,
            _folder: folder,
        };
        browser.fit_viewport(width, height).await?;
        browser
            .command("open the page", browser.client.goto(url))
            .await?;
        Ok(browser)
    }

    /// Evaluates a JavaScript expression in the page and returns its value as JSON.
    pub async fn evaluate(&self, expression: &str) -> anyhow::Result<Value> {
        let script = format!("return (\n{expression}\n);");
        self.command("evaluate", self.client.execute(&script, Vec::new()))
            .await
            .with_context(|| format!("the page could not evaluate {expression}"))
    }

    /// Saves a PNG of what the page shows now.
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let png = self
            .command("take a screenshot", self.client.screenshot())
            .await?;
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::write(path, png).with_context(|| format!("write {}", path.display()))
    }

    /// Ends the session, which makes chromedriver quit the browser, then stops chromedriver.
    pub async fn close(self) {
        let Self {
            client,
            mut driver,
            _folder: folder,
        } = self;
        let _ = tokio::time::timeout(COMMAND_TIMEOUT, client.close()).await;
        driver.stop().await;
        drop(folder);
    }

    /// Headless Chromium draws no browser frame yet keeps room for one, so the window
    /// must be larger than the viewport by that much.
    async fn fit_viewport(&self, width: u32, height: u32) -> anyhow::Result<()> {
        let frame = self.evaluate(FRAME).await?;
        let (frame_width, frame_height) = (
            frame[0].as_u64().context("frame width")?,
            frame[1].as_u64().context("frame height")?,
        );
        let (outer_width, outer_height) = (
            width + u32::try_from(frame_width)?,
            height + u32::try_from(frame_height)?,
        );
        self.command(
            "resize the window",
            self.client.set_window_size(outer_width, outer_height),
        )
        .await?;
        let viewport = self.evaluate(VIEWPORT).await?;
        if viewport != json!([width, height, 1]) {
            bail!(
                "asked for a {width}×{height} viewport at one device pixel per CSS pixel, got {viewport}"
            );
        }
        Ok(())
    }

    /// One WebDriver command, with a deadline.
    async fn command<T>(
        &self,
        what: &str,
        command: impl Future<Output = Result<T, fantoccini::error::CmdError>>,
    ) -> anyhow::Result<T> {
        tokio::time::timeout(COMMAND_TIMEOUT, command)
            .await
            .with_context(|| format!("the browser did not {what} in time"))?
            .with_context(|| format!("the browser could not {what}"))
    }
}

/// How much larger the window is than the viewport, in CSS pixels.
const FRAME: &str = "[outerWidth - innerWidth, outerHeight - innerHeight]";
/// The viewport's size and its device pixels per CSS pixel.
const VIEWPORT: &str = "[innerWidth, innerHeight, devicePixelRatio]";

/// chromedriver as a child process, leader of a process group that the browser joins.
struct Chromedriver {
    child: Child,
    /// The process group: chromedriver's pid.
    group: Option<u32>,
    /// Where it answers, `http://127.0.0.1:PORT`.
    url: String,
}

impl Chromedriver {
    /// Starts chromedriver on a port the system picks, with its scratch files (and so the
    /// browser's) in `folder`, and waits until it answers.
    async fn start(folder: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(chromedriver_path())
            .arg("--port=0")
            .env("TMPDIR", folder)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // chromedriver and the browser log warnings there; not our concern.
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("start chromedriver")?;
        let group = child.id();
        let stdout = child.stdout.take().context("chromedriver's stdout")?;
        let mut driver = Self {
            child,
            group,
            url: String::new(),
        };
        let mut lines = BufReader::new(stdout).lines();
        let port = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some((_, port)) = line.split_once("started successfully on port ") {
                    return Ok(port.trim_end_matches('.').parse::<u16>()?);
                }
            }
            bail!("chromedriver exited before saying which port it listens on")
        })
        .await
        .context("chromedriver did not say which port it listens on in time")??;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        driver.url = format!("http://127.0.0.1:{port}");
        driver.wait_until_ready().await?;
        Ok(driver)
    }

    /// Polls `GET /status` until chromedriver says it is ready for a session.
    async fn wait_until_ready(&self) -> anyhow::Result<()> {
        // reqwest is built without a TLS provider of its own; plain HTTP needs none, but
        // building a client asks for one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()?;
        let status = format!("{}/status", self.url);
        let started = tokio::time::Instant::now();
        loop {
            let answer = match client.get(&status).send().await {
                Ok(response) => response.text().await.ok(),
                Err(_) => None,
            };
            let answer: Option<Value> = answer.and_then(|body| serde_json::from_str(&body).ok());
            if answer
                .as_ref()
                .is_some_and(|body| body["value"]["ready"] == true)
            {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                bail!("chromedriver at {} is not ready: {answer:?}", self.url);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops chromedriver and whatever of the browser is still running.
    async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        self.kill_group();
    }

    /// SIGKILL to the whole group: killing chromedriver alone would leave the browser
    /// running.
    fn kill_group(&mut self) {
        if let Some(group) = self.group.take() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        self.kill_group();
    }
}

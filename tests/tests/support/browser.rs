//! A real headless Chromium driven over the DevTools protocol, for tests that look at a page
//! as a person would: open it, read values from its live DOM at chosen moments, and take a
//! screenshot.
//!
//! The protocol runs over a pipe (`--remote-debugging-pipe`: JSON messages separated by NUL
//! bytes, commands in on fd 3, answers out on fd 4), so no port and no WebSocket client are
//! needed. A small shell wrapper moves the child's stdin and stdout onto those descriptors.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Where Debian's `chromium` package installs the browser.
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// How long one protocol command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// The browser to run: `OWLMESH_CHROMIUM`, else `/usr/bin/chromium`. A missing browser
/// fails the test loudly: CI installs it, so its absence is a broken set-up, not a skip.
pub fn chromium_path() -> PathBuf {
    let path = std::env::var_os("OWLMESH_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CHROMIUM));
    assert!(
        path.exists(),
        "Chromium is required for the dashboard test and was not found at {} \
         (install it with `apt-get install -y chromium`, or set OWLMESH_CHROMIUM)",
        path.display()
    );
    path
}

/// A page opened in the browser.
pub struct Page {
    session: String,
}

/// A running headless Chromium; killed when dropped.
pub struct Browser {
    child: Child,
    commands: ChildStdin,
    answers: BufReader<ChildStdout>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium with a fresh profile and the given window size.
    pub async fn launch(width: u32, height: u32) -> anyhow::Result<Self> {
        let profile = tempfile::tempdir()?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null"#)
            .arg(chromium_path())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Chromium complains about the missing session bus and the like; not our concern.
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("start chromium")?;
        let commands = child.stdin.take().context("chromium's command pipe")?;
        let answers = BufReader::new(child.stdout.take().context("chromium's answer pipe")?);
        Ok(Self {
            child,
            commands,
            answers,
            next_id: 0,
            _profile: profile,
        })
    }

    /// Opens `url` in a new tab of `width`×`height` CSS pixels.
    pub async fn open(&mut self, url: &str, width: u32, height: u32) -> anyhow::Result<Page> {
        let target = self
            .call(None, "Target.createTarget", json!({ "url": url }))
            .await?;
        let target_id = target["targetId"].as_str().context("targetId")?.to_owned();
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await?;
        let page = Page {
            session: attached["sessionId"]
                .as_str()
                .context("sessionId")?
                .to_owned(),
        };
        let metrics = json!({
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false
        });
        self.call(Some(&page), "Emulation.setDeviceMetricsOverride", metrics)
            .await?;
        Ok(page)
    }

    /// Evaluates a JavaScript expression in the page and returns its value as JSON.
    pub async fn evaluate(&mut self, page: &Page, expression: &str) -> anyhow::Result<Value> {
        let params = json!({ "expression": expression, "returnByValue": true });
        let answer = self.call(Some(page), "Runtime.evaluate", params).await?;
        if let Some(exception) = answer.get("exceptionDetails") {
            bail!("the page threw: {exception}");
        }
        Ok(answer["result"]["value"].clone())
    }

    /// Saves a PNG of what the page shows now.
    pub async fn screenshot(&mut self, page: &Page, path: &Path) -> anyhow::Result<()> {
        let params = json!({ "format": "png" });
        let answer = self
            .call(Some(page), "Page.captureScreenshot", params)
            .await?;
        let data = answer["data"].as_str().context("screenshot data")?;
        let png = base64::engine::general_purpose::STANDARD.decode(data)?;
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::write(path, png).with_context(|| format!("write {}", path.display()))
    }

    /// Asks the browser to quit, then makes sure it did.
    pub async fn close(mut self) {
        let _ = self.call(None, "Browser.close", json!({})).await;
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }

    /// Sends one command and waits for its answer, skipping the events in between.
    async fn call(
        &mut self,
        page: Option<&Page>,
        method: &str,
        params: Value,
    ) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(page) = page {
            command["sessionId"] = json!(page.session);
        }
        let mut message = serde_json::to_vec(&command)?;
        message.push(0);
        self.commands.write_all(&message).await?;
        self.commands.flush().await?;
        tokio::time::timeout(COMMAND_TIMEOUT, self.answer(id))
            .await
            .with_context(|| format!("chromium did not answer {method} in time"))?
            .with_context(|| format!("chromium's answer to {method}"))
    }

    async fn answer(&mut self, id: u64) -> anyhow::Result<Value> {
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            let read = self.answers.read_until(0, &mut buffer).await?;
            if read == 0 {
                bail!("chromium closed its pipe");
            }
            let text = buffer.strip_suffix(&[0]).unwrap_or(&buffer);
            let message: Value = serde_json::from_slice(text)?;
            if message["id"] != json!(id) {
                continue;
            }
            if let Some(error) = message.get("error") {
                bail!("{error}");
            }
            return Ok(message["result"].clone());
        }
    }
}

//! The scraper service's settings, every one with a default fit for a local run, and their
//! validation as a pure function.

use std::time::Duration;

use crate::error::{Result, ScraperError};
use crate::extract::EXTRACTION_BUDGET;
use crate::fetch::FetchConfig;
use crate::robots::RobotsConfig;

/// Instance id when none is configured.
pub const DEFAULT_ID: &str = "scraper";
/// Assignments held at once (waiting locally or being fetched) unless configured otherwise.
pub const DEFAULT_SLOTS: u32 = 256;
/// The most slots a scraper may offer: more would only queue work that politeness holds.
pub const MAX_SLOTS: u32 = 65_536;
/// Pages held in the archive outbox, waiting for an archiver's acknowledgement, at most.
pub const DEFAULT_OUTBOX_CAPACITY: usize = 1024;
/// How long in-progress pages may take to finish once shutdown begins.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the last outcomes may take to reach a dispatcher once the drain is over.
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(3);
/// Outcomes sent in one batch at most.
pub const DEFAULT_OUTCOME_BATCH: usize = 256;
/// How long a partial outcome batch waits for company before it is sent.
pub const DEFAULT_OUTCOME_LINGER: Duration = Duration::from_millis(5);

/// Settings of one scraper. [`ScraperConfig::new`] and [`Default`] fill in the defaults.
#[derive(Debug, Clone)]
pub struct ScraperConfig {
    /// Instance id in the directory; sent as `scraper_id` in the work sessions.
    pub id: String,
    /// Directory addresses (host:port).
    pub directories: Vec<String>,
    /// The address others dial, registered in the directory (`host:port`; port 0 for the
    /// port bound); `None` registers the listener's address. See
    /// [`owlmesh_mesh::MemberConfig::advertise`].
    pub advertise: Option<String>,
    /// Assignments held at once: the slots offered to the dispatcher.
    pub slots: u32,
    /// HTTP client settings: user agent, timeouts, body cap. See [`crate::fetch`].
    pub fetch: FetchConfig,
    /// robots.txt cache settings.
    pub robots: RobotsConfig,
    /// Pages awaiting an archiver's acknowledgement at most; when full, pages wait.
    pub outbox_capacity: usize,
    /// Time in-progress pages get to finish at shutdown before they are handed back.
    pub drain_timeout: Duration,
    /// Time the last outcomes get to reach a dispatcher at shutdown.
    pub flush_timeout: Duration,
    /// Outcomes per batch at most.
    pub outcome_batch: usize,
    /// How long a partial outcome batch waits before it is sent.
    pub outcome_linger: Duration,
    /// How long reading one page (parse and extraction) may take before the page fails;
    /// see [`EXTRACTION_BUDGET`].
    pub extraction_budget: Duration,
}

impl Default for ScraperConfig {
    fn default() -> Self {
        Self::new(DEFAULT_ID)
    }
}

impl ScraperConfig {
    /// Defaults for a scraper with this id, registering with the default directory.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            directories: vec![owlmesh_mesh::DEFAULT_DIRECTORY_ADDRESS.to_owned()],
            advertise: None,
            slots: DEFAULT_SLOTS,
            fetch: FetchConfig::default(),
            robots: RobotsConfig::default(),
            outbox_capacity: DEFAULT_OUTBOX_CAPACITY,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            flush_timeout: DEFAULT_FLUSH_TIMEOUT,
            outcome_batch: DEFAULT_OUTCOME_BATCH,
            outcome_linger: DEFAULT_OUTCOME_LINGER,
            extraction_budget: EXTRACTION_BUDGET,
        }
    }

    /// Checks every setting, naming the first that is unusable.
    pub fn validate(&self) -> Result<()> {
        if self.id.trim().is_empty() {
            return Err(invalid("id", "must not be empty"));
        }
        if self.directories.is_empty() {
            return Err(invalid("directories", "at least one is required"));
        }
        if let Some(bad) = self
            .directories
            .iter()
            .find(|address| !owlmesh_mesh::is_host_port(address))
        {
            return Err(invalid("directories", format!("{bad:?} is not host:port")));
        }
        if !(1..=MAX_SLOTS).contains(&self.slots) {
            return Err(invalid(
                "slots",
                format!("must be between 1 and {MAX_SLOTS}"),
            ));
        }
        if self.outbox_capacity == 0 {
            return Err(invalid("outbox_capacity", "must be at least 1"));
        }
        if self.outcome_batch == 0 {
            return Err(invalid("outcome_batch", "must be at least 1"));
        }
        if self.fetch.max_body_bytes == 0 {
            return Err(invalid("fetch.max_body_bytes", "must be at least 1"));
        }
        let timeouts = [
            ("fetch.connect_timeout", self.fetch.connect_timeout),
            ("fetch.read_timeout", self.fetch.read_timeout),
            ("fetch.request_timeout", self.fetch.request_timeout),
            ("extraction_budget", self.extraction_budget),
        ];
        if let Some((field, _)) = timeouts.iter().find(|(_, timeout)| timeout.is_zero()) {
            return Err(invalid(field, "must be longer than zero"));
        }
        Ok(())
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ScraperError {
    ScraperError::InvalidConfig {
        field,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        ScraperConfig::default().validate().expect("valid defaults");
    }

    #[test]
    fn validation_names_the_bad_setting() {
        let bad = |change: fn(&mut ScraperConfig)| {
            let mut config = ScraperConfig::new("scraper-1");
            change(&mut config);
            config.validate().expect_err("invalid").to_string()
        };
        assert!(bad(|config| config.slots = 0).starts_with("slots: "));
        assert!(
            bad(|config| config.directories = vec!["nowhere".into()]).starts_with("directories: ")
        );
        assert!(bad(|config| config.id = " ".into()).starts_with("id: "));
        assert!(
            bad(|config| config.fetch.read_timeout = Duration::ZERO)
                .starts_with("fetch.read_timeout: ")
        );
        assert!(
            bad(|config| config.extraction_budget = Duration::ZERO)
                .starts_with("extraction_budget: ")
        );
    }
}

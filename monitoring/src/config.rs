//! What the dashboard needs to know: who it is, where the directories are, and how often and
//! how patiently it polls. Every field has a default.

use std::time::Duration;

use crate::history::HistoryConfig;
use crate::{MonitoringError, Result};

/// How often every instance's `GetStats` is polled.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long one instance may take to answer a poll.
pub const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_millis(800);
/// How long an instance that is still listed may go unanswered before it shows as gone.
/// Matches the directory's default lease TTL: a hung instance is gone from both together.
pub const DEFAULT_GONE_AFTER: Duration = Duration::from_secs(3);
/// How long a gone instance stays on the dashboard, greyed, before it is forgotten.
pub const DEFAULT_GONE_RETENTION: Duration = Duration::from_secs(60);
/// How many of the latest events the dashboard keeps.
pub const DEFAULT_RECENT_EVENTS: usize = 100;
/// How many of the latest failures it keeps apart, so a flood of successes does not hide them.
pub const DEFAULT_RECENT_FAILURES: usize = 20;

/// Configuration of [`crate::serve`].
#[derive(Debug, Clone)]
pub struct MonitoringConfig {
    /// Instance id in the directory.
    pub id: String,
    /// Directory addresses (host:port); they are watched for members and polled too.
    pub directories: Vec<String>,
    /// The page's address as others reach it (`host:port`; port 0 for the port bound);
    /// `None` for the listener's. The gRPC port registered in the directory is the one
    /// bound beside the page, on this host.
    pub advertise: Option<String>,
    /// How often every instance is polled.
    pub poll_interval: Duration,
    /// How long one instance may take to answer.
    pub poll_timeout: Duration,
    /// How long a listed instance may go unanswered before it shows as gone.
    pub gone_after: Duration,
    /// How long a gone instance stays visible.
    pub gone_retention: Duration,
    /// How many recent events are kept.
    pub recent_events: usize,
    /// How many recent failures are kept apart from the other events.
    pub recent_failures: usize,
    /// Resolution and span of the in-memory history.
    pub history: HistoryConfig,
    /// Names the page answers to besides IP addresses and `localhost` (the `Host` check
    /// against DNS rebinding).
    pub allowed_hosts: Vec<String>,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        Self {
            id: "monitoring".into(),
            directories: vec![owlmesh_mesh::DEFAULT_DIRECTORY_ADDRESS.into()],
            advertise: None,
            poll_interval: DEFAULT_POLL_INTERVAL,
            poll_timeout: DEFAULT_POLL_TIMEOUT,
            gone_after: DEFAULT_GONE_AFTER,
            gone_retention: DEFAULT_GONE_RETENTION,
            recent_events: DEFAULT_RECENT_EVENTS,
            recent_failures: DEFAULT_RECENT_FAILURES,
            history: HistoryConfig::default(),
            allowed_hosts: Vec::new(),
        }
    }
}

impl MonitoringConfig {
    /// Checks that the configuration can work; names the first field that cannot.
    pub fn validate(&self) -> Result<()> {
        if self.id.is_empty() {
            return Err(MonitoringError::invalid("id", "must not be empty"));
        }
        if self.directories.is_empty() {
            return Err(MonitoringError::invalid(
                "directories",
                "at least one directory address is needed",
            ));
        }
        if let Some(bad) = self
            .directories
            .iter()
            .find(|address| !owlmesh_mesh::is_host_port(address))
        {
            return Err(MonitoringError::invalid(
                "directories",
                format!("expected host:port, got {bad:?}"),
            ));
        }
        if self.poll_interval.is_zero() {
            return Err(MonitoringError::invalid(
                "poll_interval",
                "must be longer than zero",
            ));
        }
        // A poll that may outlast the interval would delay every tick behind it.
        if self.poll_timeout.is_zero() || self.poll_timeout > self.poll_interval {
            return Err(MonitoringError::invalid(
                "poll_timeout",
                format!(
                    "must be longer than zero and at most the poll interval ({:?})",
                    self.poll_interval
                ),
            ));
        }
        if self.recent_events == 0 {
            return Err(MonitoringError::invalid(
                "recent_events",
                "must be at least 1",
            ));
        }
        self.history.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        MonitoringConfig::default().validate().unwrap();
    }

    #[test]
    fn a_poll_timeout_longer_than_the_interval_is_named() {
        let config = MonitoringConfig {
            poll_timeout: Duration::from_secs(2),
            ..MonitoringConfig::default()
        };
        let error = config.validate().unwrap_err().to_string();
        assert!(error.starts_with("poll_timeout:"), "{error}");
    }

    #[test]
    fn a_directory_without_port_is_named() {
        let config = MonitoringConfig {
            directories: vec!["127.0.0.1".into()],
            ..MonitoringConfig::default()
        };
        let error = config.validate().unwrap_err().to_string();
        assert_eq!(error, r#"directories: expected host:port, got "127.0.0.1""#);
    }
}

//! What a directory server is told at start.

use std::time::Duration;

/// How long a lease lives after its latest heartbeat, unless configured otherwise.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(3);

/// Settings of a directory server.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// Lease TTL; instances are told to heartbeat three times per TTL.
    pub lease_ttl: Duration,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        Self {
            lease_ttl: DEFAULT_LEASE_TTL,
        }
    }
}

//! How much a store's acknowledged writes survive: a killed process, or a lost machine.

use std::fmt;
use std::str::FromStr;

/// What a write survives once it is acknowledged. The frontier and the archive acknowledge
/// after their commit, so this is also what an acknowledgement promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Survives a power loss or an operating-system crash: SQLite runs `synchronous=FULL`
    /// (the write-ahead log is flushed to disk at every commit) and files are flushed before
    /// the acknowledgement.
    PowerLoss,
    /// Survives a killed process but not a power loss: SQLite runs `synchronous=NORMAL` (the
    /// log reaches the operating system at every commit and the disk at checkpoints) and
    /// files are left to the page cache. The last commits before a power loss may be lost,
    /// never the database's consistency.
    #[default]
    ProcessCrash,
}

impl Durability {
    /// The spelling on the command line: `power-loss` or `process-crash`.
    pub fn name(self) -> &'static str {
        match self {
            Self::PowerLoss => "power-loss",
            Self::ProcessCrash => "process-crash",
        }
    }

    /// Whether written files are flushed to disk before a write is acknowledged.
    pub fn syncs_files(self) -> bool {
        self == Self::PowerLoss
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// A durability level that is neither `power-loss` nor `process-crash`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("durability: must be power-loss or process-crash, not {0:?}")]
pub struct UnknownDurability(String);

impl FromStr for Durability {
    type Err = UnknownDurability;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "power-loss" => Ok(Self::PowerLoss),
            "process-crash" => Ok(Self::ProcessCrash),
            other => Err(UnknownDurability(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_read_back_as_they_are_written_and_others_are_named() {
        for level in [Durability::PowerLoss, Durability::ProcessCrash] {
            assert_eq!(level.name().parse::<Durability>(), Ok(level));
        }
        let error = "fsync".parse::<Durability>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "durability: must be power-loss or process-crash, not \"fsync\""
        );
    }
}

//! When a job's next crawl epoch starts: a fixed interval after the current epoch started, or
//! the next time a cron expression fires.

use std::str::FromStr;

use chrono::{TimeZone, Utc};
use owlmesh_proto::v1::RecrawlSchedule;

use super::error::{FrontierError, Result};

/// A job's recrawl schedule, as stored in its row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Recrawl {
    /// Crawl again this long after an epoch starts; 0 for no interval.
    pub(super) every_ms: i64,
    /// Or when this cron expression (seconds first) fires; empty for none.
    pub(super) cron: String,
}

impl Recrawl {
    /// Reads the spec's schedule, rejecting what would never run.
    pub(super) fn from_spec(spec: Option<&RecrawlSchedule>) -> Result<Self> {
        let Some(spec) = spec else {
            return Ok(Self::default());
        };
        let every = spec.every.trim();
        let cron = spec.cron.trim();
        if !every.is_empty() && !cron.is_empty() {
            return Err(FrontierError::InvalidSchedule(
                "recrawl has both every and cron".to_owned(),
            ));
        }
        let mut recrawl = Self::default();
        if !every.is_empty() {
            let interval = humantime::parse_duration(every).map_err(|error| {
                FrontierError::InvalidSchedule(format!("every {every:?}: {error}"))
            })?;
            recrawl.every_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
            if recrawl.every_ms == 0 {
                return Err(FrontierError::InvalidSchedule("every is zero".to_owned()));
            }
        }
        if !cron.is_empty() {
            cron::Schedule::from_str(cron).map_err(|error| {
                FrontierError::InvalidSchedule(format!("cron {cron:?}: {error}"))
            })?;
            recrawl.cron = cron.to_owned();
        }
        Ok(recrawl)
    }

    /// When the epoch that started at `epoch_started_at` and finished at `now` is followed by
    /// the next one; 0 when the job is not recrawled. Never earlier than `now`.
    pub(super) fn next_epoch_at(&self, epoch_started_at: i64, now: i64) -> i64 {
        if self.every_ms > 0 {
            return epoch_started_at.saturating_add(self.every_ms).max(now);
        }
        if self.cron.is_empty() {
            return 0;
        }
        // Validated when the job was created; a schedule that no longer parses (or never fires
        // again) stops the recrawls rather than the transaction finishing the epoch.
        let schedule = match cron::Schedule::from_str(&self.cron) {
            Ok(schedule) => schedule,
            Err(error) => {
                tracing::warn!(cron = %self.cron, %error, "recrawl schedule does not parse");
                return 0;
            }
        };
        let Some(after) = Utc.timestamp_millis_opt(now).single() else {
            return 0;
        };
        schedule
            .after(&after)
            .next()
            .map_or(0, |next| next.timestamp_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(every: &str, cron: &str) -> Option<RecrawlSchedule> {
        Some(RecrawlSchedule {
            every: every.to_owned(),
            cron: cron.to_owned(),
        })
    }

    #[test]
    fn interval_counts_from_the_epoch_start() {
        let recrawl = Recrawl::from_spec(schedule("90m", "").as_ref()).unwrap();
        assert_eq!(recrawl.next_epoch_at(1_000, 2_000), 1_000 + 90 * 60 * 1000);
        // An epoch that outlasted its interval is followed at once.
        assert_eq!(recrawl.next_epoch_at(1_000, 10_000_000), 10_000_000);
    }

    #[test]
    fn cron_fires_after_now() {
        let recrawl = Recrawl::from_spec(schedule("", "0 0 3 * * *").as_ref()).unwrap();
        // 2024-01-01T00:00:00Z, then 03:00 the same day.
        let midnight = 1_704_067_200_000;
        assert_eq!(
            recrawl.next_epoch_at(0, midnight),
            midnight + 3 * 3600 * 1000
        );
    }

    #[test]
    fn no_schedule_means_no_next_epoch() {
        let recrawl = Recrawl::from_spec(None).unwrap();
        assert_eq!(recrawl.next_epoch_at(1, 2), 0);
    }

    #[test]
    fn rejects_unreadable_schedules() {
        assert!(Recrawl::from_spec(schedule("soon", "").as_ref()).is_err());
        assert!(Recrawl::from_spec(schedule("", "every day").as_ref()).is_err());
        assert!(Recrawl::from_spec(schedule("1h", "0 0 3 * * *").as_ref()).is_err());
    }
}

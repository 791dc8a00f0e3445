//! Waiting for a condition in a test: poll it until it holds, fail the test at a deadline.
//! No sleeps standing in for "long enough".

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Polls `condition` until it holds and returns how long that took; fails the test, naming
/// `what`, when it still does not hold after `deadline`.
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
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// [`eventually`] for a condition that needs no waiting to evaluate.
pub async fn eventually_true(
    deadline: Duration,
    what: &str,
    mut condition: impl FnMut() -> bool,
) -> Duration {
    eventually(deadline, what, || std::future::ready(condition())).await
}

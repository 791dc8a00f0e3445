//! The scraper's side of outcome delivery: the queue of outcomes waiting for a work session
//! and batched by size and linger, and the outcomes sent on the current session that its
//! dispatcher has not yet said are recorded (sent again on the next session if it breaks).

use std::collections::VecDeque;
use std::time::Duration;

use owlmesh_proto::v1::Outcome;
use prost::Message as _;
use tokio::sync::mpsc;

/// Sent outcomes kept for a session at most while its dispatcher has not said they are
/// recorded (one that never says so must not make the scraper grow without bound): the
/// oldest are then taken as recorded.
const MAX_UNRECORDED: usize = 4096;
/// Encoded bytes of one outcome batch at most (a batch holds at least one outcome, however
/// large): batches are split by size as well as by count, so that many pages of many links
/// never add up to a message larger than the dispatcher reads.
pub const MAX_OUTCOME_BATCH_BYTES: usize = 1024 * 1024;

/// When the outcome queue lets a batch go.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchPolicy {
    pub(crate) size: usize,
    pub(crate) linger: Duration,
    /// Draining: hold everything until the queue is closed.
    pub(crate) hold: bool,
}

/// Outcomes waiting for a session: those the assignments' tasks sent, and those set aside
/// here (reported at once, or back from a broken session).
pub(crate) struct OutcomeQueue {
    receiver: mpsc::Receiver<Outcome>,
    pending: VecDeque<Outcome>,
    /// When the oldest pending outcome arrived (tokio's clock, so tests can pause it).
    oldest_at: Option<tokio::time::Instant>,
    closed: bool,
}

impl OutcomeQueue {
    /// A queue fed by the senders of `receiver`.
    pub(crate) fn new(receiver: mpsc::Receiver<Outcome>) -> Self {
        Self {
            receiver,
            pending: VecDeque::new(),
            oldest_at: None,
            closed: false,
        }
    }

    /// Sets an outcome aside for the next batch.
    pub(crate) fn push(&mut self, outcome: Outcome) {
        if self.pending.is_empty() {
            self.oldest_at = Some(tokio::time::Instant::now());
        }
        self.pending.push_back(outcome);
    }

    /// Puts back outcomes that were not delivered, first in line.
    pub(crate) fn restore(&mut self, outcomes: Vec<Outcome>) {
        if self.pending.is_empty() {
            self.oldest_at = Some(tokio::time::Instant::now());
        }
        for outcome in outcomes.into_iter().rev() {
            self.pending.push_front(outcome);
        }
    }

    /// Moves every outcome the tasks have queued so far into `pending`.
    pub(crate) fn absorb(&mut self) {
        while let Ok(outcome) = self.receiver.try_recv() {
            self.push(outcome);
        }
    }

    /// The leases of the pending outcomes.
    pub(crate) fn lease_ids(&self) -> Vec<u64> {
        self.pending
            .iter()
            .map(|outcome| outcome.lease_id)
            .collect()
    }

    /// Up to `size` outcomes, oldest first, of at most [`MAX_OUTCOME_BATCH_BYTES`] together
    /// (at least one).
    pub(crate) fn take(&mut self, size: usize) -> Vec<Outcome> {
        let mut bytes = 0;
        let count = self
            .pending
            .iter()
            .take(size)
            .take_while(|outcome| {
                let first = bytes == 0;
                bytes += outcome.encoded_len();
                first || bytes <= MAX_OUTCOME_BATCH_BYTES
            })
            .count();
        let batch = self.pending.drain(..count).collect();
        if self.pending.is_empty() {
            self.oldest_at = None;
        }
        batch
    }

    /// Whether every sender is gone and every outcome was taken.
    pub(crate) fn is_finished(&self) -> bool {
        self.closed && self.pending.is_empty()
    }

    /// Waits until a batch may go: `size` outcomes are pending, or the oldest has waited
    /// `linger`; when holding, once the queue is closed. Cancel-safe: what it receives is
    /// kept in `pending`.
    pub(crate) async fn ready(&mut self, policy: BatchPolicy) {
        loop {
            let has_pending = !self.pending.is_empty();
            if has_pending && (self.closed || (!policy.hold && self.pending.len() >= policy.size)) {
                return;
            }
            if self.closed {
                return std::future::pending().await;
            }
            let deadline = self
                .oldest_at
                .filter(|_| has_pending && !policy.hold)
                .map(|oldest| oldest + policy.linger);
            let received = match deadline {
                Some(deadline) => {
                    match tokio::time::timeout_at(deadline, self.receiver.recv()).await {
                        Ok(received) => received,
                        Err(_) => return,
                    }
                }
                None => self.receiver.recv().await,
            };
            match received {
                Some(outcome) => self.push(outcome),
                None => self.closed = true,
            }
        }
    }
}

/// Outcomes sent on the current session, oldest first, that its dispatcher has not yet said
/// are recorded.
#[derive(Default)]
pub(crate) struct SentOutcomes {
    waiting: VecDeque<Outcome>,
    /// How many of the session's outcomes came before the first waiting one.
    forgotten: u64,
}

impl SentOutcomes {
    /// Outcomes just handed to the session.
    pub(crate) fn sent(&mut self, outcomes: &[Outcome]) {
        self.waiting.extend(outcomes.iter().cloned());
        while self.waiting.len() > MAX_UNRECORDED {
            self.waiting.pop_front();
            self.forgotten += 1;
        }
    }

    /// The dispatcher has recorded the session's first `count` outcomes.
    pub(crate) fn recorded(&mut self, count: u64) {
        while self.forgotten < count && self.waiting.pop_front().is_some() {
            self.forgotten += 1;
        }
    }

    /// The outcomes not recorded, oldest first; the next session starts counting anew.
    pub(crate) fn take(&mut self) -> Vec<Outcome> {
        self.forgotten = 0;
        self.waiting.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(lease_id: u64) -> Outcome {
        Outcome {
            lease_id,
            ..Outcome::default()
        }
    }

    const POLICY: BatchPolicy = BatchPolicy {
        size: 3,
        linger: Duration::from_millis(5),
        hold: false,
    };

    #[tokio::test]
    async fn batches_are_split_by_bytes_as_well_as_by_count() {
        let (_sender, receiver) = mpsc::channel(16);
        let mut queue = OutcomeQueue::new(receiver);
        let link = "http://h/".to_owned() + &"a".repeat(2000);
        let heavy = |lease_id| Outcome {
            lease_id,
            links: vec![link.clone(); 200],
            ..Outcome::default()
        };
        for lease_id in 1..=6 {
            queue.push(heavy(lease_id));
        }
        let first = queue.take(256);
        assert_eq!(first.len(), 2, "about 400 KB each, so two fit in 1 MiB");
        let bytes: usize = first.iter().map(Outcome::encoded_len).sum();
        assert!(bytes <= MAX_OUTCOME_BATCH_BYTES);
        queue.push(Outcome {
            links: vec![link.clone(); 1000],
            ..heavy(7)
        });
        let rest: Vec<usize> = std::iter::from_fn(|| Some(queue.take(256).len()))
            .take_while(|taken| *taken > 0)
            .collect();
        assert_eq!(rest, [2, 2, 1], "an outcome over the budget goes alone");
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_goes_when_full_or_when_the_linger_ends() {
        let (sender, receiver) = mpsc::channel(16);
        let mut queue = OutcomeQueue::new(receiver);
        for lease_id in 1..=4 {
            sender.send(outcome(lease_id)).await.unwrap();
        }
        queue.ready(POLICY).await;
        assert_eq!(queue.take(POLICY.size).len(), 3);
        let begin = tokio::time::Instant::now();
        queue.ready(POLICY).await;
        assert!(begin.elapsed() <= POLICY.linger);
        assert_eq!(queue.take(POLICY.size).len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_draining_queue_holds_until_every_sender_is_gone() {
        let (sender, receiver) = mpsc::channel(16);
        let mut queue = OutcomeQueue::new(receiver);
        sender.send(outcome(1)).await.unwrap();
        let hold = BatchPolicy {
            hold: true,
            ..POLICY
        };
        let waited = tokio::time::timeout(Duration::from_secs(1), queue.ready(hold)).await;
        assert!(waited.is_err(), "held while a sender lives");
        drop(sender);
        queue.ready(hold).await;
        assert_eq!(queue.take(hold.size).len(), 1);
        assert!(queue.is_finished());
    }

    #[test]
    fn sent_outcomes_are_kept_until_recorded_and_the_rest_come_back() {
        let mut sent = SentOutcomes::default();
        sent.sent(&[outcome(1), outcome(2)]);
        sent.sent(&[outcome(3)]);
        sent.recorded(1);
        sent.recorded(1);
        let back: Vec<u64> = sent.take().iter().map(|o| o.lease_id).collect();
        assert_eq!(back, [2, 3], "recorded counts are running totals");
        sent.sent(&[outcome(4), outcome(5)]);
        sent.recorded(2);
        assert!(sent.take().is_empty(), "a new session counts from zero");
    }
}

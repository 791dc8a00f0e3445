//! The scraper's side of outcome delivery: the queue of outcomes waiting for a work session
//! and batched by size and linger, and the outcomes sent on the current session that its
//! dispatcher has not yet said are recorded (sent again on the next session if it breaks).
//!
//! An outcome the dispatcher cannot take (too large to decode, or malformed) ends the session
//! it is sent on, and would end every next one if it went first again. So after a session
//! breaks with outcomes unrecorded, the next one probes: it sends the first batch that was
//! not recorded split in half, one batch at a time, each only once the last is recorded,
//! until the outcomes that came back are through. A lone outcome that breaks
//! [`DEAD_LETTER_AFTER_REFUSALS`] sessions in a row is dead-lettered: taken off the queue,
//! logged and counted, and replaced by a failure of its URL that carries the reason
//! ([`OUTCOME_TOO_LARGE`], [`OUTCOME_REFUSED`]) without its links, so its lease is settled.

use std::collections::VecDeque;
use std::time::Duration;

use owlmesh_proto::v1::{Outcome, OutcomeStatus};
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
/// Sessions in a row that may end while the same lone outcome is the first unrecorded one
/// before that outcome is dead-lettered. More than one, so that a dispatcher that dies just
/// after an outcome was sent does not cost it; few, so a poison outcome stalls little.
pub const DEAD_LETTER_AFTER_REFUSALS: u32 = 3;
/// The reason a dead-lettered outcome's URL fails with when the outcome was larger than
/// [`MAX_OUTCOME_BATCH_BYTES`].
pub const OUTCOME_TOO_LARGE: &str = "outcome too large to report";
/// The reason a dead-lettered outcome's URL fails with otherwise.
pub const OUTCOME_REFUSED: &str = "outcome refused by the dispatcher";

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
/// are recorded; and, after a session broke, how the next one probes for a poison outcome.
#[derive(Default)]
pub(crate) struct SentOutcomes {
    waiting: VecDeque<Outcome>,
    /// How many outcomes each batch in `waiting` holds, oldest first.
    batches: VecDeque<usize>,
    /// How many of the session's outcomes came before the first waiting one.
    forgotten: u64,
    /// Set while the outcomes back from a broken session are sent again.
    probe: Option<Probe>,
    /// The lone outcome that was first unrecorded when sessions broke, and how many times.
    suspect: Option<(u64, u32)>,
}

/// Outcomes per batch while probing, and how many must still be recorded to end it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Probe {
    size: usize,
    remaining: usize,
}

/// What [`SentOutcomes::after_break`] gives back.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// To send again first, oldest first (a dead letter's failure in front).
    pub(crate) outcomes: Vec<Outcome>,
    /// The outcome dead-lettered at this break, if any.
    pub(crate) dead_letter: Option<DeadLetter>,
}

/// An outcome taken off the queue because sessions kept breaking on it.
#[derive(Debug)]
pub(crate) struct DeadLetter {
    /// The outcome as it was.
    pub(crate) outcome: Outcome,
    /// Why its URL fails.
    pub(crate) reason: String,
    /// Whether a failure of its URL was queued in its place (not when the outcome was such
    /// a failure already).
    pub(crate) replaced: bool,
}

impl SentOutcomes {
    /// Outcomes just handed to the session, as one batch.
    pub(crate) fn sent(&mut self, outcomes: &[Outcome]) {
        if outcomes.is_empty() {
            return;
        }
        self.waiting.extend(outcomes.iter().cloned());
        self.batches.push_back(outcomes.len());
        while self.waiting.len() > MAX_UNRECORDED {
            self.pop_oldest();
        }
    }

    /// The dispatcher has recorded the session's first `count` outcomes.
    pub(crate) fn recorded(&mut self, count: u64) {
        while self.forgotten < count {
            let Some(outcome) = self.pop_oldest() else {
                break;
            };
            if self
                .suspect
                .is_some_and(|(lease_id, _)| lease_id == outcome.lease_id)
            {
                self.suspect = None;
            }
            if let Some(probe) = &mut self.probe {
                probe.remaining = probe.remaining.saturating_sub(1);
                if probe.remaining == 0 {
                    self.probe = None;
                }
            }
        }
    }

    /// Outcomes the next batch may hold at most, `size` unless probing.
    pub(crate) fn batch_limit(&self, size: usize) -> usize {
        self.probe.map_or(size, |probe| probe.size.min(size))
    }

    /// Whether another batch may go now: while probing, only once every sent one is recorded.
    pub(crate) fn may_send(&self) -> bool {
        self.probe.is_none() || self.waiting.is_empty()
    }

    /// The session broke: gives back the outcomes not recorded, oldest first, and starts
    /// probing with them; the next session counts anew. `refused` says the dispatcher ended
    /// the stream (rather than going away): then a lone first outcome counts a refusal, and
    /// is dead-lettered at the [`DEAD_LETTER_AFTER_REFUSALS`]th in a row.
    pub(crate) fn after_break(&mut self, refused: bool) -> Recovered {
        let first_batch = self.batches.front().copied().unwrap_or(0);
        self.forgotten = 0;
        self.batches.clear();
        let mut outcomes: Vec<Outcome> = self.waiting.drain(..).collect();
        if outcomes.is_empty() {
            return Recovered::default();
        }
        let mut dead_letter = None;
        if refused && first_batch == 1 {
            let lease_id = outcomes[0].lease_id;
            let refusals = match self.suspect {
                Some((suspect, refusals)) if suspect == lease_id => refusals + 1,
                _ => 1,
            };
            self.suspect = Some((lease_id, refusals));
            if refusals >= DEAD_LETTER_AFTER_REFUSALS {
                self.suspect = None;
                let (letter, replacement) = dead_letter_of(outcomes.remove(0), refusals);
                if let Some(replacement) = replacement {
                    outcomes.insert(0, replacement);
                }
                dead_letter = Some(letter);
            }
        }
        self.probe = match outcomes.len() {
            0 => None,
            remaining => Some(Probe {
                size: (first_batch / 2).max(1),
                remaining,
            }),
        };
        Recovered {
            outcomes,
            dead_letter,
        }
    }

    fn pop_oldest(&mut self) -> Option<Outcome> {
        let outcome = self.waiting.pop_front()?;
        self.forgotten += 1;
        if let Some(first) = self.batches.front_mut() {
            *first -= 1;
            if *first == 0 {
                self.batches.pop_front();
            }
        }
        Some(outcome)
    }
}

/// The dead letter of `outcome`, and the failure of its URL to send in its place: the same
/// lease, URL and fetch, without links or redirects, failed for good with the reason. An
/// outcome that was such a failure already gets no replacement.
fn dead_letter_of(outcome: Outcome, refusals: u32) -> (DeadLetter, Option<Outcome>) {
    let bytes = outcome.encoded_len();
    let reason = match bytes > MAX_OUTCOME_BATCH_BYTES {
        true => format!("{OUTCOME_TOO_LARGE} ({bytes} bytes, refused {refusals} times)"),
        false => format!("{OUTCOME_REFUSED} ({bytes} bytes, refused {refusals} times)"),
    };
    let was_replacement =
        outcome.error.starts_with(OUTCOME_TOO_LARGE) || outcome.error.starts_with(OUTCOME_REFUSED);
    let replacement = (!was_replacement).then(|| Outcome {
        status: OutcomeStatus::Failed.into(),
        error: reason.clone(),
        links: Vec::new(),
        redirects: Vec::new(),
        ..outcome.clone()
    });
    let letter = DeadLetter {
        outcome,
        reason,
        replaced: replacement.is_some(),
    };
    (letter, replacement)
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
        let back = leases(&sent.after_break(false).outcomes);
        assert_eq!(back, [2, 3], "recorded counts are running totals");
        sent.sent(&[outcome(4), outcome(5)]);
        sent.recorded(2);
        assert!(
            sent.after_break(false).outcomes.is_empty(),
            "a new session counts from zero"
        );
    }

    fn leases(outcomes: &[Outcome]) -> Vec<u64> {
        outcomes.iter().map(|outcome| outcome.lease_id).collect()
    }

    #[test]
    fn after_a_break_the_first_unrecorded_batch_is_split_and_sent_one_batch_at_a_time() {
        let mut sent = SentOutcomes::default();
        sent.sent(&(1..=8).map(outcome).collect::<Vec<_>>());
        sent.sent(&[outcome(9), outcome(10)]);
        let recovered = sent.after_break(false);
        assert_eq!(recovered.outcomes.len(), 10);
        assert!(recovered.dead_letter.is_none());
        assert_eq!(sent.batch_limit(256), 4, "half the first unrecorded batch");
        sent.sent(&recovered.outcomes[..4]);
        assert!(!sent.may_send(), "the next batch waits for this one");
        sent.recorded(4);
        assert!(sent.may_send());
        sent.sent(&recovered.outcomes[4..8]);
        sent.recorded(8);
        sent.sent(&recovered.outcomes[8..]);
        sent.recorded(10);
        assert_eq!(
            sent.batch_limit(256),
            256,
            "probing ends once all are through"
        );
        assert!(sent.may_send());
    }

    #[test]
    fn a_lone_outcome_that_keeps_breaking_sessions_is_dead_lettered_with_its_reason() {
        let link = "http://h/".to_owned() + &"a".repeat(2000);
        let poison = Outcome {
            lease_id: 7,
            url: "http://h/big".into(),
            status: OutcomeStatus::Done.into(),
            links: vec![link; 600],
            ..Outcome::default()
        };
        let mut sent = SentOutcomes::default();
        for refusal in 1..DEAD_LETTER_AFTER_REFUSALS {
            sent.sent(std::slice::from_ref(&poison));
            sent.sent(&[outcome(8)]);
            let recovered = sent.after_break(true);
            assert!(recovered.dead_letter.is_none(), "refusal {refusal}");
            assert_eq!(leases(&recovered.outcomes), [7, 8]);
            assert_eq!(sent.batch_limit(256), 1);
        }
        sent.sent(std::slice::from_ref(&poison));
        let recovered = sent.after_break(true);
        let letter = recovered.dead_letter.expect("dead-lettered");
        assert_eq!(letter.outcome.lease_id, 7);
        assert!(letter.replaced);
        assert!(
            letter.reason.starts_with(OUTCOME_TOO_LARGE),
            "{}",
            letter.reason
        );
        let failure = &recovered.outcomes[0];
        assert_eq!(
            (failure.lease_id, failure.url.as_str()),
            (7, "http://h/big")
        );
        assert_eq!(failure.status(), OutcomeStatus::Failed);
        assert_eq!(failure.error, letter.reason);
        assert!(failure.links.is_empty());
        // Should even the failure be refused, it is dropped rather than sent forever.
        for _ in 0..DEAD_LETTER_AFTER_REFUSALS {
            sent.sent(std::slice::from_ref(failure));
            let again = sent.after_break(true);
            if let Some(letter) = again.dead_letter {
                assert!(!letter.replaced);
                assert!(again.outcomes.is_empty());
                return;
            }
        }
        panic!("the refused failure was never dropped");
    }

    #[test]
    fn a_dispatcher_that_goes_away_costs_no_outcome() {
        let mut sent = SentOutcomes::default();
        for _ in 0..DEAD_LETTER_AFTER_REFUSALS * 2 {
            sent.sent(&[outcome(1)]);
            let recovered = sent.after_break(false);
            assert!(recovered.dead_letter.is_none());
            assert_eq!(leases(&recovered.outcomes), [1]);
        }
        sent.sent(&[outcome(1)]);
        sent.after_break(true);
        sent.sent(&[outcome(1)]);
        sent.recorded(1);
        sent.sent(&[outcome(2)]);
        let recovered = sent.after_break(true);
        assert!(
            recovered.dead_letter.is_none(),
            "recorded ends the suspicion"
        );
    }
}

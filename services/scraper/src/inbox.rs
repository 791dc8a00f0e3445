//! The assignments this scraper holds, and the slots they take.
//!
//! A slot is taken when an assignment arrives and freed when its outcome is handed to a work
//! session: that is when the dispatcher, counting each outcome it receives as one freed
//! slot, frees it too. So an outcome waiting for a session still holds its slot, and a hello
//! after a reconnection offers exactly the slots that are free on both sides. An assignment
//! goes through three stages: waiting (for robots.txt and its host's gate: not started, so
//! it may still be revoked or handed back), fetching, archiving.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

/// Where an assignment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Waiting for robots.txt or for its host's gate.
    Waiting,
    /// Its request is under way.
    Fetching,
    /// Fetched, waiting for an archiver's acknowledgement.
    Archiving,
}

/// What became of an arriving assignment.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Held: run it; the token is cancelled if it is revoked before it starts.
    Held(CancellationToken),
    /// The same lease is held already: nothing new to do.
    Duplicate,
    /// No slot is free (the dispatcher sent more than offered) or the scraper is draining:
    /// hand it back. Its outcome takes a slot until it is delivered, like any other.
    Refused,
}

/// Assignments by stage, for telemetry and load reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StageCounts {
    /// Not started yet.
    pub(crate) waiting: usize,
    /// Requests under way.
    pub(crate) fetching: usize,
    /// Waiting for the archive.
    pub(crate) archiving: usize,
}

/// The held assignments and the slot count.
#[derive(Debug)]
pub(crate) struct Inbox {
    slots: u32,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<u64, Entry>,
    /// Slots taken: held assignments plus outcomes not yet handed to a session.
    taken: usize,
    draining: bool,
}

#[derive(Debug)]
struct Entry {
    stage: Stage,
    revoked: CancellationToken,
}

impl Inbox {
    /// An empty inbox of `slots` slots.
    pub(crate) fn new(slots: u32) -> Self {
        Self {
            slots,
            state: Mutex::default(),
        }
    }

    /// The slots offered in all.
    pub(crate) fn slots(&self) -> u32 {
        self.slots
    }

    /// Takes a slot for an arriving assignment.
    pub(crate) fn admit(&self, lease_id: u64) -> Admission {
        let mut state = self.lock();
        if state.entries.contains_key(&lease_id) {
            return Admission::Duplicate;
        }
        state.taken += 1;
        if state.draining || state.taken > self.slots as usize {
            return Admission::Refused;
        }
        let revoked = CancellationToken::new();
        let entry = Entry {
            stage: Stage::Waiting,
            revoked: revoked.clone(),
        };
        state.entries.insert(lease_id, entry);
        Admission::Held(revoked)
    }

    /// Moves a held assignment to `stage`. Returns false when it is no longer held (it was
    /// revoked while waiting), in which case the caller drops it.
    pub(crate) fn advance(&self, lease_id: u64, stage: Stage) -> bool {
        match self.lock().entries.get_mut(&lease_id) {
            Some(entry) => {
                entry.stage = stage;
                true
            }
            None => false,
        }
    }

    /// Drops a waiting assignment the dispatcher took back, freeing its slot at once (the
    /// caller offers it again with a credit). One that started is left to finish.
    pub(crate) fn revoke(&self, lease_id: u64) -> bool {
        let mut state = self.lock();
        let waiting = state
            .entries
            .get(&lease_id)
            .is_some_and(|entry| entry.stage == Stage::Waiting);
        if !waiting {
            return false;
        }
        if let Some(entry) = state.entries.remove(&lease_id) {
            entry.revoked.cancel();
        }
        state.taken -= 1;
        true
    }

    /// The assignment has its outcome: it is no longer held, but its slot stays taken until
    /// the outcome is delivered.
    pub(crate) fn finish(&self, lease_id: u64) {
        self.lock().entries.remove(&lease_id);
    }

    /// `count` outcomes were handed to a session: their slots are free.
    pub(crate) fn delivered(&self, count: usize) {
        let mut state = self.lock();
        state.taken = state.taken.saturating_sub(count);
    }

    /// `count` outcomes handed to a session came back undelivered: they take slots again.
    pub(crate) fn undelivered(&self, count: usize) {
        self.lock().taken += count;
    }

    /// Refuses every assignment from now on.
    pub(crate) fn drain(&self) {
        self.lock().draining = true;
    }

    /// Slots free now; none while draining.
    pub(crate) fn free_slots(&self) -> u32 {
        let state = self.lock();
        if state.draining {
            return 0;
        }
        let taken = u32::try_from(state.taken).unwrap_or(u32::MAX);
        self.slots.saturating_sub(taken)
    }

    /// Outcomes waiting to be handed to a session.
    pub(crate) fn undelivered_outcomes(&self) -> usize {
        let state = self.lock();
        state.taken.saturating_sub(state.entries.len())
    }

    /// The leases of the held assignments (not the ones whose outcome is waiting).
    pub(crate) fn lease_ids(&self) -> Vec<u64> {
        self.lock().entries.keys().copied().collect()
    }

    /// Held assignments by stage.
    pub(crate) fn stages(&self) -> StageCounts {
        let state = self.lock();
        let mut counts = StageCounts::default();
        for entry in state.entries.values() {
            match entry.stage {
                Stage::Waiting => counts.waiting += 1,
                Stage::Fetching => counts.fetching += 1,
                Stage::Archiving => counts.archiving += 1,
            }
        }
        counts
    }

    /// Whether nothing is held and no outcome is waiting.
    pub(crate) fn is_idle(&self) -> bool {
        self.lock().taken == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_free_when_outcomes_are_delivered_not_when_work_ends() {
        let inbox = Inbox::new(2);
        assert!(matches!(inbox.admit(1), Admission::Held(_)));
        assert!(matches!(inbox.admit(1), Admission::Duplicate));
        assert!(matches!(inbox.admit(2), Admission::Held(_)));
        assert!(matches!(inbox.admit(3), Admission::Refused));
        inbox.finish(1);
        assert_eq!(
            inbox.free_slots(),
            0,
            "outcomes of 1 and 3 are still undelivered"
        );
        assert_eq!(inbox.undelivered_outcomes(), 2);
        inbox.delivered(2);
        assert_eq!(inbox.free_slots(), 1);
        inbox.undelivered(1);
        assert_eq!(
            inbox.free_slots(),
            0,
            "a batch that came back takes its slot again"
        );
    }

    #[test]
    fn only_waiting_assignments_can_be_revoked() {
        let inbox = Inbox::new(4);
        let Admission::Held(revoked) = inbox.admit(1) else {
            panic!("held")
        };
        let _ = inbox.admit(2);
        assert!(inbox.advance(2, Stage::Fetching));
        assert!(!inbox.revoke(2), "a started fetch finishes");
        assert!(inbox.revoke(1));
        assert!(revoked.is_cancelled());
        assert!(
            !inbox.advance(1, Stage::Fetching),
            "a revoked assignment never starts"
        );
        assert_eq!(inbox.free_slots(), 3);
        assert_eq!(
            inbox.stages(),
            StageCounts {
                fetching: 1,
                ..StageCounts::default()
            }
        );
    }

    #[test]
    fn a_draining_inbox_refuses_and_offers_nothing() {
        let inbox = Inbox::new(4);
        inbox.drain();
        assert!(matches!(inbox.admit(1), Admission::Refused));
        assert_eq!(inbox.free_slots(), 0);
    }
}

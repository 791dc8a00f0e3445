//! What the dispatcher's messages do to the link: jobs defined, assignments started (or
//! refused while full or draining), revocations, and which outcomes the dispatcher recorded.

use std::time::Instant;

use owlmesh_proto::v1::work_message::Message as Inbound;
use owlmesh_proto::v1::{Assignment, OutcomeStatus, WorkMessage};
use tokio_util::sync::CancellationToken;

use super::WorkLink;
use crate::inbox::Admission;
use crate::worker::{Held, SHUTTING_DOWN, report, returned};

impl WorkLink {
    /// Acts on one message of the dispatcher.
    pub(super) fn handle(&mut self, received: WorkMessage) {
        match received.message {
            Some(Inbound::Job(definition)) => {
                self.jobs
                    .define(&definition.job_id, definition.spec.as_ref());
            }
            Some(Inbound::Assignments(batch)) => self.assign(batch.assignments),
            Some(Inbound::Revoked(revocation)) => {
                let dropped = revocation
                    .lease_ids
                    .iter()
                    .filter(|lease_id| self.inbox.revoke(**lease_id))
                    .count();
                // No outcome will free these slots on the dispatcher's side: a credit does.
                self.owed_credit += dropped;
            }
            Some(Inbound::Recorded(recorded)) => self.sent.recorded(recorded.count),
            None => {}
        }
    }

    /// Takes arriving assignments.
    fn assign(&mut self, assignments: Vec<Assignment>) {
        let received_at = Instant::now();
        for assignment in assignments {
            match self.inbox.admit(assignment.lease_id) {
                Admission::Held(revoked) => self.start(assignment, revoked, received_at),
                // Held already: the dispatcher counted a slot for nothing, so give it back.
                Admission::Duplicate => self.owed_credit += 1,
                Admission::Refused => {
                    let reason = match self.sender {
                        None => SHUTTING_DOWN,
                        Some(_) => "handed back: no free slot",
                    };
                    self.outcomes.push(returned(&assignment, reason));
                }
            }
        }
    }

    /// Starts a held assignment, or reports at once why it cannot run.
    fn start(&mut self, assignment: Assignment, revoked: CancellationToken, received_at: Instant) {
        let early = match (self.jobs.get(&assignment.job_id), &self.sender) {
            (Some(Ok(job)), Some(sender)) => {
                let held = Held {
                    assignment,
                    job,
                    revoked,
                    received_at,
                };
                self.worker.spawn(held, sender.clone());
                return;
            }
            (_, None) => returned(&assignment, SHUTTING_DOWN),
            (Some(Err(reason)), _) => report(&assignment, OutcomeStatus::Failed, &reason),
            (None, _) => {
                let reason = format!("no definition of job {} was received", assignment.job_id);
                report(&assignment, OutcomeStatus::Transient, &reason)
            }
        };
        self.inbox.finish(assignment.lease_id);
        self.outcomes.push(early);
    }
}

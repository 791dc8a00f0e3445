//! The outgoing half of a session, which the link can close and empty when the session ends.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use owlmesh_proto::v1::WorkerMessage;
use tokio::sync::mpsc;
use tokio_stream::Stream;

/// Messages queued for the transport at most: little, so that a break strands little.
const OUTBOUND_BUFFER: usize = 4;

/// The outgoing half of a session: the transport pulls from a queue the link can close and
/// empty when the session ends (the outcomes in it are among the unrecorded ones, kept in
/// [`SentOutcomes`]).
#[derive(Clone)]
pub(super) struct Transport(Arc<Mutex<Option<mpsc::Receiver<WorkerMessage>>>>);

impl Transport {
    pub(super) fn channel() -> (mpsc::Sender<WorkerMessage>, Self) {
        let (sender, receiver) = mpsc::channel(OUTBOUND_BUFFER);
        (sender, Self(Arc::new(Mutex::new(Some(receiver)))))
    }

    /// Ends the stream and returns what it still held.
    pub(super) fn take_unsent(&self) -> Vec<WorkerMessage> {
        let receiver = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        let mut unsent = Vec::new();
        if let Some(mut receiver) = receiver {
            while let Ok(message) = receiver.try_recv() {
                unsent.push(message);
            }
        }
        unsent
    }
}

impl Stream for Transport {
    type Item = WorkerMessage;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WorkerMessage>> {
        let mut receiver = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match receiver.as_mut() {
            Some(receiver) => receiver.poll_recv(cx),
            None => Poll::Ready(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use owlmesh_proto::v1::SlotCredit;
    use owlmesh_proto::v1::worker_message::Message as Outbound;

    use super::*;
    use crate::session::message;

    #[test]
    fn unsent_messages_are_taken_back_and_the_stream_ends() {
        let (sender, transport) = Transport::channel();
        sender
            .try_send(message(Outbound::Credit(SlotCredit { free_slots: 1 })))
            .unwrap();
        assert_eq!(transport.take_unsent().len(), 1);
        let waker = std::task::Waker::noop();
        let mut context = Context::from_waker(waker);
        let mut stream = transport.clone();
        assert_eq!(
            Pin::new(&mut stream).poll_next(&mut context),
            Poll::Ready(None)
        );
    }
}

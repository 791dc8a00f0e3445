//! The mesh client every service uses: registration, membership, routing and failover.
//!
//! Routing a message costs no directory call: a [`MembershipWatcher`] keeps the live members
//! of a kind (fed by `Watch`) and a local hash ring, and keeps using what it knew while the
//! directory is away.

mod backoff;
mod channels;
mod failover;
mod membership;
mod outbox;
mod registrar;

pub use backoff::{Backoff, retry};
pub use channels::{
    ChannelOptions, ChannelPool, DEFAULT_CONNECT_TIMEOUT, connect, connect_lazy, connect_with_tls,
};
pub use failover::{FailoverChannel, SUSPECT_PERIOD, is_unreachable, sort_failover};
pub use membership::{MembershipView, MembershipWatcher};
pub use outbox::{
    ArchiveOutbox, Archived, DEFAULT_BATCH_SIZE, DEFAULT_LINGER, DEFAULT_OUTBOX_CAPACITY,
    OutboxConfig, OutboxError, OutboxStats,
};
pub use registrar::{LoadReporter, Registrar, RegistrarConfig};

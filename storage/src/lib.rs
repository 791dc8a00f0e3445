//! The SQL layer under the frontier and the archive: one interface over SQLite (the embedded
//! default) and PostgreSQL (at scale), so each store writes its SQL once.
//!
//! - [`Pool`] connects, migrates and holds the connections, with one SQLite write discipline
//!   for every store: a single writer connection, every write transaction `BEGIN IMMEDIATE`,
//!   and a separate reader pool that WAL never makes wait for the writer.
//! - [`Statement`] is SQL text with `$n` placeholders (both backends accept them) and the
//!   values bound to them; [`WriteTx`] runs statements inside one write transaction.
//! - [`Schema`] carries a store's embedded migrations for each backend, tracked in a table of
//!   the store's choosing, so several stores can share one PostgreSQL database.
//! - [`Durability`] says what an acknowledged write survives: a killed process, or a power
//!   loss (SQLite's `synchronous` setting, and whether files are flushed).
//! - With the `testing` feature, `testing` gives a fresh database of every backend a test
//!   run can reach, so a storage suite is written once and runs on both.

mod durability;
mod error;
mod pool;
mod statement;
#[cfg(feature = "testing")]
pub mod testing;
mod transaction;

pub use durability::{Durability, UnknownDurability};
pub use error::{Result, StorageError, Transient, transient};
pub use pool::{Backend, POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT, Pool, Schema, is_postgres_url};
pub use statement::{BothRows, Param, Statement};
pub use transaction::WriteTx;

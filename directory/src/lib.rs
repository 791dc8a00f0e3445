//! The owlmesh directory server: where every instance registers and is found. It keeps
//! leases (heartbeats, expiry), answers consistent-hash routes and failover lists, and
//! streams membership to watchers. It is soft state: rebuilt from heartbeats within one
//! lease TTL after a restart. What members use to talk to it is the mesh runtime
//! (`owlmesh-mesh`).
//!
//! - [`serve`] runs the directory service (leases, `Watch`, `Route`, `Resolve`).
//! - [`registry`] holds the leases and the rings, behind the service.

mod error;
pub mod registry;
mod server;
mod validate;

pub use error::{DirectoryError, Result};
pub use server::{DEFAULT_LEASE_TTL, DirectoryConfig, DirectoryService, serve};

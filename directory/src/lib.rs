//! The owlmesh directory: where every instance registers and is found, and the mesh client
//! that every service uses to register, watch membership, route by consistent hashing and
//! fail over in priority order.
//!
//! - [`serve`] runs the directory service (leases, `Watch`, `Route`, `Resolve`).
//! - [`client`] holds the mesh client: [`client::Registrar`], [`client::MembershipWatcher`],
//!   [`client::FailoverChannel`] and [`client::ChannelPool`].
//! - [`grpc::GrpcServer`] is the server every service runs, with health and reflection.
//! - [`ring::HashRouter`] is the consistent-hash ring, the same code in every process.
//! - [`trace_context`] carries W3C trace context across the mesh, in call metadata and in
//!   the messages that carry work; [`trace_layer`] continues it on every server.

pub mod client;
mod error;
pub mod grpc;
mod member;
pub mod registry;
pub mod ring;
mod server;
pub mod telemetry;
pub mod trace_context;
pub mod trace_layer;
mod validate;

pub use error::{DirectoryError, Result};
pub use member::{MemberConfig, MeshMember};
pub use server::{DEFAULT_LEASE_TTL, DirectoryConfig, DirectoryService, serve};
pub use validate::is_host_port;

/// The directory's address when none is configured.
pub const DEFAULT_DIRECTORY_ADDRESS: &str = "127.0.0.1:7700";

//! The owlmesh mesh runtime: what every member of the mesh uses to take part in it. The
//! directory server is a member too; it lives in its own crate.
//!
//! - [`client`]: registering with the directory ([`client::Registrar`]), watching membership
//!   ([`client::MembershipWatcher`]), failing over in priority order
//!   ([`client::FailoverChannel`]), channels ([`client::ChannelPool`]) and the sharded
//!   archive outbox ([`client::ArchiveOutbox`]).
//! - [`MeshMember`]: serve, register, and leave in that order.
//! - [`grpc::GrpcServer`]: the server every member runs, with health and reflection of
//!   exactly the services it serves.
//! - [`ring::HashRouter`]: the consistent-hash ring, the same code in every process, and
//!   [`ownership::HostOwners`]: which scraper owns which host.
//! - [`telemetry`]: counters and latency histograms for `GetStats`.
//! - [`trace_context`] carries W3C trace context across the mesh, in call metadata and in
//!   the messages that carry work; [`trace_layer`] continues it on every server.
//! - [`clock`]: the Unix-millisecond clock of every timestamp on the wire.
//! - [`auth`]: bearer tokens and roles, checked on every server, sent by every client.
//! - [`tls`]: rustls on every server and client, and the private CA of `owlmesh up --tls`.
//! - [`api`]: every client and server of the API, with explicit message size limits.

mod address;
pub mod api;
pub mod auth;
pub mod client;
pub mod clock;
mod error;
pub mod grpc;
mod member;
pub mod ownership;
pub mod ring;
pub mod telemetry;
pub mod tls;
pub mod trace_context;
pub mod trace_layer;

pub use address::is_host_port;
pub use error::{MeshError, Result};
pub use member::{MemberConfig, MeshMember, advertised_address, check_advertise};

/// The directory's address when none is configured.
pub const DEFAULT_DIRECTORY_ADDRESS: &str = "127.0.0.1:7700";

//! Every client and server of the owlmesh API, built with the largest message each side may
//! read and write set explicitly, so that no peer can make another decode (or build) a
//! message of any size, and so that a producer knows the limit it must split below.
//!
//! tonic's defaults are 4 MiB to decode and no limit to encode. Each API gets its own pair,
//! sized from what its largest legitimate message holds; a message over a limit fails its
//! call with OUT_OF_RANGE or RESOURCE_EXHAUSTED rather than costing the receiver memory.

use owlmesh_proto::v1::archiver_client::ArchiverClient;
use owlmesh_proto::v1::archiver_server::{Archiver, ArchiverServer};
use owlmesh_proto::v1::directory_client::DirectoryClient;
use owlmesh_proto::v1::directory_server::{Directory, DirectoryServer};
use owlmesh_proto::v1::dispatcher_client::DispatcherClient;
use owlmesh_proto::v1::dispatcher_server::{Dispatcher, DispatcherServer};
use owlmesh_proto::v1::scraper_client::ScraperClient;
use owlmesh_proto::v1::scraper_server::{Scraper, ScraperServer};
use owlmesh_proto::v1::telemetry_client::TelemetryClient;
use owlmesh_proto::v1::telemetry_server::{Telemetry, TelemetryServer};

use crate::auth::MeshChannel;

const MIB: usize = 1024 * 1024;

/// The largest request the directory reads: a registration is bounded far below this by
/// the directory's own field limits (32 labels of 1 KiB at most).
pub const DIRECTORY_REQUEST_BYTES: usize = MIB;
/// The largest membership answer (`List`, `Watch`, `Resolve`): a few hundred bytes per
/// instance, so tens of thousands of instances fit, and even every one at its label limit
/// (about 33 KiB) leaves room for about two thousand.
pub const MEMBERSHIP_BYTES: usize = 64 * MIB;
/// The largest request a dispatcher reads: a batch of outcomes (each up to 6,000 links of
/// 2 KiB) or a job spec.
pub const DISPATCHER_REQUEST_BYTES: usize = 16 * MIB;
/// The largest answer a dispatcher sends: a batch of assignments, a page of jobs, a job.
pub const DISPATCHER_REPLY_BYTES: usize = 16 * MIB;
/// The largest `Try` request a scraper reads: one URL and one job spec.
pub const SCRAPER_REQUEST_BYTES: usize = 4 * MIB;
/// The largest `Try` answer: what one page (5 MiB of body at most) yields, its links too.
pub const SCRAPER_REPLY_BYTES: usize = 16 * MIB;
/// The largest request an archiver reads: one batch of pages, items and events.
pub const ARCHIVER_REQUEST_BYTES: usize = 64 * MIB;
/// The largest answer an archiver sends: a page of a query or an export chunk.
pub const ARCHIVER_REPLY_BYTES: usize = 16 * MIB;
/// `GetStats` both ways: a few counters and histograms.
pub const TELEMETRY_BYTES: usize = 4 * MIB;

/// A directory client that sends requests up to [`DIRECTORY_REQUEST_BYTES`] and reads
/// membership up to [`MEMBERSHIP_BYTES`].
pub fn directory_client(channel: MeshChannel) -> DirectoryClient<MeshChannel> {
    DirectoryClient::new(channel)
        .max_encoding_message_size(DIRECTORY_REQUEST_BYTES)
        .max_decoding_message_size(MEMBERSHIP_BYTES)
}

/// The directory's server side of [`directory_client`].
pub fn directory_server<T: Directory>(service: T) -> DirectoryServer<T> {
    DirectoryServer::new(service)
        .max_decoding_message_size(DIRECTORY_REQUEST_BYTES)
        .max_encoding_message_size(MEMBERSHIP_BYTES)
}

/// A dispatcher client within [`DISPATCHER_REQUEST_BYTES`] and [`DISPATCHER_REPLY_BYTES`].
pub fn dispatcher_client(channel: MeshChannel) -> DispatcherClient<MeshChannel> {
    DispatcherClient::new(channel)
        .max_encoding_message_size(DISPATCHER_REQUEST_BYTES)
        .max_decoding_message_size(DISPATCHER_REPLY_BYTES)
}

/// The dispatcher's server side of [`dispatcher_client`].
pub fn dispatcher_server<T: Dispatcher>(service: T) -> DispatcherServer<T> {
    DispatcherServer::new(service)
        .max_decoding_message_size(DISPATCHER_REQUEST_BYTES)
        .max_encoding_message_size(DISPATCHER_REPLY_BYTES)
}

/// A scraper client within [`SCRAPER_REQUEST_BYTES`] and [`SCRAPER_REPLY_BYTES`].
pub fn scraper_client(channel: MeshChannel) -> ScraperClient<MeshChannel> {
    ScraperClient::new(channel)
        .max_encoding_message_size(SCRAPER_REQUEST_BYTES)
        .max_decoding_message_size(SCRAPER_REPLY_BYTES)
}

/// The scraper's server side of [`scraper_client`].
pub fn scraper_server<T: Scraper>(service: T) -> ScraperServer<T> {
    ScraperServer::new(service)
        .max_decoding_message_size(SCRAPER_REQUEST_BYTES)
        .max_encoding_message_size(SCRAPER_REPLY_BYTES)
}

/// An archiver client within [`ARCHIVER_REQUEST_BYTES`] and [`ARCHIVER_REPLY_BYTES`].
pub fn archiver_client(channel: MeshChannel) -> ArchiverClient<MeshChannel> {
    ArchiverClient::new(channel)
        .max_encoding_message_size(ARCHIVER_REQUEST_BYTES)
        .max_decoding_message_size(ARCHIVER_REPLY_BYTES)
}

/// The archiver's server side of [`archiver_client`].
pub fn archiver_server<T: Archiver>(service: T) -> ArchiverServer<T> {
    ArchiverServer::new(service)
        .max_decoding_message_size(ARCHIVER_REQUEST_BYTES)
        .max_encoding_message_size(ARCHIVER_REPLY_BYTES)
}

/// A telemetry client within [`TELEMETRY_BYTES`] both ways.
pub fn telemetry_client(channel: MeshChannel) -> TelemetryClient<MeshChannel> {
    TelemetryClient::new(channel)
        .max_encoding_message_size(TELEMETRY_BYTES)
        .max_decoding_message_size(TELEMETRY_BYTES)
}

/// Every service's telemetry server side of [`telemetry_client`].
pub fn telemetry_server<T: Telemetry>(service: T) -> TelemetryServer<T> {
    TelemetryServer::new(service)
        .max_decoding_message_size(TELEMETRY_BYTES)
        .max_encoding_message_size(TELEMETRY_BYTES)
}

//! The owlmesh gRPC API, package `owlmesh.v1`: generated messages, clients and servers.
//!
//! This crate only compiles and re-exports. Conversions and validation live beside the
//! logic that needs them, in the service crates.

#![allow(unreachable_pub, clippy::all)]

/// Messages and services of package `owlmesh.v1`.
pub mod v1 {
    tonic::include_proto!("owlmesh.v1");
}

/// The encoded `FileDescriptorSet` of every owlmesh `.proto`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/owlmesh_descriptor.bin"));

pub use v1::*;

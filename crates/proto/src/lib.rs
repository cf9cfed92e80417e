//! The Switchyard gRPC contract: prost message types and tonic clients and
//! servers generated from `proto/switchyard/v1/`.
//!
//! This crate holds no logic. Conversions to domain types live in the crates
//! that consume these messages. It depends on nothing of ours.

#![expect(
    missing_docs,
    reason = "generated code; the .proto files are documented"
)]
#![expect(clippy::all, reason = "generated code")]

/// Version 1 of the contract.
pub mod v1 {
    tonic::include_proto!("switchyard.v1");
}

/// The encoded `FileDescriptorSet` of the contract, served by gRPC server
/// reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/switchyard_descriptor.bin"));

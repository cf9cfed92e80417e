//! One client type per service: [`RouterClient`], [`AdapterClient`],
//! [`CacheClient`], [`LedgerClient`] and [`ControlPlaneClient`].
//!
//! Each call goes through [`outbound`], the one layer every call crosses in
//! both modes: it copies the request id and W3C trace context from the
//! request's `RequestContext` into gRPC metadata and bounds the call by the
//! request's deadline. Metrics and spans are added there too. Below it,
//! the transport is either a [`GrpcChannel`](crate::GrpcChannel) (a remote
//! connection carrying the caller's service credential, or a server in this
//! process) or, on the two hot hops (edge → router, router → adapters), a
//! direct call on the in-process service without any encoding.

mod control_plane;
mod hot;
pub mod outbound;
mod stores;

pub use control_plane::ControlPlaneClient;
pub use hot::{AdapterClient, DirectAdapter, DirectRouter, ResponseStream, RouterClient};
pub use stores::{CacheClient, LedgerClient};

#[cfg(test)]
mod tests;

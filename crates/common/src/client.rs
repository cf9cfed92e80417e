//! One client type per service: [`RouterClient`], [`AdapterClient`],
//! [`CacheClient`], [`LedgerClient`] and [`ControlPlaneClient`].
//!
//! Every call that carries a request's `RequestContext` goes through
//! [`outbound`], in both modes: it copies the request id and W3C trace
//! context into gRPC metadata and bounds the call by the request's deadline.
//! That is where per-call metrics and spans belong (the observability
//! work). Calls without a request (the ledger's batches, the control
//! plane's snapshot stream) go straight to the transport. Below it,
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

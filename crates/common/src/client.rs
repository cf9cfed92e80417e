//! One client type per service: [`RouterClient`], [`AdapterClient`],
//! [`CacheClient`], [`LedgerClient`] and [`ControlPlaneClient`].
//!
//! Every message that belongs to a request carries its `RequestContext`
//! (request id, W3C trace context, deadline), in both modes; each service
//! reads it from there. Over a [`GrpcChannel`](crate::GrpcChannel) (a
//! remote connection carrying the caller's service credential, or a server
//! in this process) such calls go through [`outbound`], which copies the
//! request id and trace context into gRPC metadata for the layers in front
//! of the server and bounds the call by the request's deadline. On the two
//! hot hops (edge → router, router → adapters) and to the ledger, an
//! in-process service is called directly, without any encoding. These
//! clients are where per-call metrics and spans belong (the observability
//! work). Calls without a request (the ledger's batches, the control
//! plane's snapshot stream) carry no context.

mod control_plane;
mod hot;
pub mod outbound;
mod stores;

pub use control_plane::ControlPlaneClient;
pub use hot::{AdapterClient, DirectAdapter, DirectRouter, ResponseStream, RouterClient};
pub use stores::{CacheClient, DirectLedger, LedgerClient};

#[cfg(test)]
mod tests;

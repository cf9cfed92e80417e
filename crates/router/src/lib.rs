//! The router: every routing decision lives here.
//!
//! For each `RouterService.Chat` call it resolves the requested model to a
//! route from the in-memory snapshot (kept fresh by the control plane's
//! `Watch` stream, never fetched per request), checks the key may use it,
//! consults the exact-match cache, sends the request to the route's targets
//! through the adapters (falling back to the next target on a retryable
//! failure before the first chunk), streams chunks back as they arrive, and
//! emits one usage event per request to the ledger off the hot path.
//! `RouterService.Embed` serves embeddings the same way, without the cache.
//!
//! Depends on `switchyard-proto` and `switchyard-common` only; it reaches the
//! other services through generated clients over [`GrpcChannel`].

mod attempt;
mod cache_key;
mod config;
mod embeddings;
mod exchange;
mod grpc;
mod pricing;
mod route_table;
mod usage;

use std::sync::Arc;

pub use config::RouterConfig;
pub use grpc::RouterGrpc;
pub use route_table::RouteTable;
use switchyard_common::{
    GrpcChannel, channel::MAX_GRPC_MESSAGE_BYTES, direct::AdapterClient, snapshot::watch_snapshots,
};
use switchyard_proto::v1::router_service_server::RouterServiceServer;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Channels to the services the router calls.
#[derive(Clone)]
pub struct RouterDeps {
    /// The control plane, watched for snapshots.
    pub control_plane: GrpcChannel,
    /// The adapters that talk to providers (direct when in this process).
    pub adapter: AdapterClient,
    /// The response cache.
    pub cache: GrpcChannel,
    /// The usage ledger.
    pub ledger: GrpcChannel,
}

/// A built router: the gRPC server and the handle to its snapshot.
pub struct Router {
    /// The server to mount or call in-process.
    pub server: RouterServiceServer<RouterGrpc>,
    /// The service itself, for direct in-process calls.
    pub service: Arc<RouterGrpc>,
}

/// Builds the router service. Background tasks (snapshot watch, usage
/// batching) are tracked by `tasks`; the usage batcher flushes what it holds
/// when `shutdown` is cancelled.
pub fn build(
    config: &RouterConfig,
    deps: RouterDeps,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Router {
    let routes = watch_snapshots(
        deps.control_plane,
        RouteTable::from_snapshot,
        tasks,
        shutdown.clone(),
    );
    let usage = usage::UsageEmitter::start(config, deps.ledger, tasks, shutdown);
    let grpc = RouterGrpc::new(
        routes.clone(),
        attempt::Adapters::new(deps.adapter),
        deps.cache,
        usage,
        tasks.clone(),
        config.cache_lookup_timeout,
    );
    let service = Arc::new(grpc);
    let server = RouterServiceServer::from_arc(service.clone())
        .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES);
    Router { server, service }
}

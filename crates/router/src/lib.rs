//! The router: every routing decision lives here.
//!
//! Each `RouterService.Chat` call goes through four steps, each its own
//! module:
//! - `plan`: resolve the route the client named from the in-memory
//!   snapshot (kept fresh by the control plane's `Watch`, never fetched per
//!   request), check the key may use it, drop deployments that cannot
//!   serve the request (`constraints`) or whose breaker is open (`health`,
//!   `breaker`), order the rest by each tier's `strategy`, and write it all
//!   down as the decision record;
//! - `attempt`: send to one deployment through the adapters and wait for
//!   its first message; fallback is a loop over attempts that moves on only
//!   after a retryable failure before any output, each admitted by and
//!   reported to its deployment's breaker;
//! - `forward`: consult the exact cache, then stream chunks back as they
//!   arrive, driven by the caller's reads;
//! - `settle`: when the response ends or the caller leaves, one usage event
//!   with every attempt, each costed at its own deployment's price, and the
//!   cache store, tracked so shutdown waits for it.
//!
//! `RouterService.Embed` shares plan, attempt and settle, without the cache.
//!
//! Depends on `switchyard-proto` and `switchyard-common` only; it reaches the
//! other services through the clients in `switchyard_common::client`.

mod attempt;
mod breaker;
mod capacity;
mod config;
mod constraints;
mod decision;
mod embeddings;
mod estimate;
mod forward;
mod grpc;
mod health;
mod hedge;
mod latency;
mod lifecycle;
mod metrics;
mod plan;
mod pricing;
mod probes;
mod route_table;
mod rules;
mod settle;
mod shadow;
mod spans;
mod strategy;
mod timeouts;
mod tokens;
mod usage;

use std::sync::Arc;

pub use config::RouterConfig;
pub use grpc::RouterGrpc;
pub use route_table::RouteTable;
use switchyard_common::{
    channel::MAX_GRPC_MESSAGE_BYTES,
    client::{AdapterClient, CacheClient, ControlPlaneClient, LedgerClient},
    metrics::MetricsRegistry,
    snapshot::watch_snapshots,
};
use switchyard_proto::v1::{SnapshotAudience, router_service_server::RouterServiceServer};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Clients of the services the router calls.
#[derive(Clone)]
pub struct RouterDeps {
    /// The control plane, watched for snapshots.
    pub control_plane: ControlPlaneClient,
    /// The adapters that talk to providers (direct when in this process).
    pub adapter: AdapterClient,
    /// The response cache.
    pub cache: CacheClient,
    /// The usage ledger.
    pub ledger: LedgerClient,
}

/// A built router: the gRPC server and the handle to its snapshot.
pub struct Router {
    /// The server to mount or call in-process.
    pub server: RouterServiceServer<RouterGrpc>,
    /// The service itself, for direct in-process calls.
    pub service: Arc<RouterGrpc>,
}

/// Builds the router service, registering its series in `metrics`.
/// Background tasks (snapshot watch, usage batching) are tracked by
/// `tasks`; when `shutdown` is cancelled the usage batcher waits for
/// pending settles, then flushes what it holds.
pub fn build(
    config: &RouterConfig,
    deps: RouterDeps,
    metrics: &mut MetricsRegistry,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Router {
    let shutdown_for_probes = shutdown.clone();
    let routes = watch_snapshots(
        deps.control_plane,
        SnapshotAudience::Router,
        RouteTable::from_snapshot,
        &metrics.snapshots(),
        tasks,
        shutdown.clone(),
    );
    let settles = TaskTracker::new();
    let usage = usage::UsageEmitter::start(
        config,
        deps.ledger,
        metrics.registry(),
        tasks,
        settles.clone(),
        shutdown,
    );
    let teams = metrics.team_label();
    let router_metrics = Arc::new(metrics::RouterMetrics::register(metrics.registry(), teams));
    let grpc = RouterGrpc::new(
        routes,
        attempt::Adapters::new(deps.adapter),
        settle::Settler::new(usage, deps.cache, settles, router_metrics),
        forward::CacheLimits {
            lookup_timeout: config.cache_lookup_timeout,
            max_answer_bytes: config.max_cached_answer_bytes,
        },
        Arc::new(health::Health::register(config.breaker, metrics.registry())),
    );
    probes::Prober {
        routes: grpc.routes(),
        adapters: grpc.adapters(),
        settler: grpc.settler(),
        health: grpc.health(),
    }
    .spawn(tasks, shutdown_for_probes);
    let service = Arc::new(grpc);
    let server = RouterServiceServer::from_arc(service.clone())
        .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES);
    Router { server, service }
}

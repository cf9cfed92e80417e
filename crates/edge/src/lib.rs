//! The edge: OpenAI-compatible HTTP in front of the router.
//!
//! Stateless. It authenticates bearer keys against the in-memory snapshot
//! (never a database call), limits and parses request bodies, translates
//! OpenAI JSON to the canonical `ChatRequest`, calls `RouterService.Chat`,
//! and renders chunks back as JSON or as server-sent events, flushed as they
//! arrive. Every error leaves in OpenAI's error shape with the right status.
//! It holds no routing logic.
//!
//! Depends on `switchyard-proto` and `switchyard-common` only.

mod auth;
mod config;
mod context;
mod error;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzzing;
mod metrics;
mod openai;
mod overhead;
mod protocol_errors;
mod request_id;
mod request_span;
mod routes;
mod server;
mod sse;
mod transfer_coding;

use std::sync::Arc;

pub use config::EdgeConfig;
use switchyard_common::{
    client::{ControlPlaneClient, RouterClient},
    metrics::MetricsRegistry,
    snapshot::{SnapshotHandle, watch_snapshots},
};
use switchyard_proto::v1::SnapshotAudience;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::auth::EdgeIndex;

/// Channels to the services the edge calls.
#[derive(Clone)]
pub struct EdgeDeps {
    /// The router that serves chat requests (direct when in this process).
    pub router: RouterClient,
    /// The control plane, watched for keys and models.
    pub control_plane: ControlPlaneClient,
}

/// Shared state of the HTTP handlers.
pub(crate) struct EdgeState {
    pub(crate) router: RouterClient,
    pub(crate) index: SnapshotHandle<EdgeIndex>,
    pub(crate) body_limits: routes::shared::BodyLimits,
    pub(crate) request_timeout: std::time::Duration,
    pub(crate) metrics: metrics::EdgeMetrics,
}

/// A built edge: its HTTP application and its connection limit, for
/// [`serve`].
pub struct Edge {
    /// The routes and their layers.
    pub app: axum::Router,
    connections: server::Connections,
}

/// Builds the edge's HTTP application and connection limit, registering
/// their series in `metrics`. The snapshot watcher is tracked by `tasks`
/// and stops when `shutdown` is cancelled.
pub fn build(
    config: &EdgeConfig,
    deps: EdgeDeps,
    metrics: &mut MetricsRegistry,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Edge {
    let index = watch_snapshots(
        deps.control_plane,
        SnapshotAudience::Edge,
        EdgeIndex::from_snapshot,
        &metrics.snapshots(),
        tasks,
        shutdown,
    );
    let router = deps.router;
    let state = Arc::new(EdgeState {
        router,
        index,
        body_limits: routes::shared::BodyLimits {
            max_bytes: config.max_body_bytes,
            read_timeout: config.body_read_timeout,
            min_bytes_per_second: config.min_body_bytes_per_second,
            in_flight: switchyard_common::memory::ByteBudget::new(config.max_buffered_body_bytes),
        },
        request_timeout: config.request_timeout,
        metrics: metrics::EdgeMetrics::register(metrics.registry()),
    });
    Edge {
        app: routes::app(state),
        connections: server::Connections::register(config.max_connections, metrics.registry()),
    }
}

pub use server::{DRAIN_DEADLINE, serve};

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
mod openai;
mod routes;
mod sse;

use std::sync::Arc;

use axum::serve::ListenerExt;
pub use config::EdgeConfig;
use switchyard_common::{
    client::{ControlPlaneClient, RouterClient},
    snapshot::{SnapshotHandle, watch_snapshots},
};
use switchyard_proto::v1::SnapshotAudience;
use tokio::net::TcpListener;
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
    pub(crate) max_body_bytes: usize,
    pub(crate) request_timeout: std::time::Duration,
}

/// Builds the edge's HTTP application. The snapshot watcher is tracked by
/// `tasks` and stops when `shutdown` is cancelled.
pub fn build(
    config: &EdgeConfig,
    deps: EdgeDeps,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> axum::Router {
    let index = watch_snapshots(
        deps.control_plane,
        SnapshotAudience::Edge,
        EdgeIndex::from_snapshot,
        tasks,
        shutdown,
    );
    let router = deps.router;
    let state = Arc::new(EdgeState {
        router,
        index,
        max_body_bytes: config.max_body_bytes,
        request_timeout: config.request_timeout,
    });
    routes::app(state)
}

/// Serves `app` on an already-bound listener until `shutdown` is cancelled,
/// then lets in-flight requests (including open streams) finish, for at
/// most [`DRAIN_DEADLINE`].
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "cannot set TCP_NODELAY");
        }
    });
    let graceful =
        axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    tokio::select! {
        result = std::future::IntoFuture::into_future(graceful) => result,
        () = async {
            shutdown.cancelled().await;
            tokio::time::sleep(DRAIN_DEADLINE).await;
        } => {
            tracing::warn!("requests still open after the drain deadline; closing them");
            Ok(())
        }
    }
}

/// How long open requests (streams included) may run on after shutdown
/// begins; a client that stops reading must not keep the process alive.
const DRAIN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

//! The admin HTTP listener every process runs beside its service port:
//! `/metrics` (Prometheus text) and `/healthz`. It is bound to 127.0.0.1
//! by default and never shares the port clients use. The admin API's HTTP
//! parts and the console will be mounted here too.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use axum::{
    Router,
    extract::State,
    http::{HeaderValue, header},
    response::IntoResponse,
    routing::get,
};
use schemars::JsonSchema;
use serde::Deserialize;
use switchyard_common::{
    auth::ServiceRole,
    metrics::{TEXT_CONTENT_TYPE, encode_text, prometheus_client::registry::Registry},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The `admin` section: where each process's admin listener binds.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// The admin listener of `switchyard serve`.
    pub listen: SocketAddr,
    /// The edge's admin listener (`switchyard run edge`).
    pub edge: SocketAddr,
    /// The router's admin listener.
    pub router: SocketAddr,
    /// The adapters' admin listener.
    pub adapter: SocketAddr,
    /// The control plane's admin listener.
    pub control_plane: SocketAddr,
    /// The ledger's admin listener.
    pub ledger: SocketAddr,
    /// The cache's admin listener.
    pub cache: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
        Self {
            listen: local(9400),
            edge: local(9401),
            router: local(9402),
            adapter: local(9403),
            control_plane: local(9404),
            ledger: local(9405),
            cache: local(9406),
        }
    }
}

impl AdminConfig {
    /// The admin address of `role` in distributed mode.
    pub fn of_role(&self, role: ServiceRole) -> SocketAddr {
        match role {
            ServiceRole::Edge => self.edge,
            ServiceRole::Router => self.router,
            ServiceRole::Adapter => self.adapter,
            ServiceRole::ControlPlane => self.control_plane,
            ServiceRole::Ledger => self.ledger,
            ServiceRole::Cache => self.cache,
        }
    }
}

/// The listeners a process serves on: the service port and the admin one.
#[derive(Debug)]
pub struct Listeners {
    /// Where clients (or, for internal roles, other services) connect.
    pub service: TcpListener,
    /// The admin listener.
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the service address and the admin address.
    pub async fn bind(service: SocketAddr, admin: SocketAddr) -> anyhow::Result<Self> {
        let service = TcpListener::bind(service)
            .await
            .with_context(|| format!("cannot listen on {service}"))?;
        let admin = TcpListener::bind(admin)
            .await
            .with_context(|| format!("cannot listen on {admin} (the admin listener)"))?;
        Ok(Self { service, admin })
    }
}

/// The admin routes over a process's metrics registry.
pub fn app(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(registry)
}

async fn metrics(State(registry): State<Arc<Registry>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(TEXT_CONTENT_TYPE),
        )],
        encode_text(&registry),
    )
}

/// Serves the admin routes on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    axum::serve(listener, app(registry))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("serving the admin listener")
}

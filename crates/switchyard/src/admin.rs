//! The admin listener every process runs beside its service port:
//! `/metrics` (Prometheus text) and `/healthz`. It is bound to 127.0.0.1
//! by default and never shares the port clients use. On the process that
//! runs the control plane, once a bootstrap admin token is configured, it
//! also serves the admin API: `switchyard.v1.AdminService` over gRPC (HTTP/2
//! beside HTTP/1.1 on the same port) with health and reflection, and
//! `GET /admin/audit` for the console. With `admin.tls` the listener speaks
//! TLS only, and with `admin.tls.client_ca` requires client certificates
//! (`tls`).

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use axum::{
    Json, Router,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use schemars::JsonSchema;
use serde::Deserialize;
use switchyard_common::{
    auth::ServiceRole,
    metrics::{TEXT_CONTENT_TYPE, encode_text, prometheus_client::registry::Registry},
};
use switchyard_control_plane::AdminGrpc;
use switchyard_proto::v1::admin_service_server::AdminServiceServer;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

pub use self::tls::AdminTls;

mod tls;

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
    /// TLS on every admin listener of the process, with client certificates
    /// when `client_ca` is set; plain HTTP when absent.
    pub tls: Option<AdminTls>,
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
            tls: None,
        }
    }
}

impl AdminConfig {
    /// The TLS acceptor of the admin listeners, read from `tls`'s files;
    /// `None` for plain HTTP.
    pub fn tls_acceptor(&self) -> anyhow::Result<Option<TlsAcceptor>> {
        self.tls.as_ref().map(AdminTls::acceptor).transpose()
    }

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

/// The admin API as the admin listener mounts it.
#[derive(Clone)]
pub struct AdminApi {
    /// `switchyard.v1.AdminService`.
    pub grpc: AdminServiceServer<AdminGrpc>,
    /// The same API, for the HTTP routes.
    pub api: AdminGrpc,
}

impl AdminApi {
    /// The admin API of a built control plane; `None` while it is off.
    pub fn of(control_plane: &switchyard_control_plane::ControlPlane) -> Option<Self> {
        Some(Self {
            grpc: control_plane.admin_server()?,
            api: control_plane.admin_api.clone()?,
        })
    }
}

/// The admin routes over a process's metrics registry, and the admin API
/// when this process serves it.
pub fn app(registry: Arc<Registry>, admin: Option<AdminApi>) -> Router {
    let router = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(registry);
    let Some(admin) = admin else {
        return router;
    };
    let grpc = switchyard_common::grpc::with_health_and_reflection(Routes::new(admin.grpc))
        .into_axum_router();
    let http = Router::new()
        .route("/admin/audit", get(audit))
        .with_state(admin.api);
    router.merge(grpc).merge(http)
}

/// `GET /admin/audit?limit=N` query.
#[derive(Debug, Deserialize)]
struct AuditQuery {
    #[serde(default)]
    limit: u32,
}

/// The audit log as JSON, newest first, for callers with an admin token.
async fn audit(
    State(api): State<AdminGrpc>,
    Query(query): Query<AuditQuery>,
    headers: HeaderMap,
) -> axum::response::Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(switchyard_common::auth::bearer);
    match api.audit_for(token, query.limit).await {
        Ok(records) => {
            let entries: Vec<serde_json::Value> = records
                .into_iter()
                .map(|record| {
                    serde_json::json!({
                        "sequence": record.sequence,
                        "at_ms": record.at_ms,
                        "actor": record.actor,
                        "action": record.action,
                        "kind": record.kind,
                        "id": record.id,
                        "before_revision": record.before_revision,
                        "after_revision": record.after_revision,
                        "version": record.version,
                        "before": record.before,
                        "after": record.after,
                    })
                })
                .collect();
            Json(serde_json::json!({ "entries": entries })).into_response()
        }
        Err(status) => {
            let code = match status.code() {
                tonic::Code::Unauthenticated => StatusCode::UNAUTHORIZED,
                tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
                tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let body = serde_json::json!({ "error": { "message": status.message() } });
            (code, Json(body)).into_response()
        }
    }
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

/// Serves the admin routes (and the admin API, when given) on `listener`,
/// over TLS when `tls` is given, until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    admin: Option<AdminApi>,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let app = app(registry, admin);
    match tls {
        Some(acceptor) => tls::serve(listener, app, acceptor, shutdown).await,
        None => axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .context("serving the admin listener"),
    }
}

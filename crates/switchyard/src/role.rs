//! Distributed mode: one service per process, reaching the others over gRPC
//! at the addresses in `endpoints`. Every call carries the calling role's
//! service token, and every gRPC server refuses calls without an accepted
//! one (`service_auth`).

use anyhow::Context;
use switchyard_adapters::{AdapterDeps, DeploymentIndex};
use switchyard_common::{
    GrpcChannel,
    client::{AdapterClient, CacheClient, ControlPlaneClient, LedgerClient, RouterClient},
    config::Environment,
    grpc::serve_grpc,
    metrics::MetricsRegistry,
    service_auth::ServiceCredential,
    snapshot::watch_snapshots,
};
use switchyard_edge::EdgeDeps;
use switchyard_proto::v1::SnapshotAudience;
use switchyard_router::RouterDeps;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tonic::service::Routes;

use crate::{SwitchyardConfig, admin, admin::Listeners};

/// A service that can run as its own process.
pub use switchyard_common::auth::ServiceRole as Role;

/// The listen address configured for `role`.
pub fn listen_address(role: Role, config: &SwitchyardConfig) -> std::net::SocketAddr {
    match role {
        Role::Edge => config.edge.listen,
        Role::Router => config.router.listen,
        Role::Adapter => config.adapter.listen,
        Role::ControlPlane => config.control_plane.listen,
        Role::Ledger => config.ledger.listen,
        Role::Cache => config.cache.listen,
    }
}

/// Channels to the other services, each call carrying this role's credential.
struct Remotes<'a> {
    config: &'a SwitchyardConfig,
    environment: &'a Environment,
    role: Role,
}

impl Remotes<'_> {
    fn credential(&self) -> anyhow::Result<ServiceCredential> {
        Ok(self
            .config
            .service_auth
            .credential(self.role, self.environment)?)
    }

    fn channel(&self, url: &str) -> anyhow::Result<GrpcChannel> {
        GrpcChannel::connect_lazy(url, self.credential()?)
            .with_context(|| format!("endpoint {url}"))
    }

    fn control_plane(&self) -> anyhow::Result<ControlPlaneClient> {
        Ok(ControlPlaneClient::new(
            self.channel(&self.config.endpoints.control_plane)?,
        ))
    }
}

/// Runs one service on `listeners` until `shutdown` is cancelled; its
/// series are served on the admin listener.
pub async fn run_role(
    role: Role,
    config: SwitchyardConfig,
    environment: Environment,
    config_file: Option<std::path::PathBuf>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Listeners {
        service: listener,
        admin: admin_listener,
    } = listeners;
    let admin_tls = config.admin.tls_acceptor().context("admin.tls")?;
    let tasks = TaskTracker::new();
    let services_shutdown = CancellationToken::new();
    let mut metrics = MetricsRegistry::new(config.telemetry.team_label_limit);
    let endpoints = &config.endpoints;
    // Checked before any service starts: a role missing a token never
    // half-starts.
    let callers = config
        .service_auth
        .verifier(role, &environment)
        .context("authenticating callers")?;
    let remotes = Remotes {
        config: &config,
        environment: &environment,
        role,
    };
    let mut admin_api = None;
    let routes = match role {
        Role::Edge => {
            let edge = switchyard_edge::build(
                &config.edge,
                EdgeDeps {
                    router: RouterClient::remote(remotes.channel(&endpoints.router)?),
                    control_plane: remotes.control_plane()?,
                },
                &mut metrics,
                &tasks,
                services_shutdown.clone(),
            );
            // Tracked: the admin listener stops with the services.
            tasks.spawn(admin::serve(
                admin_listener,
                metrics.finish(),
                None,
                admin_tls,
                services_shutdown.clone(),
            ));
            let served = switchyard_edge::serve(listener, edge, &config.edge, shutdown).await;
            services_shutdown.cancel();
            tasks.close();
            tasks.wait().await;
            return served.context("serving HTTP");
        }
        Role::Router => {
            let router = switchyard_router::build(
                &config.router,
                RouterDeps {
                    control_plane: remotes.control_plane()?,
                    adapter: AdapterClient::remote(remotes.channel(&endpoints.adapter)?),
                    cache: CacheClient::new(remotes.channel(&endpoints.cache)?),
                    ledger: LedgerClient::remote(remotes.channel(&endpoints.ledger)?),
                },
                &mut metrics,
                &tasks,
                services_shutdown.clone(),
            );
            Routes::new(router.server)
        }
        Role::Adapter => {
            let deployments = watch_snapshots(
                remotes.control_plane()?,
                SnapshotAudience::Adapter,
                DeploymentIndex::from_snapshot,
                &metrics.snapshots(),
                &tasks,
                services_shutdown.clone(),
            );
            Routes::new(
                switchyard_adapters::build(
                    &config.adapter,
                    AdapterDeps {
                        deployments,
                        environment: environment.clone(),
                        keyring: config.keyring(&environment)?,
                        control_plane: Some(remotes.control_plane()?),
                    },
                    &mut metrics,
                )
                .context("starting the adapters")?,
            )
        }
        Role::ControlPlane => {
            let control_plane = switchyard_control_plane::build(
                &config.control_plane,
                &config.declarative(),
                config.keyring(&environment)?,
                &environment,
                &mut metrics,
                &tasks,
                services_shutdown.clone(),
            )
            .await
            .context("starting the control plane")?;
            admin_api = admin::AdminApi::of(&control_plane);
            crate::watch::watch_config_file(
                config_file,
                environment.clone(),
                control_plane.reloader(),
                &tasks,
                services_shutdown.clone(),
            )?;
            Routes::new(control_plane.service)
        }
        Role::Ledger => Routes::new(
            switchyard_ledger::build(&config.ledger, &environment)
                .await
                .context("starting the ledger")?,
        ),
        Role::Cache => Routes::new(
            switchyard_cache::build(&config.cache)
                .await
                .context("starting the cache")?,
        ),
    };
    // Tracked: the admin listener stops with the services.
    tasks.spawn(admin::serve(
        admin_listener,
        metrics.finish(),
        admin_api,
        admin_tls,
        services_shutdown.clone(),
    ));
    tracing::info!(%role, address = %listener.local_addr()?, "switchyard serving");
    let stop_server = CancellationToken::new();
    let server = switchyard_common::task::spawn_detached(
        "the gRPC server, awaited below",
        serve_grpc(listener, routes, callers, stop_server.clone()),
    );
    shutdown.cancelled().await;
    let served = if role == Role::ControlPlane {
        // Watch streams only end when the control plane's own tasks stop,
        // so stop those first, then the server.
        services_shutdown.cancel();
        stop_server.cancel();
        server.await.context("gRPC server task")?
    } else {
        // Drain in-flight calls first (the router settles their usage on
        // the way out), then stop the tasks (the usage batcher flushes).
        stop_server.cancel();
        let served = server.await.context("gRPC server task")?;
        services_shutdown.cancel();
        served
    };
    tasks.close();
    tasks.wait().await;
    served.context("serving gRPC")
}

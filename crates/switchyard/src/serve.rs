//! All-in-one mode: every service in this process, wired through in-process
//! channels (no sockets between them, so no service credentials); only the
//! edge's HTTP port is bound.

use anyhow::Context;
use switchyard_adapters::{AdapterDeps, DeploymentIndex};
use switchyard_common::{
    GrpcChannel,
    client::{AdapterClient, CacheClient, ControlPlaneClient, LedgerClient, RouterClient},
    config::Environment,
    metrics::MetricsRegistry,
    snapshot::watch_snapshots,
};
use switchyard_edge::EdgeDeps;
use switchyard_proto::v1::SnapshotAudience;
use switchyard_router::RouterDeps;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{SwitchyardConfig, admin, admin::Listeners};

/// Runs the whole gateway on `listeners` until `shutdown` is cancelled.
///
/// Services start in dependency order (control plane, ledger, cache,
/// adapters, router, edge) and stop in reverse: the edge drains its open
/// requests first, then the router's usage batcher flushes to the ledger.
/// Every service registers its series in one registry, served on the
/// admin listener.
pub async fn run_all_in_one(
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

    let keyring = config.keyring(&environment)?;
    let control_plane = switchyard_control_plane::build(
        &config.control_plane,
        &config.declarative(),
        keyring.clone(),
        &environment,
        &mut metrics,
        &tasks,
        services_shutdown.clone(),
    )
    .await
    .context("starting the control plane")?;
    let ledger = switchyard_ledger::build_service(&config.ledger, &environment)
        .await
        .context("starting the ledger")?;
    let cache = switchyard_cache::build(&config.cache)
        .await
        .context("starting the cache")?;
    let admin_api = admin::AdminApi::of(&control_plane);
    crate::watch::watch_config_file(
        config_file,
        environment.clone(),
        control_plane.reloader(),
        &tasks,
        services_shutdown.clone(),
    )?;
    let control_plane = ControlPlaneClient::new(GrpcChannel::in_process(control_plane.service));
    let deployments = watch_snapshots(
        control_plane.clone(),
        SnapshotAudience::Adapter,
        DeploymentIndex::from_snapshot,
        &metrics.snapshots(),
        &tasks,
        services_shutdown.clone(),
    );
    let adapter = switchyard_adapters::build_service(
        &config.adapter,
        AdapterDeps {
            deployments,
            environment: environment.clone(),
            keyring,
            control_plane: Some(control_plane.clone()),
        },
        &mut metrics,
    )
    .context("starting the adapters")?;
    let router = switchyard_router::build(
        &config.router,
        RouterDeps {
            control_plane: control_plane.clone(),
            // The hot hops and the ledger's batches are direct calls; the
            // cache stays in-process gRPC.
            adapter: AdapterClient::direct(adapter),
            cache: CacheClient::new(GrpcChannel::in_process(cache)),
            ledger: LedgerClient::direct(ledger),
        },
        &mut metrics,
        &tasks,
        services_shutdown.clone(),
    );
    let edge = switchyard_edge::build(
        &config.edge,
        EdgeDeps {
            router: RouterClient::direct(router.service),
            control_plane,
        },
        &mut metrics,
        &tasks,
        services_shutdown.clone(),
    );
    // Tracked: the admin listener stops with the services.
    tasks.spawn(admin::serve(
        admin_listener,
        metrics.finish(),
        admin_api,
        admin_tls,
        services_shutdown.clone(),
    ));
    tracing::info!(address = %listener.local_addr()?, "switchyard serving (all-in-one)");
    let served = switchyard_edge::serve(listener, edge, &config.edge, shutdown).await;
    services_shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    served.context("serving HTTP")
}

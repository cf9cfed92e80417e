//! The control plane: declarative config in SQL, published as versioned snapshots.
//!
//! The control plane owns configuration state. At startup it validates the
//! declarative objects of the config file ([`Declarative`]: providers,
//! deployments, routes, keys, teams, users, budgets, rate limits), applies
//! them to SQL ([`ConfigStore`]: SQLite embedded, PostgreSQL in production)
//! and publishes the stored state as a versioned `Snapshot` over
//! `ControlPlaneService` ([`ControlPlaneGrpc`]), filtered per role. A poll
//! task watches the stored version, so changes written by another replica or
//! through the API reach every `Watch` stream too.
//!
//! Invariants:
//! - The version increases with every stored change and only then; syncing
//!   the same file again keeps it.
//! - Every object has an owner (`file` or `api`) and a revision. The file
//!   never changes or prunes API-owned objects; the API refuses file-owned ones.
//! - API key secrets are hashed while loading; only the lowercase hex SHA-256
//!   is stored or published, and only to edges. Provider credentials travel
//!   as references, and only to adapters.
//!
//! Depends on `switchyard-proto` and `switchyard-common` only; never on another
//! service crate.

mod audience;
mod config;
mod crypto;
mod declarative;
mod error;
mod grpc;
mod objects;
mod price;
mod snapshot;
mod store;
mod validate;

use std::sync::Arc;

use switchyard_common::{
    channel::MAX_GRPC_MESSAGE_BYTES,
    config::Environment,
    metrics::{GaugeFn, MetricsRegistry},
};
use switchyard_proto::v1::control_plane_service_server::ControlPlaneServiceServer;
use tokio::sync::watch;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use audience::view_for;
pub use config::ControlPlaneConfig;
pub use crypto::sha256_hex;
pub use declarative::{
    BudgetConfig, BudgetPeriodConfig, CapabilitiesConfig, CapacityConfig, Declarative,
    DeploymentConfig, HedgeConfig, KeyConfig, LifecycleConfig, LongContextConfig, ModelConfig,
    PricingConfig, ProviderConfig, RateLimitConfig, RetryConfig, RouteCacheConfig, RouteConfig,
    ScopeConfig, StrategyConfig, TargetConfig, TeamConfig, TimeoutConfig, UserConfig,
};
pub use error::{Error, Result};
pub use grpc::ControlPlaneGrpc;
pub use objects::{ObjectKind, ObjectOwner, StoredObject};
pub use store::ConfigStore;

/// Builds the control plane: connects to the database (creating an SQLite
/// file if missing) and migrates it, syncs `declarative` into it, loads the
/// first snapshot and starts the poll task (tracked by `tasks`, stopped by
/// `shutdown`). The published version is served as `config_version` in
/// `metrics`.
///
/// Fails before serving anything if the declarative config is invalid or the
/// database is unreachable.
pub async fn build(
    config: &ControlPlaneConfig,
    declarative: &Declarative,
    environment: &Environment,
    metrics: &mut MetricsRegistry,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<ControlPlaneServiceServer<ControlPlaneGrpc>> {
    config.validate()?;
    let store = ConfigStore::connect(&config.database_url).await?;
    store.sync(declarative, environment).await?;
    let first = store.load_snapshot().await?;
    tracing::info!(
        version = first.version,
        providers = first.providers.len(),
        deployments = first.deployments.len(),
        routes = first.routes.len(),
        api_keys = first.api_keys.len(),
        "control plane snapshot loaded"
    );
    let (sender, receiver) = watch::channel(Arc::new(first));
    let published = receiver.clone();
    GaugeFn::register(
        metrics.registry(),
        "config_version",
        "Version of the newest config snapshot the control plane publishes",
        move || i64::try_from(published.borrow().version).unwrap_or(i64::MAX),
    );
    snapshot::spawn_poll_task(store, sender, config.poll_interval, tasks, shutdown.clone());
    let grpc = ControlPlaneGrpc::new(receiver, shutdown);
    Ok(ControlPlaneServiceServer::new(grpc)
        .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES))
}

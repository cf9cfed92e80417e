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

mod admin;
mod audience;
mod changes;
mod config;
mod crypto;
mod declarative;
mod delta;
mod error;
mod export;
mod grpc;
mod inherit;
mod lifecycle;
mod objects;
mod price;
mod rules;
mod snapshot;
mod store;
mod strategy;
mod timestamp;
mod validate;

use std::sync::Arc;

use switchyard_common::{
    channel::MAX_GRPC_MESSAGE_BYTES,
    config::Environment,
    metrics::{GaugeFn, MetricsRegistry},
};
use switchyard_common::{envelope::Keyring, metrics::prometheus_client::metrics::counter::Counter};
use switchyard_proto::v1::{
    admin_service_server::AdminServiceServer,
    control_plane_service_server::ControlPlaneServiceServer,
};
use tokio::sync::{Notify, watch};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use admin::auth::AdminAuth;
pub use admin::{AdminGrpc, secrets::KEY_PREFIX};
pub use audience::view_for;
pub use changes::{Change, ObjectChange, Outcome};
pub use config::ControlPlaneConfig;
pub use crypto::{secret_hint, sha256_hex};
pub use declarative::{
    BudgetConfig, BudgetPeriodConfig, CapabilitiesConfig, CapacityConfig, Declarative,
    DeploymentConfig, HedgeConfig, KeyConfig, LifecycleConfig, LongContextConfig, ModelConfig,
    PricingConfig, ProviderConfig, RateLimitConfig, RetryConfig, RouteCacheConfig, RouteConfig,
    RuleConditionConfig, RuleConfig, ScopeConfig, ScoreConfig, StickyConfig, StrategyConfig,
    TargetConfig, TeamConfig, TimeoutConfig, UserConfig, WeightedConfig,
};
pub use error::{Error, Result};
pub use export::to_declarative;
pub use grpc::ControlPlaneGrpc;
pub use lifecycle::Shift;
pub use objects::{ObjectKind, ObjectOwner, StoredConfig, StoredEntry, StoredObject};
pub use price::{format_price_nanos, parse_price_nanos};
pub use store::{AdminRole, AuditRecord, CONFIG_FILE_ACTOR, ConfigStore, StoredToken};
pub use timestamp::{format_rfc3339_seconds, parse_rfc3339_seconds};

/// The control plane's servers: snapshots for the data path, and the admin
/// API when a bootstrap admin token is configured.
pub struct ControlPlane {
    /// `ControlPlaneService`, served to edges, routers and adapters.
    pub service: ControlPlaneServiceServer<ControlPlaneGrpc>,
    /// The admin API, served on the admin listener only; `None` until
    /// `control_plane.admin_token` is set.
    pub admin_api: Option<AdminGrpc>,
    /// The config store.
    pub store: ConfigStore,
    changed: Arc<Notify>,
}

impl ControlPlane {
    /// `AdminService` over the admin API, when it is on.
    pub fn admin_server(&self) -> Option<AdminServiceServer<AdminGrpc>> {
        let api = self.admin_api.clone()?;
        Some(
            AdminServiceServer::new(api)
                .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES),
        )
    }

    /// A handle that applies a changed config file.
    pub fn reloader(&self) -> ConfigReloader {
        ConfigReloader {
            store: self.store.clone(),
            changed: self.changed.clone(),
        }
    }
}

/// Applies a changed config file to the running control plane.
#[derive(Debug, Clone)]
pub struct ConfigReloader {
    store: ConfigStore,
    changed: Arc<Notify>,
}

impl ConfigReloader {
    /// Syncs the file's objects into the store (as at startup: file-owned
    /// objects follow the file, API-owned ones stay) and publishes the result
    /// at once. An invalid file changes nothing, and the error says why.
    pub async fn reload(
        &self,
        declarative: &Declarative,
        environment: &Environment,
    ) -> Result<u64> {
        let version = self.store.sync(declarative, environment).await?;
        self.changed.notify_one();
        Ok(version)
    }
}

/// Builds the control plane: connects to the database (creating an SQLite
/// file if missing) and migrates it, syncs `declarative` into it, loads the
/// first snapshot and starts the publisher (tracked by `tasks`, stopped by
/// `shutdown`). The published version is served as `config_version` in
/// `metrics`, failed admin authentications as `admin_auth_failures_total`.
///
/// `keyring` seals the values of stored credentials (`SetCredential`); without
/// it they cannot be set.
///
/// Fails before serving anything if the declarative config is invalid, the
/// bootstrap admin token cannot be read, or the database is unreachable.
pub async fn build(
    config: &ControlPlaneConfig,
    declarative: &Declarative,
    keyring: Option<Keyring>,
    environment: &Environment,
    metrics: &mut MetricsRegistry,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<ControlPlane> {
    config.validate()?;
    let bootstrap_sha256 = config
        .admin_token
        .as_ref()
        .map(|source| {
            source
                .resolve(environment)
                .map(|token| sha256_hex(token.expose()))
                .map_err(|error| Error::invalid("control_plane.admin_token", error.to_string()))
        })
        .transpose()?;
    let store = ConfigStore::connect(&config.database_url).await?;
    store.sync(declarative, environment).await?;
    // Sunsets already past are shifted before anything is served.
    snapshot::shift_due(&store).await;
    let first = store.load_snapshot().await?;
    tracing::info!(
        version = first.version,
        providers = first.providers.len(),
        deployments = first.deployments.len(),
        routes = first.routes.len(),
        api_keys = first.api_keys.len(),
        "control plane snapshot loaded"
    );
    let (sender, receiver) = watch::channel(Arc::new(snapshot::Published::first(first)));
    let published = receiver.clone();
    GaugeFn::register(
        metrics.registry(),
        "config_version",
        "Version of the newest config snapshot the control plane publishes",
        move || i64::try_from(published.borrow().snapshot.version).unwrap_or(i64::MAX),
    );
    let changed = Arc::new(Notify::new());
    snapshot::spawn_poll_task(
        store.clone(),
        sender,
        config.poll_interval,
        changed.clone(),
        tasks,
        shutdown.clone(),
    );
    if store.notifies() {
        snapshot::spawn_change_listener(
            config.database_url.clone(),
            changed.clone(),
            tasks,
            shutdown.clone(),
        );
    }
    let failures = Counter::default();
    metrics.registry().register(
        "admin_auth_failures",
        "Admin API calls refused for a missing or unknown admin token",
        failures.clone(),
    );
    let admin_api = bootstrap_sha256.map(|sha256| {
        let auth = AdminAuth::new(sha256, store.clone(), failures);
        AdminGrpc::new(store.clone(), auth, keyring, changed.clone())
    });
    let grpc = ControlPlaneGrpc::new(receiver, store.clone(), shutdown);
    Ok(ControlPlane {
        service: ControlPlaneServiceServer::new(grpc)
            .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES),
        admin_api,
        store,
        changed,
    })
}

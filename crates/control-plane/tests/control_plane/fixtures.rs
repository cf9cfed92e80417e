//! Config files and a running control plane for the scenarios.

use std::time::Duration;

use switchyard_common::SecretSource;
use switchyard_common::{
    GrpcChannel,
    config::{Environment, load_yaml},
};
use switchyard_control_plane::{ConfigStore, ControlPlaneConfig, Declarative, build};
use switchyard_proto::v1::{
    GetSnapshotRequest, Snapshot, SnapshotAudience, admin_service_client::AdminServiceClient,
    control_plane_service_client::ControlPlaneServiceClient,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// The secret of the `from-env` key.
pub const DEMO_SECRET: &str = "sk-switchyard-demo-secret";

/// The config file the scenarios start from.
pub const CONFIG: &str = r#"
providers:
  - name: mock
    kind: mock
  - name: openai
    kind: openai
    base_url: https://api.openai.com/v1
    api_key: {env: OPENAI_API_KEY}
    timeout: 60s
    options: {organization: org-123}
    secrets: {project_key: {file: /run/secrets/openai-project}}
deployments:
  - id: openai-mini
    provider: openai
    model: gpt-4o-mini
    pricing: {input_per_million: "0.15", output_per_million: "0.60"}
    timeout: {first_token: 20s, connect: 2s}
  - id: mock-2
    provider: mock
    model: mock-2
routes:
  - name: gpt
    strategy: {fallback: [openai-mini, mock-2]}
    owned_by: openai
    timeout: {request: 90s, idle: 15s}
    cost_ceiling: "0.25"
    by_tier: {free: demo}
    shadow: {deployment: mock-2, percent: 5}
    slo: {first_token_p95: 2s}
    hedge: {after: 3s, after_p95: true}
models:
  - name: demo
    targets: [{provider: mock, model: mock-1}]
    cache_ttl: 5m
    pricing: {input_per_million: "0.15", output_per_million: "0.60"}
teams:
  - id: default
    name: Default team
    tier: premium
    models: [gpt, demo]
users:
  - id: alice
    team: default
budgets:
  - {id: default-monthly, scope: {team: default}, limit: "250.00", period: monthly}
rate_limits:
  - {id: alice-rpm, scope: {user: alice}, requests_per_minute: 60}
keys:
  - id: demo
    name: Demo key
    team: default
    sha256: "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
  - id: from-env
    models: [demo]
    disabled: true
    secret: {env: SWITCHYARD_DEMO_KEY}
"#;

/// A `Watch` stream and the view it has built: deltas apply to it.
pub struct Watched {
    stream: tonic::Streaming<switchyard_proto::v1::WatchResponse>,
    /// The newest view, once one arrived (or the one the caller said it holds).
    pub held: Option<Snapshot>,
}

impl Watched {
    /// Follows `stream`, holding `held` to start with.
    pub fn new(
        stream: tonic::Streaming<switchyard_proto::v1::WatchResponse>,
        held: Option<Snapshot>,
    ) -> Self {
        Self { stream, held }
    }

    /// The stream itself, to see it end.
    pub fn stream(&mut self) -> &mut tonic::Streaming<switchyard_proto::v1::WatchResponse> {
        &mut self.stream
    }

    /// The next message as sent, within `within`.
    pub async fn message(&mut self, within: Duration) -> switchyard_proto::v1::WatchResponse {
        tokio::time::timeout(within, self.stream.message())
            .await
            .expect("a message arrives in time")
            .expect("stream is healthy")
            .expect("stream is open")
    }

    /// The view after the next message, within `within`.
    pub async fn next_within(&mut self, within: Duration) -> Snapshot {
        let message = self.message(within).await;
        let snapshot = match (message.snapshot, message.delta) {
            (Some(snapshot), _) => snapshot,
            (None, Some(delta)) => {
                let mut held = self.held.take().expect("a delta follows a snapshot");
                switchyard_common::snapshot::delta::apply_delta(&mut held, delta)
                    .expect("the delta applies to the held view");
                held
            }
            (None, None) => panic!("an empty message"),
        };
        self.held = Some(snapshot.clone());
        snapshot
    }
}

/// The bootstrap admin token.
pub const ADMIN_TOKEN: &str = "sy-admin-bootstrap-token-for-the-tests-0123";

/// The environment the config resolves against (no provider secrets: the
/// adapters resolve those).
pub fn environment() -> Environment {
    Environment::from([
        ("SWITCHYARD_DEMO_KEY".to_owned(), DEMO_SECRET.to_owned()),
        ("SWITCHYARD_ADMIN_TOKEN".to_owned(), ADMIN_TOKEN.to_owned()),
    ])
}

/// `ID:BASE64` master keys for `ids`, the first current; each key's bytes
/// follow from its id, so a key listed again is the same key.
pub fn master_keys(ids: &[&str]) -> String {
    use base64::Engine;
    ids.iter()
        .map(|id| {
            let byte = id.bytes().fold(7_u8, |sum, byte| sum.wrapping_add(byte));
            format!(
                "{id}:{}",
                base64::engine::general_purpose::STANDARD.encode([byte; 32])
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Wraps `message` in a request carrying `token` as its bearer token.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("valid metadata"),
    );
    request
}

/// Wraps `message` in a request carrying the bootstrap admin token.
pub fn as_admin<T>(message: T) -> tonic::Request<T> {
    with_token(message, ADMIN_TOKEN)
}

/// Returns the config file parsed.
pub fn declarative() -> Declarative {
    load_yaml("control.yaml", CONFIG, &Environment::new()).expect("fixture config parses")
}

/// Returns the config file with the `demo` model's cache TTL changed.
pub fn changed_declarative() -> Declarative {
    let mut declarative = declarative();
    declarative.models[0].cache_ttl = Some(Duration::from_secs(60));
    declarative
}

/// A control plane built the way the binary builds it, called in-process.
pub struct RunningControlPlane {
    pub client: ControlPlaneServiceClient<GrpcChannel>,
    /// The admin API, called in-process.
    pub admin: AdminServiceClient<GrpcChannel>,
    /// The store it writes, for reading what the API cannot show.
    pub store: ConfigStore,
    /// The file the master keys are read from.
    pub master_keys_file: std::path::PathBuf,
    _keys: tempfile::TempDir,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl RunningControlPlane {
    /// Builds the control plane on `database_url` with `declarative`.
    pub async fn start(database_url: &str, declarative: &Declarative) -> Self {
        Self::start_polling_every(database_url, declarative, Duration::from_millis(50)).await
    }

    /// Builds the control plane, checking the database for others' changes
    /// every `poll_interval`.
    pub async fn start_polling_every(
        database_url: &str,
        declarative: &Declarative,
        poll_interval: Duration,
    ) -> Self {
        let config = ControlPlaneConfig {
            database_url: database_url.to_owned(),
            poll_interval,
            admin_token: Some(SecretSource::env("SWITCHYARD_ADMIN_TOKEN")),
            ..ControlPlaneConfig::default()
        };
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        // A mounted key file, rewritten by `rotate_master_keys`.
        let keys = tempfile::tempdir().expect("a directory for the master keys");
        let master_keys_file = keys.path().join("master-keys");
        std::fs::write(&master_keys_file, master_keys(&["k1"])).expect("write the keys");
        let keyring = switchyard_common::envelope::Keyring::new(
            SecretSource::file(master_keys_file.clone()),
            environment(),
        );
        let built = build(
            &config,
            declarative,
            Some(keyring),
            &environment(),
            &mut switchyard_common::metrics::MetricsRegistry::default(),
            &tasks,
            shutdown.clone(),
        )
        .await
        .expect("control plane builds");
        let admin = built.admin_server().expect("the admin API is on");
        Self {
            client: ControlPlaneServiceClient::new(GrpcChannel::in_process(built.service))
                .max_decoding_message_size(switchyard_common::channel::MAX_GRPC_MESSAGE_BYTES),
            admin: AdminServiceClient::new(GrpcChannel::in_process(admin)),
            store: built.store,
            master_keys_file,
            _keys: keys,
            tasks,
            shutdown,
        }
    }

    /// Replaces the master keys (the first wraps from then on), as a
    /// rotated Kubernetes Secret would.
    pub fn rotate_master_keys(&self, ids: &[&str]) {
        std::fs::write(&self.master_keys_file, master_keys(ids)).expect("rewrite the keys");
    }

    /// Everything the admin API and the database hold that could show a
    /// secret: the objects of `kind` as listed, the export, the audit log,
    /// and every stored row, each as text.
    pub async fn everything_shown(
        &mut self,
        kind: switchyard_proto::v1::ObjectKind,
    ) -> Vec<String> {
        use switchyard_proto::v1::{ExportRequest, ListAuditRequest, ListObjectsRequest};
        let listed = self
            .admin
            .list(as_admin(ListObjectsRequest { kind: kind as i32 }))
            .await
            .expect("list")
            .into_inner();
        let exported = self
            .admin
            .export(as_admin(ExportRequest {}))
            .await
            .expect("export")
            .into_inner();
        let audit = self
            .admin
            .list_audit(as_admin(ListAuditRequest { limit: 0 }))
            .await
            .expect("audit")
            .into_inner();
        vec![
            format!("{listed:?}"),
            format!("{exported:?}"),
            format!("{audit:?}"),
            self.store_dump().await,
        ]
    }

    /// Every stored row, admin tokens and audit log included, as text.
    pub async fn store_dump(&self) -> String {
        let (version, entries) = self.store.entries().await.expect("entries");
        let audit = self.store.audit(1000).await.expect("audit");
        let tokens = self.store.tokens().await.expect("tokens");
        format!("{version} {entries:?} {audit:?} {tokens:?}")
    }

    /// Starts a `Watch` stream as `audience`, from nothing.
    pub async fn watch(&mut self, audience: SnapshotAudience) -> Watched {
        let stream = self
            .client
            .watch(switchyard_proto::v1::WatchRequest {
                known_version: 0,
                audience: audience as i32,
            })
            .await
            .expect("Watch starts")
            .into_inner();
        Watched::new(stream, None)
    }

    /// Returns the current snapshot as the router sees it.
    pub async fn snapshot(&mut self) -> Snapshot {
        self.snapshot_for(SnapshotAudience::Router).await
    }

    /// Waits (up to ten seconds) for the router's snapshot at `version` or newer.
    pub async fn snapshot_at_least(&mut self, version: u64) -> Snapshot {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let snapshot = self.snapshot().await;
            if snapshot.version >= version {
                return snapshot;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "version {version} is not published"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Returns the current snapshot as `audience` sees it.
    pub async fn snapshot_for(&mut self, audience: SnapshotAudience) -> Snapshot {
        self.client
            .get_snapshot(GetSnapshotRequest {
                audience: audience as i32,
            })
            .await
            .expect("GetSnapshot succeeds")
            .into_inner()
            .snapshot
            .expect("response carries a snapshot")
    }

    /// Cancels the shutdown token and waits for the poll task to stop.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.close();
        tokio::time::timeout(Duration::from_secs(10), self.tasks.wait())
            .await
            .expect("tasks stop after shutdown");
    }
}

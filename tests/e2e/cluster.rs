//! `TestCluster`: the gateway started the way the binary starts it, in
//! either mode, against a fake OpenAI upstream.

use std::{collections::BTreeMap, path::Path, time::Duration};

use switchyard::{SwitchyardConfig, admin::Listeners, serve::run_all_in_one};
use switchyard_test_support::{
    FakeAnthropic, FakeOpenAi,
    launch::{Launch, Processes},
};
use tokio_util::sync::CancellationToken;

use crate::backends;

/// How the services are deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `switchyard serve` wiring, in this test process.
    AllInOne,
    /// One `switchyard run <role>` process per service, over gRPC on loopback.
    Distributed,
}

/// Which storage the services use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backends {
    /// SQLite files and the in-memory cache.
    Embedded,
    /// PostgreSQL, ClickHouse and Redis.
    Production,
}

/// Where the ledger writes, for assertions.
#[derive(Debug, Clone)]
pub enum LedgerLocation {
    /// A SQLite database URL.
    Sqlite(String),
    /// A ClickHouse database name.
    ClickHouse(String),
}

/// A running gateway and its fake upstream.
pub struct TestCluster {
    /// `http://127.0.0.1:PORT` of the edge.
    pub base_url: String,
    /// The fake OpenAI provider behind the `gpt-test` model, and the backup
    /// deployment of the `fallback` routes.
    pub upstream: FakeOpenAi,
    /// The fake Anthropic provider: the first deployment of `fallback`.
    pub primary: FakeAnthropic,
    /// The client key's secret.
    pub api_key: String,
    /// The secret of a key in a team of tier `free` that may use only
    /// `premium` and `gpt-test` (a debug key too).
    pub free_key: String,
    /// The team of the client key (and so the cache namespace).
    pub team: String,
    /// The bootstrap admin token of the admin API.
    pub admin_token: String,
    /// The config file every process was started with (and watches).
    pub config_path: std::path::PathBuf,
    /// Its text as started.
    pub config_text: String,
    /// Where usage events land.
    pub ledger: LedgerLocation,
    /// Which storage is in use.
    pub backends: Backends,
    /// `http://127.0.0.1:PORT` of each role's admin listener, by role name
    /// (`serve` for all-in-one).
    pub admin_urls: BTreeMap<String, String>,
    /// An HTTP client for the edge.
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    processes: Option<Processes>,
    postgres_database: Option<String>,
    _directory: tempfile::TempDir,
}

/// Any free port on loopback.
pub const LOCAL_ANY_PORT: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// The edge's request timeout: the deadline every hop honours.
pub const REQUEST_TIMEOUT_SECS: u64 = 5;

/// The edge's header and body read timeouts in every test cluster.
pub const EDGE_READ_TIMEOUT_SECS: u64 = 3;

/// The edge's connection limit in every test cluster.
pub const EDGE_MAX_CONNECTIONS: usize = 24;

/// The provider key the fake upstream expects to see.
/// Largest answer the test router keeps for the cache.
pub const MAX_CACHED_ANSWER_BYTES: usize = 4096;

pub const UPSTREAM_KEY: &str = "sk-upstream-secret-7f3a";
/// The other key of the provider with two (`fake-openai-pool`, whose second
/// is [`UPSTREAM_KEY`]).
pub const POOL_KEY_ALPHA: &str = "sk-upstream-alpha-91c0";

impl TestCluster {
    /// Starts a cluster, or returns `None` when the production backends are
    /// unavailable outside CI.
    pub async fn start(mode: Mode, backends: Backends) -> Option<Self> {
        if backends == Backends::Production && !backends::production_backends_available().await {
            return None;
        }
        let directory = tempfile::tempdir().expect("temporary directory");
        let upstream = FakeOpenAi::start().await;
        let primary = FakeAnthropic::start().await;
        let unique = uuid::Uuid::now_v7().simple().to_string();
        let team = format!("team-{unique}");
        let api_key = format!("sk-test-{unique}");
        let free_key = format!("sk-free-{unique}");
        let admin_token = format!("sy-admin-test-{unique}");

        let (control_plane_url, postgres_database) = match backends {
            Backends::Embedded => (sqlite_url(directory.path(), "control.db"), None),
            Backends::Production => {
                let name = format!("switchyard_e2e_{unique}");
                create_postgres_database(&name).await;
                let url = backends::postgres_url();
                let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
                (format!("{base}/{name}"), Some(name))
            }
        };
        let (ledger_yaml, ledger) = match backends {
            Backends::Embedded => {
                let url = sqlite_url(directory.path(), "ledger.db");
                (
                    format!("sqlite_url: \"{url}\""),
                    LedgerLocation::Sqlite(url),
                )
            }
            Backends::Production => {
                let database = format!("switchyard_e2e_{unique}");
                let yaml = format!(
                    "clickhouse: {{url: \"{}\", database: \"{database}\"}}",
                    backends::clickhouse_url()
                );
                (yaml, LedgerLocation::ClickHouse(database))
            }
        };
        let cache_yaml = match backends {
            Backends::Embedded => "{}".to_owned(),
            Backends::Production => format!("{{redis_url: \"{}\"}}", backends::redis_url()),
        };
        let config_text = format!(
            r#"
edge: {{listen: "127.0.0.1:0", max_body_bytes: 65536, request_timeout: {REQUEST_TIMEOUT_SECS}s, header_read_timeout: {EDGE_READ_TIMEOUT_SECS}s, body_read_timeout: {EDGE_READ_TIMEOUT_SECS}s, max_connections: {EDGE_MAX_CONNECTIONS}}}
router: {{listen: "127.0.0.1:0", usage_flush_interval: 20ms, cache_lookup_timeout: 2s, max_cached_answer_bytes: {MAX_CACHED_ANSWER_BYTES}}}
adapter: {{listen: "127.0.0.1:0"}}
control_plane: {{listen: "127.0.0.1:0", database_url: "{control_plane_url}", poll_interval: 200ms, admin_token: {{env: ADMIN_TOKEN}}}}
ledger: {{listen: "127.0.0.1:0", {ledger_yaml}}}
cache: {cache_yaml}
telemetry: {{log_filter: warn}}
credentials: {{master_keys: {{env: MASTER_KEYS}}}}
providers:
  - {{name: fake-openai, kind: openai, base_url: "{upstream_url}", api_key: {{env: FAKE_OPENAI_KEY}}, timeout: 10s}}
  - {{name: mock, kind: mock}}
  - {{name: fake-anthropic, kind: anthropic, base_url: "{primary_url}", api_key: {{env: FAKE_OPENAI_KEY}}, timeout: 1s}}
  - {{name: nowhere, kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: {{env: FAKE_OPENAI_KEY}}, timeout: 2s}}
  - {{name: fake-openai-account, kind: openai, base_url: "{upstream_url}", api_key: {{env: FAKE_OPENAI_KEY}}, timeout: 10s, capacity: {{max_concurrency: 1}}}}
  - {{name: fake-openai-pool, kind: openai, base_url: "{upstream_url}", api_keys: {{alpha: {{env: POOL_KEY_ALPHA}}, bravo: {{env: FAKE_OPENAI_KEY}}}}, timeout: 10s}}
deployments:
  - id: anthropic-primary
    provider: fake-anthropic
    model: claude-sonnet-4-5
    pricing: {{input_per_million: "100.00", output_per_million: "200.00"}}
  - id: openai-backup
    provider: fake-openai
    model: gpt-4o-mini
    pricing: {{input_per_million: "2.50", output_per_million: "10.00"}}
  - id: refused-primary
    provider: nowhere
    model: gpt-4o-mini
    pricing: {{input_per_million: "100.00", output_per_million: "200.00"}}
  - id: old-mini
    provider: fake-openai
    model: gpt-4o-mini-old
    lifecycle: {{deprecated: true, sunset_date: "2099-12-31", successor: openai-backup}}
  - id: retired-mini
    provider: fake-openai
    model: gpt-3.5-retired
    lifecycle: {{sunset_date: "2020-01-01", successor: openai-backup}}
  - id: one-at-a-time
    provider: fake-openai
    model: gpt-4o-mini
    capacity: {{max_concurrency: 1}}
  - id: account-mini
    provider: fake-openai-account
    model: gpt-4o-mini
  - id: account-nano
    provider: fake-openai-account
    model: gpt-4.1-nano
  - id: pool-mini
    provider: fake-openai-pool
    model: gpt-4o-mini
    pricing: {{input_per_million: "2.50", output_per_million: "10.00"}}
routes:
  - name: fallback
    strategy: {{fallback: [anthropic-primary, openai-backup]}}
  - name: refused-first
    strategy: {{fallback: [refused-primary, openai-backup]}}
  - name: pooled
    strategy: {{fallback: [pool-mini, openai-backup]}}
  - name: twice
    strategy: {{fallback: [anthropic-primary, refused-primary, openai-backup]}}
  - name: patient
    strategy: {{fallback: [openai-backup]}}
    retry: {{per_deployment: 1}}
  - name: hedged
    strategy: {{fallback: [anthropic-primary, openai-backup]}}
    hedge: {{after: 200ms}}
  - name: impatient
    strategy: {{fallback: [openai-backup, anthropic-primary]}}
    timeout: {{request: 1500ms, first_token: 500ms}}
  - name: premium
    strategy: {{fallback: [anthropic-primary, openai-backup]}}
    by_tier: {{free: thrifty}}
  - name: thrifty
    strategy: {{fallback: [openai-backup]}}
  - name: single
    strategy: {{fallback: [one-at-a-time, anthropic-primary]}}
  - name: shared
    strategy: {{fallback: [account-mini, account-nano, anthropic-primary]}}
  - name: shadowed
    strategy: {{fallback: [openai-backup]}}
    shadow: {{deployment: anthropic-primary, percent: 100}}
  - name: steady
    strategy: {{fallback: [openai-backup, anthropic-primary]}}
    slo: {{first_token_p95: 150ms}}
  - name: capped
    strategy: {{fallback: [anthropic-primary, openai-backup]}}
    cost_ceiling: "0.01"
  - name: aging
    strategy: {{fallback: [old-mini]}}
  - name: retired
    strategy: {{fallback: [retired-mini]}}
  - name: auto
    strategy: {{fallback: [openai-backup]}}
    rules:
      - {{name: code, when: {{last_user_matches: "(?i)\\bfn\\b|def "}}, route: demo}}
      - {{name: classify, when: {{metadata: {{task: classify}}}}, route: demo}}
models:
  - name: gpt-test
    targets: [{{provider: fake-openai, model: gpt-4o-mini}}]
    cache_ttl: 1m
    pricing: {{input_per_million: "2.50", output_per_million: "10.00"}}
  - name: demo
    targets: [{{provider: mock, model: mock-1}}]
  - name: forbidden
    targets: [{{provider: mock, model: mock-1}}]
teams:
  - id: {team}
  - {{id: {team}-free, tier: free, models: [premium, gpt-test]}}
keys:
  - id: test-key
    team: {team}
    secret: {{env: TEST_KEY}}
    models: [gpt-test, demo, fallback, refused-first, pooled, twice, patient, hedged, impatient, capped, premium, single, shared, steady, shadowed, aging, retired, auto]
    debug: true
  - id: free-key
    team: {team}-free
    secret: {{env: FREE_KEY}}
    debug: true
"#,
            upstream_url = upstream.base_url(),
            primary_url = primary.base_url(),
        );
        let config_path = directory.path().join("switchyard.yaml");
        std::fs::write(&config_path, &config_text).expect("write config");
        let environment = BTreeMap::from([
            ("FAKE_OPENAI_KEY".to_owned(), UPSTREAM_KEY.to_owned()),
            ("POOL_KEY_ALPHA".to_owned(), POOL_KEY_ALPHA.to_owned()),
            ("TEST_KEY".to_owned(), api_key.clone()),
            ("FREE_KEY".to_owned(), free_key.clone()),
            ("ADMIN_TOKEN".to_owned(), admin_token.clone()),
            // `ID:BASE64` of 32 bytes: the master key stored credentials are sealed with.
            (
                "MASTER_KEYS".to_owned(),
                "k1:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=".to_owned(),
            ),
        ]);

        let shutdown = CancellationToken::new();
        let (base_url, server, processes, admin_urls) = match mode {
            Mode::AllInOne => {
                let config = SwitchyardConfig::parse("e2e.yaml", &config_text, &environment)
                    .expect("valid test config");
                let listeners = Listeners::bind(LOCAL_ANY_PORT, LOCAL_ANY_PORT)
                    .await
                    .expect("bind edge and admin");
                let address = listeners.service.local_addr().expect("edge address");
                let admin = listeners.admin.local_addr().expect("admin address");
                let server = switchyard_common::task::spawn_detached(
                    "the gateway under test, aborted on drop",
                    run_all_in_one(
                        config,
                        environment,
                        Some(config_path.clone()),
                        listeners,
                        shutdown.clone(),
                    ),
                );
                let admin_urls = BTreeMap::from([("serve".to_owned(), format!("http://{admin}"))]);
                (format!("http://{address}"), Some(server), None, admin_urls)
            }
            Mode::Distributed => {
                let launch = Launch {
                    binary: Path::new(env!("CARGO_BIN_EXE_switchyard")),
                    config: &config_path,
                    environment: &environment,
                    cpus: None,
                    log_directory: None,
                };
                let processes = launch.distributed().await.expect("start every service");
                let admin_urls = processes
                    .admin_addresses
                    .iter()
                    .map(|(role, address)| (role.clone(), format!("http://{address}")))
                    .collect();
                (
                    format!("http://{}", processes.edge_address),
                    None,
                    Some(processes),
                    admin_urls,
                )
            }
        };
        let cluster = Self {
            base_url,
            upstream,
            primary,
            api_key,
            free_key,
            team,
            admin_token,
            config_path,
            config_text,
            ledger,
            backends,
            admin_urls,
            http: reqwest::Client::new(),
            shutdown,
            server,
            processes,
            postgres_database,
            _directory: directory,
        };
        cluster.wait_ready().await;
        Some(cluster)
    }

    /// The processes of a distributed cluster; `None` all-in-one.
    pub fn processes(&self) -> Option<&Processes> {
        self.processes.as_ref()
    }

    /// The processes of a distributed cluster, to kill one; `None` all-in-one.
    pub fn processes_mut(&mut self) -> Option<&mut Processes> {
        self.processes.as_mut()
    }

    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let ready = self
                .http
                .get(format!("{}/readyz", self.base_url))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gateway did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `http://127.0.0.1:PORT` of the admin listener serving the admin API:
    /// the control plane's, or the one process's all-in-one.
    pub fn admin_api_url(&self) -> &str {
        self.admin_urls
            .get("control-plane")
            .or_else(|| self.admin_urls.get("serve"))
            .expect("an admin listener")
    }

    /// The Prometheus text `role`'s admin listener serves (the one process's
    /// all-in-one).
    pub async fn scrape(&self, role: &str) -> String {
        let url = self
            .admin_urls
            .get(role)
            .or_else(|| self.admin_urls.get("serve"))
            .expect("an admin listener");
        let response = self
            .http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .expect("admin listener answers");
        assert!(response.status().is_success(), "{}", response.status());
        response.text().await.expect("metrics text")
    }

    /// `POST /v1/chat/completions` with the cluster's key.
    pub async fn chat(&self, body: &serde_json::Value) -> reqwest::Response {
        self.chat_as(&self.api_key, body).await
    }

    /// `POST /v1/chat/completions` with the key whose secret is `key`.
    pub async fn chat_as(&self, key: &str, body: &serde_json::Value) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/chat/completions", self.base_url))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("edge answers")
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.abort();
        }
        if let Some(name) = self.postgres_database.take() {
            // Best effort, detached: the test is over; a leftover database is harmless.
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    runtime.block_on(drop_postgres_database(&name));
                }
            });
        }
    }
}

fn sqlite_url(directory: &Path, file: &str) -> String {
    format!("sqlite://{}", directory.join(file).display())
}

async fn create_postgres_database(name: &str) {
    let pool = sqlx::PgPool::connect(&backends::postgres_url())
        .await
        .expect("PostgreSQL answers");
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&pool)
        .await
        .expect("create test database");
}

async fn drop_postgres_database(name: &str) {
    if let Ok(pool) = sqlx::PgPool::connect(&backends::postgres_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&pool)
            .await;
    }
}

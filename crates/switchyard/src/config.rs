//! The config file: one section per service, where services reach each
//! other, and the declarative objects (providers, models, keys).

use std::path::Path;

use anyhow::Context;
use schemars::JsonSchema;
use serde::Deserialize;
use switchyard_adapters::AdapterConfig;
use switchyard_cache::CacheConfig;
use switchyard_common::{
    config::{Environment, load_yaml},
    service_auth::ServiceAuthConfig,
    telemetry::TelemetryConfig,
};
use switchyard_control_plane::{
    BudgetConfig, ControlPlaneConfig, Declarative, DeploymentConfig, KeyConfig, ModelConfig,
    ProviderConfig, RateLimitConfig, RouteConfig, TeamConfig, UserConfig,
};
use switchyard_edge::EdgeConfig;
use switchyard_ledger::LedgerConfig;
use switchyard_router::RouterConfig;

use crate::admin::AdminConfig;

/// The whole config file.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SwitchyardConfig {
    /// The HTTP edge.
    pub edge: EdgeConfig,
    /// The router.
    pub router: RouterConfig,
    /// The provider adapters.
    pub adapter: AdapterConfig,
    /// The control plane and its database.
    pub control_plane: ControlPlaneConfig,
    /// The response cache.
    pub cache: CacheConfig,
    /// The usage ledger.
    pub ledger: LedgerConfig,
    /// Where services reach each other when they run as separate processes.
    pub endpoints: Endpoints,
    /// The tokens services prove their role with, in distributed mode.
    pub service_auth: ServiceAuthConfig,
    /// The master keys stored provider credentials are encrypted under; read
    /// by the control plane (to encrypt) and the adapters (to decrypt).
    pub credentials: switchyard_common::envelope::CredentialsConfig,
    /// Logging and metrics.
    pub telemetry: TelemetryConfig,
    /// Where each process's admin listener (`/metrics`) binds.
    pub admin: AdminConfig,
    /// Provider accounts.
    pub providers: Vec<ProviderConfig>,
    /// Models at providers: priced, limited, health-checked.
    pub deployments: Vec<DeploymentConfig>,
    /// What clients name in `model`: a strategy over deployments.
    pub routes: Vec<RouteConfig>,
    /// Shorthand for routes over implicit deployments.
    pub models: Vec<ModelConfig>,
    /// Client API keys.
    pub keys: Vec<KeyConfig>,
    /// Teams.
    pub teams: Vec<TeamConfig>,
    /// Users.
    pub users: Vec<UserConfig>,
    /// Spending limits.
    pub budgets: Vec<BudgetConfig>,
    /// Request and token rates.
    pub rate_limits: Vec<RateLimitConfig>,
}

/// gRPC URLs of the services, used only in distributed mode.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Endpoints {
    /// The router, called by the edge.
    pub router: String,
    /// The adapters, called by the router.
    pub adapter: String,
    /// The control plane, watched by the edge and the router.
    pub control_plane: String,
    /// The cache, called by the router.
    pub cache: String,
    /// The ledger, called by the router.
    pub ledger: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self {
            router: "http://127.0.0.1:7001".to_owned(),
            adapter: "http://127.0.0.1:7002".to_owned(),
            control_plane: "http://127.0.0.1:7003".to_owned(),
            cache: "http://127.0.0.1:7004".to_owned(),
            ledger: "http://127.0.0.1:7005".to_owned(),
        }
    }
}

/// Where the config file's JSON Schema is kept, relative to the repository.
pub const SCHEMA_PATH: &str = "config/switchyard.schema.json";

/// The JSON Schema of the config file, generated from these types
/// (`switchyard config-schema`). Editors validate config files with it.
pub fn config_schema() -> String {
    let schema = schemars::schema_for!(SwitchyardConfig);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

impl SwitchyardConfig {
    /// Reads and validates a config file, applying `SWITCHYARD__` overrides
    /// from `environment`.
    pub fn load(path: &Path, environment: &Environment) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&path.display().to_string(), &text, environment)
    }

    /// Parses and validates config text.
    pub fn parse(source_name: &str, text: &str, environment: &Environment) -> anyhow::Result<Self> {
        let config: Self = load_yaml(source_name, text, environment)?;
        config
            .declarative()
            .validate(environment)
            .with_context(|| format!("{source_name}: invalid declarative config"))?;
        Ok(config)
    }

    /// The master keys of stored credentials, when configured.
    pub fn keyring(
        &self,
        environment: &switchyard_common::config::Environment,
    ) -> anyhow::Result<Option<switchyard_common::envelope::Keyring>> {
        switchyard_common::envelope::Keyring::from_config(&self.credentials, environment)
            .context("credentials.master_keys")
    }

    /// The declarative objects, as the control plane takes them.
    pub fn declarative(&self) -> Declarative {
        Declarative {
            providers: self.providers.clone(),
            deployments: self.deployments.clone(),
            routes: self.routes.clone(),
            models: self.models.clone(),
            keys: self.keys.clone(),
            teams: self.teams.clone(),
            users: self.users.clone(),
            budgets: self.budgets.clone(),
            rate_limits: self.rate_limits.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../config/switchyard.yaml");
    const HELM_VALUES: &str = include_str!("../../../deploy/k8s/switchyard/values.yaml");

    #[test]
    fn the_example_config_parses_and_serves_demo() {
        let config = SwitchyardConfig::parse("switchyard.yaml", EXAMPLE, &Environment::new())
            .expect("the example config is valid");
        assert!(config.routes.iter().any(|route| route.name == "demo"));
        assert_eq!(config.edge.max_body_bytes, 10 * 1024 * 1024);
        assert!(config.ledger.clickhouse.is_none(), "embedded defaults");
    }

    #[test]
    fn the_helm_chart_config_parses() {
        let values: serde_yaml::Value = serde_yaml::from_str(HELM_VALUES).expect("values YAML");
        let config = serde_yaml::to_string(&values["config"]).expect("config section");
        let environment =
            Environment::from([("SWITCHYARD_CLIENT_KEY".to_owned(), "sk-client".to_owned())]);
        let config = SwitchyardConfig::parse("values.yaml#config", &config, &environment)
            .expect("the chart's config is valid");
        assert!(config.ledger.clickhouse.is_some());
        assert!(config.cache.redis_url.is_some());
    }

    const SCHEMA: &str = include_str!("../../../config/switchyard.schema.json");

    fn schema_validator() -> jsonschema::Validator {
        let schema: serde_json::Value = serde_json::from_str(SCHEMA).expect("schema JSON");
        jsonschema::validator_for(&schema).expect("a valid JSON Schema")
    }

    fn schema_errors(yaml: &str) -> Vec<String> {
        let instance: serde_json::Value = serde_yaml::from_str(yaml).expect("YAML");
        schema_validator()
            .iter_errors(&instance)
            .map(|error| format!("{}: {error}", error.instance_path()))
            .collect()
    }

    #[test]
    fn the_committed_schema_is_generated_from_the_config_types() {
        assert!(
            SCHEMA == config_schema(),
            "{SCHEMA_PATH} is stale; regenerate it with `cargo run -p switchyard -- config-schema > {SCHEMA_PATH}`"
        );
    }

    #[test]
    fn the_example_configs_satisfy_the_schema() {
        assert_eq!(schema_errors(EXAMPLE), Vec::<String>::new());
        let values: serde_yaml::Value = serde_yaml::from_str(HELM_VALUES).expect("values YAML");
        let chart = serde_yaml::to_string(&values["config"]).expect("config section");
        assert_eq!(schema_errors(&chart), Vec::<String>::new());
    }

    #[test]
    fn the_schema_rejects_what_the_loader_rejects() {
        for bad in [
            "routre: {}",
            "edge: {max_body_bytes: lots}",
            "routes: [{name: r, strategy: {fallback: [a]}, retries: 3}]",
            "providers: [{kind: openai}]",
            "keys: [{id: k, secret: {env: K}, models: [demo], team: 7}]",
        ] {
            assert!(!schema_errors(bad).is_empty(), "the schema accepts {bad}");
            assert!(
                SwitchyardConfig::parse("bad.yaml", bad, &Environment::new()).is_err(),
                "the loader accepts {bad}"
            );
        }
    }

    const HELM_HELPERS: &str =
        include_str!("../../../deploy/k8s/switchyard/templates/_helpers.tpl");

    #[test]
    fn the_chart_gives_each_pod_the_service_tokens_its_role_needs() {
        use std::collections::BTreeSet;
        use switchyard_common::auth::ServiceRole;
        let table = HELM_HELPERS
            .lines()
            .find(|line| line.contains("$needs := dict"))
            .expect("the chart's role → tokens table");
        for role in ServiceRole::ALL {
            let entry = format!("\"{role}\" (list ");
            let start = table.find(&entry).map(|at| at + entry.len());
            let start = start.unwrap_or_else(|| panic!("no entry for {role}"));
            let end = start + table[start..].find(')').expect("closing parenthesis");
            let in_chart: BTreeSet<&str> = table[start..end]
                .split_whitespace()
                .map(|name| name.trim_matches('"'))
                .collect();
            let own = ServiceRole::CALLERS.contains(&role).then_some(role);
            let needed: BTreeSet<&str> = own
                .into_iter()
                .chain(role.callers().iter().copied())
                .map(ServiceRole::as_str)
                .collect();
            assert_eq!(in_chart, needed, "tokens of the {role} pod");
        }
    }

    #[test]
    fn overrides_and_bad_fields_name_their_path() {
        let environment = Environment::from([(
            "SWITCHYARD__EDGE__MAX_BODY_BYTES".to_owned(),
            "1024".to_owned(),
        )]);
        let config = SwitchyardConfig::parse("x.yaml", EXAMPLE, &environment).expect("valid");
        assert_eq!(config.edge.max_body_bytes, 1024);
        let error =
            SwitchyardConfig::parse("x.yaml", "edge: {listen: nowhere}", &Environment::new())
                .expect_err("bad address");
        assert!(error.to_string().contains("edge.listen"), "{error}");
        let error = SwitchyardConfig::parse("x.yaml", "routre: {}", &Environment::new())
            .expect_err("unknown section");
        assert!(error.to_string().contains("routre"), "{error}");
    }

    #[test]
    fn every_seed_of_the_fuzz_corpus_loads() {
        let folder =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/config");
        let mut seeds = 0;
        for entry in std::fs::read_dir(&folder).expect("the seed corpus is in the repository") {
            let path = entry.expect("an entry").path();
            let bytes = std::fs::read(&path).expect("readable");
            // The seeds are real configs: each loads.
            if let Err(error) = SwitchyardConfig::parse(
                "fuzz.yaml",
                &String::from_utf8_lossy(&bytes),
                &Environment::new(),
            ) {
                panic!("{}: {error:#}", path.display());
            }
            seeds += 1;
        }
        assert!(seeds > 0, "{} has no seeds", folder.display());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// The fuzz target's property, bounded: the example config with
        /// bytes changed, or any text, loads or is refused with an error;
        /// it never panics.
        #[test]
        fn any_config_text_loads_or_is_refused(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 1..4),
        ) {
            let mut example = EXAMPLE.as_bytes().to_vec();
            for (at, value) in flips {
                let index = at % example.len();
                example[index] = value;
            }
            for text in [noise, example] {
                let text = String::from_utf8_lossy(&text);
                let _ = SwitchyardConfig::parse("fuzz.yaml", &text, &Environment::new());
            }
        }
    }
}

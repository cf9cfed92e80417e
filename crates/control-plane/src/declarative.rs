//! The declarative objects of the config file: providers, deployments,
//! routes, keys, teams, users, budgets and rate limits.
//!
//! ```yaml
//! providers:
//!   - name: openai
//!     kind: openai
//!     base_url: https://api.openai.com/v1
//!     api_key: {env: OPENAI_API_KEY}
//! deployments:
//!   - id: openai-gpt-4o-mini
//!     provider: openai
//!     model: gpt-4o-mini
//!     pricing: {input_per_million: "0.15", output_per_million: "0.60"}
//! routes:
//!   - name: demo
//!     strategy: {fallback: [openai-gpt-4o-mini]}
//!     cache: {ttl: 5m}
//! keys:
//!   - id: demo
//!     team: default
//!     secret: {env: SWITCHYARD_DEMO_KEY}
//! ```
//!
//! The older `models: [{name, targets: [{provider, model}]}]` form is still
//! read, as shorthand for a route over one implicit deployment per target.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use switchyard_common::{SecretSource, config::Environment};

use crate::{Result, objects::StoredConfig};

/// The declarative objects the control plane stores and publishes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Declarative {
    /// Provider accounts requests can be sent to.
    pub providers: Vec<ProviderConfig>,
    /// Models at providers, the unit that is priced, limited and health-checked.
    pub deployments: Vec<DeploymentConfig>,
    /// What clients name in `model`: a strategy over deployments.
    pub routes: Vec<RouteConfig>,
    /// Shorthand: a route over implicit deployments, one per target.
    pub models: Vec<ModelConfig>,
    /// Client API keys.
    pub keys: Vec<KeyConfig>,
    /// Teams, which keys, users, budgets and limits refer to.
    pub teams: Vec<TeamConfig>,
    /// Users, who own keys.
    pub users: Vec<UserConfig>,
    /// Spending limits per team, user or key.
    pub budgets: Vec<BudgetConfig>,
    /// Request and token rates per team, user or key.
    pub rate_limits: Vec<RateLimitConfig>,
}

/// A provider account (`providers[]`).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Unique name that deployments refer to (e.g. `openai-prod`).
    pub name: String,
    /// Wire format the adapters speak to it: `openai`, `anthropic`, `mock`, …
    pub kind: String,
    /// Base URL of the provider's API; the adapter's default when absent.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Where the adapters find the API key (`{env: NAME}` or `{file: PATH}`).
    /// Resolved by the adapters in their own process, never here.
    #[serde(default)]
    pub api_key: Option<SecretSource>,
    /// Per-attempt timeout (e.g. `60s`); the adapter's default when absent.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Duration>,
    /// Provider-specific settings (`api_version`, `region`, `project`, …);
    /// each adapter documents the ones it reads.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Further named secret references the provider needs besides `api_key`
    /// (e.g. `aws_secret_access_key: {env: AWS_SECRET_ACCESS_KEY}`). Resolved
    /// by the adapters, never here.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSource>,
    /// Whether attempts hand the request's W3C trace context
    /// (`traceparent`, `tracestate`) to the provider. By default only
    /// self-hosted kinds (`vllm`, `ollama`, `llamacpp`) get it: internal
    /// trace ids are not given to third parties unless this says so.
    #[serde(default)]
    pub propagate_trace: Option<bool>,
}

/// One model at one provider (`deployments[]`).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// Stable id that routes refer to and usage events record.
    pub id: String,
    /// Name of a configured provider.
    pub provider: String,
    /// Model name sent to that provider.
    pub model: String,
    /// Context window in tokens.
    #[serde(default)]
    pub context_window: Option<u32>,
    /// Longest output in tokens.
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    /// Prices used to cost usage; unpriced when absent.
    #[serde(default)]
    pub pricing: Option<PricingConfig>,
    /// What the deployment may be sent; unlimited when absent.
    #[serde(default)]
    pub capacity: Option<CapacityConfig>,
    /// What the model can do.
    #[serde(default)]
    pub capabilities: CapabilitiesConfig,
    /// Region or data-residency tag (e.g. `eu`).
    #[serde(default)]
    pub region: Option<String>,
    /// Whether the model runs on infrastructure the operator controls.
    #[serde(default)]
    pub self_hosted: bool,
    /// Deprecation and sunset.
    #[serde(default)]
    pub lifecycle: Option<LifecycleConfig>,
}

/// Prices of a deployment, per million tokens, as decimal strings with at
/// most nine fractional digits. Quote them: YAML numbers are floats.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PricingConfig {
    /// ISO 4217 currency code; `USD` when absent.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Price of one million prompt tokens (`"2.50"`).
    pub input_per_million: String,
    /// Price of one million completion tokens.
    pub output_per_million: String,
    /// Price of one million prompt tokens read from the provider's cache;
    /// the input price when absent.
    #[serde(default)]
    pub cached_input_per_million: Option<String>,
    /// Price of one million prompt tokens written to the provider's cache;
    /// the input price when absent.
    #[serde(default)]
    pub cache_write_per_million: Option<String>,
    /// Higher prices for a whole request once its prompt is long.
    #[serde(default)]
    pub long_context: Option<LongContextConfig>,
}

/// The long-context tier of a price (`pricing.long_context`).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LongContextConfig {
    /// The tier applies when prompt tokens exceed this.
    pub above_prompt_tokens: u32,
    /// Price of one million prompt tokens in the tier.
    pub input_per_million: String,
    /// Price of one million completion tokens in the tier.
    pub output_per_million: String,
}

fn default_currency() -> String {
    "USD".to_owned()
}

/// Capacity of a deployment (`deployments[].capacity`); 0 means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CapacityConfig {
    /// Requests per minute.
    pub requests_per_minute: u32,
    /// Tokens per minute.
    pub tokens_per_minute: u32,
    /// Requests in flight at once.
    pub max_concurrency: u32,
}

/// What a deployment's model can do (`deployments[].capabilities`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CapabilitiesConfig {
    /// Tool (function) calls.
    pub tools: bool,
    /// Image inputs.
    pub vision: bool,
    /// Structured output with a JSON Schema.
    pub json_schema: bool,
}

/// Where a deployment is in its life (`deployments[].lifecycle`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleConfig {
    /// Whether the provider has deprecated the model.
    pub deprecated: bool,
    /// Date after which the provider stops serving it (`YYYY-MM-DD`).
    pub sunset_date: Option<String>,
    /// Deployment id to shift traffic to.
    pub successor: Option<String>,
}

/// What clients name in `model` (`routes[]`).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The name clients put in `model`.
    pub name: String,
    /// How deployments are chosen.
    pub strategy: StrategyConfig,
    /// Retry policy.
    #[serde(default)]
    pub retry: Option<RetryConfig>,
    /// Time limits.
    #[serde(default)]
    pub timeout: Option<TimeoutConfig>,
    /// Hedging policy.
    #[serde(default)]
    pub hedge: Option<HedgeConfig>,
    /// Response caching; off when absent.
    #[serde(default)]
    pub cache: Option<RouteCacheConfig>,
    /// Owner shown in `GET /v1/models`; `switchyard` when absent.
    #[serde(default)]
    pub owned_by: Option<String>,
}

/// A route's strategy (`routes[].strategy`), a map with exactly one key
/// naming the strategy.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StrategyConfig {
    /// Deployment ids in order of preference: `{fallback: [a, b]}`. The next
    /// is tried after a retryable failure before any output.
    pub fallback: Option<Vec<String>>,
}

impl StrategyConfig {
    /// A fallback strategy over `deployments`.
    pub fn fallback(deployments: Vec<String>) -> Self {
        Self {
            fallback: Some(deployments),
        }
    }
}

/// `routes[].retry`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in all, across deployments; one per deployment when 0.
    pub max_attempts: u32,
}

/// `routes[].timeout`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutConfig {
    /// Longest a whole request may take (e.g. `120s`).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub request: Option<Duration>,
    /// Longest wait for the first token.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub first_token: Option<Duration>,
}

/// `routes[].hedge`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HedgeConfig {
    /// Start a second attempt when the first has not answered after this.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub after: Option<Duration>,
}

/// `routes[].cache`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteCacheConfig {
    /// How long responses may be served from the cache (e.g. `5m`).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub ttl: Duration,
}

/// Shorthand for a route (`models[]`): one implicit deployment per target,
/// all at the model's price, tried in order.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The name clients put in `model`.
    pub name: String,
    /// Provider models serving it, in order of preference.
    pub targets: Vec<TargetConfig>,
    /// How long responses may be served from the cache (e.g. `5m`); no
    /// caching when absent.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub cache_ttl: Option<Duration>,
    /// Prices of every implicit deployment; unpriced when absent.
    #[serde(default)]
    pub pricing: Option<PricingConfig>,
    /// Owner shown in `GET /v1/models`; `switchyard` when absent.
    #[serde(default)]
    pub owned_by: Option<String>,
}

/// One target of the `models[]` shorthand (`models[].targets[]`).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Name of a configured provider.
    pub provider: String,
    /// Model name sent to that provider.
    pub model: String,
}

/// A client API key (`keys[]`). Exactly one of `sha256` and `secret` is set.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Unique id, recorded with every request made with the key.
    pub id: String,
    /// Human-readable name.
    #[serde(default)]
    pub name: Option<String>,
    /// Team the key belongs to (the cache namespace and a budget scope).
    #[serde(default)]
    pub team: Option<String>,
    /// User the key belongs to; must be a declared user.
    #[serde(default)]
    pub user: Option<String>,
    /// Routes the key may use; all when empty.
    #[serde(default)]
    pub models: Vec<String>,
    /// Whether requests with the key are refused.
    #[serde(default)]
    pub disabled: bool,
    /// Hex SHA-256 of the key's secret.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Where the key's secret is read at load time; only its hash is kept.
    #[serde(default)]
    pub secret: Option<SecretSource>,
}

/// A team (`teams[]`).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    /// Unique id, which keys' `team` refers to.
    pub id: String,
    /// Human-readable name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A user (`users[]`).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Unique id, which keys' `user` refers to.
    pub id: String,
    /// The user's team; must be a declared team.
    #[serde(default)]
    pub team: Option<String>,
    /// Human-readable name.
    #[serde(default)]
    pub name: Option<String>,
}

/// Whom a budget or rate limit applies to, a map with exactly one key:
/// `{team: ID}`, `{user: ID}` or `{key: ID}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ScopeConfig {
    /// A team (declared, or named by a key).
    pub team: Option<String>,
    /// A declared user.
    pub user: Option<String>,
    /// A declared key.
    pub key: Option<String>,
}

/// How often a budget resets (`budgets[].period`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriodConfig {
    /// Every UTC day.
    Daily,
    /// Every UTC calendar month.
    Monthly,
    /// Never.
    Total,
}

/// A spending limit (`budgets[]`).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Unique id.
    pub id: String,
    /// Whom it applies to.
    pub scope: ScopeConfig,
    /// Most that may be spent per period, as a decimal string (`"100.00"`).
    pub limit: String,
    /// ISO 4217 currency code; `USD` when absent.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// When the spend starts again from zero.
    pub period: BudgetPeriodConfig,
}

/// A rate limit (`rate_limits[]`); 0 means unlimited.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Unique id.
    pub id: String,
    /// Whom it applies to.
    pub scope: ScopeConfig,
    /// Requests per minute.
    #[serde(default)]
    pub requests_per_minute: u32,
    /// Tokens per minute.
    #[serde(default)]
    pub tokens_per_minute: u32,
    /// Requests in flight at once.
    #[serde(default)]
    pub max_concurrency: u32,
}

impl Declarative {
    /// Checks every object and reference, resolving key secrets from
    /// `environment`. The error names the bad object and field.
    pub fn validate(&self, environment: &Environment) -> Result<()> {
        StoredConfig::from_declarative(self, environment).map(drop)
    }
}

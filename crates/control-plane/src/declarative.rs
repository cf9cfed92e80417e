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
use serde::{Deserialize, Serialize};
use switchyard_common::{SecretSource, config::Environment};

use crate::{Result, objects::StoredConfig};

/// The declarative objects the control plane stores and publishes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Declarative {
    /// Provider accounts requests can be sent to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderConfig>,
    /// Models at providers, the unit that is priced, limited and health-checked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deployments: Vec<DeploymentConfig>,
    /// What clients name in `model`: a strategy over deployments.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
    /// Shorthand: a route over implicit deployments, one per target.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelConfig>,
    /// Client API keys.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyConfig>,
    /// Teams, which keys, users, budgets and limits refer to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<TeamConfig>,
    /// Users, who own keys.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserConfig>,
    /// Spending limits per team, user or key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<BudgetConfig>,
    /// Request and token rates per team, user or key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RateLimitConfig>,
}

/// A provider account (`providers[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Unique name that deployments refer to (e.g. `openai-prod`).
    pub name: String,
    /// Wire format the adapters speak to it: `openai`, `anthropic`, `mock`, …
    pub kind: String,
    /// Base URL of the provider's API; the adapter's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Where the adapters find the API key (`{env: NAME}` or `{file: PATH}`).
    /// Resolved by the adapters in their own process, never here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretSource>,
    /// Several API keys of the same account by id, instead of `api_key`
    /// (`api_keys: {primary: {env: KEY_A}, batch: {credential: c1}}`). The
    /// adapters pick one per attempt, report its id with the attempt, and
    /// rest one the provider refuses (429, 401) while the others serve.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub api_keys: BTreeMap<String, SecretSource>,
    /// Per-attempt timeout (e.g. `60s`); the adapter's default when absent.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Duration>,
    /// Provider-specific settings (`api_version`, `region`, `project`, …);
    /// each adapter documents the ones it reads.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// Further named secret references the provider needs besides `api_key`
    /// (e.g. `aws_secret_access_key: {env: AWS_SECRET_ACCESS_KEY}`). Resolved
    /// by the adapters, never here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretSource>,
    /// Whether attempts hand the request's W3C trace context
    /// (`traceparent`, `tracestate`) to the provider. By default only
    /// self-hosted kinds (`vllm`, `ollama`, `llamacpp`) get it: internal
    /// trace ids are not given to third parties unless this says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagate_trace: Option<bool>,
    /// An HTTP proxy every request to this provider goes through
    /// (`http://proxy.internal:3128`); https requests tunnel with `CONNECT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// A PEM file of CA certificates the provider's TLS certificate may chain
    /// to, besides the system's roots: for private deployments and
    /// intercepting proxies. Read by the adapters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// The account's limits across all its deployments: requests and
    /// tokens per minute, requests in flight (its queue applies to a
    /// deployment that declares none of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacityConfig>,
}

/// One model at one provider (`deployments[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// Stable id that routes refer to and usage events record.
    pub id: String,
    /// Name of a configured provider.
    pub provider: String,
    /// Model name sent to that provider.
    pub model: String,
    /// Context window in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u32>,
    /// Longest output in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// Prices used to cost usage; unpriced when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<PricingConfig>,
    /// What the deployment may be sent; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacityConfig>,
    /// What the model can do.
    #[serde(default, skip_serializing_if = "CapabilitiesConfig::is_unset")]
    pub capabilities: CapabilitiesConfig,
    /// Region or data-residency tag (e.g. `eu`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Whether the model runs on infrastructure the operator controls.
    #[serde(default, skip_serializing_if = "is_false")]
    pub self_hosted: bool,
    /// Deprecation and sunset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<LifecycleConfig>,
    /// Timeouts of attempts at this deployment, over the route's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<TimeoutConfig>,
    /// Active health probes; off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeConfig>,
}

/// `deployments[].probe`: a cheap request (one short message, one output
/// token) sent this often even without traffic; its outcome and latency
/// feed health, and it is counted as usage (route `probe`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// How often (e.g. `30s`).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub every: Duration,
}

/// Prices of a deployment, per million tokens, as decimal strings with at
/// most nine fractional digits. Quote them: YAML numbers are floats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PricingConfig {
    /// ISO 4217 currency code; `USD` when absent.
    #[serde(default = "default_currency", skip_serializing_if = "is_usd")]
    pub currency: String,
    /// Price of one million prompt tokens (`"2.50"`).
    pub input_per_million: String,
    /// Price of one million completion tokens.
    pub output_per_million: String,
    /// Price of one million prompt tokens read from the provider's cache;
    /// the input price when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_million: Option<String>,
    /// Price of one million prompt tokens written to the provider's cache;
    /// the input price when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_per_million: Option<String>,
    /// Higher prices for a whole request once its prompt is long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_context: Option<LongContextConfig>,
}

/// The long-context tier of a price (`pricing.long_context`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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

fn is_usd(currency: &str) -> bool {
    currency == "USD"
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// Capacity of a deployment (`deployments[].capacity`); 0 means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CapacityConfig {
    /// Requests per minute.
    #[serde(skip_serializing_if = "is_zero")]
    pub requests_per_minute: u32,
    /// Tokens per minute.
    #[serde(skip_serializing_if = "is_zero")]
    pub tokens_per_minute: u32,
    /// Requests in flight at once.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_concurrency: u32,
    /// How long a request may wait for room (e.g. `500ms`) before going to
    /// the next deployment; without it, it goes at once.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub queue_timeout: Option<Duration>,
    /// Most requests waiting for room at once (1 when unset).
    #[serde(skip_serializing_if = "is_zero")]
    pub max_queued: u32,
}

/// What a deployment's model can do (`deployments[].capabilities`). A
/// deployment that declares none is assumed able to do everything its
/// provider kind can express (log probabilities and several choices are
/// not expressible on every kind); one that declares any is held to them:
/// a request using a feature it does not declare is never sent there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CapabilitiesConfig {
    /// Tool (function) calls.
    #[serde(skip_serializing_if = "is_false")]
    pub tools: bool,
    /// Image inputs.
    #[serde(skip_serializing_if = "is_false")]
    pub vision: bool,
    /// Structured output with a JSON Schema.
    #[serde(skip_serializing_if = "is_false")]
    pub json_schema: bool,
    /// Token log probabilities (`logprobs`, `top_logprobs`).
    #[serde(skip_serializing_if = "is_false")]
    pub logprobs: bool,
    /// Several choices per request (`n` greater than 1).
    #[serde(skip_serializing_if = "is_false")]
    pub multiple_choices: bool,
}

impl CapabilitiesConfig {
    /// Whether nothing is declared (the default).
    pub(crate) fn is_unset(&self) -> bool {
        *self == Self::default()
    }
}

/// Where a deployment is in its life (`deployments[].lifecycle`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleConfig {
    /// Whether the provider has deprecated the model.
    #[serde(skip_serializing_if = "is_false")]
    pub deprecated: bool,
    /// Date after which the provider stops serving it (`YYYY-MM-DD`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sunset_date: Option<String>,
    /// Deployment id to shift traffic to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub successor: Option<String>,
}

/// What clients name in `model` (`routes[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The name clients put in `model`.
    pub name: String,
    /// How deployments are chosen.
    pub strategy: StrategyConfig,
    /// Retry policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryConfig>,
    /// Time limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<TimeoutConfig>,
    /// Hedging policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hedge: Option<HedgeConfig>,
    /// Response caching; off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<RouteCacheConfig>,
    /// Owner shown in `GET /v1/models`; `switchyard` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_by: Option<String>,
    /// Rules tried in order before the strategy: the first whose
    /// conditions all hold sends the request to its route instead
    /// (reasoning to one model, code to another, classification to a cheap
    /// one). The strategy serves what no rule matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleConfig>,
    /// Most a request may be expected to cost at one deployment, as a
    /// decimal string in the deployments' pricing currency (`"0.05"`): its
    /// estimated prompt plus `max_tokens` (256 when unset) at that
    /// deployment's prices. A deployment over it is skipped without being
    /// called; unpriced ones are never over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_ceiling: Option<String>,
    /// Routes that serve keys of a tier instead, applied after the rules:
    /// `{free: cheap-chat, batch: cheapest-chat}`. A target has no rules
    /// and no `by_tier` of its own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_tier: BTreeMap<String, String>,
    /// Latency bounds: a deployment whose recent p95 is over one is tried
    /// after the others until it recovers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloConfig>,
    /// Shadow traffic: a share of requests also sent to another deployment,
    /// whose answer is recorded and never returned (to evaluate a model on
    /// live traffic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowConfig>,
}

/// `routes[].shadow`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShadowConfig {
    /// The deployment that gets the copies.
    pub deployment: String,
    /// The share of requests copied, 1 to 100.
    pub percent: u32,
}

/// `routes[].rules[]`: request features that send a request to a route.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Named in the decision record.
    pub name: String,
    /// What the request must show; every condition given must hold.
    pub when: RuleConditionConfig,
    /// The route that serves matching requests (one without rules).
    pub route: String,
}

/// `rules[].when`: conditions on the request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RuleConditionConfig {
    /// Whether the request offers tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<bool>,
    /// `text`, `json_object` or `json_schema`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<String>,
    /// Fewest estimated prompt tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_prompt_tokens: Option<u32>,
    /// Most estimated prompt tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_prompt_tokens: Option<u32>,
    /// Request metadata entries (OpenAI `metadata`) that must be present.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// A regular expression the system prompt must match
    /// (`(?i)step by step`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_matches: Option<String>,
    /// A regular expression the last user message must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_user_matches: Option<String>,
    /// The key's tier (its own, else its team's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
}

/// A route's strategy (`routes[].strategy`), a map with exactly one key
/// naming the strategy. Every one but `tiers` is one tier: the deployments
/// it orders. `tiers` lists several: the first tier's deployments are
/// tried first, in its strategy's order, then the next tier's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StrategyConfig {
    /// Deployment ids in order of preference: `{fallback: [a, b]}`. The next
    /// is tried after a retryable failure before any output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Vec<String>>,
    /// A split by weight, for canaries and A/B tests:
    /// `{weighted: {deployments: {a: 90, b: 10}, sticky: user}}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weighted: Option<WeightedConfig>,
    /// Lowest expected time to first token first: `{latency: [a, b]}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Vec<String>>,
    /// Lowest expected cost of the request first: `{cost: [a, b]}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Vec<String>>,
    /// Lowest weighted sum of normalized cost and latency first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<ScoreConfig>,
    /// Several tiers, each one of the strategies above:
    /// `{tiers: [{latency: [a, b]}, {fallback: [c]}]}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tiers: Option<Vec<StrategyConfig>>,
}

impl StrategyConfig {
    /// A fallback strategy over `deployments`.
    pub fn fallback(deployments: Vec<String>) -> Self {
        Self {
            fallback: Some(deployments),
            ..Self::default()
        }
    }
}

/// `strategy.weighted`: deployments by weight.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightedConfig {
    /// Each deployment's share (any positive integers: `{a: 90, b: 10}`).
    pub deployments: BTreeMap<String, u32>,
    /// Keeps a caller on one deployment: `user` (the request's `user`, else
    /// the key's user), `key`, or `header` (the `x-switchyard-affinity`
    /// request header). Absent: each request is drawn afresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<StickyConfig>,
}

/// What a weighted strategy keeps a caller on one deployment by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StickyConfig {
    /// The end user, else the key's configured user.
    User,
    /// The API key.
    Key,
    /// The `x-switchyard-affinity` header.
    Header,
}

/// `strategy.score`: cost and latency, weighed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    /// The deployments scored.
    pub deployments: Vec<String>,
    /// Weight of the expected cost, normalized across the tier (default 0.5).
    #[serde(default = "half")]
    pub cost_weight: f64,
    /// Weight of the expected time to first token, likewise (default 0.5).
    #[serde(default = "half")]
    pub latency_weight: f64,
}

fn half() -> f64 {
    0.5
}

/// `routes[].retry`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in all, across deployments and retries; unlimited but by
    /// the others when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_attempts: u32,
    /// Further tries at the same deployment after a retryable failure
    /// (429, 5xx, 529, timeout), with full-jitter exponential backoff or the
    /// provider's `Retry-After`, within the request's deadline. Absent: one
    /// more after an overload (529), none after the rest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_deployment: Option<u32>,
    /// Wait before falling back to the next deployment ("retry with Claude
    /// after 500 ms"); none when absent.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>")]
    pub fallback_delay: Option<Duration>,
    /// When a deployment answers that the prompt does not fit its context
    /// window, try the next deployment with a larger `context_window`
    /// (skipping those no larger) instead of returning the error.
    #[serde(skip_serializing_if = "is_false")]
    pub larger_window: bool,
}

/// `routes[].timeout` and `deployments[].timeout`: each bound on its own; an
/// unset one falls to the level below (deployment, then route, then the
/// provider's `timeout`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutConfig {
    /// On a route, longest a whole request may take, fallbacks and retries
    /// included (e.g. `120s`); on a deployment, each attempt there.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub request: Option<Duration>,
    /// Longest wait for a streamed answer's first token; past it the
    /// attempt fails as `timeout` and the next deployment is tried.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub first_token: Option<Duration>,
    /// Longest wait to connect to the provider.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub connect: Option<Duration>,
    /// Longest silence between two streamed chunks.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub idle: Option<Duration>,
}

/// `routes[].hedge`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HedgeConfig {
    /// Start a second attempt when the first has not answered after this.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub after: Option<Duration>,
    /// Wait the first deployment's observed p95 time to first token
    /// instead, once it has answered enough (`after` until then).
    #[serde(default, skip_serializing_if = "is_false")]
    pub after_p95: bool,
}

/// `routes[].slo`: latency bounds on the recent p95 of each deployment;
/// one over a bound is demoted behind the others until it recovers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SloConfig {
    /// Time to first token (e.g. `500ms`).
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub first_token_p95: Option<Duration>,
    /// Whole answers.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub total_p95: Option<Duration>,
}

/// `routes[].cache`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteCacheConfig {
    /// How long responses may be served from the cache (e.g. `5m`).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub ttl: Duration,
}

/// Shorthand for a route (`models[]`): one implicit deployment per target,
/// all at the model's price, tried in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The name clients put in `model`.
    pub name: String,
    /// Provider models serving it, in order of preference.
    pub targets: Vec<TargetConfig>,
    /// How long responses may be served from the cache (e.g. `5m`); no
    /// caching when absent.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>")]
    pub cache_ttl: Option<Duration>,
    /// Prices of every implicit deployment; unpriced when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<PricingConfig>,
    /// Owner shown in `GET /v1/models`; `switchyard` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_by: Option<String>,
}

/// One target of the `models[]` shorthand (`models[].targets[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Name of a configured provider.
    pub provider: String,
    /// Model name sent to that provider.
    pub model: String,
}

/// A client API key (`keys[]`). Exactly one of `sha256` and `secret` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Unique id, recorded with every request made with the key.
    pub id: String,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Team the key belongs to (the cache namespace and a budget scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// User the key belongs to; must be a declared user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Routes the key may use; all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Whether requests with the key are refused.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    /// Hex SHA-256 of the key's secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Where the key's secret is read at load time; only its hash is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretSource>,
    /// The secret's prefix and last four characters, shown in listings
    /// (`sk-sy-…a1B2`); derived from `secret` when that is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// When the key stops working, as an RFC 3339 time
    /// (`2027-01-31T00:00:00Z`); never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Whether answers to the key carry how they were routed, in the
    /// `x-switchyard-decision` header (for operators' own keys).
    #[serde(default, skip_serializing_if = "is_false")]
    pub debug: bool,
    /// The key's tier (`premium`, `free`, `batch`, ...), which routes'
    /// `by_tier` and rules' `tier` read; its team's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
}

/// A team (`teams[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    /// Unique id, which keys' `team` refers to.
    pub id: String,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The tier of the team's keys that set none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Routes the team's keys may use (a key's own `models` narrows it
    /// further); all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
}

/// A user (`users[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Unique id, which keys' `user` refers to.
    pub id: String,
    /// The user's team; must be a declared team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Whom a budget or rate limit applies to, a map with exactly one key:
/// `{team: ID}`, `{user: ID}` or `{key: ID}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ScopeConfig {
    /// A team (declared, or named by a key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// A declared user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// A declared key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// How often a budget resets (`budgets[].period`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Unique id.
    pub id: String,
    /// Whom it applies to.
    pub scope: ScopeConfig,
    /// Most that may be spent per period, as a decimal string (`"100.00"`).
    pub limit: String,
    /// ISO 4217 currency code; `USD` when absent.
    #[serde(default = "default_currency", skip_serializing_if = "is_usd")]
    pub currency: String,
    /// When the spend starts again from zero.
    pub period: BudgetPeriodConfig,
}

/// A rate limit (`rate_limits[]`); 0 means unlimited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Unique id.
    pub id: String,
    /// Whom it applies to.
    pub scope: ScopeConfig,
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub requests_per_minute: u32,
    /// Tokens per minute.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tokens_per_minute: u32,
    /// Requests in flight at once.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_concurrency: u32,
}

impl Declarative {
    /// Checks every object and reference, resolving key secrets from
    /// `environment`. The error names the bad object and field.
    pub fn validate(&self, environment: &Environment) -> Result<()> {
        StoredConfig::from_declarative(self, environment).map(drop)
    }
}

//! The declarative objects of the config file: the top-level `providers`,
//! `models` and `keys` sections.
//!
//! ```yaml
//! providers:
//!   - name: openai
//!     kind: openai
//!     base_url: https://api.openai.com/v1
//!     api_key: {env: OPENAI_API_KEY}
//!     timeout: 60s
//! models:
//!   - name: demo
//!     targets: [{provider: openai, model: gpt-4o-mini}]
//!     cache_ttl: 5m
//!     pricing: {input_per_million: "0.15", output_per_million: "0.60"}
//! keys:
//!   - id: demo
//!     team: default
//!     secret: {env: SWITCHYARD_DEMO_KEY}
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use switchyard_common::{SecretSource, config::Environment};

use crate::{Result, records::StoredConfig};

/// The declarative objects the control plane stores and publishes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Declarative {
    /// Provider accounts requests can be sent to.
    pub providers: Vec<ProviderConfig>,
    /// Model aliases clients ask for.
    pub models: Vec<ModelConfig>,
    /// Client API keys.
    pub keys: Vec<KeyConfig>,
}

/// A provider account (`providers[]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Unique name that model targets refer to (e.g. `openai-prod`).
    pub name: String,
    /// Wire format the adapters speak to it: `openai`, `mock`, …
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
}

/// A model alias and where it is served (`models[]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The name clients put in `model`.
    pub name: String,
    /// Provider deployments serving the alias, in order of preference.
    pub targets: Vec<TargetConfig>,
    /// How long responses may be served from the cache (e.g. `5m`); no
    /// caching when absent.
    #[serde(default, with = "humantime_serde")]
    pub cache_ttl: Option<Duration>,
    /// Prices used to cost usage; unpriced when absent.
    #[serde(default)]
    pub pricing: Option<PricingConfig>,
    /// Owner shown in `GET /v1/models`; `switchyard` when absent.
    #[serde(default)]
    pub owned_by: Option<String>,
}

/// One provider deployment of a model (`models[].targets[]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Name of a configured provider.
    pub provider: String,
    /// Model name sent to that provider.
    pub model: String,
}

/// Prices of a model (`models[].pricing`), per million tokens.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingConfig {
    /// ISO 4217 currency code; `USD` when absent.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Price of one million prompt tokens as a decimal string (`"2.50"`),
    /// at most six fractional digits. Quote it: YAML numbers are floats.
    pub input_per_million: String,
    /// Price of one million completion tokens, written like `input_per_million`.
    pub output_per_million: String,
}

fn default_currency() -> String {
    "USD".to_owned()
}

/// A client API key (`keys[]`). Exactly one of `sha256` and `secret` is set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Unique id, recorded with every request made with the key.
    pub id: String,
    /// Human-readable name.
    #[serde(default)]
    pub name: Option<String>,
    /// Team the key belongs to.
    #[serde(default)]
    pub team: Option<String>,
    /// Model aliases the key may use; all when empty.
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

impl Declarative {
    /// Checks every object and reference, resolving key secrets from
    /// `environment`. The error names the bad object and field.
    pub fn validate(&self, environment: &Environment) -> Result<()> {
        StoredConfig::from_declarative(self, environment).map(drop)
    }
}

//! The stored form of the declarative objects: one record per table row,
//! already validated, defaulted and hashed, in a canonical order.
//!
//! Syncing compares these records with the stored ones, so two configs that
//! store the same rows are the same config and keep the version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchyard_proto::v1 as pb;

/// Everything the control plane stores, sorted by name or id.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StoredConfig {
    pub providers: Vec<ProviderRecord>,
    pub models: Vec<ModelRecord>,
    pub keys: Vec<KeyRecord>,
}

/// A row of `providers`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProviderRecord {
    pub name: String,
    pub kind: String,
    /// Empty when the adapter's default applies.
    pub base_url: String,
    pub api_key: Option<SecretRefRecord>,
    /// 0 when the adapter's default applies.
    pub timeout_ms: i64,
    /// Provider-specific settings (JSON object column `options`).
    pub options: BTreeMap<String, String>,
    /// Named secret references (JSON object column `secrets`).
    pub secrets: BTreeMap<String, SecretRefRecord>,
}

/// A secret reference: exactly one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SecretRefRecord {
    Env(String),
    File(String),
}

/// A row of `models`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModelRecord {
    pub name: String,
    pub targets: Vec<TargetRecord>,
    /// 0 disables caching.
    pub cache_ttl_ms: i64,
    pub pricing: Option<PricingRecord>,
    pub owned_by: String,
}

/// One element of the JSON `models.targets` column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TargetRecord {
    pub provider: String,
    pub model: String,
}

/// The price columns of `models`, in micro-units per million tokens.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PricingRecord {
    pub currency: String,
    pub input_micros: i64,
    pub output_micros: i64,
}

/// A row of `api_keys`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeyRecord {
    pub id: String,
    /// Lowercase hex SHA-256 of the secret.
    pub sha256: String,
    /// Empty when unnamed.
    pub name: String,
    /// Empty when the key has no team.
    pub team_id: String,
    /// Empty means all models.
    pub allowed_models: Vec<String>,
    pub disabled: bool,
}

impl StoredConfig {
    /// Puts the records in canonical order (byte order of names and ids, which
    /// unlike `ORDER BY` does not depend on the database's collation).
    pub fn sort(&mut self) {
        self.providers.sort_by(|a, b| a.name.cmp(&b.name));
        self.models.sort_by(|a, b| a.name.cmp(&b.name));
        self.keys.sort_by(|a, b| a.id.cmp(&b.id));
    }

    /// Returns the snapshot of these records at `version`.
    pub fn to_snapshot(&self, version: u64) -> pb::Snapshot {
        pb::Snapshot {
            version,
            providers: self
                .providers
                .iter()
                .map(ProviderRecord::to_proto)
                .collect(),
            models: self.models.iter().map(ModelRecord::to_proto).collect(),
            api_keys: self.keys.iter().map(KeyRecord::to_proto).collect(),
        }
    }
}

/// Converts a stored non-negative millisecond count (checked on the way in).
fn millis(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl ProviderRecord {
    fn to_proto(&self) -> pb::Provider {
        pb::Provider {
            name: self.name.clone(),
            kind: self.kind.clone(),
            base_url: self.base_url.clone(),
            api_key: self.api_key.as_ref().map(SecretRefRecord::to_proto),
            timeout_ms: millis(self.timeout_ms),
            options: self.options.clone(),
            secrets: self
                .secrets
                .iter()
                .map(|(name, secret)| (name.clone(), secret.to_proto()))
                .collect(),
        }
    }
}

impl SecretRefRecord {
    fn to_proto(&self) -> pb::SecretRef {
        pb::SecretRef {
            source: Some(match self {
                SecretRefRecord::Env(name) => pb::secret_ref::Source::Env(name.clone()),
                SecretRefRecord::File(path) => pb::secret_ref::Source::File(path.clone()),
            }),
        }
    }
}

impl ModelRecord {
    fn to_proto(&self) -> pb::Model {
        let money = |micros: i64, currency: &str| pb::Money {
            micros,
            currency: currency.to_owned(),
        };
        pb::Model {
            name: self.name.clone(),
            targets: self
                .targets
                .iter()
                .map(|target| pb::ModelTarget {
                    provider: target.provider.clone(),
                    upstream_model: target.model.clone(),
                })
                .collect(),
            cache_ttl_ms: millis(self.cache_ttl_ms),
            input_price_per_million: self
                .pricing
                .as_ref()
                .map(|pricing| money(pricing.input_micros, &pricing.currency)),
            output_price_per_million: self
                .pricing
                .as_ref()
                .map(|pricing| money(pricing.output_micros, &pricing.currency)),
            owned_by: self.owned_by.clone(),
        }
    }
}

impl KeyRecord {
    fn to_proto(&self) -> pb::ApiKey {
        pb::ApiKey {
            id: self.id.clone(),
            sha256: self.sha256.clone(),
            name: self.name.clone(),
            team_id: self.team_id.clone(),
            allowed_models: self.allowed_models.clone(),
            disabled: self.disabled,
        }
    }
}

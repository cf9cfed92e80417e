//! The route table: the router's index of a control-plane snapshot.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use switchyard_proto::v1::{Money, Snapshot, Target};

/// Everything the router needs to serve one model alias.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The alias clients ask for.
    pub model: String,
    /// Where to send attempts, in order of preference.
    pub targets: Vec<Target>,
    /// How long responses may be served from the cache; `None` disables it.
    pub cache_ttl: Option<Duration>,
    /// Price per million prompt tokens.
    pub input_price_per_million: Option<Money>,
    /// Price per million completion tokens.
    pub output_price_per_million: Option<Money>,
}

/// The models each key may use.
#[derive(Debug, Clone, PartialEq)]
enum KeyPolicy {
    All,
    Only(HashSet<String>),
}

/// A snapshot indexed for lookups on the data path.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: HashMap<String, Arc<Route>>,
    key_policies: HashMap<String, KeyPolicy>,
    /// Snapshot version the table was built from.
    pub version: u64,
}

impl RouteTable {
    /// Indexes a snapshot. Targets naming an unknown provider are skipped
    /// (the control plane validates this; the router stays defensive).
    pub fn from_snapshot(snapshot: Snapshot) -> Self {
        let providers: HashMap<_, _> = snapshot
            .providers
            .iter()
            .map(|provider| (provider.name.as_str(), provider))
            .collect();
        let routes = snapshot
            .models
            .iter()
            .map(|model| {
                let targets = model
                    .targets
                    .iter()
                    .filter_map(|target| {
                        let provider = providers.get(target.provider.as_str())?;
                        Some(Target {
                            provider: provider.name.clone(),
                            kind: provider.kind.clone(),
                            base_url: provider.base_url.clone(),
                            upstream_model: target.upstream_model.clone(),
                            api_key: provider.api_key.clone(),
                            timeout_ms: provider.timeout_ms,
                            options: provider.options.clone(),
                            secrets: provider.secrets.clone(),
                        })
                    })
                    .collect();
                let route = Route {
                    model: model.name.clone(),
                    targets,
                    cache_ttl: (model.cache_ttl_ms > 0)
                        .then(|| Duration::from_millis(model.cache_ttl_ms)),
                    input_price_per_million: model.input_price_per_million.clone(),
                    output_price_per_million: model.output_price_per_million.clone(),
                };
                (model.name.clone(), Arc::new(route))
            })
            .collect();
        let key_policies = snapshot
            .api_keys
            .iter()
            .map(|key| {
                let policy = if key.allowed_models.is_empty() {
                    KeyPolicy::All
                } else {
                    KeyPolicy::Only(key.allowed_models.iter().cloned().collect())
                };
                (key.id.clone(), policy)
            })
            .collect();
        Self {
            routes,
            key_policies,
            version: snapshot.version,
        }
    }

    /// Returns the route for a model alias.
    pub fn route(&self, model: &str) -> Option<&Arc<Route>> {
        self.routes.get(model)
    }

    /// Whether the key may use the model. Unknown keys may use nothing.
    pub fn key_may_use(&self, key_id: &str, model: &str) -> bool {
        match self.key_policies.get(key_id) {
            Some(KeyPolicy::All) => true,
            Some(KeyPolicy::Only(models)) => models.contains(model),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use switchyard_proto::v1::{ApiKey, Model, ModelTarget, Provider};

    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            version: 7,
            providers: vec![Provider {
                name: "fake".to_owned(),
                kind: "openai".to_owned(),
                base_url: "http://fake/v1".to_owned(),
                api_key: None,
                timeout_ms: 1000,
                ..Provider::default()
            }],
            models: vec![Model {
                name: "gpt".to_owned(),
                targets: vec![
                    ModelTarget {
                        provider: "fake".to_owned(),
                        upstream_model: "gpt-4o".to_owned(),
                    },
                    ModelTarget {
                        provider: "missing".to_owned(),
                        upstream_model: "x".to_owned(),
                    },
                ],
                cache_ttl_ms: 60_000,
                ..Model::default()
            }],
            api_keys: vec![
                ApiKey {
                    id: "all".to_owned(),
                    ..ApiKey::default()
                },
                ApiKey {
                    id: "narrow".to_owned(),
                    allowed_models: vec!["other".to_owned()],
                    ..ApiKey::default()
                },
            ],
        }
    }

    #[test]
    fn routes_resolve_targets_through_providers() {
        let table = RouteTable::from_snapshot(snapshot());
        let route = table.route("gpt").expect("route exists");
        assert_eq!(route.targets.len(), 1, "unknown provider skipped");
        assert_eq!(route.targets[0].base_url, "http://fake/v1");
        assert_eq!(route.targets[0].upstream_model, "gpt-4o");
        assert_eq!(route.cache_ttl, Some(Duration::from_secs(60)));
        assert_eq!(table.version, 7);
        assert!(table.route("nope").is_none());
    }

    #[test]
    fn key_policies_limit_models() {
        let table = RouteTable::from_snapshot(snapshot());
        assert!(table.key_may_use("all", "gpt"));
        assert!(!table.key_may_use("narrow", "gpt"));
        assert!(table.key_may_use("narrow", "other"));
        assert!(!table.key_may_use("ghost", "gpt"));
    }
}

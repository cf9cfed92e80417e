//! [`DeploymentIndex`]: the adapters' own view of the providers and
//! deployments they may call, built from their snapshot.
//!
//! A request names a deployment id and nothing else about where it goes: the
//! endpoint, options and secret references come from here, so a caller that
//! can reach the adapter service cannot point it at another URL or make it
//! read another secret.

use std::{collections::HashMap, sync::Arc};

use switchyard_proto::v1::{Credential, Provider, Snapshot};

/// One deployment the adapters can serve.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownDeployment {
    /// Its provider account: kind, endpoint, secret references, options.
    pub provider: Arc<Provider>,
    /// The model name sent upstream.
    pub upstream_model: String,
    /// The ids of the provider's `api_keys`, sorted; empty when it has one
    /// `api_key` or none.
    pub key_ids: Arc<[String]>,
}

/// Deployments by id, at one snapshot version.
#[derive(Debug, Default)]
pub struct DeploymentIndex {
    deployments: HashMap<String, KnownDeployment>,
    /// Stored provider credentials by id, encrypted.
    pub credentials: HashMap<String, Arc<Credential>>,
    /// Snapshot version this index was built from.
    pub version: u64,
}

impl DeploymentIndex {
    /// Indexes an adapter snapshot. Deployments naming an unknown provider
    /// are left out (the control plane validates this; adapters stay defensive).
    pub fn from_snapshot(snapshot: Snapshot) -> Self {
        let providers: HashMap<String, (Arc<Provider>, Arc<[String]>)> = snapshot
            .providers
            .into_iter()
            .map(|provider| {
                let mut key_ids: Vec<String> = provider.api_keys.keys().cloned().collect();
                key_ids.sort_unstable();
                (
                    provider.name.clone(),
                    (Arc::new(provider), Arc::from(key_ids)),
                )
            })
            .collect();
        let deployments = snapshot
            .deployments
            .into_iter()
            .filter_map(|deployment| {
                let (provider, key_ids) = providers.get(&deployment.provider)?.clone();
                Some((
                    deployment.id,
                    KnownDeployment {
                        provider,
                        upstream_model: deployment.upstream_model,
                        key_ids,
                    },
                ))
            })
            .collect();
        let credentials = snapshot
            .credentials
            .into_iter()
            .map(|credential| (credential.id.clone(), Arc::new(credential)))
            .collect();
        Self {
            deployments,
            credentials,
            version: snapshot.version,
        }
    }

    /// Returns the deployment with `id`.
    pub fn get(&self, id: &str) -> Option<&KnownDeployment> {
        self.deployments.get(id)
    }
}

#[cfg(test)]
mod tests {
    use switchyard_proto::v1::Deployment;

    use super::*;

    #[test]
    fn deployments_resolve_through_their_provider() {
        let index = DeploymentIndex::from_snapshot(Snapshot {
            version: 4,
            providers: vec![Provider {
                name: "openai".to_owned(),
                kind: "openai".to_owned(),
                base_url: "http://fake/v1".to_owned(),
                ..Provider::default()
            }],
            deployments: vec![
                Deployment {
                    id: "mini".to_owned(),
                    provider: "openai".to_owned(),
                    upstream_model: "gpt-4o-mini".to_owned(),
                    ..Deployment::default()
                },
                Deployment {
                    id: "orphan".to_owned(),
                    provider: "missing".to_owned(),
                    ..Deployment::default()
                },
            ],
            ..Snapshot::default()
        });
        let mini = index.get("mini").expect("known");
        assert_eq!(mini.provider.base_url, "http://fake/v1");
        assert_eq!(mini.upstream_model, "gpt-4o-mini");
        assert!(index.get("orphan").is_none());
        assert!(index.get("ghost").is_none());
        assert_eq!(index.version, 4);
    }
}

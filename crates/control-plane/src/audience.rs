//! Per-role views of a snapshot: each role is sent only what it needs.
//!
//! - Edges authenticate keys and list routes: key hashes, teams (whose
//!   route sets narrow their keys'), route names and owners (no strategy),
//!   rate limits and budgets.
//! - Routers decide: routes, deployments (no endpoint: deployments name
//!   providers, never URLs or secrets), keys without their hashes, teams,
//!   users, budgets and rate limits.
//! - Adapters talk to providers: providers (endpoints and credential
//!   references), deployments and the stored credentials (encrypted; only
//!   adapters decrypt them), nothing about clients.

use switchyard_proto::v1::{Route, Snapshot, SnapshotAudience};

/// Returns the part of `full` that `audience` may see. An unspecified
/// audience sees nothing but the version.
pub fn view_for(full: &Snapshot, audience: SnapshotAudience) -> Snapshot {
    let mut view = Snapshot {
        version: full.version,
        audience: audience as i32,
        ..Snapshot::default()
    };
    match audience {
        SnapshotAudience::Edge => {
            view.api_keys.clone_from(&full.api_keys);
            view.teams.clone_from(&full.teams);
            view.routes = full
                .routes
                .iter()
                .map(|route| Route {
                    name: route.name.clone(),
                    owned_by: route.owned_by.clone(),
                    meta: route.meta,
                    ..Route::default()
                })
                .collect();
            view.budgets.clone_from(&full.budgets);
            view.rate_limits.clone_from(&full.rate_limits);
        }
        SnapshotAudience::Router => {
            view.api_keys = full
                .api_keys
                .iter()
                .map(|key| {
                    let mut key = key.clone();
                    key.sha256.clear();
                    key
                })
                .collect();
            view.routes.clone_from(&full.routes);
            view.deployments.clone_from(&full.deployments);
            view.teams.clone_from(&full.teams);
            view.users.clone_from(&full.users);
            view.budgets.clone_from(&full.budgets);
            view.rate_limits.clone_from(&full.rate_limits);
        }
        SnapshotAudience::Adapter => {
            view.providers.clone_from(&full.providers);
            view.deployments.clone_from(&full.deployments);
            view.credentials.clone_from(&full.credentials);
        }
        SnapshotAudience::Unspecified => {}
    }
    view
}

#[cfg(test)]
mod tests {
    use switchyard_proto::v1::{
        ApiKey, Deployment, FallbackStrategy, Provider, SecretRef, route::Strategy, secret_ref,
    };

    use super::*;

    fn full() -> Snapshot {
        Snapshot {
            version: 3,
            providers: vec![Provider {
                name: "openai".to_owned(),
                base_url: "https://api.openai.com/v1".to_owned(),
                api_key: Some(SecretRef {
                    source: Some(secret_ref::Source::Env("OPENAI_API_KEY".to_owned())),
                }),
                ..Provider::default()
            }],
            deployments: vec![Deployment {
                id: "d".to_owned(),
                provider: "openai".to_owned(),
                ..Deployment::default()
            }],
            routes: vec![Route {
                name: "r".to_owned(),
                strategy: Some(Strategy::Fallback(FallbackStrategy {
                    deployments: vec!["d".to_owned()],
                })),
                ..Route::default()
            }],
            api_keys: vec![ApiKey {
                id: "k".to_owned(),
                sha256: "ab".repeat(32),
                ..ApiKey::default()
            }],
            ..Snapshot::default()
        }
    }

    #[test]
    fn only_adapters_see_providers() {
        let full = full();
        for audience in [SnapshotAudience::Edge, SnapshotAudience::Router] {
            let view = view_for(&full, audience);
            assert!(view.providers.is_empty(), "{audience:?}");
            assert_eq!(view.version, 3);
        }
        let adapter = view_for(&full, SnapshotAudience::Adapter);
        assert_eq!(adapter.providers.len(), 1);
        assert!(adapter.api_keys.is_empty() && adapter.routes.is_empty());
    }

    #[test]
    fn edges_see_hashes_and_routers_do_not() {
        let full = full();
        let edge = view_for(&full, SnapshotAudience::Edge);
        assert_eq!(edge.api_keys[0].sha256, "ab".repeat(32));
        assert_eq!(edge.routes[0].strategy, None, "no deployments for edges");
        assert!(edge.deployments.is_empty());
        let router = view_for(&full, SnapshotAudience::Router);
        assert!(router.api_keys[0].sha256.is_empty());
        assert!(router.routes[0].strategy.is_some());
        assert_eq!(
            view_for(&full, SnapshotAudience::Unspecified).routes.len(),
            0
        );
    }
}

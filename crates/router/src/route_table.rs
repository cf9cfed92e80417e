//! The route table: the router's index of its control-plane snapshot.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use switchyard_proto::v1::{Deployment, Snapshot};

use crate::{
    rules::Rule,
    strategy::{Tier, tiers_of},
    timeouts::Timeouts,
};

/// Everything the router needs to serve one route.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The name clients put in `model`.
    pub name: String,
    /// Its deployments in tiers, each with its strategy: the first tier's
    /// are tried first.
    pub tiers: Vec<Tier>,
    /// How long responses may be served from the cache; `None` disables it.
    pub cache_ttl: Option<Duration>,
    /// How its requests retry and fall back.
    pub retry: RetryRules,
    /// When a backup attempt goes to the next deployment while the first
    /// has not answered; `None` never (unless `hedge_after_p95`).
    pub hedge_after: Option<Duration>,
    /// Whether the hedge waits the first deployment's observed p95 time to
    /// first token instead, once known.
    pub hedge_after_p95: bool,
    /// The recent p95 latencies a deployment must stay within not to be
    /// demoted behind the others.
    pub slo: Slo,
    /// Shadow traffic: the deployment that gets copies, and the percentage
    /// of requests copied.
    pub shadow: Option<(String, u32)>,
    /// Rules tried before the strategy, in order.
    pub rules: Vec<Rule>,
    /// Key tier → the route that serves that tier instead (after rules).
    pub tier_routes: HashMap<String, String>,
    /// How long its requests and their attempts may take.
    pub timeouts: Timeouts,
    /// Most a request may be expected to cost at one deployment, in
    /// nano-units; `None` for no ceiling.
    pub cost_ceiling: Option<i64>,
}

/// A route's latency bounds on each deployment's recent p95.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slo {
    /// Time to first token; `None` for no bound.
    pub first_token_p95: Option<Duration>,
    /// Whole answers; `None` for no bound.
    pub total_p95: Option<Duration>,
}

/// How a route's requests retry and fall back, before any output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryRules {
    /// Attempts in all; `None` for no limit but the others.
    pub max_attempts: Option<u32>,
    /// Further tries at the same deployment after a retryable failure;
    /// `None` for the default by error class.
    pub per_deployment: Option<u32>,
    /// Wait before falling back to the next deployment.
    pub fallback_delay: Duration,
    /// Whether a prompt too long for one deployment goes on to the next
    /// with a larger context window.
    pub larger_window: bool,
}

/// The routes a key may use: its own list narrowed by its team's.
#[derive(Debug, Clone, PartialEq)]
enum RouteSet {
    All,
    Only(HashSet<String>),
}

impl RouteSet {
    fn of(routes: Vec<String>) -> Self {
        if routes.is_empty() {
            Self::All
        } else {
            Self::Only(routes.into_iter().collect())
        }
    }

    /// The routes both `self` and `other` allow.
    fn narrowed_by(self, other: &Self) -> Self {
        match (self, other) {
            (set, Self::All) => set,
            (Self::All, Self::Only(other)) => Self::Only(other.clone()),
            (Self::Only(own), Self::Only(other)) => Self::Only(
                own.into_iter()
                    .filter(|route| other.contains(route))
                    .collect(),
            ),
        }
    }
}

/// What a key may do: which routes, and its tier (its own, else its
/// team's; empty for none).
#[derive(Debug, Clone, PartialEq)]
struct KeyPolicy {
    routes: RouteSet,
    tier: String,
}

/// A snapshot indexed for lookups on the data path.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: HashMap<String, Arc<Route>>,
    deployments: HashMap<String, Arc<Deployment>>,
    key_policies: HashMap<String, KeyPolicy>,
    /// Deployments that ask for active health probes.
    probed: Vec<Arc<Deployment>>,
    /// Snapshot version the table was built from.
    pub version: u64,
}

impl RouteTable {
    /// Indexes a router snapshot.
    pub fn from_snapshot(snapshot: Snapshot) -> Self {
        let routes = snapshot
            .routes
            .into_iter()
            .map(|route| {
                let tiers = tiers_of(route.strategy);
                let cache_ttl = route
                    .cache
                    .filter(|cache| cache.ttl_ms > 0)
                    .map(|cache| Duration::from_millis(cache.ttl_ms));
                let retry = route
                    .retry
                    .map_or_else(RetryRules::default, |retry| RetryRules {
                        max_attempts: (retry.max_attempts > 0).then_some(retry.max_attempts),
                        per_deployment: retry.per_deployment,
                        fallback_delay: Duration::from_millis(retry.fallback_delay_ms),
                        larger_window: retry.larger_window,
                    });
                let hedge_after = route
                    .hedge
                    .filter(|hedge| hedge.after_ms > 0)
                    .map(|hedge| Duration::from_millis(hedge.after_ms));
                let hedge_after_p95 = route.hedge.is_some_and(|hedge| hedge.after_p95);
                let bound = |ms: u64| (ms > 0).then(|| Duration::from_millis(ms));
                let slo = route.slo.map_or_else(Slo::default, |slo| Slo {
                    first_token_p95: bound(slo.first_token_p95_ms),
                    total_p95: bound(slo.total_p95_ms),
                });
                let rules = route.rules.into_iter().filter_map(Rule::compile).collect();
                let timeouts = Timeouts::of_route(route.timeout);
                let entry = Route {
                    name: route.name.clone(),
                    tiers,
                    cache_ttl,
                    retry,
                    hedge_after,
                    hedge_after_p95,
                    slo,
                    shadow: route
                        .shadow
                        .filter(|shadow| shadow.percent > 0)
                        .map(|shadow| (shadow.deployment, shadow.percent.min(100))),
                    rules,
                    timeouts,
                    cost_ceiling: (route.cost_ceiling_nanos > 0)
                        .then_some(route.cost_ceiling_nanos),
                    tier_routes: route.tier_routes.into_iter().collect(),
                };
                (route.name, Arc::new(entry))
            })
            .collect();
        let deployments: HashMap<String, Arc<Deployment>> = snapshot
            .deployments
            .into_iter()
            .map(|deployment| (deployment.id.clone(), Arc::new(deployment)))
            .collect();
        let probed = deployments
            .values()
            .filter(|deployment| deployment.probe_every_ms > 0)
            .cloned()
            .collect();
        let teams: HashMap<String, (RouteSet, String)> = snapshot
            .teams
            .into_iter()
            .map(|team| (team.id, (RouteSet::of(team.allowed_models), team.tier)))
            .collect();
        let key_policies = snapshot
            .api_keys
            .into_iter()
            .map(|key| {
                let mut routes = RouteSet::of(key.allowed_models);
                let mut tier = key.tier;
                if let Some((team_routes, team_tier)) = teams.get(&key.team_id) {
                    routes = routes.narrowed_by(team_routes);
                    if tier.is_empty() {
                        tier.clone_from(team_tier);
                    }
                }
                (key.id, KeyPolicy { routes, tier })
            })
            .collect();
        Self {
            routes,
            deployments,
            key_policies,
            probed,
            version: snapshot.version,
        }
    }

    /// Returns the route clients call `name`.
    pub fn route(&self, name: &str) -> Option<&Arc<Route>> {
        self.routes.get(name)
    }

    /// The deployments that ask for active health probes.
    pub fn probed(&self) -> &[Arc<Deployment>] {
        &self.probed
    }

    /// Returns the deployment with `id`.
    pub fn deployment(&self, id: &str) -> Option<&Arc<Deployment>> {
        self.deployments.get(id)
    }

    /// The key's tier (its own, else its team's); empty for none.
    pub fn key_tier(&self, key_id: &str) -> &str {
        self.key_policies
            .get(key_id)
            .map_or("", |policy| policy.tier.as_str())
    }

    /// Whether the key may use the route: its own routes and its team's
    /// allow it. Unknown keys may use nothing.
    pub fn key_may_use(&self, key_id: &str, route: &str) -> bool {
        match self.key_policies.get(key_id).map(|policy| &policy.routes) {
            Some(RouteSet::All) => true,
            Some(RouteSet::Only(routes)) => routes.contains(route),
            None => false,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use switchyard_proto::v1::{
        ApiKey, CachePolicy, FallbackStrategy, Route as RouteObject, route::Strategy,
    };

    use super::*;

    /// A snapshot with route `gpt` over `primary` then `backup` (and a
    /// `ghost` id no deployment has), and two keys.
    pub(crate) fn snapshot() -> Snapshot {
        let deployment = |id: &str, provider: &str| Deployment {
            id: id.to_owned(),
            provider: provider.to_owned(),
            upstream_model: format!("{id}-model"),
            ..Deployment::default()
        };
        Snapshot {
            version: 7,
            deployments: vec![
                deployment("primary", "openai"),
                deployment("backup", "anthropic"),
            ],
            routes: vec![RouteObject {
                name: "gpt".to_owned(),
                strategy: Some(Strategy::Fallback(FallbackStrategy {
                    deployments: vec![
                        "primary".to_owned(),
                        "ghost".to_owned(),
                        "backup".to_owned(),
                    ],
                })),
                cache: Some(CachePolicy { ttl_ms: 60_000 }),
                ..RouteObject::default()
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
            ..Snapshot::default()
        }
    }

    #[test]
    fn routes_and_deployments_are_indexed() {
        let table = RouteTable::from_snapshot(snapshot());
        let route = table.route("gpt").expect("route exists");
        assert_eq!(route.tiers.len(), 1);
        assert_eq!(route.tiers[0].deployments, ["primary", "ghost", "backup"]);
        assert_eq!(route.cache_ttl, Some(Duration::from_secs(60)));
        assert_eq!(
            table.deployment("backup").map(|d| d.provider.as_str()),
            Some("anthropic")
        );
        assert_eq!(table.version, 7);
        assert!(table.route("nope").is_none());
    }

    #[test]
    fn key_policies_limit_routes() {
        let table = RouteTable::from_snapshot(snapshot());
        assert!(table.key_may_use("all", "gpt"));
        assert!(!table.key_may_use("narrow", "gpt"));
        assert!(table.key_may_use("narrow", "other"));
        assert!(!table.key_may_use("ghost", "gpt"));
    }
}

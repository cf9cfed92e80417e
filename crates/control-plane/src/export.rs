//! Stored objects back into the declarative form of the config file.
//!
//! The inverse of validation ([`StoredConfig::from_declarative`]): for every
//! valid set of objects, validating its export gives the same objects back.
//! `switchyard ctl export` writes it, and the admin API validates a changed
//! object by exporting the whole config with the change and validating that,
//! so the file and the API share one set of rules and one set of field names.

use std::time::Duration;

use switchyard_common::SecretSource;
use switchyard_proto::v1 as pb;

use crate::{
    BudgetConfig, BudgetPeriodConfig, CapabilitiesConfig, CapacityConfig, Declarative,
    DeploymentConfig, HedgeConfig, KeyConfig, LifecycleConfig, LongContextConfig, PricingConfig,
    ProviderConfig, RateLimitConfig, RetryConfig, RouteCacheConfig, RouteConfig, ScopeConfig,
    TeamConfig, TimeoutConfig, UserConfig, objects::StoredObject, price::format_price_nanos,
};

/// The owner `GET /v1/models` shows when a route names none.
const DEFAULT_OWNED_BY: &str = "switchyard";

/// Writes `objects` as the declarative sections of a config file, in the
/// order given (the store's order is kind, then id).
pub fn to_declarative<'a>(objects: impl IntoIterator<Item = &'a StoredObject>) -> Declarative {
    let mut declarative = Declarative::default();
    for object in objects {
        match object {
            StoredObject::Provider(provider) => {
                declarative.providers.push(provider_config(provider))
            }
            StoredObject::Deployment(deployment) => {
                declarative.deployments.push(deployment_config(deployment));
            }
            StoredObject::Route(route) => declarative.routes.push(route_config(route)),
            StoredObject::ApiKey(key) => declarative.keys.push(key_config(key)),
            StoredObject::Team(team) => declarative.teams.push(TeamConfig {
                id: team.id.clone(),
                name: non_empty(&team.name),
                tier: non_empty(&team.tier),
                models: team.allowed_models.clone(),
            }),
            StoredObject::User(user) => declarative.users.push(UserConfig {
                id: user.id.clone(),
                team: non_empty(&user.team_id),
                name: non_empty(&user.name),
            }),
            StoredObject::Budget(budget) => declarative.budgets.push(budget_config(budget)),
            // Credentials have no form in the file: their values are never
            // written out, and they are made through the API only.
            StoredObject::Credential(_) => {}
            StoredObject::RateLimit(limit) => declarative.rate_limits.push(RateLimitConfig {
                id: limit.id.clone(),
                scope: scope_config(limit.scope.as_ref()),
                requests_per_minute: limit.requests_per_minute,
                tokens_per_minute: limit.tokens_per_minute,
                max_concurrency: limit.max_concurrency,
            }),
        }
    }
    declarative
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

fn timeout_config(timeout: pb::TimeoutPolicy) -> TimeoutConfig {
    TimeoutConfig {
        request: millis(timeout.request_ms),
        first_token: millis(timeout.first_token_ms),
        connect: millis(timeout.connect_ms),
        idle: millis(timeout.idle_ms),
    }
}

fn millis(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

fn secret_source(reference: &pb::SecretRef) -> SecretSource {
    match &reference.source {
        Some(pb::secret_ref::Source::Env(name)) => SecretSource::env(name.clone()),
        Some(pb::secret_ref::Source::File(path)) => SecretSource::file(path.clone()),
        Some(pb::secret_ref::Source::Credential(id)) => SecretSource::credential(id.clone()),
        None => SecretSource {
            env: None,
            file: None,
            credential: None,
        },
    }
}

fn provider_config(provider: &pb::Provider) -> ProviderConfig {
    let default_propagation = matches!(provider.kind.as_str(), "vllm" | "ollama" | "llamacpp");
    ProviderConfig {
        name: provider.name.clone(),
        kind: provider.kind.clone(),
        base_url: non_empty(&provider.base_url),
        api_key: provider.api_key.as_ref().map(secret_source),
        api_keys: provider
            .api_keys
            .iter()
            .map(|(id, reference)| (id.clone(), secret_source(reference)))
            .collect(),
        timeout: millis(provider.timeout_ms),
        options: provider.options.clone(),
        secrets: provider
            .secrets
            .iter()
            .map(|(name, reference)| (name.clone(), secret_source(reference)))
            .collect(),
        propagate_trace: (provider.propagate_trace != default_propagation)
            .then_some(provider.propagate_trace),
        proxy: non_empty(&provider.proxy_url),
        ca_bundle: non_empty(&provider.ca_bundle_file),
        capacity: provider.capacity.map(capacity_config),
    }
}

fn capacity_config(capacity: pb::Capacity) -> CapacityConfig {
    CapacityConfig {
        requests_per_minute: capacity.requests_per_minute,
        tokens_per_minute: capacity.tokens_per_minute,
        max_concurrency: capacity.max_concurrency,
        queue_timeout: millis(capacity.queue_timeout_ms),
        max_queued: capacity.max_queued,
    }
}

/// A price as its decimal string, and its currency (`USD` when unset).
fn money(money: Option<&pb::Money>) -> (String, String) {
    match money {
        Some(money) => (format_price_nanos(money.nanos), money.currency.clone()),
        None => (String::new(), String::new()),
    }
}

fn pricing_config(pricing: &pb::Pricing) -> PricingConfig {
    let (input, currency) = money(pricing.input_per_million.as_ref());
    let (output, _) = money(pricing.output_per_million.as_ref());
    let optional = |price: Option<&pb::Money>| price.map(|price| format_price_nanos(price.nanos));
    PricingConfig {
        currency: if currency.is_empty() {
            "USD".to_owned()
        } else {
            currency
        },
        input_per_million: input,
        output_per_million: output,
        cached_input_per_million: optional(pricing.cached_input_per_million.as_ref()),
        cache_write_per_million: optional(pricing.cache_write_per_million.as_ref()),
        long_context: pricing.long_context.as_ref().map(|tier| LongContextConfig {
            above_prompt_tokens: tier.above_prompt_tokens,
            input_per_million: money(tier.input_per_million.as_ref()).0,
            output_per_million: money(tier.output_per_million.as_ref()).0,
        }),
    }
}

fn deployment_config(deployment: &pb::Deployment) -> DeploymentConfig {
    let capabilities = deployment.capabilities.unwrap_or_default();
    DeploymentConfig {
        id: deployment.id.clone(),
        provider: deployment.provider.clone(),
        model: deployment.upstream_model.clone(),
        context_window: (deployment.context_window > 0).then_some(deployment.context_window),
        max_output_tokens: (deployment.max_output_tokens > 0)
            .then_some(deployment.max_output_tokens),
        pricing: deployment.pricing.as_ref().map(pricing_config),
        capacity: deployment.capacity.map(capacity_config),
        capabilities: CapabilitiesConfig {
            tools: capabilities.tools,
            vision: capabilities.vision,
            json_schema: capabilities.json_schema,
            logprobs: capabilities.logprobs,
            multiple_choices: capabilities.multiple_choices,
        },
        region: non_empty(&deployment.region),
        self_hosted: deployment.self_hosted,
        lifecycle: deployment
            .lifecycle
            .as_ref()
            .map(|lifecycle| LifecycleConfig {
                deprecated: lifecycle.deprecated,
                sunset_date: non_empty(&lifecycle.sunset_date),
                successor: non_empty(&lifecycle.successor),
            }),
        timeout: deployment.timeout.map(timeout_config),
        probe: (deployment.probe_every_ms > 0).then(|| crate::declarative::ProbeConfig {
            every: Duration::from_millis(deployment.probe_every_ms),
        }),
    }
}

fn route_config(route: &pb::Route) -> RouteConfig {
    let strategy = crate::strategy::to_config(route.strategy.as_ref());
    RouteConfig {
        name: route.name.clone(),
        strategy,
        retry: route.retry.map(|retry| RetryConfig {
            max_attempts: retry.max_attempts,
            per_deployment: retry.per_deployment,
            fallback_delay: millis(retry.fallback_delay_ms),
            larger_window: retry.larger_window,
        }),
        timeout: route.timeout.map(timeout_config),
        hedge: route.hedge.map(|hedge| HedgeConfig {
            after: millis(hedge.after_ms),
            after_p95: hedge.after_p95,
        }),
        cache: route.cache.map(|cache| RouteCacheConfig {
            ttl: Duration::from_millis(cache.ttl_ms),
        }),
        owned_by: (!route.owned_by.is_empty() && route.owned_by != DEFAULT_OWNED_BY)
            .then(|| route.owned_by.clone()),
        rules: crate::rules::to_configs(&route.rules),
        cost_ceiling: (route.cost_ceiling_nanos > 0)
            .then(|| format_price_nanos(route.cost_ceiling_nanos)),
        by_tier: route.tier_routes.clone().into_iter().collect(),
        shadow: route
            .shadow
            .as_ref()
            .map(|shadow| crate::declarative::ShadowConfig {
                deployment: shadow.deployment.clone(),
                percent: shadow.percent,
            }),
        slo: route.slo.map(|slo| crate::declarative::SloConfig {
            first_token_p95: millis(slo.first_token_p95_ms),
            total_p95: millis(slo.total_p95_ms),
        }),
    }
}

fn key_config(key: &pb::ApiKey) -> KeyConfig {
    KeyConfig {
        id: key.id.clone(),
        name: non_empty(&key.name),
        team: non_empty(&key.team_id),
        user: non_empty(&key.user_id),
        models: key.allowed_models.clone(),
        disabled: key.disabled,
        sha256: Some(key.sha256.clone()),
        secret: None,
        hint: non_empty(&key.hint),
        expires_at: (key.expires_at != 0)
            .then(|| crate::timestamp::format_rfc3339_seconds(key.expires_at)),
        debug: key.debug,
        tier: non_empty(&key.tier),
    }
}

fn scope_config(scope: Option<&pb::Scope>) -> ScopeConfig {
    use pb::scope::Subject;
    let mut config = ScopeConfig::default();
    match scope.and_then(|scope| scope.subject.as_ref()) {
        Some(Subject::TeamId(id)) => config.team = Some(id.clone()),
        Some(Subject::UserId(id)) => config.user = Some(id.clone()),
        Some(Subject::KeyId(id)) => config.key = Some(id.clone()),
        None => {}
    }
    config
}

fn budget_config(budget: &pb::Budget) -> BudgetConfig {
    let (limit, currency) = money(budget.limit.as_ref());
    let period = match pb::BudgetPeriod::try_from(budget.period) {
        Ok(pb::BudgetPeriod::Daily) => BudgetPeriodConfig::Daily,
        Ok(pb::BudgetPeriod::Monthly) => BudgetPeriodConfig::Monthly,
        _ => BudgetPeriodConfig::Total,
    };
    BudgetConfig {
        id: budget.id.clone(),
        scope: scope_config(budget.scope.as_ref()),
        limit,
        currency: if currency.is_empty() {
            "USD".to_owned()
        } else {
            currency
        },
        period,
    }
}

//! Validation of the declarative objects, producing the objects to store.
//!
//! Every error names the object (`routes[demo]`) and field at fault.

use std::{collections::BTreeSet, time::Duration};

use switchyard_common::{SecretSource, config::Environment};
use switchyard_proto::v1 as pb;

use crate::{
    Declarative, DeploymentConfig, Error, KeyConfig, ModelConfig, PricingConfig, ProviderConfig,
    Result, RouteConfig, ScopeConfig,
    crypto::{normalize_sha256_hex, secret_hint, sha256_hex},
    declarative::{
        BudgetConfig, BudgetPeriodConfig, CapacityConfig, RateLimitConfig, TeamConfig,
        TimeoutConfig, UserConfig,
    },
    objects::{ObjectKind, StoredConfig, StoredObject},
    price::parse_price_nanos,
};

/// What the objects a validated object refers to are checked against.
pub(crate) trait Known {
    /// Whether an object of `kind` and `id` exists.
    fn contains(&self, kind: ObjectKind, id: &str) -> bool;
}

impl Known for StoredConfig {
    fn contains(&self, kind: ObjectKind, id: &str) -> bool {
        StoredConfig::contains(self, kind, id)
    }
}

/// Validates one key, budget or rate limit (the kinds nothing but scopes
/// refers to) against the objects `known` holds, and returns its validated
/// form; `None` for other kinds, which need the whole config validated. The
/// checks and field names are those of [`StoredConfig::from_declarative`].
pub(crate) fn validate_leaf(
    object: &StoredObject,
    known: &impl Known,
) -> Result<Option<StoredObject>> {
    let declarative = crate::export::to_declarative([object]);
    let environment = Environment::new();
    let validated = match object.kind() {
        ObjectKind::ApiKey => {
            let key = &declarative.keys[0];
            let path = object_path("keys", 0, &key.id);
            StoredObject::ApiKey(key_object(key, &path, known, &environment)?)
        }
        ObjectKind::Budget => {
            let budget = &declarative.budgets[0];
            let path = object_path("budgets", 0, &budget.id);
            StoredObject::Budget(budget_object(budget, &path, known)?)
        }
        ObjectKind::RateLimit => {
            let limit = &declarative.rate_limits[0];
            let path = object_path("rate_limits", 0, &limit.id);
            StoredObject::RateLimit(rate_limit_object(limit, &path, known)?)
        }
        _ => return Ok(None),
    };
    Ok(Some(validated))
}

/// Owner of routes that name none.
const DEFAULT_OWNED_BY: &str = "switchyard";

impl StoredConfig {
    /// Validates `declarative` and returns its objects. Key secrets are
    /// resolved from `environment` and hashed; provider secrets are only
    /// checked for shape (the adapters resolve them).
    pub fn from_declarative(declarative: &Declarative, environment: &Environment) -> Result<Self> {
        let mut config = StoredConfig::default();
        for (index, provider) in declarative.providers.iter().enumerate() {
            let path = object_path("providers", index, &provider.name);
            let object = StoredObject::Provider(provider_object(provider, &path)?);
            if !config.insert(object) {
                return Err(Error::invalid(path, "duplicate provider name"));
            }
        }
        for (index, deployment) in declarative.deployments.iter().enumerate() {
            let path = object_path("deployments", index, &deployment.id);
            let object = deployment_object(deployment, &path, &config)?;
            if !config.insert(StoredObject::Deployment(object)) {
                return Err(Error::invalid(path, "duplicate deployment id"));
            }
        }
        for (index, model) in declarative.models.iter().enumerate() {
            let path = object_path("models", index, &model.name);
            let (route, deployments) = expand_model(model, &path, &config)?;
            for deployment in deployments {
                if !config.insert(StoredObject::Deployment(deployment)) {
                    return Err(Error::invalid(
                        path.as_str(),
                        "lists the same provider and model twice",
                    ));
                }
            }
            if !config.insert(StoredObject::Route(route)) {
                return Err(Error::invalid(path, "duplicate route name"));
            }
        }
        check_successors(declarative, &config)?;
        for (index, route) in declarative.routes.iter().enumerate() {
            let path = object_path("routes", index, &route.name);
            let object = route_object(route, &path, &config)?;
            if !config.insert(StoredObject::Route(object)) {
                return Err(Error::invalid(path, "duplicate route name"));
            }
        }
        crate::rules::check_targets(&config)?;
        for (index, team) in declarative.teams.iter().enumerate() {
            let path = object_path("teams", index, &team.id);
            if !config.insert(StoredObject::Team(team_object(team, &path)?)) {
                return Err(Error::invalid(path, "duplicate team id"));
            }
        }
        for (index, user) in declarative.users.iter().enumerate() {
            let path = object_path("users", index, &user.id);
            let object = user_object(user, &path, &config)?;
            if !config.insert(StoredObject::User(object)) {
                return Err(Error::invalid(path, "duplicate user id"));
            }
        }
        let mut key_hashes = BTreeSet::new();
        for (index, key) in declarative.keys.iter().enumerate() {
            let path = object_path("keys", index, &key.id);
            let object = key_object(key, &path, &config, environment)?;
            if !key_hashes.insert(object.sha256.clone()) {
                return Err(Error::invalid(path, "has the same secret as another key"));
            }
            if !config.insert(StoredObject::ApiKey(object)) {
                return Err(Error::invalid(path, "duplicate key id"));
            }
        }
        for (index, budget) in declarative.budgets.iter().enumerate() {
            let path = object_path("budgets", index, &budget.id);
            let object = budget_object(budget, &path, &config)?;
            if !config.insert(StoredObject::Budget(object)) {
                return Err(Error::invalid(path, "duplicate budget id"));
            }
        }
        for (index, limit) in declarative.rate_limits.iter().enumerate() {
            let path = object_path("rate_limits", index, &limit.id);
            let object = rate_limit_object(limit, &path, &config)?;
            if !config.insert(StoredObject::RateLimit(object)) {
                return Err(Error::invalid(path, "duplicate rate limit id"));
            }
        }
        Ok(config)
    }
}

/// Checks every deployment's `lifecycle.successor`: it names another known
/// deployment, and following successors never comes back to where it began.
fn check_successors(declarative: &Declarative, config: &StoredConfig) -> Result<()> {
    let successor_of = |id: &str| {
        declarative
            .deployments
            .iter()
            .find(|deployment| deployment.id == id)
            .and_then(|deployment| deployment.lifecycle.as_ref())
            .and_then(|lifecycle| lifecycle.successor.as_deref())
    };
    for (index, deployment) in declarative.deployments.iter().enumerate() {
        let Some(successor) = successor_of(&deployment.id) else {
            continue;
        };
        let path = format!(
            "{}.lifecycle.successor",
            object_path("deployments", index, &deployment.id)
        );
        if !config.contains(ObjectKind::Deployment, successor) {
            return Err(Error::invalid(
                path,
                format!("names unknown deployment `{successor}`"),
            ));
        }
        let mut seen = BTreeSet::from([deployment.id.as_str()]);
        let mut next = Some(successor);
        while let Some(id) = next {
            if !seen.insert(id) {
                return Err(Error::invalid(
                    path,
                    format!("successors form a cycle through `{id}`"),
                ));
            }
            next = successor_of(id);
        }
    }
    Ok(())
}

/// Names an object by its name, or by its index when the name is empty.
fn object_path(section: &str, index: usize, name: &str) -> String {
    if name.is_empty() {
        format!("{section}[{index}]")
    } else {
        format!("{section}[{name}]")
    }
}

fn require_non_empty(value: &str, path: &str, field: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(
            format!("{path}.{field}"),
            "must not be empty",
        ));
    }
    Ok(())
}

fn duration_millis(duration: Duration, path: &str, field: &str) -> Result<u64> {
    u64::try_from(duration.as_millis())
        .map_err(|_| Error::invalid(format!("{path}.{field}"), "is too long"))
}

fn positive_millis(duration: Option<Duration>, path: &str, field: &str) -> Result<u64> {
    let Some(duration) = duration else {
        return Ok(0);
    };
    let millis = duration_millis(duration, path, field)?;
    if millis == 0 {
        return Err(Error::invalid(
            format!("{path}.{field}"),
            "must be at least 1ms",
        ));
    }
    Ok(millis)
}

fn provider_object(provider: &ProviderConfig, path: &str) -> Result<pb::Provider> {
    require_non_empty(&provider.name, path, "name")?;
    require_non_empty(&provider.kind, path, "kind")?;
    let base_url = match &provider.base_url {
        Some(base_url) => {
            let parsed = url::Url::parse(base_url)
                .map_err(|error| Error::invalid(format!("{path}.base_url"), error.to_string()))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(Error::invalid(
                    format!("{path}.base_url"),
                    "must be an http or https URL",
                ));
            }
            base_url.clone()
        }
        None => String::new(),
    };
    let api_key = provider
        .api_key
        .as_ref()
        .map(|source| secret_ref(source, &format!("{path}.api_key")))
        .transpose()?;
    if api_key.is_some() && !provider.api_keys.is_empty() {
        return Err(Error::invalid(
            format!("{path}.api_keys"),
            "set either `api_key` or `api_keys`, not both",
        ));
    }
    let api_keys = provider
        .api_keys
        .iter()
        .map(|(id, source)| {
            if !is_key_id(id) {
                return Err(Error::invalid(
                    format!("{path}.api_keys"),
                    format!("`{id}` is not a key id: use letters, digits, `-` and `_`, up to 64"),
                ));
            }
            Ok((
                id.clone(),
                secret_ref(source, &format!("{path}.api_keys.{id}"))?,
            ))
        })
        .collect::<Result<_>>()?;
    let proxy_url = match &provider.proxy {
        Some(proxy) => {
            let parsed = url::Url::parse(proxy)
                .map_err(|error| Error::invalid(format!("{path}.proxy"), error.to_string()))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(Error::invalid(
                    format!("{path}.proxy"),
                    "must be an http:// or https:// proxy URL",
                ));
            }
            proxy.clone()
        }
        None => String::new(),
    };
    if let Some(bundle) = &provider.ca_bundle {
        require_non_empty(bundle, path, "ca_bundle")?;
    }
    let secrets = provider
        .secrets
        .iter()
        .map(|(name, source)| {
            require_non_empty(name, &format!("{path}.secrets"), "name")?;
            let reference = secret_ref(source, &format!("{path}.secrets.{name}"))?;
            Ok((name.clone(), reference))
        })
        .collect::<Result<_>>()?;
    let capacity = capacity(provider.capacity.as_ref(), path)?;
    Ok(pb::Provider {
        capacity,
        name: provider.name.clone(),
        kind: provider.kind.clone(),
        base_url,
        api_key,
        api_keys,
        timeout_ms: positive_millis(provider.timeout, path, "timeout")?,
        options: provider.options.clone(),
        secrets,
        meta: None,
        propagate_trace: provider
            .propagate_trace
            .unwrap_or_else(|| is_self_hosted_kind(&provider.kind)),
        proxy_url,
        ca_bundle_file: provider.ca_bundle.clone().unwrap_or_default(),
    })
}

/// A deployment's or provider's declared `capacity` at `path`.
fn capacity(capacity: Option<&CapacityConfig>, path: &str) -> Result<Option<pb::Capacity>> {
    let Some(capacity) = capacity else {
        return Ok(None);
    };
    Ok(Some(pb::Capacity {
        requests_per_minute: capacity.requests_per_minute,
        tokens_per_minute: capacity.tokens_per_minute,
        max_concurrency: capacity.max_concurrency,
        queue_timeout_ms: positive_millis(capacity.queue_timeout, path, "capacity.queue_timeout")?,
        max_queued: capacity.max_queued,
    }))
}

/// Whether `id` may name one of a provider's API keys: it is reported with
/// attempts and written to the ledger, so it stays short and plain.
fn is_key_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// Whether a provider kind names a server the operator runs themselves.
fn is_self_hosted_kind(kind: &str) -> bool {
    matches!(kind, "vllm" | "ollama" | "llamacpp")
}

fn secret_ref(source: &SecretSource, path: &str) -> Result<pb::SecretRef> {
    use pb::secret_ref::Source;
    let source = match (&source.env, &source.file, &source.credential) {
        (Some(name), None, None) if !name.is_empty() => Source::Env(name.clone()),
        (None, Some(file), None) => file
            .to_str()
            .filter(|file| !file.is_empty())
            .map(|file| Source::File(file.to_owned()))
            .ok_or_else(|| Error::invalid(path, "file path must be non-empty UTF-8"))?,
        // Whether the credential exists is checked against the stored ones.
        (None, None, Some(id)) if !id.is_empty() => Source::Credential(id.clone()),
        _ => {
            return Err(Error::invalid(
                path,
                "needs exactly one non-empty `env`, `file` or `credential`",
            ));
        }
    };
    Ok(pb::SecretRef {
        source: Some(source),
    })
}

fn deployment_object(
    deployment: &DeploymentConfig,
    path: &str,
    config: &StoredConfig,
) -> Result<pb::Deployment> {
    require_non_empty(&deployment.id, path, "id")?;
    require_provider(&deployment.provider, &format!("{path}.provider"), config)?;
    require_non_empty(&deployment.model, path, "model")?;
    let pricing = deployment
        .pricing
        .as_ref()
        .map(|pricing| pricing_object(pricing, &format!("{path}.pricing")))
        .transpose()?;
    let capacity = capacity(deployment.capacity.as_ref(), path)?;
    let lifecycle = match &deployment.lifecycle {
        Some(lifecycle) => {
            let sunset_date = match &lifecycle.sunset_date {
                Some(date) => {
                    if !is_iso_date(date) {
                        return Err(Error::invalid(
                            format!("{path}.lifecycle.sunset_date"),
                            "must be a date like 2027-01-31",
                        ));
                    }
                    date.clone()
                }
                None => String::new(),
            };
            Some(pb::Lifecycle {
                deprecated: lifecycle.deprecated,
                sunset_date,
                successor: lifecycle.successor.clone().unwrap_or_default(),
                // Only the control plane shifts, beside the config.
                shifted_at_ms: 0,
            })
        }
        None => None,
    };
    let capabilities = &deployment.capabilities;
    let timeout = timeout_policy(deployment.timeout.as_ref(), path)?;
    let probe_every_ms = positive_millis(
        deployment.probe.as_ref().map(|probe| probe.every),
        path,
        "probe.every",
    )?;
    Ok(pb::Deployment {
        id: deployment.id.clone(),
        provider: deployment.provider.clone(),
        upstream_model: deployment.model.clone(),
        context_window: deployment.context_window.unwrap_or(0),
        max_output_tokens: deployment.max_output_tokens.unwrap_or(0),
        pricing,
        capacity,
        // None declared: unknown, so routing assumes the model can.
        capabilities: (!capabilities.is_unset()).then_some(pb::Capabilities {
            tools: capabilities.tools,
            vision: capabilities.vision,
            json_schema: capabilities.json_schema,
            logprobs: capabilities.logprobs,
            multiple_choices: capabilities.multiple_choices,
        }),
        region: deployment.region.clone().unwrap_or_default(),
        self_hosted: deployment.self_hosted,
        lifecycle,
        meta: None,
        timeout,
        probe_every_ms,
        // Copied from the provider when a snapshot is published.
        provider_capacity: None,
    })
}

/// A route's or deployment's `timeout`: each bound at least 1 ms.
fn timeout_policy(
    timeout: Option<&TimeoutConfig>,
    path: &str,
) -> Result<Option<pb::TimeoutPolicy>> {
    let Some(timeout) = timeout else {
        return Ok(None);
    };
    Ok(Some(pb::TimeoutPolicy {
        request_ms: positive_millis(timeout.request, path, "timeout.request")?,
        first_token_ms: positive_millis(timeout.first_token, path, "timeout.first_token")?,
        connect_ms: positive_millis(timeout.connect, path, "timeout.connect")?,
        idle_ms: positive_millis(timeout.idle, path, "timeout.idle")?,
    }))
}

/// Whether `text` is a `YYYY-MM-DD` date with a plausible month and day.
fn is_iso_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let [year, month, day] = parts.as_slice() else {
        return false;
    };
    let digits =
        |part: &str, len: usize| part.len() == len && part.bytes().all(|b| b.is_ascii_digit());
    if !(digits(year, 4) && digits(month, 2) && digits(day, 2)) {
        return false;
    }
    let (month, day): (u32, u32) = (month.parse().unwrap_or(0), day.parse().unwrap_or(0));
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

fn require_provider(name: &str, path: &str, config: &StoredConfig) -> Result<()> {
    require_known(ObjectKind::Provider, name, path, config)
}

fn require_deployment(id: &str, path: &str, config: &StoredConfig) -> Result<()> {
    require_known(ObjectKind::Deployment, id, path, config)
}

/// Refuses `id` (at `path`) unless `config` holds an object of `kind` by it.
fn require_known(kind: ObjectKind, id: &str, path: &str, config: &StoredConfig) -> Result<()> {
    if !config.contains(kind, id) {
        return Err(Error::invalid(
            path,
            format!("names unknown {} `{id}`", kind.as_str()),
        ));
    }
    Ok(())
}

fn currency(text: &str, path: &str) -> Result<String> {
    if text.len() != 3 || !text.bytes().all(|byte| byte.is_ascii_uppercase()) {
        return Err(Error::invalid(
            format!("{path}.currency"),
            "must be a three-letter ISO 4217 code like `USD`",
        ));
    }
    Ok(text.to_owned())
}

fn pricing_object(pricing: &PricingConfig, path: &str) -> Result<pb::Pricing> {
    let currency = currency(&pricing.currency, path)?;
    let money = |text: &str, field: &str| -> Result<pb::Money> {
        let nanos = parse_price_nanos(text)
            .map_err(|reason| Error::invalid(format!("{path}.{field}"), reason))?;
        Ok(pb::Money {
            nanos,
            currency: currency.clone(),
        })
    };
    let optional = |text: &Option<String>, field: &str| -> Result<Option<pb::Money>> {
        text.as_deref().map(|text| money(text, field)).transpose()
    };
    let long_context = match &pricing.long_context {
        Some(tier) => Some(pb::LongContextPricing {
            above_prompt_tokens: tier.above_prompt_tokens,
            input_per_million: Some(money(
                &tier.input_per_million,
                "long_context.input_per_million",
            )?),
            output_per_million: Some(money(
                &tier.output_per_million,
                "long_context.output_per_million",
            )?),
        }),
        None => None,
    };
    Ok(pb::Pricing {
        input_per_million: Some(money(&pricing.input_per_million, "input_per_million")?),
        output_per_million: Some(money(&pricing.output_per_million, "output_per_million")?),
        cached_input_per_million: optional(
            &pricing.cached_input_per_million,
            "cached_input_per_million",
        )?,
        cache_write_per_million: optional(
            &pricing.cache_write_per_million,
            "cache_write_per_million",
        )?,
        long_context,
    })
}

fn owned_by(owned_by: Option<&String>, path: &str) -> Result<String> {
    match owned_by {
        Some(owned_by) => {
            require_non_empty(owned_by, path, "owned_by")?;
            Ok(owned_by.clone())
        }
        None => Ok(DEFAULT_OWNED_BY.to_owned()),
    }
}

fn cache_policy(ttl: Option<Duration>, path: &str, field: &str) -> Result<Option<pb::CachePolicy>> {
    let ttl_ms = positive_millis(ttl, path, field)?;
    Ok((ttl_ms > 0).then_some(pb::CachePolicy { ttl_ms }))
}

fn route_object(route: &RouteConfig, path: &str, config: &StoredConfig) -> Result<pb::Route> {
    require_non_empty(&route.name, path, "name")?;
    let strategy =
        crate::strategy::to_object(&route.strategy, &format!("{path}.strategy"), config)?;
    let timeout = timeout_policy(route.timeout.as_ref(), path)?;
    let cost_ceiling_nanos = match &route.cost_ceiling {
        Some(text) => {
            let nanos = parse_price_nanos(text)
                .map_err(|reason| Error::invalid(format!("{path}.cost_ceiling"), reason))?;
            if nanos == 0 {
                return Err(Error::invalid(
                    format!("{path}.cost_ceiling"),
                    "must be more than 0 (leave it out for no ceiling)",
                ));
            }
            nanos
        }
        None => 0,
    };
    let hedge = match &route.hedge {
        Some(hedge) => Some(pb::HedgePolicy {
            after_ms: positive_millis(hedge.after, path, "hedge.after")?,
            after_p95: hedge.after_p95,
        }),
        None => None,
    };
    Ok(pb::Route {
        name: route.name.clone(),
        strategy: Some(strategy),
        retry: route
            .retry
            .as_ref()
            .map(|retry| {
                Ok::<_, Error>(pb::RetryPolicy {
                    max_attempts: retry.max_attempts,
                    per_deployment: retry.per_deployment,
                    fallback_delay_ms: positive_millis(
                        retry.fallback_delay,
                        path,
                        "retry.fallback_delay",
                    )?,
                    larger_window: retry.larger_window,
                })
            })
            .transpose()?,
        timeout,
        cost_ceiling_nanos,
        shadow: match &route.shadow {
            Some(shadow) => {
                if !(1..=100).contains(&shadow.percent) {
                    return Err(Error::invalid(
                        format!("{path}.shadow.percent"),
                        "must be from 1 to 100",
                    ));
                }
                require_deployment(
                    &shadow.deployment,
                    &format!("{path}.shadow.deployment"),
                    config,
                )?;
                Some(pb::ShadowPolicy {
                    deployment: shadow.deployment.clone(),
                    percent: shadow.percent,
                })
            }
            None => None,
        },
        slo: match &route.slo {
            Some(slo) => Some(pb::SloPolicy {
                first_token_p95_ms: positive_millis(
                    slo.first_token_p95,
                    path,
                    "slo.first_token_p95",
                )?,
                total_p95_ms: positive_millis(slo.total_p95, path, "slo.total_p95")?,
            }),
            None => None,
        },
        tier_routes: route.by_tier.clone().into_iter().collect(),
        hedge,
        cache: cache_policy(
            route.cache.as_ref().map(|cache| cache.ttl),
            path,
            "cache.ttl",
        )?,
        owned_by: owned_by(route.owned_by.as_ref(), path)?,
        meta: None,
        rules: crate::rules::to_objects(&route.rules, path)?,
    })
}

/// Returns the id of the implicit deployment of one `models[]` target.
pub(crate) fn implicit_deployment_id(route: &str, provider: &str, model: &str) -> String {
    format!("{route}/{provider}/{model}")
}

/// Expands the `models[]` shorthand into a fallback route over one implicit
/// deployment per target, each at the model's price.
fn expand_model(
    model: &ModelConfig,
    path: &str,
    config: &StoredConfig,
) -> Result<(pb::Route, Vec<pb::Deployment>)> {
    require_non_empty(&model.name, path, "name")?;
    if model.targets.is_empty() {
        return Err(Error::invalid(
            format!("{path}.targets"),
            "needs at least one target",
        ));
    }
    let pricing = model
        .pricing
        .as_ref()
        .map(|pricing| pricing_object(pricing, &format!("{path}.pricing")))
        .transpose()?;
    let mut deployments = Vec::with_capacity(model.targets.len());
    for (index, target) in model.targets.iter().enumerate() {
        let target_path = format!("{path}.targets[{index}]");
        require_provider(&target.provider, &format!("{target_path}.provider"), config)?;
        require_non_empty(&target.model, &target_path, "model")?;
        deployments.push(pb::Deployment {
            id: implicit_deployment_id(&model.name, &target.provider, &target.model),
            provider: target.provider.clone(),
            upstream_model: target.model.clone(),
            pricing: pricing.clone(),
            ..pb::Deployment::default()
        });
    }
    let route = pb::Route {
        name: model.name.clone(),
        strategy: Some(pb::route::Strategy::Fallback(pb::FallbackStrategy {
            deployments: deployments.iter().map(|d| d.id.clone()).collect(),
        })),
        cache: cache_policy(model.cache_ttl, path, "cache_ttl")?,
        owned_by: owned_by(model.owned_by.as_ref(), path)?,
        ..pb::Route::default()
    };
    Ok((route, deployments))
}

fn team_object(team: &TeamConfig, path: &str) -> Result<pb::Team> {
    require_non_empty(&team.id, path, "id")?;
    Ok(pb::Team {
        id: team.id.clone(),
        name: team.name.clone().unwrap_or_default(),
        meta: None,
        tier: team.tier.clone().unwrap_or_default(),
        allowed_models: team.models.clone(),
    })
}

fn user_object(user: &UserConfig, path: &str, config: &StoredConfig) -> Result<pb::User> {
    require_non_empty(&user.id, path, "id")?;
    if let Some(team) = &user.team
        && !config.contains(ObjectKind::Team, team)
    {
        return Err(Error::invalid(
            format!("{path}.team"),
            format!("names unknown team `{team}`"),
        ));
    }
    Ok(pb::User {
        id: user.id.clone(),
        team_id: user.team.clone().unwrap_or_default(),
        name: user.name.clone().unwrap_or_default(),
        meta: None,
    })
}

fn key_object(
    key: &KeyConfig,
    path: &str,
    config: &impl Known,
    environment: &Environment,
) -> Result<pb::ApiKey> {
    require_non_empty(&key.id, path, "id")?;
    let mut hint = key.hint.clone().unwrap_or_default();
    let sha256 = match (&key.sha256, &key.secret) {
        (Some(hash), None) => normalize_sha256_hex(hash)
            .map_err(|reason| Error::invalid(format!("{path}.sha256"), reason))?,
        (None, Some(source)) => {
            let secret = source
                .resolve(environment)
                .map_err(|error| Error::invalid(format!("{path}.secret"), error.to_string()))?;
            hint = secret_hint(secret.expose());
            sha256_hex(secret.expose())
        }
        (None, None) => {
            return Err(Error::invalid(path, "needs `sha256` or `secret`"));
        }
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                path,
                "sets both `sha256` and `secret`; keep one",
            ));
        }
    };
    let mut seen = BTreeSet::new();
    for (index, model) in key.models.iter().enumerate() {
        let model_path = format!("{path}.models[{index}]");
        if !config.contains(ObjectKind::Route, model) {
            return Err(Error::invalid(
                model_path,
                format!("names unknown model `{model}`"),
            ));
        }
        if !seen.insert(model.as_str()) {
            return Err(Error::invalid(model_path, format!("lists `{model}` twice")));
        }
    }
    if let Some(user) = &key.user
        && !config.contains(ObjectKind::User, user)
    {
        return Err(Error::invalid(
            format!("{path}.user"),
            format!("names unknown user `{user}`"),
        ));
    }
    if let Some(team) = &key.team
        && !config.contains(ObjectKind::Team, team)
    {
        return Err(Error::invalid(
            format!("{path}.team"),
            format!("names unknown team `{team}`; declare it under `teams`"),
        ));
    }
    let expires_at = match &key.expires_at {
        Some(text) => crate::timestamp::parse_rfc3339_seconds(text).ok_or_else(|| {
            Error::invalid(
                format!("{path}.expires_at"),
                "must be an RFC 3339 time like 2027-01-31T00:00:00Z",
            )
        })?,
        None => 0,
    };
    Ok(pb::ApiKey {
        id: key.id.clone(),
        sha256,
        name: key.name.clone().unwrap_or_default(),
        team_id: key.team.clone().unwrap_or_default(),
        allowed_models: key.models.clone(),
        disabled: key.disabled,
        user_id: key.user.clone().unwrap_or_default(),
        meta: None,
        hint,
        expires_at,
        debug: key.debug,
        tier: key.tier.clone().unwrap_or_default(),
    })
}

/// Checks that a scope names a declared subject.
fn scope_object(scope: &ScopeConfig, path: &str, config: &impl Known) -> Result<pb::Scope> {
    use pb::scope::Subject;
    let (known, subject, what, id) = match scope {
        ScopeConfig {
            team: Some(id),
            user: None,
            key: None,
        } => (
            config.contains(ObjectKind::Team, id),
            Subject::TeamId(id.clone()),
            "team",
            id,
        ),
        ScopeConfig {
            team: None,
            user: Some(id),
            key: None,
        } => (
            config.contains(ObjectKind::User, id),
            Subject::UserId(id.clone()),
            "user",
            id,
        ),
        ScopeConfig {
            team: None,
            user: None,
            key: Some(id),
        } => (
            config.contains(ObjectKind::ApiKey, id),
            Subject::KeyId(id.clone()),
            "key",
            id,
        ),
        _ => {
            return Err(Error::invalid(
                format!("{path}.scope"),
                "needs exactly one of `team`, `user` or `key`",
            ));
        }
    };
    if !known {
        return Err(Error::invalid(
            format!("{path}.scope"),
            format!("names unknown {what} `{id}`"),
        ));
    }
    Ok(pb::Scope {
        subject: Some(subject),
    })
}

fn budget_object(budget: &BudgetConfig, path: &str, config: &impl Known) -> Result<pb::Budget> {
    require_non_empty(&budget.id, path, "id")?;
    let scope = scope_object(&budget.scope, path, config)?;
    let nanos = parse_price_nanos(&budget.limit)
        .map_err(|reason| Error::invalid(format!("{path}.limit"), reason))?;
    let period = match budget.period {
        BudgetPeriodConfig::Daily => pb::BudgetPeriod::Daily,
        BudgetPeriodConfig::Monthly => pb::BudgetPeriod::Monthly,
        BudgetPeriodConfig::Total => pb::BudgetPeriod::Total,
    };
    Ok(pb::Budget {
        id: budget.id.clone(),
        scope: Some(scope),
        limit: Some(pb::Money {
            nanos,
            currency: currency(&budget.currency, path)?,
        }),
        period: period as i32,
        meta: None,
    })
}

fn rate_limit_object(
    limit: &RateLimitConfig,
    path: &str,
    config: &impl Known,
) -> Result<pb::RateLimit> {
    require_non_empty(&limit.id, path, "id")?;
    let scope = scope_object(&limit.scope, path, config)?;
    if limit.requests_per_minute == 0 && limit.tokens_per_minute == 0 && limit.max_concurrency == 0
    {
        return Err(Error::invalid(
            path,
            "sets no limit: give requests_per_minute, tokens_per_minute or max_concurrency",
        ));
    }
    Ok(pb::RateLimit {
        id: limit.id.clone(),
        scope: Some(scope),
        requests_per_minute: limit.requests_per_minute,
        tokens_per_minute: limit.tokens_per_minute,
        max_concurrency: limit.max_concurrency,
        meta: None,
    })
}

#[cfg(test)]
mod tests {
    use switchyard_common::config::load_yaml;

    use super::*;
    use crate::StrategyConfig;

    const EXAMPLE: &str = r#"
providers:
  - name: mock
    kind: mock
  - name: openai
    kind: openai
    base_url: https://api.openai.com/v1
    api_key: {env: OPENAI_API_KEY}
    timeout: 60s
deployments:
  - id: openai-mini
    provider: openai
    model: gpt-4o-mini
    context_window: 128000
    pricing:
      input_per_million: "0.15"
      output_per_million: "0.60"
      cached_input_per_million: "0.075"
      long_context: {above_prompt_tokens: 100000, input_per_million: "0.30", output_per_million: "1.20"}
    capacity: {requests_per_minute: 500}
    capabilities: {tools: true, json_schema: true}
    region: us
    lifecycle: {deprecated: true, sunset_date: "2027-01-31", successor: demo/mock/mock-1}
routes:
  - name: smart
    strategy: {fallback: [openai-mini, demo/mock/mock-1]}
    cache: {ttl: 1m}
    timeout: {request: 30s}
models:
  - name: demo
    targets: [{provider: mock, model: mock-1}]
    cache_ttl: 5m
    pricing: {input_per_million: "0.15", output_per_million: "0.60"}
teams:
  - id: default
users:
  - id: alice
    team: default
keys:
  - id: demo
    name: Demo key
    team: default
    sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
  - id: from-env
    models: [demo]
    user: alice
    secret: {env: SWITCHYARD_DEMO_KEY}
budgets:
  - {id: team-monthly, scope: {team: default}, limit: "100.00", period: monthly}
rate_limits:
  - {id: alice-rpm, scope: {user: alice}, requests_per_minute: 60}
"#;

    fn environment() -> Environment {
        Environment::from([("SWITCHYARD_DEMO_KEY".to_owned(), "sk-demo".to_owned())])
    }

    fn example() -> Declarative {
        load_yaml("example.yaml", EXAMPLE, &Environment::new()).expect("example parses")
    }

    fn error_text(declarative: &Declarative) -> String {
        declarative
            .validate(&environment())
            .expect_err("config is invalid")
            .to_string()
    }

    fn object(config: &StoredConfig, kind: ObjectKind, id: &str) -> StoredObject {
        config
            .objects
            .get(&(kind, id.to_owned()))
            .cloned()
            .unwrap_or_else(|| panic!("{kind:?} {id} exists"))
    }

    #[test]
    fn example_parses_into_objects() {
        let config =
            StoredConfig::from_declarative(&example(), &environment()).expect("example is valid");
        let StoredObject::Provider(openai) = object(&config, ObjectKind::Provider, "openai") else {
            panic!("a provider");
        };
        assert_eq!(openai.timeout_ms, 60_000);
        let StoredObject::Deployment(mini) = object(&config, ObjectKind::Deployment, "openai-mini")
        else {
            panic!("a deployment");
        };
        let pricing = mini.pricing.expect("priced");
        assert_eq!(
            pricing.input_per_million.map(|m| m.nanos),
            Some(150_000_000)
        );
        assert_eq!(
            pricing.cached_input_per_million.map(|m| m.nanos),
            Some(75_000_000)
        );
        assert_eq!(
            pricing.long_context.map(|tier| tier.above_prompt_tokens),
            Some(100_000)
        );
        assert_eq!(
            mini.lifecycle.map(|l| l.sunset_date),
            Some("2027-01-31".to_owned())
        );
        let StoredObject::Route(demo) = object(&config, ObjectKind::Route, "demo") else {
            panic!("a route");
        };
        assert_eq!(demo.cache.map(|cache| cache.ttl_ms), Some(300_000));
        assert_eq!(demo.owned_by, "switchyard");
        let StoredObject::ApiKey(key) = object(&config, ObjectKind::ApiKey, "from-env") else {
            panic!("a key");
        };
        assert_eq!(key.sha256, sha256_hex("sk-demo"));
        assert_eq!(key.user_id, "alice");
        assert!(config.contains(ObjectKind::Budget, "team-monthly"));
        assert!(config.contains(ObjectKind::RateLimit, "alice-rpm"));
    }

    #[test]
    fn models_shorthand_is_a_route_over_implicit_deployments() {
        let config =
            StoredConfig::from_declarative(&example(), &environment()).expect("example is valid");
        let StoredObject::Deployment(implicit) =
            object(&config, ObjectKind::Deployment, "demo/mock/mock-1")
        else {
            panic!("a deployment");
        };
        assert_eq!(
            (implicit.provider.as_str(), implicit.upstream_model.as_str()),
            ("mock", "mock-1")
        );
        assert_eq!(
            implicit
                .pricing
                .and_then(|p| p.output_per_million)
                .map(|m| m.nanos),
            Some(600_000_000),
            "the model's price moves onto its deployments"
        );
        let StoredObject::Route(route) = object(&config, ObjectKind::Route, "demo") else {
            panic!("a route");
        };
        assert_eq!(
            route.strategy,
            Some(pb::route::Strategy::Fallback(pb::FallbackStrategy {
                deployments: vec!["demo/mock/mock-1".to_owned()],
            }))
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = "models: [{name: a, targets: [], colour: red}]";
        let error = load_yaml::<Declarative>("x.yaml", text, &Environment::new())
            .expect_err("unknown field");
        assert!(error.to_string().contains("colour"), "{error}");
        let text = "routes: [{name: a, strategy: {roulette: [x]}}]";
        let error = load_yaml::<Declarative>("x.yaml", text, &Environment::new())
            .expect_err("unknown strategy");
        assert!(error.to_string().contains("roulette"), "{error}");
    }

    #[test]
    fn unresolvable_provider_secret_is_fine() {
        // OPENAI_API_KEY is not in the environment: the adapters resolve it.
        assert!(example().validate(&environment()).is_ok());
    }

    #[test]
    fn a_cost_ceiling_and_timeouts_must_be_positive_and_exact() {
        for (ceiling, expected) in [("0", "more than 0"), ("0.1234567891", "decimal")] {
            let mut declarative = example();
            declarative.routes[0].cost_ceiling = Some(ceiling.to_owned());
            let text = error_text(&declarative);
            assert!(
                text.contains("routes[smart].cost_ceiling") && text.contains(expected),
                "{ceiling}: {text}"
            );
        }
        for (shadow, expected) in [
            (("nowhere", 5), "unknown deployment `nowhere`"),
            (("openai-mini", 0), "from 1 to 100"),
        ] {
            let mut declarative = example();
            declarative.routes[0].shadow = Some(crate::declarative::ShadowConfig {
                deployment: shadow.0.to_owned(),
                percent: shadow.1,
            });
            let text = error_text(&declarative);
            assert!(
                text.contains("routes[smart].shadow") && text.contains(expected),
                "{text}"
            );
        }
        let mut declarative = example();
        declarative.deployments[0].timeout = Some(TimeoutConfig {
            idle: Some(Duration::ZERO),
            ..TimeoutConfig::default()
        });
        let text = error_text(&declarative);
        assert!(
            text.contains("timeout.idle") && text.contains("at least 1ms"),
            "{text}"
        );
    }

    #[test]
    fn duplicate_names_are_named() {
        let mut declarative = example();
        declarative.providers.push(declarative.providers[0].clone());
        assert!(error_text(&declarative).contains("providers[mock]"));

        let mut declarative = example();
        declarative.models.push(declarative.models[0].clone());
        assert!(error_text(&declarative).contains("models[demo]"));

        let mut declarative = example();
        declarative.routes[0].name = "demo".to_owned();
        assert!(error_text(&declarative).contains("duplicate route name"));

        let mut declarative = example();
        declarative.keys[1].id = "demo".to_owned();
        assert!(error_text(&declarative).contains("duplicate key id"));
    }

    #[test]
    fn references_to_unknown_objects_are_named() {
        let mut declarative = example();
        declarative.models[0].targets[0].provider = "nope".to_owned();
        let error = error_text(&declarative);
        assert!(
            error.contains("models[demo].targets[0].provider") && error.contains("nope"),
            "{error}"
        );

        let mut declarative = example();
        declarative.deployments[0].provider = "nope".to_owned();
        assert!(error_text(&declarative).contains("deployments[openai-mini].provider"));

        let mut declarative = example();
        declarative.routes[0].strategy = StrategyConfig::fallback(vec!["ghost".to_owned()]);
        let error = error_text(&declarative);
        assert!(
            error.contains("routes[smart].strategy.fallback[0]") && error.contains("ghost"),
            "{error}"
        );

        let mut declarative = example();
        declarative.keys[1].user = Some("bob".to_owned());
        assert!(error_text(&declarative).contains("keys[from-env].user"));

        let mut declarative = example();
        declarative.budgets[0].scope = ScopeConfig {
            key: Some("ghost".to_owned()),
            ..ScopeConfig::default()
        };
        assert!(error_text(&declarative).contains("budgets[team-monthly].scope"));
        declarative.budgets[0].scope.team = Some("default".to_owned());
        assert!(error_text(&declarative).contains("exactly one"));
    }

    #[test]
    fn empty_strategy_and_targets_are_rejected() {
        let mut declarative = example();
        declarative.models[0].targets.clear();
        assert!(error_text(&declarative).contains("models[demo].targets"));
        let mut declarative = example();
        declarative.routes[0].strategy = StrategyConfig::fallback(Vec::new());
        assert!(error_text(&declarative).contains("routes[smart].strategy.fallback"));
        declarative.routes[0].strategy = StrategyConfig::default();
        assert!(error_text(&declarative).contains("needs one strategy"));
    }

    #[test]
    fn empty_kind_is_rejected() {
        let mut declarative = example();
        declarative.providers[1].kind = String::new();
        assert!(error_text(&declarative).contains("providers[openai].kind"));
    }

    #[test]
    fn key_needs_exactly_one_of_hash_and_secret() {
        let mut declarative = example();
        declarative.keys[0].secret = Some(SecretSource::env("SWITCHYARD_DEMO_KEY"));
        assert!(error_text(&declarative).contains("both"));

        let mut declarative = example();
        declarative.keys[0].sha256 = None;
        assert!(error_text(&declarative).contains("keys[demo]"));
    }

    #[test]
    fn bad_sha256_is_named() {
        let mut declarative = example();
        declarative.keys[0].sha256 = Some("xyz".to_owned());
        assert!(error_text(&declarative).contains("keys[demo].sha256"));
    }

    #[test]
    fn unresolvable_key_secret_names_the_variable_not_a_value() {
        let error = example()
            .validate(&Environment::new())
            .expect_err("secret is missing")
            .to_string();
        assert!(
            error.contains("keys[from-env].secret") && error.contains("SWITCHYARD_DEMO_KEY"),
            "{error}"
        );
    }

    #[test]
    fn two_keys_with_one_secret_are_rejected() {
        let mut declarative = example();
        declarative.keys[0].sha256 = Some(sha256_hex("sk-demo"));
        assert!(error_text(&declarative).contains("same secret"));
    }

    #[test]
    fn key_naming_unknown_model_is_named() {
        let mut declarative = example();
        declarative.keys[1].models = vec!["gpt-9".to_owned()];
        assert!(error_text(&declarative).contains("keys[from-env].models[0]"));
    }

    #[test]
    fn price_with_ten_decimals_is_named() {
        let mut declarative = example();
        if let Some(pricing) = declarative.models[0].pricing.as_mut() {
            pricing.input_per_million = "0.1234567891".to_owned();
        }
        let error = error_text(&declarative);
        assert!(
            error.contains("models[demo].pricing.input_per_million"),
            "{error}"
        );
    }

    #[test]
    fn several_api_keys_are_kept_by_id_and_refused_beside_one() {
        let mut declarative = example();
        declarative.providers[1].api_key = None;
        declarative.providers[1].api_keys = std::collections::BTreeMap::from([
            ("primary".to_owned(), SecretSource::env("OPENAI_KEY_A")),
            ("batch".to_owned(), SecretSource::credential("openai-batch")),
        ]);
        let config = StoredConfig::from_declarative(&declarative, &environment())
            .expect("two keys are valid");
        let Some(StoredObject::Provider(openai)) = config.get(ObjectKind::Provider, "openai")
        else {
            panic!("the provider is stored");
        };
        assert_eq!(openai.api_keys.len(), 2);
        assert!(openai.api_key.is_none());

        declarative.providers[1].api_key = Some(SecretSource::env("OPENAI_API_KEY"));
        assert!(error_text(&declarative).contains("providers[openai].api_keys"));

        let mut declarative = example();
        declarative.providers[1].api_key = None;
        declarative.providers[1].api_keys =
            std::collections::BTreeMap::from([("has space".to_owned(), SecretSource::env("K"))]);
        let error = error_text(&declarative);
        assert!(error.contains("`has space` is not a key id"), "{error}");
    }

    #[test]
    fn bad_base_url_currency_and_date_are_named() {
        let mut declarative = example();
        declarative.providers[1].base_url = Some("ftp://x".to_owned());
        assert!(error_text(&declarative).contains("providers[openai].base_url"));

        let mut declarative = example();
        declarative.providers[1].proxy = Some("socks5://proxy:1080".to_owned());
        assert!(error_text(&declarative).contains("providers[openai].proxy"));

        let mut declarative = example();
        if let Some(pricing) = declarative.models[0].pricing.as_mut() {
            pricing.currency = "usd".to_owned();
        }
        assert!(error_text(&declarative).contains("pricing.currency"));

        let mut declarative = example();
        if let Some(lifecycle) = declarative.deployments[0].lifecycle.as_mut() {
            lifecycle.sunset_date = Some("soon".to_owned());
        }
        assert!(error_text(&declarative).contains("lifecycle.sunset_date"));
    }

    #[test]
    fn rate_limit_without_any_limit_is_rejected() {
        let mut declarative = example();
        declarative.rate_limits[0].requests_per_minute = 0;
        assert!(error_text(&declarative).contains("rate_limits[alice-rpm]"));
    }
}

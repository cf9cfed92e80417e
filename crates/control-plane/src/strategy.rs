//! A route's strategy between its file form ([`StrategyConfig`]) and its
//! published form: a `fallback` list as it always was, and every other
//! strategy (or several tiers of them) as a `TieredStrategy`.

use std::collections::BTreeSet;

use switchyard_proto::v1 as pb;

use crate::{
    Error, Result,
    declarative::{ScoreConfig, StickyConfig, StrategyConfig, WeightedConfig},
    objects::{ObjectKind, StoredConfig},
};

/// Validates `strategy` (at `path`, e.g. `routes[chat].strategy`) against
/// the deployments of `config`: exactly one strategy per tier, known
/// deployments, none listed twice in the route, positive weights.
pub(crate) fn to_object(
    strategy: &StrategyConfig,
    path: &str,
    config: &StoredConfig,
) -> Result<pb::route::Strategy> {
    let mut seen = BTreeSet::new();
    if let Some(tiers) = &strategy.tiers {
        // `tiers` must be the only strategy set.
        one_kind(strategy, path)?;
        if tiers.is_empty() {
            return Err(Error::invalid(
                format!("{path}.tiers"),
                "needs at least one tier",
            ));
        }
        let tiers = tiers
            .iter()
            .enumerate()
            .map(|(index, tier)| {
                let tier_path = format!("{path}.tiers[{index}]");
                if tier.tiers.is_some() {
                    return Err(Error::invalid(
                        format!("{tier_path}.tiers"),
                        "tiers do not nest",
                    ));
                }
                tier_object(tier, &tier_path, config, &mut seen)
            })
            .collect::<Result<_>>()?;
        return Ok(pb::route::Strategy::Tiered(pb::TieredStrategy { tiers }));
    }
    let tier = tier_object(strategy, path, config, &mut seen)?;
    if tier.kind == pb::TierKind::Priority as i32 {
        return Ok(pb::route::Strategy::Fallback(pb::FallbackStrategy {
            deployments: tier.deployments,
        }));
    }
    Ok(pb::route::Strategy::Tiered(pb::TieredStrategy {
        tiers: vec![tier],
    }))
}

/// The name of the one strategy `strategy` sets; refuses none or several.
fn one_kind(strategy: &StrategyConfig, path: &str) -> Result<&'static str> {
    let set: Vec<&'static str> = [
        ("fallback", strategy.fallback.is_some()),
        ("weighted", strategy.weighted.is_some()),
        ("latency", strategy.latency.is_some()),
        ("cost", strategy.cost.is_some()),
        ("score", strategy.score.is_some()),
        ("tiers", strategy.tiers.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, is_set)| is_set.then_some(name))
    .collect();
    match set.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::invalid(
            path,
            "needs one strategy: fallback, weighted, latency, cost, score or tiers \
             (e.g. `{fallback: [deployment-a, deployment-b]}`)",
        )),
        several => Err(Error::invalid(
            path,
            format!("sets {}: a strategy is exactly one", several.join(" and ")),
        )),
    }
}

/// One tier: its kind, its deployments checked, and its settings.
fn tier_object(
    strategy: &StrategyConfig,
    path: &str,
    config: &StoredConfig,
    seen: &mut BTreeSet<String>,
) -> Result<pb::StrategyTier> {
    let kind = one_kind(strategy, path)?;
    let field = format!("{path}.{kind}");
    let mut tier = pb::StrategyTier::default();
    let deployments: Vec<String> = match kind {
        "fallback" | "latency" | "cost" => {
            tier.kind = match kind {
                "fallback" => pb::TierKind::Priority,
                "latency" => pb::TierKind::Latency,
                _ => pb::TierKind::Cost,
            } as i32;
            strategy
                .fallback
                .as_ref()
                .or(strategy.latency.as_ref())
                .or(strategy.cost.as_ref())
                .cloned()
                .unwrap_or_default()
        }
        "weighted" => {
            let WeightedConfig {
                deployments,
                sticky,
            } = strategy.weighted.as_ref().expect("set");
            tier.kind = pb::TierKind::Weighted as i32;
            tier.sticky = match sticky {
                None => pb::StickyBy::None,
                Some(StickyConfig::User) => pb::StickyBy::User,
                Some(StickyConfig::Key) => pb::StickyBy::Key,
                Some(StickyConfig::Header) => pb::StickyBy::Header,
            } as i32;
            for (id, weight) in deployments {
                if *weight == 0 {
                    return Err(Error::invalid(
                        format!("{field}.deployments.{id}"),
                        "a weight must be positive; leave the deployment out instead",
                    ));
                }
            }
            tier.weights = deployments.values().copied().collect();
            deployments.keys().cloned().collect()
        }
        "score" => {
            let ScoreConfig {
                deployments,
                cost_weight,
                latency_weight,
            } = strategy.score.as_ref().expect("set");
            let valid = |weight: f64| weight.is_finite() && weight >= 0.0;
            if !valid(*cost_weight) || !valid(*latency_weight) {
                return Err(Error::invalid(
                    field,
                    "`cost_weight` and `latency_weight` must be zero or positive",
                ));
            }
            if *cost_weight + *latency_weight <= 0.0 {
                return Err(Error::invalid(
                    field,
                    "`cost_weight` and `latency_weight` cannot both be zero",
                ));
            }
            tier.kind = pb::TierKind::Score as i32;
            tier.cost_weight = *cost_weight;
            tier.latency_weight = *latency_weight;
            deployments.clone()
        }
        _ => unreachable!("tiers are handled by the caller"),
    };
    if deployments.is_empty() {
        return Err(Error::invalid(field, "needs at least one deployment"));
    }
    let list_field = if kind == "weighted" || kind == "score" {
        format!("{field}.deployments")
    } else {
        field
    };
    for (index, id) in deployments.iter().enumerate() {
        if !config.contains(ObjectKind::Deployment, id) {
            return Err(Error::invalid(
                format!("{list_field}[{index}]"),
                format!("names unknown deployment `{id}`"),
            ));
        }
        if !seen.insert(id.clone()) {
            return Err(Error::invalid(
                format!("{list_field}[{index}]"),
                format!("lists `{id}` twice"),
            ));
        }
    }
    tier.deployments = deployments;
    Ok(tier)
}

/// The file form of a published strategy.
pub(crate) fn to_config(strategy: Option<&pb::route::Strategy>) -> StrategyConfig {
    match strategy {
        Some(pb::route::Strategy::Fallback(fallback)) => {
            StrategyConfig::fallback(fallback.deployments.clone())
        }
        Some(pb::route::Strategy::Tiered(tiered)) => match tiered.tiers.as_slice() {
            [one] => tier_config(one),
            tiers => StrategyConfig {
                tiers: Some(tiers.iter().map(tier_config).collect()),
                ..StrategyConfig::default()
            },
        },
        None => StrategyConfig::default(),
    }
}

fn tier_config(tier: &pb::StrategyTier) -> StrategyConfig {
    let deployments = tier.deployments.clone();
    let mut config = StrategyConfig::default();
    match pb::TierKind::try_from(tier.kind).unwrap_or(pb::TierKind::Priority) {
        pb::TierKind::Unspecified | pb::TierKind::Priority => config.fallback = Some(deployments),
        pb::TierKind::Latency => config.latency = Some(deployments),
        pb::TierKind::Cost => config.cost = Some(deployments),
        pb::TierKind::Weighted => {
            config.weighted = Some(WeightedConfig {
                deployments: deployments.into_iter().zip(tier.weights.clone()).collect(),
                sticky: match pb::StickyBy::try_from(tier.sticky).unwrap_or(pb::StickyBy::None) {
                    pb::StickyBy::None => None,
                    pb::StickyBy::User => Some(StickyConfig::User),
                    pb::StickyBy::Key => Some(StickyConfig::Key),
                    pb::StickyBy::Header => Some(StickyConfig::Header),
                },
            });
        }
        pb::TierKind::Score => {
            config.score = Some(ScoreConfig {
                deployments,
                cost_weight: tier.cost_weight,
                latency_weight: tier.latency_weight,
            });
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(ids: &[&str]) -> StoredConfig {
        let mut config = StoredConfig::default();
        for id in ids {
            config.objects.insert(
                (ObjectKind::Deployment, (*id).to_owned()),
                crate::objects::StoredObject::Deployment(pb::Deployment {
                    id: (*id).to_owned(),
                    provider: "p".to_owned(),
                    ..pb::Deployment::default()
                }),
            );
        }
        config
    }

    fn round_trip(yaml: &str) -> (pb::route::Strategy, StrategyConfig) {
        let strategy: StrategyConfig = serde_yaml::from_str(yaml).expect("YAML");
        let object = to_object(
            &strategy,
            "routes[r].strategy",
            &config_with(&["a", "b", "c"]),
        )
        .expect("valid");
        let back = to_config(Some(&object));
        assert_eq!(back, strategy, "{yaml}");
        (object, back)
    }

    #[test]
    fn each_strategy_round_trips() {
        let (fallback, _) = round_trip("{fallback: [a, b]}");
        assert!(matches!(fallback, pb::route::Strategy::Fallback(_)));
        round_trip("{weighted: {deployments: {a: 90, b: 10}, sticky: user}}");
        round_trip("{latency: [a, b]}");
        round_trip("{cost: [c, a]}");
        round_trip("{score: {deployments: [a, b], cost_weight: 0.2, latency_weight: 0.8}}");
        let (tiered, _) = round_trip("{tiers: [{latency: [a, b]}, {fallback: [c]}]}");
        let pb::route::Strategy::Tiered(tiered) = tiered else {
            panic!("tiers");
        };
        assert_eq!(tiered.tiers.len(), 2);
        assert_eq!(tiered.tiers[0].kind, pb::TierKind::Latency as i32);
    }

    #[test]
    fn bad_strategies_are_refused_naming_the_field() {
        let config = config_with(&["a", "b"]);
        let refused = |yaml: &str| {
            let strategy: StrategyConfig = serde_yaml::from_str(yaml).expect("YAML");
            to_object(&strategy, "routes[r].strategy", &config)
                .expect_err(yaml)
                .to_string()
        };
        assert!(refused("{}").contains("needs one strategy"));
        assert!(refused("{fallback: [a], latency: [b]}").contains("fallback and latency"));
        assert!(refused("{latency: [a, ghost]}").contains("routes[r].strategy.latency[1]"));
        assert!(
            refused("{tiers: [{latency: [a]}, {fallback: [a]}]}")
                .contains("routes[r].strategy.tiers[1].fallback[0]")
        );
        assert!(refused("{weighted: {deployments: {a: 0, b: 1}}}").contains("deployments.a"));
        assert!(
            refused("{score: {deployments: [a], cost_weight: 0, latency_weight: 0}}")
                .contains("cannot both be zero")
        );
        assert!(refused("{tiers: []}").contains("at least one tier"));
        assert!(refused("{tiers: [{tiers: [{fallback: [a]}]}]}").contains("do not nest"));
    }
}

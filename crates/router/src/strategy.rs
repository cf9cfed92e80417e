//! Strategies: how one tier of a route orders the deployments still in the
//! plan.
//!
//! - priority: as listed;
//! - weighted: one drawn by weight (from a hash of the sticky attribute,
//!   else of the request id), then the others by weight;
//! - latency: lowest expected time to first token first; a deployment not
//!   yet measured here goes first, so it gets measured;
//! - cost: lowest expected cost of this request first;
//! - score: lowest `cost_weight × cost/max cost + latency_weight ×
//!   latency/max latency` first.
//!
//! Ties keep the listed order, so a strategy with nothing to tell
//! deployments apart behaves like priority.

use std::{
    cmp::Ordering,
    hash::{DefaultHasher, Hash, Hasher},
    sync::Arc,
};

use switchyard_proto::v1::{
    Deployment, RequestContext, StickyBy, StrategyTier, TierKind, route::Strategy,
};

use crate::{estimate::Estimate, health::Health};

/// How a tier orders its deployments.
#[derive(Debug, Clone, PartialEq)]
pub enum Order {
    /// As listed.
    Priority,
    /// By weight, each weight in the order of the tier's deployments.
    Weighted {
        /// Each deployment's share.
        weights: Vec<u32>,
        /// What keeps a caller on one deployment.
        sticky: StickyBy,
    },
    /// Lowest expected time to first token first.
    Latency,
    /// Lowest expected cost first.
    Cost,
    /// Lowest weighted, normalized cost and latency first.
    Score {
        /// Weight of cost.
        cost_weight: f64,
        /// Weight of latency.
        latency_weight: f64,
    },
}

impl Order {
    /// The strategy's name in decision records.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Priority => "priority",
            Self::Weighted { .. } => "weighted",
            Self::Latency => "latency",
            Self::Cost => "cost",
            Self::Score { .. } => "score",
        }
    }
}

/// One tier of a route.
#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    /// How it orders its deployments.
    pub order: Order,
    /// Deployment ids, as listed.
    pub deployments: Vec<String>,
}

/// The tiers of a published strategy.
pub fn tiers_of(strategy: Option<Strategy>) -> Vec<Tier> {
    match strategy {
        Some(Strategy::Fallback(fallback)) => vec![Tier {
            order: Order::Priority,
            deployments: fallback.deployments,
        }],
        Some(Strategy::Tiered(tiered)) => tiered.tiers.into_iter().map(tier_of).collect(),
        None => Vec::new(),
    }
}

fn tier_of(tier: StrategyTier) -> Tier {
    let order = match TierKind::try_from(tier.kind).unwrap_or(TierKind::Priority) {
        TierKind::Unspecified | TierKind::Priority => Order::Priority,
        TierKind::Weighted => Order::Weighted {
            weights: tier.weights,
            sticky: StickyBy::try_from(tier.sticky).unwrap_or(StickyBy::None),
        },
        TierKind::Latency => Order::Latency,
        TierKind::Cost => Order::Cost,
        TierKind::Score => Order::Score {
            cost_weight: tier.cost_weight,
            latency_weight: tier.latency_weight,
        },
    };
    Tier {
        order,
        deployments: tier.deployments,
    }
}

/// What a strategy may look at.
pub struct Inputs<'a> {
    /// Who is asking (sticky attributes, request id).
    pub context: &'a RequestContext,
    /// Latency seen so far.
    pub health: &'a Health,
    /// The request's expected size.
    pub estimate: &'a Estimate,
}

/// Orders `candidates`, the deployments of `tier` still in the plan (in
/// the tier's order), by the tier's strategy.
pub fn order(tier: &Tier, candidates: &mut [Arc<Deployment>], inputs: &Inputs<'_>) {
    match &tier.order {
        Order::Priority => {}
        Order::Weighted { weights, sticky } => {
            let weight_of = |deployment: &Deployment| {
                tier.deployments
                    .iter()
                    .position(|id| *id == deployment.id)
                    .and_then(|index| weights.get(index).copied())
                    .unwrap_or(0)
            };
            // Heaviest first, then the drawn one moved to the front.
            candidates.sort_by_key(|deployment| std::cmp::Reverse(weight_of(deployment)));
            let total: u64 = candidates.iter().map(|d| u64::from(weight_of(d))).sum();
            if total == 0 {
                return;
            }
            let mut point = draw(inputs.context, *sticky) % total;
            let chosen = candidates
                .iter()
                .position(|deployment| {
                    let weight = u64::from(weight_of(deployment));
                    if point < weight {
                        true
                    } else {
                        point -= weight;
                        false
                    }
                })
                .unwrap_or(0);
            candidates[..=chosen].rotate_right(1);
        }
        Order::Latency => {
            let latency = |d: &Deployment| {
                inputs
                    .health
                    .expected_ttft(d)
                    .map_or(0.0, |t| t.as_secs_f64())
            };
            sort_by_score(candidates, latency);
        }
        Order::Cost => sort_by_score(candidates, |d| inputs.estimate.cost_nanos(d)),
        Order::Score {
            cost_weight,
            latency_weight,
        } => {
            let latency = |d: &Deployment| {
                inputs
                    .health
                    .expected_ttft(d)
                    .map_or(0.0, |t| t.as_secs_f64())
            };
            let cost = |d: &Deployment| inputs.estimate.cost_nanos(d);
            let most = |value: &dyn Fn(&Deployment) -> f64| {
                candidates.iter().map(|d| value(d)).fold(0.0_f64, f64::max)
            };
            let (most_cost, most_latency) = (most(&cost), most(&latency));
            let normalized = |value: f64, most: f64| if most > 0.0 { value / most } else { 0.0 };
            sort_by_score(candidates, |d| {
                cost_weight * normalized(cost(d), most_cost)
                    + latency_weight * normalized(latency(d), most_latency)
            });
        }
    }
}

/// Sorts ascending by `score`, keeping the listed order among equals.
fn sort_by_score(candidates: &mut [Arc<Deployment>], score: impl Fn(&Deployment) -> f64) {
    candidates.sort_by(|a, b| score(a).partial_cmp(&score(b)).unwrap_or(Ordering::Equal));
}

/// The number a weighted draw is made from: a hash of the sticky attribute
/// when the tier has one and the request carries it, else of the request
/// id (random per request).
fn draw(context: &RequestContext, sticky: StickyBy) -> u64 {
    let attribute = match sticky {
        StickyBy::User if !context.end_user.is_empty() => Some(&context.end_user),
        StickyBy::User if !context.user_id.is_empty() => Some(&context.user_id),
        StickyBy::Key if !context.key_id.is_empty() => Some(&context.key_id),
        StickyBy::Header if !context.affinity.is_empty() => Some(&context.affinity),
        _ => None,
    };
    let mut hasher = DefaultHasher::new();
    attribute.unwrap_or(&context.request_id).hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;
    use switchyard_proto::v1::{Money, Pricing};

    use super::*;
    use crate::breaker::BreakerConfig;

    fn deployment(id: &str, input_nanos_per_million: i64) -> Arc<Deployment> {
        Arc::new(Deployment {
            id: id.to_owned(),
            provider: "p".to_owned(),
            pricing: Some(Pricing {
                input_per_million: Some(Money {
                    nanos: input_nanos_per_million,
                    currency: "USD".to_owned(),
                }),
                output_per_million: Some(Money {
                    nanos: input_nanos_per_million * 4,
                    currency: "USD".to_owned(),
                }),
                ..Pricing::default()
            }),
            ..Deployment::default()
        })
    }

    fn ids(candidates: &[Arc<Deployment>]) -> Vec<&str> {
        candidates.iter().map(|d| d.id.as_str()).collect()
    }

    fn context(request_id: &str) -> RequestContext {
        RequestContext {
            request_id: request_id.to_owned(),
            ..RequestContext::default()
        }
    }

    fn tier(order: Order, deployments: &[&str]) -> Tier {
        Tier {
            order,
            deployments: deployments.iter().map(|id| (*id).to_owned()).collect(),
        }
    }

    fn answered(health: &Health, deployment: &Deployment, ttft_ms: u64) {
        let ticket = health.admit(deployment).expect("admitted");
        health.record(deployment, ticket, Ok(Duration::from_millis(ttft_ms)));
    }

    #[test]
    fn latency_puts_the_fastest_first_and_the_unmeasured_before_all() {
        let health = Health::new(BreakerConfig::default());
        let (a, b, c) = (deployment("a", 1), deployment("b", 1), deployment("c", 1));
        answered(&health, &a, 300);
        answered(&health, &b, 100);
        let estimate = Estimate::default();
        let inputs = Inputs {
            context: &context("r"),
            health: &health,
            estimate: &estimate,
        };
        let mut candidates = vec![a.clone(), b.clone()];
        order(&tier(Order::Latency, &["a", "b"]), &mut candidates, &inputs);
        assert_eq!(ids(&candidates), ["b", "a"]);
        let mut candidates = vec![a, b, c];
        order(
            &tier(Order::Latency, &["a", "b", "c"]),
            &mut candidates,
            &inputs,
        );
        assert_eq!(ids(&candidates), ["c", "b", "a"]);
    }

    #[test]
    fn cost_puts_the_cheapest_for_this_request_first() {
        let health = Health::new(BreakerConfig::default());
        let estimate = Estimate {
            prompt_tokens: 1000,
            output_tokens: 100,
        };
        let inputs = Inputs {
            context: &context("r"),
            health: &health,
            estimate: &estimate,
        };
        let mut candidates = vec![
            deployment("dear", 10_000_000_000),
            deployment("cheap", 150_000_000),
            deployment("mid", 2_500_000_000),
        ];
        order(
            &tier(Order::Cost, &["dear", "cheap", "mid"]),
            &mut candidates,
            &inputs,
        );
        assert_eq!(ids(&candidates), ["cheap", "mid", "dear"]);
        // Score with all weight on cost agrees; all on latency keeps order.
        let score = |cost_weight, latency_weight| Order::Score {
            cost_weight,
            latency_weight,
        };
        order(
            &tier(score(1.0, 0.0), &["dear", "cheap", "mid"]),
            &mut candidates,
            &inputs,
        );
        assert_eq!(ids(&candidates), ["cheap", "mid", "dear"]);
    }

    #[test]
    fn a_sticky_weighted_split_keeps_a_user_on_one_deployment() {
        let health = Health::new(BreakerConfig::default());
        let estimate = Estimate::default();
        let split = tier(
            Order::Weighted {
                weights: vec![50, 50],
                sticky: StickyBy::User,
            },
            &["a", "b"],
        );
        let first_of = |request_id: &str, user: &str| {
            let context = RequestContext {
                end_user: user.to_owned(),
                ..context(request_id)
            };
            let inputs = Inputs {
                context: &context,
                health: &health,
                estimate: &estimate,
            };
            let mut candidates = vec![deployment("a", 1), deployment("b", 1)];
            order(&split, &mut candidates, &inputs);
            candidates[0].id.clone()
        };
        for user in ["alice", "bob", "carol", "dave"] {
            let first = first_of("r-0", user);
            assert!((1..50).all(|n| first_of(&format!("r-{n}"), user) == first));
        }
        // Without a user, requests are drawn afresh: both are chosen.
        let chosen: std::collections::BTreeSet<String> =
            (0..50).map(|n| first_of(&format!("r-{n}"), "")).collect();
        assert_eq!(chosen.len(), 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// Over many requests, each deployment leads about its share.
        #[test]
        fn the_weighted_split_converges_to_its_weights(
            weights in proptest::collection::vec(1_u32..100, 2..5),
        ) {
            let health = Health::new(BreakerConfig::default());
            let estimate = Estimate::default();
            let names: Vec<String> = (0..weights.len()).map(|i| format!("d{i}")).collect();
            let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let split = tier(
                Order::Weighted { weights: weights.clone(), sticky: StickyBy::None },
                &name_refs,
            );
            let requests = 20_000;
            let mut led = vec![0_u32; weights.len()];
            for _ in 0..requests {
                let context = context(&uuid::Uuid::now_v7().to_string());
                let inputs = Inputs { context: &context, health: &health, estimate: &estimate };
                let mut candidates: Vec<_> = names.iter().map(|id| deployment(id, 1)).collect();
                order(&split, &mut candidates, &inputs);
                let index = names.iter().position(|id| *id == candidates[0].id).expect("known");
                led[index] += 1;
            }
            let total: u32 = weights.iter().sum();
            for (index, weight) in weights.iter().enumerate() {
                let expected = f64::from(*weight) / f64::from(total);
                let seen = f64::from(led[index]) / f64::from(requests);
                prop_assert!((seen - expected).abs() < 0.03, "{} led {} of the time, weight share {}", names[index], seen, expected);
            }
        }
    }
}

//! `plan`: which deployments a request may go to, in which order, and why
//! each deployment the route names was left out: the decision record.
//!
//! The steps run in one order, and the record names the step that removed
//! each deployment:
//! 1. `policy`: the route must exist and the key may use it; then its
//!    `rules`, in order: the first that matches the request sends it to its
//!    route instead;
//! 2. `snapshot`: a deployment the snapshot does not hold (a race between
//!    config writes) is left out;
//! 3. `lifecycle`: past its sunset, a deployment is replaced by its
//!    successor;
//! 4. `constraints`: hard constraints ([`Needs`]): capabilities, the
//!    context window and the route's cost ceiling;
//! 5. `health`: a deployment whose circuit breaker is open;
//! 6. the strategy of each tier orders what is left.
//!
//! Tiers by key, the budget shift and residency take their places in this
//! order as they are built. No later step, retry or
//! fallback relaxes a constraint: attempts only ever go down this list.

use std::sync::Arc;

use switchyard_common::{ErrorClass, ServiceError};
use switchyard_proto::v1::{ChatRequest, Decision, Deployment, RequestContext, SkippedDeployment};

use crate::{
    constraints::{Needs, over_cost_ceiling},
    health::Health,
    lifecycle,
    route_table::{Route, RouteTable},
    strategy::{self, Inputs},
};

/// Most successors followed from one deployment past its sunset.
const MAX_SUCCESSOR_HOPS: usize = 8;

/// Where one request may go.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The route the request named.
    pub route: Arc<Route>,
    /// Deployments to try, in order.
    pub candidates: Vec<Arc<Deployment>>,
    /// Version of the snapshot the plan was made from.
    pub snapshot_version: u64,
    /// The decision record so far: strategies, order, deployments left out.
    pub decision: Decision,
    /// For candidates whose lifecycle names a successor, that successor
    /// (when it meets the request's constraints and its breaker admits):
    /// tried next if the provider no longer knows the candidate's model.
    pub successors: Vec<(Arc<Deployment>, Arc<Deployment>)>,
    /// The request's estimated tokens, prompt and output, that an attempt
    /// reserves of its deployment's capacity.
    pub estimated_tokens: u32,
    /// Of those, the prompt's: what a request cut short before the provider
    /// reported usage is charged for when its text is no longer at hand.
    pub prompt_tokens: u32,
    /// The deployment a copy of this request goes to, when the route's
    /// shadow traffic picked it (its answer is recorded, never returned).
    pub shadow: Option<Arc<Deployment>>,
}

/// Plans a request for route `model` under `table`: the route must exist
/// and the caller's key must be allowed to use it (both refused alike, as
/// OpenAI does, so a restricted key cannot probe which models exist), and
/// at least one of its deployments must pass every step. When none does,
/// the error explains the most: an outage when breakers removed any, else
/// what the request needs that no deployment has.
pub fn plan(
    table: Option<&RouteTable>,
    health: &Health,
    context: &RequestContext,
    model: &str,
    needs: &Needs,
    request: Option<&ChatRequest>,
) -> Result<Plan, ServiceError> {
    let table = table.ok_or_else(|| {
        ServiceError::new(
            ErrorClass::ServiceUnavailable,
            "The gateway is starting; try again shortly.",
        )
    })?;
    let route = table
        .route(model)
        .filter(|_| table.key_may_use(&context.key_id, model))
        .cloned()
        .ok_or_else(|| {
            ServiceError::new(
                ErrorClass::NotFound,
                format!("The model `{model}` does not exist or you do not have access to it."),
            )
            .with_param("model")
        })?;
    let tier = table.key_tier(&context.key_id);
    // Rules: the first that matches sends the request to its route.
    let (route, rule) = match request.filter(|_| !route.rules.is_empty()) {
        Some(request) => {
            let matched = route.rules.iter().find_map(|rule| {
                let target = table.route(&rule.route)?;
                rule.matches(request, &needs.estimate, tier)
                    .then(|| (Arc::clone(target), format!("{}->{}", rule.name, rule.route)))
            });
            match matched {
                Some((target, rule)) => (target, rule),
                None => (route, String::new()),
            }
        }
        None => (route, String::new()),
    };
    // Key policy: the key's tier may have a route of its own.
    let (route, policy) = match route
        .tier_routes
        .get(tier)
        .and_then(|target| table.route(target))
    {
        Some(target) => (Arc::clone(target), format!("tier:{tier}->{}", target.name)),
        None => (route, String::new()),
    };
    let mut decision = Decision {
        rule,
        policy,
        strategies: route
            .tiers
            .iter()
            .map(|tier| tier.order.as_str().to_owned())
            .collect(),
        ..Decision::default()
    };
    // A prompt that may cross a deployment's context window or the cost
    // ceiling is counted exactly; most are far from both and are not.
    let counted;
    let needs = match request {
        Some(request)
            if route
                .tiers
                .iter()
                .flat_map(|tier| &tier.deployments)
                .filter_map(|id| table.deployment(id))
                .any(|deployment| needs.may_cross(deployment, route.cost_ceiling)) =>
        {
            counted = needs.counted(request);
            &counted
        }
        _ => needs,
    };
    let mut candidates = Vec::new();
    let estimated_tokens = needs
        .estimate
        .prompt_tokens
        .saturating_add(needs.estimate.output_tokens);
    let inputs = Inputs {
        context,
        health,
        estimate: &needs.estimate,
    };
    for tier in &route.tiers {
        let mut kept: Vec<Arc<Deployment>> = Vec::with_capacity(tier.deployments.len());
        for id in &tier.deployments {
            let Some(mut deployment) = table.deployment(id) else {
                tracing::warn!(
                    route = %route.name,
                    deployment = %id,
                    version = table.version,
                    "route names a deployment the snapshot does not hold; skipped"
                );
                skip(&mut decision, id, "snapshot", "unknown_deployment");
                continue;
            };
            // Past its sunset, a deployment's traffic goes to its successor.
            // (The control plane refuses successor cycles; the bound is for
            // a snapshot that somehow holds one.)
            for _ in 0..MAX_SUCCESSOR_HOPS {
                let Some(successor) = lifecycle::shifted_to(deployment)
                    .and_then(|successor| table.deployment(successor))
                else {
                    break;
                };
                skip(
                    &mut decision,
                    &deployment.id,
                    "lifecycle",
                    &format!("sunset:{}", successor.id),
                );
                deployment = successor;
            }
            if kept
                .iter()
                .chain(&candidates)
                .any(|kept| kept.id == deployment.id)
            {
                continue;
            }
            let id = &deployment.id;
            if let Some(reason) = needs.unmet_by(deployment) {
                skip(&mut decision, id, "constraints", reason);
                continue;
            }
            if over_cost_ceiling(route.cost_ceiling, &needs.estimate, deployment) {
                skip(&mut decision, id, "constraints", "cost_ceiling");
                continue;
            }
            if let Some(reason) = health.unavailable(deployment) {
                skip(&mut decision, id, "health", reason);
                continue;
            }
            if health
                .capacity(deployment)
                .is_some_and(|capacity| !capacity.has_room(estimated_tokens))
            {
                health.passed_over(deployment);
                skip(&mut decision, id, "health", "capacity");
                continue;
            }
            kept.push(Arc::clone(deployment));
        }
        strategy::order(tier, &mut kept, &inputs);
        candidates.extend(kept);
    }
    if candidates.is_empty() {
        return Err(nothing_left(model, &decision, needs));
    }
    demote_slow(&route, health, &mut candidates, &mut decision);
    decision.order = candidates.iter().map(|d| d.id.clone()).collect();
    let successors = successors_of(table, &route, &candidates, needs, health);
    let shadow = route
        .shadow
        .as_ref()
        .filter(|(_, percent)| crate::shadow::picked(*percent))
        .and_then(|(id, _)| table.deployment(id))
        .filter(|shadow| {
            needs.unmet_by(shadow).is_none()
                && !over_cost_ceiling(route.cost_ceiling, &needs.estimate, shadow)
                && health.is_available(shadow)
                && health
                    .capacity(shadow)
                    .is_none_or(|capacity| capacity.has_room(estimated_tokens))
        })
        .cloned();
    Ok(Plan {
        route,
        candidates,
        snapshot_version: table.version,
        decision,
        successors,
        estimated_tokens,
        prompt_tokens: needs.estimate.prompt_tokens,
        shadow,
    })
}

/// Moves the candidates whose recent p95 latency is over the route's SLO
/// behind the others (keeping each group's order), and records which and
/// why. A demoted deployment is still tried when the others fail.
fn demote_slow(
    route: &Route,
    health: &Health,
    candidates: &mut Vec<Arc<Deployment>>,
    decision: &mut Decision,
) {
    let slo = route.slo;
    if slo.first_token_p95.is_none() && slo.total_p95.is_none() {
        return;
    }
    let over = |deployment: &Deployment| -> Option<String> {
        if let Some(bound) = slo.first_token_p95
            && let Some(p95) = health.first_token_p95(deployment)
            && p95 > bound
        {
            return Some(format!(
                "{}:first_token_p95={}ms",
                deployment.id,
                p95.as_millis()
            ));
        }
        if let Some(bound) = slo.total_p95
            && let Some(p95) = health.total_p95(deployment)
            && p95 > bound
        {
            return Some(format!("{}:total_p95={}ms", deployment.id, p95.as_millis()));
        }
        None
    };
    let (mut kept, mut demoted) = (Vec::with_capacity(candidates.len()), Vec::new());
    for deployment in candidates.drain(..) {
        match over(&deployment) {
            Some(why) => {
                decision.demoted.push(why);
                demoted.push(deployment);
            }
            None => kept.push(deployment),
        }
    }
    kept.extend(demoted);
    *candidates = kept;
}

/// The successors of `candidates` that could stand in for them: named in
/// their lifecycle, in the snapshot, able to serve the request (no later
/// step relaxes a hard constraint) and admitted by their breakers.
fn successors_of(
    table: &RouteTable,
    route: &Route,
    candidates: &[Arc<Deployment>],
    needs: &Needs,
    health: &Health,
) -> Vec<(Arc<Deployment>, Arc<Deployment>)> {
    candidates
        .iter()
        .filter_map(|candidate| {
            let lifecycle = candidate.lifecycle.as_ref()?;
            let successor = table.deployment(&lifecycle.successor)?;
            let able = needs.unmet_by(successor).is_none()
                && !over_cost_ceiling(route.cost_ceiling, &needs.estimate, successor);
            (able && health.is_available(successor))
                .then(|| (Arc::clone(candidate), Arc::clone(successor)))
        })
        .collect()
}

/// Records that `deployment` was left out by `step` for `reason`.
pub fn skip(decision: &mut Decision, deployment: &str, step: &str, reason: &str) {
    decision.skipped.push(SkippedDeployment {
        deployment_id: deployment.to_owned(),
        step: step.to_owned(),
        reason: reason.to_owned(),
    });
}

/// The error of a route none of whose deployments is left.
fn nothing_left(model: &str, decision: &Decision, needs: &Needs) -> ServiceError {
    let removed_by = |step: &str| decision.skipped.iter().any(|skipped| skipped.step == step);
    if removed_by("health") {
        let why = if decision
            .skipped
            .iter()
            .any(|skipped| skipped.reason == "breaker_open")
        {
            "circuit breakers open"
        } else if decision
            .skipped
            .iter()
            .any(|skipped| skipped.reason == "provider_limit")
        {
            "provider rate limits used up"
        } else {
            "at capacity"
        };
        return ServiceError::new(
            ErrorClass::UpstreamUnavailable,
            format!(
                "Every deployment of `{model}` is unavailable right now ({why}); try again shortly."
            ),
        );
    }
    let constrained: Vec<&SkippedDeployment> = decision
        .skipped
        .iter()
        .filter(|skipped| skipped.step == "constraints")
        .collect();
    if !constrained.is_empty() && constrained.iter().all(|s| s.reason == "cost_ceiling") {
        return ServiceError::invalid_request(format!(
            "The request (about {} prompt tokens and {} of output) would cost more than the \
             ceiling of `{model}` at every deployment; shorten it or lower `max_tokens`.",
            needs.estimate.prompt_tokens, needs.estimate.output_tokens
        ))
        .with_param("max_tokens");
    }
    if !constrained.is_empty() && constrained.iter().all(|s| s.reason == "context_window") {
        return ServiceError::new(
            ErrorClass::ContextLengthExceeded,
            format!(
                "The request (about {} prompt tokens and {} reserved for output) does not fit \
                 the context window of any deployment of `{model}`.",
                needs.estimate.prompt_tokens, needs.reserved_output
            ),
        )
        .with_param("messages");
    }
    if !constrained.is_empty() {
        let reasons: Vec<String> = constrained
            .iter()
            .map(|skipped| format!("{}: {}", skipped.deployment_id, skipped.reason))
            .collect();
        return ServiceError::invalid_request(format!(
            "No deployment of `{model}` can serve what this request uses ({}).",
            reasons.join(", ")
        ));
    }
    ServiceError::new(
        ErrorClass::UpstreamUnavailable,
        format!("The model `{model}` has no available deployment."),
    )
}

#[cfg(test)]
mod tests {
    use switchyard_proto::v1::Capabilities;

    use super::*;
    use crate::{breaker::BreakerConfig, estimate::Estimate, route_table::tests::snapshot};

    fn context(key_id: &str) -> RequestContext {
        RequestContext {
            key_id: key_id.to_owned(),
            request_id: "r".to_owned(),
            ..RequestContext::default()
        }
    }

    fn health() -> Health {
        Health::new(BreakerConfig {
            min_requests: 1,
            ..BreakerConfig::default()
        })
    }

    /// Plans a plain request for route `gpt` with key `all`.
    fn plan_gpt(table: &RouteTable, health: &Health) -> Result<Plan, ServiceError> {
        plan(
            Some(table),
            health,
            &context("all"),
            "gpt",
            &Needs::default(),
            None,
        )
    }

    fn ids(plan: &Plan) -> Vec<&str> {
        plan.candidates.iter().map(|d| d.id.as_str()).collect()
    }

    #[test]
    fn keeps_known_deployments_in_route_order_and_records_the_unknown_one() {
        let table = RouteTable::from_snapshot(snapshot());
        let plan = plan(
            Some(&table),
            &health(),
            &context("all"),
            "gpt",
            &Needs::default(),
            None,
        )
        .expect("a plan");
        assert_eq!(ids(&plan), ["primary", "backup"], "`ghost` is skipped");
        assert_eq!(plan.snapshot_version, 7);
        assert_eq!(plan.decision.strategies, ["priority"]);
        assert_eq!(plan.decision.order, ["primary", "backup"]);
        assert_eq!(plan.decision.skipped.len(), 1);
        assert_eq!(
            (
                plan.decision.skipped[0].deployment_id.as_str(),
                plan.decision.skipped[0].step.as_str()
            ),
            ("ghost", "snapshot")
        );
    }

    #[test]
    fn refuses_unknown_routes_forbidden_keys_and_a_missing_snapshot() {
        let table = RouteTable::from_snapshot(snapshot());
        let needs = Needs::default();
        let health = health();
        let error = plan(Some(&table), &health, &context("all"), "nope", &needs, None)
            .expect_err("unknown");
        assert_eq!(error.class, ErrorClass::NotFound);
        let forbidden = plan(
            Some(&table),
            &health,
            &context("narrow"),
            "gpt",
            &needs,
            None,
        )
        .expect_err("forbidden");
        let missing = plan(
            Some(&table),
            &health,
            &context("narrow"),
            "nope",
            &needs,
            None,
        )
        .expect_err("unknown");
        // A restricted key cannot tell a model it may not use from one
        // that does not exist.
        assert_eq!(forbidden.class, ErrorClass::NotFound);
        assert_eq!(
            forbidden.message.replace("`gpt`", "`nope`"),
            missing.message
        );
        let error =
            plan(None, &health, &context("all"), "gpt", &needs, None).expect_err("no snapshot");
        assert_eq!(error.class, ErrorClass::ServiceUnavailable);
    }

    #[test]
    fn an_open_breaker_removes_a_deployment_and_all_open_is_an_outage() {
        let table = RouteTable::from_snapshot(snapshot());
        let health = health();
        let primary = table.deployment("primary").expect("known").clone();
        let ticket = health.admit(&primary).expect("admitted");
        health.record(&primary, ticket, Err(ErrorClass::UpstreamUnavailable));
        let plan_now = || plan_gpt(&table, &health);
        let planned = plan_now().expect("the backup is left");
        assert_eq!(ids(&planned), ["backup"]);
        assert!(
            planned
                .decision
                .skipped
                .iter()
                .any(|s| s.deployment_id == "primary"
                    && s.step == "health"
                    && s.reason == "breaker_open")
        );
        let backup = table.deployment("backup").expect("known").clone();
        let ticket = health.admit(&backup).expect("admitted");
        health.record(&backup, ticket, Err(ErrorClass::Timeout));
        let error = plan_now().expect_err("nothing left");
        assert_eq!(error.class, ErrorClass::UpstreamUnavailable);
        assert!(
            error.message.contains("circuit breakers open"),
            "{}",
            error.message
        );
    }

    #[test]
    fn constraints_remove_deployments_and_explain_when_none_is_left() {
        let mut snapshot = snapshot();
        snapshot.deployments[0].context_window = 1000;
        snapshot.deployments[1].capabilities = Some(Capabilities::default());
        let table = RouteTable::from_snapshot(snapshot);
        let health = health();
        let big = Needs {
            estimate: Estimate {
                prompt_tokens: 5000,
                output_tokens: 100,
            },
            ..Needs::default()
        };
        let planned =
            plan(Some(&table), &health, &context("all"), "gpt", &big, None).expect("backup fits");
        assert_eq!(ids(&planned), ["backup"]);
        let tools = Needs { tools: true, ..big };
        let error =
            plan(Some(&table), &health, &context("all"), "gpt", &tools, None).expect_err("none");
        assert_eq!(error.class, ErrorClass::InvalidRequest);
        assert!(
            error.message.contains("primary: context_window"),
            "{}",
            error.message
        );
        assert!(
            error.message.contains("backup: no_tools"),
            "{}",
            error.message
        );
    }

    #[test]
    fn a_prompt_near_a_context_window_is_counted_before_the_deployment_is_kept() {
        use switchyard_proto::v1::{ChatRequest, ContentPart, Message, content_part::Part};

        let mut snapshot = snapshot();
        snapshot.deployments[0].context_window = 300;
        let table = RouteTable::from_snapshot(snapshot);
        let health = health();
        // 1,000 digits: 254 tokens by their size, 341 counted.
        let request = ChatRequest {
            messages: vec![Message {
                content: vec![ContentPart {
                    part: Some(Part::Text("1234567890".repeat(100))),
                }],
                ..Message::default()
            }],
            ..ChatRequest::default()
        };
        let needs = Needs::chat(&request);
        let by_size =
            plan(Some(&table), &health, &context("all"), "gpt", &needs, None).expect("planned");
        assert_eq!(ids(&by_size), ["primary", "backup"], "254 seem to fit 300");
        let counted = plan(
            Some(&table),
            &health,
            &context("all"),
            "gpt",
            &needs,
            Some(&request),
        )
        .expect("planned");
        assert_eq!(ids(&counted), ["backup"]);
        assert!(
            counted
                .decision
                .skipped
                .iter()
                .any(|skip| skip.deployment_id == "primary" && skip.reason == "context_window"),
            "{:?}",
            counted.decision
        );
    }

    #[test]
    fn a_keys_tier_picks_its_route_and_its_team_narrows_what_it_may_use() {
        use switchyard_proto::v1::{
            ApiKey, FallbackStrategy, Route as RouteObject, Team, route::Strategy,
        };
        let mut snapshot = snapshot();
        snapshot.routes[0]
            .tier_routes
            .insert("free".to_owned(), "cheap".to_owned());
        snapshot.routes.push(RouteObject {
            name: "cheap".to_owned(),
            strategy: Some(Strategy::Fallback(FallbackStrategy {
                deployments: vec!["backup".to_owned()],
            })),
            ..RouteObject::default()
        });
        snapshot.teams.push(Team {
            id: "frugal".to_owned(),
            tier: "free".to_owned(),
            allowed_models: vec!["gpt".to_owned()],
            ..Team::default()
        });
        for (id, tier) in [("intern", ""), ("lead", "premium")] {
            snapshot.api_keys.push(ApiKey {
                id: id.to_owned(),
                team_id: "frugal".to_owned(),
                tier: tier.to_owned(),
                ..ApiKey::default()
            });
        }
        let table = RouteTable::from_snapshot(snapshot);
        let planned = |key: &str| {
            plan(
                Some(&table),
                &health(),
                &context(key),
                "gpt",
                &Needs::default(),
                None,
            )
            .expect("planned")
        };
        // The team's tier is the key's when it sets none.
        let intern = planned("intern");
        assert_eq!(intern.route.name, "cheap");
        assert_eq!(ids(&intern), ["backup"]);
        assert_eq!(intern.decision.policy, "tier:free->cheap");
        let lead = planned("lead");
        assert_eq!(lead.route.name, "gpt");
        assert!(lead.decision.policy.is_empty());
        // The team allows `gpt` only; its keys cannot name `cheap` itself.
        assert!(table.key_may_use("intern", "gpt"));
        assert!(!table.key_may_use("intern", "cheap"));
        assert!(table.key_may_use("all", "cheap"));
    }

    #[test]
    fn a_deployment_resting_on_its_providers_limit_is_left_out_until_the_reset() {
        let table = RouteTable::from_snapshot(snapshot());
        let health = health();
        let primary = Arc::clone(table.deployment("primary").expect("known"));
        health.rest(&primary, std::time::Duration::from_millis(50), "");
        let plan_now = || plan_gpt(&table, &health);
        let planned = plan_now().expect("the backup is left");
        assert_eq!(ids(&planned), ["backup"]);
        assert!(planned.decision.skipped.iter().any(|skipped| {
            skipped.deployment_id == "primary"
                && skipped.step == "health"
                && skipped.reason == "provider_limit"
        }));
        let backup = Arc::clone(table.deployment("backup").expect("known"));
        health.rest(&backup, std::time::Duration::from_millis(50), "");
        let error = plan_now().expect_err("both rest");
        assert!(
            error.message.contains("rate limits used up"),
            "{}",
            error.message
        );
        std::thread::sleep(std::time::Duration::from_millis(60));
        assert_eq!(ids(&plan_now().expect("rested")), ["primary", "backup"]);
    }

    #[test]
    fn a_deployment_over_the_routes_slo_is_tried_after_the_others_until_it_recovers() {
        let mut snapshot = snapshot();
        snapshot.routes[0].slo = Some(switchyard_proto::v1::SloPolicy {
            first_token_p95_ms: 500,
            total_p95_ms: 0,
        });
        let table = RouteTable::from_snapshot(snapshot);
        let health = health();
        let primary = Arc::clone(table.deployment("primary").expect("known"));
        let plan_now = || plan_gpt(&table, &health).expect("planned");
        for _ in 0..crate::latency::MIN_SAMPLES {
            let ticket = health.admit(&primary).expect("closed");
            health.record(&primary, ticket, Ok(std::time::Duration::from_millis(800)));
        }
        let slow = plan_now();
        assert_eq!(ids(&slow), ["backup", "primary"], "demoted, not removed");
        assert_eq!(slow.decision.demoted, ["primary:first_token_p95=800ms"]);
        // Fast answers bring its p95 back within the bound.
        for _ in 0..crate::latency::SAMPLES {
            let ticket = health.admit(&primary).expect("closed");
            health.record(&primary, ticket, Ok(std::time::Duration::from_millis(100)));
        }
        let recovered = plan_now();
        assert_eq!(ids(&recovered), ["primary", "backup"]);
        assert!(recovered.decision.demoted.is_empty());
    }

    #[test]
    fn a_route_with_no_known_deployment_is_unavailable() {
        let mut snapshot = snapshot();
        snapshot.deployments.clear();
        let table = RouteTable::from_snapshot(snapshot);
        let error = plan(
            Some(&table),
            &health(),
            &context("all"),
            "gpt",
            &Needs::default(),
            None,
        )
        .expect_err("nothing to try");
        assert_eq!(error.class, ErrorClass::UpstreamUnavailable);
    }

    /// One generated deployment: context window (0 unknown), prices per
    /// million in nano-dollars (`None` unpriced), whether its breaker is
    /// open, and the index of a successor among the others.
    type Generated = (u32, Option<(i64, i64)>, bool, Option<usize>);

    fn generated() -> impl proptest::strategy::Strategy<Value = Generated> {
        use proptest::prelude::*;
        (
            prop_oneof![Just(0_u32), 100_u32..20_000],
            proptest::option::of((0_i64..20_000_000_000, 0_i64..60_000_000_000)),
            proptest::bool::weighted(0.3),
            proptest::option::of(0_usize..6),
        )
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever the deployments, breakers, ceiling and request, a plan
        /// (and the successors it may bring in) never holds a deployment
        /// whose breaker is open, whose context window is too small, or
        /// whose expected cost is over the route's ceiling.
        #[test]
        fn no_plan_holds_an_open_breaker_a_window_too_small_or_a_cost_over_the_ceiling(
            deployments in proptest::collection::vec(generated(), 1..6),
            ceiling in proptest::option::of(1_i64..50_000_000),
            prompt_tokens in 1_u32..30_000,
            max_tokens in proptest::option::of(1_u32..8_000),
        ) {
            use switchyard_proto::v1::{
                ApiKey, FallbackStrategy, Lifecycle, Money, Pricing, Route as RouteObject,
                Snapshot, route::Strategy,
            };
            let money = |nanos| Some(Money { nanos, currency: "USD".to_owned() });
            let ids: Vec<String> = (0..deployments.len()).map(|i| format!("d{i}")).collect();
            let objects: Vec<Deployment> = deployments
                .iter()
                .enumerate()
                .map(|(i, (window, prices, _, successor))| Deployment {
                    id: ids[i].clone(),
                    context_window: *window,
                    pricing: prices.map(|(input, output)| Pricing {
                        input_per_million: money(input),
                        output_per_million: money(output),
                        ..Pricing::default()
                    }),
                    lifecycle: successor
                        .filter(|s| *s < ids.len() && *s != i)
                        .map(|s| Lifecycle { successor: ids[s].clone(), ..Lifecycle::default() }),
                    ..Deployment::default()
                })
                .collect();
            let health = health();
            for (object, (_, _, open, _)) in objects.iter().zip(&deployments) {
                if *open {
                    let ticket = health.admit(object).expect("closed at first");
                    health.record(object, ticket, Err(ErrorClass::UpstreamUnavailable));
                }
            }
            let table = RouteTable::from_snapshot(Snapshot {
                deployments: objects,
                routes: vec![RouteObject {
                    name: "r".to_owned(),
                    strategy: Some(Strategy::Fallback(FallbackStrategy { deployments: ids.clone() })),
                    cost_ceiling_nanos: ceiling.unwrap_or(0),
                    ..RouteObject::default()
                }],
                api_keys: vec![ApiKey { id: "all".to_owned(), ..ApiKey::default() }],
                ..Snapshot::default()
            });
            let needs = Needs {
                estimate: Estimate {
                    prompt_tokens,
                    output_tokens: max_tokens.unwrap_or(crate::estimate::DEFAULT_OUTPUT_TOKENS),
                },
                reserved_output: max_tokens.unwrap_or(0),
                ..Needs::default()
            };
            let Ok(plan) = plan(Some(&table), &health, &context("all"), "r", &needs, None) else {
                return Ok(());
            };
            let route = table.route("r").expect("the route");
            let brought_in = plan.successors.iter().map(|(_, successor)| successor);
            for deployment in plan.candidates.iter().chain(brought_in) {
                proptest::prop_assert!(health.is_available(deployment), "{} has an open breaker", deployment.id);
                let window = u64::from(deployment.context_window);
                proptest::prop_assert!(
                    window == 0 || u64::from(prompt_tokens) + u64::from(max_tokens.unwrap_or(0)) <= window,
                    "{} cannot hold the request", deployment.id
                );
                if let (Some(ceiling), Some(pricing)) = (route.cost_ceiling, &deployment.pricing) {
                    let nanos = |money: &Option<Money>| i128::from(money.as_ref().map_or(0, |m| m.nanos));
                    let expected = i128::from(needs.estimate.prompt_tokens) * nanos(&pricing.input_per_million)
                        + i128::from(needs.estimate.output_tokens) * nanos(&pricing.output_per_million);
                    proptest::prop_assert!(
                        expected <= i128::from(ceiling) * 1_000_000,
                        "{} is over the ceiling", deployment.id
                    );
                }
            }
        }
    }
}

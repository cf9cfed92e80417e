//! `plan`: which deployments a request may go to, in which order, and why
//! each candidate was kept or skipped.
//!
//! The plan is the decision record later steps extend (health, breakers,
//! limits, capabilities): every deployment the route names gets a
//! [`Decision`], kept candidates in the order attempts will try them.

use std::sync::Arc;

use switchyard_common::{ErrorClass, ServiceError};
use switchyard_proto::v1::{Deployment, RequestContext};

use crate::route_table::{Route, RouteTable};

/// Why a deployment was left out of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The route names a deployment the snapshot does not hold.
    UnknownDeployment,
}

/// What the plan decided about one deployment the route names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The deployment.
    pub deployment_id: String,
    /// Kept (with its place among the candidates) or skipped (with why).
    pub verdict: Result<usize, SkipReason>,
}

/// Where one request may go.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The route the request named.
    pub route: Arc<Route>,
    /// Deployments to try, in order.
    pub candidates: Vec<Arc<Deployment>>,
    /// One decision per deployment the route names.
    pub decisions: Vec<Decision>,
    /// Version of the snapshot the plan was made from.
    pub snapshot_version: u64,
}

/// Plans a request for route `model` under `table`: the route must exist,
/// the caller's key must be allowed to use it, and at least one of its
/// deployments must be known.
pub fn plan(
    table: Option<&RouteTable>,
    context: &RequestContext,
    model: &str,
) -> Result<Plan, ServiceError> {
    let table = table.ok_or_else(|| {
        ServiceError::new(
            ErrorClass::UpstreamUnavailable,
            "the router has not received its configuration yet",
        )
    })?;
    let route = table.route(model).cloned().ok_or_else(|| {
        ServiceError::new(
            ErrorClass::NotFound,
            format!("The model `{model}` does not exist."),
        )
        .with_param("model")
    })?;
    if !table.key_may_use(&context.key_id, model) {
        return Err(ServiceError::new(
            ErrorClass::Permission,
            format!("This API key may not use the model `{model}`."),
        )
        .with_param("model"));
    }
    let mut candidates = Vec::with_capacity(route.deployments.len());
    let mut decisions = Vec::with_capacity(route.deployments.len());
    for id in &route.deployments {
        let verdict = match table.deployment(id) {
            Some(deployment) => {
                candidates.push(Arc::clone(deployment));
                Ok(candidates.len() - 1)
            }
            None => Err(SkipReason::UnknownDeployment),
        };
        decisions.push(Decision {
            deployment_id: id.clone(),
            verdict,
        });
    }
    if candidates.is_empty() {
        return Err(ServiceError::new(
            ErrorClass::UpstreamUnavailable,
            format!("The model `{model}` has no available deployment."),
        ));
    }
    Ok(Plan {
        route,
        candidates,
        decisions,
        snapshot_version: table.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route_table::tests::snapshot;

    fn context(key_id: &str) -> RequestContext {
        RequestContext {
            key_id: key_id.to_owned(),
            ..RequestContext::default()
        }
    }

    #[test]
    fn keeps_known_deployments_in_route_order_and_records_skips() {
        let table = RouteTable::from_snapshot(snapshot());
        let plan = plan(Some(&table), &context("all"), "gpt").expect("a plan");
        let ids: Vec<&str> = plan.candidates.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["primary", "backup"]);
        assert_eq!(
            plan.decisions,
            [
                Decision {
                    deployment_id: "primary".to_owned(),
                    verdict: Ok(0)
                },
                Decision {
                    deployment_id: "ghost".to_owned(),
                    verdict: Err(SkipReason::UnknownDeployment)
                },
                Decision {
                    deployment_id: "backup".to_owned(),
                    verdict: Ok(1)
                },
            ]
        );
        assert_eq!(plan.snapshot_version, 7);
    }

    #[test]
    fn refuses_unknown_routes_forbidden_keys_and_a_missing_snapshot() {
        let table = RouteTable::from_snapshot(snapshot());
        let error = plan(Some(&table), &context("all"), "nope").expect_err("unknown");
        assert_eq!(error.class, ErrorClass::NotFound);
        let error = plan(Some(&table), &context("narrow"), "gpt").expect_err("forbidden");
        assert_eq!(error.class, ErrorClass::Permission);
        let error = plan(None, &context("all"), "gpt").expect_err("no snapshot");
        assert_eq!(error.class, ErrorClass::UpstreamUnavailable);
    }

    #[test]
    fn a_route_with_no_known_deployment_is_unavailable() {
        let mut snapshot = snapshot();
        snapshot.deployments.clear();
        let table = RouteTable::from_snapshot(snapshot);
        let error = plan(Some(&table), &context("all"), "gpt").expect_err("nothing to try");
        assert_eq!(error.class, ErrorClass::UpstreamUnavailable);
    }
}

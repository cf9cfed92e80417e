//! `plan`: which deployments a request may go to, in which order, and why
//! a deployment the route names was left out.
//!
//! Today the only reason is a deployment the snapshot does not hold (a race
//! between config writes: validation refuses such routes), logged where it
//! is decided. Health, breakers, limits and capabilities add their reasons
//! here, and with them a decision record that traces and the console read;
//! until something reads it, none is kept, so planning allocates only the
//! candidate list.

use std::sync::Arc;

use switchyard_common::{ErrorClass, ServiceError};
use switchyard_proto::v1::{Deployment, RequestContext};

use crate::route_table::{Route, RouteTable};

/// Where one request may go.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The route the request named.
    pub route: Arc<Route>,
    /// Deployments to try, in order.
    pub candidates: Vec<Arc<Deployment>>,
    /// Version of the snapshot the plan was made from.
    pub snapshot_version: u64,
}

/// Plans a request for route `model` under `table`: the route must exist
/// and the caller's key must be allowed to use it (both refused alike, as
/// OpenAI does, so a restricted key cannot probe which models exist), and
/// at least one of its deployments must be known.
pub fn plan(
    table: Option<&RouteTable>,
    context: &RequestContext,
    model: &str,
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
    let mut candidates = Vec::with_capacity(route.deployments.len());
    for id in &route.deployments {
        match table.deployment(id) {
            Some(deployment) => candidates.push(Arc::clone(deployment)),
            None => tracing::warn!(
                route = %route.name,
                deployment = %id,
                version = table.version,
                "route names a deployment the snapshot does not hold; skipped"
            ),
        }
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
    fn keeps_known_deployments_in_route_order_and_skips_unknown_ones() {
        let table = RouteTable::from_snapshot(snapshot());
        let plan = plan(Some(&table), &context("all"), "gpt").expect("a plan");
        let ids: Vec<&str> = plan.candidates.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["primary", "backup"], "`ghost` is skipped");
        assert_eq!(plan.snapshot_version, 7);
    }

    #[test]
    fn refuses_unknown_routes_forbidden_keys_and_a_missing_snapshot() {
        let table = RouteTable::from_snapshot(snapshot());
        let error = plan(Some(&table), &context("all"), "nope").expect_err("unknown");
        assert_eq!(error.class, ErrorClass::NotFound);
        let forbidden = plan(Some(&table), &context("narrow"), "gpt").expect_err("forbidden");
        let missing = plan(Some(&table), &context("narrow"), "nope").expect_err("unknown");
        // A restricted key cannot tell a model it may not use from one
        // that does not exist.
        assert_eq!(forbidden.class, ErrorClass::NotFound);
        assert_eq!(
            forbidden.message.replace("`gpt`", "`nope`"),
            missing.message
        );
        let error = plan(None, &context("all"), "gpt").expect_err("no snapshot");
        assert_eq!(error.class, ErrorClass::ServiceUnavailable);
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

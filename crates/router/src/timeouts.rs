//! `timeouts`: how long a request and each of its attempts may take.
//!
//! A route's `timeout.request` bounds the whole request, fallbacks and
//! retries included: it tightens the request's deadline, which every hop
//! and every wait already honours. The other bounds (connect, first token,
//! idle between chunks) and a deployment's own `timeout.request` apply per
//! attempt: each is the deployment's when it sets one, else the route's,
//! else the provider's `timeout`, and the adapters enforce them. A first
//! token that misses its bound fails the attempt as `timeout` before any
//! output, so the next deployment is tried.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchyard_proto::v1::{AttemptTimeouts, Deployment, RequestContext, TimeoutPolicy};

/// A route's timeouts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// The whole request; `None` leaves the client's deadline alone.
    pub request: Option<Duration>,
    /// Each attempt's bounds unless its deployment sets its own; 0 for none.
    attempt: AttemptTimeouts,
}

impl Timeouts {
    /// A route's timeouts from its published policy.
    pub fn of_route(policy: Option<TimeoutPolicy>) -> Self {
        let policy = policy.unwrap_or_default();
        Self {
            request: (policy.request_ms > 0).then(|| Duration::from_millis(policy.request_ms)),
            attempt: AttemptTimeouts {
                connect_ms: policy.connect_ms,
                first_token_ms: policy.first_token_ms,
                idle_ms: policy.idle_ms,
                // On a route, `request` is the request's, not an attempt's.
                total_ms: 0,
            },
        }
    }

    /// Tightens `context`'s deadline to the route's request timeout from
    /// now, when that comes first.
    pub fn bound(&self, context: &mut RequestContext) {
        let Some(request) = self.request else {
            return;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let ours = u64::try_from((now + request).as_millis()).unwrap_or(u64::MAX);
        if context.deadline_unix_ms == 0 || ours < context.deadline_unix_ms {
            context.deadline_unix_ms = ours;
        }
    }

    /// The bounds of an attempt at `deployment`: each the deployment's when
    /// it sets one, else the route's. `None` when neither sets any.
    pub fn for_attempt(&self, deployment: &Deployment) -> Option<AttemptTimeouts> {
        let own = deployment.timeout.unwrap_or_default();
        let either = |own: u64, route: u64| if own > 0 { own } else { route };
        let timeouts = AttemptTimeouts {
            connect_ms: either(own.connect_ms, self.attempt.connect_ms),
            first_token_ms: either(own.first_token_ms, self.attempt.first_token_ms),
            idle_ms: either(own.idle_ms, self.attempt.idle_ms),
            total_ms: own.request_ms,
        };
        (timeouts != AttemptTimeouts::default()).then_some(timeouts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(first_token_ms: u64, idle_ms: u64, request_ms: u64) -> Timeouts {
        Timeouts::of_route(Some(TimeoutPolicy {
            request_ms,
            first_token_ms,
            connect_ms: 0,
            idle_ms,
        }))
    }

    #[test]
    fn a_deployment_bound_wins_over_the_routes_field_by_field() {
        let timeouts = route(2_000, 5_000, 30_000);
        let deployment = Deployment {
            timeout: Some(TimeoutPolicy {
                first_token_ms: 8_000,
                request_ms: 20_000,
                ..TimeoutPolicy::default()
            }),
            ..Deployment::default()
        };
        assert_eq!(
            timeouts.for_attempt(&deployment),
            Some(AttemptTimeouts {
                connect_ms: 0,
                first_token_ms: 8_000,
                idle_ms: 5_000,
                total_ms: 20_000,
            })
        );
        // The route's request timeout is the request's, never an attempt's.
        assert_eq!(
            timeouts.for_attempt(&Deployment::default()),
            Some(AttemptTimeouts {
                first_token_ms: 2_000,
                idle_ms: 5_000,
                ..AttemptTimeouts::default()
            })
        );
        assert_eq!(
            Timeouts::default().for_attempt(&Deployment::default()),
            None
        );
    }

    #[test]
    fn the_route_request_timeout_only_ever_tightens_the_deadline() {
        let timeouts = route(0, 0, 1_000);
        let mut open = RequestContext::default();
        timeouts.bound(&mut open);
        let now_ms = u64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(u64::MAX);
        assert!(open.deadline_unix_ms > now_ms && open.deadline_unix_ms <= now_ms + 1_000);
        let mut sooner = RequestContext {
            deadline_unix_ms: now_ms + 10,
            ..RequestContext::default()
        };
        timeouts.bound(&mut sooner);
        assert_eq!(sooner.deadline_unix_ms, now_ms + 10);
        let mut later = RequestContext {
            deadline_unix_ms: now_ms + 60_000,
            ..RequestContext::default()
        };
        timeouts.bound(&mut later);
        assert!(later.deadline_unix_ms <= now_ms + 1_001);
    }
}

//! Plumbing every API route shares: authentication against the snapshot,
//! the request body limit, and the `x-*` response headers.

use axum::{
    body::Body,
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
};
use std::time::Duration;

use bytes::BytesMut;
use http_body_util::BodyExt;
use switchyard_common::{
    ErrorClass, ServiceError,
    memory::{BudgetedBytes, ByteBudget},
};
use switchyard_proto::v1::{Money, RouteDecision, Usage};
use tokio::time::Instant;
use uuid::Uuid;

use crate::{EdgeState, error::ApiError};

/// Who is calling: the authenticated key.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// Key id, recorded in usage events.
    pub key_id: String,
    /// Team id; empty when none.
    pub team_id: String,
    /// Configured user of the key; empty when none.
    pub user_id: String,
    /// Whether the key may see how its requests were routed.
    pub debug: bool,
}

/// Returns the caller the request's bearer key authenticates.
pub fn authenticate(state: &EdgeState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let index = state.index.load().ok_or_else(|| {
        ApiError::new(
            ErrorClass::ServiceUnavailable,
            "The gateway is starting; try again shortly.",
        )
    })?;
    let key = index.authenticate(headers)?;
    Ok(Caller {
        key_id: key.id.clone(),
        team_id: key.team_id.clone(),
        user_id: key.user_id.clone(),
        debug: key.debug,
    })
}

/// Reads the body up to `limit` bytes. An oversized body is drained (up to
/// four times the limit) before the 413 goes out, so the client reads the
/// error instead of a connection reset mid-upload.
///
/// The body must keep arriving: a wait of more than the read timeout for
/// its next piece, or an average rate below the minimum once the read
/// timeout has passed since it started, is answered 408, so a client that
/// stalls or trickles cannot hold a handler.
///
/// The body counts against the edge's budget of bodies in flight until the
/// returned bytes are dropped; a body the budget cannot cover is answered
/// 503 with `retry-after`.
pub async fn read_body(
    mut body: Body,
    headers: &HeaderMap,
    limits: &BodyLimits,
) -> Result<BudgetedBytes, ApiError> {
    let limit = limits.max_bytes;
    let too_slow = || {
        ApiError::invalid_request_with_status(
            StatusCode::REQUEST_TIMEOUT,
            "The request body arrived too slowly.",
        )
    };
    let too_large = || {
        ApiError::invalid_request_with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The request body is larger than the limit of {limit} bytes."),
        )
    };
    let unreadable = || {
        ApiError::new(
            ErrorClass::InvalidRequest,
            "The request body could not be read.",
        )
    };
    let over_budget = || {
        ApiError::from(
            ServiceError::new(
                ErrorClass::Overloaded,
                "The gateway is holding too many request bodies at once; try again shortly.",
            )
            .with_retry_after(Duration::from_secs(1)),
        )
    };
    let drain_cap = limit.saturating_mul(4);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if let Some(declared) = declared
        && declared > limit
    {
        if declared <= drain_cap {
            drain(body, drain_cap).await;
        }
        return Err(too_large());
    }
    let mut reservation = limits.in_flight.reservation();
    if reservation.grow(declared.unwrap_or(0)).is_err() {
        drain(body, drain_cap).await;
        return Err(over_budget());
    }
    let mut buffer = BytesMut::with_capacity(declared.unwrap_or(0));
    let started = Instant::now();
    loop {
        let frame = match tokio::time::timeout(limits.read_timeout, body.frame()).await {
            Err(_elapsed) => return Err(too_slow()),
            Ok(None) => break,
            Ok(Some(frame)) => frame.map_err(|_| unreadable())?,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let length = buffer.len() + data.len();
        if length > limit {
            drain(body, drain_cap.saturating_sub(buffer.len())).await;
            return Err(too_large());
        }
        if length > reservation.bytes() && reservation.grow(length - reservation.bytes()).is_err() {
            drain(body, drain_cap.saturating_sub(buffer.len())).await;
            return Err(over_budget());
        }
        buffer.extend_from_slice(&data);
        if limits.is_too_slow(buffer.len(), started.elapsed()) {
            return Err(too_slow());
        }
    }
    Ok(BudgetedBytes::new(buffer.freeze(), reservation))
}

/// How much of a request body the edge reads, how slowly it may come, and
/// the budget all bodies in flight share.
#[derive(Debug, Clone)]
pub struct BodyLimits {
    /// Largest body; larger ones get 413.
    pub max_bytes: usize,
    /// Longest wait for the next piece.
    pub read_timeout: Duration,
    /// Slowest average rate once `read_timeout` has passed.
    pub min_bytes_per_second: u64,
    /// Bytes of bodies all requests may hold at once.
    pub in_flight: ByteBudget,
}

impl BodyLimits {
    /// Whether `received` bytes after `elapsed` is slower than allowed.
    fn is_too_slow(&self, received: usize, elapsed: Duration) -> bool {
        if elapsed <= self.read_timeout {
            return false;
        }
        let expected = u128::from(self.min_bytes_per_second) * elapsed.as_millis() / 1000;
        (received as u128) < expected
    }
}

/// Reads and discards up to `cap` more bytes, for at most a few seconds.
async fn drain(mut body: Body, cap: usize) {
    let discard = async {
        let mut seen = 0_usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |data| data.len());
            if seen > cap {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), discard).await;
}

/// Converts a failed router call to the error the client sees. A failure
/// of the call itself (the router unreachable or broken) is logged here,
/// with the request id: the router logs its own decisions, but cannot log
/// a call that never reached it.
pub fn router_error(request_id: Uuid, status: &tonic::Status) -> ApiError {
    let error = ServiceError::from_status(status);
    if !ServiceError::is_service_status(status) {
        tracing::error!(
            %request_id,
            class = %error.class,
            code = ?status.code(),
            "the call to the router failed"
        );
    }
    ApiError::logged(error)
}

/// Sets the response headers every routed answer carries (the request id
/// is set for every answer by [`crate::request_id`]):
/// `x-switchyard-cache`, `x-switchyard-provider` and `x-switchyard-route`
/// (the route that served it, after rules and the key's tier), and for an
/// upstream answer `x-switchyard-deployment` and `x-switchyard-attempts` (how many
/// deployments were tried, the answering one included), and for a key
/// allowed to see it `x-switchyard-decision`, the decision record; an
/// answer from a deprecated deployment carries `Deprecation` (RFC 9745) and,
/// when it has one, its `Sunset` (RFC 8594).
pub fn decorate(headers: &mut HeaderMap, route: &RouteDecision) {
    // Names parsed once, at compile time; room made once for all five.
    const CACHE: HeaderName = HeaderName::from_static("x-switchyard-cache");
    const PROVIDER: HeaderName = HeaderName::from_static("x-switchyard-provider");
    const DEPLOYMENT: HeaderName = HeaderName::from_static("x-switchyard-deployment");
    const ROUTE: HeaderName = HeaderName::from_static("x-switchyard-route");
    const ATTEMPTS: HeaderName = HeaderName::from_static("x-switchyard-attempts");
    const DECISION: HeaderName = HeaderName::from_static("x-switchyard-decision");
    const DEPRECATION: HeaderName = HeaderName::from_static("deprecation");
    const SUNSET: HeaderName = HeaderName::from_static("sunset");
    headers.reserve(7);
    let cache = if route.cache_hit { "hit" } else { "miss" };
    headers.insert(CACHE, HeaderValue::from_static(cache));
    let provider = if route.cache_hit {
        "cache"
    } else {
        route.provider.as_str()
    };
    if let Ok(value) = HeaderValue::from_str(provider) {
        headers.insert(PROVIDER, value);
    }
    if !route.model.is_empty()
        && let Ok(value) = HeaderValue::from_str(&route.model)
    {
        headers.insert(ROUTE, value);
    }
    if !route.cache_hit {
        if let Ok(value) = HeaderValue::from_str(&route.deployment_id) {
            headers.insert(DEPLOYMENT, value);
        }
        headers.insert(ATTEMPTS, HeaderValue::from(route.attempts));
    }
    if !route.decision.is_empty()
        && let Ok(value) = HeaderValue::from_str(&route.decision)
    {
        headers.insert(DECISION, value);
    }
    if route.deprecated {
        // RFC 9745: deprecated as of (at the latest) now.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        if let Ok(value) = HeaderValue::from_str(&format!("@{now}")) {
            headers.insert(DEPRECATION, value);
        }
    }
    if route.sunset_unix > 0 {
        // RFC 8594: an HTTP-date.
        let sunset = std::time::UNIX_EPOCH + Duration::from_secs(route.sunset_unix);
        if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(sunset)) {
            headers.insert(SUNSET, value);
        }
    }
}

/// Sets the headers of what a whole answer cost and used:
/// `x-switchyard-cost-usd` (or `x-switchyard-cost` with the currency, for
/// prices in another) as an exact decimal, and the token counts.
pub fn stamp_cost(headers: &mut HeaderMap, cost: Option<&Money>, usage: Option<&Usage>) {
    const COST_USD: HeaderName = HeaderName::from_static("x-switchyard-cost-usd");
    const COST: HeaderName = HeaderName::from_static("x-switchyard-cost");
    const PROMPT: HeaderName = HeaderName::from_static("x-switchyard-prompt-tokens");
    const COMPLETION: HeaderName = HeaderName::from_static("x-switchyard-completion-tokens");
    const CACHED: HeaderName = HeaderName::from_static("x-switchyard-cached-tokens");
    const REASONING: HeaderName = HeaderName::from_static("x-switchyard-reasoning-tokens");
    if let Some(cost) = cost {
        let amount = switchyard_common::money::decimal(cost.nanos);
        let (name, text) = if cost.currency == "USD" {
            (COST_USD, amount)
        } else {
            (COST, format!("{amount} {}", cost.currency))
        };
        if let Ok(value) = HeaderValue::from_str(&text) {
            headers.insert(name, value);
        }
    }
    if let Some(usage) = usage {
        headers.reserve(4);
        headers.insert(PROMPT, HeaderValue::from(usage.prompt_tokens));
        headers.insert(COMPLETION, HeaderValue::from(usage.completion_tokens));
        headers.insert(CACHED, HeaderValue::from(usage.cached_prompt_tokens));
        headers.insert(REASONING, HeaderValue::from(usage.reasoning_tokens));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_too_slow_only_after_the_grace_and_below_the_rate() {
        let limits = BodyLimits {
            max_bytes: 1 << 20,
            read_timeout: Duration::from_secs(10),
            min_bytes_per_second: 1000,
            in_flight: ByteBudget::new(usize::MAX),
        };
        // Within the read timeout any rate is fine.
        assert!(!limits.is_too_slow(0, Duration::from_secs(10)));
        // After it, the average must keep up: 20 s needs 20,000 bytes.
        assert!(limits.is_too_slow(19_999, Duration::from_secs(20)));
        assert!(!limits.is_too_slow(20_000, Duration::from_secs(20)));
    }

    #[tokio::test]
    async fn bodies_share_the_budget_of_bodies_in_flight_until_dropped() {
        use axum::response::IntoResponse;
        let limits = BodyLimits {
            max_bytes: 1 << 20,
            read_timeout: Duration::from_secs(10),
            min_bytes_per_second: 0,
            in_flight: ByteBudget::new(100),
        };
        // Chunked (no content-length): the budget is charged as bytes come.
        let read = |size: usize| {
            let limits = limits.clone();
            async move { read_body(Body::from(vec![b'x'; size]), &HeaderMap::new(), &limits).await }
        };
        let held = read(60).await.expect("within the budget");
        assert_eq!(held.len(), 60);
        let refused = read(60).await.expect_err("60 + 60 exceeds 100");
        let response = refused.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            limits.in_flight.in_use(),
            60,
            "a refused body holds nothing"
        );
        drop(held);
        let again = read(60)
            .await
            .expect("the first body's bytes were returned");
        assert_eq!(&again[..], &[b'x'; 60][..]);
    }
}

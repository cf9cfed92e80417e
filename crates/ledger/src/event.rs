//! Usage events as the ledger stores them: one [`UsageRow`] per proto
//! [`UsageEvent`], validated on receipt. A row borrows its text from the
//! event, so flattening a batch copies no strings.

use std::borrow::Cow;

use serde::Serialize;
use switchyard_common::ErrorClass;
use switchyard_proto::v1::{self as pb, UsageEvent};
use uuid::Uuid;

use crate::error::{Error, Result};

/// Latest `created_at` a ClickHouse `DateTime` holds (2106-02-07, u32 seconds).
const MAX_CREATED_AT_UNIX_MS: u64 = u32::MAX as u64 * 1000;

/// Largest duration or version stored: SQLite integers are signed 64-bit,
/// so larger values are clamped to it in both stores.
const MAX_STORED_INTEGER: u64 = i64::MAX as u64;

/// One usage event, validated and flattened into the columns of
/// `usage_events` (identical in SQLite and ClickHouse).
///
/// Serializes as one ClickHouse `JSONEachRow` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageRow<'a> {
    /// Event id as lowercase hyphenated UUID text; the idempotency key.
    /// Borrowed when the event already spells it that way.
    pub event_id: Cow<'a, str>,
    /// Client request id.
    pub request_id: &'a str,
    /// API key id.
    pub key_id: &'a str,
    /// Team id; empty when the key has none.
    pub team_id: &'a str,
    /// End user named by the client.
    pub end_user: &'a str,
    /// Model alias requested.
    pub model: &'a str,
    /// Provider that answered; empty if none did.
    pub provider: &'a str,
    /// Upstream model that answered; empty if none did.
    pub upstream_model: &'a str,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Completion tokens.
    pub completion_tokens: u32,
    /// All tokens.
    pub total_tokens: u32,
    /// Prompt tokens served from the provider's prompt cache.
    pub cached_prompt_tokens: u32,
    /// Hidden reasoning tokens.
    pub reasoning_tokens: u32,
    /// Prompt tokens written to the provider's prompt cache.
    pub cache_write_tokens: u32,
    /// Cost in nano-units (10^-9) of `currency`: the sum of every attempt's
    /// cost, rounded once.
    pub cost_nanos: i64,
    /// ISO 4217 code; empty when the event carries no cost.
    pub currency: &'a str,
    /// 1 when the response came from the cache.
    pub cache_hit: u8,
    /// 1 when the response was streamed.
    pub stream: u8,
    /// Snake_case error class name; empty on success.
    pub error_class: &'static str,
    /// Whole request latency in milliseconds.
    pub latency_ms: u64,
    /// Time to first chunk in milliseconds.
    pub ttft_ms: u64,
    /// Request start, Unix epoch seconds (ClickHouse `DateTime`).
    pub created_at: u32,
    /// Request start, Unix epoch milliseconds.
    pub created_at_ms: u64,
    /// Route requested.
    pub route_id: &'a str,
    /// Deployment that answered; empty if none did.
    pub deployment_id: &'a str,
    /// Snapshot version the request was served under.
    pub snapshot_version: u64,
    /// The request's tags as a JSON object (`{}` when none).
    pub tags: String,
    /// Every attempt as a JSON array of [`AttemptRow`]s.
    pub attempts: String,
    /// Configured user of the key; empty when none.
    pub user_id: &'a str,
    /// `chat` or `embeddings`.
    pub operation: &'a str,
    /// The router's decision record as JSON; empty when there is none.
    pub decision: String,
}

/// [`UsageRow::decision`], as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionRow<'a> {
    /// Each tier's strategy.
    pub strategies: &'a [String],
    /// Deployments in planned order.
    pub order: &'a [String],
    /// Deployments left out, with the step and reason.
    pub skipped: Vec<SkippedRow<'a>>,
    /// The rule that chose the route (`name->route`); left out when none.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub rule: &'a str,
    /// The key policy that chose the route (`tier:free->route`); left out
    /// when none.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub policy: &'a str,
    /// Deployments demoted for their p95 against the route's SLO; left out
    /// when none.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub demoted: &'a [String],
}

/// One entry of [`DecisionRow::skipped`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedRow<'a> {
    /// The deployment.
    pub deployment_id: &'a str,
    /// The planning step that removed it.
    pub step: &'a str,
    /// Why.
    pub reason: &'a str,
}

impl<'a> DecisionRow<'a> {
    fn of(decision: &'a switchyard_proto::v1::Decision) -> Self {
        Self {
            strategies: &decision.strategies,
            order: &decision.order,
            skipped: decision
                .skipped
                .iter()
                .map(|skipped| SkippedRow {
                    deployment_id: &skipped.deployment_id,
                    step: &skipped.step,
                    reason: &skipped.reason,
                })
                .collect(),
            rule: &decision.rule,
            policy: &decision.policy,
            demoted: &decision.demoted,
        }
    }
}

/// One attempt inside [`UsageRow::attempts`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptRow<'a> {
    /// Deployment the attempt went to.
    pub deployment_id: &'a str,
    /// Its provider.
    pub provider: &'a str,
    /// Snake_case error class; empty when the attempt answered.
    pub outcome: &'static str,
    /// Attempt duration in milliseconds.
    pub latency_ms: u64,
    /// Time to the attempt's first chunk in milliseconds; 0 when none.
    pub ttft_ms: u64,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Completion tokens.
    pub completion_tokens: u32,
    /// Cost in nano-units at the deployment's own price.
    pub cost_nanos: i64,
    /// The id of the provider API key it used; left out when the provider
    /// has one key.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub credential: &'a str,
    /// Why it was made: `first`, `retry`, `fallback` or `hedge`.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub reason: &'a str,
}

impl<'a> UsageRow<'a> {
    /// Validates the event at position `index` of a batch and flattens it.
    pub fn from_event(index: usize, event: &'a UsageEvent) -> Result<Self> {
        let invalid = |field: &'static str, reason: &str| Error::InvalidEvent {
            index,
            field,
            reason: reason.to_owned(),
        };
        let event_id =
            canonical_uuid(&event.event_id).ok_or_else(|| invalid("event_id", "must be a UUID"))?;
        if event.request_id.is_empty() {
            return Err(invalid("request_id", "must not be empty"));
        }
        if event.created_at_unix_ms == 0 || event.created_at_unix_ms > MAX_CREATED_AT_UNIX_MS {
            return Err(invalid(
                "created_at_unix_ms",
                "must be Unix epoch milliseconds between 1970 and 2106",
            ));
        }
        let error_class = error_class_name(event.error_class)
            .ok_or_else(|| invalid("error_class", "unknown error class"))?;
        let (cost_nanos, currency) = event
            .cost
            .as_ref()
            .map_or((0, ""), |cost| (cost.nanos, cost.currency.as_str()));
        let no_cost = currency.is_empty() && cost_nanos == 0;
        if !(no_cost || is_currency_code(currency)) {
            return Err(invalid(
                "cost.currency",
                "must be an ISO 4217 code such as USD",
            ));
        }
        let usage = event.usage.unwrap_or_default();
        let attempts = event
            .attempts
            .iter()
            .map(|attempt| {
                let usage = attempt.usage.unwrap_or_default();
                Ok(AttemptRow {
                    deployment_id: &attempt.deployment_id,
                    provider: &attempt.provider,
                    outcome: error_class_name(attempt.outcome)
                        .ok_or_else(|| invalid("attempts.outcome", "unknown error class"))?,
                    latency_ms: attempt.latency_ms.min(MAX_STORED_INTEGER),
                    ttft_ms: attempt.ttft_ms.min(MAX_STORED_INTEGER),
                    prompt_tokens: usage.prompt_tokens,
                    completion_tokens: usage.completion_tokens,
                    cost_nanos: attempt.cost.as_ref().map_or(0, |cost| cost.nanos),
                    credential: &attempt.credential,
                    reason: &attempt.reason,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let created_at = u32::try_from(event.created_at_unix_ms / 1000)
            .map_err(|_| invalid("created_at_unix_ms", "out of range"))?;
        Ok(Self {
            event_id,
            request_id: &event.request_id,
            key_id: &event.key_id,
            team_id: &event.team_id,
            end_user: &event.end_user,
            model: &event.model,
            provider: &event.provider,
            upstream_model: &event.upstream_model,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens,
            cached_prompt_tokens: usage.cached_prompt_tokens,
            reasoning_tokens: usage.reasoning_tokens,
            cache_write_tokens: usage.cache_write_tokens,
            cost_nanos,
            currency,
            cache_hit: u8::from(event.cache_hit),
            stream: u8::from(event.stream),
            error_class,
            latency_ms: event.latency_ms.min(MAX_STORED_INTEGER),
            ttft_ms: event.ttft_ms.min(MAX_STORED_INTEGER),
            created_at,
            created_at_ms: event.created_at_unix_ms,
            route_id: &event.route_id,
            deployment_id: &event.deployment_id,
            snapshot_version: event.snapshot_version.min(MAX_STORED_INTEGER),
            tags: json_text(&event.tags),
            attempts: json_text(&attempts),
            user_id: &event.user_id,
            operation: &event.operation,
            decision: event
                .decision
                .as_ref()
                .map(|decision| json_text(&DecisionRow::of(decision)))
                .unwrap_or_default(),
        })
    }
}

/// `text` as lowercase hyphenated UUID text, borrowed when it already is;
/// `None` when it is not a UUID.
fn canonical_uuid(text: &str) -> Option<Cow<'_, str>> {
    let uuid = Uuid::try_parse(text).ok()?;
    let mut buffer = Uuid::encode_buffer();
    let canonical = uuid.hyphenated().encode_lower(&mut buffer);
    Some(if canonical == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(canonical.to_owned())
    })
}

/// JSON text of a value that always serializes (strings, numbers, maps).
fn json_text<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Returns the stored name of a proto error class: empty when unspecified
/// (success), `None` when the number is unknown.
fn error_class_name(value: i32) -> Option<&'static str> {
    if value == pb::ErrorClass::Unspecified as i32 {
        return Some("");
    }
    ErrorClass::from_proto(value).map(ErrorClass::as_str)
}

/// Whether `code` looks like an ISO 4217 code: three ASCII capitals.
fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|byte| byte.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> UsageEvent {
        UsageEvent {
            event_id: "0192F3A4-5B6C-7D8E-9F00-112233445566".to_owned(),
            request_id: "req-1".to_owned(),
            model: "gpt-4o".to_owned(),
            usage: Some(pb::Usage {
                prompt_tokens: 10,
                completion_tokens: 5,
                total_tokens: 15,
                cached_prompt_tokens: 2,
                reasoning_tokens: 1,
                cache_write_tokens: 1,
            }),
            cost: Some(pb::Money {
                nanos: 1234,
                currency: "USD".to_owned(),
            }),
            cache_hit: true,
            error_class: pb::ErrorClass::RateLimited as i32,
            created_at_unix_ms: 1_700_000_000_123,
            ..UsageEvent::default()
        }
    }

    #[test]
    fn flattens_a_valid_event() {
        let event = event();
        let row = UsageRow::from_event(0, &event).expect("valid event");
        assert_eq!(row.event_id, "0192f3a4-5b6c-7d8e-9f00-112233445566");
        assert_eq!(row.total_tokens, 15);
        assert_eq!(row.cost_nanos, 1234);
        assert_eq!(row.cache_write_tokens, 1);
        assert_eq!(row.tags, "{}");
        assert_eq!(row.attempts, "[]");
        assert_eq!(row.cache_hit, 1);
        assert_eq!(row.error_class, "rate_limited");
        assert_eq!(row.created_at, 1_700_000_000);
        assert_eq!(row.created_at_ms, 1_700_000_000_123);
    }

    #[test]
    fn attempts_and_tags_become_json() {
        let mut event = event();
        event.tags.insert("feature".to_owned(), "search".to_owned());
        event.attempts = vec![
            pb::Attempt {
                deployment_id: "a".to_owned(),
                provider: "openai".to_owned(),
                outcome: pb::ErrorClass::RateLimited as i32,
                latency_ms: 12,
                ..pb::Attempt::default()
            },
            pb::Attempt {
                deployment_id: "b".to_owned(),
                provider: "anthropic".to_owned(),
                cost: Some(pb::Money {
                    nanos: 1234,
                    currency: "USD".to_owned(),
                }),
                ..pb::Attempt::default()
            },
        ];
        let row = UsageRow::from_event(0, &event).expect("valid event");
        assert_eq!(row.tags, r#"{"feature":"search"}"#);
        let attempts: serde_json::Value = serde_json::from_str(&row.attempts).expect("JSON");
        assert_eq!(attempts[0]["outcome"], "rate_limited");
        assert_eq!(attempts[1]["outcome"], "");
        assert_eq!(attempts[1]["cost_nanos"], 1234);
    }

    #[test]
    fn a_canonical_event_id_is_borrowed_and_huge_durations_are_clamped() {
        let mut event = event();
        event.event_id = "0192f3a4-5b6c-7d8e-9f00-112233445566".to_owned();
        event.latency_ms = u64::MAX;
        event.snapshot_version = u64::MAX;
        let row = UsageRow::from_event(0, &event).expect("valid event");
        assert!(matches!(row.event_id, Cow::Borrowed(_)));
        assert_eq!(row.latency_ms, i64::MAX as u64);
        assert_eq!(row.snapshot_version, i64::MAX as u64);
    }

    #[test]
    fn success_has_an_empty_error_class() {
        let mut event = event();
        event.error_class = pb::ErrorClass::Unspecified as i32;
        let row = UsageRow::from_event(0, &event).expect("valid event");
        assert_eq!(row.error_class, "");
    }

    #[test]
    fn every_error_class_has_a_name() {
        for class in ErrorClass::ALL {
            assert_eq!(
                error_class_name(class.to_proto() as i32),
                Some(class.as_str())
            );
        }
        assert_eq!(error_class_name(999), None);
    }

    #[test]
    fn rejects_invalid_fields() {
        type Mutation = fn(&mut UsageEvent);
        let cases: [(Mutation, &str); 6] = [
            (
                |event| {
                    event.attempts.push(pb::Attempt {
                        outcome: 99,
                        ..pb::Attempt::default()
                    })
                },
                "attempts.outcome",
            ),
            (|event| event.event_id = "nope".to_owned(), "event_id"),
            (|event| event.request_id.clear(), "request_id"),
            (|event| event.created_at_unix_ms = 0, "created_at_unix_ms"),
            (|event| event.error_class = 77, "error_class"),
            (
                |event| {
                    event.cost = Some(pb::Money {
                        nanos: 5,
                        currency: String::new(),
                    })
                },
                "cost.currency",
            ),
        ];
        for (mutate, expected_field) in cases {
            let mut event = event();
            mutate(&mut event);
            match UsageRow::from_event(3, &event) {
                Err(Error::InvalidEvent { index, field, .. }) => {
                    assert_eq!((index, field), (3, expected_field));
                }
                other => panic!("expected {expected_field} to be rejected, got {other:?}"),
            }
        }
    }
}

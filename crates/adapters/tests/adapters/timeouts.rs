//! The router's per-attempt timeouts, enforced against a slow provider:
//! the first token, the silence between events and the whole attempt each
//! have their own bound, over the provider's `timeout`.

use std::time::{Duration, Instant};

use switchyard_common::ErrorClass;
use switchyard_proto::v1::AttemptTimeouts;
use switchyard_test_support::Fault;

use crate::{Harness, content, user_request};

fn first_token(ms: u64) -> AttemptTimeouts {
    AttemptTimeouts {
        first_token_ms: ms,
        ..AttemptTimeouts::default()
    }
}

#[tokio::test]
async fn a_first_token_over_its_timeout_fails_the_attempt_as_a_timeout_at_once() {
    let harness = Harness::start().await;
    harness
        .fake
        .push_fault(Fault::Delay(Duration::from_secs(3)));
    let mut target = harness.openai_target();
    target.timeout_ms = 10_000;
    let deployment = harness.deploy(&target);

    let started = Instant::now();
    let outcome = harness
        .chat_within(deployment, user_request("hi", true), Some(first_token(300)))
        .await;

    assert_eq!(outcome.expect_error().class, ErrorClass::Timeout);
    assert!(outcome.chunks.is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(2),
        "cut at the first-token timeout, not the provider's: {waited:?}"
    );
}

#[tokio::test]
async fn a_first_token_within_its_timeout_is_served_though_it_took_longer_than_the_idle_bound() {
    let harness = Harness::start().await;
    harness
        .fake
        .push_fault(Fault::Delay(Duration::from_millis(600)));
    let mut target = harness.openai_target();
    // The provider's own timeout would have cut it.
    target.timeout_ms = 200;
    let deployment = harness.deploy(&target);
    let timeouts = AttemptTimeouts {
        first_token_ms: 3_000,
        idle_ms: 200,
        ..AttemptTimeouts::default()
    };

    let outcome = harness
        .chat_within(deployment, user_request("hi", true), Some(timeouts))
        .await;

    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert!(!content(&outcome.chunks).is_empty());
}

#[tokio::test]
async fn the_attempts_total_timeout_cuts_a_stream_that_never_goes_silent() {
    let harness = Harness::start().await;
    // A byte every 20 ms: never idle for long, never done.
    harness
        .fake
        .push_fault(Fault::Trickle(Duration::from_millis(20)));
    let mut target = harness.openai_target();
    target.timeout_ms = 60_000;
    let deployment = harness.deploy(&target);
    let timeouts = AttemptTimeouts {
        total_ms: 700,
        ..AttemptTimeouts::default()
    };

    let started = Instant::now();
    let outcome = harness
        .chat_within(deployment, user_request("hi", true), Some(timeouts))
        .await;

    assert_eq!(outcome.expect_error().class, ErrorClass::Timeout);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(600) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_buffered_answer_has_no_first_token_to_wait_for_and_is_bounded_by_its_total() {
    let harness = Harness::start().await;
    let mut target = harness.openai_target();
    target.timeout_ms = 60_000;
    let deployment = harness.deploy(&target);
    harness
        .fake
        .push_fault(Fault::Delay(Duration::from_millis(500)));

    // The first-token bound is the stream's; the whole answer took 500 ms.
    let served = harness
        .chat_within(
            deployment.clone(),
            user_request("hi", false),
            Some(first_token(100)),
        )
        .await;
    assert!(served.error.is_none(), "{:?}", served.error);

    harness
        .fake
        .push_fault(Fault::Delay(Duration::from_secs(3)));
    let started = Instant::now();
    let cut = harness
        .chat_within(
            deployment,
            user_request("hi", false),
            Some(AttemptTimeouts {
                total_ms: 400,
                ..first_token(100)
            }),
        )
        .await;
    assert_eq!(cut.expect_error().class, ErrorClass::Timeout);
    assert!(started.elapsed() < Duration::from_secs(2));
}

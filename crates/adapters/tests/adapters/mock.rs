//! The mock provider through the real gRPC service.

use std::time::Duration;

use switchyard_common::ErrorClass;
use switchyard_proto::v1::{FinishReason, Role};

use crate::{Harness, Target, content, user_request};

fn mock_target() -> Target {
    Target {
        provider: "demo".to_owned(),
        kind: "mock".to_owned(),
        upstream_model: "mock-1".to_owned(),
        ..Target::default()
    }
}

const REPLY: &str = "This is a mock response from Switchyard. You said: hello mock world";

#[tokio::test]
async fn non_streamed_mock_answers_in_one_chunk() {
    let harness = Harness::start().await;

    let chunks = harness
        .chat(mock_target(), user_request("hello mock world", false))
        .await
        .expect_chunks();

    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].content, REPLY);
    assert_eq!(chunks[0].role(), Role::Assistant);
    assert_eq!(chunks[0].finish_reason(), FinishReason::Stop);
    assert_eq!(chunks[0].model, "mock-1");
    let usage = chunks[0].usage.expect("usage");
    // Prompt: "You are terse." (3) + "hello mock world" (3); reply: 12 words.
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (6, 12, 18)
    );
    assert!(
        harness.fake.requests().is_empty(),
        "the mock uses no network"
    );
}

#[tokio::test]
async fn streamed_mock_answers_word_by_word_then_finish_then_usage() {
    let harness = Harness::start().await;

    let chunks = harness
        .chat(mock_target(), user_request("hello mock world", true))
        .await
        .expect_chunks();

    assert_eq!(content(&chunks), REPLY);
    assert_eq!(chunks.len(), 12 + 2);
    assert_eq!(chunks[0].content, "This ");
    assert_eq!(chunks[12].finish_reason(), FinishReason::Stop);
    assert_eq!(chunks[13].usage.expect("usage last").completion_tokens, 12);
}

#[tokio::test]
async fn mock_error_trigger_fails_with_that_class() {
    let harness = Harness::start().await;

    let outcome = harness
        .chat(mock_target(), user_request("mock:error:rate_limited", true))
        .await;

    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::RateLimited);
    assert_eq!(error.retry_after, Some(Duration::from_secs(1)));
    assert_eq!(error.provider.as_deref(), Some("demo"));

    let outcome = harness
        .chat(
            mock_target(),
            user_request("mock:error:context_length_exceeded", false),
        )
        .await;
    assert_eq!(
        outcome.expect_error().class,
        ErrorClass::ContextLengthExceeded
    );
}

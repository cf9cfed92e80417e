//! Upstream failures, classified: statuses, in-band errors, dropped
//! connections, timeouts, missing secrets and unknown kinds.

use std::time::Duration;

use switchyard_adapters::AdapterConfig;
use switchyard_common::{ErrorClass, config::Environment};
use switchyard_test_support::{Fault, openai_error_body};

use crate::{API_KEY, Harness, Outcome, content, user_request};

fn status_fault(status: u16, body: String, headers: &[(&str, &str)]) -> Fault {
    Fault::Status {
        status,
        body,
        headers: headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
    }
}

#[tokio::test]
async fn rate_limit_carries_retry_after_and_the_upstream_message() {
    let harness = Harness::start().await;
    let body = openai_error_body(
        "Rate limit reached for requests",
        "requests",
        "rate_limit_exceeded",
    );
    harness
        .fake
        .push_fault(status_fault(429, body, &[("retry-after", "7")]));

    let outcome = harness
        .chat(harness.openai_target(), user_request("hi", true))
        .await;

    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::RateLimited);
    assert_eq!(error.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(error.provider.as_deref(), Some("fake-openai"));
    assert_eq!(error.message, "Rate limit reached for requests");
    assert!(outcome.chunks.is_empty());
}

#[tokio::test]
async fn insufficient_quota_is_still_rate_limited_and_retry_after_ms_wins() {
    let harness = Harness::start().await;
    let body = openai_error_body(
        "You exceeded your current quota",
        "insufficient_quota",
        "insufficient_quota",
    );
    harness.fake.push_fault(status_fault(
        429,
        body,
        &[("retry-after", "7"), ("retry-after-ms", "250")],
    ));

    let outcome = harness
        .chat(harness.openai_target(), user_request("hi", false))
        .await;

    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::RateLimited);
    assert_eq!(error.retry_after, Some(Duration::from_millis(250)));
}

#[tokio::test]
async fn context_length_code_refines_a_bad_request() {
    let harness = Harness::start().await;
    let body = openai_error_body(
        "This model's maximum context length is 128000 tokens.",
        "invalid_request_error",
        "context_length_exceeded",
    );
    harness.fake.push_fault(status_fault(400, body, &[]));

    let outcome = harness
        .chat(harness.openai_target(), user_request("hi", false))
        .await;

    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::ContextLengthExceeded);
    assert!(error.message.contains("maximum context length"));
}

#[tokio::test]
async fn server_error_is_unavailable_with_a_generic_message() {
    let harness = Harness::start().await;
    let body = openai_error_body(
        &format!("internal failure while using key {API_KEY}"),
        "server_error",
        "",
    );
    harness.fake.push_fault(status_fault(500, body, &[]));

    let outcome = harness
        .chat(harness.openai_target(), user_request("hi", false))
        .await;

    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::UpstreamUnavailable);
    assert!(!error.message.contains(API_KEY), "{}", error.message);
    assert!(
        !error.message.contains("internal failure"),
        "{}",
        error.message
    );
    assert!(!error.message.contains("Bearer"), "{}", error.message);
    assert!(error.message.contains("fake-openai"), "{}", error.message);
}

#[tokio::test]
async fn rejected_key_is_a_provider_auth_error_without_the_key() {
    let harness = Harness::start().await;
    let body = openai_error_body(
        &format!("Incorrect API key provided: {API_KEY}."),
        "invalid_request_error",
        "invalid_api_key",
    );
    harness.fake.push_fault(status_fault(401, body, &[]));

    let outcome = harness
        .chat(harness.openai_target(), user_request("hi", false))
        .await;

    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::ProviderAuth);
    assert!(!error.message.contains(API_KEY), "{}", error.message);
}

#[tokio::test]
async fn overloaded_and_gateway_timeout_statuses_are_classified() {
    let harness = Harness::start().await;
    for (status, class) in [
        (529, ErrorClass::Overloaded),
        (504, ErrorClass::Timeout),
        (404, ErrorClass::NotFound),
        (403, ErrorClass::ProviderAuth),
    ] {
        harness
            .fake
            .push_fault(status_fault(status, "not json".to_owned(), &[]));
        let outcome = harness
            .chat(harness.openai_target(), user_request("hi", false))
            .await;
        assert_eq!(outcome.expect_error().class, class, "status {status}");
    }
}

#[tokio::test]
async fn dropped_connection_mid_stream_ends_with_an_error_after_chunks() {
    let harness = Harness::start().await;
    harness
        .fake
        .push_fault(Fault::DropMidStream { after_chunks: 3 });

    let outcome = harness
        .chat(harness.openai_target(), user_request("a b c d e f", true))
        .await;

    // The role chunk, "Echo: " and "a " arrived before the drop.
    assert_eq!(outcome.chunks.len(), 3, "{:#?}", outcome.chunks);
    assert_eq!(content(&outcome.chunks), "Echo: a ");
    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::UpstreamUnavailable);
    assert!(!error.message.contains("127.0.0.1"), "{}", error.message);
}

#[tokio::test]
async fn error_event_in_a_stream_ends_it_with_a_classified_error() {
    let harness = Harness::start().await;
    let first = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}"#;
    let error = openai_error_body(
        "Rate limit exceeded mid-stream",
        "rate_limit_error",
        "rate_limit_exceeded",
    );
    let body = format!("data: {first}\n\ndata: {error}\n\ndata: [DONE]\n\n");
    harness.fake.push_fault(status_fault(
        200,
        body,
        &[("content-type", "text/event-stream")],
    ));

    let outcome = harness
        .chat(harness.openai_target(), user_request("hi", true))
        .await;

    assert_eq!(content(&outcome.chunks), "Hi");
    assert_eq!(outcome.expect_error().class, ErrorClass::RateLimited);
}

#[tokio::test]
async fn slow_provider_times_out_within_the_target_timeout() {
    let harness = Harness::start().await;
    harness
        .fake
        .push_fault(Fault::Delay(Duration::from_secs(5)));
    let mut target = harness.openai_target();
    target.timeout_ms = 200;

    let started = std::time::Instant::now();
    let outcome = harness.chat(target, user_request("hi", true)).await;

    assert_eq!(outcome.expect_error().class, ErrorClass::Timeout);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_trickling_answer_is_cut_at_the_attempt_deadline() {
    // One byte every 50 ms keeps every read under the idle timeout, and the
    // whole answer would take over ten seconds.
    let harness = Harness::start().await;
    harness
        .fake
        .push_fault(Fault::Trickle(Duration::from_millis(50)));
    let mut target = harness.openai_target();
    target.timeout_ms = 500;

    let started = std::time::Instant::now();
    let outcome = harness.chat(target, user_request("hi", false)).await;

    assert_eq!(outcome.expect_error().class, ErrorClass::Timeout);
    assert!(outcome.chunks.is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_trickling_stream_is_cut_when_no_event_completes_within_the_idle_timeout() {
    // Every read arrives within 50 ms, but a whole event takes seconds.
    let harness = Harness::start().await;
    harness
        .fake
        .push_fault(Fault::Trickle(Duration::from_millis(20)));
    let mut target = harness.openai_target();
    target.timeout_ms = 500;

    let started = std::time::Instant::now();
    let outcome = harness.chat(target, user_request("hi", true)).await;

    assert_eq!(outcome.expect_error().class, ErrorClass::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_stream_line_over_the_event_limit_ends_the_attempt() {
    let harness = Harness::start_configured(&AdapterConfig {
        max_event_bytes: 64 * 1024,
        ..AdapterConfig::default()
    })
    .await;
    let line = format!("data: {}", "x".repeat(1024 * 1024));
    harness.fake.push_fault(Fault::Status {
        status: 200,
        body: line,
        headers: vec![("content-type".to_owned(), "text/event-stream".to_owned())],
    });

    let outcome = harness
        .chat(harness.openai_target(), user_request("hi", true))
        .await;

    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::UpstreamUnavailable);
    assert!(
        error.message.contains("line longer than 65536 bytes"),
        "{}",
        error.message
    );
}

/// A non-streamed OpenAI answer whose content is `size` bytes.
fn completion_of(size: usize) -> String {
    serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "y".repeat(size)},
                     "finish_reason": "stop"}],
    })
    .to_string()
}

/// Starts an adapter with `config` and asks it for a non-streamed answer
/// of `size` bytes of content.
async fn buffered_answer(config: AdapterConfig, size: usize) -> (Harness, Outcome) {
    let harness = Harness::start_configured(&config).await;
    harness
        .fake
        .push_fault(status_fault(200, completion_of(size), &[]));
    let outcome = harness
        .chat(harness.openai_target(), user_request("hi", false))
        .await;
    (harness, outcome)
}

#[tokio::test]
async fn answers_over_the_process_budget_are_refused_and_the_budget_is_returned() {
    let config = AdapterConfig {
        max_buffered_answer_bytes: 48 * 1024,
        ..AdapterConfig::default()
    };
    let (harness, outcome) = buffered_answer(config, 64 * 1024).await;
    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::Overloaded);
    assert!(
        error.message.contains("buffering too many answers"),
        "{}",
        error.message
    );

    // Two answers that fit one at a time: each returns its bytes when done.
    for _ in 0..2 {
        harness
            .fake
            .push_fault(status_fault(200, completion_of(40 * 1024), &[]));
        let chunks = harness
            .chat(harness.openai_target(), user_request("hi", false))
            .await
            .expect_chunks();
        assert_eq!(content(&chunks).len(), 40 * 1024);
    }
}

#[tokio::test]
async fn an_answer_over_the_memory_budget_is_refused() {
    let config = AdapterConfig {
        max_answer_bytes: 16 * 1024,
        ..AdapterConfig::default()
    };
    let (_harness, outcome) = buffered_answer(config, 64 * 1024).await;
    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::UpstreamUnavailable);
    assert!(
        error.message.contains("larger than the 16384 bytes"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn unreachable_provider_is_unavailable() {
    let harness = Harness::start().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let address = closed.local_addr().expect("bound address");
    drop(closed);
    let mut target = harness.openai_target();
    target.base_url = format!("http://user:hunter2@{address}/v1");

    let outcome = harness.chat(target, user_request("hi", false)).await;

    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::UpstreamUnavailable);
    assert!(!error.message.contains("hunter2"), "{}", error.message);
}

#[tokio::test]
async fn missing_secret_is_a_provider_auth_error_naming_the_variable() {
    let harness = Harness::start_with(Environment::new()).await;

    let outcome = harness
        .chat(harness.openai_target(), user_request("hi", false))
        .await;

    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::ProviderAuth);
    assert!(
        error.message.contains("FAKE_OPENAI_API_KEY"),
        "{}",
        error.message
    );
    assert!(error.message.contains("fake-openai"), "{}", error.message);
    assert!(
        harness.fake.requests().is_empty(),
        "nothing is sent without a key"
    );
}

#[tokio::test]
async fn unknown_kind_is_an_invalid_request() {
    let harness = Harness::start().await;
    let mut target = harness.openai_target();
    target.kind = "carrier-pigeon".to_owned();

    let outcome = harness.chat(target, user_request("hi", false)).await;

    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::InvalidRequest);
    assert_eq!(
        error.message,
        "provider kind `carrier-pigeon` is not supported"
    );
}

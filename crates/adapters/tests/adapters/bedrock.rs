//! The Bedrock Converse provider against `FakeBedrock`, which verifies every
//! SigV4 signature with its own secret: what goes upstream (URL, signed
//! headers, body) and what comes back, JSON and binary event stream.

use std::collections::BTreeMap;

use serde_json::json;
use switchyard_common::{ErrorClass, config::Environment};
use switchyard_proto::v1::{
    ChatChunk, ChatRequest, ContentPart, FinishReason, FunctionDefinition, ImageUrl, Message,
    ResponseFormat, ResponseFormatType, Role, Tool, ToolCall, ToolChoice, ToolChoiceMode,
    content_part::Part, tool_choice::Choice,
};
use switchyard_test_support::{
    FAKE_AWS_ACCESS_KEY_ID, FAKE_AWS_SECRET_ACCESS_KEY, FAKE_BEDROCK_API_KEY, FakeBedrock, Fault,
    bedrock_error_fault,
};

use crate::{Harness, Target, content, env_key, text_message, user_request};

const MODEL_ID: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const ENCODED_MODEL_ID: &str = "anthropic.claude-3-5-sonnet-20240620-v1%3A0";
const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLETOKEN";

/// An adapter whose environment holds `secret` as the AWS secret key, and
/// a fake that verifies signatures with [`FAKE_AWS_SECRET_ACCESS_KEY`].
async fn start_with_secret(secret: &str) -> (Harness, FakeBedrock) {
    let environment = Environment::from([
        ("AWS_KEY_ID".to_owned(), FAKE_AWS_ACCESS_KEY_ID.to_owned()),
        ("AWS_SECRET".to_owned(), secret.to_owned()),
        ("AWS_TOKEN".to_owned(), SESSION_TOKEN.to_owned()),
        ("BEDROCK_KEY".to_owned(), FAKE_BEDROCK_API_KEY.to_owned()),
    ]);
    (
        Harness::start_with(environment).await,
        FakeBedrock::start().await,
    )
}

async fn start() -> (Harness, FakeBedrock) {
    start_with_secret(FAKE_AWS_SECRET_ACCESS_KEY).await
}

/// A SigV4 target in `us-east-1` at the fake.
fn bedrock_target(fake: &FakeBedrock) -> Target {
    Target {
        provider: "fake-bedrock".to_owned(),
        kind: "bedrock".to_owned(),
        base_url: fake.base_url(),
        upstream_model: MODEL_ID.to_owned(),
        options: BTreeMap::from([("region".to_owned(), "us-east-1".to_owned())]),
        secrets: BTreeMap::from([
            ("aws_access_key_id".to_owned(), env_key("AWS_KEY_ID")),
            ("aws_secret_access_key".to_owned(), env_key("AWS_SECRET")),
        ]),
        ..Target::default()
    }
}

fn weather_tool() -> Tool {
    Tool {
        function: Some(FunctionDefinition {
            name: "get_weather".to_owned(),
            description: "Current weather in a city.".to_owned(),
            parameters_json: r#"{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}"#.to_owned(),
            strict: None,
        }),
    }
}

fn finish_reasons(chunks: &[ChatChunk]) -> Vec<FinishReason> {
    chunks
        .iter()
        .map(ChatChunk::finish_reason)
        .filter(|reason| *reason != FinishReason::Unspecified)
        .collect()
}

#[tokio::test]
async fn non_streamed_request_is_signed_translated_and_answered() {
    let (harness, fake) = start().await;
    let mut request = user_request("Hello world", false);
    request
        .messages
        .insert(1, text_message(Role::Developer, "Answer in English."));
    request.tools = vec![weather_tool()];
    request.tool_choice = Some(ToolChoice {
        choice: Some(Choice::Mode(ToolChoiceMode::Auto as i32)),
    });
    request.temperature = Some(0.25);
    request.max_tokens = Some(64);
    request.stop = vec!["STOP".to_owned()];
    request.extra_json = r#"{"additionalModelRequestFields":{"top_k":40}}"#.to_owned();

    let chunks = harness
        .chat(bedrock_target(&fake), request)
        .await
        .expect_chunks();

    let received = fake.requests();
    assert_eq!(received.len(), 1);
    let upstream = &received[0];
    assert_eq!(
        (upstream.method.as_str(), upstream.path.as_str()),
        (
            "POST",
            format!("/model/{ENCODED_MODEL_ID}/converse").as_str()
        )
    );
    let authorization = &upstream.headers["authorization"];
    let credential_prefix = format!("AWS4-HMAC-SHA256 Credential={FAKE_AWS_ACCESS_KEY_ID}/");
    assert!(
        authorization.starts_with(&credential_prefix),
        "{authorization}"
    );
    assert!(
        authorization.contains(
            "/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature="
        ),
        "{authorization}"
    );
    assert!(!authorization.contains(FAKE_AWS_SECRET_ACCESS_KEY));
    assert_eq!(upstream.headers["x-amz-date"].len(), 16);
    assert_eq!(upstream.headers["x-amz-content-sha256"].len(), 64);
    assert_eq!(upstream.headers["content-type"], "application/json");
    assert_eq!(upstream.headers["accept"], "application/json");
    assert!(!upstream.headers.contains_key("x-amz-security-token"));
    assert_eq!(
        upstream.body,
        json!({
            "messages": [{"role": "user", "content": [{"text": "Hello world"}]}],
            "system": [{"text": "You are terse."}, {"text": "Answer in English."}],
            "inferenceConfig": {"maxTokens": 64, "temperature": 0.25, "stopSequences": ["STOP"]},
            "toolConfig": {
                "tools": [{"toolSpec": {
                    "name": "get_weather",
                    "description": "Current weather in a city.",
                    "inputSchema": {"json": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}
                }}],
                "toolChoice": {"auto": {}}
            },
            "additionalModelRequestFields": {"top_k": 40}
        })
    );

    assert_eq!(chunks.len(), 1);
    let chunk = &chunks[0];
    assert_eq!(chunk.role(), Role::Assistant);
    assert_eq!(chunk.content, "Echo: Hello world");
    assert_eq!(chunk.finish_reason(), FinishReason::Stop);
    assert_eq!(chunk.model, MODEL_ID);
    assert_eq!(
        chunk.provider_response_id,
        "5e3c9a1d-7b2f-4c8e-9d01-000000000001"
    );
    let usage = chunk.usage.expect("usage on the only chunk");
    // "You are terse." + "Answer in English." + "Hello world" = 8 words; the reply 3.
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (8, 3, 11)
    );
}

#[tokio::test]
async fn streamed_text_arrives_from_the_event_stream_word_by_word() {
    let (harness, fake) = start().await;

    let chunks = harness
        .chat(bedrock_target(&fake), user_request("one two three", true))
        .await
        .expect_chunks();

    let upstream = &fake.requests()[0];
    assert_eq!(
        upstream.path,
        format!("/model/{ENCODED_MODEL_ID}/converse-stream")
    );
    assert_eq!(
        upstream.headers["accept"],
        "application/vnd.amazon.eventstream"
    );
    assert_eq!(content(&chunks), "Echo: one two three");
    assert_eq!(chunks[0].role(), Role::Assistant);
    assert_eq!(chunks[0].model, MODEL_ID);
    assert!(!chunks[0].provider_response_id.is_empty());
    // role, four words, finish, usage.
    assert_eq!(chunks.len(), 7, "{chunks:#?}");
    assert_eq!(chunks[5].finish_reason(), FinishReason::Stop);
    let usage = chunks[6].usage.expect("a final usage chunk");
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (6, 4, 10)
    );
    assert!(chunks[..6].iter().all(|chunk| chunk.usage.is_none()));
}

#[tokio::test]
async fn streamed_tool_call_arrives_as_tool_call_deltas() {
    let (harness, fake) = start().await;
    let mut request = user_request("What is the weather in Boston?", true);
    request.tools = vec![weather_tool()];

    let chunks = harness
        .chat(bedrock_target(&fake), request)
        .await
        .expect_chunks();

    let deltas: Vec<_> = chunks.iter().flat_map(|chunk| &chunk.tool_calls).collect();
    assert_eq!(deltas.len(), 3, "header delta and two argument fragments");
    assert_eq!(deltas[0].id, "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q");
    assert_eq!(deltas[0].name, "get_weather");
    assert!(deltas.iter().all(|delta| delta.index == 0));
    let arguments: String = deltas
        .iter()
        .map(|delta| delta.arguments.as_str())
        .collect();
    assert_eq!(arguments, r#"{"location":"Boston, MA"}"#);
    assert_eq!(finish_reasons(&chunks), vec![FinishReason::ToolCalls]);
    let usage = chunks
        .last()
        .and_then(|chunk| chunk.usage)
        .expect("usage last");
    assert_eq!(usage.completion_tokens, 9);
}

#[tokio::test]
async fn tool_round_trip_and_images_are_sent_as_alternating_turns() {
    let (harness, fake) = start().await;
    let mut request = user_request("weather please", false);
    request.tools = vec![weather_tool()];
    let first = harness
        .chat(bedrock_target(&fake), request.clone())
        .await
        .expect_chunks();
    let call = first[0].tool_calls[0].clone();
    assert_eq!(first[0].finish_reason(), FinishReason::ToolCalls);
    assert_eq!(call.arguments, r#"{"location":"Boston, MA"}"#);

    request.messages.push(Message {
        role: Role::Assistant as i32,
        content_is_null: true,
        tool_calls: vec![ToolCall {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
        }],
        ..Message::default()
    });
    request.messages.push(Message {
        tool_call_id: call.id.clone(),
        ..text_message(Role::Tool, r#"{"temperature_f": 72}"#)
    });
    request.messages.push(Message {
        role: Role::User as i32,
        content: vec![
            ContentPart {
                part: Some(Part::Text("And this picture?".to_owned())),
            },
            ContentPart {
                part: Some(Part::ImageUrl(ImageUrl {
                    url: "data:image/jpeg;base64,/9j/4AAQSkZJRg==".to_owned(),
                    detail: String::new(),
                })),
            },
        ],
        ..Message::default()
    });
    let second = harness
        .chat(bedrock_target(&fake), request)
        .await
        .expect_chunks();

    assert_eq!(second[0].content, "Echo: And this picture?");
    let upstream = &fake.requests()[1];
    assert_eq!(
        upstream.body["messages"],
        json!([
            {"role": "user", "content": [{"text": "weather please"}]},
            {"role": "assistant", "content": [{"toolUse": {
                "toolUseId": call.id, "name": "get_weather", "input": {"location": "Boston, MA"}}}]},
            {"role": "user", "content": [
                {"toolResult": {"toolUseId": call.id, "content": [{"json": {"temperature_f": 72}}]}},
                {"text": "And this picture?"},
                {"image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQSkZJRg=="}}}
            ]}
        ])
    );
}

#[tokio::test]
async fn json_schema_is_a_forced_tool_whose_input_is_the_content() {
    let (harness, fake) = start().await;
    for stream in [false, true] {
        let mut request = user_request("Where?", stream);
        request.response_format = Some(ResponseFormat {
            r#type: ResponseFormatType::JsonSchema as i32,
            json_schema_json: r#"{"name":"place","schema":{"type":"object","properties":{"location":{"type":"string"}}},"strict":true}"#.to_owned(),
        });

        let chunks = harness
            .chat(bedrock_target(&fake), request)
            .await
            .expect_chunks();

        assert_eq!(
            content(&chunks),
            r#"{"location":"Boston, MA"}"#,
            "stream: {stream}"
        );
        assert!(chunks.iter().all(|chunk| chunk.tool_calls.is_empty()));
        assert_eq!(finish_reasons(&chunks), vec![FinishReason::Stop]);
    }
    let upstream = &fake.requests()[0];
    assert_eq!(
        upstream.body["toolConfig"],
        json!({
            "tools": [{"toolSpec": {
                "name": "place",
                "description": "Answers in the required JSON format.",
                "inputSchema": {"json": {"type": "object", "properties": {"location": {"type": "string"}}}}
            }}],
            "toolChoice": {"tool": {"name": "place"}}
        })
    );
}

#[tokio::test]
async fn a_throttling_exception_mid_stream_ends_it_rate_limited() {
    let (harness, fake) = start().await;
    let message = "Too many tokens, please wait before trying again.";
    fake.push_stream_exception(3, "throttlingException", message);

    let outcome = harness
        .chat(bedrock_target(&fake), user_request("one two three", true))
        .await;

    assert_eq!(content(&outcome.chunks), "Echo: one ");
    assert!(finish_reasons(&outcome.chunks).is_empty());
    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::RateLimited);
    assert_eq!(error.message, message);
    assert_eq!(error.provider.as_deref(), Some("fake-bedrock"));
}

#[tokio::test]
async fn a_dropped_stream_is_an_error_not_a_short_answer() {
    let (harness, fake) = start().await;
    fake.push_fault(Fault::DropMidStream { after_chunks: 3 });

    let outcome = harness
        .chat(bedrock_target(&fake), user_request("one two three", true))
        .await;

    assert!(!outcome.chunks.is_empty());
    assert!(finish_reasons(&outcome.chunks).is_empty());
    assert_eq!(
        outcome.expect_error().class,
        ErrorClass::UpstreamUnavailable
    );
}

#[tokio::test]
async fn a_trickling_event_stream_is_cut_when_no_message_completes_within_the_idle_timeout() {
    // A byte every 20 ms keeps every read under the idle timeout, but one
    // whole message takes seconds.
    let (harness, fake) = start().await;
    fake.push_fault(Fault::Trickle(std::time::Duration::from_millis(20)));
    let mut target = bedrock_target(&fake);
    target.timeout_ms = 500;

    let started = std::time::Instant::now();
    let outcome = harness
        .chat(target, user_request("one two three", true))
        .await;

    assert_eq!(outcome.expect_error().class, ErrorClass::Timeout);
    assert!(outcome.chunks.is_empty());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn http_errors_are_classified_by_their_error_type() {
    let (harness, fake) = start().await;
    let cases = [
        (
            429,
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
            ErrorClass::RateLimited,
        ),
        (
            403,
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
            ErrorClass::ProviderAuth,
        ),
        (
            400,
            "ValidationException",
            "Input is too long for requested model.",
            ErrorClass::ContextLengthExceeded,
        ),
        (
            400,
            "ValidationException",
            "The model returned the following errors: temperature: range: 0..1",
            ErrorClass::InvalidRequest,
        ),
        (
            404,
            "ResourceNotFoundException",
            "Could not resolve the foundation model from the provided model identifier.",
            ErrorClass::NotFound,
        ),
        (
            424,
            "ModelErrorException",
            "The model failed to process the request.",
            ErrorClass::UpstreamUnavailable,
        ),
        (
            408,
            "ModelTimeoutException",
            "The request took too long to process.",
            ErrorClass::Timeout,
        ),
        (
            503,
            "ServiceUnavailableException",
            "Bedrock is unable to process your request.",
            ErrorClass::UpstreamUnavailable,
        ),
    ];
    for (status, error_type, message, class) in cases {
        fake.push_fault(bedrock_error_fault(status, error_type, message));
        let outcome = harness
            .chat(bedrock_target(&fake), user_request("hi", false))
            .await;
        let error = outcome.expect_error();
        assert_eq!(error.class, class, "{error_type}");
        assert_eq!(error.provider.as_deref(), Some("fake-bedrock"));
        if matches!(
            class,
            ErrorClass::RateLimited
                | ErrorClass::InvalidRequest
                | ErrorClass::ContextLengthExceeded
        ) {
            assert_eq!(error.message, message);
        }
    }
}

#[tokio::test]
async fn a_wrong_secret_is_rejected_by_the_signature_check() {
    let (harness, fake) = start_with_secret("not-the-secret-the-fake-knows").await;

    let outcome = harness
        .chat(bedrock_target(&fake), user_request("hi", false))
        .await;

    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::ProviderAuth);
    assert!(
        !error.message.contains("not-the-secret"),
        "{}",
        error.message
    );
    assert_eq!(
        fake.requests().len(),
        1,
        "the fake saw and refused the request"
    );
}

#[tokio::test]
async fn session_tokens_are_sent_and_signed() {
    let (harness, fake) = start().await;
    let mut target = bedrock_target(&fake);
    target
        .secrets
        .insert("aws_session_token".to_owned(), env_key("AWS_TOKEN"));

    harness
        .chat(target, user_request("hi", false))
        .await
        .expect_chunks();

    let upstream = &fake.requests()[0];
    assert_eq!(upstream.headers["x-amz-security-token"], SESSION_TOKEN);
    assert!(upstream.headers["authorization"].contains(
        "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"
    ));
}

#[tokio::test]
async fn an_api_key_is_a_bearer_token_and_sigv4_wins_when_both_are_set() {
    let (harness, fake) = start().await;
    let mut target = bedrock_target(&fake);
    target.secrets.clear();
    target.options.clear();
    target.api_key = Some(env_key("BEDROCK_KEY"));

    harness
        .chat(target.clone(), user_request("hi", true))
        .await
        .expect_chunks();
    let mut both = bedrock_target(&fake);
    both.api_key = Some(env_key("BEDROCK_KEY"));
    harness
        .chat(both, user_request("hi", false))
        .await
        .expect_chunks();

    let received = fake.requests();
    assert_eq!(
        received[0].headers["authorization"],
        format!("Bearer {FAKE_BEDROCK_API_KEY}")
    );
    assert!(!received[0].headers.contains_key("x-amz-date"));
    assert!(received[1].headers["authorization"].starts_with("AWS4-HMAC-SHA256 "));
}

#[tokio::test]
async fn missing_region_or_credentials_fail_before_sending() {
    let (harness, fake) = start().await;
    let mut no_region = bedrock_target(&fake);
    no_region.options.clear();
    let error = harness
        .chat(no_region.clone(), user_request("hi", false))
        .await
        .expect_error()
        .clone();
    assert_eq!(error.class, ErrorClass::Internal);
    assert!(error.message.contains("region"), "{}", error.message);
    no_region.base_url.clear();
    let error = harness
        .chat(no_region, user_request("hi", false))
        .await
        .expect_error()
        .clone();
    assert!(error.message.contains("region"), "{}", error.message);

    let mut half_credentials = bedrock_target(&fake);
    half_credentials.secrets.remove("aws_secret_access_key");
    let error = harness
        .chat(half_credentials, user_request("hi", false))
        .await
        .expect_error()
        .clone();
    assert_eq!(error.class, ErrorClass::ProviderAuth);
    assert!(error.message.contains("aws_secret_access_key"));
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn features_bedrock_cannot_express_are_refused_before_sending() {
    let (harness, fake) = start().await;
    let base = user_request("hi", false);
    let with_image = {
        let mut request = base.clone();
        request.messages[1].content.push(ContentPart {
            part: Some(Part::ImageUrl(ImageUrl {
                url: "https://example.com/cat.png".to_owned(),
                detail: String::new(),
            })),
        });
        request.messages[1].content_is_text = false;
        request
    };
    let cases: Vec<(ChatRequest, &str)> = vec![
        (
            ChatRequest {
                n: Some(2),
                ..base.clone()
            },
            "n",
        ),
        (
            ChatRequest {
                seed: Some(7),
                ..base.clone()
            },
            "seed",
        ),
        (
            ChatRequest {
                presence_penalty: Some(1.0),
                ..base.clone()
            },
            "presence_penalty",
        ),
        (
            ChatRequest {
                frequency_penalty: Some(1.0),
                ..base.clone()
            },
            "frequency_penalty",
        ),
        (
            ChatRequest {
                extra_json: r#"{"logprobs":true,"top_logprobs":2}"#.to_owned(),
                ..base.clone()
            },
            "logprobs",
        ),
        (
            ChatRequest {
                extra_json: r#"{"service_tier":"flex"}"#.to_owned(),
                ..base.clone()
            },
            "service_tier",
        ),
        (
            ChatRequest {
                parallel_tool_calls: Some(false),
                tools: vec![weather_tool()],
                ..base.clone()
            },
            "parallel_tool_calls",
        ),
        (with_image, "messages[1].content"),
    ];
    for (request, param) in cases {
        let outcome = harness.chat(bedrock_target(&fake), request).await;
        let error = outcome.expect_error();
        assert_eq!(error.class, ErrorClass::InvalidRequest, "{param}");
        assert_eq!(error.param.as_deref(), Some(param));
        assert_eq!(error.provider.as_deref(), Some("fake-bedrock"));
    }
    assert!(fake.requests().is_empty());
}

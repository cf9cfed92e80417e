//! The Anthropic provider against `FakeAnthropic`: what goes upstream
//! (URL, headers, body), what comes back, streamed and not, and errors.

use std::{collections::BTreeMap, time::Duration};

use serde_json::json;
use switchyard_common::ErrorClass;
use switchyard_proto::v1::{
    ChatChunk, ChatRequest, ContentPart, FinishReason, FunctionDefinition, ImageUrl, Message,
    ResponseFormat, ResponseFormatType, Role, Tool, ToolCall, ToolChoice, ToolChoiceMode,
    content_part::Part, tool_choice::Choice,
};
use switchyard_test_support::{FakeAnthropic, Fault, anthropic_error_body};

use crate::{
    API_KEY, API_KEY_VARIABLE, Harness, Target, content, env_key, text_message, user_request,
};

/// The adapter harness and a fake Anthropic server.
async fn start() -> (Harness, FakeAnthropic) {
    (Harness::start().await, FakeAnthropic::start().await)
}

fn anthropic_target(fake: &FakeAnthropic) -> Target {
    Target {
        provider: "fake-anthropic".to_owned(),
        kind: "anthropic".to_owned(),
        base_url: fake.base_url(),
        upstream_model: "claude-sonnet-4-5".to_owned(),
        api_key: Some(env_key(API_KEY_VARIABLE)),
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

fn part_text(text: &str) -> ContentPart {
    ContentPart {
        part: Some(Part::Text(text.to_owned())),
    }
}

fn part_image(url: &str) -> ContentPart {
    ContentPart {
        part: Some(Part::ImageUrl(ImageUrl {
            url: url.to_owned(),
            detail: "high".to_owned(),
        })),
    }
}

fn tool_message(call_id: &str, text: &str) -> Message {
    Message {
        tool_call_id: call_id.to_owned(),
        ..text_message(Role::Tool, text)
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
async fn request_is_translated_with_system_merged_turns_tools_and_images() {
    let (harness, fake) = start().await;
    let mut target = anthropic_target(&fake);
    target.options = BTreeMap::from([
        ("default_max_tokens".to_owned(), "1000".to_owned()),
        (
            "anthropic_beta".to_owned(),
            "token-efficient-tools-2025-02-19".to_owned(),
        ),
    ]);
    let request = ChatRequest {
        model: "claude-sonnet-4-5".to_owned(),
        messages: vec![
            text_message(Role::System, "You are terse."),
            text_message(Role::Developer, "Answer in English."),
            Message {
                role: Role::User as i32,
                content: vec![
                    part_text("What is in this picture?"),
                    part_image("data:image/png;base64,iVBORw0KGgo="),
                ],
                ..Message::default()
            },
            Message {
                role: Role::User as i32,
                content: vec![
                    part_text("And this one?"),
                    part_image("https://example.com/cat.jpg"),
                ],
                ..Message::default()
            },
            Message {
                tool_calls: vec![
                    ToolCall {
                        id: "call_1".to_owned(),
                        name: "look".to_owned(),
                        arguments: r#"{"q": 1.50}"#.to_owned(),
                    },
                    ToolCall {
                        id: "call_2".to_owned(),
                        name: "look".to_owned(),
                        arguments: String::new(),
                    },
                ],
                ..text_message(Role::Assistant, "Let me look.")
            },
            tool_message("call_1", "a cat"),
            tool_message("call_2", "a dog"),
            text_message(Role::User, "Thanks, describe it"),
        ],
        tools: vec![Tool {
            function: Some(FunctionDefinition {
                name: "look".to_owned(),
                description: "Looks.".to_owned(),
                parameters_json: r#"{"type":"object","properties":{"q":{"type":"number"}}}"#
                    .to_owned(),
                strict: Some(true),
            }),
        }],
        parallel_tool_calls: Some(false),
        temperature: Some(0.5),
        top_p: Some(0.9),
        stop: vec!["END".to_owned()],
        user: "user-42".to_owned(),
        extra_json: r#"{"top_k":5}"#.to_owned(),
        ..ChatRequest::default()
    };

    let chunks = harness.chat(target, request).await.expect_chunks();

    let received = fake.requests();
    assert_eq!(received.len(), 1);
    let upstream = &received[0];
    assert_eq!(
        (upstream.method.as_str(), upstream.path.as_str()),
        ("POST", "/v1/messages")
    );
    assert_eq!(upstream.headers["x-api-key"], API_KEY);
    assert_eq!(upstream.headers["anthropic-version"], "2023-06-01");
    assert_eq!(
        upstream.headers["anthropic-beta"],
        "token-efficient-tools-2025-02-19"
    );
    assert_eq!(upstream.headers["content-type"], "application/json");
    assert!(!upstream.headers.contains_key("authorization"));
    assert_eq!(
        upstream.body,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1000,
            "system": [
                {"type": "text", "text": "You are terse."},
                {"type": "text", "text": "Answer in English."}
            ],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                    {"type": "text", "text": "And this one?"},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "call_1", "name": "look", "input": {"q": 1.5}},
                    {"type": "tool_use", "id": "call_2", "name": "look", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "a cat"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "a dog"},
                    {"type": "text", "text": "Thanks, describe it"}
                ]}
            ],
            "tools": [{"name": "look", "description": "Looks.",
                "input_schema": {"type": "object", "properties": {"q": {"type": "number"}}}}],
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
            "temperature": 0.5,
            "top_p": 0.9,
            "stop_sequences": ["END"],
            "metadata": {"user_id": "user-42"},
            "top_k": 5
        })
    );

    assert_eq!(chunks.len(), 1);
    let chunk = &chunks[0];
    assert_eq!(chunk.role(), Role::Assistant);
    assert_eq!(chunk.content, "Echo: Thanks, describe it");
    assert_eq!(chunk.finish_reason(), FinishReason::Stop);
    assert_eq!(chunk.model, "claude-sonnet-4-5");
    assert_eq!(chunk.provider_response_id, "msg_01FakeAnswer0000000001");
    let usage = chunk.usage.expect("usage on the only chunk");
    // System 6 words, first user turn 8, assistant 3, tool results and text 7.
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (24, 4, 28)
    );
}

#[tokio::test]
async fn streamed_text_arrives_word_by_word_with_usage_once_at_the_end() {
    let (harness, fake) = start().await;

    let chunks = harness
        .chat(anthropic_target(&fake), user_request("one two three", true))
        .await
        .expect_chunks();

    let upstream = &fake.requests()[0];
    assert_eq!(
        upstream.body,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 4096,
            "system": "You are terse.",
            "messages": [{"role": "user", "content": "one two three"}],
            "stream": true
        })
    );
    assert_eq!(content(&chunks), "Echo: one two three");
    assert_eq!(chunks[0].role(), Role::Assistant);
    assert_eq!(chunks[0].model, "claude-sonnet-4-5");
    assert_eq!(chunks[0].provider_response_id, "msg_01FakeAnswer0000000001");
    // message_start, 4 words, finish, usage.
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
    request.tool_choice = Some(ToolChoice {
        choice: Some(Choice::FunctionName("get_weather".to_owned())),
    });

    let chunks = harness
        .chat(anthropic_target(&fake), request)
        .await
        .expect_chunks();

    let upstream = &fake.requests()[0];
    assert_eq!(
        upstream.body["tool_choice"],
        json!({"type": "tool", "name": "get_weather"})
    );
    assert_eq!(
        upstream.body["tools"][0]["input_schema"]["required"],
        json!(["location"])
    );
    let deltas: Vec<_> = chunks.iter().flat_map(|chunk| &chunk.tool_calls).collect();
    assert_eq!(deltas.len(), 3, "header delta and two argument fragments");
    assert_eq!(deltas[0].id, "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(deltas[0].name, "get_weather");
    assert!(deltas.iter().all(|delta| delta.index == 0));
    assert!(
        deltas[1..]
            .iter()
            .all(|delta| delta.id.is_empty() && delta.name.is_empty())
    );
    let arguments: String = deltas
        .iter()
        .map(|delta| delta.arguments.as_str())
        .collect();
    assert_eq!(arguments, r#"{"location":"Boston, MA"}"#);
    assert_eq!(finish_reasons(&chunks), vec![FinishReason::ToolCalls]);
    assert_eq!(content(&chunks), "");
    let usage = chunks
        .last()
        .and_then(|chunk| chunk.usage)
        .expect("usage last");
    assert_eq!(usage.completion_tokens, 9);
}

#[tokio::test]
async fn non_streamed_tool_call_is_one_complete_delta() {
    let (harness, fake) = start().await;
    let mut request = user_request("weather please", false);
    request.tools = vec![weather_tool()];
    request.tool_choice = Some(ToolChoice {
        choice: Some(Choice::Mode(ToolChoiceMode::Required as i32)),
    });

    let chunks = harness
        .chat(anthropic_target(&fake), request)
        .await
        .expect_chunks();

    assert_eq!(
        fake.requests()[0].body["tool_choice"],
        json!({"type": "any"})
    );
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].finish_reason(), FinishReason::ToolCalls);
    assert_eq!(chunks[0].content, "");
    let call = &chunks[0].tool_calls[0];
    assert_eq!(
        (
            call.index,
            call.id.as_str(),
            call.name.as_str(),
            call.arguments.as_str()
        ),
        (
            0,
            "toolu_01A09q90qw90lq917835lq9",
            "get_weather",
            r#"{"location":"Boston, MA"}"#
        )
    );
}

#[tokio::test]
async fn json_schema_is_a_forced_tool_whose_input_is_the_content() {
    let (harness, fake) = start().await;
    let schema = json!({"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]});
    for stream in [false, true] {
        let mut request = user_request("Where am I?", stream);
        request.response_format = Some(ResponseFormat {
            r#type: ResponseFormatType::JsonSchema as i32,
            json_schema_json: json!({"name": "place", "schema": schema, "strict": true})
                .to_string(),
        });

        let chunks = harness
            .chat(anthropic_target(&fake), request)
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
    assert_eq!(upstream.body["tools"][0]["name"], "place");
    assert_eq!(upstream.body["tools"][0]["input_schema"], schema);
    assert_eq!(
        upstream.body["tool_choice"],
        json!({"type": "tool", "name": "place"})
    );
    assert!(upstream.body.get("response_format").is_none());
}

#[tokio::test]
async fn json_object_is_a_forced_tool_accepting_any_object() {
    let (harness, fake) = start().await;
    let mut request = user_request("Give me JSON", false);
    request.response_format = Some(ResponseFormat {
        r#type: ResponseFormatType::JsonObject as i32,
        json_schema_json: String::new(),
    });

    let chunks = harness
        .chat(anthropic_target(&fake), request)
        .await
        .expect_chunks();

    let upstream = &fake.requests()[0];
    assert_eq!(
        upstream.body["tools"][0]["input_schema"],
        json!({"type": "object", "additionalProperties": true})
    );
    assert_eq!(
        upstream.body["tool_choice"],
        json!({"type": "tool", "name": "json_response"})
    );
    assert_eq!(chunks[0].content, r#"{"location":"Boston, MA"}"#);
    assert_eq!(chunks[0].finish_reason(), FinishReason::Stop);
}

#[tokio::test]
async fn features_anthropic_cannot_express_are_refused_before_sending() {
    let (harness, fake) = start().await;
    let base = user_request("hi", false);
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
                presence_penalty: Some(0.5),
                ..base.clone()
            },
            "presence_penalty",
        ),
        (
            ChatRequest {
                frequency_penalty: Some(0.5),
                ..base.clone()
            },
            "frequency_penalty",
        ),
        (
            ChatRequest {
                extra_json: r#"{"logprobs":true,"top_k":3}"#.to_owned(),
                ..base.clone()
            },
            "logprobs",
        ),
        (
            ChatRequest {
                tools: vec![weather_tool()],
                response_format: Some(ResponseFormat {
                    r#type: ResponseFormatType::JsonObject as i32,
                    json_schema_json: String::new(),
                }),
                ..base.clone()
            },
            "response_format",
        ),
        (
            ChatRequest {
                messages: vec![Message {
                    tool_calls: vec![ToolCall {
                        id: "call_1".to_owned(),
                        name: "f".to_owned(),
                        arguments: "{not json".to_owned(),
                    }],
                    ..text_message(Role::Assistant, "")
                }],
                ..base.clone()
            },
            "messages[0].tool_calls",
        ),
    ];
    for (request, param) in cases {
        let outcome = harness.chat(anthropic_target(&fake), request).await;
        let error = outcome.expect_error();
        assert_eq!(
            error.class,
            ErrorClass::InvalidRequest,
            "{param}: {error:?}"
        );
        assert_eq!(error.param.as_deref(), Some(param), "{error:?}");
        assert!(
            error
                .message
                .contains(param.rsplit('.').next().unwrap_or(param)),
            "the message names the feature: {}",
            error.message
        );
        assert_eq!(error.provider.as_deref(), Some("fake-anthropic"));
    }
    // Zero penalties ask for nothing and pass.
    let zero = ChatRequest {
        presence_penalty: Some(0.0),
        ..base
    };
    harness
        .chat(anthropic_target(&fake), zero)
        .await
        .expect_chunks();
    assert_eq!(
        fake.requests().len(),
        1,
        "only the last request went upstream"
    );
}

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
async fn rate_limit_carries_retry_after_and_the_message() {
    let (harness, fake) = start().await;
    let message = "Number of request tokens has exceeded your per-minute rate limit";
    fake.push_fault(status_fault(
        429,
        anthropic_error_body("rate_limit_error", message),
        &[("retry-after", "12")],
    ));

    let outcome = harness
        .chat(anthropic_target(&fake), user_request("hi", true))
        .await;

    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::RateLimited);
    assert_eq!(error.retry_after, Some(Duration::from_secs(12)));
    assert_eq!(error.message, message);
    assert_eq!(error.provider.as_deref(), Some("fake-anthropic"));
    assert!(outcome.chunks.is_empty());
}

#[tokio::test]
async fn overloaded_and_too_long_prompts_are_classified() {
    let (harness, fake) = start().await;
    fake.push_fault(status_fault(
        529,
        anthropic_error_body("overloaded_error", "Overloaded"),
        &[],
    ));
    fake.push_fault(status_fault(
        400,
        anthropic_error_body(
            "invalid_request_error",
            "prompt is too long: 208310 tokens > 200000 maximum",
        ),
        &[],
    ));
    fake.push_fault(status_fault(
        401,
        anthropic_error_body("authentication_error", "invalid x-api-key"),
        &[],
    ));

    let classes: Vec<ErrorClass> = futures_classes(&harness, &fake, 3).await;

    assert_eq!(
        classes,
        vec![
            ErrorClass::Overloaded,
            ErrorClass::ContextLengthExceeded,
            ErrorClass::ProviderAuth
        ]
    );
}

async fn futures_classes(harness: &Harness, fake: &FakeAnthropic, count: usize) -> Vec<ErrorClass> {
    let mut classes = Vec::new();
    for _ in 0..count {
        let outcome = harness
            .chat(anthropic_target(fake), user_request("hi", false))
            .await;
        classes.push(outcome.expect_error().class);
    }
    classes
}

#[tokio::test]
async fn an_error_event_mid_stream_ends_the_stream_with_its_class() {
    let (harness, fake) = start().await;
    let body = [
        "event: message_start",
        r#"data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}}"#,
        "",
        "event: content_block_start",
        r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        "",
        "event: content_block_delta",
        r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
        "",
        "event: error",
        &format!("data: {}", anthropic_error_body("overloaded_error", "Overloaded")),
        "",
        "",
    ]
    .join("\n");
    fake.push_fault(status_fault(
        200,
        body,
        &[("content-type", "text/event-stream; charset=utf-8")],
    ));

    let outcome = harness
        .chat(anthropic_target(&fake), user_request("hi", true))
        .await;

    assert_eq!(content(&outcome.chunks), "Hello");
    assert_eq!(outcome.chunks[0].provider_response_id, "msg_1");
    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::Overloaded);
    assert_eq!(error.provider.as_deref(), Some("fake-anthropic"));
}

#[tokio::test]
async fn a_dropped_stream_is_an_error_not_a_short_answer() {
    let (harness, fake) = start().await;
    fake.push_fault(Fault::DropMidStream { after_chunks: 4 });

    let outcome = harness
        .chat(anthropic_target(&fake), user_request("one two three", true))
        .await;

    assert!(!outcome.chunks.is_empty());
    assert!(finish_reasons(&outcome.chunks).is_empty());
    assert_eq!(
        outcome.expect_error().class,
        ErrorClass::UpstreamUnavailable
    );
}

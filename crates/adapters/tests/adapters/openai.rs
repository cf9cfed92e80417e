//! The OpenAI provider against the fake: what goes upstream, what comes back.

use serde_json::json;
use switchyard_proto::v1::{
    FinishReason, FunctionDefinition, MaxTokensField, ResponseFormat, ResponseFormatType, Role,
    Tool, ToolChoice, ToolChoiceMode, tool_choice::Choice,
};
use switchyard_test_support::Fault;

use crate::{API_KEY, Harness, content, user_request};

fn weather_tool() -> Tool {
    Tool {
        function: Some(FunctionDefinition {
            name: "get_weather".to_owned(),
            description: "Current weather in a city.".to_owned(),
            parameters_json: r#"{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}"#.to_owned(),
            strict: Some(true),
        }),
    }
}

#[tokio::test]
async fn non_streamed_request_is_translated_and_answered_in_one_chunk() {
    let harness = Harness::start().await;
    let mut request = user_request("Hello world", false);
    request.tools = vec![weather_tool()];
    request.tool_choice = Some(ToolChoice {
        choice: Some(Choice::Mode(ToolChoiceMode::Auto as i32)),
    });
    request.response_format = Some(ResponseFormat {
        r#type: ResponseFormatType::JsonSchema as i32,
        json_schema_json: r#"{"name":"reply","schema":{"type":"object"},"strict":true}"#.to_owned(),
    });
    request.temperature = Some(0.25);
    request.max_tokens = Some(64);
    request.max_tokens_field = MaxTokensField::MaxCompletionTokens as i32;
    request.extra_json =
        r#"{"logprobs":true,"service_tier":"flex","prediction":{"type":"content","content":"x"}}"#
            .to_owned();

    let chunks = harness
        .chat(harness.openai_target(), request)
        .await
        .expect_chunks();

    let received = harness.fake.requests();
    assert_eq!(received.len(), 1);
    let upstream = &received[0];
    assert_eq!(
        (upstream.method.as_str(), upstream.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(
        upstream.headers["authorization"],
        format!("Bearer {API_KEY}")
    );
    assert_eq!(upstream.headers["content-type"], "application/json");
    assert_eq!(
        upstream.body,
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Hello world"}
            ],
            "tools": [{"type": "function", "function": {
                "name": "get_weather",
                "description": "Current weather in a city.",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
                "strict": true
            }}],
            "tool_choice": "auto",
            "response_format": {"type": "json_schema", "json_schema": {"name": "reply", "schema": {"type": "object"}, "strict": true}},
            "temperature": 0.25,
            "max_completion_tokens": 64,
            "logprobs": true,
            "service_tier": "flex",
            "prediction": {"type": "content", "content": "x"}
        })
    );

    assert_eq!(chunks.len(), 1);
    let chunk = &chunks[0];
    assert_eq!(chunk.role(), Role::Assistant);
    assert_eq!(chunk.content, "Echo: Hello world");
    assert_eq!(chunk.finish_reason(), FinishReason::Stop);
    assert_eq!(chunk.model, "gpt-4o-mini");
    assert_eq!(chunk.provider_response_id, "chatcmpl-1");
    assert_eq!(chunk.system_fingerprint, "fp_fake");
    let usage = chunk.usage.expect("usage on the only chunk");
    // "You are terse." + "Hello world" = 5 words; "Echo: Hello world" = 3.
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (5, 3, 8)
    );
}

#[tokio::test]
async fn streamed_answer_arrives_as_deltas_with_usage_always_requested() {
    let harness = Harness::start().await;
    let mut target = harness.openai_target();
    target.base_url.push('/');
    let request = user_request("one two three", true);
    assert!(!request.include_usage, "the client did not ask for usage");

    let chunks = harness.chat(target, request).await.expect_chunks();

    let upstream = &harness.fake.requests()[0];
    assert_eq!(upstream.path, "/v1/chat/completions");
    assert_eq!(upstream.body["stream"], true);
    assert_eq!(
        upstream.body["stream_options"],
        json!({"include_usage": true})
    );

    assert_eq!(content(&chunks), "Echo: one two three");
    assert_eq!(chunks[0].role(), Role::Assistant);
    assert_eq!(chunks[0].model, "gpt-4o-mini");
    assert_eq!(chunks[0].provider_response_id, "chatcmpl-1");
    assert_eq!(chunks[0].system_fingerprint, "fp_fake");
    // role chunk, 4 words, finish, usage.
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
    let harness = Harness::start().await;
    let mut request = user_request("What is the weather in Boston?", true);
    request.tools = vec![weather_tool()];
    request.tool_choice = Some(ToolChoice {
        choice: Some(Choice::FunctionName("get_weather".to_owned())),
    });

    let chunks = harness
        .chat(harness.openai_target(), request)
        .await
        .expect_chunks();

    let upstream = &harness.fake.requests()[0];
    assert_eq!(
        upstream.body["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    let deltas: Vec<_> = chunks.iter().flat_map(|chunk| &chunk.tool_calls).collect();
    assert_eq!(deltas[0].id, "call_abc123");
    assert_eq!(deltas[0].name, "get_weather");
    assert!(deltas.iter().all(|delta| delta.index == 0));
    let arguments: String = deltas
        .iter()
        .map(|delta| delta.arguments.as_str())
        .collect();
    assert_eq!(arguments, r#"{"location":"Boston, MA"}"#);
    assert_eq!(deltas.len(), 3, "header delta and two argument fragments");
    let finish: Vec<_> = chunks
        .iter()
        .map(|chunk| chunk.finish_reason())
        .filter(|reason| *reason != FinishReason::Unspecified)
        .collect();
    assert_eq!(finish, vec![FinishReason::ToolCalls]);
    let usage = chunks
        .last()
        .and_then(|chunk| chunk.usage)
        .expect("usage last");
    assert_eq!(usage.completion_tokens, 9);
}

#[tokio::test]
async fn non_streamed_tool_call_is_one_complete_delta() {
    let harness = Harness::start().await;
    let mut request = user_request("weather please", false);
    request.tools = vec![weather_tool()];

    let chunks = harness
        .chat(harness.openai_target(), request)
        .await
        .expect_chunks();

    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].finish_reason(), FinishReason::ToolCalls);
    assert_eq!(chunks[0].content, "");
    let call = &chunks[0].tool_calls[0];
    assert_eq!(
        (call.index, call.id.as_str(), call.name.as_str()),
        (0, "call_abc123", "get_weather")
    );
    assert_eq!(call.arguments, r#"{"location":"Boston, MA"}"#);
}

#[tokio::test]
async fn cached_and_reasoning_tokens_are_reported() {
    let harness = Harness::start().await;
    let body = json!({
        "id": "chatcmpl-cached", "object": "chat.completion", "created": 1, "model": "o3-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi", "refusal": null},
                     "logprobs": null, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 80, "total_tokens": 1280,
                  "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 64, "audio_tokens": 0}}
    });
    harness.fake.push_fault(Fault::Status {
        status: 200,
        body: body.to_string(),
        headers: Vec::new(),
    });

    let chunks = harness
        .chat(harness.openai_target(), user_request("Hi", false))
        .await
        .expect_chunks();

    assert_eq!(chunks[0].finish_reason(), FinishReason::Length);
    assert_eq!(chunks[0].model, "o3-mini");
    let usage = chunks[0].usage.expect("usage");
    assert_eq!(
        (usage.cached_prompt_tokens, usage.reasoning_tokens),
        (1024, 64)
    );
    assert_eq!(usage.total_tokens, 1280);
}

#[tokio::test]
async fn keyless_target_sends_no_authorization() {
    let harness = Harness::start().await;
    let mut target = harness.openai_target();
    target.api_key = None;

    harness
        .chat(target, user_request("hi", false))
        .await
        .expect_chunks();

    assert!(
        !harness.fake.requests()[0]
            .headers
            .contains_key("authorization")
    );
}

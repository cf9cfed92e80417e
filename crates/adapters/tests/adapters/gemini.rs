//! The Gemini providers (kinds `gemini` and `vertex`) against `FakeGemini`:
//! what goes upstream (URL, headers, body) and what comes back.

use std::{collections::BTreeMap, time::Duration};

use serde_json::json;
use switchyard_common::ErrorClass;
use switchyard_proto::v1::{
    ChatChunk, ChatRequest, ContentPart, FinishReason, FunctionDefinition, ImageUrl, Message,
    ResponseFormat, ResponseFormatType, Role, Tool, ToolCall, ToolChoice, ToolChoiceMode,
    content_part::Part, tool_choice::Choice,
};
use switchyard_test_support::{FakeGemini, Fault, gemini_error_body, gemini_rate_limit_body};

use crate::{
    API_KEY, API_KEY_VARIABLE, Harness, Target, content, env_key, text_message, user_request,
};

/// The adapter harness plus a fake Gemini.
struct GeminiHarness {
    harness: Harness,
    fake: FakeGemini,
}

impl GeminiHarness {
    async fn start() -> Self {
        Self {
            harness: Harness::start().await,
            fake: FakeGemini::start().await,
        }
    }

    fn gemini_target(&self) -> Target {
        Target {
            provider: "fake-gemini".to_owned(),
            kind: "gemini".to_owned(),
            base_url: self.fake.base_url(),
            upstream_model: "gemini-2.5-flash".to_owned(),
            api_key: Some(env_key(API_KEY_VARIABLE)),
            ..Target::default()
        }
    }

    fn vertex_target(&self) -> Target {
        Target {
            provider: "fake-vertex".to_owned(),
            kind: "vertex".to_owned(),
            base_url: self.fake.vertex_base_url(),
            upstream_model: "gemini-2.0-flash-001".to_owned(),
            api_key: Some(env_key(API_KEY_VARIABLE)),
            options: BTreeMap::from([
                ("project".to_owned(), "my-project".to_owned()),
                ("location".to_owned(), "europe-west4".to_owned()),
            ]),
            ..Target::default()
        }
    }

    fn only_request(&self) -> switchyard_test_support::RecordedRequest {
        let mut requests = self.fake.requests();
        assert_eq!(requests.len(), 1, "{requests:#?}");
        requests.remove(0)
    }
}

const VERTEX_PATH: &str =
    "/v1/projects/my-project/locations/europe-west4/publishers/google/models/gemini-2.0-flash-001";

fn weather_tool() -> Tool {
    Tool {
        function: Some(FunctionDefinition {
            name: "get_weather".to_owned(),
            description: "Current weather in a city.".to_owned(),
            parameters_json: r#"{"type":"object","properties":{"location":{"type":"string"}},"required":["location"],"additionalProperties":false}"#.to_owned(),
            strict: Some(true),
        }),
    }
}

fn image(url: &str) -> ContentPart {
    ContentPart {
        part: Some(Part::ImageUrl(ImageUrl {
            url: url.to_owned(),
            detail: String::new(),
        })),
    }
}

fn usage_of(chunks: &[ChatChunk]) -> (u32, u32, u32) {
    let usages: Vec<_> = chunks.iter().filter_map(|chunk| chunk.usage).collect();
    assert_eq!(usages.len(), 1, "usage exactly once: {chunks:#?}");
    (
        usages[0].prompt_tokens,
        usages[0].completion_tokens,
        usages[0].total_tokens,
    )
}

fn finish_reasons(chunks: &[ChatChunk]) -> Vec<FinishReason> {
    chunks
        .iter()
        .map(ChatChunk::finish_reason)
        .filter(|reason| *reason != FinishReason::Unspecified)
        .collect()
}

fn ok_body(status: u16, body: &str, content_type: &str) -> Fault {
    Fault::Status {
        status,
        body: body.to_owned(),
        headers: vec![("content-type".to_owned(), content_type.to_owned())],
    }
}

#[tokio::test]
async fn gemini_request_is_translated_and_answered_in_one_chunk() {
    let gemini = GeminiHarness::start().await;
    let mut request = user_request("Hello world", false);
    request.messages[1].content_is_text = false;
    request.messages[1]
        .content
        .push(image("data:image/jpeg;base64,/9j/4AAQSkZJRg=="));
    request.messages[1]
        .content
        .push(image("https://example.com/cat.png"));
    request.tools = vec![weather_tool()];
    request.tool_choice = Some(ToolChoice {
        choice: Some(Choice::Mode(ToolChoiceMode::Auto as i32)),
    });
    request.response_format = Some(ResponseFormat {
        r#type: ResponseFormatType::JsonSchema as i32,
        json_schema_json:
            r#"{"name":"reply","schema":{"type":"object","properties":{"a":{"type":"string"}}},"strict":true}"#
                .to_owned(),
    });
    request.temperature = Some(0.25);
    request.top_p = Some(0.5);
    request.max_tokens = Some(64);
    request.stop = vec!["END".to_owned()];
    request.seed = Some(3);
    request.extra_json = r#"{"safetySettings":[{"category":"HARM_CATEGORY_HATE_SPEECH","threshold":"BLOCK_ONLY_HIGH"}]}"#.to_owned();

    let chunks = gemini
        .harness
        .chat(gemini.gemini_target(), request)
        .await
        .expect_chunks();

    let upstream = gemini.only_request();
    assert_eq!(
        (upstream.method.as_str(), upstream.path.as_str()),
        ("POST", "/v1beta/models/gemini-2.5-flash:generateContent")
    );
    assert_eq!(upstream.headers["x-goog-api-key"], API_KEY);
    assert!(!upstream.headers.contains_key("authorization"));
    assert_eq!(upstream.headers["content-type"], "application/json");
    assert_eq!(
        upstream.body,
        json!({
            "contents": [{"role": "user", "parts": [
                {"text": "Hello world"},
                {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQSkZJRg=="}},
                {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.png"}}
            ]}],
            "systemInstruction": {"parts": [{"text": "You are terse."}]},
            "tools": [{"functionDeclarations": [{
                "name": "get_weather",
                "description": "Current weather in a city.",
                "parametersJsonSchema": {"type": "object", "properties": {"location": {"type": "string"}},
                    "required": ["location"], "additionalProperties": false}
            }]}],
            "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
            "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_ONLY_HIGH"}],
            "generationConfig": {
                "temperature": 0.25, "topP": 0.5, "maxOutputTokens": 64, "stopSequences": ["END"], "seed": 3,
                "responseMimeType": "application/json",
                "responseJsonSchema": {"type": "object", "properties": {"a": {"type": "string"}}}
            }
        })
    );

    assert_eq!(chunks.len(), 1, "{chunks:#?}");
    let chunk = &chunks[0];
    assert_eq!(chunk.role(), Role::Assistant);
    assert_eq!(chunk.content, "Echo: Hello world");
    assert_eq!(chunk.finish_reason(), FinishReason::Stop);
    assert_eq!(chunk.model, "gemini-2.5-flash");
    assert_eq!(chunk.provider_response_id, "fakeGeminiResponse1");
    // "You are terse." + "Hello world" = 5 words; "Echo: Hello world" = 3.
    assert_eq!(usage_of(&chunks), (5, 3, 8));
}

#[tokio::test]
async fn vertex_request_goes_to_the_project_path_with_a_bearer_token() {
    let gemini = GeminiHarness::start().await;
    let mut request = user_request("Hello world", false);
    request.metadata = BTreeMap::from([("team".to_owned(), "search".to_owned())]);
    request.n = Some(1);

    let chunks = gemini
        .harness
        .chat(gemini.vertex_target(), request)
        .await
        .expect_chunks();

    let upstream = gemini.only_request();
    assert_eq!(upstream.path, format!("{VERTEX_PATH}:generateContent"));
    assert_eq!(
        upstream.headers["authorization"],
        format!("Bearer {API_KEY}")
    );
    assert!(!upstream.headers.contains_key("x-goog-api-key"));
    assert_eq!(
        upstream.body,
        json!({
            "contents": [{"role": "user", "parts": [{"text": "Hello world"}]}],
            "systemInstruction": {"parts": [{"text": "You are terse."}]},
            "generationConfig": {"candidateCount": 1},
            "labels": {"team": "search"}
        })
    );
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].content, "Echo: Hello world");
    assert_eq!(chunks[0].model, "gemini-2.0-flash-001");
    assert_eq!(chunks[0].finish_reason(), FinishReason::Stop);
    assert_eq!(usage_of(&chunks), (5, 3, 8));
}

async fn assert_streams_word_by_word(gemini: &GeminiHarness, target: Target, path: &str) {
    let chunks = gemini
        .harness
        .chat(target, user_request("one two three", true))
        .await
        .expect_chunks();

    let upstream = gemini.only_request();
    assert_eq!(upstream.path, path);
    assert_eq!(content(&chunks), "Echo: one two three");
    // "Echo: ", "one ", "two ", "three" (with the finish), then usage.
    assert_eq!(chunks.len(), 5, "{chunks:#?}");
    assert_eq!(chunks[0].role(), Role::Assistant);
    assert!(
        chunks[1..]
            .iter()
            .all(|chunk| chunk.role() == Role::Unspecified)
    );
    assert!(!chunks[0].model.is_empty());
    assert_eq!(chunks[0].provider_response_id, "fakeGeminiResponse1");
    assert!(chunks[1..].iter().all(|chunk| chunk.model.is_empty()));
    assert_eq!(chunks[3].finish_reason(), FinishReason::Stop);
    assert_eq!(finish_reasons(&chunks), vec![FinishReason::Stop]);
    assert!(chunks[4].usage.is_some() && chunks[4].content.is_empty());
    assert_eq!(usage_of(&chunks), (6, 4, 10));
}

#[tokio::test]
async fn gemini_stream_arrives_word_by_word_with_usage_once() {
    let gemini = GeminiHarness::start().await;
    let target = gemini.gemini_target();
    assert_streams_word_by_word(
        &gemini,
        target,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
    )
    .await;
}

#[tokio::test]
async fn vertex_stream_arrives_word_by_word_with_usage_once() {
    let gemini = GeminiHarness::start().await;
    let target = gemini.vertex_target();
    assert_streams_word_by_word(
        &gemini,
        target,
        &format!("{VERTEX_PATH}:streamGenerateContent?alt=sse"),
    )
    .await;
}

#[tokio::test]
async fn streamed_tool_call_arrives_as_one_complete_delta() {
    let gemini = GeminiHarness::start().await;
    let mut request = user_request("What is the weather in Boston?", true);
    request.tools = vec![weather_tool()];
    request.tool_choice = Some(ToolChoice {
        choice: Some(Choice::FunctionName("get_weather".to_owned())),
    });

    let chunks = gemini
        .harness
        .chat(gemini.gemini_target(), request)
        .await
        .expect_chunks();

    assert_eq!(
        gemini.only_request().body["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
    );
    let deltas: Vec<_> = chunks.iter().flat_map(|chunk| &chunk.tool_calls).collect();
    assert_eq!(deltas.len(), 1, "{chunks:#?}");
    assert_eq!(
        (
            deltas[0].index,
            deltas[0].id.as_str(),
            deltas[0].name.as_str()
        ),
        (0, "call_0", "get_weather")
    );
    assert_eq!(deltas[0].arguments, r#"{"location":"Boston, MA"}"#);
    assert_eq!(finish_reasons(&chunks), vec![FinishReason::ToolCalls]);
    assert_eq!(usage_of(&chunks).1, 9);
}

#[tokio::test]
async fn vertex_tool_call_round_trips_with_its_thought_signature() {
    let gemini = GeminiHarness::start().await;
    // A Gemini 3 answer: the function call carries a thought signature.
    gemini.fake.push_fault(ok_body(
        200,
        r#"{
  "candidates": [
    {
      "content": {
        "role": "model",
        "parts": [
          {
            "functionCall": {
              "name": "get_weather",
              "args": {
                "location": "Paris"
              }
            },
            "thoughtSignature": "CiQBVKhc7vB+sig=="
          }
        ]
      },
      "finishReason": "STOP"
    }
  ],
  "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 5, "totalTokenCount": 25},
  "modelVersion": "gemini-3-pro-preview",
  "createTime": "2025-11-20T10:00:00.000000Z",
  "responseId": "vertex-1"
}"#,
        "application/json; charset=UTF-8",
    ));
    let mut request = user_request("weather in Paris?", false);
    request.tools = vec![weather_tool()];

    let first = gemini
        .harness
        .chat(gemini.vertex_target(), request.clone())
        .await
        .expect_chunks();

    let call = &first[0].tool_calls[0];
    assert_eq!(call.id, "call_0.ts.CiQBVKhc7vB+sig==");
    assert_eq!(call.arguments, r#"{"location":"Paris"}"#);
    assert_eq!(first[0].finish_reason(), FinishReason::ToolCalls);

    request.messages.push(Message {
        content_is_null: true,
        tool_calls: vec![ToolCall {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
        }],
        ..text_message(Role::Assistant, "")
    });
    request.messages.push(Message {
        tool_call_id: call.id.clone(),
        ..text_message(Role::Tool, r#"{"temperature_c": 18}"#)
    });
    request.messages.push(text_message(Role::User, "Thanks!"));
    let second = gemini
        .harness
        .chat(gemini.vertex_target(), request)
        .await
        .expect_chunks();

    let upstream = &gemini.fake.requests()[1];
    assert_eq!(
        upstream.body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "weather in Paris?"}]},
            {"role": "model", "parts": [{
                "functionCall": {"name": "get_weather", "args": {"location": "Paris"}},
                "thoughtSignature": "CiQBVKhc7vB+sig=="
            }]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"content": {"temperature_c": 18}}}},
                {"text": "Thanks!"}
            ]}
        ])
    );
    // The fake echoes the last user text: it no longer mentions the weather.
    assert_eq!(second[0].content, "Echo: Thanks!");
}

#[tokio::test]
async fn safety_finish_is_content_filter_whole_and_streamed() {
    let gemini = GeminiHarness::start().await;
    gemini.fake.push_fault(ok_body(
        200,
        r#"{"candidates": [{"content": {"parts": [{"text": "Partial"}], "role": "model"}, "finishReason": "SAFETY", "index": 0,
            "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": true}]}],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1, "totalTokenCount": 5},
            "modelVersion": "gemini-2.5-flash", "responseId": "r1"}"#,
        "application/json; charset=UTF-8",
    ));
    let whole = gemini
        .harness
        .chat(gemini.gemini_target(), user_request("something", false))
        .await
        .expect_chunks();
    assert_eq!(whole[0].finish_reason(), FinishReason::ContentFilter);
    assert_eq!(whole[0].content, "Partial");

    gemini.fake.push_fault(ok_body(
        200,
        concat!(
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Par\"}],\"role\": \"model\"},\"index\": 0}],\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r2\"}\r\n\r\n",
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\"}],\"role\": \"model\"},\"finishReason\": \"SAFETY\",\"index\": 0}],",
            "\"usageMetadata\": {\"promptTokenCount\": 4,\"candidatesTokenCount\": 1,\"totalTokenCount\": 5},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r2\"}\r\n\r\n"
        ),
        "text/event-stream",
    ));
    let streamed = gemini
        .harness
        .chat(gemini.gemini_target(), user_request("something", true))
        .await
        .expect_chunks();
    assert_eq!(content(&streamed), "Par");
    assert_eq!(finish_reasons(&streamed), vec![FinishReason::ContentFilter]);
    assert_eq!(usage_of(&streamed), (4, 1, 5));
}

#[tokio::test]
async fn blocked_prompt_is_a_content_filtered_error() {
    let gemini = GeminiHarness::start().await;
    gemini.fake.push_fault(ok_body(
        200,
        r#"{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
            "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}, "modelVersion": "gemini-2.5-flash", "responseId": "r"}"#,
        "application/json; charset=UTF-8",
    ));
    let outcome = gemini
        .harness
        .chat(gemini.gemini_target(), user_request("bad", false))
        .await;
    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::ContentFiltered);
    assert!(
        error.message.contains("PROHIBITED_CONTENT"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn cached_and_thinking_tokens_are_reported() {
    let gemini = GeminiHarness::start().await;
    gemini.fake.push_fault(ok_body(
        200,
        r#"{"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}],
            "usageMetadata": {"promptTokenCount": 1200, "candidatesTokenCount": 16, "totalTokenCount": 1280,
              "cachedContentTokenCount": 1024, "thoughtsTokenCount": 64,
              "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1200}],
              "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 1024}]},
            "modelVersion": "gemini-2.5-pro", "responseId": "r"}"#,
        "application/json; charset=UTF-8",
    ));
    let chunks = gemini
        .harness
        .chat(gemini.gemini_target(), user_request("Hi", false))
        .await
        .expect_chunks();
    assert_eq!(chunks[0].finish_reason(), FinishReason::Length);
    let usage = chunks[0].usage.expect("usage");
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens,
            usage.cached_prompt_tokens,
            usage.reasoning_tokens
        ),
        (1200, 80, 1280, 1024, 64)
    );
}

#[tokio::test]
async fn rate_limits_carry_the_retry_info_delay_on_both_apis() {
    let gemini = GeminiHarness::start().await;
    for target in [gemini.gemini_target(), gemini.vertex_target()] {
        gemini.fake.push_fault(Fault::Status {
            status: 429,
            body: gemini_rate_limit_body("7s"),
            headers: Vec::new(),
        });
        let outcome = gemini.harness.chat(target, user_request("hi", true)).await;
        let error = outcome.expect_error();
        assert_eq!(error.class, ErrorClass::RateLimited);
        assert_eq!(error.retry_after, Some(Duration::from_secs(7)));
        assert!(
            error.message.contains("exceeded your current quota"),
            "{}",
            error.message
        );
    }
}

#[tokio::test]
async fn upstream_errors_are_classified() {
    let gemini = GeminiHarness::start().await;
    let cases = [
        (
            400,
            gemini_error_body(
                400,
                "INVALID_ARGUMENT",
                "The input token count (1500000) exceeds the maximum number of tokens allowed (1048576).",
            ),
            ErrorClass::ContextLengthExceeded,
        ),
        (
            400,
            r#"{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}"#
                .to_owned(),
            ErrorClass::ProviderAuth,
        ),
        (
            403,
            gemini_error_body(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."),
            ErrorClass::ProviderAuth,
        ),
        (
            404,
            gemini_error_body(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta."),
            ErrorClass::NotFound,
        ),
        (
            500,
            gemini_error_body(500, "INTERNAL", "An internal error has occurred."),
            ErrorClass::UpstreamUnavailable,
        ),
        (
            503,
            gemini_error_body(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
            ErrorClass::UpstreamUnavailable,
        ),
        (
            504,
            gemini_error_body(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
            ErrorClass::Timeout,
        ),
    ];
    for (status, body, class) in cases {
        gemini.fake.push_fault(Fault::Status {
            status,
            body,
            headers: Vec::new(),
        });
        let outcome = gemini
            .harness
            .chat(gemini.gemini_target(), user_request("hi", false))
            .await;
        let error = outcome.expect_error();
        assert_eq!(error.class, class, "HTTP {status}: {}", error.message);
        assert_eq!(error.provider.as_deref(), Some("fake-gemini"));
        assert!(!error.message.contains(API_KEY));
    }
}

#[tokio::test]
async fn a_dropped_stream_ends_with_an_error() {
    let gemini = GeminiHarness::start().await;
    gemini
        .fake
        .push_fault(Fault::DropMidStream { after_chunks: 2 });
    let outcome = gemini
        .harness
        .chat(gemini.gemini_target(), user_request("one two three", true))
        .await;
    assert_eq!(content(&outcome.chunks), "Echo: one ");
    assert_eq!(
        outcome.expect_error().class,
        ErrorClass::UpstreamUnavailable
    );
}

#[tokio::test]
async fn inexpressible_requests_fail_before_reaching_gemini() {
    let gemini = GeminiHarness::start().await;
    let mut parallel = user_request("hi", false);
    parallel.tools = vec![weather_tool()];
    parallel.parallel_tool_calls = Some(false);
    let mut unknown_field = user_request("hi", false);
    unknown_field.extra_json = r#"{"logprobs":true}"#.to_owned();
    let mut named = user_request("hi", false);
    named.messages[1].name = "ann".to_owned();
    let cases: [(ChatRequest, &str); 3] = [
        (parallel, "parallel_tool_calls"),
        (unknown_field, "logprobs"),
        (named, "messages[1].name"),
    ];
    for (request, named_feature) in cases {
        let outcome = gemini.harness.chat(gemini.gemini_target(), request).await;
        let error = outcome.expect_error();
        assert_eq!(error.class, ErrorClass::InvalidRequest);
        assert_eq!(
            error.param.as_deref(),
            Some(named_feature),
            "{}",
            error.message
        );
        assert_eq!(error.provider.as_deref(), Some("fake-gemini"));
    }
    assert!(gemini.fake.requests().is_empty());
}

#[tokio::test]
async fn vertex_without_a_project_is_an_invalid_request() {
    let gemini = GeminiHarness::start().await;
    let mut target = gemini.vertex_target();
    target.options.remove("project");
    let outcome = gemini.harness.chat(target, user_request("hi", false)).await;
    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::InvalidRequest);
    assert!(error.message.contains("`project`"), "{}", error.message);
    assert!(gemini.fake.requests().is_empty());
}

#[tokio::test]
async fn a_stream_error_event_ends_the_stream_classified() {
    let gemini = GeminiHarness::start().await;
    gemini.fake.push_fault(ok_body(
        200,
        concat!(
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hel\"}],\"role\": \"model\"},\"index\": 0}]}\r\n\r\n",
            "data: {\"error\": {\"code\": 503,\"message\": \"The model is overloaded.\",\"status\": \"UNAVAILABLE\"}}\r\n\r\n"
        ),
        "text/event-stream",
    ));
    let outcome = gemini
        .harness
        .chat(gemini.gemini_target(), user_request("hi", true))
        .await;
    assert_eq!(content(&outcome.chunks), "Hel");
    assert_eq!(
        outcome.expect_error().class,
        ErrorClass::UpstreamUnavailable
    );
}

//! The OpenAI-compatible flavors (Azure, DeepSeek, Mistral, Groq, hosted
//! presets, self-hosted servers) against `FakeOpenAi` in the matching
//! flavor: what goes upstream, what comes back.

use std::collections::BTreeMap;

use serde_json::json;
use switchyard_common::{ErrorClass, config::Environment};
use switchyard_proto::v1::{
    ChatChunk, ChatRequest, FinishReason, FunctionDefinition, MaxTokensField, Message, Role, Tool,
    ToolCall, ToolChoice, ToolChoiceMode, Usage, tool_choice::Choice,
};
use switchyard_test_support::{FakeFlavor, FakeOpenAi, Fault};

use crate::{
    API_KEY, API_KEY_VARIABLE, Harness, TRACEPARENT, Target, content, env_key, text_message,
    user_request,
};

/// Azure's documented answer to a prompt its content filter blocks.
const AZURE_CONTENT_FILTER_BODY: &str = r#"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":true,"severity":"high"},"jailbreak":{"filtered":false,"detected":false},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}}}"#;

async fn harness(flavor: FakeFlavor) -> Harness {
    let fake = FakeOpenAi::start_flavor(flavor).await;
    let environment = Environment::from([(API_KEY_VARIABLE.to_owned(), API_KEY.to_owned())]);
    Harness::over(fake, environment)
}

fn target(harness: &Harness, kind: &str, model: &str) -> Target {
    Target {
        provider: format!("fake-{kind}"),
        kind: kind.to_owned(),
        base_url: harness.fake.base_url(),
        upstream_model: model.to_owned(),
        api_key: Some(env_key(API_KEY_VARIABLE)),
        ..Target::default()
    }
}

fn request_for(model: &str, text: &str, stream: bool) -> ChatRequest {
    ChatRequest {
        model: model.to_owned(),
        ..user_request(text, stream)
    }
}

fn weather_tool() -> Tool {
    Tool {
        function: Some(FunctionDefinition {
            name: "get_weather".to_owned(),
            parameters_json: r#"{"type":"object","properties":{"location":{"type":"string"}}}"#
                .to_owned(),
            ..FunctionDefinition::default()
        }),
    }
}

fn counts(usage: &Usage) -> (u32, u32, u32, u32, u32) {
    (
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.total_tokens,
        usage.cached_prompt_tokens,
        usage.reasoning_tokens,
    )
}

/// The one usage of an answer, failing when there is none or more than one.
fn only_usage(chunks: &[ChatChunk]) -> Usage {
    let usages: Vec<Usage> = chunks.iter().filter_map(|chunk| chunk.usage).collect();
    assert_eq!(usages.len(), 1, "{chunks:#?}");
    usages[0]
}

fn assert_no_empty_chunks(chunks: &[ChatChunk]) {
    for chunk in chunks {
        assert_ne!(
            *chunk,
            ChatChunk {
                index: chunk.index,
                ..ChatChunk::default()
            },
            "an empty chunk was passed on"
        );
    }
}

#[tokio::test]
async fn azure_uses_the_deployment_url_version_and_api_key_header() {
    let harness = harness(FakeFlavor::Azure).await;
    let mut request = request_for("gpt-4o-mini", "Hello world", false);
    request.messages[0].role = Role::Developer as i32;
    request.max_tokens = Some(32);
    request.max_tokens_field = MaxTokensField::MaxCompletionTokens as i32;

    let chunks = harness
        .chat(target(&harness, "azure", "gpt-4o-mini"), request)
        .await
        .expect_chunks();

    let upstream = &harness.fake.requests()[0];
    assert_eq!(
        upstream.path,
        "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(upstream.headers["api-key"], API_KEY);
    assert!(!upstream.headers.contains_key("authorization"));
    // Azure speaks OpenAI's newest spelling: nothing is rewritten.
    assert_eq!(upstream.body["messages"][0]["role"], "developer");
    assert_eq!(upstream.body["max_completion_tokens"], 32);

    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].content, "Echo: Hello world");
    assert_eq!(chunks[0].finish_reason(), FinishReason::Stop);
    assert_eq!(counts(&only_usage(&chunks)), (5, 3, 8, 0, 0));
}

#[tokio::test]
async fn azure_options_choose_deployment_and_version() {
    let harness = harness(FakeFlavor::Azure).await;
    let mut target = target(&harness, "azure", "gpt-4o");
    target.options = BTreeMap::from([
        ("deployment".to_owned(), "chat-prod".to_owned()),
        ("api_version".to_owned(), "2025-01-01-preview".to_owned()),
    ]);

    harness
        .chat(target, request_for("gpt-4o", "Hi", false))
        .await
        .expect_chunks();

    assert_eq!(
        harness.fake.requests()[0].path,
        "/openai/deployments/chat-prod/chat/completions?api-version=2025-01-01-preview"
    );
}

#[tokio::test]
async fn azure_stream_skips_prompt_filter_results_and_keeps_usage() {
    let harness = harness(FakeFlavor::Azure).await;

    let chunks = harness
        .chat(
            target(&harness, "azure", "gpt-4o-mini"),
            request_for("gpt-4o-mini", "Hi there", true),
        )
        .await
        .expect_chunks();

    assert_eq!(
        harness.fake.requests()[0].body["stream_options"],
        json!({"include_usage": true})
    );
    assert_eq!(content(&chunks), "Echo: Hi there");
    assert_no_empty_chunks(&chunks);
    // The prompt filter chunk has an empty id and model: the first real ones count.
    assert_eq!(chunks[0].role(), Role::Assistant);
    assert_eq!(chunks[0].provider_response_id, "chatcmpl-1");
    assert_eq!(chunks[0].model, "gpt-4o-mini");
    let finishes: Vec<FinishReason> = chunks
        .iter()
        .map(ChatChunk::finish_reason)
        .filter(|reason| *reason != FinishReason::Unspecified)
        .collect();
    assert_eq!(finishes, [FinishReason::Stop]);
    assert_eq!(counts(&only_usage(&chunks)), (5, 3, 8, 0, 0));
}

#[tokio::test]
async fn azure_content_filter_error_is_content_filtered() {
    let harness = harness(FakeFlavor::Azure).await;
    harness.fake.push_fault(Fault::Status {
        status: 400,
        body: AZURE_CONTENT_FILTER_BODY.to_owned(),
        headers: Vec::new(),
    });

    let outcome = harness
        .chat(
            target(&harness, "azure", "gpt-4o-mini"),
            request_for("gpt-4o-mini", "something hateful", false),
        )
        .await;

    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::ContentFiltered);
    assert!(
        error.message.starts_with("The response was filtered"),
        "{}",
        error.message
    );
    assert_eq!(error.param.as_deref(), Some("prompt"));
    assert!(!error.message.contains(API_KEY));
}

#[tokio::test]
async fn azure_without_a_key_is_a_provider_auth_error() {
    let harness = harness(FakeFlavor::Azure).await;
    let mut target = target(&harness, "azure", "gpt-4o-mini");
    target.api_key = None;

    let outcome = harness
        .chat(target, request_for("gpt-4o-mini", "Hi", false))
        .await;

    assert_eq!(outcome.expect_error().class, ErrorClass::ProviderAuth);
}

#[tokio::test]
async fn deepseek_reads_cache_hits_and_spells_the_body_its_way() {
    let harness = harness(FakeFlavor::DeepSeek).await;
    let mut request = request_for("deepseek-chat", "Hello world", false);
    request
        .messages
        .insert(0, text_message(Role::Developer, "Answer in English."));
    request.max_tokens = Some(64);
    request.max_tokens_field = MaxTokensField::MaxCompletionTokens as i32;

    let chunks = harness
        .chat(target(&harness, "deepseek", "deepseek-chat"), request)
        .await
        .expect_chunks();

    let upstream = &harness.fake.requests()[0];
    assert_eq!(upstream.path, "/chat/completions");
    assert_eq!(
        upstream.headers["authorization"],
        format!("Bearer {API_KEY}")
    );
    assert_eq!(upstream.body["messages"][0]["role"], "system");
    assert_eq!(upstream.body["max_tokens"], 64);
    assert!(upstream.body.get("max_completion_tokens").is_none());

    assert_eq!(chunks[0].content, "Echo: Hello world");
    // Prompt: 3 + 3 + 2 words, of which the system messages' 6 are cache hits.
    assert_eq!(counts(&only_usage(&chunks)), (8, 3, 11, 6, 0));
}

#[tokio::test]
async fn deepseek_reasoner_hides_reasoning_but_counts_its_tokens() {
    let harness = harness(FakeFlavor::DeepSeek).await;

    let chunks = harness
        .chat(
            target(&harness, "deepseek", "deepseek-reasoner"),
            request_for("deepseek-reasoner", "one two", true),
        )
        .await
        .expect_chunks();

    assert_eq!(content(&chunks), "Echo: one two");
    assert_no_empty_chunks(&chunks);
    assert_eq!(chunks[0].role(), Role::Assistant);
    // Completion: "Echo: one two" (3) + "Thinking it over." (3 reasoning).
    assert_eq!(counts(&only_usage(&chunks)), (5, 6, 11, 3, 3));

    let whole = harness
        .chat(
            target(&harness, "deepseek", "deepseek-reasoner"),
            request_for("deepseek-reasoner", "one two", false),
        )
        .await
        .expect_chunks();
    assert_eq!(whole[0].content, "Echo: one two");
    assert_eq!(counts(&only_usage(&whole)), (5, 6, 11, 3, 3));
}

/// A conversation that already went through a tool call with OpenAI-style ids.
fn tool_conversation() -> Vec<Message> {
    vec![
        text_message(Role::User, "What is the weather in Boston?"),
        Message {
            role: Role::Assistant as i32,
            content_is_null: true,
            tool_calls: vec![ToolCall {
                id: "call_abc123".to_owned(),
                name: "get_weather".to_owned(),
                arguments: r#"{"location":"Boston, MA"}"#.to_owned(),
            }],
            ..Message::default()
        },
        Message {
            tool_call_id: "call_abc123".to_owned(),
            ..text_message(Role::Tool, "72 and sunny")
        },
        text_message(Role::User, "Thanks"),
    ]
}

#[tokio::test]
async fn mistral_body_uses_its_names_and_nine_character_tool_call_ids() {
    let harness = harness(FakeFlavor::Mistral).await;
    let request = ChatRequest {
        model: "mistral-small-latest".to_owned(),
        messages: tool_conversation(),
        tools: vec![weather_tool()],
        tool_choice: Some(ToolChoice {
            choice: Some(Choice::Mode(ToolChoiceMode::Required as i32)),
        }),
        seed: Some(42),
        max_tokens: Some(100),
        max_tokens_field: MaxTokensField::MaxCompletionTokens as i32,
        parallel_tool_calls: Some(false),
        stream: true,
        extra_json: r#"{"safe_prompt":true}"#.to_owned(),
        ..ChatRequest::default()
    };

    let chunks = harness
        .chat(target(&harness, "mistral", "mistral-small-latest"), request)
        .await
        .expect_chunks();

    let body = &harness.fake.requests()[0].body;
    assert_eq!(body["random_seed"], 42);
    assert_eq!(body["tool_choice"], "any");
    assert_eq!(body["max_tokens"], 100);
    assert_eq!(body["parallel_tool_calls"], false);
    assert_eq!(body["safe_prompt"], true);
    for absent in ["seed", "max_completion_tokens", "stream_options"] {
        assert!(body.get(absent).is_none(), "`{absent}` was sent");
    }
    let call_id = body["messages"][1]["tool_calls"][0]["id"]
        .as_str()
        .expect("an id");
    assert_eq!(call_id.len(), 9);
    assert!(call_id.bytes().all(|byte| byte.is_ascii_alphanumeric()));
    assert_eq!(body["messages"][2]["tool_call_id"], call_id);

    // The fake accepted the ids; the stream's usage rode on its last chunk.
    assert_eq!(content(&chunks), "Echo: Thanks");
    // Prompt: 6 + 3 + 1 words; "Echo: Thanks" is 2.
    assert_eq!(counts(&only_usage(&chunks)), (10, 2, 12, 0, 0));
}

#[tokio::test]
async fn mistral_tool_calls_come_back_with_its_own_ids() {
    let harness = harness(FakeFlavor::Mistral).await;
    let mut request = request_for("mistral-small-latest", "What's the weather?", true);
    request.tools = vec![weather_tool()];

    let chunks = harness
        .chat(target(&harness, "mistral", "mistral-small-latest"), request)
        .await
        .expect_chunks();

    let calls: Vec<_> = chunks.iter().flat_map(|chunk| &chunk.tool_calls).collect();
    assert_eq!(calls[0].id, "D681PevKs");
    assert_eq!(calls[0].name, "get_weather");
    let arguments: String = calls.iter().map(|call| call.arguments.as_str()).collect();
    assert_eq!(arguments, r#"{"location":"Boston, MA"}"#);
    assert!(
        chunks
            .iter()
            .any(|chunk| chunk.finish_reason() == FinishReason::ToolCalls)
    );
    assert_eq!(only_usage(&chunks).completion_tokens, 9);
}

#[tokio::test]
async fn mistral_refuses_features_it_lacks_before_calling_upstream() {
    let harness = harness(FakeFlavor::Mistral).await;
    let mut with_user = request_for("mistral-small-latest", "Hi", false);
    with_user.user = "user-1".to_owned();
    let mut with_logprobs = request_for("mistral-small-latest", "Hi", false);
    with_logprobs.extra_json = r#"{"logprobs":true}"#.to_owned();

    for (request, feature) in [(with_user, "user"), (with_logprobs, "logprobs")] {
        let outcome = harness
            .chat(target(&harness, "mistral", "mistral-small-latest"), request)
            .await;
        let error = outcome.expect_error();
        assert_eq!(error.class, ErrorClass::InvalidRequest);
        assert!(
            error.message.contains(&format!("`{feature}`")),
            "{}",
            error.message
        );
        assert_eq!(error.param.as_deref(), Some(feature));
    }
    assert!(harness.fake.requests().is_empty());
}

#[tokio::test]
async fn mistral_flat_validation_errors_are_invalid_requests_with_their_message() {
    let harness = harness(FakeFlavor::Mistral).await;
    let mut request = request_for("mistral-small-latest", "Hi", false);
    request.extra_json = r#"{"frobnicate":1}"#.to_owned();

    let outcome = harness
        .chat(target(&harness, "mistral", "mistral-small-latest"), request)
        .await;

    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::InvalidRequest);
    assert!(
        error.message.contains("Extra inputs are not permitted"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn groq_stream_usage_comes_from_x_groq() {
    let harness = harness(FakeFlavor::Groq).await;

    let chunks = harness
        .chat(
            target(&harness, "groq", "llama-3.3-70b-versatile"),
            request_for("llama-3.3-70b-versatile", "one two three", true),
        )
        .await
        .expect_chunks();

    let upstream = &harness.fake.requests()[0];
    assert_eq!(upstream.path, "/v1/chat/completions");
    assert_eq!(content(&chunks), "Echo: one two three");
    assert_eq!(counts(&only_usage(&chunks)), (6, 4, 10, 0, 0));
    let last = chunks.last().expect("chunks");
    assert!(last.usage.is_some(), "usage comes last");
}

#[tokio::test]
async fn groq_refuses_more_than_one_choice() {
    let harness = harness(FakeFlavor::Groq).await;
    let mut request = request_for("llama-3.3-70b-versatile", "Hi", false);
    request.n = Some(2);

    let outcome = harness
        .chat(target(&harness, "groq", "llama-3.3-70b-versatile"), request)
        .await;

    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::InvalidRequest);
    assert_eq!(error.param.as_deref(), Some("n"));
    assert!(harness.fake.requests().is_empty());
}

#[tokio::test]
async fn hosted_presets_send_bearer_requests_below_the_base_url() {
    let harness = harness(FakeFlavor::OpenAi).await;
    for kind in ["qwen", "together", "fireworks"] {
        let mut request = request_for("some-model", "Hi", true);
        request.messages[0].role = Role::Developer as i32;
        request.max_tokens = Some(16);
        request.max_tokens_field = MaxTokensField::MaxCompletionTokens as i32;
        request.extra_json = r#"{"enable_thinking":false}"#.to_owned();

        let chunks = harness
            .chat(target(&harness, kind, "some-model"), request)
            .await
            .expect_chunks();

        let upstream = harness.fake.requests().pop().expect("a request");
        assert_eq!(upstream.path, "/v1/chat/completions", "{kind}");
        assert_eq!(
            upstream.headers["authorization"],
            format!("Bearer {API_KEY}")
        );
        assert_eq!(upstream.body["messages"][0]["role"], "system", "{kind}");
        assert_eq!(upstream.body["max_tokens"], 16, "{kind}");
        assert_eq!(upstream.body["enable_thinking"], false, "{kind}");
        assert_eq!(
            upstream.body["stream_options"],
            json!({"include_usage": true})
        );
        assert_eq!(content(&chunks), "Echo: Hi", "{kind}");
        assert_eq!(only_usage(&chunks).completion_tokens, 2, "{kind}");
    }
}

#[tokio::test]
async fn ollama_is_keyless_and_streams_without_usage_when_told_to() {
    let harness = harness(FakeFlavor::Minimal).await;
    let mut target = target(&harness, "ollama", "llama3.2");
    target.api_key = None;
    target.options = BTreeMap::from([("stream_usage".to_owned(), "false".to_owned())]);

    let chunks = harness
        .chat(target, request_for("llama3.2", "Hi there", true))
        .await
        .expect_chunks();

    let upstream = &harness.fake.requests()[0];
    assert!(!upstream.headers.contains_key("authorization"));
    assert!(upstream.body.get("stream_options").is_none());
    assert_eq!(content(&chunks), "Echo: Hi there");
    assert_eq!(chunks[0].role(), Role::Assistant);
    assert_eq!(chunks[0].model, "llama3.2");
    // No id, no usage: nothing is invented.
    assert!(
        chunks
            .iter()
            .all(|chunk| chunk.provider_response_id.is_empty())
    );
    assert!(chunks.iter().all(|chunk| chunk.usage.is_none()));
    // `eos_token` ends the choice as a stop.
    let last = chunks.last().expect("chunks");
    assert_eq!(last.finish_reason(), FinishReason::Stop);
}

#[tokio::test]
async fn self_hosted_servers_that_reject_stream_options_need_the_option() {
    let harness = harness(FakeFlavor::Minimal).await;
    let mut target = target(&harness, "llamacpp", "qwen2.5");
    target.api_key = None;

    let outcome = harness
        .chat(target, request_for("qwen2.5", "Hi", true))
        .await;

    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::InvalidRequest);
    assert!(
        error.message.contains("stream_options"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn the_trace_context_goes_only_to_providers_configured_for_it() {
    let harness = harness(FakeFlavor::Minimal).await;
    let mut self_hosted = target(&harness, "vllm", "meta-llama/Llama-3.1-8B-Instruct");
    self_hosted.propagate_trace = true;
    harness
        .chat(
            self_hosted,
            request_for("meta-llama/Llama-3.1-8B-Instruct", "Hi", false),
        )
        .await
        .expect_chunks();
    let third_party = target(&harness, "openai", "gpt-4o-mini");
    harness
        .chat(third_party, request_for("gpt-4o-mini", "Hi", false))
        .await
        .expect_chunks();

    let requests = harness.fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].headers.get("traceparent").map(String::as_str),
        Some(TRACEPARENT)
    );
    assert_eq!(
        requests[0].headers.get("tracestate").map(String::as_str),
        Some("vendor=1")
    );
    assert!(!requests[1].headers.contains_key("traceparent"));
    assert!(!requests[1].headers.contains_key("tracestate"));
}

#[tokio::test]
async fn vllm_whole_answers_without_id_map_unknown_finish_reasons_to_stop() {
    let harness = harness(FakeFlavor::Minimal).await;
    let mut target = target(&harness, "vllm", "meta-llama/Llama-3.1-8B-Instruct");
    target.api_key = None;

    let chunks = harness
        .chat(
            target,
            request_for("meta-llama/Llama-3.1-8B-Instruct", "Hello", false),
        )
        .await
        .expect_chunks();

    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].content, "Echo: Hello");
    assert_eq!(chunks[0].finish_reason(), FinishReason::Stop);
    assert!(chunks[0].provider_response_id.is_empty());
    assert_eq!(counts(&only_usage(&chunks)), (4, 2, 6, 0, 0));
}

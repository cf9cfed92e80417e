//! OpenAI response bodies (chat completion objects, stream chunks, error
//! bodies) and their translation to canonical [`ChatChunk`]s.
//!
//! Stream chunks are parsed into borrowing types: text without escapes is
//! borrowed from the event and copied once, into the chunk.

use std::borrow::Cow;

use serde::Deserialize;
use switchyard_proto::v1::{ChatChunk, FinishReason, Role, ToolCallDelta, Usage};

use crate::classify::UpstreamErrorDetail;

/// A `chat.completion` object (non-streamed answer).
#[derive(Debug, Deserialize)]
pub struct Completion {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    system_fingerprint: Option<String>,
    #[serde(default)]
    choices: Vec<CompletionChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    /// Some compatible servers answer 200 with an error body.
    #[serde(default)]
    pub error: Option<WireError>,
}

#[derive(Debug, Deserialize)]
struct CompletionChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    message: CompletionMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct CompletionMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<CompletionToolCall>>,
    /// The deprecated single `function_call`.
    #[serde(default)]
    function_call: Option<CompletionFunction>,
}

#[derive(Debug, Deserialize)]
struct CompletionToolCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<CompletionFunction>,
}

#[derive(Debug, Deserialize)]
struct CompletionFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

impl Completion {
    /// Returns one chunk per choice, the usage on the last one.
    pub fn into_chunks(self) -> Vec<ChatChunk> {
        let id = self.id.unwrap_or_default();
        let model = self.model.unwrap_or_default();
        let fingerprint = self.system_fingerprint.unwrap_or_default();
        let mut chunks: Vec<ChatChunk> = self
            .choices
            .into_iter()
            .map(|choice| {
                let message = choice.message;
                let mut tool_calls: Vec<ToolCallDelta> = message
                    .tool_calls
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                    .map(|(index, call)| {
                        let function = call.function.unwrap_or(CompletionFunction {
                            name: None,
                            arguments: None,
                        });
                        ToolCallDelta {
                            index: u32::try_from(index).unwrap_or(u32::MAX),
                            id: call.id.unwrap_or_default(),
                            name: function.name.unwrap_or_default(),
                            arguments: function.arguments.unwrap_or_default(),
                        }
                    })
                    .collect();
                if let Some(function) = message.function_call
                    && tool_calls.is_empty()
                {
                    tool_calls.push(ToolCallDelta {
                        index: 0,
                        id: String::new(),
                        name: function.name.unwrap_or_default(),
                        arguments: function.arguments.unwrap_or_default(),
                    });
                }
                ChatChunk {
                    index: choice.index,
                    role: Role::Assistant as i32,
                    content: message.content.unwrap_or_default(),
                    tool_calls,
                    finish_reason: finish_reason(choice.finish_reason.as_deref()) as i32,
                    usage: None,
                    model: model.clone(),
                    provider_response_id: id.clone(),
                    system_fingerprint: fingerprint.clone(),
                    refusal: message.refusal.unwrap_or_default(),
                }
            })
            .collect();
        if let Some(usage) = self.usage.map(WireUsage::into_usage) {
            match chunks.last_mut() {
                Some(last) => last.usage = Some(usage),
                None => chunks.push(ChatChunk {
                    usage: Some(usage),
                    model,
                    provider_response_id: id,
                    system_fingerprint: fingerprint,
                    ..ChatChunk::default()
                }),
            }
        }
        chunks
    }
}

/// A `chat.completion.chunk` object (one streamed event).
#[derive(Debug, Deserialize)]
pub struct StreamChunk<'a> {
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub system_fingerprint: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub choices: Vec<StreamChoice<'a>>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    #[serde(default)]
    pub error: Option<WireError>,
    /// Groq's metadata: the stream's usage on its last chunk, or why it stopped early.
    #[serde(default)]
    pub x_groq: Option<XGroq>,
}

/// Groq's `x_groq` object of a stream chunk.
#[derive(Debug, Default, Deserialize)]
pub struct XGroq {
    /// Usage of the whole stream (final chunk only).
    #[serde(default)]
    pub usage: Option<WireUsage>,
    /// Why the stream was stopped early.
    #[serde(default)]
    pub error: Option<String>,
}

/// One choice's delta in a stream chunk.
#[derive(Debug, Deserialize)]
pub struct StreamChoice<'a> {
    #[serde(default)]
    index: u32,
    #[serde(default, borrow)]
    delta: Delta<'a>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    refusal: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolCallChunk<'a>>>,
}

#[derive(Debug, Deserialize)]
struct ToolCallChunk<'a> {
    #[serde(default)]
    index: u32,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    function: Option<FunctionChunk<'a>>,
}

#[derive(Debug, Deserialize)]
struct FunctionChunk<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

impl StreamChoice<'_> {
    /// Translates the delta to a chunk (without model, id or usage).
    pub fn into_chunk(self) -> ChatChunk {
        let delta = self.delta;
        let owned = |text: Option<Cow<'_, str>>| text.map(Cow::into_owned).unwrap_or_default();
        let tool_calls = delta
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .map(|call| {
                let (name, arguments) = match call.function {
                    Some(function) => (owned(function.name), owned(function.arguments)),
                    None => (String::new(), String::new()),
                };
                ToolCallDelta {
                    index: call.index,
                    id: owned(call.id),
                    name,
                    arguments,
                }
            })
            .collect();
        let role = match delta.role.as_deref() {
            Some("assistant") => Role::Assistant,
            _ => Role::Unspecified,
        };
        ChatChunk {
            index: self.index,
            role: role as i32,
            content: owned(delta.content),
            tool_calls,
            finish_reason: finish_reason(self.finish_reason.as_deref()) as i32,
            refusal: owned(delta.refusal),
            ..ChatChunk::default()
        }
    }
}

/// The `usage` object.
#[derive(Debug, Default, Deserialize)]
pub struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u32>,
    #[serde(default)]
    completion_tokens: Option<u32>,
    #[serde(default)]
    total_tokens: Option<u32>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptTokensDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionTokensDetails>,
    /// DeepSeek's name for cached prompt tokens.
    #[serde(default)]
    prompt_cache_hit_tokens: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
struct PromptTokensDetails {
    #[serde(default)]
    cached_tokens: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
struct CompletionTokensDetails {
    #[serde(default)]
    reasoning_tokens: Option<u32>,
}

impl WireUsage {
    /// Converts to canonical usage; a missing total is the sum of the parts.
    pub fn into_usage(self) -> Usage {
        let prompt_tokens = self.prompt_tokens.unwrap_or(0);
        let completion_tokens = self.completion_tokens.unwrap_or(0);
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: self
                .total_tokens
                .unwrap_or(prompt_tokens.saturating_add(completion_tokens)),
            cached_prompt_tokens: self
                .prompt_tokens_details
                .and_then(|details| details.cached_tokens)
                .or(self.prompt_cache_hit_tokens)
                .unwrap_or(0),
            reasoning_tokens: self
                .completion_tokens_details
                .and_then(|details| details.reasoning_tokens)
                .unwrap_or(0),
            // OpenAI-compatible APIs cache prompts implicitly, with no write price.
            cache_write_tokens: 0,
        }
    }
}

/// An OpenAI error body: `{"error": {...}}`.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: WireError,
}

/// The `error` object of an error body or stream event.
#[derive(Debug, Default, Deserialize)]
pub struct WireError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    /// A string, a number, or null depending on the server.
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    param: Option<serde_json::Value>,
    /// Azure's detail (content filter results).
    #[serde(default)]
    innererror: Option<InnerError>,
}

#[derive(Debug, Default, Deserialize)]
struct InnerError {
    #[serde(default)]
    code: Option<String>,
}

impl WireError {
    /// Returns the provider-neutral detail of the error.
    pub fn into_detail(self) -> UpstreamErrorDetail {
        let text = |value: Option<serde_json::Value>| match value? {
            serde_json::Value::String(text) => Some(text),
            serde_json::Value::Number(number) => Some(number.to_string()),
            _ => None,
        };
        UpstreamErrorDetail {
            message: self.message,
            kind: self.kind,
            code: text(self.code),
            param: text(self.param),
        }
    }
}

/// Parses an error response body; `None` when it is not OpenAI-shaped.
/// Besides `{"error": {...}}`, reads the flat `{"object": "error",
/// "message": ...}` of Mistral and vLLM, and Azure's `innererror` code
/// `ResponsibleAIPolicyViolation` as a content filter.
pub fn error_detail(body: &[u8]) -> Option<UpstreamErrorDetail> {
    if let Ok(body) = serde_json::from_slice::<ErrorBody>(body) {
        let inner_code = body
            .error
            .innererror
            .as_ref()
            .and_then(|inner| inner.code.clone());
        let mut detail = body.error.into_detail();
        if detail.code.is_none() && inner_code.as_deref() == Some("ResponsibleAIPolicyViolation") {
            detail.code = Some("content_filter".to_owned());
        }
        return Some(detail);
    }
    let flat: FlatError = serde_json::from_slice(body).ok()?;
    (flat.object.as_deref() == Some("error")).then(|| flat.into_detail())
}

/// A flat error body: `{"object": "error", "message": ..., "type": ...}`.
#[derive(Debug, Deserialize)]
struct FlatError {
    #[serde(default)]
    object: Option<String>,
    /// A string, or (Mistral validation errors) an object.
    #[serde(default)]
    message: Option<serde_json::Value>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    param: Option<serde_json::Value>,
}

impl FlatError {
    fn into_detail(self) -> UpstreamErrorDetail {
        let message = self.message.map(|message| match message {
            serde_json::Value::String(text) => text,
            other => other.to_string(),
        });
        WireError {
            message,
            kind: self.kind,
            code: self.code,
            param: self.param,
            innererror: None,
        }
        .into_detail()
    }
}

/// Maps an OpenAI `finish_reason`.
pub fn finish_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("stop") => FinishReason::Stop,
        // Mistral's `model_length`: the model's context ran out.
        Some("length" | "model_length") => FinishReason::Length,
        Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
        Some("content_filter") => FinishReason::ContentFilter,
        // Unknown reasons (`eos`, `eos_token`, ... from self-hosted
        // servers) still end the choice.
        Some(_) => FinishReason::Stop,
        None => FinishReason::Unspecified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_becomes_one_chunk_per_choice_with_usage_last() {
        let body = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o",
            "choices":[
              {"index":0,"message":{"role":"assistant","content":"Hi","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"},
              {"index":1,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],
            "usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":1}},
            "system_fingerprint":"fp"}"#;
        let completion: Completion = serde_json::from_str(body).expect("valid completion");
        let chunks = completion.into_chunks();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].content, "Hi");
        assert_eq!(chunks[0].role(), Role::Assistant);
        assert_eq!(chunks[0].finish_reason(), FinishReason::Stop);
        assert_eq!(chunks[0].provider_response_id, "chatcmpl-1");
        assert_eq!(chunks[0].usage, None);
        assert_eq!(chunks[1].index, 1);
        assert_eq!(chunks[1].finish_reason(), FinishReason::ToolCalls);
        assert_eq!(chunks[1].tool_calls[0].name, "f");
        let usage = chunks[1].usage.expect("usage on the last chunk");
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens
            ),
            (3, 4, 7)
        );
        assert_eq!((usage.cached_prompt_tokens, usage.reasoning_tokens), (2, 1));
    }

    #[test]
    fn stream_chunk_borrows_and_translates_deltas() {
        let event = r#"{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"a\":"}}]},"finish_reason":null}],"usage":null}"#;
        let chunk: StreamChunk<'_> = serde_json::from_str(event).expect("valid chunk");
        assert!(chunk.usage.is_none());
        let translated = chunk
            .choices
            .into_iter()
            .next()
            .expect("one choice")
            .into_chunk();
        assert_eq!(translated.tool_calls[0].index, 1);
        assert_eq!(translated.tool_calls[0].arguments, "{\"a\":");
        assert_eq!(translated.finish_reason(), FinishReason::Unspecified);
    }

    #[test]
    fn error_bodies_accept_numeric_and_null_codes() {
        let detail =
            error_detail(br#"{"error":{"message":"m","type":"t","param":null,"code":429}}"#)
                .expect("OpenAI-shaped");
        assert_eq!(detail.code.as_deref(), Some("429"));
        assert_eq!(detail.param, None);
        assert!(error_detail(b"<html>bad gateway</html>").is_none());
    }

    #[test]
    fn flat_and_azure_error_bodies_are_understood() {
        let mistral = error_detail(
            br#"{"object":"error","message":{"detail":[{"msg":"Extra inputs are not permitted"}]},"type":"invalid_request_message_error","param":null,"code":null}"#,
        )
        .expect("flat error");
        assert!(
            mistral
                .message
                .as_deref()
                .is_some_and(|message| message.contains("Extra inputs")),
            "{mistral:?}"
        );
        assert_eq!(
            mistral.kind.as_deref(),
            Some("invalid_request_message_error")
        );
        let azure = error_detail(
            br#"{"error":{"message":"filtered","param":"prompt","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation"}}}"#,
        )
        .expect("azure error");
        assert_eq!(azure.code.as_deref(), Some("content_filter"));
        assert!(error_detail(br#"{"message":"not an error object"}"#).is_none());
    }

    #[test]
    fn deepseek_cache_hits_and_groq_usage_are_read() {
        let usage: WireUsage = serde_json::from_str(
            r#"{"prompt_tokens":10,"completion_tokens":4,"total_tokens":14,"prompt_cache_hit_tokens":6,"prompt_cache_miss_tokens":4,"completion_tokens_details":{"reasoning_tokens":2}}"#,
        )
        .expect("usage");
        let usage = usage.into_usage();
        assert_eq!((usage.cached_prompt_tokens, usage.reasoning_tokens), (6, 2));
        let chunk: StreamChunk<'_> = serde_json::from_str(
            r#"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"x_groq":{"id":"req_1","usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4,"queue_time":0.01}}}"#,
        )
        .expect("chunk");
        let usage = chunk
            .x_groq
            .and_then(|x_groq| x_groq.usage)
            .expect("x_groq usage")
            .into_usage();
        assert_eq!(usage.total_tokens, 4);
        assert_eq!(finish_reason(Some("model_length")), FinishReason::Length);
        assert_eq!(finish_reason(Some("eos")), FinishReason::Stop);
    }

    #[test]
    fn legacy_function_call_finishes_as_tool_calls() {
        assert_eq!(
            finish_reason(Some("function_call")),
            FinishReason::ToolCalls
        );
    }
}

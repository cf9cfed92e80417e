//! Anthropic response bodies (message objects, usage, error bodies) and
//! their translation to canonical [`ChatChunk`]s.
//!
//! - Text blocks become content; `tool_use` blocks become tool calls,
//!   numbered in the order they appear, with the input's JSON text as
//!   arguments. With structured output, the forced tool's input is the
//!   content instead, and the answer finishes with `stop`.
//! - Thinking and server-tool blocks carry nothing the OpenAI shape has and
//!   are skipped.
//! - Prompt tokens are input plus cache-read plus cache-creation tokens;
//!   cached prompt tokens are the cache reads.

use serde::Deserialize;
use serde_json::value::RawValue;
use switchyard_proto::v1::{ChatChunk, FinishReason, Role, ToolCallDelta, Usage};

use crate::classify::UpstreamErrorDetail;

/// A `message` object (non-streamed answer).
#[derive(Debug, Deserialize)]
pub struct WireResponse {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Vec<ResponseBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// A content block of a message. A plain struct rather than a tagged enum:
/// serde buffers tagged enums, which [`RawValue`] does not survive.
#[derive(Debug, Deserialize)]
struct ResponseBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<Box<RawValue>>,
}

impl WireResponse {
    /// Returns the whole answer as one chunk; `structured_tool` names the
    /// forced tool whose input is the content.
    pub fn into_chunk(self, structured_tool: Option<&str>) -> ChatChunk {
        let mut content = String::new();
        let mut tool_calls = Vec::new();
        let mut structured = false;
        for block in self.content {
            match block.kind.as_str() {
                "text" if structured_tool.is_none() => {
                    content.push_str(block.text.as_deref().unwrap_or_default());
                }
                "tool_use" => {
                    let name = block.name.unwrap_or_default();
                    let input = block.input.as_deref().map_or("{}", RawValue::get);
                    if structured_tool == Some(name.as_str()) {
                        structured = true;
                        content.push_str(input);
                    } else {
                        tool_calls.push(ToolCallDelta {
                            index: u32::try_from(tool_calls.len()).unwrap_or(u32::MAX),
                            id: block.id.unwrap_or_default(),
                            name,
                            arguments: input.to_owned(),
                        });
                    }
                }
                // Thinking, server tools and blocks added later.
                _ => {}
            }
        }
        ChatChunk {
            role: Role::Assistant as i32,
            content,
            tool_calls,
            finish_reason: finish_reason(self.stop_reason.as_deref(), structured) as i32,
            usage: Some(self.usage.unwrap_or_default().into_usage()),
            model: self.model.unwrap_or_default(),
            provider_response_id: self.id.unwrap_or_default(),
            ..ChatChunk::default()
        }
    }
}

/// The `usage` object; in streams, later reports replace earlier ones
/// field by field.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u32>,
    #[serde(default)]
    output_tokens: Option<u32>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u32>,
    #[serde(default)]
    cache_read_input_tokens: Option<u32>,
}

impl WireUsage {
    /// Takes every field `later` reports (`message_delta` usage is cumulative).
    pub fn update(&mut self, later: WireUsage) {
        self.input_tokens = later.input_tokens.or(self.input_tokens);
        self.output_tokens = later.output_tokens.or(self.output_tokens);
        self.cache_creation_input_tokens = later
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
        self.cache_read_input_tokens = later
            .cache_read_input_tokens
            .or(self.cache_read_input_tokens);
    }

    /// Converts to canonical usage.
    pub fn into_usage(self) -> Usage {
        let cached = self.cache_read_input_tokens.unwrap_or(0);
        let prompt_tokens = self
            .input_tokens
            .unwrap_or(0)
            .saturating_add(cached)
            .saturating_add(self.cache_creation_input_tokens.unwrap_or(0));
        let completion_tokens = self.output_tokens.unwrap_or(0);
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
            cached_prompt_tokens: cached,
            reasoning_tokens: 0,
            cache_write_tokens: self.cache_creation_input_tokens.unwrap_or(0),
        }
    }
}

/// An error body or `error` stream event: `{"type":"error","error":{...}}`.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: WireError,
}

/// The `error` object.
#[derive(Debug, Default, Deserialize)]
pub struct WireError {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl WireError {
    /// Returns the provider-neutral detail. A too-long prompt (a plain
    /// `invalid_request_error` at Anthropic) gets the code that classifies
    /// it as `context_length_exceeded`.
    pub fn into_detail(self) -> UpstreamErrorDetail {
        let too_long = self.kind.as_deref() == Some("invalid_request_error")
            && self.message.as_deref().is_some_and(|message| {
                let message = message.to_ascii_lowercase();
                message.contains("prompt is too long")
                    || message.contains("exceed context limit")
                    || message.contains("context window")
            });
        UpstreamErrorDetail {
            message: self.message,
            code: too_long.then(|| "context_length_exceeded".to_owned()),
            kind: self.kind,
            param: None,
        }
    }
}

/// Parses an error response body; `None` when it is not Anthropic-shaped.
pub fn error_detail(body: &[u8]) -> Option<UpstreamErrorDetail> {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|body| body.error.into_detail())
}

/// Maps a `stop_reason`; with structured output, the forced tool call is
/// the answer, so it finishes with `stop`.
pub fn finish_reason(stop_reason: Option<&str>, structured: bool) -> FinishReason {
    match stop_reason {
        Some("tool_use") if structured => FinishReason::Stop,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("refusal") => FinishReason::ContentFilter,
        // end_turn, stop_sequence, pause_turn and reasons added later.
        Some(_) => FinishReason::Stop,
        None => FinishReason::Unspecified,
    }
}

#[cfg(test)]
mod tests {
    use switchyard_common::ErrorClass;

    use super::*;
    use crate::classify;

    #[test]
    fn message_becomes_one_chunk_with_numbered_tool_calls() {
        // The tool-use example of Anthropic's API reference, plus a second call.
        let body = r#"{"id":"msg_01Aq9w938a90dw8q","type":"message","role":"assistant",
            "content":[{"type":"text","text":"I'll check."},
              {"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"location":"San Francisco, CA","unit":"celsius"}},
              {"type":"tool_use","id":"toolu_01B","name":"get_time","input":{}}],
            "model":"claude-sonnet-4-5","stop_reason":"tool_use","stop_sequence":null,
            "usage":{"input_tokens":10,"cache_creation_input_tokens":3,"cache_read_input_tokens":5,"output_tokens":20}}"#;
        let response: WireResponse = serde_json::from_str(body).expect("a message");
        let chunk = response.into_chunk(None);
        assert_eq!(chunk.role(), Role::Assistant);
        assert_eq!(chunk.content, "I'll check.");
        assert_eq!(chunk.finish_reason(), FinishReason::ToolCalls);
        assert_eq!(chunk.provider_response_id, "msg_01Aq9w938a90dw8q");
        assert_eq!(chunk.model, "claude-sonnet-4-5");
        assert_eq!(chunk.tool_calls.len(), 2);
        assert_eq!(
            chunk.tool_calls[0].arguments,
            r#"{"location":"San Francisco, CA","unit":"celsius"}"#
        );
        assert_eq!(
            (chunk.tool_calls[1].index, chunk.tool_calls[1].id.as_str()),
            (1, "toolu_01B")
        );
        let usage = chunk.usage.expect("usage");
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens,
                usage.cached_prompt_tokens
            ),
            (18, 20, 38, 5)
        );
    }

    #[test]
    fn structured_tool_input_is_the_content_and_finishes_with_stop() {
        let body = r#"{"id":"msg_1","type":"message","role":"assistant","content":[
            {"type":"thinking","thinking":"hm","signature":"s"},
            {"type":"tool_use","id":"toolu_1","name":"reply","input":{"a":1.50}}],
            "model":"m","stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":2}}"#;
        let response: WireResponse = serde_json::from_str(body).expect("a message");
        let chunk = response.into_chunk(Some("reply"));
        assert_eq!(chunk.content, r#"{"a":1.50}"#);
        assert!(chunk.tool_calls.is_empty());
        assert_eq!(chunk.finish_reason(), FinishReason::Stop);
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons() {
        let cases = [
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("max_tokens", FinishReason::Length),
            ("tool_use", FinishReason::ToolCalls),
            ("refusal", FinishReason::ContentFilter),
            ("pause_turn", FinishReason::Stop),
        ];
        for (reason, expected) in cases {
            assert_eq!(finish_reason(Some(reason), false), expected, "{reason}");
        }
    }

    #[test]
    fn error_bodies_classify_with_status_and_type() {
        let headers = reqwest::header::HeaderMap::new();
        let classify_body = |status: u16, body: &str| {
            let detail = error_detail(body.as_bytes()).expect("Anthropic-shaped");
            classify::upstream_error("a", status, &headers, &detail, None).class
        };
        let body = |kind: &str, message: &str| {
            format!(
                r#"{{"type":"error","error":{{"type":"{kind}","message":"{message}"}},"request_id":"req_1"}}"#
            )
        };
        let cases = [
            (
                400,
                body(
                    "invalid_request_error",
                    "prompt is too long: 208310 tokens > 200000 maximum",
                ),
                ErrorClass::ContextLengthExceeded,
            ),
            (
                400,
                body("invalid_request_error", "max_tokens: Field required"),
                ErrorClass::InvalidRequest,
            ),
            (
                401,
                body("authentication_error", "invalid x-api-key"),
                ErrorClass::Authentication,
            ),
            (403, body("permission_error", "no"), ErrorClass::Permission),
            (404, body("not_found_error", "no"), ErrorClass::NotFound),
            (
                413,
                body("request_too_large", "Request exceeds the maximum size"),
                ErrorClass::InvalidRequest,
            ),
            (
                429,
                body("rate_limit_error", "slow down"),
                ErrorClass::RateLimited,
            ),
            (
                500,
                body("api_error", "oops"),
                ErrorClass::UpstreamUnavailable,
            ),
            (
                529,
                body("overloaded_error", "Overloaded"),
                ErrorClass::Overloaded,
            ),
        ];
        for (status, body, class) in cases {
            assert_eq!(classify_body(status, &body), class, "{status} {body}");
        }
        assert!(error_detail(b"<html>502</html>").is_none());
    }
}

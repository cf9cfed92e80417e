//! Bedrock answers: the `Converse` response body, stop reasons, usage and
//! errors (`x-amzn-ErrorType` + `{"message"}` bodies, and the same names as
//! stream exceptions).

use std::time::SystemTime;

use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::value::RawValue;
use switchyard_common::{ErrorClass, Secret, ServiceError};
use switchyard_proto::v1::{ChatChunk, FinishReason, Role, ToolCallDelta, Usage};

use crate::classify::{self, UpstreamErrorDetail};

/// A `Converse` response body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseResponse {
    #[serde(default)]
    output: Option<Output>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct Output {
    #[serde(default)]
    message: Option<OutputMessage>,
}

#[derive(Debug, Deserialize)]
struct OutputMessage {
    #[serde(default)]
    content: Vec<OutputBlock>,
}

/// One content block; kinds other than text and tool use (reasoning,
/// citations) have no canonical field and are skipped.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutputBlock {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tool_use: Option<OutputToolUse>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutputToolUse {
    #[serde(default)]
    tool_use_id: String,
    #[serde(default)]
    name: String,
    input: Box<RawValue>,
}

/// Response-level fields Bedrock does not put in the body.
#[derive(Debug, Clone, Default)]
pub struct ResponseIdentity {
    /// The model id the request was sent to.
    pub model: String,
    /// The `x-amzn-RequestId` header.
    pub request_id: String,
}

impl ConverseResponse {
    /// Returns the whole answer as one chunk. With `structured_output_tool`,
    /// that tool's input is the answer text and the finish reason `stop`.
    pub fn into_chunk(
        self,
        structured_output_tool: Option<&str>,
        identity: ResponseIdentity,
    ) -> ChatChunk {
        let mut content = String::new();
        let mut tool_calls = Vec::new();
        let mut answered_structured = false;
        let blocks = self
            .output
            .and_then(|output| output.message)
            .map(|message| message.content)
            .unwrap_or_default();
        for block in blocks {
            if let Some(text) = block.text {
                content.push_str(&text);
            }
            if let Some(call) = block.tool_use {
                if Some(call.name.as_str()) == structured_output_tool {
                    content.push_str(call.input.get());
                    answered_structured = true;
                } else {
                    tool_calls.push(ToolCallDelta {
                        index: u32::try_from(tool_calls.len()).unwrap_or(u32::MAX),
                        id: call.tool_use_id,
                        name: call.name,
                        arguments: call.input.get().to_owned(),
                    });
                }
            }
        }
        let finish = finish_reason(self.stop_reason.as_deref(), answered_structured);
        ChatChunk {
            index: 0,
            role: Role::Assistant as i32,
            content,
            tool_calls,
            finish_reason: finish as i32,
            usage: self.usage.map(WireUsage::into_usage),
            model: identity.model,
            provider_response_id: identity.request_id,
            ..ChatChunk::default()
        }
    }
}

/// Maps a `stopReason`. A forced structured-output tool call finishes as
/// `stop`: to the client it is the answer, not a call.
pub fn finish_reason(stop_reason: Option<&str>, answered_structured: bool) -> FinishReason {
    match stop_reason {
        Some("tool_use") if answered_structured => FinishReason::Stop,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("guardrail_intervened" | "content_filtered") => FinishReason::ContentFilter,
        // end_turn, stop_sequence, and reasons added after this was written.
        _ => FinishReason::Stop,
    }
}

/// The `usage` object (`TokenUsage`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireUsage {
    #[serde(default)]
    input_tokens: u32,
    #[serde(default)]
    output_tokens: u32,
    #[serde(default)]
    cache_read_input_tokens: u32,
    #[serde(default)]
    cache_write_input_tokens: u32,
}

impl WireUsage {
    /// Converts to canonical usage. Bedrock counts cache reads and writes
    /// apart from `inputTokens`; OpenAI's prompt tokens include them, so
    /// they are added back, and the reads are the cached prompt tokens.
    pub fn into_usage(self) -> Usage {
        let prompt_tokens = self
            .input_tokens
            .saturating_add(self.cache_read_input_tokens)
            .saturating_add(self.cache_write_input_tokens);
        Usage {
            prompt_tokens,
            completion_tokens: self.output_tokens,
            total_tokens: prompt_tokens.saturating_add(self.output_tokens),
            cached_prompt_tokens: self.cache_read_input_tokens,
            reasoning_tokens: 0,
            cache_write_tokens: self.cache_write_input_tokens,
        }
    }
}

/// An error body: `{"message": ...}` (also `Message`, and `__type` from
/// some front ends).
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default, alias = "Message")]
    message: Option<String>,
    #[serde(default, rename = "__type")]
    kind: Option<String>,
}

/// Builds the error of a failed HTTP response from its status, the
/// `x-amzn-ErrorType` header and the body.
pub fn http_error(
    provider: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    scrub: Option<&Secret>,
) -> ServiceError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let header_type = headers
        .get("x-amzn-errortype")
        .and_then(|value| value.to_str().ok());
    let kind = header_type
        .or(parsed.kind.as_deref())
        .map(exception_name)
        .filter(|name| !name.is_empty());
    let class = kind
        .and_then(|kind| class_for_exception(kind, parsed.message.as_deref()))
        .unwrap_or_else(|| classify::class_for_status(status));
    let detail = UpstreamErrorDetail {
        message: parsed.message,
        kind: kind.map(str::to_owned),
        code: None,
        param: None,
    };
    let mut error = classify::classified_error(provider, class, Some(status), &detail, scrub);
    if let Some(retry_after) = classify::retry_after(headers, SystemTime::now()) {
        error = error.with_retry_after(retry_after);
    }
    error
}

/// Builds the error of an exception message in an event stream.
pub fn stream_exception(
    provider: &str,
    exception_type: &str,
    payload: &[u8],
    scrub: Option<&Secret>,
) -> ServiceError {
    let parsed: ErrorBody = serde_json::from_slice(payload).unwrap_or_default();
    let class = class_for_exception(exception_type, parsed.message.as_deref())
        .unwrap_or(ErrorClass::UpstreamUnavailable);
    let detail = UpstreamErrorDetail {
        message: parsed.message,
        kind: Some(exception_type.to_owned()),
        code: None,
        param: None,
    };
    classify::classified_error(provider, class, None, &detail, scrub)
}

/// Strips the namespace (`ThrottlingException:http://internal.amazon.com/…`
/// or `com.amazon…#ThrottlingException`) from an error type.
fn exception_name(raw: &str) -> &str {
    let name = raw.split(':').next().unwrap_or(raw);
    name.rsplit('#').next().unwrap_or(name).trim()
}

/// Returns the class an AWS exception name stands for (HTTP names are
/// `ThrottlingException`, stream ones `throttlingException`).
pub fn class_for_exception(name: &str, message: Option<&str>) -> Option<ErrorClass> {
    let class = match name.to_ascii_lowercase().as_str() {
        "throttlingexception" | "servicequotaexceededexception" | "toomanyrequestsexception" => {
            ErrorClass::RateLimited
        }
        "modelnotreadyexception" => ErrorClass::Overloaded,
        "serviceunavailableexception"
        | "internalserverexception"
        | "modelerrorexception"
        | "modelstreamerrorexception" => ErrorClass::UpstreamUnavailable,
        "modeltimeoutexception" => ErrorClass::Timeout,
        "validationexception" if message.is_some_and(is_context_length_message) => {
            ErrorClass::ContextLengthExceeded
        }
        "validationexception" => ErrorClass::InvalidRequest,
        "accessdeniedexception" => ErrorClass::Permission,
        "unrecognizedclientexception"
        | "invalidsignatureexception"
        | "incompletesignatureexception"
        | "missingauthenticationtokenexception"
        | "expiredtokenexception"
        | "invalidclienttokenid"
        | "signaturedoesnotmatch" => ErrorClass::Authentication,
        "resourcenotfoundexception" => ErrorClass::NotFound,
        _ => return None,
    };
    Some(class)
}

/// Whether a `ValidationException` says the input does not fit the model
/// (e.g. "Input is too long for requested model.").
fn is_context_length_message(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "too long",
        "too many input tokens",
        "too many tokens",
        "context window",
        "context length",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn converse_response_becomes_one_chunk() {
        let body = r#"{"output":{"message":{"role":"assistant","content":[
            {"text":"Let me check."},
            {"toolUse":{"toolUseId":"tooluse_1","name":"get_weather","input":{"location":"Boston, MA"}}}]}},
            "stopReason":"tool_use",
            "usage":{"inputTokens":10,"outputTokens":9,"totalTokens":29,"cacheReadInputTokens":6,"cacheWriteInputTokens":4},
            "metrics":{"latencyMs":120}}"#;
        let response: ConverseResponse = serde_json::from_str(body).expect("valid body");
        let identity = ResponseIdentity {
            model: "m".to_owned(),
            request_id: "r".to_owned(),
        };
        let chunk = response.into_chunk(None, identity);
        assert_eq!(chunk.content, "Let me check.");
        assert_eq!(chunk.finish_reason(), FinishReason::ToolCalls);
        assert_eq!(chunk.tool_calls[0].id, "tooluse_1");
        assert_eq!(
            chunk.tool_calls[0].arguments,
            r#"{"location":"Boston, MA"}"#
        );
        let usage = chunk.usage.expect("usage");
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens,
                usage.cached_prompt_tokens
            ),
            (20, 9, 29, 6)
        );
        assert_eq!(
            (chunk.model.as_str(), chunk.provider_response_id.as_str()),
            ("m", "r")
        );
    }

    #[test]
    fn structured_output_tool_input_is_the_answer() {
        let body = r#"{"output":{"message":{"role":"assistant","content":[
            {"toolUse":{"toolUseId":"t","name":"reply","input":{"a":1}}}]}},"stopReason":"tool_use"}"#;
        let response: ConverseResponse = serde_json::from_str(body).expect("valid body");
        let chunk = response.into_chunk(Some("reply"), ResponseIdentity::default());
        assert_eq!(chunk.content, r#"{"a":1}"#);
        assert!(chunk.tool_calls.is_empty());
        assert_eq!(chunk.finish_reason(), FinishReason::Stop);
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons() {
        for (reason, finish) in [
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("max_tokens", FinishReason::Length),
            ("tool_use", FinishReason::ToolCalls),
            ("guardrail_intervened", FinishReason::ContentFilter),
            ("content_filtered", FinishReason::ContentFilter),
        ] {
            assert_eq!(finish_reason(Some(reason), false), finish, "{reason}");
        }
    }

    #[test]
    fn errors_are_classified_by_exception_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-amzn-errortype",
            HeaderValue::from_static(
                "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            ),
        );
        let error = http_error(
            "b",
            400,
            &headers,
            br#"{"message":"Input is too long for requested model."}"#,
            None,
        );
        assert_eq!(error.class, ErrorClass::ContextLengthExceeded);
        assert_eq!(error.message, "Input is too long for requested model.");
        let error = http_error(
            "b",
            400,
            &HeaderMap::new(),
            br#"{"__type":"com.amazon.coral.validate#ValidationException","message":"bad"}"#,
            None,
        );
        assert_eq!(error.class, ErrorClass::InvalidRequest);
        for (name, status, class) in [
            ("AccessDeniedException", 403, ErrorClass::Permission),
            (
                "UnrecognizedClientException",
                403,
                ErrorClass::Authentication,
            ),
            ("InvalidSignatureException", 403, ErrorClass::Authentication),
            ("ResourceNotFoundException", 404, ErrorClass::NotFound),
            ("ModelTimeoutException", 408, ErrorClass::Timeout),
            ("ModelErrorException", 424, ErrorClass::UpstreamUnavailable),
            ("ThrottlingException", 429, ErrorClass::RateLimited),
            (
                "InternalServerException",
                500,
                ErrorClass::UpstreamUnavailable,
            ),
            (
                "ServiceUnavailableException",
                503,
                ErrorClass::UpstreamUnavailable,
            ),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(
                "x-amzn-errortype",
                HeaderValue::from_str(&format!(
                    "{name}:http://internal.amazon.com/coral/com.amazon.bedrock/"
                ))
                .expect("ascii"),
            );
            let error = http_error("b", status, &headers, br#"{"message":"m"}"#, None);
            assert_eq!(error.class, class, "{name}");
        }
        // Without a recognizable name the status decides.
        assert_eq!(
            http_error("b", 429, &HeaderMap::new(), b"<html/>", None).class,
            ErrorClass::RateLimited
        );
        assert_eq!(
            stream_exception(
                "b",
                "throttlingException",
                br#"{"message":"slow down"}"#,
                None
            )
            .class,
            ErrorClass::RateLimited
        );
    }
}

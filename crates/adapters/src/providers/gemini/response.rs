//! Gemini `GenerateContentResponse` objects (a whole answer, or one event
//! of a stream) and their translation to canonical [`ChatChunk`]s.
//!
//! One [`Translator`] follows one answer: it remembers, per candidate,
//! whether the role went out and how many function calls came (Gemini
//! finishes a function-calling candidate with `STOP`, which becomes
//! `tool_calls`), and keeps the latest `usageMetadata`, which Gemini repeats
//! cumulatively on stream events.

use serde::Deserialize;
use serde_json::value::RawValue;
use switchyard_common::{ErrorClass, ServiceError};
use switchyard_proto::v1::{ChatChunk, FinishReason, Role, ToolCallDelta, Usage};

use super::{call_id, upstream_error::GoogleError};

/// One `GenerateContentResponse`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse {
    #[serde(default)]
    candidates: Vec<Candidate>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    model_version: Option<String>,
    #[serde(default)]
    response_id: Option<String>,
    /// An error reported inside a stream (or a 200 body).
    #[serde(default)]
    pub error: Option<GoogleError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    index: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    #[serde(default)]
    text: Option<String>,
    /// Marks a thought summary, which is not part of the answer.
    #[serde(default)]
    thought: bool,
    #[serde(default)]
    function_call: Option<FunctionCall>,
    #[serde(default)]
    thought_signature: Option<String>,
}

#[derive(Debug, Deserialize)]
struct FunctionCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    args: Option<Box<RawValue>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
    #[serde(default)]
    block_reason_message: Option<String>,
}

/// The `usageMetadata` object.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u32,
    #[serde(default)]
    candidates_token_count: u32,
    #[serde(default)]
    total_token_count: Option<u32>,
    #[serde(default)]
    cached_content_token_count: u32,
    #[serde(default)]
    thoughts_token_count: u32,
}

impl UsageMetadata {
    /// Completion tokens include the thinking tokens, as OpenAI counts
    /// reasoning tokens as completion tokens.
    fn into_usage(self) -> Usage {
        let completion_tokens = self
            .candidates_token_count
            .saturating_add(self.thoughts_token_count);
        Usage {
            prompt_tokens: self.prompt_token_count,
            completion_tokens,
            total_tokens: self
                .total_token_count
                .unwrap_or(self.prompt_token_count.saturating_add(completion_tokens)),
            cached_prompt_tokens: self.cached_content_token_count,
            reasoning_tokens: self.thoughts_token_count,
            // Gemini bills context caching separately, not per request.
            cache_write_tokens: 0,
        }
    }
}

/// What went out so far for one candidate.
#[derive(Debug, Default, Clone, Copy)]
struct CandidateState {
    role_sent: bool,
    calls: u32,
    finished: bool,
}

/// Translates the responses of one answer, in order.
#[derive(Debug, Default)]
pub struct Translator {
    provider: String,
    candidates: Vec<CandidateState>,
    model_reported: bool,
    id_reported: bool,
    usage: Option<UsageMetadata>,
}

impl Translator {
    /// Starts translating an answer of `provider`.
    pub fn new(provider: &str) -> Self {
        Self {
            provider: provider.to_owned(),
            ..Self::default()
        }
    }

    /// Whether every candidate seen so far finished (and at least one was seen).
    pub fn finished(&self) -> bool {
        !self.candidates.is_empty() && self.candidates.iter().all(|state| state.finished)
    }

    /// Translates one response into chunks (possibly none); a blocked
    /// prompt is a `content_filtered` error.
    pub fn translate(
        &mut self,
        response: GenerateContentResponse,
    ) -> Result<Vec<ChatChunk>, ServiceError> {
        if response.candidates.is_empty()
            && let Some(feedback) = response.prompt_feedback
            && let Some(reason) = feedback.block_reason
        {
            let explanation = feedback
                .block_reason_message
                .map(|message| format!(": {message}"))
                .unwrap_or_default();
            return Err(ServiceError::new(
                ErrorClass::ContentFiltered,
                format!("Gemini blocked the prompt ({reason}){explanation}"),
            )
            .with_provider(&self.provider));
        }
        if response.usage_metadata.is_some() {
            self.usage = response.usage_metadata;
        }
        let mut chunks: Vec<ChatChunk> = response
            .candidates
            .into_iter()
            .enumerate()
            .filter_map(|(position, candidate)| self.candidate_chunk(position, candidate))
            .collect();
        if let Some(first) = chunks.first_mut() {
            if !self.model_reported
                && let Some(model) = response.model_version.filter(|model| !model.is_empty())
            {
                first.model = model;
                self.model_reported = true;
            }
            if !self.id_reported
                && let Some(id) = response.response_id.filter(|id| !id.is_empty())
            {
                first.provider_response_id = id;
                self.id_reported = true;
            }
        }
        Ok(chunks)
    }

    /// Takes the answer's usage (from the last response that had it).
    pub fn take_usage(&mut self) -> Option<Usage> {
        self.usage.take().map(UsageMetadata::into_usage)
    }

    fn candidate_chunk(&mut self, position: usize, candidate: Candidate) -> Option<ChatChunk> {
        let index = candidate
            .index
            .unwrap_or_else(|| u32::try_from(position).unwrap_or(u32::MAX));
        let slot = usize::try_from(index).unwrap_or(usize::MAX).min(1024);
        if self.candidates.len() <= slot {
            self.candidates.resize(slot + 1, CandidateState::default());
        }
        let state = &mut self.candidates[slot];
        let mut chunk = ChatChunk {
            index,
            ..ChatChunk::default()
        };
        for part in candidate
            .content
            .map(|content| content.parts)
            .unwrap_or_default()
        {
            if let Some(call) = part.function_call {
                let arguments = call
                    .args
                    .map(|args| minify(args.get()))
                    .unwrap_or_else(|| "{}".to_owned());
                chunk.tool_calls.push(ToolCallDelta {
                    index: state.calls,
                    id: call_id::encode(
                        call.id.as_deref(),
                        state.calls,
                        part.thought_signature.as_deref(),
                    ),
                    name: call.name.unwrap_or_default(),
                    arguments,
                });
                state.calls += 1;
            } else if let Some(text) = part.text
                && !part.thought
            {
                chunk.content.push_str(&text);
            }
        }
        if let Some(reason) = candidate.finish_reason.as_deref()
            && reason != "FINISH_REASON_UNSPECIFIED"
        {
            chunk.finish_reason = finish_reason(reason, state.calls > 0) as i32;
            state.finished = true;
        }
        let empty = chunk.content.is_empty()
            && chunk.tool_calls.is_empty()
            && chunk.finish_reason() == FinishReason::Unspecified;
        if empty {
            return None;
        }
        if !state.role_sent {
            chunk.role = Role::Assistant as i32;
            state.role_sent = true;
        }
        Some(chunk)
    }

    /// Ends a non-streamed answer: every candidate finishes (a missing
    /// reason is `stop`) and the usage rides on the last chunk.
    pub fn complete(&mut self, mut chunks: Vec<ChatChunk>) -> Vec<ChatChunk> {
        for chunk in &mut chunks {
            if chunk.finish_reason() == FinishReason::Unspecified {
                chunk.finish_reason = FinishReason::Stop as i32;
            }
        }
        if let Some(usage) = self.take_usage() {
            match chunks.last_mut() {
                Some(last) => last.usage = Some(usage),
                None => chunks.push(ChatChunk {
                    usage: Some(usage),
                    ..ChatChunk::default()
                }),
            }
        }
        chunks
    }
}

/// Maps a Gemini `finishReason`; `STOP` after function calls is `tool_calls`.
pub fn finish_reason(reason: &str, called_functions: bool) -> FinishReason {
    match reason {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        // STOP, and every other reason (OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL,
        // ...) still ends the choice.
        _ if called_functions => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

/// Removes insignificant whitespace from JSON text (Gemini pretty-prints
/// whole responses; OpenAI clients expect compact `arguments`), keeping
/// key order and number spelling.
fn minify(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for character in json.chars() {
        if in_string {
            out.push(character);
            if escaped {
                escaped = false;
            } else if character == '\\' {
                escaped = true;
            } else if character == '"' {
                in_string = false;
            }
        } else if character == '"' {
            in_string = true;
            out.push(character);
        } else if !character.is_whitespace() {
            out.push(character);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> GenerateContentResponse {
        serde_json::from_str(text).expect("a valid response")
    }

    #[test]
    fn whole_answer_becomes_one_chunk_with_usage() {
        let mut translator = Translator::new("g");
        let response = parse(
            r#"{
  "candidates": [
    {
      "content": {
        "parts": [
          {"text": "Thinking...", "thought": true},
          {"text": "Hello"},
          {"text": " there"}
        ],
        "role": "model"
      },
      "finishReason": "STOP",
      "index": 0
    }
  ],
  "usageMetadata": {
    "promptTokenCount": 10,
    "candidatesTokenCount": 2,
    "totalTokenCount": 40,
    "cachedContentTokenCount": 4,
    "thoughtsTokenCount": 28
  },
  "modelVersion": "gemini-2.5-flash",
  "responseId": "abc"
}"#,
        );
        let chunks = translator.translate(response).expect("not blocked");
        let chunks = translator.complete(chunks);
        assert_eq!(chunks.len(), 1);
        let chunk = &chunks[0];
        assert_eq!(chunk.content, "Hello there");
        assert_eq!(chunk.role(), Role::Assistant);
        assert_eq!(chunk.finish_reason(), FinishReason::Stop);
        assert_eq!(chunk.model, "gemini-2.5-flash");
        assert_eq!(chunk.provider_response_id, "abc");
        let usage = chunk.usage.expect("usage");
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens,
                usage.cached_prompt_tokens,
                usage.reasoning_tokens
            ),
            (10, 30, 40, 4, 28)
        );
    }

    #[test]
    fn function_calls_get_positional_ids_and_finish_as_tool_calls() {
        let mut translator = Translator::new("g");
        let response = parse(
            r#"{"candidates": [{"content": {"parts": [
                {"functionCall": {"name": "a", "args": {"x": 1, "b": [1, 2]}}, "thoughtSignature": "c2ln"},
                {"functionCall": {"name": "b"}}
            ],"role": "model"},"finishReason": "STOP","index": 0}]}"#,
        );
        let chunks = translator.translate(response).expect("not blocked");
        let calls = &chunks[0].tool_calls;
        assert_eq!(calls[0].id, "call_0.ts.c2ln");
        assert_eq!(calls[0].arguments, r#"{"x":1,"b":[1,2]}"#);
        assert_eq!((calls[1].index, calls[1].id.as_str()), (1, "call_1"));
        assert_eq!(calls[1].arguments, "{}");
        assert_eq!(chunks[0].finish_reason(), FinishReason::ToolCalls);
    }

    #[test]
    fn finish_reasons_are_normalized() {
        assert_eq!(finish_reason("MAX_TOKENS", false), FinishReason::Length);
        for reason in [
            "SAFETY",
            "RECITATION",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "SPII",
        ] {
            assert_eq!(finish_reason(reason, false), FinishReason::ContentFilter);
        }
        assert_eq!(finish_reason("OTHER", false), FinishReason::Stop);
        assert_eq!(finish_reason("STOP", true), FinishReason::ToolCalls);
    }

    #[test]
    fn blocked_prompt_is_content_filtered() {
        let mut translator = Translator::new("g");
        let response = parse(
            r#"{"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}}"#,
        );
        let error = translator.translate(response).expect_err("blocked");
        assert_eq!(error.class, ErrorClass::ContentFiltered);
        assert!(error.message.contains("SAFETY"), "{}", error.message);
    }

    #[test]
    fn minify_keeps_strings_intact() {
        assert_eq!(
            minify("{\n  \"a b\": \"x \\\" y\",\n  \"c\": 1.50\n}"),
            r#"{"a b":"x \" y","c":1.50}"#
        );
    }
}

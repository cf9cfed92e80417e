//! The OpenAI-compatible servers a [`FakeOpenAi`](super::FakeOpenAi) can
//! imitate besides OpenAI itself: what each checks in a request, and how its
//! answers differ (fields taken from each provider's API reference).
//!
//! Frames of every flavor other than OpenAI are rendered from JSON values,
//! so their keys come out sorted; Azure sorts its keys the same way.

use serde_json::{Value, json};

/// Which OpenAI-compatible server the fake imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FakeFlavor {
    /// OpenAI itself (the behaviour of [`FakeOpenAi::start`](super::FakeOpenAi::start)).
    #[default]
    OpenAi,
    /// Azure OpenAI: `POST /openai/deployments/{deployment}/chat/completions
    /// ?api-version=...` with an `api-key` header (401 without it, 404
    /// without `api-version`); streams open with a `prompt_filter_results`
    /// chunk without choices, and choices carry `content_filter_results`.
    /// The base URL is the resource endpoint (no `/v1`).
    Azure,
    /// Groq: 400 unless `n` is 1; a stream's usage arrives only in
    /// `x_groq.usage` of its last chunk (`x_groq.id` on the first and last).
    Groq,
    /// DeepSeek: base URL without `/v1`; usage reports
    /// `prompt_cache_hit_tokens` (the system messages' words count as cached)
    /// and `prompt_cache_miss_tokens`. Models named `*reasoner*` think first:
    /// `reasoning_content` ("Thinking it over.", 3 reasoning tokens, counted
    /// in the completion tokens) before the content.
    DeepSeek,
    /// Mistral: flat error bodies; 422 for fields Mistral does not know
    /// (`stream_options`, `seed`, `user`, ...); 400 for tool call ids that are
    /// not 9 letters or digits; a stream's usage rides on its last choice
    /// chunk; its own tool call id is `D681PevKs`.
    Mistral,
    /// A minimal self-hosted server (older Ollama / llama.cpp / TGI builds):
    /// no `id`, `created` or `system_fingerprint`, never any usage in a
    /// stream, finish reason `eos_token` for text, and a 400 for
    /// `stream_options`, which it does not know.
    Minimal,
}

/// Words of the reasoning a DeepSeek reasoner shows.
pub const REASONING: &str = "Thinking it over.";
/// Id of the tool call the Mistral flavor makes.
pub const MISTRAL_TOOL_CALL_ID: &str = "D681PevKs";
/// Groq's request id.
const GROQ_REQUEST_ID: &str = "req_01jbd6g2qdfw2adyrt2az8hz4w";

/// Fields of Mistral's chat completion request.
const MISTRAL_FIELDS: [&str; 22] = [
    "model",
    "messages",
    "temperature",
    "top_p",
    "max_tokens",
    "stream",
    "stop",
    "random_seed",
    "metadata",
    "response_format",
    "tools",
    "tool_choice",
    "presence_penalty",
    "frequency_penalty",
    "n",
    "prediction",
    "parallel_tool_calls",
    "reasoning_effort",
    "prompt_mode",
    "guardrails",
    "prompt_cache_key",
    "safe_prompt",
];

/// A refusal of the request: status and body.
pub type Refusal = (u16, String);

/// Token counts of an answer.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub prompt: u32,
    pub completion: u32,
    pub cached: u32,
    pub reasoning: u32,
}

impl FakeFlavor {
    /// Returns why this server refuses the request, if it does.
    pub fn refusal(self, query: &str, headers: &http::HeaderMap, body: &Value) -> Option<Refusal> {
        match self {
            Self::OpenAi | Self::DeepSeek => None,
            Self::Azure => azure_refusal(query, headers),
            Self::Groq => match body.get("n") {
                Some(n) if n != 1 => Some((
                    400,
                    json!({"error": {"message": "'n' : number must be at most 1", "type": "invalid_request_error"}})
                        .to_string(),
                )),
                _ => None,
            },
            Self::Mistral => mistral_refusal(body),
            Self::Minimal => body.get("stream_options").map(|_| {
                (
                    400,
                    json!({"error": {"message": "Unrecognized request argument supplied: stream_options", "type": "invalid_request_error", "param": null, "code": null}})
                        .to_string(),
                )
            }),
        }
    }

    /// Returns the usage object as this server writes it.
    pub fn usage(self, counts: Counts) -> Value {
        let total = counts.prompt + counts.completion;
        match self {
            Self::DeepSeek => json!({
                "completion_tokens": counts.completion,
                "prompt_tokens": counts.prompt,
                "prompt_cache_hit_tokens": counts.cached,
                "prompt_cache_miss_tokens": counts.prompt - counts.cached,
                "total_tokens": total,
                "completion_tokens_details": {"reasoning_tokens": counts.reasoning}
            }),
            Self::Groq => json!({
                "queue_time": 0.017,
                "prompt_tokens": counts.prompt,
                "prompt_time": 0.002,
                "completion_tokens": counts.completion,
                "completion_time": 0.021,
                "total_tokens": total,
                "total_time": 0.023
            }),
            Self::OpenAi | Self::Azure => json!({
                "completion_tokens": counts.completion,
                "completion_tokens_details": {"accepted_prediction_tokens": 0, "audio_tokens": 0, "reasoning_tokens": counts.reasoning, "rejected_prediction_tokens": 0},
                "prompt_tokens": counts.prompt,
                "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": counts.cached},
                "total_tokens": total
            }),
            Self::Mistral | Self::Minimal => json!({
                "prompt_tokens": counts.prompt,
                "total_tokens": total,
                "completion_tokens": counts.completion
            }),
        }
    }

    /// Adjusts a whole `chat.completion` object to this server.
    pub fn completion(self, mut completion: Value, counts: Counts) -> Value {
        self.common(&mut completion);
        completion["usage"] = self.usage(counts);
        match self {
            Self::Azure => {
                completion["prompt_filter_results"] = prompt_filter_results();
                for choice in choices(&mut completion) {
                    choice["content_filter_results"] = safe_results();
                }
            }
            Self::Groq => completion["x_groq"] = json!({"id": GROQ_REQUEST_ID}),
            Self::Minimal => {
                for choice in choices(&mut completion) {
                    if choice["finish_reason"] == "stop" {
                        choice["finish_reason"] = json!("eos_token");
                    }
                }
            }
            Self::OpenAi | Self::DeepSeek | Self::Mistral => {}
        }
        completion
    }

    /// Adjusts the stream's chunk objects (choice chunks, then a usage chunk
    /// when usage was asked for) to this server, adding or dropping chunks.
    pub fn stream(self, mut chunks: Vec<Value>, counts: Counts) -> Vec<Value> {
        for chunk in &mut chunks {
            self.common(chunk);
        }
        let has_usage_chunk = chunks
            .last()
            .is_some_and(|chunk| chunk.get("usage").is_some_and(|usage| !usage.is_null()));
        match self {
            Self::OpenAi | Self::DeepSeek => {
                if has_usage_chunk && let Some(last) = chunks.last_mut() {
                    last["usage"] = self.usage(counts);
                }
            }
            Self::Azure => {
                if has_usage_chunk && let Some(last) = chunks.last_mut() {
                    last["usage"] = self.usage(counts);
                }
                for chunk in &mut chunks {
                    for choice in choices(chunk) {
                        let has_text = choice["delta"]["content"]
                            .as_str()
                            .is_some_and(|text| !text.is_empty());
                        choice["content_filter_results"] =
                            if has_text { safe_results() } else { json!({}) };
                    }
                }
                let opening = json!({
                    "choices": [], "created": 0, "id": "", "model": "", "object": "",
                    "prompt_filter_results": prompt_filter_results()
                });
                chunks.insert(0, opening);
            }
            Self::Groq => {
                if has_usage_chunk {
                    chunks.pop();
                }
                for chunk in &mut chunks {
                    if let Some(object) = chunk.as_object_mut() {
                        object.remove("usage");
                    }
                }
                if let Some(first) = chunks.first_mut() {
                    first["x_groq"] = json!({"id": GROQ_REQUEST_ID});
                }
                if let Some(last) = chunks.last_mut() {
                    last["x_groq"] = json!({"id": GROQ_REQUEST_ID, "usage": self.usage(counts)});
                }
            }
            Self::Mistral | Self::Minimal => {
                if has_usage_chunk {
                    chunks.pop();
                }
                for chunk in &mut chunks {
                    if let Some(object) = chunk.as_object_mut() {
                        object.remove("usage");
                    }
                }
                if let Some(last) = chunks.last_mut() {
                    if self == Self::Mistral {
                        last["usage"] = self.usage(counts);
                    } else {
                        for choice in choices(last) {
                            if choice["finish_reason"] == "stop" {
                                choice["finish_reason"] = json!("eos_token");
                            }
                        }
                    }
                }
            }
        }
        chunks
    }

    /// Drops the fields this server does not send.
    fn common(self, object: &mut Value) {
        let Some(object) = object.as_object_mut() else {
            return;
        };
        object.remove("service_tier");
        match self {
            Self::Mistral => {
                object.remove("system_fingerprint");
            }
            Self::Minimal => {
                for field in ["id", "created", "system_fingerprint"] {
                    object.remove(field);
                }
            }
            _ => {}
        }
        if let Some(Value::Array(choices)) = object.get_mut("choices") {
            for choice in choices {
                if let Some(message) = choice.get_mut("message").and_then(Value::as_object_mut) {
                    message.remove("annotations");
                    if self != Self::OpenAi {
                        message.remove("refusal");
                    }
                }
                if let Some(delta) = choice.get_mut("delta").and_then(Value::as_object_mut)
                    && self != Self::OpenAi
                {
                    delta.remove("refusal");
                }
            }
        }
    }
}

fn choices(object: &mut Value) -> impl Iterator<Item = &mut Value> {
    object
        .get_mut("choices")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

fn safe_results() -> Value {
    let safe = json!({"filtered": false, "severity": "safe"});
    json!({"hate": safe, "self_harm": safe, "sexual": safe, "violence": safe})
}

fn prompt_filter_results() -> Value {
    json!([{"prompt_index": 0, "content_filter_results": {
        "hate": {"filtered": false, "severity": "safe"},
        "jailbreak": {"filtered": false, "detected": false},
        "self_harm": {"filtered": false, "severity": "safe"},
        "sexual": {"filtered": false, "severity": "safe"},
        "violence": {"filtered": false, "severity": "safe"}
    }}])
}

fn azure_refusal(query: &str, headers: &http::HeaderMap) -> Option<Refusal> {
    if !headers.contains_key("api-key") {
        let message = "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.";
        return Some((
            401,
            json!({"error": {"code": "401", "message": message}}).to_string(),
        ));
    }
    let has_version = query.split('&').any(|pair| {
        pair.strip_prefix("api-version=")
            .is_some_and(|v| !v.is_empty())
    });
    if !has_version {
        return Some((
            404,
            json!({"error": {"code": "404", "message": "Resource not found"}}).to_string(),
        ));
    }
    None
}

fn mistral_refusal(body: &Value) -> Option<Refusal> {
    let object = body.as_object()?;
    if let Some((key, value)) = object
        .iter()
        .find(|(key, _)| !MISTRAL_FIELDS.contains(&key.as_str()))
    {
        let detail = json!([{"type": "extra_forbidden", "loc": ["body", key], "msg": "Extra inputs are not permitted", "input": value}]);
        return Some((
            422,
            json!({"object": "error", "message": {"detail": detail}, "type": "invalid_request_message_error", "param": null, "code": null})
                .to_string(),
        ));
    }
    let messages = object.get("messages")?.as_array()?;
    let ids = messages.iter().flat_map(|message| {
        let calls = message["tool_calls"].as_array().into_iter().flatten();
        calls
            .filter_map(|call| call["id"].as_str())
            .chain(message["tool_call_id"].as_str())
    });
    for id in ids {
        if id.len() != 9 || !id.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
            let message =
                format!("Tool call id was {id} but must be a-z, A-Z, 0-9, with a length of 9.");
            return Some((
                400,
                json!({"object": "error", "message": message, "type": "invalid_request_error", "param": null, "code": null})
                    .to_string(),
            ));
        }
    }
    None
}

//! Rendering canonical chunks as OpenAI `chat.completion` and
//! `chat.completion.chunk` objects.

use std::collections::BTreeMap;

use serde::Serialize;
use switchyard_proto::v1 as pb;

/// Identity shared by every object of one response.
#[derive(Debug, Clone)]
pub struct ResponseIdentity {
    /// `chatcmpl-…` id.
    pub id: String,
    /// Unix seconds when the request arrived.
    pub created: u64,
    /// Model name shown when the provider did not report one.
    pub fallback_model: String,
}

#[derive(Serialize)]
struct UsageWire<'a> {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u32,
    prompt_tokens_details: PromptDetails,
    completion_tokens_details: CompletionDetails,
    /// What the request cost, in `cost_details.currency`, as an exact
    /// decimal number (streams only; SDKs keep unknown fields as extras).
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<&'a serde_json::value::RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_details: Option<&'a CostDetails>,
}

/// Who the cost in a streamed `usage` was paid to, beside it.
#[derive(Debug, Serialize)]
struct CostDetails {
    currency: String,
    provider: String,
    deployment: String,
    route: String,
}

/// A request's cost as a streamed `usage` shows it.
#[derive(Debug)]
struct StreamedCost {
    amount: Box<serde_json::value::RawValue>,
    details: CostDetails,
}

#[derive(Serialize)]
struct PromptDetails {
    cached_tokens: u32,
}

#[derive(Serialize)]
struct CompletionDetails {
    reasoning_tokens: u32,
}

impl From<pb::Usage> for UsageWire<'_> {
    fn from(usage: pb::Usage) -> Self {
        Self {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens,
            prompt_tokens_details: PromptDetails {
                cached_tokens: usage.cached_prompt_tokens,
            },
            completion_tokens_details: CompletionDetails {
                reasoning_tokens: usage.reasoning_tokens,
            },
            cost: None,
            cost_details: None,
        }
    }
}

fn finish_reason(value: i32) -> Option<&'static str> {
    match pb::FinishReason::try_from(value).ok()? {
        pb::FinishReason::Unspecified => None,
        pb::FinishReason::Stop => Some("stop"),
        pb::FinishReason::Length => Some("length"),
        pb::FinishReason::ToolCalls => Some("tool_calls"),
        pb::FinishReason::ContentFilter => Some("content_filter"),
    }
}

// ---- non-streaming -------------------------------------------------------

#[derive(Default)]
struct ChoiceAggregate {
    content: String,
    refusal: Option<String>,
    tool_calls: BTreeMap<u32, ToolCallAggregate>,
    finish_reason: i32,
}

#[derive(Default)]
struct ToolCallAggregate {
    id: String,
    name: String,
    arguments: String,
}

/// Folds chunks into one `chat.completion` object.
#[derive(Default)]
pub struct CompletionBuilder {
    choices: BTreeMap<u32, ChoiceAggregate>,
    usage: Option<pb::Usage>,
    model: String,
    system_fingerprint: String,
}

#[derive(Serialize)]
struct CompletionWire<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<CompletionChoiceWire<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageWire<'static>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_fingerprint: Option<&'a str>,
}

#[derive(Serialize)]
struct CompletionChoiceWire<'a> {
    index: u32,
    message: MessageWire<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct MessageWire<'a> {
    role: &'static str,
    content: Option<&'a str>,
    refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallWire<'a>>,
}

#[derive(Serialize)]
struct ToolCallWire<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionCallWire<'a>,
}

#[derive(Serialize)]
struct FunctionCallWire<'a> {
    name: &'a str,
    arguments: &'a str,
}

impl CompletionBuilder {
    /// Adds one chunk.
    pub fn push(&mut self, chunk: pb::ChatChunk) {
        if !chunk.model.is_empty() {
            self.model = chunk.model;
        }
        if !chunk.system_fingerprint.is_empty() {
            self.system_fingerprint = chunk.system_fingerprint;
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        let is_usage_only = chunk.role == 0
            && chunk.content.is_empty()
            && chunk.refusal.is_empty()
            && chunk.tool_calls.is_empty()
            && chunk.finish_reason == 0;
        if is_usage_only {
            return;
        }
        let choice = self.choices.entry(chunk.index).or_default();
        choice.content.push_str(&chunk.content);
        if !chunk.refusal.is_empty() {
            choice
                .refusal
                .get_or_insert_with(String::new)
                .push_str(&chunk.refusal);
        }
        for delta in chunk.tool_calls {
            let call = choice.tool_calls.entry(delta.index).or_default();
            if !delta.id.is_empty() {
                call.id = delta.id;
            }
            if !delta.name.is_empty() {
                call.name = delta.name;
            }
            call.arguments.push_str(&delta.arguments);
        }
        if chunk.finish_reason != 0 {
            choice.finish_reason = chunk.finish_reason;
        }
    }

    /// Renders the `chat.completion` JSON.
    pub fn finish(self, identity: &ResponseIdentity) -> Vec<u8> {
        let model = if self.model.is_empty() {
            identity.fallback_model.as_str()
        } else {
            self.model.as_str()
        };
        let choices = self
            .choices
            .iter()
            .map(|(index, choice)| {
                let tool_calls: Vec<_> = choice
                    .tool_calls
                    .values()
                    .map(|call| ToolCallWire {
                        id: &call.id,
                        kind: "function",
                        function: FunctionCallWire {
                            name: &call.name,
                            arguments: &call.arguments,
                        },
                    })
                    .collect();
                let content = if choice.content.is_empty() && !tool_calls.is_empty() {
                    None
                } else {
                    Some(choice.content.as_str())
                };
                CompletionChoiceWire {
                    index: *index,
                    message: MessageWire {
                        role: "assistant",
                        content,
                        refusal: choice.refusal.as_deref(),
                        tool_calls,
                    },
                    logprobs: None,
                    finish_reason: finish_reason(choice.finish_reason),
                }
            })
            .collect();
        let completion = CompletionWire {
            id: &identity.id,
            object: "chat.completion",
            created: identity.created,
            model,
            choices,
            usage: self.usage.map(UsageWire::from),
            system_fingerprint: (!self.system_fingerprint.is_empty())
                .then_some(self.system_fingerprint.as_str()),
        };
        serde_json::to_vec(&completion).unwrap_or_default()
    }
}

// ---- streaming -----------------------------------------------------------

#[derive(Serialize)]
struct ChunkWire<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_fingerprint: Option<&'a str>,
    choices: Vec<ChunkChoiceWire<'a>>,
    /// `Some(None)` renders `"usage": null`, as OpenAI does when usage is requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<UsageWire<'a>>>,
    /// The gateway's overhead, on a stream's last chunk only.
    #[serde(
        rename = "x-switchyard-overhead-ms",
        skip_serializing_if = "Option::is_none"
    )]
    overhead_ms: Option<f64>,
}

#[derive(Serialize)]
struct ChunkChoiceWire<'a> {
    index: u32,
    delta: DeltaWire<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct DeltaWire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallDeltaWire<'a>>,
}

#[derive(Serialize)]
struct ToolCallDeltaWire<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDeltaWire<'a>,
}

#[derive(Serialize)]
struct FunctionDeltaWire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

/// Renders canonical chunks as `chat.completion.chunk` SSE events.
pub struct ChunkRenderer {
    identity: ResponseIdentity,
    include_usage: bool,
    model: String,
    system_fingerprint: String,
    /// The request's cost, once the router reported it.
    cost: Option<StreamedCost>,
}

impl ChunkRenderer {
    /// Creates a renderer; `include_usage` mirrors `stream_options.include_usage`.
    pub fn new(identity: ResponseIdentity, include_usage: bool) -> Self {
        Self {
            model: identity.fallback_model.clone(),
            identity,
            include_usage,
            system_fingerprint: String::new(),
            cost: None,
        }
    }

    /// Sets the request's cost, shown in the usage event with who was paid
    /// (`route`'s provider, deployment and route).
    pub fn cost_is(&mut self, cost: &pb::Money, route: &pb::RouteDecision) {
        let decimal = switchyard_common::money::decimal(cost.nanos);
        // A decimal with nine fractional digits is a valid JSON number.
        let Ok(amount) = serde_json::value::RawValue::from_string(decimal) else {
            return;
        };
        self.cost = Some(StreamedCost {
            amount,
            details: CostDetails {
                currency: cost.currency.clone(),
                provider: if route.cache_hit {
                    "cache".to_owned()
                } else {
                    route.provider.clone()
                },
                deployment: route.deployment_id.clone(),
                route: route.model.clone(),
            },
        });
    }

    /// Appends the SSE events for one chunk to `out`: a delta event unless the
    /// chunk only carries usage, then a usage event when usage was requested.
    pub fn render(&mut self, chunk: &pb::ChatChunk, out: &mut Vec<u8>) {
        self.render_with(chunk, out, None);
    }

    /// Renders a stream's last chunk, its last event carrying the gateway's
    /// overhead in milliseconds (`x-switchyard-overhead-ms`) when known.
    pub fn render_last(
        &mut self,
        chunk: &pb::ChatChunk,
        out: &mut Vec<u8>,
        overhead_ms: Option<f64>,
    ) {
        self.render_with(chunk, out, overhead_ms);
    }

    /// Whether rendering `chunk` writes any event (a usage-only chunk
    /// writes none unless usage was requested).
    pub fn writes_event(&self, chunk: &pb::ChatChunk) -> bool {
        has_delta(chunk) || (self.include_usage && chunk.usage.is_some())
    }

    fn render_with(&mut self, chunk: &pb::ChatChunk, out: &mut Vec<u8>, overhead_ms: Option<f64>) {
        if !chunk.model.is_empty() && chunk.model != self.model {
            self.model.clone_from(&chunk.model);
        }
        if !chunk.system_fingerprint.is_empty()
            && chunk.system_fingerprint != self.system_fingerprint
        {
            self.system_fingerprint
                .clone_from(&chunk.system_fingerprint);
        }
        let usage_event = self.include_usage && chunk.usage.is_some();
        if has_delta(chunk) {
            let tool_calls = chunk
                .tool_calls
                .iter()
                .map(|delta| ToolCallDeltaWire {
                    index: delta.index,
                    id: (!delta.id.is_empty()).then_some(delta.id.as_str()),
                    kind: (!delta.id.is_empty()).then_some("function"),
                    function: FunctionDeltaWire {
                        name: (!delta.name.is_empty()).then_some(delta.name.as_str()),
                        arguments: &delta.arguments,
                    },
                })
                .collect();
            let delta = DeltaWire {
                role: (chunk.role != 0).then_some("assistant"),
                content: (!chunk.content.is_empty() || chunk.role != 0)
                    .then_some(chunk.content.as_str()),
                refusal: (!chunk.refusal.is_empty()).then_some(chunk.refusal.as_str()),
                tool_calls,
            };
            let wire = ChunkWire {
                id: &self.identity.id,
                object: "chat.completion.chunk",
                created: self.identity.created,
                model: &self.model,
                system_fingerprint: self.fingerprint(),
                choices: vec![ChunkChoiceWire {
                    index: chunk.index,
                    delta,
                    logprobs: None,
                    finish_reason: finish_reason(chunk.finish_reason),
                }],
                usage: self.include_usage.then_some(None),
                overhead_ms: overhead_ms.filter(|_| !usage_event),
            };
            write_event(out, &wire);
        }
        if let (true, Some(usage)) = (self.include_usage, chunk.usage) {
            let wire = ChunkWire {
                id: &self.identity.id,
                object: "chat.completion.chunk",
                created: self.identity.created,
                model: &self.model,
                system_fingerprint: self.fingerprint(),
                choices: Vec::new(),
                usage: Some(Some(UsageWire {
                    cost: self.cost.as_ref().map(|cost| &*cost.amount),
                    cost_details: self.cost.as_ref().map(|cost| &cost.details),
                    ..UsageWire::from(usage)
                })),
                overhead_ms,
            };
            write_event(out, &wire);
        }
    }

    fn fingerprint(&self) -> Option<&str> {
        (!self.system_fingerprint.is_empty()).then_some(self.system_fingerprint.as_str())
    }
}

/// Whether a chunk carries anything for a delta event.
fn has_delta(chunk: &pb::ChatChunk) -> bool {
    chunk.role != 0
        || !chunk.content.is_empty()
        || !chunk.refusal.is_empty()
        || !chunk.tool_calls.is_empty()
        || chunk.finish_reason != 0
}

fn write_event<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    out.extend_from_slice(b"data: ");
    // Writing our own plain structs into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn identity() -> ResponseIdentity {
        ResponseIdentity {
            id: "chatcmpl-1".to_owned(),
            created: 1_700_000_000,
            fallback_model: "demo".to_owned(),
        }
    }

    fn usage() -> pb::Usage {
        pb::Usage {
            prompt_tokens: 5,
            completion_tokens: 2,
            total_tokens: 7,
            cached_prompt_tokens: 1,
            reasoning_tokens: 0,
            cache_write_tokens: 0,
        }
    }

    #[test]
    fn completion_joins_text_and_tool_call_fragments() {
        let mut builder = CompletionBuilder::default();
        builder.push(pb::ChatChunk {
            role: pb::Role::Assistant as i32,
            model: "gpt-4o-2024".to_owned(),
            tool_calls: vec![pb::ToolCallDelta {
                index: 0,
                id: "call_1".to_owned(),
                name: "get_weather".to_owned(),
                arguments: "{\"loc".to_owned(),
            }],
            ..pb::ChatChunk::default()
        });
        builder.push(pb::ChatChunk {
            tool_calls: vec![pb::ToolCallDelta {
                index: 0,
                arguments: "\":\"x\"}".to_owned(),
                ..pb::ToolCallDelta::default()
            }],
            finish_reason: pb::FinishReason::ToolCalls as i32,
            ..pb::ChatChunk::default()
        });
        builder.push(pb::ChatChunk {
            usage: Some(usage()),
            ..pb::ChatChunk::default()
        });
        let json: Value = serde_json::from_slice(&builder.finish(&identity())).expect("json");
        assert_eq!(
            json,
            json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000,
                "model": "gpt-4o-2024",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "refusal": null,
                    "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"loc\":\"x\"}"}}]},
                    "logprobs": null, "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7,
                    "prompt_tokens_details": {"cached_tokens": 1},
                    "completion_tokens_details": {"reasoning_tokens": 0}}
            })
        );
    }

    fn events(out: &[u8]) -> Vec<Value> {
        std::str::from_utf8(out)
            .expect("utf8")
            .split("\n\n")
            .filter(|event| !event.is_empty())
            .map(|event| {
                let data = event.strip_prefix("data: ").expect("data line");
                serde_json::from_str(data).expect("json event")
            })
            .collect()
    }

    #[test]
    fn final_chunk_splits_into_delta_and_usage_events_when_usage_requested() {
        let mut renderer = ChunkRenderer::new(identity(), true);
        let mut out = Vec::new();
        renderer.render(
            &pb::ChatChunk {
                content: "Hi".to_owned(),
                finish_reason: pb::FinishReason::Stop as i32,
                usage: Some(usage()),
                ..pb::ChatChunk::default()
            },
            &mut out,
        );
        let events = events(&out);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["choices"][0]["delta"], json!({"content": "Hi"}));
        assert_eq!(events[0]["choices"][0]["finish_reason"], "stop");
        assert_eq!(events[0]["usage"], Value::Null);
        assert_eq!(events[1]["choices"], json!([]));
        assert_eq!(events[1]["usage"]["total_tokens"], 7);
    }

    #[test]
    fn usage_is_withheld_unless_requested() {
        let mut renderer = ChunkRenderer::new(identity(), false);
        let mut out = Vec::new();
        renderer.render(
            &pb::ChatChunk {
                usage: Some(usage()),
                ..pb::ChatChunk::default()
            },
            &mut out,
        );
        assert!(out.is_empty());
    }
}

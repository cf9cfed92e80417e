//! A `ConverseStream` answer: event stream messages translated to canonical
//! chunks as they arrive.
//!
//! Events (named by the `:event-type` header, payload JSON): `messageStart`
//! gives the role; `contentBlockStart` opens a tool call (id and name);
//! `contentBlockDelta` carries text or a fragment of tool input JSON;
//! `messageStop` the stop reason; `metadata` the usage, last. A message of
//! `:message-type` `exception` (named by `:exception-type`) or `error` ends
//! the stream with a classified error.

use std::collections::{BTreeMap, VecDeque};

use futures::StreamExt;
use serde::Deserialize;
use switchyard_common::{ErrorClass, Secret, ServiceError};
use switchyard_proto::v1::{ChatChunk, Role, ToolCallDelta};

use super::{
    event_stream::{EventStreamDecoder, Message},
    response::{self, ResponseIdentity, WireUsage},
};
use crate::{
    classify,
    http::{BodyReader, EventReader},
    provider::ChunkStream,
};

/// Returns the canonical chunks of a `converse-stream` response body.
pub fn chunks(
    provider: &str,
    body: BodyReader,
    scrub: Option<Secret>,
    structured_output_tool: Option<String>,
    identity: ResponseIdentity,
) -> ChunkStream {
    let decoder = EventStreamDecoder::with_limit(body.max_event_bytes());
    let state = StreamState {
        provider: provider.to_owned(),
        scrub,
        messages: body.into_decoded(decoder),
        pending: VecDeque::new(),
        ended: false,
        stopped: false,
        identity: Some(identity),
        translator: Translator {
            structured_output_tool,
            blocks: BTreeMap::new(),
            tool_calls: 0,
            answered_structured: false,
        },
    };
    futures::stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    })
    .boxed()
}

struct StreamState {
    provider: String,
    /// The secret a provider message might echo, removed from errors.
    scrub: Option<Secret>,
    /// Messages of the body, each within the idle timeout of the last.
    messages: EventReader<EventStreamDecoder>,
    /// Chunks translated from the last message, not yet yielded.
    pending: VecDeque<ChatChunk>,
    /// Nothing more is read once the stream ended, normally or not.
    ended: bool,
    /// Whether `messageStop` came (tells a clean end from a cut one).
    stopped: bool,
    /// Model and request id, put on the first chunk.
    identity: Option<ResponseIdentity>,
    translator: Translator,
}

impl StreamState {
    async fn next(&mut self) -> Option<Result<ChatChunk, ServiceError>> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                return Some(Ok(chunk));
            }
            if self.ended {
                return None;
            }
            match self.messages.next().await {
                Ok(Some(message)) => {
                    if let Err(error) = self.handle(&message) {
                        self.ended = true;
                        return Some(Err(error));
                    }
                }
                Ok(None) => {
                    self.ended = true;
                    if !self.stopped || self.messages.ended_mid_event() {
                        return Some(Err(classify::malformed_response(
                            &self.provider,
                            "a stream that ended before the answer was complete",
                        )));
                    }
                }
                Err(error) => {
                    self.ended = true;
                    return Some(Err(error));
                }
            }
        }
    }

    fn handle(&mut self, message: &Message) -> Result<(), ServiceError> {
        match message.string_header(":message-type").unwrap_or("event") {
            "event" => {}
            "exception" => {
                let name = message
                    .string_header(":exception-type")
                    .unwrap_or("unknownException");
                return Err(response::stream_exception(
                    &self.provider,
                    name,
                    &message.payload,
                    self.scrub.as_ref(),
                ));
            }
            _ => {
                let code = message.string_header(":error-code").unwrap_or_default();
                let class = response::class_for_exception(code, None)
                    .unwrap_or(ErrorClass::UpstreamUnavailable);
                let detail = classify::UpstreamErrorDetail {
                    message: message.string_header(":error-message").map(str::to_owned),
                    kind: Some(code.to_owned()),
                    ..classify::UpstreamErrorDetail::default()
                };
                return Err(classify::classified_error(
                    &self.provider,
                    class,
                    None,
                    &detail,
                    self.scrub.as_ref(),
                ));
            }
        }
        let event_type = message.string_header(":event-type").unwrap_or_default();
        let chunk = self
            .translator
            .translate(event_type, &message.payload)
            .map_err(|what| classify::malformed_response(&self.provider, what))?;
        if event_type == "messageStop" {
            self.stopped = true;
        }
        if let Some(mut chunk) = chunk {
            if let Some(identity) = self.identity.take() {
                chunk.model = identity.model;
                chunk.provider_response_id = identity.request_id;
            }
            self.pending.push_back(chunk);
        }
        Ok(())
    }
}

/// Turns events into chunks; knows which content blocks are tool calls.
struct Translator {
    structured_output_tool: Option<String>,
    /// Open tool-use blocks by `contentBlockIndex`.
    blocks: BTreeMap<u64, ToolBlock>,
    /// Tool calls seen so far (the next call's canonical index).
    tool_calls: u32,
    /// Whether the structured-output tool answered.
    answered_structured: bool,
}

#[derive(Clone, Copy)]
enum ToolBlock {
    /// A call passed on as tool-call deltas, with its canonical index.
    Call(u32),
    /// The structured-output tool: its input is answer text.
    Answer,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageStart {}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContentBlockStart {
    #[serde(default)]
    content_block_index: u64,
    #[serde(default)]
    start: Option<BlockStart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStart {
    #[serde(default)]
    tool_use: Option<ToolUseStart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUseStart {
    #[serde(default)]
    tool_use_id: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContentBlockDelta {
    #[serde(default)]
    content_block_index: u64,
    #[serde(default)]
    delta: Option<Delta>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delta {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tool_use: Option<ToolUseDelta>,
}

#[derive(Deserialize)]
struct ToolUseDelta {
    #[serde(default)]
    input: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageStop {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    usage: Option<WireUsage>,
}

impl Translator {
    /// Translates one event; `Err` names what was malformed.
    fn translate(
        &mut self,
        event_type: &str,
        payload: &[u8],
    ) -> Result<Option<ChatChunk>, &'static str> {
        const BAD_EVENT: &str = "a stream event that is not valid JSON";
        let chunk = match event_type {
            "messageStart" => {
                serde_json::from_slice::<MessageStart>(payload).map_err(|_| BAD_EVENT)?;
                Some(ChatChunk {
                    role: Role::Assistant as i32,
                    ..ChatChunk::default()
                })
            }
            "contentBlockStart" => {
                let event: ContentBlockStart =
                    serde_json::from_slice(payload).map_err(|_| BAD_EVENT)?;
                let Some(call) = event.start.and_then(|start| start.tool_use) else {
                    return Ok(None);
                };
                if self.structured_output_tool.as_deref() == Some(call.name.as_str()) {
                    self.blocks
                        .insert(event.content_block_index, ToolBlock::Answer);
                    self.answered_structured = true;
                    return Ok(None);
                }
                let index = self.tool_calls;
                self.tool_calls += 1;
                self.blocks
                    .insert(event.content_block_index, ToolBlock::Call(index));
                Some(ChatChunk {
                    tool_calls: vec![ToolCallDelta {
                        index,
                        id: call.tool_use_id,
                        name: call.name,
                        arguments: String::new(),
                    }],
                    ..ChatChunk::default()
                })
            }
            "contentBlockDelta" => {
                let event: ContentBlockDelta =
                    serde_json::from_slice(payload).map_err(|_| BAD_EVENT)?;
                let Some(delta) = event.delta else {
                    return Ok(None);
                };
                if let Some(text) = delta.text {
                    Some(ChatChunk {
                        content: text,
                        ..ChatChunk::default()
                    })
                } else if let Some(tool_use) = delta.tool_use {
                    match self.blocks.get(&event.content_block_index) {
                        Some(ToolBlock::Answer) => Some(ChatChunk {
                            content: tool_use.input,
                            ..ChatChunk::default()
                        }),
                        Some(&ToolBlock::Call(index)) => Some(ChatChunk {
                            tool_calls: vec![ToolCallDelta {
                                index,
                                arguments: tool_use.input,
                                ..ToolCallDelta::default()
                            }],
                            ..ChatChunk::default()
                        }),
                        None => return Err("tool input for a block that was never started"),
                    }
                } else {
                    // Reasoning and citation deltas have no canonical field.
                    None
                }
            }
            "messageStop" => {
                let event: MessageStop = serde_json::from_slice(payload).map_err(|_| BAD_EVENT)?;
                let finish =
                    response::finish_reason(event.stop_reason.as_deref(), self.answered_structured);
                Some(ChatChunk {
                    finish_reason: finish as i32,
                    ..ChatChunk::default()
                })
            }
            "metadata" => {
                let event: Metadata = serde_json::from_slice(payload).map_err(|_| BAD_EVENT)?;
                event.usage.map(|usage| ChatChunk {
                    usage: Some(usage.into_usage()),
                    ..ChatChunk::default()
                })
            }
            // contentBlockStop, and events added after this was written.
            _ => None,
        };
        Ok(chunk)
    }
}

#[cfg(test)]
mod tests {
    use switchyard_proto::v1::FinishReason;

    use super::*;

    fn translator(structured: Option<&str>) -> Translator {
        Translator {
            structured_output_tool: structured.map(str::to_owned),
            blocks: BTreeMap::new(),
            tool_calls: 0,
            answered_structured: false,
        }
    }

    fn run(translator: &mut Translator, events: &[(&str, &str)]) -> Vec<ChatChunk> {
        events
            .iter()
            .filter_map(|(kind, payload)| {
                translator
                    .translate(kind, payload.as_bytes())
                    .expect("valid event")
            })
            .collect()
    }

    #[test]
    fn tool_use_blocks_become_tool_call_deltas() {
        let chunks = run(
            &mut translator(None),
            &[
                ("messageStart", r#"{"role":"assistant","p":"ab"}"#),
                (
                    "contentBlockStart",
                    r#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"t1","name":"f"}}}"#,
                ),
                (
                    "contentBlockDelta",
                    r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"a\":"}}}"#,
                ),
                (
                    "contentBlockDelta",
                    r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"1}"}}}"#,
                ),
                ("contentBlockStop", r#"{"contentBlockIndex":1}"#),
                ("messageStop", r#"{"stopReason":"tool_use"}"#),
                (
                    "metadata",
                    r#"{"usage":{"inputTokens":3,"outputTokens":4,"totalTokens":7},"metrics":{"latencyMs":5}}"#,
                ),
            ],
        );
        assert_eq!(chunks.len(), 6);
        assert_eq!(chunks[0].role(), Role::Assistant);
        assert_eq!(
            (
                chunks[1].tool_calls[0].id.as_str(),
                chunks[1].tool_calls[0].name.as_str()
            ),
            ("t1", "f")
        );
        assert_eq!(chunks[2].tool_calls[0].arguments, r#"{"a":"#);
        assert_eq!(chunks[3].tool_calls[0].index, 0);
        assert_eq!(chunks[4].finish_reason(), FinishReason::ToolCalls);
        assert_eq!(chunks[5].usage.expect("usage").total_tokens, 7);
    }

    #[test]
    fn structured_output_tool_input_streams_as_content() {
        let chunks = run(
            &mut translator(Some("reply")),
            &[
                (
                    "contentBlockStart",
                    r#"{"contentBlockIndex":0,"start":{"toolUse":{"toolUseId":"t","name":"reply"}}}"#,
                ),
                (
                    "contentBlockDelta",
                    r#"{"contentBlockIndex":0,"delta":{"toolUse":{"input":"{\"a\":1}"}}}"#,
                ),
                ("messageStop", r#"{"stopReason":"tool_use"}"#),
            ],
        );
        assert_eq!(chunks[0].content, r#"{"a":1}"#);
        assert!(chunks[0].tool_calls.is_empty());
        assert_eq!(chunks[1].finish_reason(), FinishReason::Stop);
    }

    #[test]
    fn tool_input_without_a_started_block_is_malformed() {
        let mut translator = translator(None);
        assert!(
            translator
                .translate(
                    "contentBlockDelta",
                    br#"{"contentBlockIndex":3,"delta":{"toolUse":{"input":"x"}}}"#
                )
                .is_err()
        );
        assert!(translator.translate("messageStop", b"not json").is_err());
    }
}

//! A streamed Anthropic answer: server-sent Messages events translated to
//! canonical chunks as they arrive.
//!
//! - `message_start` gives the first chunk (role, model, response id) and
//!   the prompt usage.
//! - `content_block_start` of a `tool_use` block opens a tool call (id and
//!   name); tool calls are numbered 0, 1, … in the order their blocks start,
//!   whatever the block indexes. `text_delta`s are content,
//!   `input_json_delta`s argument fragments (content, for the forced
//!   structured-output tool). Thinking deltas are skipped.
//! - `message_delta` gives the finish reason and the final usage, sent once
//!   as a usage-only chunk at `message_stop`.
//! - `ping` and unknown events are ignored; an `error` event ends the
//!   stream with a classified error.

use std::collections::{BTreeMap, VecDeque};

use futures::StreamExt;
use serde::Deserialize;
use switchyard_common::{Secret, ServiceError};
use switchyard_proto::v1::{ChatChunk, FinishReason, Role, ToolCallDelta};

use super::response::{WireError, WireUsage, finish_reason};
use crate::{
    classify,
    http::{BodyReader, EventReader},
    provider::ChunkStream,
    sse::SseEvent,
};

/// One stream event, by its `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u32,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Error {
        error: WireError,
    },
    /// `ping`, `content_block_stop` and events added later.
    #[serde(other)]
    Ignored,
}

#[derive(Debug, Deserialize)]
struct StartMessage {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
}

/// What a content block's deltas mean.
#[derive(Debug, Clone, Copy)]
enum BlockKind {
    Text,
    /// A tool call with this canonical index.
    ToolCall(u32),
    /// The forced structured-output tool: its input is content.
    StructuredContent,
    Skipped,
}

/// Returns the canonical chunks of a streamed response body.
pub fn chunks(
    provider: &str,
    body: BodyReader,
    api_key: Option<Secret>,
    structured_tool: Option<String>,
) -> ChunkStream {
    let state = StreamState {
        body: body.into_events(),
        ended: false,
        events: EventTranslator::new(provider, api_key, structured_tool),
    };
    futures::stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    })
    .boxed()
}

/// The network side: reads the body and feeds its events to the translator.
struct StreamState {
    body: EventReader,
    /// Nothing more is read once the stream ended, normally or not.
    ended: bool,
    events: EventTranslator,
}

impl StreamState {
    async fn next(&mut self) -> Option<Result<ChatChunk, ServiceError>> {
        loop {
            if let Some(chunk) = self.events.pending.pop_front() {
                return Some(Ok(chunk));
            }
            if self.ended {
                return None;
            }
            match self.body.next().await {
                Ok(Some(event)) => match self.events.handle(&event) {
                    Ok(Progress::Continue) => {}
                    Ok(Progress::Stopped) => self.ended = true,
                    Err(error) => {
                        self.ended = true;
                        return Some(Err(error));
                    }
                },
                Ok(None) => {
                    self.ended = true;
                    if let Err(error) = self.events.end_of_body() {
                        return Some(Err(error));
                    }
                }
                Err(error) => {
                    self.ended = true;
                    return Some(Err(error));
                }
            }
        }
    }
}

/// Whether the answer goes on after an event.
#[derive(Debug, PartialEq, Eq)]
enum Progress {
    Continue,
    /// `message_stop`: the answer is complete.
    Stopped,
}

/// The protocol side: Anthropic events in, canonical chunks out.
struct EventTranslator {
    provider: String,
    /// Kept to scrub provider messages that might echo it.
    api_key: Option<Secret>,
    structured_tool: Option<String>,
    /// Chunks translated, not yet yielded.
    pending: VecDeque<ChatChunk>,
    /// Whether `message_delta` gave a stop reason (tells a complete answer
    /// from a truncated one when the body ends without `message_stop`).
    finished: bool,
    /// Content blocks by their Anthropic index.
    blocks: BTreeMap<u32, BlockKind>,
    /// Tool calls opened so far.
    tool_calls: u32,
    usage: WireUsage,
}

impl EventTranslator {
    fn new(provider: &str, api_key: Option<Secret>, structured_tool: Option<String>) -> Self {
        Self {
            provider: provider.to_owned(),
            api_key,
            structured_tool,
            pending: VecDeque::new(),
            finished: false,
            blocks: BTreeMap::new(),
            tool_calls: 0,
            usage: WireUsage::default(),
        }
    }

    /// The body ended without `message_stop`: complete only if finished.
    fn end_of_body(&mut self) -> Result<(), ServiceError> {
        if !self.finished {
            return Err(classify::malformed_response(
                &self.provider,
                "a stream that ended before the answer was complete",
            ));
        }
        self.push_usage();
        Ok(())
    }

    fn handle(&mut self, event: &SseEvent) -> Result<Progress, ServiceError> {
        let parsed: StreamEvent = serde_json::from_str(&event.data).map_err(|_| {
            classify::malformed_response(&self.provider, "a stream event that is not valid JSON")
        })?;
        match parsed {
            StreamEvent::MessageStart { message } => {
                if let Some(usage) = message.usage {
                    self.usage.update(usage);
                }
                self.pending.push_back(ChatChunk {
                    role: Role::Assistant as i32,
                    model: message.model.unwrap_or_default(),
                    provider_response_id: message.id.unwrap_or_default(),
                    ..ChatChunk::default()
                });
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => self.start_block(index, content_block),
            StreamEvent::ContentBlockDelta { index, delta } => self.block_delta(index, delta),
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(usage) = usage {
                    self.usage.update(usage);
                }
                let structured = self.structured_tool.is_some();
                let reason = finish_reason(delta.stop_reason.as_deref(), structured);
                if reason != FinishReason::Unspecified && !self.finished {
                    self.finished = true;
                    self.pending.push_back(ChatChunk {
                        finish_reason: reason as i32,
                        ..ChatChunk::default()
                    });
                }
            }
            StreamEvent::MessageStop => {
                self.end_of_body().map_err(|_| {
                    classify::malformed_response(
                        &self.provider,
                        "a stream that stopped without a stop reason",
                    )
                })?;
                return Ok(Progress::Stopped);
            }
            StreamEvent::Error { error } => {
                return Err(classify::in_band_error(
                    &self.provider,
                    &error.into_detail(),
                    self.api_key.as_ref(),
                ));
            }
            StreamEvent::Ignored => {}
        }
        Ok(Progress::Continue)
    }

    fn start_block(&mut self, index: u32, block: StartBlock) {
        let kind = match block {
            StartBlock::Text { .. } if self.structured_tool.is_some() => BlockKind::Skipped,
            StartBlock::Text { text } => {
                if !text.is_empty() {
                    self.push_content(text);
                }
                BlockKind::Text
            }
            StartBlock::ToolUse { name, .. } if self.structured_tool.as_deref() == Some(&name) => {
                BlockKind::StructuredContent
            }
            StartBlock::ToolUse { id, name } => {
                let call = self.tool_calls;
                self.tool_calls += 1;
                self.pending.push_back(ChatChunk {
                    tool_calls: vec![ToolCallDelta {
                        index: call,
                        id,
                        name,
                        arguments: String::new(),
                    }],
                    ..ChatChunk::default()
                });
                BlockKind::ToolCall(call)
            }
            StartBlock::Other => BlockKind::Skipped,
        };
        self.blocks.insert(index, kind);
    }

    fn block_delta(&mut self, index: u32, delta: BlockDelta) {
        let kind = self
            .blocks
            .get(&index)
            .copied()
            .unwrap_or(BlockKind::Skipped);
        match (kind, delta) {
            (BlockKind::Text, BlockDelta::TextDelta { text }) => self.push_content(text),
            (BlockKind::ToolCall(call), BlockDelta::InputJsonDelta { partial_json })
                if !partial_json.is_empty() =>
            {
                self.pending.push_back(ChatChunk {
                    tool_calls: vec![ToolCallDelta {
                        index: call,
                        arguments: partial_json,
                        ..ToolCallDelta::default()
                    }],
                    ..ChatChunk::default()
                });
            }
            (BlockKind::StructuredContent, BlockDelta::InputJsonDelta { partial_json }) => {
                self.push_content(partial_json);
            }
            _ => {}
        }
    }

    fn push_content(&mut self, text: String) {
        if text.is_empty() {
            return;
        }
        self.pending.push_back(ChatChunk {
            content: text,
            ..ChatChunk::default()
        });
    }

    /// Queues the usage-only chunk that ends the answer.
    fn push_usage(&mut self) {
        self.pending.push_back(ChatChunk {
            usage: Some(self.usage.into_usage()),
            ..ChatChunk::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::SseParser;

    /// Translates a whole stream body without a network.
    fn translate(body: &str, structured_tool: Option<&str>) -> Vec<ChatChunk> {
        let mut parser = SseParser::default();
        parser.push(body.as_bytes());
        let mut events = EventTranslator::new("a", None, structured_tool.map(str::to_owned));
        let mut progress = Progress::Continue;
        while let Some(event) = parser.next_event().expect("within the limits") {
            assert_eq!(progress, Progress::Continue, "no event after message_stop");
            progress = events.handle(&event).expect("a valid event");
        }
        assert_eq!(progress, Progress::Stopped);
        events.pending.into_iter().collect()
    }

    const TOOL_STREAM: &str = concat!(
        "event: message_start\n",
        r#"data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-sonnet-4-5","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}"#,
        "\n\n",
        "event: content_block_start\n",
        r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        "\n\n",
        "event: ping\n",
        r#"data: {"type": "ping"}"#,
        "\n\n",
        "event: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay"}}"#,
        "\n\n",
        "event: content_block_stop\n",
        r#"data: {"type":"content_block_stop","index":0}"#,
        "\n\n",
        "event: content_block_start\n",
        r#"data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}"#,
        "\n\n",
        "event: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
        "\n\n",
        "event: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}}"#,
        "\n\n",
        "event: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"San Francisco, CA\"}"}}"#,
        "\n\n",
        "event: content_block_stop\n",
        r#"data: {"type":"content_block_stop","index":1}"#,
        "\n\n",
        "event: content_block_start\n",
        r#"data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_2","name":"get_time","input":{}}}"#,
        "\n\n",
        "event: content_block_stop\n",
        r#"data: {"type":"content_block_stop","index":2}"#,
        "\n\n",
        "event: message_delta\n",
        r#"data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}"#,
        "\n\n",
        "event: message_stop\n",
        r#"data: {"type":"message_stop"}"#,
        "\n\n",
    );

    #[test]
    fn tool_calls_are_numbered_by_order_not_block_index() {
        let chunks = translate(TOOL_STREAM, None);
        assert_eq!(chunks[0].role(), Role::Assistant);
        assert_eq!(
            chunks[0].provider_response_id,
            "msg_014p7gG3wDgGV9EUtLvnow3U"
        );
        assert_eq!(chunks[1].content, "Okay");
        let deltas: Vec<&ToolCallDelta> =
            chunks.iter().flat_map(|chunk| &chunk.tool_calls).collect();
        assert_eq!(deltas.len(), 4, "{deltas:#?}");
        assert_eq!(
            (
                deltas[0].index,
                deltas[0].id.as_str(),
                deltas[0].name.as_str()
            ),
            (0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather")
        );
        assert_eq!(
            format!("{}{}", deltas[1].arguments, deltas[2].arguments),
            r#"{"location": "San Francisco, CA"}"#
        );
        assert_eq!((deltas[3].index, deltas[3].name.as_str()), (1, "get_time"));
        let finish = &chunks[chunks.len() - 2];
        assert_eq!(finish.finish_reason(), FinishReason::ToolCalls);
        let usage = chunks
            .last()
            .and_then(|chunk| chunk.usage)
            .expect("usage last");
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (472, 89));
        assert_eq!(
            chunks.iter().filter(|chunk| chunk.usage.is_some()).count(),
            1
        );
    }

    #[test]
    fn structured_tool_streams_as_content_and_finishes_with_stop() {
        let body = TOOL_STREAM.replace("get_weather", "reply");
        let chunks = translate(&body, Some("reply"));
        let content: String = chunks.iter().map(|chunk| chunk.content.as_str()).collect();
        assert_eq!(content, r#"{"location": "San Francisco, CA"}"#);
        assert!(
            chunks
                .iter()
                .all(|chunk| chunk.tool_calls.iter().all(|call| call.name != "reply"))
        );
        let reasons: Vec<FinishReason> = chunks
            .iter()
            .map(ChatChunk::finish_reason)
            .filter(|reason| *reason != FinishReason::Unspecified)
            .collect();
        assert_eq!(reasons, vec![FinishReason::Stop]);
    }
}

//! What the fake answers: deterministic content derived from the request,
//! rendered as a whole `message` or as Messages stream events.

use bytes::Bytes;
use serde_json::{Value, value::RawValue};

use super::wire::{ContentBlock, Delta, Message, MessageDelta, OutputUsage, StreamEvent, Usage};

/// Id of the tool call the fake makes (from Anthropic's tool-use docs).
pub const TOOL_USE_ID: &str = "toolu_01A09q90qw90lq917835lq9";
/// Input of the tool call, whole and as streamed fragments.
pub const TOOL_INPUT: &str = r#"{"location":"Boston, MA"}"#;
const TOOL_INPUT_FRAGMENTS: [&str; 2] = [r#"{"location":"#, r#""Boston, MA"}"#];
/// Output tokens reported for a tool call.
const TOOL_CALL_OUTPUT_TOKENS: u32 = 9;

/// The answer to one request.
pub struct Answer {
    id: String,
    model: String,
    reply: Reply,
    input_tokens: u32,
    output_tokens: u32,
}

enum Reply {
    Text(String),
    ToolUse { name: String },
}

impl Answer {
    /// Decides the answer to `body`; `number` makes the message id.
    pub fn for_request(body: &Value, number: u64) -> Self {
        let messages = body["messages"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        // Tool results travel in user turns; the user's words are the last
        // user turn that has text.
        let last_user = messages
            .iter()
            .rev()
            .filter(|message| message["role"] == "user")
            .map(|message| user_text(&message["content"]))
            .find(|text| !text.is_empty())
            .unwrap_or_default();
        let input_tokens = words(&all_text(&body["system"]))
            + messages
                .iter()
                .map(|message| words(&all_text(&message["content"])))
                .sum::<u32>();
        let reply = match called_tool(body, &last_user) {
            Some(name) => Reply::ToolUse { name },
            None => Reply::Text(format!("Echo: {last_user}")),
        };
        let output_tokens = match &reply {
            Reply::Text(text) => words(text),
            Reply::ToolUse { .. } => TOOL_CALL_OUTPUT_TOKENS,
        };
        Self {
            id: format!("msg_01FakeAnswer{number:010}"),
            model: body["model"].as_str().unwrap_or_default().to_owned(),
            reply,
            input_tokens,
            output_tokens,
        }
    }

    /// Renders the whole `message` object.
    pub fn message(&self) -> Bytes {
        let input = tool_input();
        let (content, stop_reason) = match &self.reply {
            Reply::Text(text) => (vec![ContentBlock::Text { text }], "end_turn"),
            Reply::ToolUse { name } => (
                vec![ContentBlock::ToolUse {
                    id: TOOL_USE_ID,
                    name,
                    input: &input,
                }],
                "tool_use",
            ),
        };
        to_bytes(&Message {
            id: &self.id,
            kind: "message",
            role: "assistant",
            model: &self.model,
            content,
            stop_reason: Some(stop_reason),
            stop_sequence: None,
            usage: self.usage(self.output_tokens),
        })
    }

    /// Renders the stream: `message_start`, one content block (with a `ping`
    /// after its start, as in Anthropic's examples), `message_delta`,
    /// `message_stop`. Text goes word by word; tool input in two fragments
    /// after an empty one.
    pub fn events(&self) -> Vec<Bytes> {
        let input = RawValue::from_string("{}".to_owned()).expect("`{}` is JSON");
        let mut events = vec![StreamEvent::MessageStart {
            message: Message {
                id: &self.id,
                kind: "message",
                role: "assistant",
                model: &self.model,
                content: Vec::new(),
                stop_reason: None,
                stop_sequence: None,
                usage: self.usage(1),
            },
        }];
        let stop_reason = match &self.reply {
            Reply::Text(text) => {
                events.push(StreamEvent::ContentBlockStart {
                    index: 0,
                    content_block: ContentBlock::Text { text: "" },
                });
                events.push(StreamEvent::Ping);
                for word in text.split_inclusive(' ') {
                    events.push(StreamEvent::ContentBlockDelta {
                        index: 0,
                        delta: Delta::TextDelta { text: word },
                    });
                }
                "end_turn"
            }
            Reply::ToolUse { name } => {
                events.push(StreamEvent::ContentBlockStart {
                    index: 0,
                    content_block: ContentBlock::ToolUse {
                        id: TOOL_USE_ID,
                        name,
                        input: &input,
                    },
                });
                events.push(StreamEvent::Ping);
                for partial_json in std::iter::once("").chain(TOOL_INPUT_FRAGMENTS) {
                    events.push(StreamEvent::ContentBlockDelta {
                        index: 0,
                        delta: Delta::InputJsonDelta { partial_json },
                    });
                }
                "tool_use"
            }
        };
        events.push(StreamEvent::ContentBlockStop { index: 0 });
        events.push(StreamEvent::MessageDelta {
            delta: MessageDelta {
                stop_reason,
                stop_sequence: None,
            },
            usage: OutputUsage {
                output_tokens: self.output_tokens,
            },
        });
        events.push(StreamEvent::MessageStop);
        events.iter().map(sse_frame).collect()
    }

    fn usage(&self, output_tokens: u32) -> Usage {
        Usage {
            input_tokens: self.input_tokens,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
            output_tokens,
        }
    }
}

/// Which tool the model calls: the one `tool_choice` forces (`tool`, or the
/// first for `any`), else the first tool when the user asks about weather.
fn called_tool(body: &Value, last_user: &str) -> Option<String> {
    let tools = body["tools"].as_array()?;
    let first = tools.first()?["name"].as_str()?.to_owned();
    match body["tool_choice"]["type"].as_str() {
        Some("none") => None,
        Some("tool") => body["tool_choice"]["name"].as_str().map(str::to_owned),
        Some("any") => Some(first),
        _ => last_user.contains("weather").then_some(first),
    }
}

/// Formats one event as `event: <name>\ndata: <json>\n\n`.
fn sse_frame(event: &StreamEvent<'_>) -> Bytes {
    let mut frame = format!("event: {}\ndata: ", event.name()).into_bytes();
    frame.extend_from_slice(&to_bytes(event));
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}

fn tool_input() -> Box<RawValue> {
    RawValue::from_string(TOOL_INPUT.to_owned()).expect("the tool input is JSON")
}

/// The text blocks of a user turn (a string, or its `text` blocks joined with a space).
fn user_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|block| block["type"] == "text")
            .filter_map(|block| block["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// All text of a `system` or message content, tool results included.
fn all_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .map(|block| match block["type"].as_str() {
                Some("text") => block["text"].as_str().unwrap_or_default().to_owned(),
                Some("tool_result") => all_text(&block["content"]),
                _ => String::new(),
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn words(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)
}

fn to_bytes<T: serde::Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("wire types always serialize"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn message_matches_the_api_reference_shape() {
        let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 10,
            "system": "Be nice.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello there"}]}]});
        let text =
            String::from_utf8(Answer::for_request(&body, 1).message().to_vec()).expect("utf-8");
        assert_eq!(
            text,
            concat!(
                r#"{"id":"msg_01FakeAnswer0000000001","type":"message","role":"assistant","model":"claude-sonnet-4-5","#,
                r#""content":[{"type":"text","text":"Echo: Hello there"}],"stop_reason":"end_turn","stop_sequence":null,"#,
                r#""usage":{"input_tokens":4,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":3}}"#
            )
        );
    }

    #[test]
    fn stream_follows_the_documented_event_sequence() {
        let body = json!({"model": "m", "max_tokens": 10,
            "messages": [{"role": "user", "content": "Hi you"}]});
        let events: Vec<String> = Answer::for_request(&body, 2)
            .events()
            .iter()
            .map(|event| String::from_utf8(event.to_vec()).expect("utf-8"))
            .collect();
        assert_eq!(
            events[0],
            concat!(
                "event: message_start\n",
                r#"data: {"type":"message_start","message":{"id":"msg_01FakeAnswer0000000002","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":2,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}"#,
                "\n\n"
            )
        );
        assert_eq!(events[2], "event: ping\ndata: {\"type\":\"ping\"}\n\n");
        // start, block start, ping, 3 words, block stop, message_delta, stop.
        assert_eq!(events.len(), 9);
        assert_eq!(
            events[7],
            concat!(
                "event: message_delta\n",
                r#"data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":3}}"#,
                "\n\n"
            )
        );
        assert_eq!(
            events[8],
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        );
    }

    #[test]
    fn tools_are_called_on_weather_or_when_forced() {
        let tools = json!([{"name": "get_weather", "input_schema": {"type": "object"}}]);
        let weather = json!({"model": "m", "tools": tools,
            "messages": [{"role": "user", "content": "What's the weather?"}]});
        let message: Value =
            serde_json::from_slice(&Answer::for_request(&weather, 3).message()).expect("json");
        assert_eq!(message["stop_reason"], "tool_use");
        assert_eq!(
            message["content"][0]["input"],
            json!({"location": "Boston, MA"})
        );
        assert_eq!(message["usage"]["output_tokens"], 9);
        let forced = json!({"model": "m", "tools": tools,
            "tool_choice": {"type": "tool", "name": "get_weather"},
            "messages": [{"role": "user", "content": "Hi"}]});
        let message: Value =
            serde_json::from_slice(&Answer::for_request(&forced, 4).message()).expect("json");
        assert_eq!(message["content"][0]["name"], "get_weather");
        assert_eq!(TOOL_INPUT_FRAGMENTS.concat(), TOOL_INPUT);
    }
}

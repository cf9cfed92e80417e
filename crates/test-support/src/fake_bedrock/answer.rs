//! What the fake answers: deterministic content derived from a Converse
//! request, as a whole `Converse` response or as `ConverseStream` events.

use bytes::Bytes;
use serde_json::{Value, json};

use super::event_stream;

/// `toolUseId` of the tool call the fake makes.
pub const TOOL_USE_ID: &str = "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q";
/// Input of the tool call, as streamed fragments.
const TOOL_INPUT_FRAGMENTS: [&str; 2] = [r#"{"location":"#, r#""Boston, MA"}"#];
/// Output tokens reported for a tool call.
const TOOL_CALL_OUTPUT_TOKENS: u64 = 9;
/// `metrics.latencyMs` of every answer.
const LATENCY_MS: u64 = 412;
/// Padding (`p`) Bedrock adds to stream events to hide their lengths.
const PADDING: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN";

/// The answer to one request.
pub struct Answer {
    reply: Reply,
    input_tokens: u64,
    output_tokens: u64,
}

enum Reply {
    Text(String),
    ToolCall { name: String },
}

impl Answer {
    /// Decides the answer to a Converse body.
    pub fn for_request(body: &Value) -> Self {
        let messages = body["messages"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let last_user_text = messages
            .iter()
            .rev()
            .filter(|message| message["role"] == "user")
            .map(|message| text_of(message, false))
            .find(|text| !text.is_empty())
            .unwrap_or_default();
        let tools: Vec<&str> = body["toolConfig"]["tools"]
            .as_array()
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|tool| tool["toolSpec"]["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let choice = &body["toolConfig"]["toolChoice"];
        let forced = choice["tool"]["name"]
            .as_str()
            .or_else(|| choice.get("any").and(tools.first().copied()));
        let called = forced.or_else(|| {
            tools
                .first()
                .copied()
                .filter(|_| last_user_text.contains("weather"))
        });
        let system_words: usize = body["system"]
            .as_array()
            .map(|blocks| {
                blocks
                    .iter()
                    .filter_map(|block| block["text"].as_str())
                    .map(|text| text.split_whitespace().count())
                    .sum()
            })
            .unwrap_or(0);
        let message_words: usize = messages
            .iter()
            .map(|message| text_of(message, true).split_whitespace().count())
            .sum();
        let (reply, output_tokens) = match called {
            Some(name) => (
                Reply::ToolCall {
                    name: name.to_owned(),
                },
                TOOL_CALL_OUTPUT_TOKENS,
            ),
            None => {
                let text = format!("Echo: {last_user_text}");
                let words = count(text.split_whitespace().count());
                (Reply::Text(text), words)
            }
        };
        Self {
            reply,
            input_tokens: count(system_words + message_words),
            output_tokens,
        }
    }

    fn usage(&self) -> Value {
        json!({
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "totalTokens": self.input_tokens + self.output_tokens,
        })
    }

    /// Renders the whole `Converse` response body.
    pub fn converse(&self) -> Bytes {
        let (content, stop_reason) = match &self.reply {
            Reply::Text(text) => (json!([{"text": text}]), "end_turn"),
            Reply::ToolCall { name } => (
                json!([{"toolUse": {
                    "input": {"location": "Boston, MA"},
                    "name": name,
                    "toolUseId": TOOL_USE_ID,
                }}]),
                "tool_use",
            ),
        };
        // `json!` objects keep keys sorted, which is the order Bedrock uses.
        let body = json!({
            "metrics": {"latencyMs": LATENCY_MS},
            "output": {"message": {"content": content, "role": "assistant"}},
            "stopReason": stop_reason,
            "usage": self.usage(),
        });
        Bytes::from(serde_json::to_vec(&body).expect("JSON values serialize"))
    }

    /// Renders the `ConverseStream` events, each an event stream message.
    pub fn events(&self) -> Vec<Bytes> {
        let mut events = vec![event(
            "messageStart",
            json!({"p": PADDING, "role": "assistant"}),
        )];
        let stop_reason = match &self.reply {
            Reply::Text(text) => {
                // Text blocks have no `contentBlockStart`.
                for word in text.split_inclusive(' ') {
                    events.push(event(
                        "contentBlockDelta",
                        json!({"contentBlockIndex": 0, "delta": {"text": word}, "p": PADDING}),
                    ));
                }
                "end_turn"
            }
            Reply::ToolCall { name } => {
                events.push(event(
                    "contentBlockStart",
                    json!({"contentBlockIndex": 0, "p": PADDING,
                        "start": {"toolUse": {"name": name, "toolUseId": TOOL_USE_ID}}}),
                ));
                for fragment in TOOL_INPUT_FRAGMENTS {
                    events.push(event(
                        "contentBlockDelta",
                        json!({"contentBlockIndex": 0,
                            "delta": {"toolUse": {"input": fragment}}, "p": PADDING}),
                    ));
                }
                "tool_use"
            }
        };
        events.push(event(
            "contentBlockStop",
            json!({"contentBlockIndex": 0, "p": PADDING}),
        ));
        events.push(event(
            "messageStop",
            json!({"p": PADDING, "stopReason": stop_reason}),
        ));
        events.push(event(
            "metadata",
            json!({"metrics": {"latencyMs": LATENCY_MS}, "p": PADDING, "usage": self.usage()}),
        ));
        events
    }
}

fn event(event_type: &str, payload: Value) -> Bytes {
    event_stream::event(
        event_type,
        &serde_json::to_vec(&payload).expect("JSON values serialize"),
    )
}

/// Returns the text of a message: its text blocks and, with
/// `with_tool_results`, its tool results (JSON ones as compact JSON),
/// joined with spaces.
fn text_of(message: &Value, with_tool_results: bool) -> String {
    let Some(blocks) = message["content"].as_array() else {
        return String::new();
    };
    let mut texts = Vec::new();
    for block in blocks {
        if let Some(text) = block["text"].as_str() {
            texts.push(text.to_owned());
        }
        if let Some(results) = block["toolResult"]["content"]
            .as_array()
            .filter(|_| with_tool_results)
        {
            for result in results {
                if let Some(text) = result["text"].as_str() {
                    texts.push(text.to_owned());
                } else if let Some(json) = result.get("json") {
                    texts.push(json.to_string());
                }
            }
        }
    }
    texts.join(" ")
}

fn count(words: usize) -> u64 {
    u64::try_from(words).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converse_answer_has_bedrock_field_order() {
        let body = json!({
            "system": [{"text": "Be nice."}],
            "messages": [{"role": "user", "content": [{"text": "Hello there"}]}]
        });
        let text =
            String::from_utf8(Answer::for_request(&body).converse().to_vec()).expect("utf-8");
        assert_eq!(
            text,
            concat!(
                r#"{"metrics":{"latencyMs":412},"output":{"message":{"content":[{"text":"Echo: Hello there"}],"role":"assistant"}},"#,
                r#""stopReason":"end_turn","usage":{"inputTokens":4,"outputTokens":3,"totalTokens":7}}"#
            )
        );
    }

    #[test]
    fn weather_with_tools_calls_the_first_tool_and_forced_choices_are_obeyed() {
        let mut body = json!({
            "messages": [{"role": "user", "content": [{"text": "weather?"}]}],
            "toolConfig": {"tools": [{"toolSpec": {"name": "a"}}, {"toolSpec": {"name": "b"}}]}
        });
        let answer: Value =
            serde_json::from_slice(&Answer::for_request(&body).converse()).expect("json");
        assert_eq!(
            answer["output"]["message"]["content"][0]["toolUse"]["name"],
            "a"
        );
        assert_eq!(answer["stopReason"], "tool_use");
        assert_eq!(answer["usage"]["outputTokens"], 9);
        body["messages"][0]["content"][0]["text"] = json!("hi");
        body["toolConfig"]["toolChoice"] = json!({"tool": {"name": "b"}});
        let answer: Value =
            serde_json::from_slice(&Answer::for_request(&body).converse()).expect("json");
        assert_eq!(
            answer["output"]["message"]["content"][0]["toolUse"]["name"],
            "b"
        );
        assert_eq!(
            TOOL_INPUT_FRAGMENTS.concat(),
            r#"{"location":"Boston, MA"}"#
        );
    }
}

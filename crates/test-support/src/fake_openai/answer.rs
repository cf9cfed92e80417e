//! What the fake answers: deterministic content derived from the request,
//! rendered as a whole `chat.completion` or as `chat.completion.chunk` events.

use bytes::Bytes;
use serde_json::Value;

use super::flavor::{Counts, FakeFlavor, MISTRAL_TOOL_CALL_ID, REASONING};
use super::wire::{
    CREATED, Chunk, ChunkChoice, Completion, CompletionChoice, CompletionMessage, Delta,
    FINGERPRINT, FunctionCall, ToolCall, Usage,
};

/// Id of the tool call the fake makes.
pub const TOOL_CALL_ID: &str = "call_abc123";
/// Arguments of the tool call, whole and as streamed fragments.
pub const TOOL_ARGUMENTS: &str = r#"{"location":"Boston, MA"}"#;
const TOOL_ARGUMENT_FRAGMENTS: [&str; 2] = [r#"{"location":"#, r#""Boston, MA"}"#];
/// Completion tokens reported for a tool call.
const TOOL_CALL_COMPLETION_TOKENS: u32 = 9;

/// The answer to one request.
pub struct Answer {
    id: String,
    model: String,
    reply: Reply,
    usage: Usage,
    flavor: FakeFlavor,
    counts: Counts,
    /// What a reasoning model thinks before answering (DeepSeek reasoner).
    reasoning: Option<&'static str>,
}

enum Reply {
    Text(String),
    ToolCall { name: String },
}

impl Answer {
    /// Decides the answer to `body`; `number` makes the response id.
    #[cfg(test)]
    pub fn for_request(body: &Value, number: u64) -> Self {
        Self::for_flavor(body, number, FakeFlavor::OpenAi)
    }

    /// Decides the answer of a `flavor` server to `body`.
    pub fn for_flavor(body: &Value, number: u64, flavor: FakeFlavor) -> Self {
        let messages = body["messages"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let last_user = messages
            .iter()
            .rev()
            .find(|message| message["role"] == "user")
            .map(message_text)
            .unwrap_or_default();
        let first_tool = body["tools"]
            .as_array()
            .and_then(|tools| tools.first())
            .and_then(|tool| tool["function"]["name"].as_str());
        let prompt_tokens = messages
            .iter()
            .map(|message| message_text(message).split_whitespace().count())
            .sum::<usize>();
        let cached_tokens = messages
            .iter()
            .filter(|message| message["role"] == "system")
            .map(|message| message_text(message).split_whitespace().count())
            .sum::<usize>();
        let model = body["model"].as_str().unwrap_or_default().to_owned();
        let reasoning =
            (flavor == FakeFlavor::DeepSeek && model.contains("reasoner")).then_some(REASONING);
        let reasoning_tokens = count(reasoning.map_or(0, |text| text.split_whitespace().count()));
        let (reply, completion_tokens) = match first_tool {
            Some(name) if last_user.contains("weather") => (
                Reply::ToolCall {
                    name: name.to_owned(),
                },
                TOOL_CALL_COMPLETION_TOKENS,
            ),
            _ => {
                let text = format!("Echo: {last_user}");
                let words = count(text.split_whitespace().count());
                (Reply::Text(text), words)
            }
        };
        let counts = Counts {
            prompt: count(prompt_tokens),
            completion: completion_tokens + reasoning_tokens,
            cached: if flavor == FakeFlavor::DeepSeek {
                count(cached_tokens)
            } else {
                0
            },
            reasoning: reasoning_tokens,
        };
        Self {
            id: format!("chatcmpl-{number}"),
            model,
            reply,
            usage: Usage::new(count(prompt_tokens), completion_tokens),
            flavor,
            counts,
            reasoning,
        }
    }

    fn tool_call_id(&self) -> &'static str {
        match self.flavor {
            FakeFlavor::Mistral => MISTRAL_TOOL_CALL_ID,
            _ => TOOL_CALL_ID,
        }
    }

    /// Renders the whole `chat.completion` object.
    pub fn completion(&self) -> Bytes {
        let (content, tool_calls, finish_reason) = match &self.reply {
            Reply::Text(text) => (Some(text.clone()), None, "stop"),
            Reply::ToolCall { name } => (
                None,
                Some(vec![ToolCall {
                    index: None,
                    id: Some(self.tool_call_id()),
                    kind: Some("function"),
                    function: FunctionCall {
                        name: Some(name.clone()),
                        arguments: TOOL_ARGUMENTS.to_owned(),
                    },
                }]),
                "tool_calls",
            ),
        };
        let completion = Completion {
            id: &self.id,
            object: "chat.completion",
            created: CREATED,
            model: &self.model,
            choices: vec![CompletionChoice {
                index: 0,
                message: CompletionMessage {
                    role: "assistant",
                    content,
                    tool_calls,
                    refusal: None,
                    annotations: Vec::new(),
                },
                logprobs: None,
                finish_reason,
            }],
            usage: self.usage,
            service_tier: "default",
            system_fingerprint: FINGERPRINT,
        };
        if self.flavor == FakeFlavor::OpenAi {
            return to_bytes(&completion);
        }
        let mut completion =
            serde_json::to_value(&completion).expect("wire types always serialize");
        if let Some(reasoning) = self.reasoning {
            completion["choices"][0]["message"]["reasoning_content"] = reasoning.into();
        }
        to_bytes(&self.flavor.completion(completion, self.counts))
    }

    /// Renders the stream: one `data:` event per chunk, then `[DONE]`.
    pub fn events(&self, include_usage: bool) -> Vec<Bytes> {
        let mut deltas: Vec<(Delta, Option<&'static str>)> = Vec::new();
        match &self.reply {
            Reply::Text(text) => {
                deltas.push((
                    Delta {
                        role: Some("assistant"),
                        content: Some(Some(String::new())),
                        refusal: Some(None),
                        ..Delta::default()
                    },
                    None,
                ));
                for word in text.split_inclusive(' ') {
                    deltas.push((
                        Delta {
                            content: Some(Some(word.to_owned())),
                            ..Delta::default()
                        },
                        None,
                    ));
                }
                deltas.push((Delta::default(), Some("stop")));
            }
            Reply::ToolCall { name } => {
                deltas.push((
                    Delta {
                        role: Some("assistant"),
                        content: Some(None),
                        tool_calls: Some(vec![ToolCall {
                            index: Some(0),
                            id: Some(self.tool_call_id()),
                            kind: Some("function"),
                            function: FunctionCall {
                                name: Some(name.clone()),
                                arguments: String::new(),
                            },
                        }]),
                        refusal: Some(None),
                        ..Delta::default()
                    },
                    None,
                ));
                for fragment in TOOL_ARGUMENT_FRAGMENTS {
                    deltas.push((
                        Delta {
                            tool_calls: Some(vec![ToolCall {
                                index: Some(0),
                                id: None,
                                kind: None,
                                function: FunctionCall {
                                    name: None,
                                    arguments: fragment.to_owned(),
                                },
                            }]),
                            ..Delta::default()
                        },
                        None,
                    ));
                }
                deltas.push((Delta::default(), Some("tool_calls")));
            }
        }
        if let Some(reasoning) = self.reasoning {
            // DeepSeek's reasoner: the thinking streams first, word by word.
            let thoughts = reasoning.split_inclusive(' ').map(|word| {
                (
                    Delta {
                        content: Some(None),
                        reasoning_content: Some(Some(word.to_owned())),
                        ..Delta::default()
                    },
                    None,
                )
            });
            let rest = deltas.split_off(1.min(deltas.len()));
            deltas.extend(thoughts);
            deltas.extend(rest);
        }
        let mut chunks: Vec<Chunk> = deltas
            .into_iter()
            .map(|(delta, finish_reason)| {
                self.chunk(
                    vec![ChunkChoice {
                        index: 0,
                        delta,
                        logprobs: None,
                        finish_reason,
                    }],
                    include_usage.then_some(None),
                )
            })
            .collect();
        if include_usage {
            chunks.push(self.chunk(Vec::new(), Some(Some(self.usage))));
        }
        let mut events: Vec<Bytes> = if self.flavor == FakeFlavor::OpenAi {
            chunks.iter().map(|chunk| event(&to_bytes(chunk))).collect()
        } else {
            let values = chunks
                .iter()
                .map(|chunk| serde_json::to_value(chunk).expect("wire types always serialize"))
                .collect();
            self.flavor
                .stream(values, self.counts)
                .iter()
                .map(|chunk| event(&to_bytes(chunk)))
                .collect()
        };
        events.push(Bytes::from_static(b"data: [DONE]\n\n"));
        events
    }

    fn chunk(&self, choices: Vec<ChunkChoice>, usage: Option<Option<Usage>>) -> Chunk<'_> {
        Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: CREATED,
            model: &self.model,
            service_tier: "default",
            system_fingerprint: FINGERPRINT,
            choices,
            usage,
        }
    }
}

/// Frames a chunk object as one server-sent event.
fn event(json: &[u8]) -> Bytes {
    let mut event = b"data: ".to_vec();
    event.extend_from_slice(json);
    event.extend_from_slice(b"\n\n");
    Bytes::from(event)
}

/// Returns a message's text: its string content, or its text parts joined
/// with a space.
fn message_text(message: &Value) -> String {
    match &message["content"] {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter(|part| part["type"] == "text")
            .filter_map(|part| part["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn count(words: usize) -> u32 {
    u32::try_from(words).unwrap_or(u32::MAX)
}

fn to_bytes<T: serde::Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("wire types always serialize"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn completion_matches_openai_field_order() {
        let body = json!({"model": "gpt-4o-mini", "messages": [
            {"role": "system", "content": "Be nice."},
            {"role": "user", "content": [{"type": "text", "text": "Hello there"}]}
        ]});
        let answer = Answer::for_request(&body, 1);
        let text = String::from_utf8(answer.completion().to_vec()).expect("utf-8");
        assert_eq!(
            text,
            concat!(
                r#"{"id":"chatcmpl-1","object":"chat.completion","created":1741569952,"model":"gpt-4o-mini","#,
                r#""choices":[{"index":0,"message":{"role":"assistant","content":"Echo: Hello there","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"#,
                r#""usage":{"prompt_tokens":4,"completion_tokens":3,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"#,
                r#""completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"#,
                r#""service_tier":"default","system_fingerprint":"fp_fake"}"#
            )
        );
    }

    #[test]
    fn stream_starts_with_role_and_ends_with_usage_and_done() {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "Hi you"}]});
        let events = Answer::for_request(&body, 2).events(true);
        let first = String::from_utf8(events[0].to_vec()).expect("utf-8");
        assert_eq!(
            first,
            concat!(
                r#"data: {"id":"chatcmpl-2","object":"chat.completion.chunk","created":1741569952,"model":"m","#,
                r#""service_tier":"default","system_fingerprint":"fp_fake","#,
                r#""choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
                "\n\n"
            )
        );
        // role, "Echo: ", "Hi ", "you", finish, usage, [DONE]
        assert_eq!(events.len(), 7);
        let usage = String::from_utf8(events[5].to_vec()).expect("utf-8");
        assert!(
            usage.contains(r#""choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3"#),
            "{usage}"
        );
        assert_eq!(&events[6][..], b"data: [DONE]\n\n");
    }

    fn frames(answer: &Answer, include_usage: bool) -> Vec<Value> {
        answer
            .events(include_usage)
            .iter()
            .filter_map(|event| {
                let text = std::str::from_utf8(event).expect("utf-8");
                serde_json::from_str(text.strip_prefix("data: ")?.trim()).ok()
            })
            .collect()
    }

    #[test]
    fn azure_streams_open_with_prompt_filter_results() {
        let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]});
        let answer = Answer::for_flavor(&body, 1, FakeFlavor::Azure);
        let frames = frames(&answer, true);
        assert_eq!(frames[0]["choices"], json!([]));
        assert_eq!(frames[0]["id"], "");
        assert!(frames[0]["prompt_filter_results"].is_array());
        assert_eq!(
            frames[2]["choices"][0]["content_filter_results"]["hate"]["filtered"],
            false
        );
        assert_eq!(frames.last().expect("frames")["usage"]["prompt_tokens"], 1);
    }

    #[test]
    fn groq_deepseek_and_minimal_usage_shapes() {
        let body = json!({"model": "m", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"}]});
        let groq = frames(&Answer::for_flavor(&body, 1, FakeFlavor::Groq), true);
        let last = groq.last().expect("frames");
        assert_eq!(last["choices"][0]["finish_reason"], "stop");
        assert_eq!(last["x_groq"]["usage"]["total_tokens"], 5);
        assert!(groq.iter().all(|frame| frame.get("usage").is_none()));
        let deepseek: Value = serde_json::from_slice(
            &Answer::for_flavor(&body, 1, FakeFlavor::DeepSeek).completion(),
        )
        .expect("json");
        assert_eq!(deepseek["usage"]["prompt_cache_hit_tokens"], 2);
        assert_eq!(deepseek["usage"]["prompt_cache_miss_tokens"], 1);
        assert!(deepseek.get("service_tier").is_none());
        let minimal = frames(&Answer::for_flavor(&body, 1, FakeFlavor::Minimal), true);
        assert!(
            minimal
                .iter()
                .all(|frame| frame.get("id").is_none() && frame.get("usage").is_none())
        );
        assert_eq!(
            minimal.last().expect("frames")["choices"][0]["finish_reason"],
            "eos_token"
        );
    }

    #[test]
    fn weather_with_tools_is_a_tool_call() {
        let body = json!({"model": "m",
            "messages": [{"role": "user", "content": "What's the weather?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather"}}]});
        let answer = Answer::for_request(&body, 3);
        let completion: Value = serde_json::from_slice(&answer.completion()).expect("json");
        assert_eq!(completion["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            completion["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            TOOL_ARGUMENTS
        );
        assert_eq!(completion["usage"]["completion_tokens"], 9);
        let events = answer.events(false);
        assert!(!String::from_utf8_lossy(&events[0]).contains("usage"));
        assert_eq!(TOOL_ARGUMENT_FRAGMENTS.concat(), TOOL_ARGUMENTS);
    }
}

//! The fake's deterministic answer to a `generateContent` request, rendered
//! whole, as server-sent events, or as the JSON array a stream is without
//! `alt=sse`.

use bytes::Bytes;
use serde_json::Value;

use super::wire::{
    self, Candidate, Content, FunctionCall, Location, Part, Response, UsageMetadata,
};

/// Completion tokens reported for a tool call (as `FakeOpenAi` does).
pub const TOOL_CALL_COMPLETION_TOKENS: u32 = 9;
/// Arguments of every tool call.
pub const TOOL_CALL_LOCATION: &str = "Boston, MA";
/// `createTime` of every Vertex AI answer: a fixed time keeps answers deterministic.
const CREATE_TIME: &str = "2025-03-10T01:25:52.381502Z";

enum Reply {
    Text(String),
    ToolCall { name: String },
}

/// What the fake answers to one request.
pub struct Answer {
    model: String,
    vertex: bool,
    response_id: String,
    reply: Reply,
    prompt_tokens: u32,
}

impl Answer {
    /// Decides the answer to `body`, sent to `model` over the Gemini API or
    /// Vertex AI; `number` makes the response id.
    pub fn for_request(body: &Value, model: &str, vertex: bool, number: u64) -> Self {
        let contents = body["contents"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        // The last user turn with text: tool results (`functionResponse`
        // parts) travel in user turns too, but are not what the user said.
        let last_user = contents
            .iter()
            .rev()
            .filter(|content| content["role"] == "user")
            .map(content_text)
            .find(|text| !text.is_empty())
            .unwrap_or_default();
        let first_tool = body["tools"]
            .as_array()
            .and_then(|tools| tools.first())
            .and_then(|tool| tool["functionDeclarations"].as_array())
            .and_then(|declarations| declarations.first())
            .and_then(|declaration| declaration["name"].as_str());
        let prompt_words = contents
            .iter()
            .chain(std::iter::once(&body["systemInstruction"]))
            .map(|content| words(&content_text(content)) + words(&tool_results_text(content)))
            .sum();
        let reply = match first_tool {
            Some(name) if last_user.contains("weather") => Reply::ToolCall {
                name: name.to_owned(),
            },
            _ => Reply::Text(format!("Echo: {last_user}")),
        };
        Self {
            model: model.to_owned(),
            vertex,
            response_id: format!("fakeGeminiResponse{number}"),
            reply,
            prompt_tokens: prompt_words,
        }
    }

    fn completion_tokens(&self) -> u32 {
        match &self.reply {
            Reply::Text(text) => words(text),
            Reply::ToolCall { .. } => TOOL_CALL_COMPLETION_TOKENS,
        }
    }

    /// Renders the whole `GenerateContentResponse`, pretty-printed.
    pub fn whole(&self) -> Bytes {
        let parts = match &self.reply {
            Reply::Text(text) => vec![text_part(text.clone())],
            Reply::ToolCall { name } => vec![call_part(name)],
        };
        let response = self.response(parts, Some("STOP"), self.completion_tokens());
        Bytes::from(wire::pretty(&response))
    }

    /// Renders the stream as server-sent events: one per word (the last
    /// with `finishReason`), or one holding the whole function call.
    pub fn events(&self) -> Vec<Bytes> {
        self.stream_responses()
            .iter()
            .map(|response| Bytes::from(wire::event(response)))
            .collect()
    }

    /// Renders the stream as `streamGenerateContent` does without
    /// `alt=sse`: one JSON array of the responses.
    pub fn array(&self) -> Bytes {
        Bytes::from(wire::pretty(&self.stream_responses()))
    }

    fn stream_responses(&self) -> Vec<Response<'_>> {
        match &self.reply {
            Reply::ToolCall { name } => vec![self.response(
                vec![call_part(name)],
                Some("STOP"),
                TOOL_CALL_COMPLETION_TOKENS,
            )],
            Reply::Text(text) => {
                let pieces: Vec<&str> = text.split_inclusive(' ').collect();
                let mut sent = String::new();
                pieces
                    .iter()
                    .enumerate()
                    .map(|(position, piece)| {
                        sent.push_str(piece);
                        let finish = (position + 1 == pieces.len()).then_some("STOP");
                        self.response(vec![text_part((*piece).to_owned())], finish, words(&sent))
                    })
                    .collect()
            }
        }
    }

    fn response(
        &self,
        parts: Vec<Part>,
        finish_reason: Option<&'static str>,
        completion_tokens: u32,
    ) -> Response<'_> {
        Response {
            candidates: vec![Candidate {
                content: Content {
                    parts,
                    vertex: self.vertex,
                },
                finish_reason,
                index: (!self.vertex).then_some(0),
            }],
            usage_metadata: UsageMetadata::new(self.prompt_tokens, completion_tokens, self.vertex),
            model_version: &self.model,
            create_time: self.vertex.then_some(CREATE_TIME),
            response_id: &self.response_id,
        }
    }
}

fn text_part(text: String) -> Part {
    Part {
        text: Some(text),
        function_call: None,
    }
}

fn call_part(name: &str) -> Part {
    Part {
        text: None,
        function_call: Some(FunctionCall {
            name: name.to_owned(),
            args: Location {
                location: TOOL_CALL_LOCATION,
            },
        }),
    }
}

/// Returns a content's text parts joined with a space.
fn content_text(content: &Value) -> String {
    content["parts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|part| part["text"].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Returns the text of a content's tool results (`functionResponse`
/// `response.content`, as text, or as JSON when it is not a string).
fn tool_results_text(content: &Value) -> String {
    content["parts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|part| part.get("functionResponse"))
        .map(|response| match &response["response"]["content"] {
            Value::String(text) => text.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn words(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn whole_answer_is_pretty_printed_like_the_gemini_api() {
        let body = json!({
            "contents": [{"role": "user", "parts": [{"text": "Hello there"}]}],
            "systemInstruction": {"parts": [{"text": "Be nice."}]}
        });
        let answer = Answer::for_request(&body, "gemini-2.5-flash", false, 1);
        let text = String::from_utf8(answer.whole().to_vec()).expect("utf-8");
        assert_eq!(
            text,
            r#"{
  "candidates": [
    {
      "content": {
        "parts": [
          {
            "text": "Echo: Hello there"
          }
        ],
        "role": "model"
      },
      "finishReason": "STOP",
      "index": 0
    }
  ],
  "usageMetadata": {
    "promptTokenCount": 4,
    "candidatesTokenCount": 3,
    "totalTokenCount": 7,
    "promptTokensDetails": [
      {
        "modality": "TEXT",
        "tokenCount": 4
      }
    ]
  },
  "modelVersion": "gemini-2.5-flash",
  "responseId": "fakeGeminiResponse1"
}"#
        );
    }

    #[test]
    fn stream_events_are_single_line_sse_with_crlf() {
        let body = json!({"contents": [{"role": "user", "parts": [{"text": "Hi you"}]}]});
        let events = Answer::for_request(&body, "m", true, 2).events();
        assert_eq!(events.len(), 3, "Echo:, Hi, you");
        let first = String::from_utf8(events[0].to_vec()).expect("utf-8");
        assert_eq!(
            first,
            concat!(
                r#"data: {"candidates": [{"content": {"role": "model","parts": [{"text": "Echo: "}]}}],"#,
                r#""usageMetadata": {"promptTokenCount": 2,"candidatesTokenCount": 1,"totalTokenCount": 3,"trafficType": "ON_DEMAND","#,
                r#""promptTokensDetails": [{"modality": "TEXT","tokenCount": 2}],"candidatesTokensDetails": [{"modality": "TEXT","tokenCount": 1}]},"#,
                r#""modelVersion": "m","createTime": "2025-03-10T01:25:52.381502Z","responseId": "fakeGeminiResponse2"}"#,
                "\r\n\r\n"
            )
        );
        let last = String::from_utf8(events[2].to_vec()).expect("utf-8");
        assert!(last.contains(r#""finishReason": "STOP""#), "{last}");
    }

    #[test]
    fn weather_with_tools_calls_the_first_function() {
        let body = json!({
            "contents": [{"role": "user", "parts": [{"text": "What's the weather?"}]}],
            "tools": [{"functionDeclarations": [{"name": "get_weather"}, {"name": "other"}]}]
        });
        let answer = Answer::for_request(&body, "m", false, 3);
        let whole: Value = serde_json::from_slice(&answer.whole()).expect("json");
        assert_eq!(
            whole["candidates"][0]["content"]["parts"][0]["functionCall"],
            json!({"name": "get_weather", "args": {"location": "Boston, MA"}})
        );
        assert_eq!(whole["usageMetadata"]["candidatesTokenCount"], 9);
        let array: Value = serde_json::from_slice(&answer.array()).expect("json");
        assert_eq!(array.as_array().map(Vec::len), Some(1));
    }
}

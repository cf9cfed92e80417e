//! The request body of `POST /v1/chat/completions`, and its translation to
//! the canonical `ChatRequest`.
//!
//! Parameters Switchyard does not model are kept in `extra` and travel as
//! JSON text in `ChatRequest.extra_json`, so nothing the client sent is lost.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};
use switchyard_common::ServiceError;
use switchyard_proto::v1 as pb;

/// `POST /v1/chat/completions` body.
#[derive(Debug, Deserialize)]
pub struct ChatCompletionRequest {
    model: String,
    messages: Vec<RequestMessage>,
    #[serde(default)]
    tools: Option<Vec<ToolWire>>,
    #[serde(default)]
    tool_choice: Option<ToolChoiceWire>,
    #[serde(default)]
    response_format: Option<ResponseFormatWire>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    stop: Option<StopWire>,
    #[serde(default)]
    presence_penalty: Option<f64>,
    #[serde(default)]
    frequency_penalty: Option<f64>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    /// Everything else, passed through untouched.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RoleWire {
    System,
    User,
    Assistant,
    Tool,
    Developer,
}

#[derive(Debug, Deserialize)]
struct RequestMessage {
    role: RoleWire,
    #[serde(default)]
    content: Option<ContentWire>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallWire>>,
    #[serde(default)]
    tool_call_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ContentWire {
    Text(String),
    Parts(Vec<PartWire>),
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum PartWire {
    Text { text: String },
    ImageUrl { image_url: ImageUrlWire },
}

#[derive(Debug, Deserialize)]
struct ImageUrlWire {
    url: String,
    #[serde(default)]
    detail: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ToolCallWire {
    id: String,
    function: FunctionCallWire,
}

#[derive(Debug, Deserialize)]
struct FunctionCallWire {
    name: String,
    arguments: String,
}

#[derive(Debug, Deserialize)]
struct ToolWire {
    #[serde(rename = "type")]
    kind: String,
    function: FunctionWire,
}

#[derive(Debug, Deserialize)]
struct FunctionWire {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ToolChoiceWire {
    Mode(String),
    Function { function: NamedFunction },
}

#[derive(Debug, Deserialize)]
struct NamedFunction {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ResponseFormatWire {
    Text,
    JsonObject,
    JsonSchema { json_schema: Value },
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StopWire {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// Parses a request body, naming the path of the first bad field.
pub fn parse(body: &[u8]) -> Result<ChatCompletionRequest, ServiceError> {
    parse_json(body)
}

/// Parses any JSON request body, naming the path of the first bad field.
/// Anything but whitespace after the JSON value is refused, as OpenAI does.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ServiceError> {
    let unparsable = |inner: serde_json::Error| {
        ServiceError::invalid_request(format!(
            "We could not parse the JSON body of your request: {inner}"
        ))
    };
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut *deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            unparsable(inner)
        } else if path == "." {
            ServiceError::invalid_request(format!("Invalid request body: {inner}"))
        } else {
            let param = path.clone();
            ServiceError::invalid_request(format!("Invalid value for `{path}`: {inner}"))
                .with_param(param)
        }
    })?;
    deserializer.end().map_err(unparsable)?;
    Ok(value)
}

impl ChatCompletionRequest {
    /// Whether the client asked for a stream.
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// Whether a streamed response should end with a usage chunk.
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|options| options.include_usage)
            .unwrap_or(false)
    }

    /// Validates the request and translates it to the canonical message.
    pub fn into_proto(self) -> Result<pb::ChatRequest, ServiceError> {
        if self.model.is_empty() {
            return Err(
                ServiceError::invalid_request("`model` must not be empty.").with_param("model")
            );
        }
        if self.messages.is_empty() {
            return Err(ServiceError::invalid_request(
                "`messages` must contain at least one message.",
            )
            .with_param("messages"));
        }
        if let Some(n) = self.n
            && !(1..=128).contains(&n)
        {
            return Err(
                ServiceError::invalid_request("`n` must be between 1 and 128.").with_param("n"),
            );
        }
        if let Some(temperature) = self.temperature
            && !(0.0..=2.0).contains(&temperature)
        {
            return Err(
                ServiceError::invalid_request("`temperature` must be between 0 and 2.")
                    .with_param("temperature"),
            );
        }
        let include_usage = self.include_usage();
        let messages = self
            .messages
            .into_iter()
            .enumerate()
            .map(|(position, message)| message.into_proto(position))
            .collect::<Result<Vec<_>, _>>()?;
        let tools = self
            .tools
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(position, tool)| tool.into_proto(position))
            .collect::<Result<Vec<_>, _>>()?;
        let tool_choice = self
            .tool_choice
            .map(ToolChoiceWire::into_proto)
            .transpose()?;
        let response_format = self.response_format.map(ResponseFormatWire::into_proto);
        let (max_tokens, max_tokens_field) = match (self.max_completion_tokens, self.max_tokens) {
            (Some(limit), _) => (Some(limit), pb::MaxTokensField::MaxCompletionTokens),
            (None, Some(limit)) => (Some(limit), pb::MaxTokensField::MaxTokens),
            (None, None) => (None, pb::MaxTokensField::Unspecified),
        };
        let stop = match self.stop {
            None => Vec::new(),
            Some(StopWire::One(stop)) => vec![stop],
            Some(StopWire::Many(stops)) => stops,
        };
        let extra_json = if self.extra.is_empty() {
            String::new()
        } else {
            Value::Object(self.extra).to_string()
        };
        Ok(pb::ChatRequest {
            model: self.model,
            messages,
            tools,
            tool_choice,
            response_format,
            temperature: self.temperature,
            top_p: self.top_p,
            max_tokens,
            n: self.n,
            stop,
            presence_penalty: self.presence_penalty,
            frequency_penalty: self.frequency_penalty,
            seed: self.seed,
            user: self.user.unwrap_or_default(),
            metadata: self.metadata.unwrap_or_default(),
            stream: self.stream.unwrap_or(false),
            include_usage,
            parallel_tool_calls: self.parallel_tool_calls,
            max_tokens_field: max_tokens_field as i32,
            extra_json,
        })
    }
}

impl RequestMessage {
    fn into_proto(self, position: usize) -> Result<pb::Message, ServiceError> {
        let role = match self.role {
            RoleWire::System => pb::Role::System,
            RoleWire::User => pb::Role::User,
            RoleWire::Assistant => pb::Role::Assistant,
            RoleWire::Tool => pb::Role::Tool,
            RoleWire::Developer => pb::Role::Developer,
        };
        if role == pb::Role::Tool && self.tool_call_id.is_none() {
            return Err(ServiceError::invalid_request(format!(
                "`messages[{position}].tool_call_id` is required for tool messages."
            ))
            .with_param(format!("messages[{position}].tool_call_id")));
        }
        let has_tool_calls = self
            .tool_calls
            .as_ref()
            .is_some_and(|calls| !calls.is_empty());
        if self.content.is_none() && !(role == pb::Role::Assistant && has_tool_calls) {
            return Err(ServiceError::invalid_request(format!(
                "`messages[{position}].content` is required."
            ))
            .with_param(format!("messages[{position}].content")));
        }
        let (content, content_is_text, content_is_null) = match self.content {
            None => (Vec::new(), false, true),
            Some(ContentWire::Text(text)) => (vec![text_part(text)], true, false),
            Some(ContentWire::Parts(parts)) => {
                let parts = parts.into_iter().map(PartWire::into_proto).collect();
                (parts, false, false)
            }
        };
        let tool_calls = self
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .map(|call| pb::ToolCall {
                id: call.id,
                name: call.function.name,
                arguments: call.function.arguments,
            })
            .collect();
        Ok(pb::Message {
            role: role as i32,
            content,
            content_is_text,
            name: self.name.unwrap_or_default(),
            tool_calls,
            tool_call_id: self.tool_call_id.unwrap_or_default(),
            content_is_null,
        })
    }
}

fn text_part(text: String) -> pb::ContentPart {
    pb::ContentPart {
        part: Some(pb::content_part::Part::Text(text)),
    }
}

impl PartWire {
    fn into_proto(self) -> pb::ContentPart {
        match self {
            PartWire::Text { text } => text_part(text),
            PartWire::ImageUrl { image_url } => pb::ContentPart {
                part: Some(pb::content_part::Part::ImageUrl(pb::ImageUrl {
                    url: image_url.url,
                    detail: image_url.detail.unwrap_or_default(),
                })),
            },
        }
    }
}

impl ToolWire {
    fn into_proto(self, position: usize) -> Result<pb::Tool, ServiceError> {
        if self.kind != "function" {
            return Err(ServiceError::invalid_request(format!(
                "Tool type `{}` is not supported; only `function` tools are.",
                self.kind
            ))
            .with_param(format!("tools[{position}].type")));
        }
        Ok(pb::Tool {
            function: Some(pb::FunctionDefinition {
                name: self.function.name,
                description: self.function.description.unwrap_or_default(),
                parameters_json: self
                    .function
                    .parameters
                    .map(|parameters| parameters.to_string())
                    .unwrap_or_default(),
                strict: self.function.strict,
            }),
        })
    }
}

impl ToolChoiceWire {
    fn into_proto(self) -> Result<pb::ToolChoice, ServiceError> {
        let choice = match self {
            ToolChoiceWire::Mode(mode) => {
                let mode = match mode.as_str() {
                    "none" => pb::ToolChoiceMode::None,
                    "auto" => pb::ToolChoiceMode::Auto,
                    "required" => pb::ToolChoiceMode::Required,
                    other => {
                        return Err(ServiceError::invalid_request(format!(
                            "Invalid value for `tool_choice`: `{other}`; expected none, auto, required or a function."
                        ))
                        .with_param("tool_choice"));
                    }
                };
                pb::tool_choice::Choice::Mode(mode as i32)
            }
            ToolChoiceWire::Function { function } => {
                pb::tool_choice::Choice::FunctionName(function.name)
            }
        };
        Ok(pb::ToolChoice {
            choice: Some(choice),
        })
    }
}

impl ResponseFormatWire {
    fn into_proto(self) -> pb::ResponseFormat {
        match self {
            ResponseFormatWire::Text => pb::ResponseFormat {
                r#type: pb::ResponseFormatType::Text as i32,
                json_schema_json: String::new(),
            },
            ResponseFormatWire::JsonObject => pb::ResponseFormat {
                r#type: pb::ResponseFormatType::JsonObject as i32,
                json_schema_json: String::new(),
            },
            ResponseFormatWire::JsonSchema { json_schema } => pb::ResponseFormat {
                r#type: pb::ResponseFormatType::JsonSchema as i32,
                json_schema_json: json_schema.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(body: &str) -> Result<pb::ChatRequest, ServiceError> {
        parse(body.as_bytes())?.into_proto()
    }

    #[test]
    fn trailing_garbage_after_the_json_body_is_refused() {
        let valid = r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}]}"#;
        assert!(translate(&format!("{valid} \n\t")).is_ok());
        for trailer in ["xyz", "{}", " 1", "]"] {
            let error = translate(&format!("{valid}{trailer}")).expect_err("refused");
            assert_eq!(error.class, switchyard_common::ErrorClass::InvalidRequest);
            assert!(
                error
                    .message
                    .starts_with("We could not parse the JSON body"),
                "{}",
                error.message
            );
        }
    }

    #[test]
    fn translates_a_full_request() {
        let request = translate(
            r#"{"model":"gpt","messages":[
                {"role":"system","content":"be brief"},
                {"role":"user","content":[{"type":"text","text":"what is this"},{"type":"image_url","image_url":{"url":"https://x/y.png","detail":"low"}}]},
                {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"look","arguments":"{\"a\":1}"}}]},
                {"role":"tool","tool_call_id":"call_1","content":"a cat"}],
              "tools":[{"type":"function","function":{"name":"look","parameters":{"type":"object"}}}],
              "tool_choice":{"type":"function","function":{"name":"look"}},
              "response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}},
              "temperature":0.2,"max_completion_tokens":99,"stop":"END","stream":true,
              "stream_options":{"include_usage":true},"logit_bias":{"50256":-100},"store":false}"#,
        )
        .expect("valid request");
        assert_eq!(request.messages.len(), 4);
        assert!(request.messages[0].content_is_text);
        assert_eq!(request.messages[1].content.len(), 2);
        assert!(request.messages[2].content_is_null);
        assert_eq!(request.messages[2].tool_calls[0].arguments, "{\"a\":1}");
        assert_eq!(request.messages[3].tool_call_id, "call_1");
        assert_eq!(
            request.tools[0]
                .function
                .as_ref()
                .map(|f| f.parameters_json.as_str()),
            Some(r#"{"type":"object"}"#)
        );
        assert_eq!(request.max_tokens, Some(99));
        assert_eq!(
            request.max_tokens_field,
            pb::MaxTokensField::MaxCompletionTokens as i32
        );
        assert_eq!(request.stop, vec!["END".to_owned()]);
        assert!(request.stream && request.include_usage);
        let extra: Value = serde_json::from_str(&request.extra_json).expect("extra is json");
        assert_eq!(
            extra,
            serde_json::json!({"logit_bias":{"50256":-100},"store":false})
        );
    }

    #[test]
    fn missing_fields_and_wrong_types_name_the_field() {
        let error = translate(r#"{"messages":[]}"#).expect_err("no model");
        assert!(error.message.contains("model"), "{}", error.message);
        let error = translate(r#"{"model":"m","messages":[{"role":"user","content":1}]}"#)
            .expect_err("bad content");
        assert!(error.message.contains("messages[0]"), "{}", error.message);
        let error = translate(r#"{"model":"m","messages":"hi"}"#).expect_err("bad messages");
        assert_eq!(error.param.as_deref(), Some("messages"));
        let error = translate(r#"{"model":"m","messages":[],"#).expect_err("truncated");
        assert!(error.message.contains("parse"), "{}", error.message);
        let error = translate(r#"{"model":"m","messages":[]}"#).expect_err("empty messages");
        assert_eq!(error.param.as_deref(), Some("messages"));
    }

    #[test]
    fn tool_message_needs_its_call_id() {
        let error = translate(r#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#)
            .expect_err("no tool_call_id");
        assert_eq!(error.param.as_deref(), Some("messages[0].tool_call_id"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// The fuzz target's property, bounded: any body, and any valid
        /// request with bytes changed, is parsed or refused with an
        /// invalid-request error; never a panic, never another class.
        #[test]
        fn any_body_is_parsed_or_refused_as_invalid(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..4),
        ) {
            let mut valid = br#"{"model":"gpt","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"stream":true,"n":1}"#.to_vec();
            for (at, value) in flips {
                let index = at % valid.len();
                valid[index] = value;
            }
            for body in [noise.as_slice(), valid.as_slice()] {
                for kind in [0_u8, 1] {
                    crate::fuzzing::edge_request(&[&[kind], body].concat());
                }
            }
        }
    }
}

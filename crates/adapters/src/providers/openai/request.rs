//! Canonical [`ChatRequest`] to the OpenAI Chat Completions request body.
//!
//! JSON that arrives as text (tool parameters, JSON schemas, `extra_json`)
//! is validated and embedded as [`RawValue`]s, byte for byte, never
//! re-interpreted. Only fields the request sets are written.

use std::{borrow::Cow, collections::BTreeMap};

use serde::{Serialize, Serializer, ser::SerializeMap};
use serde_json::value::RawValue;
use switchyard_common::ServiceError;
use switchyard_proto::v1::{
    self as pb, ChatRequest, MaxTokensField, ResponseFormatType, Role, ToolChoiceMode,
    content_part::Part, tool_choice::Choice,
};

use super::compat::Dialect;

/// Serializes `request` as an OpenAI `POST /chat/completions` body.
#[cfg(test)]
pub fn chat_body(request: &ChatRequest) -> Result<Vec<u8>, ServiceError> {
    chat_body_in(request, Dialect::default())
}

/// Serializes `request` as a `POST /chat/completions` body in `dialect`.
pub fn chat_body_in(request: &ChatRequest, dialect: Dialect) -> Result<Vec<u8>, ServiceError> {
    let body = ChatBody::new(request, dialect)?;
    serde_json::to_vec(&body)
        .map_err(|_| ServiceError::internal("the request could not be serialized"))
}

/// The body, borrowing everything from the canonical request.
struct ChatBody<'a> {
    request: &'a ChatRequest,
    dialect: Dialect,
    messages: Vec<WireMessage<'a>>,
    tools: Vec<WireTool<'a>>,
    tool_choice: Option<WireToolChoice<'a>>,
    response_format: Option<WireResponseFormat<'a>>,
    extra: BTreeMap<Cow<'a, str>, &'a RawValue>,
}

impl<'a> ChatBody<'a> {
    fn new(request: &'a ChatRequest, dialect: Dialect) -> Result<Self, ServiceError> {
        let messages = request
            .messages
            .iter()
            .enumerate()
            .map(|(index, message)| WireMessage::new(index, message, dialect))
            .collect::<Result<_, _>>()?;
        let tools = request
            .tools
            .iter()
            .map(WireTool::new)
            .collect::<Result<_, _>>()?;
        let extra = if request.extra_json.trim().is_empty() {
            BTreeMap::new()
        } else {
            serde_json::from_str(&request.extra_json).map_err(|_| {
                ServiceError::invalid_request("extra request fields are not a JSON object")
            })?
        };
        Ok(Self {
            request,
            dialect,
            messages,
            tools,
            tool_choice: request
                .tool_choice
                .as_ref()
                .and_then(|choice| WireToolChoice::new(choice, dialect)),
            response_format: request
                .response_format
                .as_ref()
                .map(WireResponseFormat::new)
                .transpose()?
                .flatten(),
            extra,
        })
    }
}

impl Serialize for ChatBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let request = self.request;
        let mut body = BodyWriter {
            map: serializer.serialize_map(None)?,
            written: Vec::with_capacity(24),
        };
        body.put("model", &request.model)?;
        body.put("messages", &self.messages)?;
        if !self.tools.is_empty() {
            body.put("tools", &self.tools)?;
        }
        body.put_some("tool_choice", self.tool_choice.as_ref())?;
        body.put_some("response_format", self.response_format.as_ref())?;
        body.put_some("temperature", request.temperature.as_ref())?;
        body.put_some("top_p", request.top_p.as_ref())?;
        let max_tokens_key = match (self.dialect.max_tokens_key, request.max_tokens_field()) {
            (Some(key), _) => key,
            (None, MaxTokensField::MaxCompletionTokens) => "max_completion_tokens",
            (None, MaxTokensField::MaxTokens | MaxTokensField::Unspecified) => "max_tokens",
        };
        body.put_some(max_tokens_key, request.max_tokens.as_ref())?;
        body.put_some("n", request.n.as_ref())?;
        if !request.stop.is_empty() {
            body.put("stop", &request.stop)?;
        }
        body.put_some("presence_penalty", request.presence_penalty.as_ref())?;
        body.put_some("frequency_penalty", request.frequency_penalty.as_ref())?;
        body.put_some(self.dialect.seed_key, request.seed.as_ref())?;
        if !request.user.is_empty() {
            body.put("user", &request.user)?;
        }
        if !request.metadata.is_empty() {
            body.put("metadata", &request.metadata)?;
        }
        body.put_some("parallel_tool_calls", request.parallel_tool_calls.as_ref())?;
        if request.stream {
            body.put("stream", &true)?;
            // Always asked for, whatever the client wanted: the router needs
            // usage for accounting and drops the chunk if the client did not ask.
            // Only servers that reject the field go without.
            if self.dialect.stream_usage {
                body.put(
                    "stream_options",
                    &StreamOptions {
                        include_usage: true,
                    },
                )?;
            }
        }
        for (key, value) in &self.extra {
            // A modelled field wins over a passthrough field of the same name.
            if !body.written.contains(&key.as_ref()) {
                body.map.serialize_entry(key, value)?;
            }
        }
        body.map.end()
    }
}

/// Writes body fields and remembers their names, so passthrough fields
/// never duplicate a key.
struct BodyWriter<M> {
    map: M,
    written: Vec<&'static str>,
}

impl<M: SerializeMap> BodyWriter<M> {
    fn put<V: Serialize + ?Sized>(&mut self, key: &'static str, value: &V) -> Result<(), M::Error> {
        self.written.push(key);
        self.map.serialize_entry(key, value)
    }

    fn put_some<V: Serialize>(
        &mut self,
        key: &'static str,
        value: Option<&V>,
    ) -> Result<(), M::Error> {
        match value {
            Some(value) => self.put(key, value),
            None => Ok(()),
        }
    }
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: WireContent<'a>,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
    #[serde(skip_serializing_if = "str::is_empty")]
    tool_call_id: Cow<'a, str>,
}

impl<'a> WireMessage<'a> {
    fn new(index: usize, message: &'a pb::Message, dialect: Dialect) -> Result<Self, ServiceError> {
        let role = match message.role() {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::Developer => dialect.developer_role,
            Role::Unspecified => {
                return Err(
                    ServiceError::invalid_request(format!("message {index} has no role"))
                        .with_param(format!("messages[{index}].role")),
                );
            }
        };
        let tool_calls = message
            .tool_calls
            .iter()
            .map(|call| WireToolCall {
                id: dialect.tool_call_ids.apply(&call.id),
                kind: "function",
                function: WireFunctionCall {
                    name: &call.name,
                    arguments: &call.arguments,
                },
            })
            .collect();
        Ok(Self {
            role,
            content: WireContent::new(message),
            name: &message.name,
            tool_calls,
            tool_call_id: dialect.tool_call_ids.apply(&message.tool_call_id),
        })
    }
}

/// Message content: `null`, a string, or an array of parts.
enum WireContent<'a> {
    Null,
    Text(Cow<'a, str>),
    Parts(Vec<WirePart<'a>>),
}

impl<'a> WireContent<'a> {
    fn new(message: &'a pb::Message) -> Self {
        if message.content_is_null {
            return Self::Null;
        }
        let all_text = message
            .content
            .iter()
            .all(|part| matches!(part.part, Some(Part::Text(_))));
        if message.content.is_empty() || (message.content_is_text && all_text) {
            let mut texts = message.content.iter().filter_map(|part| match &part.part {
                Some(Part::Text(text)) => Some(text.as_str()),
                _ => None,
            });
            let text = match (texts.next(), texts.next()) {
                (None, _) => Cow::Borrowed(""),
                (Some(only), None) => Cow::Borrowed(only),
                (Some(first), Some(second)) => {
                    let mut joined = format!("{first}{second}");
                    texts.for_each(|text| joined.push_str(text));
                    Cow::Owned(joined)
                }
            };
            return Self::Text(text);
        }
        Self::Parts(
            message
                .content
                .iter()
                .filter_map(|part| match part.part.as_ref()? {
                    Part::Text(text) => Some(WirePart::Text { text }),
                    Part::ImageUrl(image) => Some(WirePart::ImageUrl {
                        image_url: WireImageUrl {
                            url: &image.url,
                            detail: &image.detail,
                        },
                    }),
                })
                .collect(),
        )
    }
}

impl Serialize for WireContent<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => serializer.serialize_none(),
            Self::Text(text) => serializer.serialize_str(text),
            Self::Parts(parts) => parts.serialize(serializer),
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WirePart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: WireImageUrl<'a> },
}

#[derive(Serialize)]
struct WireImageUrl<'a> {
    url: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    detail: &'a str,
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: Cow<'a, str>,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunctionCall<'a>,
}

#[derive(Serialize)]
struct WireFunctionCall<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

impl<'a> WireTool<'a> {
    fn new(tool: &'a pb::Tool) -> Result<Self, ServiceError> {
        let function = tool.function.as_ref().ok_or_else(|| {
            ServiceError::invalid_request("a tool has no function").with_param("tools")
        })?;
        let parameters = if function.parameters_json.trim().is_empty() {
            None
        } else {
            Some(parse_raw(&function.parameters_json).map_err(|_| {
                ServiceError::invalid_request(format!(
                    "the parameters of tool `{}` are not valid JSON",
                    function.name
                ))
                .with_param("tools")
            })?)
        };
        Ok(Self {
            kind: "function",
            function: WireFunction {
                name: &function.name,
                description: &function.description,
                parameters,
                strict: function.strict,
            },
        })
    }
}

fn parse_raw(text: &str) -> Result<&RawValue, serde_json::Error> {
    serde_json::from_str(text)
}

/// `"none"`, `"auto"`, `"required"` or a forced function.
enum WireToolChoice<'a> {
    Mode(&'static str),
    Function(&'a str),
}

impl<'a> WireToolChoice<'a> {
    fn new(choice: &'a pb::ToolChoice, dialect: Dialect) -> Option<Self> {
        match choice.choice.as_ref()? {
            Choice::Mode(mode) => match ToolChoiceMode::try_from(*mode).ok()? {
                ToolChoiceMode::None => Some(Self::Mode("none")),
                ToolChoiceMode::Auto => Some(Self::Mode("auto")),
                ToolChoiceMode::Required => Some(Self::Mode(dialect.required_tool_choice)),
                ToolChoiceMode::Unspecified => None,
            },
            Choice::FunctionName(name) => Some(Self::Function(name)),
        }
    }
}

impl Serialize for WireToolChoice<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Forced<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            function: Named<'a>,
        }
        #[derive(Serialize)]
        struct Named<'a> {
            name: &'a str,
        }
        match self {
            Self::Mode(mode) => serializer.serialize_str(mode),
            Self::Function(name) => Forced {
                kind: "function",
                function: Named { name },
            }
            .serialize(serializer),
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireResponseFormat<'a> {
    Text,
    JsonObject,
    JsonSchema { json_schema: &'a RawValue },
}

impl<'a> WireResponseFormat<'a> {
    fn new(format: &'a pb::ResponseFormat) -> Result<Option<Self>, ServiceError> {
        Ok(match format.r#type() {
            ResponseFormatType::Unspecified => None,
            ResponseFormatType::Text => Some(Self::Text),
            ResponseFormatType::JsonObject => Some(Self::JsonObject),
            ResponseFormatType::JsonSchema => {
                let json_schema = parse_raw(&format.json_schema_json).map_err(|_| {
                    ServiceError::invalid_request("`response_format.json_schema` is not valid JSON")
                        .with_param("response_format")
                })?;
                Some(Self::JsonSchema { json_schema })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use switchyard_common::ErrorClass;
    use switchyard_proto::v1::{
        ContentPart, FunctionDefinition, ImageUrl, Message, ResponseFormat, Tool, ToolCall,
        ToolChoice,
    };

    use super::*;
    use crate::providers::openai::compat::ToolCallIds;

    fn text(text: &str) -> ContentPart {
        ContentPart {
            part: Some(Part::Text(text.to_owned())),
        }
    }

    fn message(role: Role, content: Vec<ContentPart>, content_is_text: bool) -> Message {
        Message {
            role: role as i32,
            content,
            content_is_text,
            ..Message::default()
        }
    }

    fn body_text(request: &ChatRequest) -> String {
        String::from_utf8(chat_body(request).expect("valid request")).expect("utf-8 body")
    }

    #[test]
    fn mistral_dialect_renames_fields_and_maps_tool_call_ids() {
        let dialect = Dialect {
            seed_key: "random_seed",
            max_tokens_key: Some("max_tokens"),
            required_tool_choice: "any",
            developer_role: "system",
            stream_usage: false,
            tool_call_ids: ToolCallIds::NineAlphanumeric,
        };
        let request = ChatRequest {
            model: "m".to_owned(),
            messages: vec![
                message(Role::Developer, vec![text("Be brief.")], true),
                Message {
                    tool_calls: vec![ToolCall {
                        id: "call_1".to_owned(),
                        name: "f".to_owned(),
                        arguments: "{}".to_owned(),
                    }],
                    content_is_null: true,
                    ..message(Role::Assistant, Vec::new(), false)
                },
                Message {
                    tool_call_id: "call_1".to_owned(),
                    ..message(Role::Tool, vec![text("ok")], true)
                },
            ],
            tool_choice: Some(ToolChoice {
                choice: Some(Choice::Mode(ToolChoiceMode::Required as i32)),
            }),
            seed: Some(7),
            max_tokens: Some(5),
            max_tokens_field: MaxTokensField::MaxCompletionTokens as i32,
            stream: true,
            ..ChatRequest::default()
        };
        let body: serde_json::Value =
            serde_json::from_slice(&chat_body_in(&request, dialect).expect("valid")).expect("json");
        let id = ToolCallIds::NineAlphanumeric.apply("call_1");
        assert_eq!(
            body,
            serde_json::json!({
                "model": "m",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": id, "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                    {"role": "tool", "content": "ok", "tool_call_id": id}
                ],
                "tool_choice": "any",
                "max_tokens": 5,
                "random_seed": 7,
                "stream": true
            })
        );
    }

    #[test]
    fn minimal_request_writes_only_what_is_set() {
        let request = ChatRequest {
            model: "gpt-4o-mini".to_owned(),
            messages: vec![message(Role::User, vec![text("Hi")], true)],
            ..ChatRequest::default()
        };
        assert_eq!(
            body_text(&request),
            r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}"#
        );
    }

    #[test]
    fn full_request_translates_every_field() {
        let request = ChatRequest {
            model: "gpt-4o".to_owned(),
            messages: vec![
                message(Role::Developer, vec![text("Be brief.")], true),
                Message {
                    name: "ann".to_owned(),
                    ..message(
                        Role::User,
                        vec![
                            text("What is this?"),
                            ContentPart {
                                part: Some(Part::ImageUrl(ImageUrl {
                                    url: "https://x/cat.png".to_owned(),
                                    detail: "low".to_owned(),
                                })),
                            },
                        ],
                        false,
                    )
                },
                Message {
                    content_is_null: true,
                    tool_calls: vec![ToolCall {
                        id: "call_1".to_owned(),
                        name: "look".to_owned(),
                        arguments: "{\"q\": 1}".to_owned(),
                    }],
                    ..message(Role::Assistant, vec![], false)
                },
                Message {
                    tool_call_id: "call_1".to_owned(),
                    ..message(Role::Tool, vec![text("a cat")], true)
                },
            ],
            tools: vec![Tool {
                function: Some(FunctionDefinition {
                    name: "look".to_owned(),
                    description: "Looks.".to_owned(),
                    parameters_json:
                        r#"{"type":"object","properties":{"q":{"type":"number","maximum":1.50}}}"#
                            .to_owned(),
                    strict: Some(true),
                }),
            }],
            tool_choice: Some(ToolChoice {
                choice: Some(Choice::FunctionName("look".to_owned())),
            }),
            response_format: Some(ResponseFormat {
                r#type: ResponseFormatType::JsonSchema as i32,
                json_schema_json: r#"{"name":"x","schema":{"type":"object"},"strict":true}"#
                    .to_owned(),
            }),
            temperature: Some(0.2),
            top_p: Some(0.9),
            max_tokens: Some(100),
            max_tokens_field: MaxTokensField::MaxCompletionTokens as i32,
            n: Some(2),
            stop: vec!["END".to_owned()],
            presence_penalty: Some(0.5),
            frequency_penalty: Some(-0.5),
            seed: Some(42),
            user: "u-1".to_owned(),
            metadata: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
            stream: true,
            include_usage: false,
            parallel_tool_calls: Some(false),
            extra_json: r#"{"logprobs":true,"top_logprobs":2,"temperature":9,"weird":{"a":1.0e5}}"#
                .to_owned(),
        };
        let expected = concat!(
            r#"{"model":"gpt-4o","messages":["#,
            r#"{"role":"developer","content":"Be brief."},"#,
            r#"{"role":"user","content":[{"type":"text","text":"What is this?"},"#,
            r#"{"type":"image_url","image_url":{"url":"https://x/cat.png","detail":"low"}}],"name":"ann"},"#,
            r#"{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"look","arguments":"{\"q\": 1}"}}]},"#,
            r#"{"role":"tool","content":"a cat","tool_call_id":"call_1"}],"#,
            r#""tools":[{"type":"function","function":{"name":"look","description":"Looks.","parameters":{"type":"object","properties":{"q":{"type":"number","maximum":1.50}}},"strict":true}}],"#,
            r#""tool_choice":{"type":"function","function":{"name":"look"}},"#,
            r#""response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"},"strict":true}},"#,
            r#""temperature":0.2,"top_p":0.9,"max_completion_tokens":100,"n":2,"stop":["END"],"#,
            r#""presence_penalty":0.5,"frequency_penalty":-0.5,"seed":42,"user":"u-1","metadata":{"k":"v"},"#,
            r#""parallel_tool_calls":false,"stream":true,"stream_options":{"include_usage":true},"#,
            r#""logprobs":true,"top_logprobs":2,"weird":{"a":1.0e5}}"#,
        );
        assert_eq!(body_text(&request), expected);
    }

    #[test]
    fn tool_choice_modes_and_simple_formats() {
        let mut request = ChatRequest {
            model: "m".to_owned(),
            tool_choice: Some(ToolChoice {
                choice: Some(Choice::Mode(ToolChoiceMode::Required as i32)),
            }),
            response_format: Some(ResponseFormat {
                r#type: ResponseFormatType::JsonObject as i32,
                json_schema_json: String::new(),
            }),
            max_tokens: Some(5),
            ..ChatRequest::default()
        };
        assert_eq!(
            body_text(&request),
            r#"{"model":"m","messages":[],"tool_choice":"required","response_format":{"type":"json_object"},"max_tokens":5}"#
        );
        request.response_format = Some(ResponseFormat {
            r#type: ResponseFormatType::Text as i32,
            json_schema_json: String::new(),
        });
        request.tool_choice = Some(ToolChoice {
            choice: Some(Choice::Mode(ToolChoiceMode::None as i32)),
        });
        assert!(
            body_text(&request)
                .contains(r#""tool_choice":"none","response_format":{"type":"text"}"#)
        );
    }

    #[test]
    fn invalid_embedded_json_is_an_invalid_request() {
        let bad_tool = ChatRequest {
            tools: vec![Tool {
                function: Some(FunctionDefinition {
                    name: "f".to_owned(),
                    parameters_json: "{nope".to_owned(),
                    ..FunctionDefinition::default()
                }),
            }],
            ..ChatRequest::default()
        };
        let error = chat_body(&bad_tool).expect_err("parameters are not JSON");
        assert_eq!(error.class, ErrorClass::InvalidRequest);
        let bad_extra = ChatRequest {
            extra_json: "[1]".to_owned(),
            ..ChatRequest::default()
        };
        assert!(chat_body(&bad_extra).is_err());
        let no_role = ChatRequest {
            messages: vec![Message::default()],
            ..ChatRequest::default()
        };
        assert_eq!(
            chat_body(&no_role).expect_err("no role").param.as_deref(),
            Some("messages[0].role")
        );
    }
}

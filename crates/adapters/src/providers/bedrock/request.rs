//! Canonical [`ChatRequest`] to the body of Bedrock `Converse` /
//! `ConverseStream` (the two take the same body; the model id is in the URL).
//!
//! - System and developer messages become `system` text blocks, in order.
//! - User, assistant and tool messages become `messages` with content
//!   blocks; tool results are user turns. Consecutive turns of the same role
//!   are merged, since Bedrock requires roles to alternate.
//! - Tool arguments, schemas and `extra_json` values are validated and
//!   embedded as [`RawValue`]s, byte for byte.
//! - Everything Bedrock cannot express is an `invalid_request` naming the
//!   field, never dropped.

mod tools;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::value::RawValue;
use switchyard_common::ServiceError;
use switchyard_proto::v1::{self as pb, ChatRequest, Role, content_part::Part};

use self::tools::{StructuredOutput, ToolConfig, tool_config};

/// Name of the tool that carries a `json_object` answer.
pub const JSON_OBJECT_TOOL: &str = "json_response";

/// A translated request.
#[derive(Debug)]
pub struct ConverseRequest {
    /// The JSON body.
    pub body: Vec<u8>,
    /// When `response_format` is emulated with a forced tool call: the
    /// tool's name, whose input is the answer's text.
    pub structured_output_tool: Option<String>,
}

/// Translates `request` to a `Converse` body.
pub fn converse_request(request: &ChatRequest) -> Result<ConverseRequest, ServiceError> {
    reject_unsupported(request)?;
    let extra = Extra::parse(&request.extra_json)?;
    let (system, messages) = translate_messages(&request.messages)?;
    let structured = StructuredOutput::new(request)?;
    let tool_config = match &structured {
        Some(structured) => Some(structured.tool_config()),
        None => tool_config(request)?,
    };
    let mut request_metadata: BTreeMap<&str, &str> = request
        .metadata
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    if !request.user.is_empty() {
        request_metadata.insert("user", &request.user);
    }
    let body = ConverseBody {
        messages,
        system,
        inference_config: InferenceConfig {
            max_tokens: request.max_tokens,
            temperature: request.temperature,
            top_p: request.top_p,
            stop_sequences: &request.stop,
        },
        tool_config,
        guardrail_config: extra.guardrail_config,
        additional_model_request_fields: extra.additional_model_request_fields,
        performance_config: extra.performance_config,
        request_metadata,
    };
    let body = serde_json::to_vec(&body)
        .map_err(|_| ServiceError::internal("the request could not be serialized"))?;
    Ok(ConverseRequest {
        body,
        structured_output_tool: structured.map(|structured| structured.name.to_owned()),
    })
}

fn unsupported(param: &str, what: &str) -> ServiceError {
    ServiceError::invalid_request(format!("Bedrock does not support {what}")).with_param(param)
}

/// Fails on request fields the Converse API has no equivalent for.
fn reject_unsupported(request: &ChatRequest) -> Result<(), ServiceError> {
    if request.n.is_some_and(|n| n > 1) {
        return Err(unsupported("n", "`n` greater than 1"));
    }
    if request.seed.is_some() {
        return Err(unsupported("seed", "`seed`"));
    }
    // A zero penalty is OpenAI's default: sending none is the same request.
    if request.presence_penalty.is_some_and(|value| value != 0.0) {
        return Err(unsupported("presence_penalty", "`presence_penalty`"));
    }
    if request.frequency_penalty.is_some_and(|value| value != 0.0) {
        return Err(unsupported("frequency_penalty", "`frequency_penalty`"));
    }
    if request.parallel_tool_calls == Some(false) {
        return Err(unsupported(
            "parallel_tool_calls",
            "`parallel_tool_calls: false` (models may always call tools in parallel)",
        ));
    }
    Ok(())
}

/// The `extra_json` fields Bedrock understands.
#[derive(Default)]
struct Extra<'a> {
    additional_model_request_fields: Option<&'a RawValue>,
    guardrail_config: Option<&'a RawValue>,
    performance_config: Option<&'a RawValue>,
}

impl<'a> Extra<'a> {
    fn parse(extra_json: &'a str) -> Result<Self, ServiceError> {
        if extra_json.trim().is_empty() {
            return Ok(Self::default());
        }
        let fields: BTreeMap<&str, &RawValue> = serde_json::from_str(extra_json).map_err(|_| {
            ServiceError::invalid_request("extra request fields are not a JSON object")
        })?;
        let mut extra = Self::default();
        for (key, value) in fields {
            let slot = match key {
                "additionalModelRequestFields" | "additional_model_request_fields" => {
                    if !value.get().trim_start().starts_with('{') {
                        return Err(ServiceError::invalid_request(format!(
                            "`{key}` must be a JSON object"
                        ))
                        .with_param(key));
                    }
                    &mut extra.additional_model_request_fields
                }
                "guardrailConfig" => &mut extra.guardrail_config,
                "performanceConfig" => &mut extra.performance_config,
                _ => {
                    return Err(unsupported(key, &format!("the request field `{key}`")));
                }
            };
            if slot.replace(value).is_some() {
                return Err(ServiceError::invalid_request(format!(
                    "`{key}` is given twice (camelCase and snake_case)"
                ))
                .with_param(key));
            }
        }
        Ok(extra)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConverseBody<'a> {
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<SystemBlock<'a>>,
    #[serde(skip_serializing_if = "InferenceConfig::is_empty")]
    inference_config: InferenceConfig<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    guardrail_config: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    additional_model_request_fields: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    performance_config: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    request_metadata: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InferenceConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
}

impl InferenceConfig<'_> {
    fn is_empty(&self) -> bool {
        self.max_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_empty()
    }
}

#[derive(Serialize)]
struct SystemBlock<'a> {
    text: &'a str,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Block<'a> {
    Text(&'a str),
    Image(ImageBlock<'a>),
    ToolUse(ToolUseBlock<'a>),
    ToolResult(ToolResultBlock<'a>),
}

#[derive(Serialize)]
struct ImageBlock<'a> {
    format: &'static str,
    source: ImageSource<'a>,
}

#[derive(Serialize)]
struct ImageSource<'a> {
    /// Base64, taken from the `data:` URL as is.
    bytes: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolUseBlock<'a> {
    tool_use_id: &'a str,
    name: &'a str,
    input: &'a RawValue,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolResultBlock<'a> {
    tool_use_id: &'a str,
    content: Vec<ToolResultContent<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum ToolResultContent<'a> {
    Text(&'a str),
    Json(&'a RawValue),
    Image(ImageBlock<'a>),
}

type Translated<'a> = (Vec<SystemBlock<'a>>, Vec<WireMessage<'a>>);

fn translate_messages(messages: &[pb::Message]) -> Result<Translated<'_>, ServiceError> {
    let mut system = Vec::new();
    let mut turns: Vec<WireMessage<'_>> = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        if !message.name.is_empty() {
            return Err(unsupported(
                &format!("messages[{index}].name"),
                "message `name`s",
            ));
        }
        let (role, blocks) = match message.role() {
            Role::System | Role::Developer => {
                for part in &message.content {
                    match &part.part {
                        Some(Part::Text(text)) if !text.is_empty() => {
                            system.push(SystemBlock { text });
                        }
                        Some(Part::ImageUrl(_)) => {
                            return Err(unsupported(
                                &format!("messages[{index}].content"),
                                "images in system messages",
                            ));
                        }
                        _ => {}
                    }
                }
                continue;
            }
            Role::User => ("user", content_blocks(index, message)?),
            Role::Assistant => ("assistant", assistant_blocks(index, message)?),
            Role::Tool => ("user", vec![tool_result(index, message)?]),
            Role::Unspecified => {
                return Err(
                    ServiceError::invalid_request(format!("message {index} has no role"))
                        .with_param(format!("messages[{index}].role")),
                );
            }
        };
        if blocks.is_empty() {
            // An empty turn carries nothing, and Bedrock rejects empty content.
            continue;
        }
        match turns.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => turns.push(WireMessage {
                role,
                content: blocks,
            }),
        }
    }
    Ok((system, turns))
}

fn content_blocks(index: usize, message: &pb::Message) -> Result<Vec<Block<'_>>, ServiceError> {
    let mut blocks = Vec::with_capacity(message.content.len());
    for part in &message.content {
        match &part.part {
            Some(Part::Text(text)) if !text.is_empty() => blocks.push(Block::Text(text)),
            Some(Part::ImageUrl(image)) => blocks.push(Block::Image(image_block(index, image)?)),
            _ => {}
        }
    }
    Ok(blocks)
}

fn assistant_blocks(index: usize, message: &pb::Message) -> Result<Vec<Block<'_>>, ServiceError> {
    let mut blocks = content_blocks(index, message)?;
    for call in &message.tool_calls {
        let input = if call.arguments.trim().is_empty() {
            empty_object()
        } else {
            serde_json::from_str::<&RawValue>(&call.arguments).map_err(|_| {
                ServiceError::invalid_request(format!(
                    "the arguments of tool call `{}` are not valid JSON",
                    call.id
                ))
                .with_param(format!("messages[{index}].tool_calls"))
            })?
        };
        blocks.push(Block::ToolUse(ToolUseBlock {
            tool_use_id: &call.id,
            name: &call.name,
            input,
        }));
    }
    Ok(blocks)
}

fn tool_result(index: usize, message: &pb::Message) -> Result<Block<'_>, ServiceError> {
    if message.tool_call_id.is_empty() {
        return Err(ServiceError::invalid_request(format!(
            "tool message {index} has no tool_call_id"
        ))
        .with_param(format!("messages[{index}].tool_call_id")));
    }
    let mut content = Vec::with_capacity(message.content.len());
    for part in &message.content {
        match &part.part {
            Some(Part::Text(text)) => {
                // A JSON object result is sent as a document, anything else as text.
                let json = text
                    .trim_start()
                    .starts_with('{')
                    .then(|| serde_json::from_str::<&RawValue>(text).ok())
                    .flatten();
                content.push(match json {
                    Some(json) => ToolResultContent::Json(json),
                    None => ToolResultContent::Text(text),
                });
            }
            Some(Part::ImageUrl(image)) => {
                content.push(ToolResultContent::Image(image_block(index, image)?));
            }
            None => {}
        }
    }
    Ok(Block::ToolResult(ToolResultBlock {
        tool_use_id: &message.tool_call_id,
        content,
    }))
}

fn image_block<'a>(index: usize, image: &'a pb::ImageUrl) -> Result<ImageBlock<'a>, ServiceError> {
    let param = || format!("messages[{index}].content");
    let Some(data) = image.url.strip_prefix("data:") else {
        return Err(ServiceError::invalid_request(
            "Bedrock needs inline images: send a base64 `data:` URL instead of an http(s) URL",
        )
        .with_param(param()));
    };
    let (meta, bytes) = data.split_once(',').unwrap_or((data, ""));
    let Some(media_type) = meta.strip_suffix(";base64") else {
        return Err(
            ServiceError::invalid_request("image `data:` URLs must be base64-encoded")
                .with_param(param()),
        );
    };
    let format = match media_type.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => {
            return Err(ServiceError::invalid_request(format!(
                "Bedrock accepts png, jpeg, gif and webp images, not `{media_type}`"
            ))
            .with_param(param()));
        }
    };
    Ok(ImageBlock {
        format,
        source: ImageSource { bytes },
    })
}

fn empty_object() -> &'static RawValue {
    // A constant that always parses; the fallback is unreachable.
    serde_json::from_str("{}").unwrap_or(RawValue::NULL)
}

#[cfg(test)]
mod tests {
    use switchyard_common::ErrorClass;
    use switchyard_proto::v1::{
        ContentPart, FunctionDefinition, ImageUrl, Message, ResponseFormat, ResponseFormatType,
        Tool, ToolCall, ToolChoice, ToolChoiceMode, tool_choice::Choice,
    };

    use super::*;

    fn text(role: Role, text: &str) -> Message {
        Message {
            role: role as i32,
            content: vec![ContentPart {
                part: Some(Part::Text(text.to_owned())),
            }],
            content_is_text: true,
            ..Message::default()
        }
    }

    fn image(url: &str) -> ContentPart {
        ContentPart {
            part: Some(Part::ImageUrl(ImageUrl {
                url: url.to_owned(),
                detail: String::new(),
            })),
        }
    }

    fn weather_tool() -> Tool {
        Tool {
            function: Some(FunctionDefinition {
                name: "get_weather".to_owned(),
                description: "Weather.".to_owned(),
                parameters_json: r#"{"type":"object","properties":{"location":{"type":"string"}}}"#
                    .to_owned(),
                strict: None,
            }),
        }
    }

    fn body(request: &ChatRequest) -> String {
        let translated = converse_request(request).expect("translatable");
        String::from_utf8(translated.body).expect("utf-8")
    }

    fn error(request: &ChatRequest) -> ServiceError {
        converse_request(request).expect_err("not translatable")
    }

    #[test]
    fn conversation_translates_to_alternating_turns() {
        let mut user = text(Role::User, "What is this?");
        user.content
            .push(image("data:image/png;base64,iVBORw0KGgo="));
        user.content_is_text = false;
        let request = ChatRequest {
            model: "m".to_owned(),
            messages: vec![
                text(Role::System, "Be brief."),
                text(Role::Developer, "Use tools."),
                user,
                Message {
                    tool_calls: vec![ToolCall {
                        id: "t1".to_owned(),
                        name: "get_weather".to_owned(),
                        arguments: r#"{"location":"Boston"}"#.to_owned(),
                    }],
                    ..text(Role::Assistant, "Checking.")
                },
                Message {
                    tool_call_id: "t1".to_owned(),
                    ..text(Role::Tool, r#"{"temp": 1.50}"#)
                },
                text(Role::User, "Thanks"),
            ],
            tools: vec![weather_tool()],
            tool_choice: Some(ToolChoice {
                choice: Some(Choice::Mode(ToolChoiceMode::Auto as i32)),
            }),
            temperature: Some(0.5),
            top_p: Some(0.9),
            max_tokens: Some(64),
            stop: vec!["END".to_owned()],
            n: Some(1),
            user: "u-1".to_owned(),
            extra_json: r#"{"additional_model_request_fields":{"top_k":5}}"#.to_owned(),
            ..ChatRequest::default()
        };
        let expected = concat!(
            r#"{"messages":["#,
            r#"{"role":"user","content":[{"text":"What is this?"},{"image":{"format":"png","source":{"bytes":"iVBORw0KGgo="}}}]},"#,
            r#"{"role":"assistant","content":[{"text":"Checking."},{"toolUse":{"toolUseId":"t1","name":"get_weather","input":{"location":"Boston"}}}]},"#,
            r#"{"role":"user","content":[{"toolResult":{"toolUseId":"t1","content":[{"json":{"temp": 1.50}}]}},{"text":"Thanks"}]}],"#,
            r#""system":[{"text":"Be brief."},{"text":"Use tools."}],"#,
            r#""inferenceConfig":{"maxTokens":64,"temperature":0.5,"topP":0.9,"stopSequences":["END"]},"#,
            r#""toolConfig":{"tools":[{"toolSpec":{"name":"get_weather","description":"Weather.","inputSchema":{"json":{"type":"object","properties":{"location":{"type":"string"}}}}}}],"toolChoice":{"auto":{}}},"#,
            r#""additionalModelRequestFields":{"top_k":5},"#,
            r#""requestMetadata":{"user":"u-1"}}"#,
        );
        assert_eq!(body(&request), expected);
    }

    #[test]
    fn tool_choice_modes() {
        let mut request = ChatRequest {
            messages: vec![text(Role::User, "Hi")],
            tools: vec![weather_tool()],
            tool_choice: Some(ToolChoice {
                choice: Some(Choice::Mode(ToolChoiceMode::Required as i32)),
            }),
            ..ChatRequest::default()
        };
        assert!(body(&request).contains(r#""toolChoice":{"any":{}}"#));
        request.tool_choice = Some(ToolChoice {
            choice: Some(Choice::FunctionName("get_weather".to_owned())),
        });
        assert!(body(&request).contains(r#""toolChoice":{"tool":{"name":"get_weather"}}"#));
        // `none` leaves the tools out...
        request.tool_choice = Some(ToolChoice {
            choice: Some(Choice::Mode(ToolChoiceMode::None as i32)),
        });
        assert_eq!(
            body(&request),
            r#"{"messages":[{"role":"user","content":[{"text":"Hi"}]}]}"#
        );
        // ...which is not the same once the conversation has tool calls.
        request.messages.push(Message {
            tool_call_id: "t".to_owned(),
            ..text(Role::Tool, "1")
        });
        assert_eq!(error(&request).param.as_deref(), Some("tool_choice"));
        request.tools.clear();
        request.messages.truncate(1);
        request.tool_choice = Some(ToolChoice {
            choice: Some(Choice::Mode(ToolChoiceMode::Required as i32)),
        });
        assert_eq!(error(&request).param.as_deref(), Some("tool_choice"));
    }

    #[test]
    fn response_format_becomes_a_forced_tool() {
        let mut request = ChatRequest {
            messages: vec![text(Role::User, "Hi")],
            response_format: Some(ResponseFormat {
                r#type: ResponseFormatType::JsonSchema as i32,
                json_schema_json:
                    r#"{"name":"reply","description":"The \"reply\".","schema":{"type":"object"},"strict":true}"#
                        .to_owned(),
            }),
            ..ChatRequest::default()
        };
        let translated = converse_request(&request).expect("translatable");
        assert_eq!(translated.structured_output_tool.as_deref(), Some("reply"));
        assert!(
            String::from_utf8(translated.body)
                .expect("utf-8")
                .contains(concat!(
                    r#""toolConfig":{"tools":[{"toolSpec":{"name":"reply","description":"The \"reply\".","#,
                    r#""inputSchema":{"json":{"type":"object"}}}}],"toolChoice":{"tool":{"name":"reply"}}}"#
                ))
        );
        request.response_format = Some(ResponseFormat {
            r#type: ResponseFormatType::JsonObject as i32,
            json_schema_json: String::new(),
        });
        let translated = converse_request(&request).expect("translatable");
        assert_eq!(
            translated.structured_output_tool.as_deref(),
            Some(JSON_OBJECT_TOOL)
        );
        request.tools = vec![weather_tool()];
        assert_eq!(error(&request).param.as_deref(), Some("response_format"));
    }

    #[test]
    fn unsupported_features_are_refused_by_name() {
        let base = ChatRequest {
            messages: vec![text(Role::User, "Hi")],
            ..ChatRequest::default()
        };
        let cases: Vec<(ChatRequest, &str)> = vec![
            (
                ChatRequest {
                    n: Some(2),
                    ..base.clone()
                },
                "n",
            ),
            (
                ChatRequest {
                    seed: Some(1),
                    ..base.clone()
                },
                "seed",
            ),
            (
                ChatRequest {
                    presence_penalty: Some(0.5),
                    ..base.clone()
                },
                "presence_penalty",
            ),
            (
                ChatRequest {
                    frequency_penalty: Some(0.5),
                    ..base.clone()
                },
                "frequency_penalty",
            ),
            (
                ChatRequest {
                    parallel_tool_calls: Some(false),
                    ..base.clone()
                },
                "parallel_tool_calls",
            ),
            (
                ChatRequest {
                    extra_json: r#"{"logprobs":true}"#.to_owned(),
                    ..base.clone()
                },
                "logprobs",
            ),
            (
                ChatRequest {
                    messages: vec![Message {
                        content: vec![image("https://example.com/cat.png")],
                        ..text(Role::User, "")
                    }],
                    ..base.clone()
                },
                "messages[0].content",
            ),
            (
                ChatRequest {
                    messages: vec![Message {
                        name: "ann".to_owned(),
                        ..text(Role::User, "Hi")
                    }],
                    ..base.clone()
                },
                "messages[0].name",
            ),
        ];
        for (request, param) in cases {
            let error = error(&request);
            assert_eq!(error.class, ErrorClass::InvalidRequest, "{param}");
            assert_eq!(error.param.as_deref(), Some(param));
            let feature = param.rsplit('.').next().unwrap_or(param);
            assert!(
                error.message.contains(feature) || error.message.contains("inline"),
                "{param}: {}",
                error.message
            );
        }
        // Zero penalties are OpenAI's defaults: nothing to refuse.
        let zero = ChatRequest {
            presence_penalty: Some(0.0),
            frequency_penalty: Some(0.0),
            parallel_tool_calls: Some(true),
            ..base
        };
        assert!(converse_request(&zero).is_ok());
    }

    #[test]
    fn images_need_a_supported_base64_data_url() {
        let message = |url: &str| ChatRequest {
            messages: vec![Message {
                content: vec![image(url)],
                ..text(Role::User, "")
            }],
            ..ChatRequest::default()
        };
        assert!(body(&message("data:image/jpeg;base64,/9j/")).contains(r#""format":"jpeg""#));
        assert!(body(&message("data:image/webp;base64,UklG")).contains(r#""format":"webp""#));
        assert!(
            error(&message("data:image/png,rawbytes"))
                .message
                .contains("base64")
        );
        assert!(
            error(&message("data:image/tiff;base64,AAAA"))
                .message
                .contains("tiff")
        );
        let error = error(&message("https://x/cat.png"));
        assert!(
            error.message.contains("Bedrock needs inline images"),
            "{}",
            error.message
        );
    }
}

//! Canonical [`ChatRequest`] to the Anthropic Messages request body.
//!
//! Features Anthropic cannot express fail with `invalid_request` naming
//! them (`n` > 1, `seed`, non-zero presence or frequency penalties, unknown
//! passthrough fields such as `logprobs`); nothing is silently dropped that
//! changes the answer. OpenAI `metadata` (only meaningful with `store`) is
//! not sent; `user` becomes `metadata.user_id`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::value::RawValue;
use switchyard_common::ServiceError;
use switchyard_proto::v1::ChatRequest;

use super::{
    messages::{self, WireMessage, WireSystem},
    tools::{self, WireTool, WireToolChoice},
};

/// Passthrough (`extra_json`) fields Anthropic understands, sent as given.
const PASSTHROUGH_FIELDS: [&str; 3] = ["top_k", "thinking", "service_tier"];

/// A translated request.
#[derive(Debug)]
pub struct Translated {
    /// The JSON body.
    pub body: Vec<u8>,
    /// The forced tool standing in for `response_format`, if any.
    pub structured_tool: Option<String>,
}

/// Serializes `request` as an Anthropic `POST /v1/messages` body;
/// `default_max_tokens` applies when the request sets no limit.
pub fn translate(
    request: &ChatRequest,
    default_max_tokens: u32,
) -> Result<Translated, ServiceError> {
    reject_unsupported(request)?;
    let extra = passthrough_fields(&request.extra_json)?;
    let conversation = messages::conversation(&request.messages)?;
    let setup = tools::tool_setup(request)?;
    let body = MessagesBody {
        model: &request.model,
        max_tokens: request.max_tokens.unwrap_or(default_max_tokens),
        system: conversation.system,
        messages: conversation.messages,
        tools: setup.tools,
        tool_choice: setup.tool_choice,
        temperature: request.temperature,
        top_p: request.top_p,
        stop_sequences: &request.stop,
        metadata: (!request.user.is_empty()).then_some(Metadata {
            user_id: &request.user,
        }),
        stream: request.stream.then_some(true),
        extra,
    };
    let body = serde_json::to_vec(&body)
        .map_err(|_| ServiceError::internal("the request could not be serialized"))?;
    Ok(Translated {
        body,
        structured_tool: setup.structured_tool.map(str::to_owned),
    })
}

/// The body; fields in the order of Anthropic's API reference.
#[derive(Serialize)]
struct MessagesBody<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<WireSystem<'a>>,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(flatten)]
    extra: BTreeMap<String, &'a RawValue>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}

/// Fails on modelled fields Anthropic has no equivalent for.
fn reject_unsupported(request: &ChatRequest) -> Result<(), ServiceError> {
    let unsupported = |what: &str, param: &str| {
        Err(
            ServiceError::invalid_request(format!("Anthropic does not support {what}"))
                .with_param(param),
        )
    };
    if request.n.is_some_and(|n| n > 1) {
        return unsupported("`n` greater than 1 (several choices per request)", "n");
    }
    if request.seed.is_some() {
        return unsupported("`seed`", "seed");
    }
    // Zero is the default everywhere: asking for it asks for nothing.
    if request.presence_penalty.is_some_and(|value| value != 0.0) {
        return unsupported("`presence_penalty`", "presence_penalty");
    }
    if request.frequency_penalty.is_some_and(|value| value != 0.0) {
        return unsupported("`frequency_penalty`", "frequency_penalty");
    }
    Ok(())
}

/// Parses `extra_json`, keeping the fields Anthropic understands and failing
/// on any other (a `null` field asks for nothing and is left out).
fn passthrough_fields(extra_json: &str) -> Result<BTreeMap<String, &RawValue>, ServiceError> {
    if extra_json.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut fields: BTreeMap<String, &RawValue> = serde_json::from_str(extra_json)
        .map_err(|_| ServiceError::invalid_request("extra request fields are not a JSON object"))?;
    fields.retain(|_, value| value.get() != "null");
    let unknown: Vec<&str> = fields
        .keys()
        .map(String::as_str)
        .filter(|key| !PASSTHROUGH_FIELDS.contains(key))
        .collect();
    if let Some(first) = unknown.first() {
        let names = unknown
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ServiceError::invalid_request(format!(
            "Anthropic does not support the request parameter(s) {names}"
        ))
        .with_param(*first));
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use switchyard_proto::v1::{
        ContentPart, FunctionDefinition, ImageUrl, Message, Role, Tool, ToolChoice, ToolChoiceMode,
        content_part::Part, tool_choice::Choice,
    };

    use super::*;

    fn message(role: Role, text: &str) -> Message {
        Message {
            role: role as i32,
            content: vec![ContentPart {
                part: Some(Part::Text(text.to_owned())),
            }],
            content_is_text: true,
            ..Message::default()
        }
    }

    fn body_text(request: &ChatRequest) -> String {
        let translated = translate(request, 4096).expect("a valid request");
        String::from_utf8(translated.body).expect("utf-8")
    }

    fn tool(name: &str, parameters: &str) -> Tool {
        Tool {
            function: Some(FunctionDefinition {
                name: name.to_owned(),
                parameters_json: parameters.to_owned(),
                ..FunctionDefinition::default()
            }),
        }
    }

    #[test]
    fn minimal_request_has_a_default_max_tokens_and_plain_strings() {
        let request = ChatRequest {
            model: "claude-haiku-4-5".to_owned(),
            messages: vec![
                message(Role::User, "Hi"),
                message(Role::Assistant, "Hello"),
                message(Role::Assistant, "there"),
            ],
            max_tokens: None,
            ..ChatRequest::default()
        };
        assert_eq!(
            body_text(&request),
            concat!(
                r#"{"model":"claude-haiku-4-5","max_tokens":4096,"messages":["#,
                r#"{"role":"user","content":"Hi"},"#,
                r#"{"role":"assistant","content":[{"type":"text","text":"Hello"},{"type":"text","text":"there"}]}]}"#
            )
        );
    }

    #[test]
    fn schemas_are_sent_byte_for_byte_and_tool_choices_translate() {
        let mut request = ChatRequest {
            model: "m".to_owned(),
            messages: vec![message(Role::User, "Hi")],
            tools: vec![
                tool(
                    "f",
                    r#"{"type":"object","properties":{"x":{"maximum":1.50}}}"#,
                ),
                tool("g", ""),
            ],
            tool_choice: Some(ToolChoice {
                choice: Some(Choice::FunctionName("f".to_owned())),
            }),
            parallel_tool_calls: Some(false),
            max_tokens: Some(7),
            ..ChatRequest::default()
        };
        assert!(body_text(&request).contains(concat!(
            r#""tools":[{"name":"f","input_schema":{"type":"object","properties":{"x":{"maximum":1.50}}}},"#,
            r#"{"name":"g","input_schema":{"type":"object","properties":{}}}],"#,
            r#""tool_choice":{"type":"tool","name":"f","disable_parallel_tool_use":true}"#
        )));
        request.tool_choice = Some(ToolChoice {
            choice: Some(Choice::Mode(ToolChoiceMode::None as i32)),
        });
        assert!(body_text(&request).contains(r#""tool_choice":{"type":"none"}"#));
        request.parallel_tool_calls = None;
        request.tool_choice = None;
        assert!(!body_text(&request).contains("tool_choice"));
    }

    #[test]
    fn impossible_requests_name_the_parameter() {
        let base = ChatRequest {
            model: "m".to_owned(),
            messages: vec![message(Role::User, "Hi")],
            ..ChatRequest::default()
        };
        let forced_without_tools = ChatRequest {
            tool_choice: Some(ToolChoice {
                choice: Some(Choice::Mode(ToolChoiceMode::Required as i32)),
            }),
            ..base.clone()
        };
        let image = |url: &str| Message {
            content: vec![ContentPart {
                part: Some(Part::ImageUrl(ImageUrl {
                    url: url.to_owned(),
                    detail: String::new(),
                })),
            }],
            content_is_text: false,
            ..message(Role::User, "")
        };
        let ftp_image = ChatRequest {
            messages: vec![image("ftp://x/cat.png")],
            ..base.clone()
        };
        let system_image = ChatRequest {
            messages: vec![Message {
                role: Role::System as i32,
                ..image("https://x/cat.png")
            }],
            ..base.clone()
        };
        let not_base64 = ChatRequest {
            messages: vec![image("data:image/png,abc")],
            ..base.clone()
        };
        let unknown_extra = ChatRequest {
            extra_json: r#"{"store":true,"top_logprobs":2,"reasoning_effort":null}"#.to_owned(),
            ..base
        };
        let cases = [
            (forced_without_tools, "tool_choice"),
            (ftp_image, "messages[0].content"),
            (system_image, "messages[0].content"),
            (not_base64, "messages[0].content"),
            (unknown_extra, "store"),
        ];
        for (request, param) in cases {
            let error = translate(&request, 1).expect_err("refused");
            assert_eq!(error.param.as_deref(), Some(param), "{error:?}");
        }
    }
}

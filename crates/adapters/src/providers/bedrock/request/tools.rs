//! `tools`, `tool_choice` and `response_format` to a Converse `toolConfig`.
//!
//! Bedrock has no structured-output switch that works for every model, so
//! `response_format` (`json_object`, `json_schema`) is emulated the way
//! Bedrock's own documentation suggests: one tool whose input schema is the
//! wanted schema, forced with `toolChoice.tool`; its input is the answer.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::value::RawValue;
use switchyard_common::ServiceError;
use switchyard_proto::v1::{
    self as pb, ChatRequest, ResponseFormatType, Role, ToolChoiceMode, tool_choice::Choice,
};

use super::{JSON_OBJECT_TOOL, unsupported};

/// A `toolConfig`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig<'a> {
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireToolChoice<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireTool<'a> {
    tool_spec: ToolSpec<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolSpec<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    input_schema: InputSchema<'a>,
}

#[derive(Serialize)]
struct InputSchema<'a> {
    json: &'a RawValue,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum WireToolChoice<'a> {
    Auto(Empty),
    Any(Empty),
    Tool(NamedTool<'a>),
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct NamedTool<'a> {
    name: &'a str,
}

/// `tools` and `tool_choice` to a `toolConfig`; `None` when no tool may be called.
pub fn tool_config(request: &ChatRequest) -> Result<Option<ToolConfig<'_>>, ServiceError> {
    let choice = request
        .tool_choice
        .as_ref()
        .and_then(|choice| choice.choice.as_ref());
    let tool_choice = match choice {
        None => None,
        Some(Choice::FunctionName(name)) => Some(WireToolChoice::Tool(NamedTool { name })),
        Some(Choice::Mode(mode)) => match ToolChoiceMode::try_from(*mode) {
            Ok(ToolChoiceMode::Auto) => Some(WireToolChoice::Auto(Empty {})),
            Ok(ToolChoiceMode::Required) => Some(WireToolChoice::Any(Empty {})),
            Ok(ToolChoiceMode::None) => return tool_choice_none(request),
            Ok(ToolChoiceMode::Unspecified) | Err(_) => None,
        },
    };
    if request.tools.is_empty() {
        if tool_choice.is_some() {
            return Err(ServiceError::invalid_request("`tool_choice` needs `tools`")
                .with_param("tool_choice"));
        }
        return Ok(None);
    }
    let tools = request
        .tools
        .iter()
        .map(wire_tool)
        .collect::<Result<_, _>>()?;
    Ok(Some(ToolConfig { tools, tool_choice }))
}

/// Bedrock has no `none` choice: tools are left out, which is the same
/// unless the conversation already holds tool calls (Bedrock then requires
/// the tools to be declared, and would let the model call them).
fn tool_choice_none(request: &ChatRequest) -> Result<Option<ToolConfig<'_>>, ServiceError> {
    let has_tool_turns = request
        .messages
        .iter()
        .any(|message| !message.tool_calls.is_empty() || message.role() == Role::Tool);
    if has_tool_turns && !request.tools.is_empty() {
        return Err(unsupported(
            "tool_choice",
            "`tool_choice: none` in a conversation that already has tool calls",
        ));
    }
    Ok(None)
}

fn wire_tool(tool: &pb::Tool) -> Result<WireTool<'_>, ServiceError> {
    let function = tool.function.as_ref().ok_or_else(|| {
        ServiceError::invalid_request("a tool has no function").with_param("tools")
    })?;
    let schema = if function.parameters_json.trim().is_empty() {
        empty_object_schema()
    } else {
        serde_json::from_str(&function.parameters_json).map_err(|_| {
            ServiceError::invalid_request(format!(
                "the parameters of tool `{}` are not valid JSON",
                function.name
            ))
            .with_param("tools")
        })?
    };
    Ok(WireTool {
        tool_spec: ToolSpec {
            name: &function.name,
            description: &function.description,
            input_schema: InputSchema { json: schema },
        },
    })
}

fn empty_object_schema() -> &'static RawValue {
    serde_json::from_str(r#"{"type":"object","properties":{}}"#).unwrap_or(RawValue::NULL)
}

/// `response_format` emulated with a forced tool call: the model must call
/// one tool whose input schema is the wanted schema; its input is the answer.
pub struct StructuredOutput<'a> {
    /// The tool's name.
    pub name: &'a str,
    description: Cow<'a, str>,
    schema: &'a RawValue,
}

#[derive(serde::Deserialize)]
struct JsonSchemaFormat<'a> {
    #[serde(borrow)]
    name: &'a str,
    #[serde(default, borrow)]
    description: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    schema: Option<&'a RawValue>,
}

impl<'a> StructuredOutput<'a> {
    /// Returns the emulation of `request.response_format`, if it asks for JSON.
    pub fn new(request: &'a ChatRequest) -> Result<Option<Self>, ServiceError> {
        let Some(format) = request.response_format.as_ref() else {
            return Ok(None);
        };
        let structured = match format.r#type() {
            ResponseFormatType::Unspecified | ResponseFormatType::Text => return Ok(None),
            ResponseFormatType::JsonObject => Self {
                name: JSON_OBJECT_TOOL,
                description: Cow::Borrowed("Answers with a JSON object."),
                schema: empty_object_schema(),
            },
            ResponseFormatType::JsonSchema => {
                let parsed: JsonSchemaFormat<'a> = serde_json::from_str(&format.json_schema_json)
                    .map_err(|_| {
                    ServiceError::invalid_request(
                        "`response_format.json_schema` needs a `name` and a `schema`",
                    )
                    .with_param("response_format")
                })?;
                Self {
                    name: parsed.name,
                    description: parsed
                        .description
                        .unwrap_or(Cow::Borrowed("Answers in the required JSON format.")),
                    schema: parsed.schema.unwrap_or(empty_object_schema()),
                }
            }
        };
        if !request.tools.is_empty() {
            return Err(unsupported(
                "response_format",
                "`response_format` together with `tools` (it is emulated with a forced tool call)",
            ));
        }
        Ok(Some(structured))
    }

    /// Returns the `toolConfig` forcing the call.
    pub fn tool_config(&self) -> ToolConfig<'_> {
        ToolConfig {
            tools: vec![WireTool {
                tool_spec: ToolSpec {
                    name: self.name,
                    description: &self.description,
                    input_schema: InputSchema { json: self.schema },
                },
            }],
            tool_choice: Some(WireToolChoice::Tool(NamedTool { name: self.name })),
        }
    }
}

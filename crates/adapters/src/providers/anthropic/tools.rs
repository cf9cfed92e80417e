//! Tools, `tool_choice`, `parallel_tool_calls` and structured output.
//!
//! Anthropic's stable API has no JSON mode, so `response_format` becomes a
//! forced tool: `json_schema` declares one tool named after the schema whose
//! `input_schema` is the schema, `json_object` one tool (`json_response`)
//! accepting any object, and `tool_choice` forces it. The response side
//! turns that tool's input back into message content (see `response`).
//! Such a request cannot declare its own tools as well.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use switchyard_common::ServiceError;
use switchyard_proto::v1::{
    self as pb, ChatRequest, ResponseFormatType, ToolChoiceMode, tool_choice::Choice,
};

/// Name of the forced tool standing in for `json_object`.
pub const JSON_OBJECT_TOOL: &str = "json_response";
/// Schema of that tool: any object.
const ANY_OBJECT_SCHEMA: &str = r#"{"type":"object","additionalProperties":true}"#;
/// Schema of a declared tool without parameters.
const NO_PARAMETERS_SCHEMA: &str = r#"{"type":"object","properties":{}}"#;
/// Description of the forced tool when the schema has none.
const STRUCTURED_DESCRIPTION: &str =
    "Gives the answer as JSON. Always answer by calling this tool; its input is the answer.";

/// A tool declaration.
#[derive(Debug, Serialize)]
pub struct WireTool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    input_schema: &'a RawValue,
}

/// The `tool_choice` object.
#[derive(Debug, Serialize)]
pub struct WireToolChoice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disable_parallel_tool_use: Option<bool>,
}

/// What the request declares about tools.
#[derive(Debug, Default)]
pub struct ToolSetup<'a> {
    /// `tools`; empty when none.
    pub tools: Vec<WireTool<'a>>,
    /// `tool_choice`, when one is needed.
    pub tool_choice: Option<WireToolChoice<'a>>,
    /// Name of the forced tool standing in for `response_format`.
    pub structured_tool: Option<&'a str>,
}

/// OpenAI's `json_schema` object.
#[derive(Deserialize)]
struct JsonSchemaFormat<'a> {
    #[serde(default, borrow)]
    name: Option<&'a str>,
    #[serde(default, borrow)]
    description: Option<&'a str>,
    #[serde(default, borrow)]
    schema: Option<&'a RawValue>,
}

/// Translates tools, tool choice and `response_format`.
pub fn tool_setup(request: &ChatRequest) -> Result<ToolSetup<'_>, ServiceError> {
    if let Some(setup) = structured_output(request)? {
        return Ok(setup);
    }
    let tools = request
        .tools
        .iter()
        .enumerate()
        .map(|(index, tool)| declared_tool(index, tool))
        .collect::<Result<Vec<_>, _>>()?;
    let choice = request
        .tool_choice
        .as_ref()
        .and_then(|choice| choice.choice.as_ref());
    let (kind, name) = match choice {
        Some(Choice::FunctionName(name)) => ("tool", Some(name.as_str())),
        Some(Choice::Mode(mode)) => match ToolChoiceMode::try_from(*mode) {
            Ok(ToolChoiceMode::None) => ("none", None),
            Ok(ToolChoiceMode::Required) => ("any", None),
            Ok(ToolChoiceMode::Auto | ToolChoiceMode::Unspecified) | Err(_) => ("auto", None),
        },
        None => ("auto", None),
    };
    if tools.is_empty() {
        if matches!(kind, "any" | "tool") {
            return Err(ServiceError::invalid_request(
                "`tool_choice` requires a tool, but the request declares no `tools`",
            )
            .with_param("tool_choice"));
        }
        // Nothing to choose from: `none`, `auto` and `parallel_tool_calls` change nothing.
        return Ok(ToolSetup::default());
    }
    let disable_parallel_tool_use =
        (request.parallel_tool_calls == Some(false) && kind != "none").then_some(true);
    let tool_choice =
        (choice.is_some() || disable_parallel_tool_use.is_some()).then_some(WireToolChoice {
            kind,
            name,
            disable_parallel_tool_use,
        });
    Ok(ToolSetup {
        tools,
        tool_choice,
        structured_tool: None,
    })
}

fn declared_tool(index: usize, tool: &pb::Tool) -> Result<WireTool<'_>, ServiceError> {
    let function = tool.function.as_ref().ok_or_else(|| {
        ServiceError::invalid_request(format!("tool {index} has no function"))
            .with_param(format!("tools[{index}]"))
    })?;
    let input_schema = if function.parameters_json.trim().is_empty() {
        raw(NO_PARAMETERS_SCHEMA)
    } else {
        serde_json::from_str(&function.parameters_json).map_err(|_| {
            ServiceError::invalid_request(format!(
                "the parameters of tool `{}` are not valid JSON",
                function.name
            ))
            .with_param(format!("tools[{index}].function.parameters"))
        })?
    };
    Ok(WireTool {
        name: &function.name,
        description: &function.description,
        input_schema,
    })
}

/// The forced tool for `json_object` and `json_schema`; `None` for text.
fn structured_output(request: &ChatRequest) -> Result<Option<ToolSetup<'_>>, ServiceError> {
    let Some(format) = request.response_format.as_ref() else {
        return Ok(None);
    };
    let tool = match format.r#type() {
        ResponseFormatType::Unspecified | ResponseFormatType::Text => return Ok(None),
        ResponseFormatType::JsonObject => WireTool {
            name: JSON_OBJECT_TOOL,
            description: STRUCTURED_DESCRIPTION,
            input_schema: raw(ANY_OBJECT_SCHEMA),
        },
        ResponseFormatType::JsonSchema => {
            let invalid = |why: &str| {
                ServiceError::invalid_request(format!("`response_format.json_schema` {why}"))
                    .with_param("response_format")
            };
            let format: JsonSchemaFormat<'_> = serde_json::from_str(&format.json_schema_json)
                .map_err(|_| invalid("is not a valid JSON object"))?;
            let name = format
                .name
                .filter(|name| !name.is_empty())
                .unwrap_or(JSON_OBJECT_TOOL);
            if name.len() > 64
                || !name
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
            {
                return Err(invalid(
                    "has a `name` Anthropic cannot use as a tool name (letters, digits, `_`, `-`, at most 64)",
                ));
            }
            WireTool {
                name,
                description: format
                    .description
                    .filter(|text| !text.is_empty())
                    .unwrap_or(STRUCTURED_DESCRIPTION),
                input_schema: format.schema.unwrap_or_else(|| raw(ANY_OBJECT_SCHEMA)),
            }
        }
    };
    if !request.tools.is_empty() {
        return Err(ServiceError::invalid_request(
            "Anthropic cannot combine `response_format` (json_object or json_schema) with `tools`: \
             structured output is implemented with a forced tool",
        )
        .with_param("response_format"));
    }
    let name = tool.name;
    Ok(Some(ToolSetup {
        tools: vec![tool],
        tool_choice: Some(WireToolChoice {
            kind: "tool",
            name: Some(name),
            disable_parallel_tool_use: None,
        }),
        structured_tool: Some(name),
    }))
}

/// A constant JSON text as a raw value.
fn raw(text: &'static str) -> &'static RawValue {
    serde_json::from_str(text).expect("constant schemas are valid JSON")
}

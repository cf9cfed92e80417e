//! Canonical [`ChatRequest`] to a Gemini `GenerateContentRequest` body.
//!
//! - System and developer messages become `systemInstruction`; the others
//!   become `contents` turns (`user`, or `model` for the assistant), and
//!   consecutive turns of one role merge, as Gemini expects turns to alternate.
//! - Tool results become `functionResponse` parts of a `user` turn, named
//!   after the call they answer (looked up by tool call id).
//! - Tool parameters and `json_schema` schemas travel as JSON Schema
//!   (`parametersJsonSchema`, `responseJsonSchema`), byte for byte: the
//!   OpenAPI-subset `parameters`/`responseSchema` fields reject common JSON
//!   Schema keys (`additionalProperties`, `$schema`, `const`, ...).
//! - Anything Gemini cannot express fails with an `invalid_request` naming it.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use switchyard_common::ServiceError;
use switchyard_proto::v1::{
    self as pb, ChatRequest, ResponseFormatType, Role, ToolChoiceMode, content_part::Part,
    tool_choice::Choice,
};

use super::{GeminiApi, call_id};

/// Serializes `request` as a `generateContent` body for `api`.
pub fn generate_content_body(
    request: &ChatRequest,
    api: GeminiApi,
) -> Result<Vec<u8>, ServiceError> {
    let body = Body::new(request, api)?;
    serde_json::to_vec(&body)
        .map_err(|_| ServiceError::internal("the request could not be serialized"))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<SystemInstruction<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    safety_settings: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "GenerationConfig::is_empty")]
    generation_config: GenerationConfig<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<&'a BTreeMap<String, String>>,
}

impl<'a> Body<'a> {
    fn new(request: &'a ChatRequest, api: GeminiApi) -> Result<Self, ServiceError> {
        if request.parallel_tool_calls == Some(false) {
            return Err(unsupported(
                "`parallel_tool_calls: false` cannot be expressed for Gemini",
                "parallel_tool_calls",
            ));
        }
        // `user` (and `metadata` on the Gemini API) are the client's
        // accounting data: they stay in the gateway. Vertex AI takes
        // `metadata` as request labels.
        let labels = match api {
            GeminiApi::Vertex if !request.metadata.is_empty() => Some(&request.metadata),
            GeminiApi::Vertex | GeminiApi::GenerativeLanguage => None,
        };
        let (contents, system_parts) = translate_messages(&request.messages)?;
        let tools = translate_tools(&request.tools)?;
        Ok(Self {
            contents,
            system_instruction: (!system_parts.is_empty()).then_some(SystemInstruction {
                parts: system_parts,
            }),
            tools,
            tool_config: request.tool_choice.as_ref().and_then(ToolConfig::new),
            safety_settings: safety_settings(&request.extra_json)?,
            generation_config: GenerationConfig::new(request)?,
            labels,
        })
    }
}

fn unsupported(message: &str, param: &str) -> ServiceError {
    ServiceError::invalid_request(message).with_param(param)
}

#[derive(Serialize)]
struct Content<'a> {
    role: &'static str,
    parts: Vec<WirePart<'a>>,
}

#[derive(Serialize)]
struct SystemInstruction<'a> {
    parts: Vec<WirePart<'a>>,
}

/// One `Part`: exactly one of the data fields is set.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct WirePart<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inline_data: Option<InlineData<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_data: Option<FileData<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_call: Option<FunctionCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_response: Option<FunctionResponse<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought_signature: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    media_resolution: Option<MediaResolution>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InlineData<'a> {
    mime_type: &'a str,
    data: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileData<'a> {
    mime_type: &'static str,
    file_uri: &'a str,
}

/// Per-part media resolution (OpenAI image `detail`).
#[derive(Serialize)]
struct MediaResolution {
    level: &'static str,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    args: &'a RawValue,
}

#[derive(Serialize)]
struct FunctionResponse<'a> {
    name: &'a str,
    response: ToolResponse,
}

#[derive(Serialize)]
struct ToolResponse {
    content: ToolOutput,
}

/// A tool's result: JSON when the text parses as JSON, else the text.
enum ToolOutput {
    Json(Box<RawValue>),
    Text(String),
}

impl Serialize for ToolOutput {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Json(value) => value.serialize(serializer),
            Self::Text(text) => serializer.serialize_str(text),
        }
    }
}

/// Returns the `contents` turns and the system instruction's parts.
fn translate_messages(
    messages: &[pb::Message],
) -> Result<(Vec<Content<'_>>, Vec<WirePart<'_>>), ServiceError> {
    let mut contents: Vec<Content<'_>> = Vec::new();
    let mut system_parts = Vec::new();
    // Tool call id -> function name, from the assistant turns seen so far
    // (a later turn's id wins, so reused ids like `call_0` resolve to the
    // most recent call).
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    for (index, message) in messages.iter().enumerate() {
        let role = message.role();
        if !message.name.is_empty() && role != Role::Tool {
            return Err(unsupported(
                "Gemini has no participant names (message `name`)",
                &format!("messages[{index}].name"),
            ));
        }
        match role {
            Role::System | Role::Developer => {
                system_parts.extend(text_parts(index, message, "system")?);
            }
            Role::User => {
                let parts = message
                    .content
                    .iter()
                    .filter_map(|part| user_part(index, part).transpose())
                    .collect::<Result<Vec<_>, _>>()?;
                push_turn(&mut contents, "user", parts);
            }
            Role::Assistant => {
                let mut parts = text_parts(index, message, "assistant")?;
                for (position, call) in message.tool_calls.iter().enumerate() {
                    call_names.insert(call.id.as_str(), call.name.as_str());
                    parts.push(function_call_part(index, position, call)?);
                }
                push_turn(&mut contents, "model", parts);
            }
            Role::Tool => {
                let name = call_names
                    .get(message.tool_call_id.as_str())
                    .copied()
                    .or_else(|| (!message.name.is_empty()).then_some(message.name.as_str()))
                    .ok_or_else(|| {
                        unsupported(
                            &format!(
                                "tool message {index} answers `{}`, which no earlier assistant message called; Gemini needs the function's name",
                                message.tool_call_id
                            ),
                            &format!("messages[{index}].tool_call_id"),
                        )
                    })?;
                let part = WirePart {
                    function_response: Some(FunctionResponse {
                        name,
                        response: ToolResponse {
                            content: tool_output(message),
                        },
                    }),
                    ..WirePart::default()
                };
                push_turn(&mut contents, "user", vec![part]);
            }
            Role::Unspecified => {
                return Err(unsupported(
                    &format!("message {index} has no role"),
                    &format!("messages[{index}].role"),
                ));
            }
        }
    }
    Ok((contents, system_parts))
}

/// Appends parts to the last turn when it has the same role, else starts one.
fn push_turn<'a>(contents: &mut Vec<Content<'a>>, role: &'static str, parts: Vec<WirePart<'a>>) {
    if parts.is_empty() {
        return;
    }
    match contents.last_mut() {
        Some(last) if last.role == role => last.parts.extend(parts),
        _ => contents.push(Content { role, parts }),
    }
}

/// The non-empty text parts of a message that may hold only text.
fn text_parts<'a>(
    index: usize,
    message: &'a pb::Message,
    kind: &str,
) -> Result<Vec<WirePart<'a>>, ServiceError> {
    message
        .content
        .iter()
        .filter_map(|part| match part.part.as_ref()? {
            Part::Text(text) if text.is_empty() => None,
            Part::Text(text) => Some(Ok(WirePart {
                text: Some(text),
                ..WirePart::default()
            })),
            Part::ImageUrl(_) => Some(Err(unsupported(
                &format!("Gemini takes images only in user messages, not in {kind} messages"),
                &format!("messages[{index}].content"),
            ))),
        })
        .collect()
}

fn user_part<'a>(
    index: usize,
    part: &'a pb::ContentPart,
) -> Result<Option<WirePart<'a>>, ServiceError> {
    let part = match part.part.as_ref() {
        None => return Ok(None),
        Some(Part::Text(text)) if text.is_empty() => return Ok(None),
        Some(Part::Text(text)) => WirePart {
            text: Some(text),
            ..WirePart::default()
        },
        Some(Part::ImageUrl(image)) => image_part(index, image)?,
    };
    Ok(Some(part))
}

fn image_part(index: usize, image: &pb::ImageUrl) -> Result<WirePart<'_>, ServiceError> {
    let param = || format!("messages[{index}].content");
    let url = image.url.as_str();
    let mut part = if let Some(data_url) = url.strip_prefix("data:") {
        let (meta, data) = data_url.split_once(',').unwrap_or((data_url, ""));
        let mime_type = meta
            .strip_suffix(";base64")
            .filter(|mime| !mime.is_empty() && !mime.contains(';'));
        let Some(mime_type) = mime_type.filter(|_| !data.is_empty()) else {
            return Err(unsupported(
                "an image `data:` URL must be `data:<mime type>;base64,<data>`",
                &param(),
            ));
        };
        WirePart {
            inline_data: Some(InlineData { mime_type, data }),
            ..WirePart::default()
        }
    } else if ["https://", "http://", "gs://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
    {
        WirePart {
            file_data: Some(FileData {
                mime_type: guess_image_mime_type(url),
                file_uri: url,
            }),
            ..WirePart::default()
        }
    } else {
        return Err(unsupported(
            "an image URL must be https, http, gs or a base64 `data:` URL",
            &param(),
        ));
    };
    part.media_resolution = match image.detail.as_str() {
        "low" => Some(MediaResolution {
            level: "MEDIA_RESOLUTION_LOW",
        }),
        "high" => Some(MediaResolution {
            level: "MEDIA_RESOLUTION_HIGH",
        }),
        // `auto` (or nothing) leaves the choice to the model.
        _ => None,
    };
    Ok(part)
}

/// Guesses an image's MIME type from its URL's extension (`image/jpeg`
/// when there is none or it is unknown).
fn guess_image_mime_type(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let extension = path
        .rsplit_once('.')
        .filter(|(_, extension)| !extension.contains('/'))
        .map(|(_, extension)| extension.to_ascii_lowercase());
    match extension.as_deref() {
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("heic") => "image/heic",
        Some("heif") => "image/heif",
        _ => "image/jpeg",
    }
}

fn function_call_part<'a>(
    index: usize,
    position: usize,
    call: &'a pb::ToolCall,
) -> Result<WirePart<'a>, ServiceError> {
    let arguments = if call.arguments.trim().is_empty() {
        "{}"
    } else {
        call.arguments.as_str()
    };
    let args = serde_json::from_str::<&RawValue>(arguments)
        .ok()
        .filter(|raw| raw.get().starts_with('{'))
        .ok_or_else(|| {
            unsupported(
                &format!(
                    "the arguments of tool call `{}` are not a JSON object",
                    call.name
                ),
                &format!("messages[{index}].tool_calls[{position}].function.arguments"),
            )
        })?;
    Ok(WirePart {
        function_call: Some(FunctionCall {
            name: &call.name,
            args,
        }),
        thought_signature: call_id::thought_signature(&call.id),
        ..WirePart::default()
    })
}

fn tool_output(message: &pb::Message) -> ToolOutput {
    let text: String = message
        .content
        .iter()
        .filter_map(|part| match part.part.as_ref()? {
            Part::Text(text) => Some(text.as_str()),
            Part::ImageUrl(_) => None,
        })
        .collect();
    match serde_json::from_str::<Box<RawValue>>(&text) {
        Ok(json) => ToolOutput::Json(json),
        Err(_) => ToolOutput::Text(text),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Tool<'a> {
    function_declarations: Vec<FunctionDeclaration<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionDeclaration<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters_json_schema: Option<&'a RawValue>,
}

/// All functions go in one `Tool`, as Gemini's own SDKs send them.
fn translate_tools(tools: &[pb::Tool]) -> Result<Vec<Tool<'_>>, ServiceError> {
    let declarations = tools
        .iter()
        .map(|tool| {
            let function = tool
                .function
                .as_ref()
                .ok_or_else(|| unsupported("a tool has no function", "tools"))?;
            let parameters_json_schema = if function.parameters_json.trim().is_empty() {
                None
            } else {
                let schema = serde_json::from_str::<&RawValue>(&function.parameters_json)
                    .ok()
                    .filter(|raw| raw.get().starts_with('{'))
                    .ok_or_else(|| {
                        unsupported(
                            &format!(
                                "the parameters of tool `{}` are not a JSON object",
                                function.name
                            ),
                            "tools",
                        )
                    })?;
                Some(schema)
            };
            Ok(FunctionDeclaration {
                name: &function.name,
                description: &function.description,
                parameters_json_schema,
            })
        })
        .collect::<Result<Vec<_>, ServiceError>>()?;
    Ok(if declarations.is_empty() {
        Vec::new()
    } else {
        vec![Tool {
            function_declarations: declarations,
        }]
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    function_calling_config: FunctionCallingConfig<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCallingConfig<'a> {
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_function_names: Option<[&'a str; 1]>,
}

impl<'a> ToolConfig<'a> {
    fn new(choice: &'a pb::ToolChoice) -> Option<Self> {
        let (mode, allowed_function_names) = match choice.choice.as_ref()? {
            Choice::Mode(mode) => match ToolChoiceMode::try_from(*mode).ok()? {
                ToolChoiceMode::None => ("NONE", None),
                ToolChoiceMode::Auto => ("AUTO", None),
                ToolChoiceMode::Required => ("ANY", None),
                ToolChoiceMode::Unspecified => return None,
            },
            Choice::FunctionName(name) => ("ANY", Some([name.as_str()])),
        };
        Some(Self {
            function_calling_config: FunctionCallingConfig {
                mode,
                allowed_function_names,
            },
        })
    }
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    candidate_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_json_schema: Option<&'a RawValue>,
}

/// The OpenAI `json_schema` object; only `schema` has a Gemini field
/// (`name` and `description` only label it, `strict` is how Gemini always
/// treats a response schema).
#[derive(Deserialize)]
struct JsonSchemaFormat<'a> {
    #[serde(default, borrow)]
    schema: Option<&'a RawValue>,
}

impl<'a> GenerationConfig<'a> {
    fn new(request: &'a ChatRequest) -> Result<Self, ServiceError> {
        let seed = request
            .seed
            .map(|seed| {
                i32::try_from(seed)
                    .map_err(|_| unsupported("Gemini takes a `seed` that fits in 32 bits", "seed"))
            })
            .transpose()?;
        let mut config = Self {
            temperature: request.temperature,
            top_p: request.top_p,
            max_output_tokens: request.max_tokens,
            stop_sequences: &request.stop,
            candidate_count: request.n,
            seed,
            presence_penalty: request.presence_penalty,
            frequency_penalty: request.frequency_penalty,
            ..Self::default()
        };
        let Some(format) = request.response_format.as_ref() else {
            return Ok(config);
        };
        match format.r#type() {
            ResponseFormatType::Unspecified | ResponseFormatType::Text => {}
            ResponseFormatType::JsonObject => config.response_mime_type = Some("application/json"),
            ResponseFormatType::JsonSchema => {
                let schema = serde_json::from_str::<JsonSchemaFormat<'_>>(&format.json_schema_json)
                    .ok()
                    .and_then(|format| format.schema)
                    .ok_or_else(|| {
                        unsupported(
                            "`response_format.json_schema` must be an object with a `schema`",
                            "response_format",
                        )
                    })?;
                config.response_mime_type = Some("application/json");
                config.response_json_schema = Some(schema);
            }
        }
        Ok(config)
    }

    fn is_empty(&self) -> bool {
        self.temperature.is_none()
            && self.top_p.is_none()
            && self.max_output_tokens.is_none()
            && self.stop_sequences.is_empty()
            && self.candidate_count.is_none()
            && self.seed.is_none()
            && self.presence_penalty.is_none()
            && self.frequency_penalty.is_none()
            && self.response_mime_type.is_none()
    }
}

/// Reads `safety_settings` (or `safetySettings`) from the passthrough
/// fields; any other passthrough field is refused, by name.
fn safety_settings(extra_json: &str) -> Result<Option<&RawValue>, ServiceError> {
    if extra_json.trim().is_empty() {
        return Ok(None);
    }
    let extra: BTreeMap<&str, &RawValue> = serde_json::from_str(extra_json)
        .map_err(|_| ServiceError::invalid_request("extra request fields are not a JSON object"))?;
    let unknown: Vec<&str> = extra
        .keys()
        .copied()
        .filter(|key| !matches!(*key, "safety_settings" | "safetySettings"))
        .collect();
    if let Some(first) = unknown.first() {
        let names = unknown
            .iter()
            .map(|key| format!("`{key}`"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(unsupported(
            &format!("Gemini does not support the request field(s) {names}"),
            first,
        ));
    }
    match (extra.get("safety_settings"), extra.get("safetySettings")) {
        (Some(_), Some(_)) => Err(unsupported(
            "give either `safety_settings` or `safetySettings`, not both",
            "safety_settings",
        )),
        (Some(settings), None) | (None, Some(settings)) => Ok(Some(*settings)),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests;

//! Gemini response shapes, field for field and in the order each API writes
//! them (struct order is kept by serde). The Gemini API writes `Content` as
//! `parts`, `role`; Vertex AI, which follows its own proto, as `role`,
//! `parts`, and adds `createTime` and `trafficType`.

use std::io;

use serde::{Serialize, Serializer, ser::SerializeStruct};
use serde_json::ser::Formatter;

/// A `GenerateContentResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response<'a> {
    pub candidates: Vec<Candidate>,
    pub usage_metadata: UsageMetadata,
    pub model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_time: Option<&'static str>,
    pub response_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub content: Content,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<&'static str>,
    /// Written by the Gemini API; Vertex omits the zero index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
}

/// A `Content`; `vertex` picks the field order.
pub struct Content {
    pub parts: Vec<Part>,
    pub vertex: bool,
}

impl Serialize for Content {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut content = serializer.serialize_struct("Content", 2)?;
        if self.vertex {
            content.serialize_field("role", "model")?;
            content.serialize_field("parts", &self.parts)?;
        } else {
            content.serialize_field("parts", &self.parts)?;
            content.serialize_field("role", "model")?;
        }
        content.end()
    }
}

/// A `Part`: text or a function call.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_call: Option<FunctionCall>,
}

#[derive(Serialize)]
pub struct FunctionCall {
    pub name: String,
    pub args: Location,
}

/// The arguments of every tool call the fake makes.
#[derive(Serialize)]
pub struct Location {
    pub location: &'static str,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    pub prompt_token_count: u32,
    pub candidates_token_count: u32,
    pub total_token_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_type: Option<&'static str>,
    pub prompt_tokens_details: Vec<ModalityTokenCount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates_tokens_details: Option<Vec<ModalityTokenCount>>,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ModalityTokenCount {
    pub modality: &'static str,
    pub token_count: u32,
}

impl UsageMetadata {
    pub fn new(prompt_tokens: u32, candidates_tokens: u32, vertex: bool) -> Self {
        let text = |token_count| {
            vec![ModalityTokenCount {
                modality: "TEXT",
                token_count,
            }]
        };
        Self {
            prompt_token_count: prompt_tokens,
            candidates_token_count: candidates_tokens,
            total_token_count: prompt_tokens + candidates_tokens,
            traffic_type: vertex.then_some("ON_DEMAND"),
            prompt_tokens_details: text(prompt_tokens),
            candidates_tokens_details: vertex.then(|| text(candidates_tokens)),
        }
    }
}

/// A Google error body: `{"error": {"code", "message", "status", "details"?}}`.
#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub error: ErrorObject<'a>,
}

#[derive(Serialize)]
pub struct ErrorObject<'a> {
    pub code: u16,
    pub message: &'a str,
    pub status: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<serde_json::Value>,
}

/// Google's single-line JSON of stream events: `"key": value`, with no
/// space after commas (`{"candidates": [{"content": {"parts": [...`).
pub struct EventFormatter;

impl Formatter for EventFormatter {
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }
}

/// Renders a whole response as Google does: pretty, two-space indent.
pub fn pretty<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).expect("wire types always serialize")
}

/// Renders one stream event: `data: <json>\r\n\r\n`.
pub fn event<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = b"data: ".to_vec();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, EventFormatter);
    value
        .serialize(&mut serializer)
        .expect("wire types always serialize");
    out.extend_from_slice(b"\r\n\r\n");
    out
}

//! `POST /v1/embeddings`: the request body and its translation to the
//! canonical `EmbedRequest`, and the rendering of an `EmbedResponse` as
//! OpenAI's embedding list.
//!
//! `input` may be a string, an array of strings, an array of token ids or an
//! array of token-id arrays; strings travel in `EmbedRequest.input`, token
//! ids in `input_tokens` (providers that cannot take them refuse with
//! `invalid_request`). Parameters Switchyard does not model travel in
//! `extra_json`. Providers are always asked for floats; with
//! `encoding_format: "base64"` the edge encodes each embedding as base64 of
//! its little-endian `f32` bytes, as OpenAI does.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchyard_common::ServiceError;
use switchyard_proto::v1::{self as pb, EmbedResponse};

use super::request::parse_json;

/// The most inputs one request may carry (OpenAI's limit).
pub const MAX_INPUTS: usize = 2048;

/// `POST /v1/embeddings` body.
#[derive(Debug, Deserialize)]
pub struct EmbeddingsRequest {
    model: String,
    input: Value,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<u32>,
    #[serde(default)]
    user: Option<String>,
    /// Everything else, passed through untouched.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// Parses a request body, naming the path of the first bad field.
pub fn parse(body: &[u8]) -> Result<EmbeddingsRequest, ServiceError> {
    parse_json(body)
}

/// How embeddings are written in the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodingFormat {
    /// Arrays of numbers.
    Float,
    /// Base64 of little-endian `f32` bytes.
    Base64,
}

impl EmbeddingsRequest {
    /// Validates the request and translates it to the canonical message,
    /// with the encoding the response must use.
    pub fn into_proto(self) -> Result<(pb::EmbedRequest, EncodingFormat), ServiceError> {
        if self.model.is_empty() {
            return Err(
                ServiceError::invalid_request("`model` must not be empty.").with_param("model")
            );
        }
        let format = match self.encoding_format.as_deref() {
            None | Some("float") => EncodingFormat::Float,
            Some("base64") => EncodingFormat::Base64,
            Some(other) => {
                return Err(ServiceError::invalid_request(format!(
                    "`encoding_format` must be `float` or `base64`, not `{other}`."
                ))
                .with_param("encoding_format"));
            }
        };
        if self.dimensions == Some(0) {
            return Err(
                ServiceError::invalid_request("`dimensions` must be at least 1.")
                    .with_param("dimensions"),
            );
        }
        let (input, input_tokens) = inputs(self.input)?;
        let extra_json = if self.extra.is_empty() {
            String::new()
        } else {
            Value::Object(self.extra).to_string()
        };
        let request = pb::EmbedRequest {
            model: self.model,
            input,
            dimensions: self.dimensions,
            encoding_format: self.encoding_format.unwrap_or_default(),
            user: self.user.unwrap_or_default(),
            extra_json,
            input_tokens,
        };
        Ok((request, format))
    }
}

/// Splits `input` into texts or token-id arrays (exactly one is non-empty).
fn inputs(input: Value) -> Result<(Vec<String>, Vec<pb::TokenIds>), ServiceError> {
    let invalid = |message: &str| ServiceError::invalid_request(message).with_param("input");
    let shape_error = || {
        invalid(
            "`input` must be a string, an array of strings, an array of token ids, \
             or an array of token-id arrays.",
        )
    };
    let (texts, tokens) = match input {
        Value::String(text) => (vec![text], Vec::new()),
        Value::Array(items) if items.iter().all(Value::is_string) => (
            items
                .into_iter()
                .filter_map(|item| match item {
                    Value::String(text) => Some(text),
                    _ => None,
                })
                .collect(),
            Vec::new(),
        ),
        Value::Array(items) if items.iter().all(Value::is_number) => {
            (Vec::new(), vec![token_ids(&items).ok_or_else(shape_error)?])
        }
        Value::Array(items) if items.iter().all(Value::is_array) => {
            let tokens = items
                .iter()
                .map(|item| item.as_array().and_then(|ids| token_ids(ids)))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(shape_error)?;
            (Vec::new(), tokens)
        }
        _ => return Err(shape_error()),
    };
    let count = texts.len().max(tokens.len());
    if count == 0 {
        return Err(invalid("`input` must not be empty."));
    }
    if count > MAX_INPUTS {
        return Err(invalid(&format!(
            "`input` may hold at most {MAX_INPUTS} items."
        )));
    }
    if texts.iter().any(String::is_empty) || tokens.iter().any(|ids| ids.ids.is_empty()) {
        return Err(invalid("`input` must not contain empty items."));
    }
    Ok((texts, tokens))
}

fn token_ids(items: &[Value]) -> Option<pb::TokenIds> {
    let ids = items
        .iter()
        .map(|item| u32::try_from(item.as_u64()?).ok())
        .collect::<Option<_>>()?;
    Some(pb::TokenIds { ids })
}

/// OpenAI's embedding list.
#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<EmbeddingObject<'a>>,
    model: &'a str,
    usage: UsageObject,
}

#[derive(Serialize)]
struct EmbeddingObject<'a> {
    object: &'static str,
    index: u32,
    embedding: EmbeddingValue<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum EmbeddingValue<'a> {
    Float(&'a [f32]),
    Base64(String),
}

#[derive(Serialize)]
struct UsageObject {
    prompt_tokens: u32,
    total_tokens: u32,
}

/// Renders `response` as OpenAI's embedding list JSON; `fallback_model`
/// names the model when the provider reported none.
pub fn render(response: &EmbedResponse, format: EncodingFormat, fallback_model: &str) -> Vec<u8> {
    let prompt_tokens = response.usage.map_or(0, |usage| usage.prompt_tokens);
    let list = EmbeddingList {
        object: "list",
        data: response
            .data
            .iter()
            .map(|embedding| EmbeddingObject {
                object: "embedding",
                index: embedding.index,
                embedding: match format {
                    EncodingFormat::Float => EmbeddingValue::Float(&embedding.values),
                    EncodingFormat::Base64 => EmbeddingValue::Base64(base64_of(&embedding.values)),
                },
            })
            .collect(),
        model: if response.model.is_empty() {
            fallback_model
        } else {
            &response.model
        },
        usage: UsageObject {
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
    };
    // Serializing strings and finite numbers into a Vec cannot fail; a
    // non-finite value (which no provider sends) would become `null`.
    serde_json::to_vec(&list).unwrap_or_default()
}

/// Base64 of the little-endian bytes of `values`.
pub fn base64_of(values: &[f32]) -> String {
    let bytes: Vec<u8> = values
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchyard_proto::v1::{Embedding, Usage};

    use super::*;

    fn translate(body: Value) -> Result<(pb::EmbedRequest, EncodingFormat), ServiceError> {
        parse(body.to_string().as_bytes())?.into_proto()
    }

    #[test]
    fn every_input_shape_is_translated() {
        let (request, format) =
            translate(json!({"model": "m", "input": "hello"})).expect("a string");
        assert_eq!(request.input, ["hello"]);
        assert_eq!(format, EncodingFormat::Float);
        let (request, _) = translate(json!({"model": "m", "input": ["a", "b"]})).expect("strings");
        assert_eq!(request.input, ["a", "b"]);
        let (request, _) = translate(json!({"model": "m", "input": [1, 2, 3]})).expect("ids");
        assert!(request.input.is_empty());
        assert_eq!(request.input_tokens, [pb::TokenIds { ids: vec![1, 2, 3] }]);
        let (request, _) =
            translate(json!({"model": "m", "input": [[1], [2, 3]]})).expect("id arrays");
        assert_eq!(request.input_tokens.len(), 2);
        assert_eq!(request.input_tokens[1].ids, [2, 3]);
    }

    #[test]
    fn bad_inputs_name_the_input_parameter() {
        for input in [
            json!([]),
            json!(""),
            json!(["a", 1]),
            json!([-1]),
            json!([[1], []]),
            json!({"text": "a"}),
            json!(null),
        ] {
            let error =
                translate(json!({"model": "m", "input": input})).expect_err("an invalid input");
            assert_eq!(error.param.as_deref(), Some("input"), "{input}");
        }
        let too_many = vec!["a"; MAX_INPUTS + 1];
        let error = translate(json!({"model": "m", "input": too_many})).expect_err("too many");
        assert_eq!(error.param.as_deref(), Some("input"));
        let error = translate(json!({"model": "m"})).expect_err("missing input");
        assert!(error.message.contains("input"), "{}", error.message);
    }

    #[test]
    fn options_and_passthrough_are_kept() {
        let (request, format) = translate(json!({
            "model": "m", "input": "a", "encoding_format": "base64", "dimensions": 256,
            "user": "u-1", "input_type": "query"
        }))
        .expect("valid");
        assert_eq!(format, EncodingFormat::Base64);
        assert_eq!(request.encoding_format, "base64");
        assert_eq!(request.dimensions, Some(256));
        assert_eq!(request.user, "u-1");
        assert_eq!(request.extra_json, r#"{"input_type":"query"}"#);
        let error = translate(json!({"model": "m", "input": "a", "encoding_format": "int8"}))
            .expect_err("unknown format");
        assert_eq!(error.param.as_deref(), Some("encoding_format"));
        let error = translate(json!({"model": "m", "input": "a", "dimensions": 0}))
            .expect_err("zero dimensions");
        assert_eq!(error.param.as_deref(), Some("dimensions"));
    }

    fn response() -> EmbedResponse {
        EmbedResponse {
            data: vec![
                Embedding {
                    index: 0,
                    values: vec![0.1, -2.5],
                },
                Embedding {
                    index: 1,
                    values: vec![1.0, 0.0],
                },
            ],
            model: "text-embedding-3-small".to_owned(),
            usage: Some(Usage {
                prompt_tokens: 5,
                total_tokens: 5,
                ..Usage::default()
            }),
        }
    }

    #[test]
    fn floats_render_in_openai_shape() {
        let body: Value =
            serde_json::from_slice(&render(&response(), EncodingFormat::Float, "alias"))
                .expect("JSON");
        assert_eq!(
            body,
            json!({
                "object": "list",
                "data": [
                    {"object": "embedding", "index": 0, "embedding": [0.1, -2.5]},
                    {"object": "embedding", "index": 1, "embedding": [1.0, 0.0]}
                ],
                "model": "text-embedding-3-small",
                "usage": {"prompt_tokens": 5, "total_tokens": 5}
            })
        );
    }

    #[test]
    fn base64_is_little_endian_f32_bytes() {
        // 1.0f32 is 0x3f800000: bytes 00 00 80 3f.
        assert_eq!(base64_of(&[1.0]), "AACAPw==");
        let mut empty_model = response();
        empty_model.model.clear();
        let body: Value =
            serde_json::from_slice(&render(&empty_model, EncodingFormat::Base64, "alias"))
                .expect("JSON");
        assert_eq!(body["model"], "alias");
        let encoded = body["data"][0]["embedding"].as_str().expect("a string");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64");
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect();
        assert_eq!(values, [0.1, -2.5]);
    }
}

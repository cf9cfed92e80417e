//! `POST /v1/embeddings` of [`FakeOpenAi`](super::FakeOpenAi), in the exact
//! shape of OpenAI's API reference:
//! `{"object": "list", "data": [{"object": "embedding", "index", "embedding"}],
//! "model", "usage": {"prompt_tokens", "total_tokens"}}`.
//!
//! `input` may be a string, an array of strings, an array of token ids or
//! an array of token-id arrays. Each input gets [`fake_embedding`] of its
//! text (or of its token ids' little-endian bytes), `dimensions` values long
//! (8 by default). `encoding_format: "base64"` answers each embedding as
//! base64 of its little-endian `f32` bytes, as OpenAI does. Usage counts
//! words of the texts (token ids count one each). An empty input is a 400.
//! As [`FakeFlavor::Mistral`] it reads `output_dimension` instead and
//! answers Mistral's 422 for fields Mistral does not know and for token ids.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, Uri},
    response::Response,
};
use base64::Engine;
use serde_json::{Value, json};

use super::{FakeFlavor, Fault, Shared, openai_error_body, status_response};
use crate::recording::{self, Delivery};

/// Fields of Mistral's embeddings request.
const MISTRAL_FIELDS: [&str; 6] = [
    "model",
    "input",
    "output_dimension",
    "output_dtype",
    "encoding_format",
    "metadata",
];

/// Dimensions of a fake embedding when the request does not choose.
pub const DEFAULT_DIMENSIONS: usize = 8;

/// The deterministic embedding of `bytes`: `dimensions` values in [-1, 1)
/// from a SplitMix64 sequence seeded by the bytes' 64-bit FNV-1a hash.
pub fn fake_embedding(bytes: &[u8], dimensions: usize) -> Vec<f32> {
    let mut state = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (0..dimensions)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut mixed = state;
            mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            mixed ^= mixed >> 31;
            // 24 random bits: exactly representable in an f32.
            let unit = (mixed >> 40) as f32 / (1_u32 << 24) as f32;
            unit.mul_add(2.0, -1.0)
        })
        .collect()
}

/// One input of an embeddings request.
enum Input {
    Text(String),
    Tokens(Vec<u64>),
}

impl Input {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Text(text) => text.as_bytes().to_vec(),
            Self::Tokens(ids) => ids
                .iter()
                .flat_map(|id| u32::try_from(*id).unwrap_or(u32::MAX).to_le_bytes())
                .collect(),
        }
    }

    fn tokens(&self) -> usize {
        match self {
            Self::Text(text) => text.split_whitespace().count(),
            Self::Tokens(ids) => ids.len(),
        }
    }
}

/// Reads `input` in any of its four shapes; `None` when it is malformed or empty.
fn inputs(input: &Value) -> Option<Vec<Input>> {
    let inputs = match input {
        Value::String(text) => vec![Input::Text(text.clone())],
        Value::Array(items) if items.iter().all(Value::is_u64) => {
            vec![Input::Tokens(
                items.iter().filter_map(Value::as_u64).collect(),
            )]
        }
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Some(Input::Text(text.clone())),
                Value::Array(ids) if ids.iter().all(Value::is_u64) => Some(Input::Tokens(
                    ids.iter().filter_map(Value::as_u64).collect(),
                )),
                _ => None,
            })
            .collect::<Option<_>>()?,
        _ => return None,
    };
    let empty = inputs.is_empty()
        || inputs.iter().any(|input| match input {
            Input::Text(text) => text.is_empty(),
            Input::Tokens(ids) => ids.is_empty(),
        });
    (!empty).then_some(inputs)
}

/// Answers `POST /v1/embeddings`.
pub async fn embeddings(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = shared.recorder.record(&method, &uri, &headers, &body);
    let fault = shared.recorder.next_fault();
    let mut drop_after = None;
    let mut trickle = None;
    match fault {
        Some(Fault::Status {
            status,
            body,
            headers,
        }) => return status_response(status, body, &headers),
        Some(Fault::Delay(delay)) => shared.recorder.wait(delay).await,
        Some(Fault::DropMidStream { after_chunks }) => drop_after = Some(after_chunks),
        Some(Fault::Trickle(pause)) => trickle = Some(pause),
        None => {}
    }
    if shared.flavor == FakeFlavor::Mistral
        && let Some((status, error)) = mistral_refusal(&body)
    {
        return status_response(status, error, &[]);
    }
    let Some(inputs) = inputs(&body["input"]) else {
        let error = openai_error_body(
            "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
            "invalid_request_error",
            "",
        );
        return status_response(400, error, &[]);
    };
    let model = body["model"].as_str().unwrap_or_default();
    let dimensions = body["dimensions"]
        .as_u64()
        .or_else(|| body["output_dimension"].as_u64())
        .and_then(|dimensions| usize::try_from(dimensions).ok())
        .unwrap_or(DEFAULT_DIMENSIONS);
    let base64 = body["encoding_format"] == "base64";
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let values = fake_embedding(&input.bytes(), dimensions);
            let embedding = if base64 {
                let bytes: Vec<u8> = values
                    .iter()
                    .flat_map(|value| value.to_le_bytes())
                    .collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(values)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens: usize = inputs.iter().map(Input::tokens).sum();
    // Written field by field to keep OpenAI's key order.
    let whole = format!(
        r#"{{"object":"list","data":{},"model":{},"usage":{{"prompt_tokens":{tokens},"total_tokens":{tokens}}}}}"#,
        Value::Array(data),
        json!(model),
    );
    recording::whole_answer(
        whole,
        &[("content-type", "application/json")],
        Delivery::of(drop_after, trickle),
    )
}

/// Mistral's 422 for fields it does not know (`dimensions`, `user`, ...),
/// and its 422 for token-id inputs.
fn mistral_refusal(body: &Value) -> Option<(u16, String)> {
    let object = body.as_object()?;
    let refuse = |key: &str, value: &Value, kind: &str, message: &str| {
        let detail = json!([{"type": kind, "loc": ["body", key], "msg": message, "input": value}]);
        let body = json!({"object": "error", "message": {"detail": detail},
            "type": "invalid_request_message_error", "param": null, "code": null});
        Some((422, body.to_string()))
    };
    if let Some((key, value)) = object
        .iter()
        .find(|(key, _)| !MISTRAL_FIELDS.contains(&key.as_str()))
    {
        return refuse(
            key,
            value,
            "extra_forbidden",
            "Extra inputs are not permitted",
        );
    }
    let input = &body["input"];
    let texts = input.is_string()
        || input
            .as_array()
            .is_some_and(|items| items.iter().all(Value::is_string));
    if texts {
        None
    } else {
        refuse(
            "input",
            input,
            "string_type",
            "Input should be a valid string",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_shape_is_read() {
        assert_eq!(inputs(&json!("a b")).map(|inputs| inputs.len()), Some(1));
        assert_eq!(
            inputs(&json!(["a", "b"])).map(|inputs| inputs.len()),
            Some(2)
        );
        assert_eq!(
            inputs(&json!([1, 2, 3])).map(|inputs| inputs.len()),
            Some(1)
        );
        assert_eq!(
            inputs(&json!([[1], [2, 3]])).map(|inputs| inputs.len()),
            Some(2)
        );
        assert!(inputs(&json!("")).is_none());
        assert!(inputs(&json!([])).is_none());
        assert!(inputs(&json!({"text": "a"})).is_none());
    }

    #[test]
    fn embeddings_are_deterministic() {
        assert_eq!(fake_embedding(b"a", 8), fake_embedding(b"a", 8));
        assert_ne!(fake_embedding(b"a", 8), fake_embedding(b"b", 8));
        assert!(
            fake_embedding(b"a", 64)
                .iter()
                .all(|value| (-1.0..1.0).contains(value))
        );
    }
}

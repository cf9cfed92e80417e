//! OpenAI embeddings, and every server that speaks them: `POST
//! {base_url}/embeddings` with a bearer key. The [`Flavor`] of the target
//! decides the URL (its default base URL, Azure's deployment URL) and the
//! credentials header, exactly as for chat.
//!
//! The body is `{model, input, encoding_format: "float", dimensions?, user?}`
//! plus the request's passthrough fields (a modelled field wins over a
//! passthrough field of the same name). Providers are always asked for
//! floats: the edge encodes base64 itself when the client wants it. Text
//! inputs go as an array of strings, token-id inputs as an array of arrays.
//!
//! Dialects differ in what they accept ([`EmbeddingsDialect`]): Mistral
//! takes text inputs only, calls `dimensions` `output_dimension`, and has no
//! `user`; every other flavor is sent OpenAI's body.
//!
//! The answer `{data: [{index, embedding}], model, usage: {prompt_tokens,
//! total_tokens}}` becomes an [`EmbedResponse`] in input order; a count of
//! embeddings that does not match the inputs is a malformed response.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer, ser::SerializeMap};
use serde_json::value::RawValue;
use switchyard_common::ServiceError;
use switchyard_proto::v1::{EmbedRequest, EmbedResponse, Embedding, TokenIds, Usage};

use super::{Flavor, OpenAiProvider, response};
use crate::{
    classify::{self, UpstreamErrorDetail},
    http,
    provider::EmbedAttempt,
};

/// The variant of the OpenAI embeddings API a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingsDialect {
    /// OpenAI itself, and servers that follow it exactly: token-id inputs,
    /// `dimensions` and `user`.
    OpenAi,
    /// Mistral: text inputs only, `dimensions` sent as `output_dimension`,
    /// no `user` (it is accounting data and stays in the gateway).
    Mistral,
}

impl EmbeddingsDialect {
    /// Returns the dialect servers of `flavor` speak.
    pub fn of(flavor: Flavor) -> Self {
        match flavor {
            Flavor::Mistral => Self::Mistral,
            _ => Self::OpenAi,
        }
    }
}

impl OpenAiProvider {
    /// Sends an embeddings attempt to a server of `flavor` and returns the
    /// embeddings in input order.
    pub async fn embed(
        &self,
        flavor: Flavor,
        attempt: EmbedAttempt,
    ) -> Result<EmbedResponse, ServiceError> {
        let provider = attempt.provider.as_str();
        let (url, body) = embed_body(&attempt.request, EmbeddingsDialect::of(flavor))
            .and_then(|body| Ok((flavor.url(&attempt, "embeddings")?, body)))
            .map_err(|error| error.with_provider(provider))?;
        let request = flavor.post_json(
            attempt.client(&self.http),
            &url,
            attempt.api_key.as_ref(),
            body,
        );
        let api_key = attempt.api_key.as_ref();
        let answer = http::exchange(
            provider,
            request,
            attempt.limits,
            attempt.trace.as_ref(),
            |refusal| {
                let detail = error_detail(refusal.body);
                classify::upstream_error(
                    provider,
                    refusal.status,
                    refusal.headers,
                    &detail,
                    api_key,
                )
            },
        )
        .await?;
        let bytes = answer.body.read_to_end().await?;
        let list: EmbeddingList = serde_json::from_slice(&bytes).map_err(|_| {
            classify::malformed_response(provider, "a response that is not an embedding list")
        })?;
        if let Some(error) = list.error {
            return Err(classify::in_band_error(
                provider,
                &error.into_detail(),
                attempt.api_key.as_ref(),
            ));
        }
        let inputs = attempt
            .request
            .input
            .len()
            .max(attempt.request.input_tokens.len());
        list.into_response(inputs, &attempt.upstream_model)
            .ok_or_else(|| {
                classify::malformed_response(
                    provider,
                    "a number of embeddings that does not match the inputs",
                )
            })
    }
}

/// Serializes `request` as a `POST /embeddings` body in `dialect`.
pub fn embed_body(
    request: &EmbedRequest,
    dialect: EmbeddingsDialect,
) -> Result<Vec<u8>, ServiceError> {
    if request.input.is_empty() == request.input_tokens.is_empty() {
        return Err(ServiceError::invalid_request(
            "an embeddings request needs either texts or token ids as input",
        )
        .with_param("input"));
    }
    if dialect == EmbeddingsDialect::Mistral && !request.input_tokens.is_empty() {
        return Err(ServiceError::invalid_request(
            "Mistral embeddings take text inputs only, not token ids",
        )
        .with_param("input"));
    }
    let extra: BTreeMap<&str, &RawValue> = if request.extra_json.trim().is_empty() {
        BTreeMap::new()
    } else {
        serde_json::from_str(&request.extra_json).map_err(|_| {
            ServiceError::invalid_request("extra request fields are not a JSON object")
        })?
    };
    let body = EmbedBody {
        request,
        dialect,
        extra,
    };
    serde_json::to_vec(&body)
        .map_err(|_| ServiceError::internal("the request could not be serialized"))
}

/// The body, borrowing everything from the canonical request.
struct EmbedBody<'a> {
    request: &'a EmbedRequest,
    dialect: EmbeddingsDialect,
    extra: BTreeMap<&'a str, &'a RawValue>,
}

impl Serialize for EmbedBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let request = self.request;
        let mut map = serializer.serialize_map(None)?;
        let mut written = Vec::with_capacity(5);
        map.serialize_entry("model", &request.model)?;
        written.push("model");
        if request.input_tokens.is_empty() {
            map.serialize_entry("input", &request.input)?;
        } else {
            map.serialize_entry("input", &TokenInputs(&request.input_tokens))?;
        }
        written.push("input");
        map.serialize_entry("encoding_format", "float")?;
        written.push("encoding_format");
        if let Some(dimensions) = request.dimensions {
            let key = match self.dialect {
                EmbeddingsDialect::OpenAi => "dimensions",
                EmbeddingsDialect::Mistral => "output_dimension",
            };
            map.serialize_entry(key, &dimensions)?;
            written.push(key);
        }
        if self.dialect == EmbeddingsDialect::OpenAi && !request.user.is_empty() {
            map.serialize_entry("user", &request.user)?;
            written.push("user");
        }
        for (key, value) in &self.extra {
            if !written.contains(key) {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

/// Token-id inputs as an array of arrays.
struct TokenInputs<'a>(&'a [TokenIds]);

impl Serialize for TokenInputs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|tokens| &tokens.ids))
    }
}

/// An OpenAI embedding list (or an error some servers send with a 200).
#[derive(Debug, Deserialize)]
struct EmbeddingList {
    #[serde(default)]
    data: Vec<WireEmbedding>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<response::WireError>,
}

#[derive(Debug, Deserialize)]
struct WireEmbedding {
    #[serde(default)]
    index: Option<u32>,
    embedding: Vec<f32>,
}

#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    total_tokens: u32,
}

impl EmbeddingList {
    /// Returns the embeddings in input order, or `None` when they do not
    /// cover exactly `inputs` inputs.
    fn into_response(self, inputs: usize, upstream_model: &str) -> Option<EmbedResponse> {
        let mut data: Vec<Embedding> = self
            .data
            .into_iter()
            .enumerate()
            .map(|(position, embedding)| Embedding {
                index: embedding
                    .index
                    .unwrap_or_else(|| u32::try_from(position).unwrap_or(u32::MAX)),
                values: embedding.embedding,
            })
            .collect();
        data.sort_by_key(|embedding| embedding.index);
        let complete = data.len() == inputs
            && data
                .iter()
                .enumerate()
                .all(|(position, embedding)| usize::try_from(embedding.index) == Ok(position));
        if !complete {
            return None;
        }
        let usage = self.usage.unwrap_or_default();
        Some(EmbedResponse {
            data,
            model: self
                .model
                .filter(|model| !model.is_empty())
                .unwrap_or_else(|| upstream_model.to_owned()),
            usage: Some(Usage {
                prompt_tokens: usage.prompt_tokens,
                total_tokens: usage.total_tokens.max(usage.prompt_tokens),
                ..Usage::default()
            }),
        })
    }
}

/// What an error body says: any body the chat path understands (OpenAI's
/// `{"error": {...}}`, the flat `{"object": "error", ...}`), or a validation
/// error's `{"detail": [{"msg", ...}]}`.
fn error_detail(body: &[u8]) -> UpstreamErrorDetail {
    if let Some(detail) = response::error_detail(body) {
        return detail;
    }
    #[derive(Deserialize)]
    struct Validation {
        #[serde(default)]
        detail: Option<serde_json::Value>,
    }
    let Ok(validation) = serde_json::from_slice::<Validation>(body) else {
        return UpstreamErrorDetail::default();
    };
    let message = validation.detail.and_then(|detail| match detail {
        serde_json::Value::String(text) => Some(text),
        serde_json::Value::Array(items) => {
            let messages: Vec<&str> = items
                .iter()
                .filter_map(|item| item.get("msg")?.as_str())
                .collect();
            (!messages.is_empty()).then(|| messages.join("; "))
        }
        _ => None,
    });
    UpstreamErrorDetail {
        message,
        ..UpstreamErrorDetail::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn body(request: &EmbedRequest, dialect: EmbeddingsDialect) -> Value {
        let bytes = embed_body(request, dialect).expect("a valid body");
        serde_json::from_slice(&bytes).expect("JSON")
    }

    fn texts(texts: &[&str]) -> EmbedRequest {
        EmbedRequest {
            model: "text-embedding-3-small".to_owned(),
            input: texts.iter().map(|text| (*text).to_owned()).collect(),
            ..EmbedRequest::default()
        }
    }

    #[test]
    fn openai_body_has_modelled_fields_then_passthrough() {
        let mut request = texts(&["a", "b"]);
        request.dimensions = Some(256);
        request.user = "u-1".to_owned();
        request.encoding_format = "base64".to_owned();
        request.extra_json = r#"{"user":"ignored","priority":3}"#.to_owned();
        assert_eq!(
            body(&request, EmbeddingsDialect::OpenAi),
            json!({"model": "text-embedding-3-small", "input": ["a", "b"],
                   "encoding_format": "float", "dimensions": 256, "user": "u-1", "priority": 3})
        );
    }

    #[test]
    fn token_inputs_are_arrays_of_arrays_and_mistral_refuses_them() {
        let request = EmbedRequest {
            model: "m".to_owned(),
            input_tokens: vec![TokenIds { ids: vec![1, 2] }, TokenIds { ids: vec![3] }],
            ..EmbedRequest::default()
        };
        assert_eq!(
            body(&request, EmbeddingsDialect::OpenAi)["input"],
            json!([[1, 2], [3]])
        );
        let error =
            embed_body(&request, EmbeddingsDialect::Mistral).expect_err("Mistral takes text only");
        assert_eq!(error.param.as_deref(), Some("input"));
    }

    #[test]
    fn mistral_body_renames_dimensions_and_drops_user() {
        let mut request = texts(&["a"]);
        request.dimensions = Some(512);
        request.user = "u-1".to_owned();
        assert_eq!(
            body(&request, EmbeddingsDialect::Mistral),
            json!({"model": "text-embedding-3-small", "input": ["a"],
                   "encoding_format": "float", "output_dimension": 512})
        );
    }

    #[test]
    fn list_is_reordered_by_index_and_checked_against_the_inputs() {
        let list: EmbeddingList = serde_json::from_str(
            r#"{"object":"list","data":[
                {"object":"embedding","index":1,"embedding":[0.5]},
                {"object":"embedding","index":0,"embedding":[-0.25, 1]}],
              "model":"text-embedding-3-small","usage":{"prompt_tokens":4,"total_tokens":4}}"#,
        )
        .expect("an embedding list");
        let response = list.into_response(2, "up").expect("complete");
        assert_eq!(response.data[0].values, [-0.25, 1.0]);
        assert_eq!(response.data[1].index, 1);
        assert_eq!(response.model, "text-embedding-3-small");
        assert_eq!(response.usage.map(|usage| usage.prompt_tokens), Some(4));
        let short: EmbeddingList =
            serde_json::from_str(r#"{"data":[{"index":0,"embedding":[1]}]}"#).expect("a list");
        assert!(short.into_response(2, "up").is_none());
    }

    #[test]
    fn error_bodies_of_every_dialect_are_read() {
        let openai = error_detail(
            br#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}"#,
        );
        assert_eq!(openai.message.as_deref(), Some("bad"));
        let mistral = error_detail(
            br#"{"object":"error","message":"Unauthorized","type":"unauthorized","param":null,"code":null}"#,
        );
        assert_eq!(mistral.message.as_deref(), Some("Unauthorized"));
        let validation = error_detail(
            br#"{"detail":[{"type":"missing","loc":["body","input"],"msg":"Field required"}]}"#,
        );
        assert_eq!(validation.message.as_deref(), Some("Field required"));
    }
}

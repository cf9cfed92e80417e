//! Gemini embeddings: `POST {base_url}/models/{model}:batchEmbedContents`
//! with the key in `x-goog-api-key`; `base_url` defaults to
//! `https://generativelanguage.googleapis.com/v1beta`.
//!
//! Each input text becomes one request of the batch:
//! `{"model": "models/{model}", "content": {"parts": [{"text"}]},
//! "outputDimensionality"?}`; the passthrough fields `task_type` (or
//! `taskType`) and `title` are copied onto every request. Any other
//! passthrough field, and token-id inputs, are refused with
//! `invalid_request`: Gemini cannot express them. `user` is accounting data
//! and stays in the gateway. The answer `{"embeddings": [{"values"}]}` is in
//! input order.
//!
//! Gemini reports no token counts for embeddings, so usage is an estimate:
//! one token per four characters of input (Google's documented rule of
//! thumb for Gemini models), rounded up per input.
//!
//! Errors (`{"error": {code, message, status, details}}`) are classified as
//! for Gemini chat (see `gemini::upstream_error`): `API_KEY_INVALID` is an
//! authentication error, and `RetryInfo.retryDelay`, else `Retry-After`,
//! supplies the retry-after.

use std::collections::BTreeMap;

use reqwest::header::HeaderValue;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use switchyard_common::ServiceError;
use switchyard_proto::v1::{EmbedRequest, EmbedResponse, Embedding, Usage};

use crate::{
    classify,
    http::{self, HttpClient},
    provider::EmbedAttempt,
    providers::gemini::google_error,
};

/// Base URL of the Gemini API, used when a target sets none.
pub const GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";

/// Gemini's embeddings API.
#[derive(Debug, Clone)]
pub struct GeminiEmbeddings {
    http: HttpClient,
}

impl GeminiEmbeddings {
    /// Creates the provider over the shared HTTP client.
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }

    /// Sends an embeddings attempt and returns the embeddings in input order.
    pub async fn embed(&self, attempt: EmbedAttempt) -> Result<EmbedResponse, ServiceError> {
        let provider = attempt.provider.as_str();
        let model = attempt
            .upstream_model
            .strip_prefix("models/")
            .unwrap_or(&attempt.upstream_model);
        let body =
            batch_body(&attempt.request, model).map_err(|error| error.with_provider(provider))?;
        let base_url = if attempt.base_url.is_empty() {
            GEMINI_BASE_URL
        } else {
            attempt.base_url.as_str()
        };
        let url = http::endpoint(base_url, &format!("models/{model}:batchEmbedContents"));
        let mut request = attempt.client(&self.http).post_json(&url, None, body);
        if let Some(key) = attempt.api_key.as_ref()
            && let Ok(mut value) = HeaderValue::from_str(key.expose())
        {
            value.set_sensitive(true);
            request = request.header("x-goog-api-key", value);
        }
        let api_key = attempt.api_key.as_ref();
        let answer = http::exchange(
            provider,
            request,
            attempt.limits,
            attempt.trace.as_ref(),
            |refusal| {
                google_error(
                    provider,
                    refusal.status,
                    refusal.headers,
                    refusal.body,
                    api_key,
                )
            },
        )
        .await?;
        let bytes = answer.body.read_to_end().await?;
        let batch: BatchResponse = serde_json::from_slice(&bytes).map_err(|_| {
            classify::malformed_response(provider, "a response that is not a batch of embeddings")
        })?;
        if batch.embeddings.len() != attempt.request.input.len() {
            return Err(classify::malformed_response(
                provider,
                "a number of embeddings that does not match the inputs",
            ));
        }
        let prompt_tokens = attempt
            .request
            .input
            .iter()
            .map(|text| estimated_tokens(text))
            .fold(0_u32, u32::saturating_add);
        Ok(EmbedResponse {
            data: batch
                .embeddings
                .into_iter()
                .enumerate()
                .map(|(position, embedding)| Embedding {
                    index: u32::try_from(position).unwrap_or(u32::MAX),
                    values: embedding.values,
                })
                .collect(),
            model: model.to_owned(),
            usage: Some(Usage {
                prompt_tokens,
                total_tokens: prompt_tokens,
                ..Usage::default()
            }),
        })
    }
}

/// Serializes `request` as a `batchEmbedContents` body for `model`.
pub fn batch_body(request: &EmbedRequest, model: &str) -> Result<Vec<u8>, ServiceError> {
    if !request.input_tokens.is_empty() {
        return Err(ServiceError::invalid_request(
            "Gemini embeddings take text inputs only, not token ids",
        )
        .with_param("input"));
    }
    if request.input.is_empty() {
        return Err(ServiceError::invalid_request(
            "an embeddings request needs at least one input",
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
    let mut task_type = None;
    let mut title = None;
    for (key, value) in extra {
        match key {
            "task_type" | "taskType" => task_type = Some(value),
            "title" => title = Some(value),
            other => {
                return Err(ServiceError::invalid_request(format!(
                    "Gemini embeddings do not support the parameter `{other}`"
                ))
                .with_param(other.to_owned()));
            }
        }
    }
    let model_path = format!("models/{model}");
    let requests: Vec<_> = request
        .input
        .iter()
        .map(|text| WireRequest {
            model: &model_path,
            content: WireContent {
                parts: [WirePart { text }],
            },
            output_dimensionality: request.dimensions,
            task_type,
            title,
        })
        .collect();
    serde_json::to_vec(&BatchBody { requests })
        .map_err(|_| ServiceError::internal("the request could not be serialized"))
}

/// Estimated tokens of one text: a token per four characters, rounded up.
fn estimated_tokens(text: &str) -> u32 {
    u32::try_from(text.chars().count().div_ceil(4)).unwrap_or(u32::MAX)
}

#[derive(Serialize)]
struct BatchBody<'a> {
    requests: Vec<WireRequest<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireRequest<'a> {
    model: &'a str,
    content: WireContent<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimensionality: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_type: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct WireContent<'a> {
    parts: [WirePart<'a>; 1],
}

#[derive(Serialize)]
struct WirePart<'a> {
    text: &'a str,
}

#[derive(Debug, Deserialize)]
struct BatchResponse {
    #[serde(default)]
    embeddings: Vec<WireEmbedding>,
}

#[derive(Debug, Deserialize)]
struct WireEmbedding {
    #[serde(default)]
    values: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use switchyard_common::ErrorClass;
    use switchyard_proto::v1::TokenIds;

    use super::*;

    fn request(texts: &[&str]) -> EmbedRequest {
        EmbedRequest {
            model: "gemini-embedding-001".to_owned(),
            input: texts.iter().map(|text| (*text).to_owned()).collect(),
            ..EmbedRequest::default()
        }
    }

    fn body(request: &EmbedRequest) -> Value {
        let bytes = batch_body(request, "gemini-embedding-001").expect("a valid body");
        serde_json::from_slice(&bytes).expect("JSON")
    }

    #[test]
    fn each_text_is_one_request_with_dimensions_and_task_type() {
        let mut request = request(&["a", "b"]);
        request.dimensions = Some(768);
        request.extra_json = r#"{"task_type":"RETRIEVAL_DOCUMENT","title":"Doc"}"#.to_owned();
        let one = json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]},
            "outputDimensionality": 768, "taskType": "RETRIEVAL_DOCUMENT", "title": "Doc"});
        let mut two = one.clone();
        two["content"]["parts"][0]["text"] = json!("b");
        assert_eq!(body(&request), json!({"requests": [one, two]}));
    }

    #[test]
    fn token_inputs_and_unknown_parameters_are_refused() {
        let mut tokens = request(&[]);
        tokens.input_tokens = vec![TokenIds { ids: vec![1] }];
        let error = batch_body(&tokens, "m").expect_err("no token ids");
        assert_eq!(error.class, ErrorClass::InvalidRequest);
        let mut unknown = request(&["a"]);
        unknown.extra_json = r#"{"priority":1}"#.to_owned();
        let error = batch_body(&unknown, "m").expect_err("unknown parameter");
        assert_eq!(error.param.as_deref(), Some("priority"));
    }

    #[test]
    fn usage_estimate_rounds_up_per_input() {
        assert_eq!(estimated_tokens(""), 0);
        assert_eq!(estimated_tokens("abcd"), 1);
        assert_eq!(estimated_tokens("abcde"), 2);
    }
}

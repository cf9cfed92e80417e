//! Google Gemini, over two APIs that share one wire format
//! (`GenerateContentRequest` / `GenerateContentResponse`):
//!
//! - kind `gemini`, the Gemini API (Google AI Studio): default base URL
//!   `https://generativelanguage.googleapis.com/v1beta`;
//!   `POST {base_url}/models/{model}:generateContent`, or
//!   `:streamGenerateContent?alt=sse` for streams; the key goes in
//!   `x-goog-api-key`.
//! - kind `vertex`, Gemini on Vertex AI: `POST {base_url}/projects/{project}/
//!   locations/{location}/publishers/google/models/{model}:generateContent`
//!   (or `:streamGenerateContent?alt=sse`), default base URL
//!   `https://{location}-aiplatform.googleapis.com/v1` (for location `global`,
//!   `https://aiplatform.googleapis.com/v1`); the `api_key` secret is an OAuth
//!   access token sent as `Authorization: Bearer`. Minting and refreshing
//!   that token (service accounts, workload identity) is out of scope: the
//!   secret must hold a valid token.
//!
//! Options (`Provider.options`), Vertex only:
//! - `project` (required): the Google Cloud project id.
//! - `location` (default `us-central1`): the Vertex AI region, or `global`.
//!
//! Translation rules live in `request` (canonical to Gemini), `response` and
//! `stream` (Gemini to canonical), `upstream_error` (error classes) and
//! `call_id` (the tool call ids Gemini does not have). Passthrough fields
//! (`extra_json`): only `safety_settings`/`safetySettings`, sent as
//! `safetySettings`; any other is refused by name.

mod call_id;
pub(crate) mod request;
mod response;
pub(crate) mod stream;
mod upstream_error;

use futures::StreamExt;
use reqwest::header::HeaderValue;
use switchyard_common::ServiceError;

use self::response::{GenerateContentResponse, Translator};
pub(crate) use self::upstream_error::upstream_error as google_error;
use crate::{
    classify,
    http::{self, HttpClient},
    provider::{Attempt, ChunkStream},
    sse,
};

/// Default base URL of the Gemini API.
pub const GEMINI_DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";
/// Default Vertex AI region.
pub const VERTEX_DEFAULT_LOCATION: &str = "us-central1";

/// Which Google API serves the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeminiApi {
    /// The Gemini API (`generativelanguage.googleapis.com`), kind `gemini`.
    GenerativeLanguage,
    /// Vertex AI (`{location}-aiplatform.googleapis.com`), kind `vertex`.
    Vertex,
}

/// The Gemini provider (both APIs).
#[derive(Debug, Clone)]
pub struct GeminiProvider {
    http: HttpClient,
}

impl GeminiProvider {
    /// Creates the provider over the shared HTTP client.
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }

    /// Sends the attempt to `api`; returns its chunks once Gemini accepted it.
    pub async fn chat(
        &self,
        api: GeminiApi,
        attempt: Attempt,
    ) -> Result<ChunkStream, ServiceError> {
        let provider = attempt.provider.as_str();
        let stream = attempt.request.stream;
        let url =
            endpoint_url(api, &attempt, stream).map_err(|error| error.with_provider(provider))?;
        let body = request::generate_content_body(&attempt.request, api)
            .map_err(|error| error.with_provider(provider))?;
        let request = match api {
            GeminiApi::Vertex => {
                attempt
                    .client(&self.http)
                    .post_json(&url, attempt.api_key.as_ref(), body)
            }
            GeminiApi::GenerativeLanguage => {
                let mut request = attempt.client(&self.http).post_json(&url, None, body);
                if let Some(key) = &attempt.api_key
                    && let Ok(mut value) = HeaderValue::from_str(key.expose())
                {
                    value.set_sensitive(true);
                    request = request.header("x-goog-api-key", value);
                }
                request
            }
        };
        let api_key = attempt.api_key.as_ref();
        let answer = http::exchange(
            provider,
            request,
            attempt.limits,
            attempt.trace.as_ref(),
            |refusal| {
                upstream_error::upstream_error(
                    provider,
                    refusal.status,
                    refusal.headers,
                    refusal.body,
                    api_key,
                )
            },
        )
        .await?;
        if stream && answer.has_content_type(sse::MEDIA_TYPE) {
            return Ok(stream::chunks(provider, answer.body, attempt.api_key));
        }
        let bytes = answer.body.read_to_end().await?;
        let chunks = whole_answer(provider, &bytes, attempt.api_key.as_ref())?;
        Ok(futures::stream::iter(chunks.into_iter().map(Ok)).boxed())
    }
}

/// Translates a non-streamed answer: one `GenerateContentResponse`, or the
/// JSON array a stream is without `alt=sse`.
pub(crate) fn whole_answer(
    provider: &str,
    bytes: &[u8],
    api_key: Option<&switchyard_common::Secret>,
) -> Result<Vec<switchyard_proto::v1::ChatChunk>, ServiceError> {
    let malformed = || {
        classify::malformed_response(provider, "a response that is not a GenerateContentResponse")
    };
    let responses: Vec<GenerateContentResponse> = if bytes.trim_ascii_start().starts_with(b"[") {
        serde_json::from_slice(bytes).map_err(|_| malformed())?
    } else {
        vec![serde_json::from_slice(bytes).map_err(|_| malformed())?]
    };
    let mut translator = Translator::new(provider);
    let mut chunks = Vec::new();
    for mut response in responses {
        if let Some(error) = response.error.take() {
            return Err(upstream_error::in_band_error(provider, error, api_key));
        }
        chunks.extend(translator.translate(response)?);
    }
    Ok(translator.complete(chunks))
}

/// Returns the URL of `generateContent` (or its streaming form) for the attempt.
fn endpoint_url(api: GeminiApi, attempt: &Attempt, stream: bool) -> Result<String, ServiceError> {
    let model = attempt
        .upstream_model
        .strip_prefix("models/")
        .unwrap_or(&attempt.upstream_model);
    if !is_path_segment(model) {
        return Err(ServiceError::invalid_request(format!(
            "`{model}` is not a Gemini model name"
        )));
    }
    let method = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    let base_url = attempt.base_url.trim();
    match api {
        GeminiApi::GenerativeLanguage => {
            let base_url = if base_url.is_empty() {
                GEMINI_DEFAULT_BASE_URL
            } else {
                base_url
            };
            Ok(http::endpoint(
                base_url,
                &format!("models/{model}:{method}"),
            ))
        }
        GeminiApi::Vertex => {
            let project = attempt
                .options
                .get("project")
                .map(|project| project.trim())
                .filter(|project| !project.is_empty())
                .ok_or_else(|| {
                    ServiceError::invalid_request(format!(
                        "Vertex AI provider `{}` needs the `project` option",
                        attempt.provider
                    ))
                    .with_param("options.project")
                })?;
            let location = attempt
                .options
                .get("location")
                .map(|location| location.trim())
                .filter(|location| !location.is_empty())
                .unwrap_or(VERTEX_DEFAULT_LOCATION);
            for (name, value) in [("project", project), ("location", location)] {
                if !is_path_segment(value) {
                    return Err(ServiceError::invalid_request(format!(
                        "the `{name}` option of Vertex AI provider `{}` is not valid",
                        attempt.provider
                    ))
                    .with_param(format!("options.{name}")));
                }
            }
            let base_url = if !base_url.is_empty() {
                base_url.to_owned()
            } else if location == "global" {
                "https://aiplatform.googleapis.com/v1".to_owned()
            } else {
                format!("https://{location}-aiplatform.googleapis.com/v1")
            };
            Ok(http::endpoint(
                &base_url,
                &format!(
                    "projects/{project}/locations/{location}/publishers/google/models/{model}:{method}"
                ),
            ))
        }
    }
}

/// Whether `value` can stand in a URL path as one segment without escaping.
fn is_path_segment(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-_.@".contains(character))
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, time::Duration};

    use switchyard_common::ErrorClass;
    use switchyard_proto::v1::ChatRequest;
    use tokio::time::Instant;

    use super::*;
    use crate::http::AttemptLimits;

    fn attempt(base_url: &str, options: &[(&str, &str)]) -> Attempt {
        Attempt {
            provider: "p".to_owned(),
            base_url: base_url.to_owned(),
            upstream_model: "models/gemini-2.5-flash".to_owned(),
            api_key: None,
            options: options
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            secrets: BTreeMap::new(),
            limits: AttemptLimits::new(Instant::now(), Duration::from_secs(1)),
            trace: None,
            request: ChatRequest::default(),
            http: None,
        }
    }

    #[tokio::test]
    async fn urls_follow_each_api() {
        let gemini = endpoint_url(GeminiApi::GenerativeLanguage, &attempt("", &[]), true)
            .expect("valid attempt");
        assert_eq!(
            gemini,
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        let vertex = endpoint_url(
            GeminiApi::Vertex,
            &attempt("", &[("project", "p-1")]),
            false,
        )
        .expect("valid attempt");
        assert_eq!(
            vertex,
            "https://us-central1-aiplatform.googleapis.com/v1/projects/p-1/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
        );
        let global = endpoint_url(
            GeminiApi::Vertex,
            &attempt("", &[("project", "p"), ("location", "global")]),
            false,
        )
        .expect("valid attempt");
        assert!(
            global.starts_with("https://aiplatform.googleapis.com/v1/projects/p/locations/global/")
        );
    }

    #[tokio::test]
    async fn vertex_needs_a_valid_project() {
        let error =
            endpoint_url(GeminiApi::Vertex, &attempt("", &[]), false).expect_err("no project");
        assert_eq!(error.class, ErrorClass::InvalidRequest);
        assert_eq!(error.param.as_deref(), Some("options.project"));
        assert!(error.message.contains("`project`"));
        let error = endpoint_url(
            GeminiApi::Vertex,
            &attempt("", &[("project", "a/b")]),
            false,
        )
        .expect_err("bad project");
        assert_eq!(error.param.as_deref(), Some("options.project"));
    }
}

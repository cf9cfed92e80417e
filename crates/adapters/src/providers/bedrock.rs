//! AWS Bedrock's Converse API (`kind: bedrock`): one request shape for every
//! model Bedrock hosts.
//!
//! - `POST {base_url}/model/{modelId}/converse`, or `…/converse-stream` for
//!   streamed answers (binary AWS event stream, see `event_stream`). The
//!   model id (or inference profile / ARN) is percent-encoded as one path
//!   segment: `anthropic.claude-3-5-sonnet-20240620-v1:0` is sent as
//!   `…-v1%3A0`.
//! - Options: `region` (e.g. `us-east-1`), required unless `base_url` is set
//!   to a regional Bedrock endpoint it can be read from. `base_url` defaults
//!   to `https://bedrock-runtime.{region}.amazonaws.com`.
//! - Credentials: the secrets `aws_access_key_id` + `aws_secret_access_key`
//!   (and `aws_session_token` for temporary credentials) sign each request
//!   with SigV4 (service `bedrock`, see `sigv4`). Without them, `api_key` is
//!   sent as a Bedrock API key (`Authorization: Bearer`). When both are
//!   configured, SigV4 wins.
//! - Translation (see `request`): `response_format` is emulated with a
//!   forced tool call whose input is the answer; `n > 1`, `seed`, penalties,
//!   `parallel_tool_calls: false`, message names and remote image URLs are
//!   refused. `extra_json` may hold `additionalModelRequestFields` (or
//!   `additional_model_request_fields`), `guardrailConfig` and
//!   `performanceConfig`; any other key is refused.
//! - Bedrock returns no response id or model name in the body: chunks carry
//!   the `x-amzn-RequestId` header and the requested model id.

pub(crate) mod event_stream;
pub(crate) mod request;
pub(crate) mod response;
mod sigv4;
pub(crate) mod stream;

use std::time::SystemTime;

use futures::StreamExt;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use switchyard_common::{ErrorClass, Secret, ServiceError};

use self::{
    response::{ConverseResponse, ResponseIdentity},
    sigv4::{Credentials, OutgoingRequest, Scope},
};
use crate::{
    http::{self, HttpClient},
    provider::{Attempt, ChunkStream},
};

/// SigV4 signing name of the Bedrock runtime.
const SIGNING_SERVICE: &str = "bedrock";
/// Content type of `converse-stream` answers.
const EVENT_STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// The Bedrock Converse provider.
#[derive(Debug, Clone)]
pub struct BedrockProvider {
    http: HttpClient,
}

impl BedrockProvider {
    /// Creates the provider over the shared HTTP client.
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }

    /// Sends the attempt; returns its chunks once Bedrock accepted it.
    pub async fn chat(&self, attempt: Attempt) -> Result<ChunkStream, ServiceError> {
        let provider = attempt.provider.as_str();
        let credentials = BedrockCredentials::of(&attempt)?;
        let region = region(&attempt);
        let base_url = match (attempt.base_url.trim(), region.as_deref()) {
            ("", Some(region)) => format!("https://bedrock-runtime.{region}.amazonaws.com"),
            ("", None) => return Err(missing_region(provider)),
            (base_url, _) => base_url.to_owned(),
        };
        let translated = request::converse_request(&attempt.request)
            .map_err(|error| error.with_provider(provider))?;
        let streamed = attempt.request.stream;
        let action = if streamed {
            "converse-stream"
        } else {
            "converse"
        };
        let path = format!(
            "model/{}/{action}",
            sigv4::uri_encode(attempt.upstream_model.as_bytes())
        );
        let url = http::endpoint(&base_url, &path);
        let parsed = reqwest::Url::parse(&url).map_err(|_| {
            ServiceError::new(
                ErrorClass::Internal,
                format!("provider `{provider}` has an invalid base_url"),
            )
            .with_provider(provider)
        })?;
        let accept = if streamed {
            EVENT_STREAM_CONTENT_TYPE
        } else {
            "application/json"
        };
        let scrub = credentials.scrub().cloned();
        let mut builder = match &credentials {
            BedrockCredentials::ApiKey(key) => {
                attempt
                    .client(&self.http)
                    .post_json(&url, Some(key), translated.body)
            }
            BedrockCredentials::AccessKey {
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                let Some(region) = region.as_deref() else {
                    return Err(missing_region(provider));
                };
                let host = match (parsed.host_str(), parsed.port()) {
                    (Some(host), Some(port)) => format!("{host}:{port}"),
                    (Some(host), None) => host.to_owned(),
                    (None, _) => String::new(),
                };
                let signature = sigv4::sign_request(
                    &OutgoingRequest {
                        method: "POST",
                        host: &host,
                        path: parsed.path(),
                        content_type: "application/json",
                        body: &translated.body,
                    },
                    Credentials {
                        access_key_id: access_key_id.expose(),
                        secret_access_key: secret_access_key.expose(),
                        session_token: session_token.map(|token| token.expose()),
                    },
                    Scope {
                        region,
                        service: SIGNING_SERVICE,
                    },
                    SystemTime::now(),
                );
                let mut builder = attempt
                    .client(&self.http)
                    .post_json(&url, None, translated.body)
                    .header("x-amz-date", signature.amz_date)
                    .header("x-amz-content-sha256", signature.content_sha256)
                    .header(AUTHORIZATION, sensitive(&signature.authorization)?);
                if let Some(token) = session_token {
                    builder = builder.header("x-amz-security-token", sensitive(token.expose())?);
                }
                builder
            }
        };
        builder = builder.header(ACCEPT, accept);
        let scrub_key = scrub.as_ref();
        let accepted = http::exchange(
            provider,
            builder,
            attempt.limits,
            attempt.trace.as_ref(),
            |refusal| {
                response::http_error(
                    provider,
                    refusal.status,
                    refusal.headers,
                    refusal.body,
                    scrub_key,
                )
            },
        )
        .await?;
        let identity = ResponseIdentity {
            model: attempt.upstream_model.clone(),
            request_id: accepted
                .headers
                .get("x-amzn-requestid")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
        };
        if streamed {
            if !accepted.has_content_type(EVENT_STREAM_CONTENT_TYPE) {
                return Err(crate::classify::malformed_response(
                    provider,
                    "a streamed answer that is not an event stream",
                ));
            }
            return Ok(stream::chunks(
                provider,
                accepted.body,
                scrub,
                translated.structured_output_tool,
                identity,
            ));
        }
        let bytes = accepted.body.read_to_end().await?;
        let chunk = whole_answer(
            provider,
            &bytes,
            translated.structured_output_tool.as_deref(),
            identity,
        )?;
        Ok(futures::stream::iter([Ok(chunk)]).boxed())
    }
}

/// Translates a non-streamed Converse answer; with `structured_output_tool`,
/// that tool's input is the answer's content.
pub(crate) fn whole_answer(
    provider: &str,
    bytes: &[u8],
    structured_output_tool: Option<&str>,
    identity: ResponseIdentity,
) -> Result<switchyard_proto::v1::ChatChunk, ServiceError> {
    let answer: ConverseResponse = serde_json::from_slice(bytes).map_err(|_| {
        crate::classify::malformed_response(provider, "a response that is not a Converse answer")
    })?;
    Ok(answer.into_chunk(structured_output_tool, identity))
}

/// How requests are authenticated.
enum BedrockCredentials<'a> {
    /// SigV4 with an access key (preferred when configured).
    AccessKey {
        access_key_id: &'a Secret,
        secret_access_key: &'a Secret,
        session_token: Option<&'a Secret>,
    },
    /// A Bedrock API key, sent as a bearer token.
    ApiKey(&'a Secret),
}

impl<'a> BedrockCredentials<'a> {
    fn of(attempt: &'a Attempt) -> Result<Self, ServiceError> {
        let secret = |name: &str| attempt.secrets.get(name);
        let missing = |what: String| {
            ServiceError::new(
                ErrorClass::Authentication,
                format!("provider `{}` {what}", attempt.provider),
            )
            .with_provider(&attempt.provider)
        };
        match (secret("aws_access_key_id"), secret("aws_secret_access_key")) {
            (Some(access_key_id), Some(secret_access_key)) => Ok(Self::AccessKey {
                access_key_id,
                secret_access_key,
                session_token: secret("aws_session_token"),
            }),
            (Some(_), None) => Err(missing(
                "has the secret `aws_access_key_id` but not `aws_secret_access_key`".to_owned(),
            )),
            (None, Some(_)) => Err(missing(
                "has the secret `aws_secret_access_key` but not `aws_access_key_id`".to_owned(),
            )),
            (None, None) => attempt.api_key.as_ref().map(Self::ApiKey).ok_or_else(|| {
                missing(
                    "has no credentials: set the secrets `aws_access_key_id` and \
                     `aws_secret_access_key`, or `api_key`"
                        .to_owned(),
                )
            }),
        }
    }

    /// The secret a provider message could conceivably echo.
    fn scrub(&self) -> Option<&'a Secret> {
        match self {
            Self::AccessKey {
                secret_access_key, ..
            } => Some(secret_access_key),
            Self::ApiKey(key) => Some(key),
        }
    }
}

/// The region from the `region` option, or from a regional Bedrock base URL
/// (`https://bedrock-runtime[-fips].{region}.amazonaws.com`).
fn region(attempt: &Attempt) -> Option<String> {
    if let Some(region) = attempt
        .options
        .get("region")
        .map(|region| region.trim())
        .filter(|region| !region.is_empty())
    {
        return Some(region.to_owned());
    }
    let url = reqwest::Url::parse(attempt.base_url.trim()).ok()?;
    let host = url.host_str()?;
    let rest = host
        .strip_prefix("bedrock-runtime-fips.")
        .or_else(|| host.strip_prefix("bedrock-runtime."))?;
    let (region, _) = rest.split_once('.')?;
    Some(region.to_owned())
}

fn missing_region(provider: &str) -> ServiceError {
    ServiceError::new(
        ErrorClass::Internal,
        format!(
            "provider `{provider}` of kind `bedrock` needs the option `region` \
             (or a regional base_url)"
        ),
    )
    .with_provider(provider)
}

/// A header value that is never logged.
fn sensitive(value: &str) -> Result<HeaderValue, ServiceError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| {
        ServiceError::new(
            ErrorClass::Authentication,
            "the configured AWS credentials contain characters not allowed in a header",
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

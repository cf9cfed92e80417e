//! The provider dispatch: one [`ProviderKind`] per wire format, and the
//! [`Attempt`] every provider receives.
//!
//! Dispatch is a plain `match` rather than a trait object: providers differ
//! in what they need (an HTTP client, nothing at all) and the set is closed.
//! Adding a provider is a module in `providers/`, a variant here and an arm
//! in [`Providers::chat`].

use std::collections::BTreeMap;

use futures::stream::BoxStream;
use switchyard_common::{Secret, ServiceError};
use switchyard_proto::v1::{ChatChunk, ChatRequest, EmbedRequest, EmbedResponse};

use crate::{
    http::{AttemptLimits, HttpClient, TraceHeaders},
    providers::{
        anthropic::AnthropicProvider,
        bedrock::BedrockProvider,
        gemini::{GeminiApi, GeminiProvider},
        gemini_embeddings::GeminiEmbeddings,
        mock,
        openai::{Flavor, OpenAiProvider},
    },
};

/// The canonical chunks of one answer; an error ends the stream.
pub type ChunkStream = BoxStream<'static, Result<ChatChunk, ServiceError>>;

/// The wire formats the adapters speak (`Provider.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Anthropic Messages API.
    Anthropic,
    /// AWS Bedrock Converse API (SigV4 or a Bedrock API key).
    Bedrock,
    /// Google's Gemini API (`generateContent`, API key).
    Gemini,
    /// Gemini on Google Cloud Vertex AI (`generateContent`, OAuth token).
    Vertex,
    /// OpenAI Chat Completions and compatible servers.
    OpenAi,
    /// A server that speaks Chat Completions with quirks (Azure, DeepSeek,
    /// Mistral, Groq, Ollama, ...): the OpenAI provider in a [`Flavor`].
    OpenAiCompatible(Flavor),
    /// The deterministic mock (no network).
    Mock,
}

impl ProviderKind {
    /// Parses a `Provider.kind`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "anthropic" => Some(Self::Anthropic),
            "bedrock" => Some(Self::Bedrock),
            "gemini" => Some(Self::Gemini),
            "vertex" => Some(Self::Vertex),
            "openai" => Some(Self::OpenAi),
            "mock" => Some(Self::Mock),
            name => Flavor::from_kind(name).map(Self::OpenAiCompatible),
        }
    }
}

/// One attempt at one provider, with its secret resolved. `R` is the
/// canonical request: a [`ChatRequest`], or an [`EmbedRequest`] in an
/// [`EmbedAttempt`].
#[derive(Debug)]
pub struct Attempt<R = ChatRequest> {
    /// Provider name from the config, for errors and logs.
    pub provider: String,
    /// Base URL of the provider's API.
    pub base_url: String,
    /// Model name sent upstream.
    pub upstream_model: String,
    /// The API key, when the target has one.
    pub api_key: Option<Secret>,
    /// Provider-specific settings (`Provider.options`); each provider
    /// documents the ones it reads.
    pub options: BTreeMap<String, String>,
    /// Further named secrets (`Provider.secrets`), resolved.
    pub secrets: BTreeMap<String, Secret>,
    /// When the provider must answer, how long it may pause and how much
    /// it may send.
    pub limits: AttemptLimits,
    /// The trace context to hand the provider, when its config allows it.
    pub trace: Option<TraceHeaders>,
    /// The request, `model` already the upstream name.
    pub request: R,
    /// The provider's own HTTP client when it sets a proxy or CA bundle;
    /// `None` for the shared one.
    pub http: Option<HttpClient>,
}

impl<R> Attempt<R> {
    /// The client to send this attempt with: the provider's own, else `shared`.
    pub fn client<'a>(&'a self, shared: &'a HttpClient) -> &'a HttpClient {
        self.http.as_ref().unwrap_or(shared)
    }
}

/// One embeddings attempt at one provider.
pub type EmbedAttempt = Attempt<EmbedRequest>;

/// Every provider, ready to serve attempts.
#[derive(Debug, Clone)]
pub struct Providers {
    anthropic: AnthropicProvider,
    bedrock: BedrockProvider,
    gemini: GeminiProvider,
    gemini_embeddings: GeminiEmbeddings,
    openai: OpenAiProvider,
}

impl Providers {
    /// Creates the providers over one shared HTTP client.
    pub fn new(http: HttpClient) -> Self {
        Self {
            anthropic: AnthropicProvider::new(http.clone()),
            bedrock: BedrockProvider::new(http.clone()),
            gemini: GeminiProvider::new(http.clone()),
            gemini_embeddings: GeminiEmbeddings::new(http.clone()),
            openai: OpenAiProvider::new(http),
        }
    }

    /// Sends `attempt` to a provider of `kind`. Fails before any chunk when
    /// the provider refuses the request; later failures end the stream.
    pub async fn chat(
        &self,
        kind: ProviderKind,
        attempt: Attempt,
    ) -> Result<ChunkStream, ServiceError> {
        match kind {
            ProviderKind::Anthropic => self.anthropic.chat(attempt).await,
            ProviderKind::Bedrock => self.bedrock.chat(attempt).await,
            ProviderKind::Gemini => {
                self.gemini
                    .chat(GeminiApi::GenerativeLanguage, attempt)
                    .await
            }
            ProviderKind::Vertex => self.gemini.chat(GeminiApi::Vertex, attempt).await,
            ProviderKind::OpenAi => self.openai.chat(attempt).await,
            ProviderKind::OpenAiCompatible(flavor) => self.openai.chat_as(flavor, attempt).await,
            ProviderKind::Mock => mock::chat(&attempt),
        }
    }

    /// Sends an embeddings attempt to a provider of `kind`. Kinds without
    /// an embeddings API refuse it with `invalid_request`.
    pub async fn embed(
        &self,
        kind: ProviderKind,
        attempt: EmbedAttempt,
    ) -> Result<EmbedResponse, ServiceError> {
        match kind {
            ProviderKind::OpenAi => self.openai.embed(Flavor::OpenAi, attempt).await,
            ProviderKind::OpenAiCompatible(flavor) => self.openai.embed(flavor, attempt).await,
            ProviderKind::Gemini => self.gemini_embeddings.embed(attempt).await,
            ProviderKind::Mock => mock::embed(&attempt),
            // Anthropic and Bedrock have no embeddings API here; Vertex's
            // embeddings endpoint is not implemented yet.
            _ => Err(ServiceError::invalid_request(format!(
                "provider kind `{}` does not offer embeddings",
                format!("{kind:?}").to_ascii_lowercase()
            ))
            .with_provider(&attempt.provider)),
        }
    }
}

#[cfg(test)]
mod tests {
    use switchyard_common::{
        ErrorClass,
        features::{Feature, expressed_by},
    };

    use super::*;
    use crate::providers::{anthropic, bedrock, gemini};

    /// Whether a provider of `kind` refuses `request` before calling anyone.
    fn refusal(kind: ProviderKind, request: &ChatRequest) -> Option<ServiceError> {
        match kind {
            ProviderKind::Anthropic => anthropic::request::translate(request, 1024).err(),
            ProviderKind::Bedrock => bedrock::request::converse_request(request).err(),
            ProviderKind::Gemini => {
                gemini::request::generate_content_body(request, GeminiApi::GenerativeLanguage).err()
            }
            ProviderKind::Vertex => {
                gemini::request::generate_content_body(request, GeminiApi::Vertex).err()
            }
            ProviderKind::OpenAi | ProviderKind::Mock => None,
            ProviderKind::OpenAiCompatible(flavor) => flavor.check(request).err(),
        }
    }

    /// The routing table the control plane publishes
    /// ([`switchyard_common::features`]) says exactly what the adapters
    /// refuse: a deployment is never planned only to be refused, nor left
    /// out of what it could serve.
    #[test]
    fn the_features_table_matches_what_each_kind_refuses() {
        let kinds = [
            "anthropic",
            "bedrock",
            "gemini",
            "vertex",
            "openai",
            "mock",
            "azure",
            "deepseek",
            "qwen",
            "mistral",
            "groq",
            "together",
            "fireworks",
            "vllm",
            "ollama",
            "llamacpp",
        ];
        for name in kinds {
            let kind = ProviderKind::from_name(name).expect("a kind");
            for feature in Feature::ALL {
                let mut request = ChatRequest {
                    model: "m".to_owned(),
                    messages: vec![switchyard_proto::v1::Message {
                        role: switchyard_proto::v1::Role::User as i32,
                        content: vec![switchyard_proto::v1::ContentPart {
                            part: Some(switchyard_proto::v1::content_part::Part::Text(
                                "Hi".to_owned(),
                            )),
                        }],
                        content_is_text: true,
                        ..switchyard_proto::v1::Message::default()
                    }],
                    ..ChatRequest::default()
                };
                match feature {
                    Feature::Logprobs => request.extra_json = r#"{"logprobs":true}"#.to_owned(),
                    Feature::MultipleChoices => request.n = Some(2),
                }
                let refused = refusal(kind, &request).inspect(|error| {
                    assert_eq!(error.class, ErrorClass::InvalidRequest, "{name}: {error:?}");
                    assert!(
                        error.message.contains(feature.param())
                            || error.param.as_deref() == Some(feature.param()),
                        "{name}: {error:?}"
                    );
                });
                assert_eq!(
                    refused.is_none(),
                    expressed_by(name, feature),
                    "{name} and {feature:?}"
                );
            }
        }
    }
}

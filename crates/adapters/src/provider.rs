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
use switchyard_proto::v1::{ChatChunk, ChatRequest};

use crate::{
    http::{HttpClient, Timing},
    providers::{mock, openai::OpenAiProvider},
};

/// The canonical chunks of one answer; an error ends the stream.
pub type ChunkStream = BoxStream<'static, Result<ChatChunk, ServiceError>>;

/// The wire formats the adapters speak (`Target.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI Chat Completions and compatible servers.
    OpenAi,
    /// The deterministic mock (no network).
    Mock,
}

impl ProviderKind {
    /// Parses a `Target.kind`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "openai" => Some(Self::OpenAi),
            "mock" => Some(Self::Mock),
            _ => None,
        }
    }
}

/// One attempt at one provider, with its secret resolved.
#[derive(Debug)]
pub struct Attempt {
    /// Provider name from the config, for errors and logs.
    pub provider: String,
    /// Base URL of the provider's API.
    pub base_url: String,
    /// Model name sent upstream.
    pub upstream_model: String,
    /// The API key, when the target has one.
    pub api_key: Option<Secret>,
    /// Provider-specific settings (`Target.options`); each provider
    /// documents the ones it reads.
    pub options: BTreeMap<String, String>,
    /// Further named secrets (`Target.secrets`), resolved.
    pub secrets: BTreeMap<String, Secret>,
    /// When the provider must answer, and how long it may pause.
    pub timing: Timing,
    /// The request, `model` already the upstream name.
    pub request: ChatRequest,
}

/// Every provider, ready to serve attempts.
#[derive(Debug, Clone)]
pub struct Providers {
    openai: OpenAiProvider,
}

impl Providers {
    /// Creates the providers over one shared HTTP client.
    pub fn new(http: HttpClient) -> Self {
        Self {
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
            ProviderKind::OpenAi => self.openai.chat(attempt).await,
            ProviderKind::Mock => mock::chat(&attempt),
        }
    }
}

//! Integration tests of the adapters service: a real `AdapterServiceServer`
//! called in-process over gRPC, talking HTTP to `FakeOpenAi` on port 0.

mod adapters {
    pub mod anthropic;
    pub mod bedrock;
    pub mod compat;
    pub mod embeddings;
    pub mod errors;
    pub mod gemini;
    pub mod mock;
    pub mod openai;
}

use std::time::Duration;

use switchyard_adapters::{AdapterConfig, build};
use switchyard_common::{GrpcChannel, ServiceError, config::Environment};
use switchyard_proto::v1::{
    AdapterChatRequest, ChatChunk, ChatRequest, ContentPart, Message, RequestContext, Role,
    SecretRef, Target, adapter_service_client::AdapterServiceClient, content_part::Part,
    secret_ref::Source,
};
use switchyard_test_support::FakeOpenAi;

/// The key the tests' environment holds for the fake provider.
pub(crate) const API_KEY: &str = "sk-test-4f9c2d";
/// The environment variable holding [`API_KEY`].
pub(crate) const API_KEY_VARIABLE: &str = "FAKE_OPENAI_API_KEY";

/// A fake upstream and an adapter client whose environment holds its key.
pub(crate) struct Harness {
    pub(crate) fake: FakeOpenAi,
    pub(crate) client: AdapterServiceClient<GrpcChannel>,
}

impl Harness {
    pub(crate) async fn start() -> Self {
        let environment = Environment::from([(API_KEY_VARIABLE.to_owned(), API_KEY.to_owned())]);
        Self::start_with(environment).await
    }

    pub(crate) async fn start_with(environment: Environment) -> Self {
        let fake = FakeOpenAi::start().await;
        let config = AdapterConfig {
            request_timeout: Duration::from_secs(10),
            ..AdapterConfig::default()
        };
        let server = build(&config, environment).expect("the adapter server builds");
        let client = AdapterServiceClient::new(GrpcChannel::in_process(server));
        Self { fake, client }
    }

    /// A target of kind `openai` at the fake, keyed by [`API_KEY_VARIABLE`].
    pub(crate) fn openai_target(&self) -> Target {
        Target {
            provider: "fake-openai".to_owned(),
            kind: "openai".to_owned(),
            base_url: self.fake.base_url(),
            upstream_model: "gpt-4o-mini".to_owned(),
            api_key: Some(env_key(API_KEY_VARIABLE)),
            ..Target::default()
        }
    }

    /// Sends one attempt and collects its chunks until the end or an error.
    pub(crate) async fn chat(&self, target: Target, request: ChatRequest) -> Outcome {
        let mut client = self.client.clone();
        let attempt = AdapterChatRequest {
            context: Some(RequestContext {
                request_id: "req-1".to_owned(),
                ..RequestContext::default()
            }),
            target: Some(target),
            request: Some(request),
        };
        let mut stream = match client.chat(attempt).await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                return Outcome {
                    chunks: Vec::new(),
                    error: Some(ServiceError::from_status(&status)),
                };
            }
        };
        let mut chunks = Vec::new();
        loop {
            match stream.message().await {
                Ok(Some(response)) => {
                    chunks.push(response.chunk.expect("every response has a chunk"))
                }
                Ok(None) => {
                    return Outcome {
                        chunks,
                        error: None,
                    };
                }
                Err(status) => {
                    return Outcome {
                        chunks,
                        error: Some(ServiceError::from_status(&status)),
                    };
                }
            }
        }
    }
}

/// What an attempt produced.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) chunks: Vec<ChatChunk>,
    pub(crate) error: Option<ServiceError>,
}

impl Outcome {
    /// Returns the chunks, failing the test on an error.
    pub(crate) fn expect_chunks(self) -> Vec<ChatChunk> {
        if let Some(error) = self.error {
            panic!("the attempt failed: {error:?}");
        }
        self.chunks
    }

    /// Returns the error, failing the test when there is none.
    pub(crate) fn expect_error(&self) -> &ServiceError {
        self.error.as_ref().expect("the attempt fails")
    }
}

/// Concatenates the content of chunks.
pub(crate) fn content(chunks: &[ChatChunk]) -> String {
    chunks.iter().map(|chunk| chunk.content.as_str()).collect()
}

pub(crate) fn env_key(name: &str) -> SecretRef {
    SecretRef {
        source: Some(Source::Env(name.to_owned())),
    }
}

pub(crate) fn text_message(role: Role, text: &str) -> Message {
    Message {
        role: role as i32,
        content: vec![ContentPart {
            part: Some(Part::Text(text.to_owned())),
        }],
        content_is_text: true,
        ..Message::default()
    }
}

/// A request with a system prompt and one user message.
pub(crate) fn user_request(text: &str, stream: bool) -> ChatRequest {
    ChatRequest {
        model: "gpt-4o-mini".to_owned(),
        messages: vec![
            text_message(Role::System, "You are terse."),
            text_message(Role::User, text),
        ],
        stream,
        ..ChatRequest::default()
    }
}

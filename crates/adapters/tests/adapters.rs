//! Integration tests of the adapters service: a real `AdapterServiceServer`
//! called in-process over gRPC, talking HTTP to `FakeOpenAi` on port 0.

mod adapters {
    pub mod anthropic;
    pub mod api_keys;
    pub mod bedrock;
    pub mod compat;
    pub mod deployments;
    pub mod embeddings;
    pub mod errors;
    pub mod gemini;
    pub mod mock;
    pub mod openai;
    pub mod timeouts;
}

use std::{collections::BTreeMap, time::Duration};

use switchyard_adapters::{AdapterConfig, AdapterDeps, DeploymentIndex, build};
use switchyard_common::{
    GrpcChannel, ServiceError, config::Environment, metrics::MetricsRegistry,
    snapshot::SnapshotHandle,
};
use switchyard_proto::v1::{
    AdapterChatRequest, AttemptTimeouts, ChatChunk, ChatRequest, ContentPart, Deployment, Message,
    Provider, RequestContext, Role, SecretRef, Snapshot,
    adapter_service_client::AdapterServiceClient, content_part::Part, secret_ref::Source,
};
use switchyard_test_support::FakeOpenAi;

/// The key the tests' environment holds for the fake provider.
pub(crate) const API_KEY: &str = "sk-test-4f9c2d";
/// The environment variable holding [`API_KEY`].
pub(crate) const API_KEY_VARIABLE: &str = "FAKE_OPENAI_API_KEY";

/// One provider deployment, as the tests describe it: the provider account
/// and the model. [`Harness::deploy`] puts it into the adapters' snapshot.
#[derive(Debug, Clone, Default)]
pub(crate) struct Target {
    pub(crate) provider: String,
    pub(crate) kind: String,
    pub(crate) base_url: String,
    pub(crate) upstream_model: String,
    pub(crate) api_key: Option<SecretRef>,
    /// Several keys by id, instead of `api_key`.
    pub(crate) api_keys: BTreeMap<String, SecretRef>,
    pub(crate) timeout_ms: u64,
    pub(crate) options: BTreeMap<String, String>,
    pub(crate) secrets: BTreeMap<String, SecretRef>,
    pub(crate) propagate_trace: bool,
    /// The provider's egress proxy; empty for none.
    pub(crate) proxy_url: String,
    /// Stored credentials in the snapshot.
    pub(crate) credentials: Vec<switchyard_proto::v1::Credential>,
}

/// The `traceparent` every test attempt carries.
pub(crate) const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The variable holding the test master keys, when a test sets it.
pub(crate) const MASTER_KEYS_VARIABLE: &str = "TEST_MASTER_KEYS";

/// The keyring the harness's adapters open stored credentials with.
pub(crate) fn test_keyring(environment: &Environment) -> switchyard_common::envelope::Keyring {
    switchyard_common::envelope::Keyring::new(
        switchyard_common::SecretSource::env(MASTER_KEYS_VARIABLE),
        environment.clone(),
    )
}

/// A fake upstream and an adapter client whose environment holds its key.
pub(crate) struct Harness {
    pub(crate) fake: FakeOpenAi,
    pub(crate) client: AdapterServiceClient<GrpcChannel>,
    /// The adapters' snapshot view, replaced by [`Harness::deploy`].
    pub(crate) deployments: SnapshotHandle<DeploymentIndex>,
}

impl Harness {
    pub(crate) async fn start() -> Self {
        let environment = Environment::from([(API_KEY_VARIABLE.to_owned(), API_KEY.to_owned())]);
        Self::start_with(environment).await
    }

    pub(crate) async fn start_with(environment: Environment) -> Self {
        Self::over(FakeOpenAi::start().await, environment)
    }

    /// An adapter service in front of `fake`, with an empty snapshot.
    pub(crate) fn over(fake: FakeOpenAi, environment: Environment) -> Self {
        let config = AdapterConfig {
            request_timeout: Duration::from_secs(10),
            ..AdapterConfig::default()
        };
        Self::configured(fake, environment, &config)
    }

    /// An adapter service with `config` in front of `fake`, keyed as
    /// [`Harness::start`] is.
    pub(crate) async fn start_configured(config: &AdapterConfig) -> Self {
        let environment = Environment::from([(API_KEY_VARIABLE.to_owned(), API_KEY.to_owned())]);
        Self::configured(FakeOpenAi::start().await, environment, config)
    }

    fn configured(fake: FakeOpenAi, environment: Environment, config: &AdapterConfig) -> Self {
        let deployments = SnapshotHandle::fixed(DeploymentIndex::default());
        let keyring = test_keyring(&environment);
        let mut metrics = MetricsRegistry::default();
        let deps = AdapterDeps {
            deployments: deployments.clone(),
            environment,
            keyring: Some(keyring),
            control_plane: None,
        };
        let server = build(config, deps, &mut metrics).expect("the adapter server builds");
        let client = AdapterServiceClient::new(GrpcChannel::in_process(server));
        Self {
            fake,
            client,
            deployments,
        }
    }

    /// Publishes a snapshot holding exactly `target` (its provider and one
    /// deployment) and returns the deployment's id.
    pub(crate) fn deploy(&self, target: &Target) -> String {
        let id = format!("{}/{}", target.provider, target.upstream_model);
        self.deployments
            .store(DeploymentIndex::from_snapshot(Snapshot {
                version: 1,
                providers: vec![Provider {
                    name: target.provider.clone(),
                    kind: target.kind.clone(),
                    base_url: target.base_url.clone(),
                    api_key: target.api_key.clone(),
                    api_keys: target.api_keys.clone().into_iter().collect(),
                    timeout_ms: target.timeout_ms,
                    options: target.options.clone(),
                    secrets: target.secrets.clone(),
                    meta: None,
                    propagate_trace: target.propagate_trace,
                    proxy_url: target.proxy_url.clone(),
                    ca_bundle_file: String::new(),
                    capacity: None,
                }],
                deployments: vec![Deployment {
                    id: id.clone(),
                    provider: target.provider.clone(),
                    upstream_model: target.upstream_model.clone(),
                    ..Deployment::default()
                }],
                credentials: target.credentials.clone(),
                ..Snapshot::default()
            }));
        id
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
        let deployment_id = self.deploy(&target);
        self.chat_deployment(deployment_id, request).await
    }

    /// Sends one attempt at a deployment id, whatever the snapshot holds.
    pub(crate) async fn chat_deployment(
        &self,
        deployment_id: String,
        request: ChatRequest,
    ) -> Outcome {
        self.chat_within(deployment_id, request, None).await
    }

    /// Sends one attempt at a deployment id under the router's `timeouts`.
    pub(crate) async fn chat_within(
        &self,
        deployment_id: String,
        request: ChatRequest,
        timeouts: Option<AttemptTimeouts>,
    ) -> Outcome {
        let mut client = self.client.clone();
        let attempt = AdapterChatRequest {
            context: Some(RequestContext {
                request_id: "req-1".to_owned(),
                traceparent: TRACEPARENT.to_owned(),
                tracestate: "vendor=1".to_owned(),
                ..RequestContext::default()
            }),
            request: Some(request),
            deployment_id,
            timeouts,
        };
        let mut stream = match client.chat(attempt).await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                return Outcome {
                    chunks: Vec::new(),
                    error: Some(ServiceError::from_status(&status)),
                    credential: String::new(),
                };
            }
        };
        let mut chunks = Vec::new();
        let mut timed = false;
        let mut credential = String::new();
        loop {
            match stream.message().await {
                Ok(Some(response)) => {
                    assert!(!timed, "the upstream timing comes last");
                    credential = response.credential;
                    match (response.chunk, response.upstream) {
                        (Some(chunk), None) => chunks.push(chunk),
                        (None, Some(timing)) => {
                            assert!(timing.first_chunk_micros <= timing.total_micros);
                            timed = true;
                        }
                        other => panic!("a chunk or the timing, never both: {other:?}"),
                    }
                }
                Ok(None) => {
                    assert!(timed, "a whole answer ends with its upstream timing");
                    return Outcome {
                        chunks,
                        error: None,
                        credential,
                    };
                }
                Err(status) => {
                    return Outcome {
                        chunks,
                        error: Some(ServiceError::from_status(&status)),
                        credential,
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
    /// The provider key the answer reported it used; empty when none.
    pub(crate) credential: String,
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

//! Provider adapters: canonical chat to each provider's wire format and back.
//!
//! The adapters own the provider and deployment definitions: they watch
//! their own snapshot from the control plane (the only role that sees
//! provider endpoints and credential references) and index it as a
//! [`DeploymentIndex`]. The router sends one attempt at a time
//! (`AdapterService.Chat`): a deployment id and a canonical request, never a
//! URL or a secret reference. The adapter looks the deployment up (refusing
//! unknown ones), resolves its provider's secrets from its own environment
//! and files (re-read every `secret_refresh`, so rotation needs no restart),
//! speaks the provider's wire format over a pooled HTTP client, streams the
//! answer back as canonical chunks as it arrives, and classifies every failure
//! into an [`ErrorClass`](switchyard_common::ErrorClass) that crosses gRPC as
//! a `Status`.
//!
//! - [`grpc`]: [`AdapterGrpc`], the service; [`build`] wraps it in a server.
//! - `deployments`: [`DeploymentIndex`], the adapters' snapshot view.
//! - `provider`: dispatch on the provider's kind; `providers/`: one module
//!   per wire format (OpenAI and its compatible family, Anthropic, Gemini and
//!   Vertex, Bedrock, the mock).
//! - `http`, `sse`, `classify`, `secrets`: shared by HTTP providers;
//!   `credential_reads` reports each decryption of a stored credential to
//!   the control plane's audit log.
//! - `api_keys`: which of a provider's several keys an attempt uses, and
//!   resting one the provider refused.
//!
//! Depends on `switchyard-proto` and `switchyard-common` only; never on
//! another service crate.

pub mod config;
pub mod error;
pub mod grpc;

mod api_keys;
mod classify;
mod credential_reads;
#[cfg(any(test, fuzzing))]
mod cut;
mod deadlines;
mod deployments;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod network;
mod provider;
mod providers;
mod rate_limits;
mod secrets;
mod spans;
mod sse;
mod timing;

use std::sync::Arc;

use switchyard_common::{
    channel::MAX_GRPC_MESSAGE_BYTES, client::ControlPlaneClient, config::Environment,
    envelope::Keyring, metrics::MetricsRegistry, snapshot::SnapshotHandle,
};
use switchyard_proto::v1::adapter_service_server::AdapterServiceServer;

use crate::credential_reads::CredentialReads;

pub use crate::{
    config::AdapterConfig,
    deployments::{DeploymentIndex, KnownDeployment},
    error::{Error, Result},
    grpc::AdapterGrpc,
};

/// What the adapters are built over.
pub struct AdapterDeps {
    /// Their snapshot view.
    pub deployments: SnapshotHandle<DeploymentIndex>,
    /// Where provider secrets that are references are resolved; never
    /// from requests.
    pub environment: Environment,
    /// Opens stored credentials; `None` without master keys.
    pub keyring: Option<Keyring>,
    /// Where credential decryptions are reported for the audit log; `None`
    /// runs the adapters alone (their own tests), logging them locally only.
    pub control_plane: Option<ControlPlaneClient>,
}

/// Builds the adapters' gRPC server over `deps`; its series are registered
/// in `metrics`.
pub fn build(
    config: &AdapterConfig,
    deps: AdapterDeps,
    metrics: &mut MetricsRegistry,
) -> Result<AdapterServiceServer<AdapterGrpc>> {
    Ok(server(build_service(config, deps, metrics)?))
}

/// Builds the adapter service itself, for direct in-process calls
/// (`switchyard_common::client::AdapterClient::direct`).
pub fn build_service(
    config: &AdapterConfig,
    deps: AdapterDeps,
    metrics: &mut MetricsRegistry,
) -> Result<Arc<AdapterGrpc>> {
    let AdapterDeps {
        deployments,
        environment,
        keyring,
        control_plane,
    } = deps;
    let reads = control_plane.map(|client| CredentialReads::spawn(client, &environment));
    let secrets = secrets::SecretResolver::new(environment, config.secret_refresh)
        .with_keyring(keyring)
        .with_reads(reads);
    let keys = api_keys::KeyRotation::register(metrics.registry());
    let grpc = AdapterGrpc::new(config, deployments, secrets, keys)?;
    Ok(Arc::new(grpc))
}

/// Wraps a built service in its gRPC server.
pub fn server(service: Arc<AdapterGrpc>) -> AdapterServiceServer<AdapterGrpc> {
    AdapterServiceServer::from_arc(service)
        .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES)
}

//! Provider adapters: canonical chat to each provider's wire format and back.
//!
//! The router sends one attempt at a time (`AdapterService.Chat`): a target
//! (provider kind, base URL, secret reference, timeout) and a canonical
//! request. The adapter resolves the key from its own environment, speaks
//! the provider's wire format over a pooled HTTP client, streams the answer
//! back as canonical chunks as it arrives, and classifies every failure into
//! an [`ErrorClass`](switchyard_common::ErrorClass) that crosses gRPC as a
//! `Status`.
//!
//! - [`grpc`]: [`AdapterGrpc`], the service; [`build`] wraps it in a server.
//! - `provider`: dispatch on `Target.kind`; `providers/`: one module per wire
//!   format (`openai`, `mock`).
//! - `http`, `sse`, `classify`: shared by HTTP providers.
//!
//! Depends on `switchyard-proto` and `switchyard-common` only; never on
//! another service crate.

pub mod config;
pub mod error;
pub mod grpc;

mod classify;
mod http;
mod provider;
mod providers;
mod secrets;
mod sse;

use std::sync::Arc;

use switchyard_common::{channel::MAX_GRPC_MESSAGE_BYTES, config::Environment};
use switchyard_proto::v1::adapter_service_server::AdapterServiceServer;

pub use crate::{
    config::AdapterConfig,
    error::{Error, Result},
    grpc::AdapterGrpc,
};

/// Builds the adapters' gRPC server. Provider keys are resolved from
/// `environment` (see `SecretRef`), never from requests.
pub fn build(
    config: &AdapterConfig,
    environment: Environment,
) -> Result<AdapterServiceServer<AdapterGrpc>> {
    Ok(server(build_service(config, environment)?))
}

/// Builds the adapter service itself, for direct in-process calls
/// (`switchyard_common::direct::AdapterClient::direct`).
pub fn build_service(config: &AdapterConfig, environment: Environment) -> Result<Arc<AdapterGrpc>> {
    let grpc = AdapterGrpc::new(config, secrets::SecretResolver::new(environment))?;
    Ok(Arc::new(grpc))
}

/// Wraps a built service in its gRPC server.
pub fn server(service: Arc<AdapterGrpc>) -> AdapterServiceServer<AdapterGrpc> {
    AdapterServiceServer::from_arc(service)
        .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES)
}

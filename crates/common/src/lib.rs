//! Shared plumbing of the Switchyard services.
//!
//! - [`error`]: the error classes every service speaks, mapped once to gRPC
//!   `Status`, HTTP status and OpenAI error type.
//! - [`channel`]: [`GrpcChannel`], one client transport that is either a real
//!   gRPC connection (distributed) or a server value called in-process
//!   (all-in-one), so callers never know where a service runs.
//! - [`client`]: one client type per service, every call through one
//!   outbound layer (request id, trace context, deadline) in both modes; the
//!   hot hops (edge → router, router → adapters) skip encoding in-process.
//! - [`config`]: YAML loading with `SWITCHYARD__` environment overrides taken
//!   from an explicit environment map, naming the full path of any bad field.
//! - [`secret`]: secret references and a redacting secret wrapper.
//! - [`service_auth`]: per-role tokens on every internal gRPC hop.
//! - [`features`]: request features some provider kinds cannot express.
//! - [`money`]: exact decimal amounts.
//! - [`metrics`]: the process's Prometheus registry, bucket layouts and
//!   bounded labels.
//! - [`snapshot`]: the client side of the control plane's `Watch` stream.
//! - [`grpc`], [`telemetry`], [`shutdown`]: serving, logging and stopping.
//!
//! Depends on `switchyard-proto` only; service crates depend on this one and
//! never on each other.

pub mod auth;
pub mod calendar;
pub mod channel;
pub mod client;
pub mod config;
pub mod envelope;
pub mod error;
pub mod features;
pub mod grpc;
pub mod memory;
pub mod metrics;
pub mod money;
pub mod secret;
pub mod service_auth;
pub mod shutdown;
pub mod snapshot;
pub mod task;
pub mod telemetry;
pub mod trace;

pub use channel::GrpcChannel;
pub use error::{ErrorClass, ServiceError};
pub use secret::{Secret, SecretSource};

//! Serving a set of gRPC services on an already-bound listener, with the
//! standard health service (`grpc.health.v1.Health`, open to probes that
//! carry no credential) and server reflection (`grpc.reflection.v1`, so
//! `grpcurl` needs no .proto files) beside them.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    channel::{CONNECTION_WINDOW_BYTES, STREAM_WINDOW_BYTES},
    service_auth::{CallerVerifier, RequireCaller},
};
use tonic::{
    service::Routes,
    transport::{Server, server::TcpIncoming},
};

/// Adds the standard health service (the server as a whole, service "",
/// reports SERVING while it runs) and server reflection over the contract to
/// `routes`.
pub fn with_health_and_reflection(routes: Routes) -> Routes {
    let (_health, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(switchyard_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1();
    let mut routes = routes.add_service(health);
    match reflection {
        Ok(reflection) => routes = routes.add_service(reflection),
        // The descriptors are compiled in; a build that cannot read them
        // still serves, without reflection.
        Err(error) => tracing::warn!(%error, "gRPC reflection is off"),
    }
    routes
}

/// Serves `routes`, health and reflection on `listener` until `shutdown` is
/// cancelled, then stops accepting and lets in-flight calls finish. Every
/// call but a health check must carry a credential `callers` accepts;
/// others are refused before any service sees them.
///
/// Takes a bound listener so the binary and the tests start services the same
/// way (tests bind port 0).
pub async fn serve_grpc(
    listener: TcpListener,
    routes: Routes,
    callers: CallerVerifier,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let routes = with_health_and_reflection(routes);
    Server::builder()
        // Fixed windows, as on every client (see `STREAM_WINDOW_BYTES`): a
        // stream the server's caller does not read holds only its own.
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .layer(RequireCaller::new(callers))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}

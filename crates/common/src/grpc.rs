//! Serving a set of gRPC services on an already-bound listener.

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

/// Serves `routes` on `listener` until `shutdown` is cancelled, then stops
/// accepting and lets in-flight calls finish. Every call must carry a
/// credential `callers` accepts; others are refused before any service
/// sees them.
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

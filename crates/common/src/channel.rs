//! [`GrpcChannel`]: the one transport every generated client runs over.

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use futures::future::BoxFuture;
use tonic::{body::Body, transport::Endpoint};
use tower::{Service, ServiceExt, util::BoxCloneSyncService};

use crate::service_auth::ServiceCredential;

/// Errors a [`GrpcChannel`] call can fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Largest gRPC message any Switchyard client or server accepts (64 MiB):
/// requests carry whole conversations, with images.
pub const MAX_GRPC_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Flow-control window of one gRPC stream (1 MiB), on clients and servers.
///
/// Fixed rather than adaptive: with an adaptive window each stream's window
/// grows toward the connection's, so one stream whose reader has stopped
/// (a slow client behind an edge) could hold the whole connection's window
/// and stall every other call on it. An unread stream now holds at most
/// this much, and the connection window covers
/// `CONNECTION_WINDOW_BYTES / STREAM_WINDOW_BYTES` (2,047) stalled streams
/// before any other stream waits for credit.
pub const STREAM_WINDOW_BYTES: u32 = 1024 * 1024;

/// Flow-control window of one gRPC connection: HTTP/2's largest.
pub const CONNECTION_WINDOW_BYTES: u32 = (1 << 31) - 1;

type InProcessService = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, BoxError>;

/// A gRPC transport that is either a network connection or a server value
/// called directly in the same process.
///
/// Generated clients are generic over their transport, so
/// `RouterServiceClient<GrpcChannel>` works unchanged whether the router runs
/// in another pod or in this process (`switchyard serve`).
#[derive(Clone)]
pub struct GrpcChannel {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Remote(tonic::transport::Channel, ServiceCredential),
    InProcess(InProcessService),
}

/// Errors creating a remote channel.
#[derive(Debug, thiserror::Error)]
#[error("invalid gRPC endpoint `{url}`: {source}")]
pub struct ChannelError {
    url: String,
    source: tonic::transport::Error,
}

impl GrpcChannel {
    /// Creates a channel to a remote service at `url` (e.g. `http://router:7001`)
    /// whose every call carries `credential`. Connects on first use and
    /// reconnects as needed.
    pub fn connect_lazy(url: &str, credential: ServiceCredential) -> Result<Self, ChannelError> {
        let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|source| ChannelError {
            url: url.to_owned(),
            source,
        })?;
        let channel = endpoint
            .tcp_nodelay(true)
            .connect_timeout(std::time::Duration::from_secs(5))
            .http2_adaptive_window(false)
            .initial_stream_window_size(STREAM_WINDOW_BYTES)
            .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
            .connect_lazy();
        Ok(Self {
            inner: Inner::Remote(channel, credential),
        })
    }

    /// Creates a channel that calls a generated server (e.g.
    /// `RouterServiceServer<RouterGrpc>`) in this process, without sockets.
    pub fn in_process<S>(server: S) -> Self
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let service = server.map_err(|never: Infallible| -> BoxError { match never {} });
        Self {
            inner: Inner::InProcess(BoxCloneSyncService::new(service)),
        }
    }
}

impl Service<http::Request<Body>> for GrpcChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match &mut self.inner {
            Inner::Remote(channel, _) => channel.poll_ready(cx).map_err(Into::into),
            Inner::InProcess(service) => service.poll_ready(cx),
        }
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        match &mut self.inner {
            Inner::Remote(channel, credential) => {
                credential.apply(request.headers_mut());
                let call = channel.call(request);
                Box::pin(async move { call.await.map_err(Into::into) })
            }
            Inner::InProcess(service) => service.call(request),
        }
    }
}

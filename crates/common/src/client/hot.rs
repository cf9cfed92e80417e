//! Clients of the two hot hops (edge → router, router → adapters) that call
//! the service in-process without encoding when it runs in this process, and
//! over gRPC otherwise. Both carry the request's context in the message
//! itself, which is what the service reads. Only remote calls go through
//! [`outbound::call`]: the metadata copy of that context is for layers in
//! front of a remote server, and the deadline backstop timer is for a
//! callee that may hang on a broken network; an in-process callee is our
//! own code, which enforces the deadline itself. (Building that metadata
//! cost about 4,000 instructions per hop: BENCHMARKS.md.)
//!
//! [`GrpcChannel::in_process`] already avoids sockets, but every call still
//! pays protobuf encoding, HTTP framing and decoding on both sides, per
//! request and per streamed chunk. On the data path of `switchyard serve`
//! that was a large share of the gateway's CPU (see BENCHMARKS.md), so these
//! clients hand the message values, with the same metadata, straight to the
//! service trait instead. Both variants speak the same generated messages
//! and `Status` errors, so callers cannot tell them apart.

use std::sync::Arc;

use futures::{StreamExt, stream::BoxStream};
use switchyard_proto::v1::{
    AdapterChatRequest, AdapterChatResponse, AdapterEmbedRequest, AdapterEmbedResponse,
    RouterChatRequest, RouterChatResponse, RouterEmbedRequest, RouterEmbedResponse,
    adapter_service_client::AdapterServiceClient, adapter_service_server::AdapterService,
    router_service_client::RouterServiceClient, router_service_server::RouterService,
};
use tonic::{Request, Status};

use super::outbound;
use crate::{GrpcChannel, channel::MAX_GRPC_MESSAGE_BYTES};

/// A server-streamed response, whichever way it was produced.
pub type ResponseStream<T> = BoxStream<'static, Result<T, Status>>;

/// Generates, for one hot service, the direct-call trait (implemented by
/// every generated service trait implementation) and the two-variant client.
macro_rules! hot_client {
    (
        $(#[$client_doc:meta])* $client:ident,
        $(#[$direct_doc:meta])* $direct:ident,
        $service:ident, $grpc_client:ident,
        $chat:ty => $chunk:ty, $embed:ty => $embedded:ty $(,)?
    ) => {
        $(#[$direct_doc])*
        #[tonic::async_trait]
        pub trait $direct: Send + Sync + 'static {
            /// `Chat`: a stream of response chunks.
            async fn chat(&self, request: Request<$chat>) -> Result<ResponseStream<$chunk>, Status>;
            /// `Embed`: one response.
            async fn embed(&self, request: Request<$embed>) -> Result<$embedded, Status>;
        }

        #[tonic::async_trait]
        impl<T: $service> $direct for T {
            async fn chat(&self, request: Request<$chat>) -> Result<ResponseStream<$chunk>, Status> {
                Ok($service::chat(self, request).await?.into_inner().boxed())
            }

            async fn embed(&self, request: Request<$embed>) -> Result<$embedded, Status> {
                Ok($service::embed(self, request).await?.into_inner())
            }
        }

        $(#[$client_doc])*
        #[derive(Clone)]
        pub enum $client {
            /// Over a [`GrpcChannel`].
            Remote($grpc_client<GrpcChannel>),
            /// Calls on the service in this process.
            Direct(Arc<dyn $direct>),
        }

        impl $client {
            /// A client over a channel (remote or in-process gRPC).
            pub fn remote(channel: GrpcChannel) -> Self {
                Self::Remote(
                    $grpc_client::new(channel)
                        .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
                        .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES),
                )
            }

            /// A client calling `service` directly.
            pub fn direct<T: $service>(service: Arc<T>) -> Self {
                Self::Direct(service)
            }

            /// `Chat`: resolves once the service answered with its stream.
            pub async fn chat(&self, message: $chat) -> Result<ResponseStream<$chunk>, Status> {
                match self {
                    Self::Remote(client) => {
                        outbound::call(message, |request| async move {
                            Ok(client.clone().chat(request).await?.into_inner().boxed())
                        })
                        .await
                    }
                    Self::Direct(service) => service.chat(Request::new(message)).await,
                }
            }

            /// `Embed`.
            pub async fn embed(&self, message: $embed) -> Result<$embedded, Status> {
                match self {
                    Self::Remote(client) => {
                        outbound::call(message, |request| async move {
                            Ok(client.clone().embed(request).await?.into_inner())
                        })
                        .await
                    }
                    Self::Direct(service) => service.embed(Request::new(message)).await,
                }
            }
        }
    };
}

hot_client!(
    /// A client of the router: remote over gRPC, or direct in-process.
    RouterClient,
    /// The router's calls, made directly on an in-process service.
    DirectRouter,
    RouterService,
    RouterServiceClient,
    RouterChatRequest => RouterChatResponse,
    RouterEmbedRequest => RouterEmbedResponse,
);

hot_client!(
    /// A client of the adapters: remote over gRPC, or direct in-process.
    AdapterClient,
    /// The adapters' calls, made directly on an in-process service.
    DirectAdapter,
    AdapterService,
    AdapterServiceClient,
    AdapterChatRequest => AdapterChatResponse,
    AdapterEmbedRequest => AdapterEmbedResponse,
);

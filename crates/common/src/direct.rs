//! Clients of the two hot hops (edge → router, router → adapters) that call
//! the service in-process without encoding when it runs in this process, and
//! over gRPC otherwise.
//!
//! [`GrpcChannel::in_process`] already avoids sockets, but every call still
//! pays protobuf encoding, HTTP framing and decoding on both sides, per
//! request and per streamed chunk. On the data path of `switchyard serve`
//! that was a large share of the gateway's CPU (see BENCHMARKS.md), so these
//! clients hand the message values straight to the service trait instead.
//! Both variants speak the same generated messages and `Status` errors, so
//! callers cannot tell them apart.

use std::sync::Arc;

use futures::{StreamExt, stream::BoxStream};
use switchyard_proto::v1::{
    AdapterChatRequest, AdapterChatResponse, AdapterEmbedRequest, AdapterEmbedResponse,
    RouterChatRequest, RouterChatResponse, RouterEmbedRequest, RouterEmbedResponse,
    adapter_service_client::AdapterServiceClient, adapter_service_server::AdapterService,
    router_service_client::RouterServiceClient, router_service_server::RouterService,
};
use tonic::{Request, Status};

use crate::{GrpcChannel, channel::MAX_GRPC_MESSAGE_BYTES};

/// A server-streamed response, whichever way it was produced.
pub type ResponseStream<T> = BoxStream<'static, Result<T, Status>>;

/// The router's calls, made directly on an in-process service.
#[tonic::async_trait]
pub trait DirectRouter: Send + Sync + 'static {
    /// `RouterService.Chat`.
    async fn chat(
        &self,
        request: RouterChatRequest,
    ) -> Result<ResponseStream<RouterChatResponse>, Status>;
    /// `RouterService.Embed`.
    async fn embed(&self, request: RouterEmbedRequest) -> Result<RouterEmbedResponse, Status>;
}

#[tonic::async_trait]
impl<T: RouterService> DirectRouter for T {
    async fn chat(
        &self,
        request: RouterChatRequest,
    ) -> Result<ResponseStream<RouterChatResponse>, Status> {
        let response = RouterService::chat(self, Request::new(request)).await?;
        Ok(response.into_inner().boxed())
    }

    async fn embed(&self, request: RouterEmbedRequest) -> Result<RouterEmbedResponse, Status> {
        let response = RouterService::embed(self, Request::new(request)).await?;
        Ok(response.into_inner())
    }
}

/// A client of the router: remote over gRPC, or direct in-process.
#[derive(Clone)]
pub enum RouterClient {
    /// Over a [`GrpcChannel`].
    Remote(RouterServiceClient<GrpcChannel>),
    /// Calls on the router service in this process.
    Direct(Arc<dyn DirectRouter>),
}

impl RouterClient {
    /// A client over a channel (remote or in-process gRPC).
    pub fn remote(channel: GrpcChannel) -> Self {
        Self::Remote(
            RouterServiceClient::new(channel)
                .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES),
        )
    }

    /// A client calling `service` directly.
    pub fn direct<T: RouterService>(service: Arc<T>) -> Self {
        Self::Direct(service)
    }

    /// `RouterService.Chat`.
    pub async fn chat(
        &self,
        request: RouterChatRequest,
    ) -> Result<ResponseStream<RouterChatResponse>, Status> {
        match self {
            Self::Remote(client) => {
                let response = client.clone().chat(request).await?;
                Ok(response.into_inner().boxed())
            }
            Self::Direct(service) => service.chat(request).await,
        }
    }

    /// `RouterService.Embed`.
    pub async fn embed(&self, request: RouterEmbedRequest) -> Result<RouterEmbedResponse, Status> {
        match self {
            Self::Remote(client) => Ok(client.clone().embed(request).await?.into_inner()),
            Self::Direct(service) => service.embed(request).await,
        }
    }
}

/// The adapters' calls, made directly on an in-process service.
#[tonic::async_trait]
pub trait DirectAdapter: Send + Sync + 'static {
    /// `AdapterService.Chat`.
    async fn chat(
        &self,
        request: AdapterChatRequest,
    ) -> Result<ResponseStream<AdapterChatResponse>, Status>;
    /// `AdapterService.Embed`.
    async fn embed(&self, request: AdapterEmbedRequest) -> Result<AdapterEmbedResponse, Status>;
}

#[tonic::async_trait]
impl<T: AdapterService> DirectAdapter for T {
    async fn chat(
        &self,
        request: AdapterChatRequest,
    ) -> Result<ResponseStream<AdapterChatResponse>, Status> {
        let response = AdapterService::chat(self, Request::new(request)).await?;
        Ok(response.into_inner().boxed())
    }

    async fn embed(&self, request: AdapterEmbedRequest) -> Result<AdapterEmbedResponse, Status> {
        let response = AdapterService::embed(self, Request::new(request)).await?;
        Ok(response.into_inner())
    }
}

/// A client of the adapters: remote over gRPC, or direct in-process.
#[derive(Clone)]
pub enum AdapterClient {
    /// Over a [`GrpcChannel`].
    Remote(AdapterServiceClient<GrpcChannel>),
    /// Calls on the adapter service in this process.
    Direct(Arc<dyn DirectAdapter>),
}

impl AdapterClient {
    /// A client over a channel (remote or in-process gRPC).
    pub fn remote(channel: GrpcChannel) -> Self {
        Self::Remote(
            AdapterServiceClient::new(channel)
                .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES),
        )
    }

    /// A client calling `service` directly.
    pub fn direct<T: AdapterService>(service: Arc<T>) -> Self {
        Self::Direct(service)
    }

    /// `AdapterService.Chat`.
    pub async fn chat(
        &self,
        request: AdapterChatRequest,
    ) -> Result<ResponseStream<AdapterChatResponse>, Status> {
        match self {
            Self::Remote(client) => {
                let response = client.clone().chat(request).await?;
                Ok(response.into_inner().boxed())
            }
            Self::Direct(service) => service.chat(request).await,
        }
    }

    /// `AdapterService.Embed`.
    pub async fn embed(
        &self,
        request: AdapterEmbedRequest,
    ) -> Result<AdapterEmbedResponse, Status> {
        match self {
            Self::Remote(client) => Ok(client.clone().embed(request).await?.into_inner()),
            Self::Direct(service) => service.embed(request).await,
        }
    }
}

//! `RouterGrpc`: the `RouterService` implementation.

use std::sync::Arc;

use switchyard_common::{
    ErrorClass, GrpcChannel, ServiceError, channel::MAX_GRPC_MESSAGE_BYTES, direct::ResponseStream,
    snapshot::SnapshotHandle,
};
use switchyard_proto::v1::{
    RequestContext, RouterChatRequest, RouterChatResponse, RouterEmbedRequest, RouterEmbedResponse,
    cache_service_client::CacheServiceClient, router_service_server::RouterService,
};
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status};

use crate::{
    RouteTable, attempt::Adapters, embeddings, exchange::Exchange, route_table::Route,
    usage::UsageEmitter,
};

/// The router's gRPC service.
pub struct RouterGrpc {
    routes: SnapshotHandle<RouteTable>,
    adapters: Adapters,
    cache: CacheServiceClient<GrpcChannel>,
    usage: UsageEmitter,
    tasks: TaskTracker,
    cache_lookup_timeout: std::time::Duration,
}

impl RouterGrpc {
    /// Creates the service from its collaborators.
    pub(crate) fn new(
        routes: SnapshotHandle<RouteTable>,
        adapters: Adapters,
        cache: GrpcChannel,
        usage: UsageEmitter,
        tasks: TaskTracker,
        cache_lookup_timeout: std::time::Duration,
    ) -> Self {
        let cache = CacheServiceClient::new(cache)
            .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES);
        Self {
            routes,
            adapters,
            cache,
            usage,
            tasks,
            cache_lookup_timeout,
        }
    }

    /// Returns the route of `model` when the caller's key may use it and it
    /// has somewhere to go.
    fn resolve_route(
        &self,
        context: &RequestContext,
        model: &str,
    ) -> Result<Arc<Route>, ServiceError> {
        let table: Arc<RouteTable> = self.routes.load().ok_or_else(|| {
            ServiceError::new(
                ErrorClass::UpstreamUnavailable,
                "the router has not received its configuration yet",
            )
        })?;
        let route = table.route(model).cloned().ok_or_else(|| {
            ServiceError::new(
                ErrorClass::NotFound,
                format!("The model `{model}` does not exist."),
            )
            .with_param("model")
        })?;
        if !table.key_may_use(&context.key_id, model) {
            return Err(ServiceError::new(
                ErrorClass::Permission,
                format!("This API key may not use the model `{model}`."),
            )
            .with_param("model"));
        }
        if route.targets.is_empty() {
            return Err(ServiceError::new(
                ErrorClass::UpstreamUnavailable,
                format!("The model `{model}` has no available target."),
            ));
        }
        Ok(route)
    }
}

#[tonic::async_trait]
impl RouterService for RouterGrpc {
    type ChatStream = ResponseStream<RouterChatResponse>;

    async fn chat(
        &self,
        request: Request<RouterChatRequest>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        let RouterChatRequest { context, request } = request.into_inner();
        let context =
            context.ok_or_else(|| ServiceError::invalid_request("missing request context"))?;
        let chat = request.ok_or_else(|| ServiceError::invalid_request("missing chat request"))?;
        let route = self.resolve_route(&context, &chat.model)?;
        let exchange = Exchange {
            context,
            chat,
            route,
            adapters: self.adapters.clone(),
            cache: self.cache.clone(),
            cache_lookup_timeout: self.cache_lookup_timeout,
            usage: self.usage.clone(),
            tasks: self.tasks.clone(),
        };
        // Driven by the caller's reads; settles usage and the cache when
        // it ends or is dropped.
        Ok(Response::new(exchange.into_stream()))
    }

    async fn embed(
        &self,
        request: Request<RouterEmbedRequest>,
    ) -> Result<Response<RouterEmbedResponse>, Status> {
        let RouterEmbedRequest { context, request } = request.into_inner();
        let context =
            context.ok_or_else(|| ServiceError::invalid_request("missing request context"))?;
        let embed =
            request.ok_or_else(|| ServiceError::invalid_request("missing embeddings request"))?;
        let route = self.resolve_route(&context, &embed.model)?;
        let response =
            embeddings::embed(&self.adapters, &self.usage, context, route, embed).await?;
        Ok(Response::new(response))
    }
}

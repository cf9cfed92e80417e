//! `RouterGrpc`: the `RouterService` implementation. Each call is planned
//! (`plan`), attempted and forwarded (`forward`, `embeddings`), and settled
//! (`settle`).

use switchyard_common::{
    ServiceError,
    client::ResponseStream,
    snapshot::{STARTUP_PATIENCE, SnapshotHandle},
};
use switchyard_proto::v1::{
    RouterChatRequest, RouterChatResponse, RouterEmbedRequest, RouterEmbedResponse,
    router_service_server::RouterService,
};
use tonic::{Request, Response, Status};

use crate::{
    RouteTable,
    attempt::Adapters,
    embeddings,
    forward::{CacheLimits, Exchange},
    plan::plan,
    settle::Settler,
};

/// The router's gRPC service.
pub struct RouterGrpc {
    routes: SnapshotHandle<RouteTable>,
    adapters: Adapters,
    settler: Settler,
    cache: CacheLimits,
}

impl RouterGrpc {
    /// Creates the service from its collaborators.
    pub(crate) fn new(
        routes: SnapshotHandle<RouteTable>,
        adapters: Adapters,
        settler: Settler,
        cache: CacheLimits,
    ) -> Self {
        Self {
            routes,
            adapters,
            settler,
            cache,
        }
    }
}

/// Logs a refused request once, here at the boundary, with its request id
/// and error class (never its text).
fn refused(request_id: &str, error: ServiceError) -> Status {
    tracing::info!(request_id, class = %error.class, "request refused");
    error.to_status()
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
        let table = self.routes.load_or_wait(STARTUP_PATIENCE).await;
        let plan = plan(table.as_deref(), &context, &chat.model)
            .map_err(|error| refused(&context.request_id, error))?;
        let exchange = Exchange {
            context,
            chat,
            plan,
            adapters: self.adapters.clone(),
            settler: self.settler.clone(),
            cache: self.cache,
        };
        // Driven by the caller's reads; settles when it ends or is dropped.
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
        let table = self.routes.load_or_wait(STARTUP_PATIENCE).await;
        let plan = plan(table.as_deref(), &context, &embed.model)
            .map_err(|error| refused(&context.request_id, error))?;
        let request_id = context.request_id.clone();
        let response = embeddings::embed(&self.adapters, &self.settler, context, plan, embed)
            .await
            .map_err(|error| refused(&request_id, error))?;
        Ok(Response::new(response))
    }
}

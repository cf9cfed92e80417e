//! `RouterGrpc`: the `RouterService` implementation. Each call is planned
//! (`plan`), attempted and forwarded (`forward`, `embeddings`), and settled
//! (`settle`).

use std::sync::Arc;

use switchyard_common::{
    ServiceError,
    client::ResponseStream,
    snapshot::{STARTUP_PATIENCE, SnapshotHandle},
    trace::HopSpan,
};
use switchyard_proto::v1::{
    RouterChatRequest, RouterChatResponse, RouterEmbedRequest, RouterEmbedResponse,
    router_service_server::RouterService,
};
use tonic::{Request, Response, Status};

use crate::{
    RouteTable,
    attempt::Adapters,
    constraints::Needs,
    embeddings,
    forward::{CacheLimits, Exchange},
    health::Health,
    plan::{Plan, plan},
    settle::Settler,
    spans,
};

/// The router's gRPC service.
pub struct RouterGrpc {
    routes: SnapshotHandle<RouteTable>,
    adapters: Adapters,
    settler: Settler,
    cache: CacheLimits,
    health: Arc<Health>,
}

impl RouterGrpc {
    /// Creates the service from its collaborators.
    pub(crate) fn new(
        routes: SnapshotHandle<RouteTable>,
        adapters: Adapters,
        settler: Settler,
        cache: CacheLimits,
        health: Arc<Health>,
    ) -> Self {
        Self {
            routes,
            adapters,
            settler,
            cache,
            health,
        }
    }
}

impl RouterGrpc {
    /// The router's snapshot handle.
    pub(crate) fn routes(&self) -> SnapshotHandle<RouteTable> {
        self.routes.clone()
    }

    /// The client side of the adapters.
    pub(crate) fn adapters(&self) -> Adapters {
        self.adapters.clone()
    }

    /// What settles requests.
    pub(crate) fn settler(&self) -> Settler {
        self.settler.clone()
    }

    /// What the router has seen of each deployment.
    pub(crate) fn health(&self) -> Arc<Health> {
        Arc::clone(&self.health)
    }
}

/// Logs a refused request once, here at the boundary, with its request id
/// and error class (never its text), and marks its span failed.
fn refused(request_id: &str, span: &HopSpan, error: ServiceError) -> Status {
    tracing::info!(request_id, class = %error.class, "request refused");
    span.fail(error.class.as_str());
    error.to_status()
}

/// Names the plan on the request's span.
fn planned(span: &HopSpan, plan: &Plan) {
    if span.is_sampled() {
        let candidates: Vec<&str> = plan.candidates.iter().map(|d| d.id.as_str()).collect();
        spans::planned(span, &plan.route.name, plan.snapshot_version, &candidates);
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
        let mut context =
            context.ok_or_else(|| ServiceError::invalid_request("missing request context"))?;
        let chat = request.ok_or_else(|| ServiceError::invalid_request("missing chat request"))?;
        let span = spans::request("chat", &mut context, &chat.model);
        let table = self.routes.load_or_wait(STARTUP_PATIENCE).await;
        let needs = Needs::chat(&chat);
        let plan = plan(
            table.as_deref(),
            &self.health,
            &context,
            &chat.model,
            &needs,
            Some(&chat),
        )
        .map_err(|error| refused(&context.request_id, &span, error))?;
        planned(&span, &plan);
        plan.route.timeouts.bound(&mut context);
        let exchange = Exchange {
            context,
            chat,
            plan,
            adapters: self.adapters.clone(),
            settler: self.settler.clone(),
            cache: self.cache,
            health: Arc::clone(&self.health),
            span,
        };
        // Driven by the caller's reads; settles when it ends or is dropped.
        Ok(Response::new(exchange.into_stream()))
    }

    async fn embed(
        &self,
        request: Request<RouterEmbedRequest>,
    ) -> Result<Response<RouterEmbedResponse>, Status> {
        let RouterEmbedRequest { context, request } = request.into_inner();
        let mut context =
            context.ok_or_else(|| ServiceError::invalid_request("missing request context"))?;
        let embed =
            request.ok_or_else(|| ServiceError::invalid_request("missing embeddings request"))?;
        let span = spans::request("embeddings", &mut context, &embed.model);
        let table = self.routes.load_or_wait(STARTUP_PATIENCE).await;
        let needs = Needs::embed(&embed);
        let plan = plan(
            table.as_deref(),
            &self.health,
            &context,
            &embed.model,
            &needs,
            None,
        )
        .map_err(|error| refused(&context.request_id, &span, error))?;
        planned(&span, &plan);
        plan.route.timeouts.bound(&mut context);
        let request_id = context.request_id.clone();
        // Settling ends the span; a refusal is recorded on it first.
        let response = embeddings::embed(
            &self.adapters,
            &self.settler,
            &self.health,
            context,
            plan,
            embed,
            span.clone(),
        )
        .await
        .map_err(|error| refused(&request_id, &span, error))?;
        Ok(Response::new(response))
    }
}

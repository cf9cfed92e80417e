//! [`CacheGrpc`]: the `CacheService` implementation.

use std::{sync::Arc, time::Duration};

use switchyard_common::trace::{HopSpan, Opening, SpanKind};
use switchyard_proto::v1::{
    LookupRequest, LookupResponse, RequestContext, StoreRequest, StoreResponse,
    cache_service_server::CacheService,
};
use tonic::{Request, Response, Status};

use crate::{
    error::{Error, Result},
    key::exact_key,
    store::{MAX_TTL, ResponseStore},
};

/// Serves `CacheService` over a [`ResponseStore`].
#[derive(Clone)]
pub struct CacheGrpc {
    store: Arc<dyn ResponseStore>,
}

impl CacheGrpc {
    /// Creates the service over `store`.
    pub fn new(store: Arc<dyn ResponseStore>) -> Self {
        Self { store }
    }

    async fn lookup_response(&self, request: LookupRequest) -> Result<LookupResponse> {
        let key = exact_key(request.query)?;
        let response = self.store.lookup(&key).await?;
        Ok(LookupResponse { response })
    }

    async fn store_response(&self, request: StoreRequest) -> Result<StoreResponse> {
        let key = exact_key(request.query)?;
        let response = request.response.ok_or(Error::InvalidRequest {
            field: "response",
            reason: "is required",
        })?;
        let ttl = Duration::from_millis(request.ttl_ms);
        if ttl.is_zero() || ttl > MAX_TTL {
            return Err(Error::InvalidRequest {
                field: "ttl_ms",
                reason: "must be between 1 ms and 365 days",
            });
        }
        self.store.store(&key, &response, ttl).await?;
        Ok(StoreResponse {})
    }

    /// The span of one `operation`, the child of the router's span named
    /// in `context`.
    fn span(&self, operation: &'static str, context: Option<&RequestContext>) -> HopSpan {
        let Some(context) = context else {
            return HopSpan::none();
        };
        let store = self.store.name();
        HopSpan::follow_context(context, move || {
            let name = match operation {
                "lookup" => "cache lookup",
                "store" => "cache store",
                _ => "cache",
            };
            Opening::new(name, SpanKind::Server).with("switchyard.cache.store", store)
        })
    }

    /// Logs a failure once, here at the boundary, marks `span` failed, and
    /// converts the failure to a status.
    fn to_status(&self, operation: &'static str, error: &Error, span: &HopSpan) -> Status {
        let service_error = error.to_service_error();
        span.fail(service_error.class.as_str());
        if matches!(error, Error::InvalidRequest { .. }) {
            tracing::debug!(operation, %error, "rejected a cache request");
        } else {
            tracing::warn!(operation, store = self.store.name(), %error, "cache store failed");
        }
        service_error.to_status()
    }
}

impl std::fmt::Debug for CacheGrpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheGrpc")
            .field("store", &self.store.name())
            .finish()
    }
}

#[tonic::async_trait]
impl CacheService for CacheGrpc {
    async fn lookup(
        &self,
        request: Request<LookupRequest>,
    ) -> Result<Response<LookupResponse>, Status> {
        let request = request.into_inner();
        let span = self.span("lookup", request.context.as_ref());
        let answer = self.lookup_response(request).await;
        if let Ok(answer) = &answer
            && span.is_sampled()
        {
            span.record("switchyard.cache.hit", answer.response.is_some());
        }
        answer
            .map(Response::new)
            .map_err(|error| self.to_status("lookup", &error, &span))
    }

    async fn store(
        &self,
        request: Request<StoreRequest>,
    ) -> Result<Response<StoreResponse>, Status> {
        let request = request.into_inner();
        let span = self.span("store", request.context.as_ref());
        self.store_response(request)
            .await
            .map(Response::new)
            .map_err(|error| self.to_status("store", &error, &span))
    }
}

//! The HTTP routes and the layers around them.

mod chat_completions;
mod embeddings;
mod health;
mod models;
pub(crate) mod shared;

use std::{any::Any, sync::Arc};

use axum::{
    Router,
    http::{Method, StatusCode, Uri},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use switchyard_common::ErrorClass;
use tower_http::catch_panic::CatchPanicLayer;

use crate::{EdgeState, error::ApiError, request_id};

/// Builds the application with its routes and layers.
pub fn app(state: Arc<EdgeState>) -> Router {
    let outermost = state.clone();
    Router::new()
        .route("/v1/chat/completions", post(chat_completions::handle))
        .route("/v1/embeddings", post(embeddings::handle))
        .route("/v1/models", get(models::list))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        // A panic anywhere becomes an OpenAI-shaped 500, never a dropped connection.
        .layer(CatchPanicLayer::custom(panic_response))
        // Outermost: every answer, a caught panic's included, carries the
        // request id; unsupported transfer codings are refused here (501).
        .layer(middleware::from_fn_with_state(
            outermost,
            request_id::assign,
        ))
}

async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::invalid_request_with_status(
        StatusCode::NOT_FOUND,
        format!("Unknown request URL: {method} {}.", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::invalid_request_with_status(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method {method} is not allowed on {}.", uri.path()),
    )
}

fn panic_response(_panic: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("request handler panicked");
    ApiError::new(
        ErrorClass::Internal,
        "The server had an error while processing your request.",
    )
    .into_response()
}

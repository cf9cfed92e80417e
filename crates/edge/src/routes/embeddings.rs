//! `POST /v1/embeddings`.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Extension, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use switchyard_common::ServiceError;
use switchyard_proto::v1::RouterEmbedRequest;

use crate::{
    EdgeState,
    context::request_context,
    error::ApiError,
    metrics::Operation,
    openai::embeddings::{parse, render},
    overhead,
    request_id::RequestId,
    request_span::RequestSpan,
    routes::shared::{authenticate, decorate, read_body, router_error, stamp_cost},
};

/// Authenticates, parses, calls the router and renders its answer.
pub async fn handle(
    State(state): State<Arc<EdgeState>>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Extension(span): Extension<RequestSpan>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers)?;
    let body = read_body(body, &headers, &state.body_limits).await?;
    // The gateway's overhead is counted from here: the upload was the client's.
    let received = std::time::Instant::now();
    // Model existence and the key's model policy are the router's decisions.
    let (request, format) = parse(&body)?.into_proto()?;
    let alias = request.model.clone();
    span.asks("embeddings", &alias);
    let mut context = request_context(
        caller,
        &headers,
        request_id,
        request.user.clone(),
        state.request_timeout,
    );
    span.0.hand_on(&mut context);
    let answer = state
        .router
        .embed(RouterEmbedRequest {
            context: Some(context),
            request: Some(request),
        })
        .await
        .map_err(|status| router_error(request_id, &status))?;
    let embeddings = answer
        .response
        .ok_or_else(|| ServiceError::internal("The router returned an empty response."))?;
    let body = render(&embeddings, format, &alias);
    let mut response = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    stamp_cost(
        response.headers_mut(),
        answer.cost.as_ref(),
        embeddings.usage.as_ref(),
    );
    overhead::stamp_whole_answer(
        response.headers_mut(),
        Operation::Embeddings,
        received,
        answer.upstream,
        &state.metrics,
    );
    decorate(response.headers_mut(), &answer.route.unwrap_or_default());
    Ok(response)
}

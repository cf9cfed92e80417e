//! `POST /v1/chat/completions`.

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::BytesMut;
use futures::stream;
use http_body_util::BodyExt;
use switchyard_common::{ErrorClass, ServiceError};
use switchyard_proto::v1::{
    CacheMode, RequestContext, RouteDecision, RouterChatRequest, RouterChatResponse,
};
use tonic::Streaming;

use crate::{
    EdgeState,
    error::ApiError,
    openai::{
        request,
        response::{ChunkRenderer, CompletionBuilder, ResponseIdentity},
    },
    sse::{DONE_EVENT, write_error_event},
};

/// Authenticates, parses, calls the router and renders its answer.
pub async fn handle(
    State(state): State<Arc<EdgeState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let index = state.index.load().ok_or_else(|| {
        ApiError::new(
            ErrorClass::UpstreamUnavailable,
            "The gateway is starting; try again shortly.",
        )
    })?;
    let key = index.authenticate(&headers)?;
    let body = read_body(body, &headers, state.max_body_bytes).await?;
    // Model existence and the key's model policy are the router's decisions.
    let parsed = request::parse(&body)?;
    let stream = parsed.is_stream();
    let include_usage = parsed.include_usage();
    let chat = parsed.into_proto()?;

    let request_id = uuid::Uuid::now_v7();
    let identity = ResponseIdentity {
        id: format!("chatcmpl-{}", request_id.simple()),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs()),
        fallback_model: chat.model.clone(),
    };
    let context = RequestContext {
        request_id: request_id.to_string(),
        key_id: key.id.clone(),
        team_id: key.team_id.clone(),
        end_user: chat.user.clone(),
        cache_mode: cache_mode(&headers) as i32,
        ..RequestContext::default()
    };
    drop(index);

    let mut router = state.router.clone();
    let mut responses = router
        .chat(RouterChatRequest {
            context: Some(context),
            request: Some(chat),
        })
        .await
        .map_err(|status| ServiceError::from_status(&status))?
        .into_inner();
    // Wait for the first message so an error before any output still gets
    // its proper HTTP status rather than a 200 stream that fails.
    let first = responses
        .message()
        .await
        .map_err(|status| ServiceError::from_status(&status))?
        .ok_or_else(|| ServiceError::internal("The router returned an empty response."))?;
    let route = first.route.clone().unwrap_or_default();

    let mut response = if stream {
        stream_response(first, responses, identity, include_usage)
    } else {
        complete_response(first, responses, &identity).await?
    };
    decorate(response.headers_mut(), &request_id.to_string(), &route);
    Ok(response)
}

/// Reads the body up to `limit` bytes. An oversized body is drained (up to
/// four times the limit) before the 413 goes out, so the client reads the
/// error instead of a connection reset mid-upload.
async fn read_body(mut body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::invalid_request_with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The request body is larger than the limit of {limit} bytes."),
        )
    };
    let unreadable = || {
        ApiError::new(
            ErrorClass::InvalidRequest,
            "The request body could not be read.",
        )
    };
    let drain_cap = limit.saturating_mul(4);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if let Some(declared) = declared
        && declared > limit
    {
        if declared <= drain_cap {
            drain(body, drain_cap).await;
        }
        return Err(too_large());
    }
    let mut buffer = BytesMut::with_capacity(declared.unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| unreadable())?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buffer.len() + data.len() > limit {
            drain(body, drain_cap.saturating_sub(buffer.len())).await;
            return Err(too_large());
        }
        buffer.extend_from_slice(&data);
    }
    Ok(buffer.freeze())
}

/// Reads and discards up to `cap` more bytes, for at most a few seconds.
async fn drain(mut body: Body, cap: usize) {
    let discard = async {
        let mut seen = 0_usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |data| data.len());
            if seen > cap {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), discard).await;
}

fn cache_mode(headers: &HeaderMap) -> CacheMode {
    let bypass = headers
        .get(header::CACHE_CONTROL)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .any(|directive| matches!(directive.trim(), "no-cache" | "no-store"))
        });
    if bypass {
        CacheMode::Bypass
    } else {
        CacheMode::Unspecified
    }
}

async fn complete_response(
    first: RouterChatResponse,
    mut rest: Streaming<RouterChatResponse>,
    identity: &ResponseIdentity,
) -> Result<Response, ApiError> {
    let mut builder = CompletionBuilder::default();
    let mut next = Some(first);
    loop {
        if let Some(chunk) = next.take().and_then(|message| message.chunk) {
            builder.push(chunk);
        }
        match rest.message().await {
            Ok(Some(message)) => next = Some(message),
            Ok(None) => break,
            Err(status) => return Err(ServiceError::from_status(&status).into()),
        }
    }
    let body = builder.finish(identity);
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// State of an SSE body between polls.
struct SseState {
    pending: Option<RouterChatResponse>,
    rest: Streaming<RouterChatResponse>,
    renderer: ChunkRenderer,
    finished: bool,
}

fn stream_response(
    first: RouterChatResponse,
    rest: Streaming<RouterChatResponse>,
    identity: ResponseIdentity,
    include_usage: bool,
) -> Response {
    let state = SseState {
        pending: Some(first),
        rest,
        renderer: ChunkRenderer::new(identity, include_usage),
        finished: false,
    };
    // One body frame per router message, written as soon as it arrives.
    let events = stream::unfold(state, |mut state| async move {
        if state.finished {
            return None;
        }
        let mut out = Vec::with_capacity(256);
        loop {
            let message = match state.pending.take() {
                Some(message) => Ok(Some(message)),
                None => state.rest.message().await,
            };
            match message {
                Ok(Some(message)) => {
                    if let Some(chunk) = &message.chunk {
                        state.renderer.render(chunk, &mut out);
                    }
                    if !out.is_empty() {
                        break;
                    }
                }
                Ok(None) => {
                    out.extend_from_slice(DONE_EVENT);
                    state.finished = true;
                    break;
                }
                Err(status) => {
                    let error = ServiceError::from_status(&status);
                    tracing::warn!(class = %error.class, "stream failed after it started");
                    write_error_event(&error, &mut out);
                    state.finished = true;
                    break;
                }
            }
        }
        Some((Ok::<_, std::convert::Infallible>(Bytes::from(out)), state))
    });
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(events),
    )
        .into_response()
}

fn decorate(headers: &mut HeaderMap, request_id: &str, route: &RouteDecision) {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", value);
    }
    let cache = if route.cache_hit { "hit" } else { "miss" };
    headers.insert("x-switchyard-cache", HeaderValue::from_static(cache));
    let provider = if route.cache_hit {
        "cache"
    } else {
        route.provider.as_str()
    };
    if let Ok(value) = HeaderValue::from_str(provider) {
        headers.insert("x-switchyard-provider", value);
    }
}

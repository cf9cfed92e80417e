//! `POST /v1/chat/completions`.

use std::{
    sync::Arc,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    body::{Body, Bytes},
    extract::{Extension, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::{StreamExt, stream};
use switchyard_common::{ServiceError, client::ResponseStream};
use switchyard_proto::v1::{
    CacheMode, ChatChunk, RequestContext, RouteDecision, RouterChatRequest, RouterChatResponse,
    UpstreamTiming,
};

use crate::{
    EdgeState,
    context::request_context,
    error::ApiError,
    metrics::{EdgeMetrics, Operation},
    openai::{
        request,
        response::{ChunkRenderer, CompletionBuilder, ResponseIdentity},
    },
    overhead::{self, StreamClock},
    request_id::RequestId,
    request_span::RequestSpan,
    routes::shared::{authenticate, decorate, read_body, router_error, stamp_cost},
    sse::{DONE_EVENT, write_error_event},
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
    let received = Instant::now();
    // Model existence and the key's model policy are the router's decisions.
    let parsed = request::parse(&body)?;
    let stream = parsed.is_stream();
    let include_usage = parsed.include_usage();
    let chat = parsed.into_proto()?;
    span.asks("chat", &chat.model);

    let identity = ResponseIdentity {
        id: format!("chatcmpl-{}", request_id.simple()),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs()),
        fallback_model: chat.model.clone(),
    };
    let mut context = RequestContext {
        cache_mode: cache_mode(&headers) as i32,
        ..request_context(
            caller,
            &headers,
            request_id,
            chat.user.clone(),
            state.request_timeout,
        )
    };
    span.0.hand_on(&mut context);
    // Boxed: the handler future is allocated per request; keep it small.
    let mut responses = Box::pin(state.router.chat(RouterChatRequest {
        context: Some(context),
        request: Some(chat),
    }))
    .await
    .map_err(|status| router_error(request_id, &status))?;
    // Wait for the first message so an error before any output still gets
    // its proper HTTP status rather than a 200 stream that fails.
    let first = responses
        .next()
        .await
        .ok_or_else(|| ServiceError::internal("The router returned an empty response."))?
        .map_err(|status| router_error(request_id, &status))?;
    let route = first.route.clone().unwrap_or_default();

    let mut response = if stream {
        let renderer = ChunkRenderer::new(identity, include_usage);
        let metrics = state.metrics.clone();
        stream_response(
            first,
            responses,
            renderer,
            received,
            metrics,
            span,
            route.clone(),
        )
    } else {
        complete_response(first, responses, &identity, received, &state.metrics).await?
    };
    decorate(response.headers_mut(), &route);
    Ok(response)
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
    mut rest: ResponseStream<RouterChatResponse>,
    identity: &ResponseIdentity,
    received: Instant,
    metrics: &EdgeMetrics,
) -> Result<Response, ApiError> {
    let mut builder = CompletionBuilder::default();
    let mut upstream = None;
    let mut cost = None;
    let mut usage = None;
    let mut next = Some(first);
    loop {
        if let Some(message) = next.take() {
            upstream = message.upstream.or(upstream);
            cost = message.cost.or(cost);
            if let Some(chunk) = message.chunk {
                usage = chunk.usage.or(usage);
                builder.push(chunk);
            }
        }
        match rest.next().await {
            Some(Ok(message)) => next = Some(message),
            None => break,
            // The router settled and logged it.
            Some(Err(status)) => return Err(ApiError::logged(ServiceError::from_status(&status))),
        }
    }
    let body = builder.finish(identity);
    let mut response = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    stamp_cost(response.headers_mut(), cost.as_ref(), usage.as_ref());
    overhead::stamp_whole_answer(
        response.headers_mut(),
        Operation::Chat,
        received,
        upstream,
        metrics,
    );
    Ok(response)
}

/// State of an SSE body between polls.
struct SseState {
    pending: Option<RouterChatResponse>,
    rest: ResponseStream<RouterChatResponse>,
    renderer: ChunkRenderer,
    finished: bool,
    /// A chunk that may be the answer's last (it ends a choice or carries
    /// usage), held until the next message shows whether it is, so the last
    /// one can carry the gateway's overhead. Providers send what follows it
    /// at once.
    held: Option<ChatChunk>,
    /// The time at providers, from the router's last message.
    upstream: Option<UpstreamTiming>,
    clock: StreamClock,
    metrics: EdgeMetrics,
    /// The request's span, failed when the stream is cut by an error.
    span: RequestSpan,
    /// How the request was served: who its streamed cost was paid to.
    route: RouteDecision,
}

/// Whether `chunk` may be an answer's last: it ends a choice or carries usage.
fn may_be_last(chunk: &ChatChunk) -> bool {
    chunk.finish_reason != 0 || chunk.usage.is_some()
}

impl SseState {
    /// Renders `message`'s chunk into `out`, holding back one that may be
    /// the last and releasing the one held before.
    fn take(&mut self, message: RouterChatResponse, out: &mut Vec<u8>) {
        self.upstream = message.upstream.or(self.upstream);
        if let Some(cost) = &message.cost {
            self.renderer.cost_is(cost, &self.route);
        }
        let Some(chunk) = message.chunk else {
            return;
        };
        if !self.renderer.writes_event(&chunk) {
            // Writes nothing (usage nobody asked for): the held chunk may
            // still be the last one written.
            self.renderer.render(&chunk, out);
            return;
        }
        if let Some(held) = self.held.take() {
            self.renderer.render(&held, out);
        }
        if may_be_last(&chunk) {
            self.held = Some(chunk);
        } else {
            self.renderer.render(&chunk, out);
        }
    }

    /// Renders the held chunk as the last, with the overhead so far, and
    /// records the stream's overhead. The frame it goes in is sent now.
    fn finish(&mut self, out: &mut Vec<u8>) {
        self.clock.frame_sent();
        let overhead = self
            .upstream
            .and_then(|upstream| self.clock.overhead(&upstream));
        if let Some(held) = self.held.take() {
            let overhead_ms = overhead.map(|overhead| overhead::milliseconds(overhead.total));
            self.renderer.render_last(&held, out, overhead_ms);
        }
        if let Some(overhead) = overhead {
            self.metrics.stream(&overhead);
        }
    }
}

fn stream_response(
    first: RouterChatResponse,
    rest: ResponseStream<RouterChatResponse>,
    renderer: ChunkRenderer,
    received: Instant,
    metrics: EdgeMetrics,
    span: RequestSpan,
    route: RouteDecision,
) -> Response {
    let state = SseState {
        route,
        pending: Some(first),
        rest,
        renderer,
        finished: false,
        held: None,
        upstream: None,
        clock: StreamClock::new(received),
        metrics,
        span,
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
                None => state.rest.next().await.transpose(),
            };
            match message {
                Ok(Some(message)) => {
                    state.take(message, &mut out);
                    if !out.is_empty() {
                        break;
                    }
                }
                Ok(None) => {
                    state.finish(&mut out);
                    out.extend_from_slice(DONE_EVENT);
                    state.finished = true;
                    break;
                }
                Err(status) => {
                    if let Some(held) = state.held.take() {
                        state.renderer.render(&held, &mut out);
                    }
                    let error = ServiceError::from_status(&status);
                    tracing::warn!(class = %error.class, "stream failed after it started");
                    state.span.fail(error.class.as_str());
                    write_error_event(&error, &mut out);
                    state.finished = true;
                    break;
                }
            }
        }
        if !state.finished {
            state.clock.frame_sent();
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

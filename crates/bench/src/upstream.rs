//! A fast mock upstream speaking OpenAI's Chat Completions wire format, with
//! configurable latency and streaming pace. Serves the direct baseline and
//! the gateway alike, so the difference between them is the gateway's cost.

use std::{convert::Infallible, net::SocketAddr, time::Duration};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::{body::Frame, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// How the mock answers.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamBehaviour {
    /// Wait before answering (time to first byte of the provider).
    pub latency: Duration,
    /// Content chunks in a streamed answer.
    pub stream_chunks: usize,
    /// Pause between streamed chunks.
    pub chunk_interval: Duration,
}

const COMPLETION: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1741569952,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! This is a benchmark answer of a typical short length.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":12,"total_tokens":31,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_bench"}"#;
const CHUNK: &str = "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1741569952,\"model\":\"bench-model\",\"system_fingerprint\":\"fp_bench\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"token \"},\"logprobs\":null,\"finish_reason\":null}]}\n\n";
const FIRST_CHUNK: &str = "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1741569952,\"model\":\"bench-model\",\"system_fingerprint\":\"fp_bench\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n";
const LAST_CHUNKS: &str = "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1741569952,\"model\":\"bench-model\",\"system_fingerprint\":\"fp_bench\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\ndata: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1741569952,\"model\":\"bench-model\",\"choices\":[],\"usage\":{\"prompt_tokens\":19,\"completion_tokens\":64,\"total_tokens\":83}}\n\ndata: [DONE]\n\n";

type Body = BoxBody<Bytes, Infallible>;

/// Starts the mock on `127.0.0.1:0` in the current runtime and returns its address.
pub async fn start(behaviour: UpstreamBehaviour) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    // Detached: the mock serves until the benchmark's runtime shuts down.
    switchyard_common::task::spawn_detached(
        "the mock upstream lives as long as the benchmark",
        async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                // Detached: one task per connection, ended by the peer closing it.
                switchyard_common::task::spawn_detached(
                    "one mock upstream connection",
                    async move {
                        let service = service_fn(move |request| answer(request, behaviour));
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    },
                );
            }
        },
    );
    Ok(address)
}

async fn answer(
    request: Request<hyper::body::Incoming>,
    behaviour: UpstreamBehaviour,
) -> Result<Response<Body>, Infallible> {
    let body = request
        .into_body()
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    if !behaviour.latency.is_zero() {
        tokio::time::sleep(behaviour.latency).await;
    }
    let streamed = contains(&body, b"\"stream\":true");
    let response = if streamed {
        let chunks = behaviour.stream_chunks;
        let interval = behaviour.chunk_interval;
        let frames = futures_stream(chunks, interval);
        Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(BodyExt::boxed(StreamBody::new(frames)))
    } else {
        Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(BodyExt::boxed(Full::new(Bytes::from_static(
                COMPLETION.as_bytes(),
            ))))
    };
    Ok(response.unwrap_or_else(|_| {
        let mut response = Response::new(BodyExt::boxed(Full::new(Bytes::new())));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response
    }))
}

/// The SSE frames of a streamed answer, paced by `interval`.
fn futures_stream(
    chunks: usize,
    interval: Duration,
) -> impl futures::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + 'static {
    futures::stream::unfold(0_usize, move |sent| async move {
        let frame = match sent {
            0 => Bytes::from_static(FIRST_CHUNK.as_bytes()),
            n if n <= chunks => {
                if !interval.is_zero() {
                    tokio::time::sleep(interval).await;
                }
                Bytes::from_static(CHUNK.as_bytes())
            }
            n if n == chunks + 1 => Bytes::from_static(LAST_CHUNKS.as_bytes()),
            _ => return None,
        };
        Some((Ok(Frame::data(frame)), sent + 1))
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

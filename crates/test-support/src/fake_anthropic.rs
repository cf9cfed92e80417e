//! [`FakeAnthropic`]: a recording, fault-injecting Anthropic Messages server.
//!
//! `POST /v1/messages` answers `Echo: <text of the last user turn with text>`.
//! When the request has `tools` and that text mentions `weather`, or
//! `tool_choice` forces a tool (`tool`: that one, `any`: the first), it
//! calls the tool instead (id `toolu_01A09q90qw90lq917835lq9`, input
//! `{"location":"Boston, MA"}`, stop reason `tool_use`; streamed as an empty
//! `input_json_delta` and then two fragments). Usage counts words: input
//! over `system` and every message's text and tool results, output over the
//! reply (9 for a tool call). With `"stream": true` it sends the documented
//! event sequence (`message_start`, `content_block_start`, `ping`,
//! `content_block_delta`s, `content_block_stop`, `message_delta`,
//! `message_stop`).
//!
//! Like Anthropic, it answers 401 `authentication_error` without an
//! `x-api-key` header and 400 `invalid_request_error` without an
//! `anthropic-version` header, `messages` or `max_tokens`.
//!
//! Faults: [`Fault::Status`] answers as given (a 200 with
//! `content-type: text/event-stream` and a scripted body can end a stream
//! with an `error` event); [`Fault::Delay`] waits first;
//! [`Fault::DropMidStream`] aborts after that many events (or half of a
//! whole message).

mod answer;
mod wire;

use crate::recording::{self, Delivery, Recorder};
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, Uri},
    response::Response,
    routing::post,
};
use serde_json::Value;

use self::{
    answer::Answer,
    wire::{ErrorBody, ErrorObject},
};
use crate::{Fault, RecordedRequest};

/// `request-id` of every answer.
const REQUEST_ID: &str = "req_011CSHoEeqs5C35K2UUqR7Fy";

/// A running fake Anthropic server. Clones share the same server and records.
#[derive(Debug, Clone)]
pub struct FakeAnthropic {
    address: SocketAddr,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    recorder: Recorder<Fault>,
    answered: AtomicU64,
}

impl FakeAnthropic {
    /// Starts the server on `127.0.0.1:0`.
    pub async fn start() -> FakeAnthropic {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding 127.0.0.1:0 succeeds");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/v1/messages", post(messages))
            .fallback(not_found)
            .with_state(shared.clone());
        crate::recording::serve(listener, app, "Anthropic");
        FakeAnthropic { address, shared }
    }

    /// Returns the base URL, e.g. `http://127.0.0.1:41234` (Anthropic's
    /// base URL has no `/v1`: the path is `/v1/messages`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Returns every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorder.requests()
    }

    /// Requests whose caller closed the connection while a scripted
    /// [`Fault::Delay`] held the answer back (a cancelled hedge, say).
    pub fn hung_up(&self) -> usize {
        self.shared.recorder.hung_up()
    }

    /// Queues a fault for the next request not yet answered (first in, first out).
    pub fn push_fault(&self, fault: Fault) {
        self.shared.recorder.push_fault(fault);
    }
}

/// Returns an Anthropic error body (`{"type":"error","error":{"type":..,
/// "message":..},"request_id":..}`); `kind` is e.g. `overloaded_error`.
/// The same JSON is the `data` of a stream's `error` event.
pub fn anthropic_error_body(kind: &str, message: &str) -> String {
    let body = ErrorBody {
        kind: "error",
        error: ErrorObject { kind, message },
        request_id: REQUEST_ID,
    };
    serde_json::to_string(&body).expect("error bodies always serialize")
}

async fn messages(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = shared.recorder.record(&method, &uri, &headers, &body);
    let fault = shared.recorder.next_fault();
    let mut drop_after = None;
    let mut trickle = None;
    match fault {
        Some(Fault::Status {
            status,
            body,
            headers,
        }) => return status_response(status, body, &headers),
        Some(Fault::Delay(delay)) => shared.recorder.wait(delay).await,
        Some(Fault::DropMidStream { after_chunks }) => drop_after = Some(after_chunks),
        Some(Fault::Trickle(pause)) => trickle = Some(pause),
        None => {}
    }
    if let Some(refusal) = refusal(&headers, &body) {
        return refusal;
    }
    let number = shared.answered.fetch_add(1, Ordering::Relaxed) + 1;
    let answer = Answer::for_request(&body, number);
    if body["stream"] == true {
        streamed(
            answer.events(),
            drop_after,
            "text/event-stream; charset=utf-8",
        )
    } else {
        recording::whole_answer(
            answer.message(),
            &[
                ("content-type", "application/json"),
                ("request-id", REQUEST_ID),
            ],
            Delivery::of(drop_after, trickle),
        )
    }
}

/// The error Anthropic answers to a request it refuses before generating.
fn refusal(headers: &HeaderMap, body: &Value) -> Option<Response> {
    let error = |status: u16, kind: &str, message: &str| {
        Some(status_response(
            status,
            anthropic_error_body(kind, message),
            &[],
        ))
    };
    if !headers.contains_key("x-api-key") {
        return error(401, "authentication_error", "x-api-key header is required");
    }
    if !headers.contains_key("anthropic-version") {
        return error(
            400,
            "invalid_request_error",
            "anthropic-version: header is required",
        );
    }
    if !body["messages"].is_array() {
        return error(400, "invalid_request_error", "messages: Field required");
    }
    if !body["max_tokens"].is_u64() {
        return error(400, "invalid_request_error", "max_tokens: Field required");
    }
    None
}

async fn not_found(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.recorder.record(&method, &uri, &headers, &body);
    status_response(
        404,
        anthropic_error_body("not_found_error", "Not found"),
        &[],
    )
}

/// Streams `frames` as Anthropic does (see [`recording::streamed`]).
fn streamed(frames: Vec<Bytes>, drop_after: Option<usize>, content_type: &'static str) -> Response {
    recording::streamed(
        frames,
        drop_after,
        &[
            ("content-type", content_type),
            ("cache-control", "no-cache"),
            ("request-id", REQUEST_ID),
        ],
    )
}

/// Answers a fault or an error with Anthropic's usual headers.
fn status_response(status: u16, body: String, headers: &[(String, String)]) -> Response {
    recording::status_response(
        status,
        body,
        headers,
        &[("request-id", REQUEST_ID)],
        "application/json",
    )
}

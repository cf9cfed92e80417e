//! [`FakeOpenAi`]: a recording, fault-injecting OpenAI Chat Completions server.
//!
//! `POST /v1/chat/completions` answers `Echo: <last user message text>`.
//! When the request has `tools` and the last user message mentions
//! `weather`, it calls the first tool instead (id `call_abc123`, arguments
//! `{"location":"Boston, MA"}`, finish reason `tool_calls`; streamed as a
//! header delta with empty arguments, then two argument fragments).
//! Usage counts words: the prompt's over all messages, the completion's
//! over the reply (9 for a tool call). Streams follow `stream` and
//! `stream_options.include_usage` exactly as OpenAI does.
//! `GET /v1/models` lists one model. `POST /v1/embeddings` answers
//! deterministic embeddings (see `embeddings`, [`fake_embedding`]).
//!
//! [`FakeOpenAi::start_flavor`] starts the same server imitating an
//! OpenAI-compatible provider instead ([`FakeFlavor`]: Azure, Groq,
//! DeepSeek, Mistral, or a minimal self-hosted server), with that
//! provider's paths, checks and answer fields.

mod answer;
mod embeddings;
mod flavor;
mod wire;

pub use self::embeddings::fake_embedding;

use crate::recording::{self, Delivery, Recorder};
use std::{
    collections::{BTreeMap, HashSet},
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, Uri, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::Value;

pub use self::flavor::FakeFlavor;
use self::{answer::Answer, wire::ErrorBody};

/// A fault injected into the next request's answer.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answers with this status, body and headers instead (`content-type`
    /// is `application/json` unless `headers` sets it; a 200 with a custom
    /// body scripts an unusual but successful answer).
    Status {
        /// HTTP status code.
        status: u16,
        /// Response body (see [`openai_error_body`]).
        body: String,
        /// Extra response headers, e.g. `("retry-after", "7")`.
        headers: Vec<(String, String)>,
    },
    /// Waits this long, then answers normally.
    Delay(Duration),
    /// Answers normally, but one byte at a time with this pause before
    /// each: an upstream that never goes silent yet never finishes. (The
    /// OpenAI and Bedrock fakes trickle streams too; the others, non-streamed
    /// answers.)
    Trickle(Duration),
    /// Sends this many stream events, then aborts the connection without
    /// `[DONE]`. A non-streamed answer is sent in two halves, so 0 or 1 cuts it.
    DropMidStream {
        /// Events (or halves) sent before the connection is aborted.
        after_chunks: usize,
    },
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The URL path, e.g. `/v1/chat/completions`, with the query string
    /// when there is one (`...?api-version=2024-10-21`).
    pub path: String,
    /// Headers by lowercase name (the last value of a repeated header).
    pub headers: BTreeMap<String, String>,
    /// The JSON body; `Null` when empty, a string when not JSON.
    pub body: Value,
}

/// A running fake OpenAI server. Clones share the same server and records.
#[derive(Debug, Clone)]
pub struct FakeOpenAi {
    address: SocketAddr,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    flavor: FakeFlavor,
    recorder: Recorder<Fault>,
    answered: AtomicU64,
    /// API keys chat completions answer with 401 `invalid_api_key`.
    revoked_keys: Mutex<HashSet<String>>,
    /// Requests left in the window and when it resets, as the
    /// `x-ratelimit-*` headers of answers report them; none when unset.
    request_limit: Mutex<Option<(u32, String)>>,
}

impl FakeOpenAi {
    /// Starts the server on `127.0.0.1:0`.
    pub async fn start() -> FakeOpenAi {
        Self::start_flavor(FakeFlavor::OpenAi).await
    }

    /// Starts a server imitating `flavor` on `127.0.0.1:0`.
    pub async fn start_flavor(flavor: FakeFlavor) -> FakeOpenAi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding 127.0.0.1:0 succeeds");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            flavor,
            ..Shared::default()
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/models", get(models))
            .route("/v1/embeddings", post(embeddings::embeddings));
        let app = match flavor {
            FakeFlavor::Azure => app.route(
                "/openai/deployments/{deployment}/chat/completions",
                post(chat_completions),
            ),
            FakeFlavor::DeepSeek => app.route("/chat/completions", post(chat_completions)),
            _ => app,
        };
        let app = app.fallback(not_found).with_state(shared.clone());
        crate::recording::serve(listener, app, "OpenAI");
        FakeOpenAi { address, shared }
    }

    /// Returns the base URL, e.g. `http://127.0.0.1:41234/v1`; Azure's and
    /// DeepSeek's have no `/v1` (`http://127.0.0.1:41234`), like theirs.
    pub fn base_url(&self) -> String {
        match self.shared.flavor {
            FakeFlavor::Azure | FakeFlavor::DeepSeek => format!("http://{}", self.address),
            _ => format!("http://{}/v1", self.address),
        }
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

    /// Makes chat completions sent with `key` (as `Authorization: Bearer`)
    /// answer 401 `invalid_api_key`, as OpenAI does for a revoked key.
    pub fn revoke_key(&self, key: &str) {
        self.shared
            .revoked_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned());
    }

    /// From now on, chat answers report `remaining` requests left in the
    /// window, resetting after `reset` (a duration as OpenAI writes it,
    /// `1s` or `6m0s`), in OpenAI's `x-ratelimit-*` response headers.
    pub fn limit_requests(&self, remaining: u32, reset: &str) {
        *self
            .shared
            .request_limit
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((remaining, reset.to_owned()));
    }

    /// Queues a fault for the next request not yet answered (first in, first out).
    pub fn push_fault(&self, fault: Fault) {
        self.shared.recorder.push_fault(fault);
    }
}

/// Returns an OpenAI error body; an empty `code` is written as `null`.
pub fn openai_error_body(message: &str, kind: &str, code: &str) -> String {
    let body = ErrorBody {
        error: wire::ErrorObject {
            message,
            kind,
            param: None,
            code: (!code.is_empty()).then_some(code),
        },
    };
    serde_json::to_string(&body).expect("error bodies always serialize")
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = shared.recorder.record(&method, &uri, &headers, &body);
    if let Some(refusal) = revoked_key_refusal(&shared, &headers) {
        return refusal;
    }
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
    let query = uri.query().unwrap_or_default();
    if let Some((status, refusal)) = shared.flavor.refusal(query, &headers, &body) {
        return status_response(status, refusal, &[]);
    }
    if !body.is_object() || !body["messages"].is_array() {
        let error = openai_error_body(
            "'messages' is a required property",
            "invalid_request_error",
            "",
        );
        return status_response(400, error, &[]);
    }
    let number = shared.answered.fetch_add(1, Ordering::Relaxed) + 1;
    let mut body = body;
    if shared.flavor == FakeFlavor::Azure && body.get("model").is_none() {
        // Azure answers with the model of the deployment named in the path.
        let deployment = uri.path().split('/').nth(3).unwrap_or_default();
        body["model"] = Value::String(deployment.to_owned());
    }
    let answer = Answer::for_flavor(&body, number, shared.flavor);
    let mut response = answer_response(&answer, &body, drop_after, trickle);
    let limit = shared
        .request_limit
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    if let Some((remaining, reset)) = limit {
        let headers = response.headers_mut();
        for (name, value) in [
            ("x-ratelimit-limit-requests", "10000".to_owned()),
            ("x-ratelimit-remaining-requests", remaining.to_string()),
            ("x-ratelimit-reset-requests", reset),
        ] {
            if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
    response
}

/// The answer as a response: streamed when the request asked, else whole;
/// cut or trickled as the fault said.
fn answer_response(
    answer: &Answer,
    body: &Value,
    drop_after: Option<usize>,
    trickle: Option<Duration>,
) -> Response {
    if body["stream"] == true {
        let include_usage = body["stream_options"]["include_usage"] == true;
        let events = answer.events(include_usage);
        if let Some(pause) = trickle {
            // The whole stream, a byte at a time.
            return recording::whole_answer(
                events.concat(),
                &[("content-type", "text/event-stream")],
                Delivery::Trickle(pause),
            );
        }
        streamed(events, drop_after, "text/event-stream")
    } else {
        recording::whole_answer(
            answer.completion(),
            &[("content-type", "application/json")],
            Delivery::of(drop_after, trickle),
        )
    }
}

/// OpenAI's answer to a revoked key, when `headers` carry one: checked
/// before anything else about the request, as OpenAI does.
fn revoked_key_refusal(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let key = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let revoked = shared
        .revoked_keys
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains(key);
    revoked.then(|| {
        let shown = format!("{}***{}", &key[..key.len().min(3)], &key[key.len().saturating_sub(4)..]);
        let message = format!(
            "Incorrect API key provided: {shown}. You can find your API key at https://platform.openai.com/account/api-keys."
        );
        let body = openai_error_body(&message, "invalid_request_error", "invalid_api_key");
        status_response(401, body, &[])
    })
}

async fn models(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.recorder.record(&method, &uri, &headers, &body);
    let list = r#"{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1686935002,"owned_by":"openai"}]}"#;
    ([(header::CONTENT_TYPE, "application/json")], list).into_response()
}

async fn not_found(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.recorder.record(&method, &uri, &headers, &body);
    let message = format!("Unknown request URL: {} {}", method, uri.path());
    status_response(
        404,
        openai_error_body(&message, "invalid_request_error", "unknown_url"),
        &[],
    )
}

/// Streams `frames` as OpenAI does (see [`recording::streamed`]).
fn streamed(frames: Vec<Bytes>, drop_after: Option<usize>, content_type: &'static str) -> Response {
    recording::streamed(
        frames,
        drop_after,
        &[
            ("content-type", content_type),
            ("cache-control", "no-cache"),
        ],
    )
}

/// Answers a fault or an error with OpenAI's usual headers.
fn status_response(status: u16, body: String, headers: &[(String, String)]) -> Response {
    recording::status_response(status, body, headers, &[], "application/json")
}

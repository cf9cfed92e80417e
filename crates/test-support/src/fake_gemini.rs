//! [`FakeGemini`]: a recording, fault-injecting Gemini server speaking both
//! the Gemini API and Vertex AI's Gemini endpoints.
//!
//! - `POST /v1beta/models/{model}:generateContent` (Gemini API, base URL
//!   [`FakeGemini::base_url`]) and
//!   `POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent`
//!   (Vertex AI, base URL [`FakeGemini::vertex_base_url`]) answer a whole,
//!   pretty-printed `GenerateContentResponse`.
//! - `:streamGenerateContent?alt=sse` answers server-sent events, one
//!   single-line `GenerateContentResponse` per word (`data: ...\r\n\r\n`),
//!   the last with `finishReason: STOP`; usage is cumulative on every event.
//!   Without `alt=sse` it answers one JSON array, as Google does.
//! - The reply is `Echo: <text of the last user turn with text>`. When the
//!   request declares functions and that text mentions `weather`, the first
//!   function is called with `{"location":"Boston, MA"}` (finish reason
//!   `STOP`, as Gemini reports function calls; 9 completion tokens). Gemini
//!   sends a function call whole, in one part, so a streamed call is one
//!   event, not argument fragments.
//! - Usage counts words: the prompt's over the system instruction, text
//!   parts and tool results; the completion's over the reply.
//! - Vertex answers add `createTime` and `trafficType`, write `role` before
//!   `parts` and omit the zero candidate index, as Vertex does.
//! - [`Fault`]s work as for `FakeOpenAi`; see [`gemini_error_body`] and
//!   [`gemini_rate_limit_body`] for Google's error bodies.

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
};
use serde_json::{Value, json};

use self::{
    answer::Answer,
    wire::{ErrorBody, ErrorObject},
};
use crate::{Fault, RecordedRequest};

/// A running fake Gemini server. Clones share the same server and records.
#[derive(Debug, Clone)]
pub struct FakeGemini {
    address: SocketAddr,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    recorder: Recorder<Fault>,
    answered: AtomicU64,
}

impl FakeGemini {
    /// Starts the server on `127.0.0.1:0`.
    pub async fn start() -> FakeGemini {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding 127.0.0.1:0 succeeds");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared::default());
        // Gemini's method suffix (`:generateContent`) sits inside a path
        // segment, so one handler parses every path.
        let app = Router::new().fallback(handle).with_state(shared.clone());
        crate::recording::serve(listener, app, "Gemini");
        FakeGemini { address, shared }
    }

    /// Returns the Gemini API base URL, e.g. `http://127.0.0.1:41234/v1beta`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1beta", self.address)
    }

    /// Returns the Vertex AI base URL, e.g. `http://127.0.0.1:41234/v1`.
    pub fn vertex_base_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    /// Returns every request received so far, in order (`path` with the
    /// query string, e.g. `…:streamGenerateContent?alt=sse`).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorder.requests()
    }

    /// Queues a fault for the next request not yet answered (first in, first out).
    pub fn push_fault(&self, fault: Fault) {
        self.shared.recorder.push_fault(fault);
    }
}

/// Returns a Google error body, pretty-printed as Google sends it:
/// `{"error": {"code": 400, "message": "...", "status": "INVALID_ARGUMENT"}}`.
pub fn gemini_error_body(code: u16, status: &str, message: &str) -> String {
    error_body(code, status, message, Vec::new())
}

/// Returns Gemini's 429 `RESOURCE_EXHAUSTED` body, whose details end with a
/// `RetryInfo` of `retry_delay` (e.g. `"7s"`).
pub fn gemini_rate_limit_body(retry_delay: &str) -> String {
    let details = vec![
        json!({
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                "quotaValue": "10"
            }]
        }),
        json!({
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{
                "description": "Learn more about Gemini API quotas",
                "url": "https://ai.google.dev/gemini-api/docs/rate-limits"
            }]
        }),
        json!({
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": retry_delay
        }),
    ];
    error_body(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
        details,
    )
}

fn error_body(code: u16, status: &str, message: &str, details: Vec<Value>) -> String {
    let body = ErrorBody {
        error: ErrorObject {
            code,
            message,
            status,
            details,
        },
    };
    String::from_utf8(wire::pretty(&body)).expect("JSON is UTF-8")
}

/// Which API a path belongs to, the model it names and the method called.
struct Route<'a> {
    vertex: bool,
    model: &'a str,
    method: &'a str,
}

fn route(path: &str) -> Option<Route<'_>> {
    let (vertex, rest) = if let Some(rest) = path.strip_prefix("/v1beta/models/") {
        (false, rest)
    } else {
        let rest = path.strip_prefix("/v1/projects/")?;
        let mut segments = rest.splitn(6, '/');
        let (_project, locations, _location, publishers, google, models_and_rest) = (
            segments.next()?,
            segments.next()?,
            segments.next()?,
            segments.next()?,
            segments.next()?,
            segments.next()?,
        );
        if (locations, publishers, google) != ("locations", "publishers", "google") {
            return None;
        }
        (true, models_and_rest.strip_prefix("models/")?)
    };
    let (model, method) = rest.split_once(':')?;
    (!model.is_empty() && !model.contains('/')).then_some(Route {
        vertex,
        model,
        method,
    })
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = shared.recorder.record(&method, &uri, &headers, &body);
    let Some(route) = route(uri.path()).filter(|route| {
        method == Method::POST
            && matches!(route.method, "generateContent" | "streamGenerateContent")
    }) else {
        let message = format!(
            "The requested URL {} was not found on this server.",
            uri.path()
        );
        return status_response(404, gemini_error_body(404, "NOT_FOUND", &message), &[]);
    };
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
    if !body["contents"].is_array() {
        let error = gemini_error_body(
            400,
            "INVALID_ARGUMENT",
            "* GenerateContentRequest.contents: contents is not specified\n",
        );
        return status_response(400, error, &[]);
    }
    let number = shared.answered.fetch_add(1, Ordering::Relaxed) + 1;
    let answer = Answer::for_request(&body, route.model, route.vertex, number);
    let sse = uri
        .query()
        .is_some_and(|query| query.split('&').any(|pair| pair == "alt=sse"));
    let whole = match (route.method, sse) {
        ("streamGenerateContent", true) => {
            return streamed(answer.events(), drop_after, "text/event-stream");
        }
        ("streamGenerateContent", false) => answer.array(),
        _ => answer.whole(),
    };
    recording::whole_answer(
        whole,
        &[("content-type", JSON_CONTENT_TYPE)],
        Delivery::of(drop_after, trickle),
    )
}

const JSON_CONTENT_TYPE: &str = "application/json; charset=UTF-8";

/// Streams `frames` as Google does (see [`recording::streamed`]).
fn streamed(frames: Vec<Bytes>, drop_after: Option<usize>, content_type: &'static str) -> Response {
    recording::streamed(frames, drop_after, &[("content-type", content_type)])
}

/// Answers a fault or an error with Google's usual headers.
fn status_response(status: u16, body: String, headers: &[(String, String)]) -> Response {
    recording::status_response(status, body, headers, &[], JSON_CONTENT_TYPE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_cover_both_apis() {
        let gemini = route("/v1beta/models/gemini-2.5-flash:streamGenerateContent")
            .expect("a Gemini API path");
        assert_eq!(
            (gemini.vertex, gemini.model, gemini.method),
            (false, "gemini-2.5-flash", "streamGenerateContent")
        );
        let vertex = route(
            "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash:generateContent",
        )
        .expect("a Vertex path");
        assert_eq!(
            (vertex.vertex, vertex.model, vertex.method),
            (true, "gemini-2.0-flash", "generateContent")
        );
        assert!(
            route("/v1/projects/p/locations/l/publishers/meta/models/x:generateContent").is_none()
        );
        assert!(route("/v1beta/models/x").is_none());
    }

    #[test]
    fn rate_limit_body_ends_with_retry_info() {
        let body: Value = serde_json::from_str(&gemini_rate_limit_body("7s")).expect("json");
        assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
        assert_eq!(body["error"]["details"][2]["retryDelay"], "7s");
    }
}

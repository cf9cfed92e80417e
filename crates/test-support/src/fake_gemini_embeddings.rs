//! [`FakeGeminiEmbeddings`]: a recording, fault-injecting stand-in for the
//! Gemini API's `POST /v1beta/models/{model}:batchEmbedContents`.
//!
//! It answers `{"embeddings": [{"values": [...]}]}`, one embedding per
//! request of the batch, each [`fake_embedding`] of the request's text parts
//! (joined) with `outputDimensionality` values (8 by default). It checks
//! what Gemini checks: the `x-goog-api-key` header (403
//! `PERMISSION_DENIED` without it) and that every request's `model` is
//! `models/{model}` of the URL (400 `INVALID_ARGUMENT` otherwise). Errors
//! are Google's `{"error": {code, message, status}}`. Faults behave as for
//! [`FakeOpenAi`](crate::FakeOpenAi).

use crate::recording::{self, Delivery, Recorder};
use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Path, State},
    http::{HeaderMap, Method, StatusCode, Uri, header},
    response::Response,
    routing::post,
};
use serde_json::json;

use crate::{Fault, RecordedRequest, fake_embedding};

/// Dimensions of a fake embedding when the request does not choose.
const DEFAULT_DIMENSIONS: usize = 8;

/// A running fake Gemini embeddings server. Clones share the same server
/// and records.
#[derive(Debug, Clone)]
pub struct FakeGeminiEmbeddings {
    address: SocketAddr,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    recorder: Recorder<Fault>,
}

impl FakeGeminiEmbeddings {
    /// Starts the server on `127.0.0.1:0`.
    pub async fn start() -> FakeGeminiEmbeddings {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding 127.0.0.1:0 succeeds");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/v1beta/models/{operation}", post(batch_embed_contents))
            .with_state(shared.clone());
        crate::recording::serve(listener, app, "Gemini");
        FakeGeminiEmbeddings { address, shared }
    }

    /// Returns the base URL, e.g. `http://127.0.0.1:41234/v1beta`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1beta", self.address)
    }

    /// Returns every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorder.requests()
    }

    /// Queues a fault for the next request not yet answered (first in, first out).
    pub fn push_fault(&self, fault: Fault) {
        self.shared.recorder.push_fault(fault);
    }
}

/// Returns a Google API error body.
fn error_body(code: u16, message: &str, status: &str) -> String {
    json!({"error": {"code": code, "message": message, "status": status}}).to_string()
}

async fn batch_embed_contents(
    State(shared): State<Arc<Shared>>,
    Path(operation): Path<String>,
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
        }) => return respond(status, body, &headers),
        Some(Fault::Delay(delay)) => shared.recorder.wait(delay).await,
        Some(Fault::DropMidStream { after_chunks }) => drop_after = Some(after_chunks),
        Some(Fault::Trickle(pause)) => trickle = Some(pause),
        None => {}
    }
    let Some(model) = operation.strip_suffix(":batchEmbedContents") else {
        let message = format!("Invalid operation `{operation}`.");
        return respond(404, error_body(404, &message, "NOT_FOUND"), &[]);
    };
    if !headers.contains_key("x-goog-api-key") {
        let message = "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.";
        return respond(403, error_body(403, message, "PERMISSION_DENIED"), &[]);
    }
    let expected_model = format!("models/{model}");
    let requests = body["requests"].as_array().cloned().unwrap_or_default();
    if requests.is_empty() {
        let message = "* BatchEmbedContentsRequest.requests: contents is not specified\n";
        return respond(400, error_body(400, message, "INVALID_ARGUMENT"), &[]);
    }
    let mut embeddings = Vec::with_capacity(requests.len());
    for (index, request) in requests.iter().enumerate() {
        if request["model"] != expected_model.as_str() {
            let message = format!(
                "* BatchEmbedContentsRequest.requests[{index}].model: model must be `{expected_model}`\n"
            );
            return respond(400, error_body(400, &message, "INVALID_ARGUMENT"), &[]);
        }
        let text: String = request["content"]["parts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|part| part["text"].as_str())
            .collect();
        let dimensions = request["outputDimensionality"]
            .as_u64()
            .and_then(|dimensions| usize::try_from(dimensions).ok())
            .unwrap_or(DEFAULT_DIMENSIONS);
        embeddings.push(json!({"values": fake_embedding(text.as_bytes(), dimensions)}));
    }
    let whole = json!({"embeddings": embeddings}).to_string();
    recording::whole_answer(
        whole,
        &[("content-type", "application/json; charset=UTF-8")],
        Delivery::of(drop_after, trickle),
    )
}

fn respond(status: u16, body: String, headers: &[(String, String)]) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).expect("fault status is a valid HTTP status"));
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        response = response.header(header::CONTENT_TYPE, "application/json; charset=UTF-8");
    }
    for (name, value) in headers {
        response = response.header(name.as_str(), value.as_str());
    }
    response
        .body(Body::from(body))
        .expect("fault headers are valid")
}

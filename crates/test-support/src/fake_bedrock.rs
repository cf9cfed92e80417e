//! [`FakeBedrock`]: a recording, fault-injecting Bedrock runtime serving the
//! Converse API.
//!
//! `POST /model/{modelId}/converse` answers `Echo: <text of the last user
//! turn with text>`. When the request declares tools and that text mentions
//! `weather`, or `toolConfig.toolChoice` forces a tool (`tool`: that one,
//! `any`: the first), it calls the tool instead (`toolUseId`
//! `tooluse_kZJMlvQmRJ6eAyJE5GIl7Q`, input `{"location":"Boston, MA"}`,
//! stop reason `tool_use`). Usage counts words: input over `system` and all
//! message text (tool results included), output over the reply (9 for a
//! tool call). `POST /model/{modelId}/converse-stream` sends the same answer
//! as binary event stream messages (`messageStart`, `contentBlockStart` for
//! a tool, `contentBlockDelta`s word by word or in two input fragments,
//! `contentBlockStop`, `messageStop`, `metadata`), with valid CRCs.
//!
//! Like Bedrock, it checks every request's credentials first: a SigV4
//! signature is recomputed with the configured secret key (403
//! `InvalidSignatureException` when it differs, `UnrecognizedClientException`
//! for another access key, `MissingAuthenticationTokenException` without
//! one), and `Authorization: Bearer` must hold [`FAKE_BEDROCK_API_KEY`]. It
//! answers 400 `ValidationException` for a missing or empty `messages`,
//! turns that do not alternate, blank text and tool blocks without a
//! `toolConfig`. Every answer carries an `x-amzn-RequestId`.
//!
//! Faults: [`Fault::Status`] answers as given (see [`bedrock_error_fault`]);
//! [`Fault::Delay`] waits first; [`Fault::DropMidStream`] aborts after that
//! many event messages (or half of a whole response).
//! [`FakeBedrock::push_stream_exception`] ends the next stream with an
//! exception message.

mod answer;
mod event_stream;
mod sigv4;

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
    http::{HeaderMap, Method, Uri, header},
    response::Response,
};
use serde_json::{Value, json};

use self::{
    answer::Answer,
    sigv4::{AccessKey, Rejection},
};
use crate::{Fault, RecordedRequest};

/// The access key id [`FakeBedrock::start`] accepts (AWS's documentation example).
pub const FAKE_AWS_ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
/// The secret key [`FakeBedrock::start`] verifies signatures with.
pub const FAKE_AWS_SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// The Bedrock API key every fake accepts as `Authorization: Bearer`.
pub const FAKE_BEDROCK_API_KEY: &str = "ABSKZmFrZS1iZWRyb2NrLWFwaS1rZXk=";

/// A running fake Bedrock runtime. Clones share the same server and records.
#[derive(Debug, Clone)]
pub struct FakeBedrock {
    address: SocketAddr,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    access_key: AccessKey,
    recorder: Recorder<Scripted>,
    answered: AtomicU64,
}

/// A scripted deviation of the next answer.
#[derive(Debug, Clone)]
enum Scripted {
    Fault(Fault),
    StreamException {
        after_events: usize,
        exception_type: String,
        message: String,
    },
}

impl FakeBedrock {
    /// Starts the server on `127.0.0.1:0`, accepting [`FAKE_AWS_ACCESS_KEY_ID`]
    /// / [`FAKE_AWS_SECRET_ACCESS_KEY`] signatures.
    pub async fn start() -> FakeBedrock {
        Self::start_with_credentials(FAKE_AWS_ACCESS_KEY_ID, FAKE_AWS_SECRET_ACCESS_KEY).await
    }

    /// Starts the server accepting signatures made with this access key.
    pub async fn start_with_credentials(
        access_key_id: &str,
        secret_access_key: &str,
    ) -> FakeBedrock {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding 127.0.0.1:0 succeeds");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            access_key: AccessKey {
                id: access_key_id.to_owned(),
                secret: secret_access_key.to_owned(),
            },
            recorder: Recorder::default(),
            answered: AtomicU64::new(0),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        crate::recording::serve(listener, app, "Bedrock");
        FakeBedrock { address, shared }
    }

    /// Returns the base URL, e.g. `http://127.0.0.1:41234` (paths start at `/model`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Returns every request received so far, in order. `path` is as
    /// received, still percent-encoded (`…-v1%3A0/converse`).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorder.requests()
    }

    /// Queues a fault for the next request not yet answered (first in, first out).
    pub fn push_fault(&self, fault: Fault) {
        self.shared.recorder.push_fault(Scripted::Fault(fault));
    }

    /// Makes the next stream send `after_events` event messages, then an
    /// exception message (e.g. `throttlingException`) with `{"message"}`.
    pub fn push_stream_exception(&self, after_events: usize, exception_type: &str, message: &str) {
        self.shared.recorder.push_fault(Scripted::StreamException {
            after_events,
            exception_type: exception_type.to_owned(),
            message: message.to_owned(),
        });
    }
}

/// Returns a [`Fault::Status`] shaped like a Bedrock error: `{"message"}`
/// body and an `x-amzn-ErrorType` header (e.g. `ThrottlingException`).
pub fn bedrock_error_fault(status: u16, error_type: &str, message: &str) -> Fault {
    let (body, headers) = error_parts(error_type, message);
    Fault::Status {
        status,
        body,
        headers,
    }
}

/// The body and headers of a Bedrock error.
fn error_parts(error_type: &str, message: &str) -> (String, Vec<(String, String)>) {
    (
        json!({ "message": message }).to_string(),
        vec![(
            "x-amzn-ErrorType".to_owned(),
            format!("{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        )],
    )
}

impl Shared {
    fn authenticate(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), Rejection> {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        if let Some(token) = authorization.and_then(|value| value.strip_prefix("Bearer ")) {
            return if token == FAKE_BEDROCK_API_KEY {
                Ok(())
            } else {
                Err(Rejection {
                    exception: "UnrecognizedClientException",
                    message: "The security token included in the request is invalid.".to_owned(),
                })
            };
        }
        sigv4::verify(method.as_str(), uri, headers, body, &self.access_key).map(|_verified| ())
    }
}

/// `POST /model/{modelId}/converse` and `…/converse-stream`; anything else is 404.
async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw_body: Bytes,
) -> Response {
    let body = shared.recorder.record(&method, &uri, &headers, &raw_body);
    let action = uri
        .path()
        .strip_prefix("/model/")
        .and_then(|rest| rest.rsplit_once('/'))
        .filter(|(model, _)| !model.is_empty() && !model.contains('/'))
        .map(|(_, action)| action);
    let streamed = match (action, &method) {
        (Some("converse"), &Method::POST) => false,
        (Some("converse-stream"), &Method::POST) => true,
        _ => {
            return error_response(
                404,
                "UnknownOperationException",
                "The requested operation is not recognized by the service.",
            );
        }
    };
    if let Err(rejection) = shared.authenticate(&method, &uri, &headers, &raw_body) {
        return error_response(403, rejection.exception, &rejection.message);
    }
    let scripted = shared.recorder.next_fault();
    let mut drop_after = None;
    let mut trickle = None;
    let mut exception = None;
    match scripted {
        Some(Scripted::Fault(Fault::Status {
            status,
            body,
            headers,
        })) => return status_response(status, body, &headers),
        Some(Scripted::Fault(Fault::Delay(delay))) => tokio::time::sleep(delay).await,
        Some(Scripted::Fault(Fault::DropMidStream { after_chunks })) => {
            drop_after = Some(after_chunks);
        }
        Some(Scripted::Fault(Fault::Trickle(pause))) => trickle = Some(pause),
        Some(Scripted::StreamException {
            after_events,
            exception_type,
            message,
        }) => exception = Some((after_events, exception_type, message)),
        None => {}
    }
    if let Err(message) = validate(&body) {
        return error_response(400, "ValidationException", &message);
    }
    let number = shared.answered.fetch_add(1, Ordering::Relaxed) + 1;
    let request_id = format!("5e3c9a1d-7b2f-4c8e-9d01-{number:012x}");
    let answer = Answer::for_request(&body);
    if streamed {
        let mut events = answer.events();
        if let Some((after, exception_type, message)) = exception {
            events.truncate(after);
            let payload = json!({ "message": message }).to_string();
            events.push(event_stream::exception(&exception_type, payload.as_bytes()));
        }
        if let Some(pause) = trickle {
            // The whole event stream, a byte at a time.
            return recording::whole_answer(
                events.concat(),
                &[
                    ("content-type", "application/vnd.amazon.eventstream"),
                    ("x-amzn-RequestId", &request_id),
                ],
                Delivery::Trickle(pause),
            );
        }
        streamed_response(
            events,
            drop_after,
            "application/vnd.amazon.eventstream",
            &request_id,
        )
    } else {
        recording::whole_answer(
            answer.converse(),
            &[
                ("content-type", "application/json"),
                ("x-amzn-RequestId", &request_id),
            ],
            Delivery::of(drop_after, trickle),
        )
    }
}

/// Checks what Bedrock checks before invoking a model; `Err` is the message.
fn validate(body: &Value) -> Result<(), String> {
    let Some(messages) = body["messages"].as_array().filter(|list| !list.is_empty()) else {
        return Err(
            "A conversation must start with a user message. Try again with a \
                    conversation that starts with a user message."
                .to_owned(),
        );
    };
    let mut uses_tools = false;
    for (index, message) in messages.iter().enumerate() {
        let role = message["role"].as_str().unwrap_or_default();
        if index == 0 && role != "user" {
            return Err(
                "A conversation must start with a user message. Try again with a \
                        conversation that starts with a user message."
                    .to_owned(),
            );
        }
        if index > 0 && messages[index - 1]["role"] == message["role"] {
            return Err(
                "A conversation must alternate between user and assistant roles. \
                        Make sure the conversation alternates between user and assistant \
                        roles and try again."
                    .to_owned(),
            );
        }
        let blocks = message["content"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (position, block) in blocks.iter().enumerate() {
            if block["text"]
                .as_str()
                .is_some_and(|text| text.trim().is_empty())
            {
                return Err(format!(
                    "The text field in the ContentBlock object at messages.{index}.content.{position} \
                     is blank. Add text to the text field, and try again."
                ));
            }
            uses_tools |= block.get("toolUse").is_some() || block.get("toolResult").is_some();
        }
    }
    if uses_tools && body.get("toolConfig").is_none() {
        return Err(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
                .to_owned(),
        );
    }
    Ok(())
}

fn error_response(status: u16, error_type: &str, message: &str) -> Response {
    let (body, headers) = error_parts(error_type, message);
    status_response(status, body, &headers)
}

/// Streams `frames` as Bedrock does (see [`recording::streamed`]).
fn streamed_response(
    frames: Vec<Bytes>,
    drop_after: Option<usize>,
    content_type: &'static str,
    request_id: &str,
) -> Response {
    recording::streamed(
        frames,
        drop_after,
        &[
            ("content-type", content_type),
            ("x-amzn-RequestId", request_id),
        ],
    )
}

/// Answers a fault or an error with Bedrock's usual headers.
fn status_response(status: u16, body: String, headers: &[(String, String)]) -> Response {
    recording::status_response(
        status,
        body,
        headers,
        &[("x-amzn-RequestId", "5e3c9a1d-7b2f-4c8e-9d01-ffffffffffff")],
        "application/json",
    )
}

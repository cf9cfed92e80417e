//! What every fake provider shares: the record of requests received, the
//! queue of scripted faults, and the HTTP responses faults and streams use.

use std::{
    collections::VecDeque,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, Method, StatusCode, Uri, header},
    response::Response,
};
use futures::StreamExt;
use serde_json::Value;

use crate::RecordedRequest;

/// Serves a fake provider's `app` on `listener`, detached on purpose: the
/// fake lives as long as the test's runtime, which stops it (and every
/// connection) when the test ends.
pub(crate) fn serve(listener: tokio::net::TcpListener, app: axum::Router, provider: &'static str) {
    switchyard_common::task::spawn_detached(
        "a fake provider lives as long as the test runtime",
        async move {
            if let Err(error) = axum::serve(listener, app).await {
                panic!("the fake {provider} server stopped: {error}");
            }
        },
    );
}

/// Requests received and faults scripted for the next ones. `F` is the
/// fake's fault type.
#[derive(Debug)]
pub(crate) struct Recorder<F> {
    requests: Mutex<Vec<RecordedRequest>>,
    faults: Mutex<VecDeque<F>>,
    /// Scripted waits cut short because the caller hung up.
    hung_up: AtomicUsize,
}

impl<F> Default for Recorder<F> {
    fn default() -> Self {
        Self {
            requests: Mutex::default(),
            faults: Mutex::default(),
            hung_up: AtomicUsize::new(0),
        }
    }
}

/// Counts a wait as hung up on unless it was let finish.
struct WaitWatch<'a> {
    hung_up: &'a AtomicUsize,
    finished: bool,
}

impl Drop for WaitWatch<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.hung_up.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<F> Recorder<F> {
    /// Records a request and returns its body as JSON (`Null` when empty, a
    /// string when not JSON).
    pub(crate) fn record(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Value {
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
        };
        let headers = headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        lock(&self.requests).push(RecordedRequest {
            method: method.as_str().to_owned(),
            path: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_owned(), ToString::to_string),
            headers,
            body: body.clone(),
        });
        body
    }

    /// Every request received so far, in order.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    /// Queues a fault for the next request not yet answered.
    pub(crate) fn push_fault(&self, fault: F) {
        lock(&self.faults).push_back(fault);
    }

    /// Takes the fault for the request being answered, if one is queued.
    pub(crate) fn next_fault(&self) -> Option<F> {
        lock(&self.faults).pop_front()
    }

    /// Waits `delay` before answering (a scripted delay). When the caller
    /// closes the connection meanwhile, the server drops the handler, and
    /// the wait counts in [`Self::hung_up`].
    pub(crate) async fn wait(&self, delay: Duration) {
        let mut watch = WaitWatch {
            hung_up: &self.hung_up,
            finished: false,
        };
        tokio::time::sleep(delay).await;
        watch.finished = true;
    }

    /// Scripted waits the caller hung up on: each an upstream connection
    /// the gateway closed while the fake was still waiting to answer.
    pub(crate) fn hung_up(&self) -> usize {
        self.hung_up.load(Ordering::SeqCst)
    }
}

/// Sends `frames` one by one, each flushed on its own, with `headers`; with
/// `drop_after`, aborts the connection after that many frames.
pub(crate) fn streamed(
    frames: Vec<Bytes>,
    drop_after: Option<usize>,
    headers: &[(&str, &str)],
) -> Response {
    let keep = drop_after.unwrap_or(frames.len()).min(frames.len());
    let aborts = drop_after.is_some();
    let frames = frames
        .into_iter()
        .take(keep)
        .map(Ok::<Bytes, std::io::Error>);
    let frames = futures::stream::iter(frames).then(|frame| async move {
        // Yielding before each frame lets the server flush the previous one,
        // so frames arrive as separate reads, like a real token stream.
        tokio::task::yield_now().await;
        frame
    });
    let abort = futures::stream::iter(aborts.then(|| {
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "fault: connection dropped mid-stream",
        ))
    }))
    .then(|error| async move {
        // Let the frames before the abort reach the client first.
        tokio::time::sleep(Duration::from_millis(20)).await;
        error
    });
    builder_with(headers)
        .body(Body::from_stream(frames.chain(abort)))
        .expect("static headers are valid")
}

/// A response builder with `headers` set.
fn builder_with(headers: &[(&str, &str)]) -> axum::http::response::Builder {
    headers
        .iter()
        .fold(Response::builder(), |response, (name, value)| {
            response.header(*name, *value)
        })
}

/// How a fake sends a non-streamed answer, as its scripted fault says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// All at once.
    Whole,
    /// In two halves, aborting the connection after this many.
    CutAfter(usize),
    /// One byte at a time, this long apart.
    Trickle(Duration),
}

impl Delivery {
    /// The delivery a fault's `DropMidStream` count or `Trickle` pause asks for.
    pub(crate) fn of(drop_after: Option<usize>, trickle: Option<Duration>) -> Self {
        match (drop_after, trickle) {
            (Some(after), _) => Delivery::CutAfter(after),
            (None, Some(pause)) => Delivery::Trickle(pause),
            (None, None) => Delivery::Whole,
        }
    }
}

/// Sends a non-streamed answer `whole` with `headers`, as `delivery` says.
pub(crate) fn whole_answer(
    whole: impl Into<Bytes>,
    headers: &[(&str, &str)],
    delivery: Delivery,
) -> Response {
    let whole: Bytes = whole.into();
    match delivery {
        Delivery::Whole => builder_with(headers)
            .body(Body::from(whole))
            .expect("static headers are valid"),
        Delivery::CutAfter(after) => {
            let half = whole.len() / 2;
            let halves = vec![whole.slice(..half), whole.slice(half..)];
            streamed(halves, Some(after), headers)
        }
        Delivery::Trickle(pause) => trickled(whole, pause, headers),
    }
}

/// Sends `body` one byte at a time, waiting `pause` before each, with
/// `headers`: an upstream that keeps the connection busy but never finishes
/// in reasonable time.
fn trickled(body: Bytes, pause: Duration, headers: &[(&str, &str)]) -> Response {
    let bytes = (0..body.len()).map(move |index| body.slice(index..=index));
    let frames = futures::stream::iter(bytes).then(move |byte| async move {
        tokio::time::sleep(pause).await;
        Ok::<Bytes, std::io::Error>(byte)
    });
    builder_with(headers)
        .body(Body::from_stream(frames))
        .expect("static headers are valid")
}

/// Answers with `status` and `body`: first `defaults` (the provider's usual
/// headers), then `headers` from a fault; `content-type` is
/// `default_content_type` unless `headers` sets it.
pub(crate) fn status_response(
    status: u16,
    body: String,
    headers: &[(String, String)],
    defaults: &[(&str, &str)],
    default_content_type: &str,
) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).expect("fault status is a valid HTTP status"));
    for (name, value) in defaults {
        response = response.header(*name, *value);
    }
    let sets_content_type = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
    if !sets_content_type {
        response = response.header(header::CONTENT_TYPE, default_content_type);
    }
    for (name, value) in headers {
        response = response.header(name.as_str(), value.as_str());
    }
    response
        .body(Body::from(body))
        .expect("fault headers are valid")
}

//! Answers in OpenAI's error shape, with an `x-request-id`, for the
//! requests hyper refuses before any handler runs.
//!
//! hyper answers a request it cannot parse itself: `400` for a malformed
//! request line or header (a bad or repeated `Content-Length`, a bare CR, a
//! folded header, a NUL), `414` for a URI over 64 KiB and `431` for a head
//! over its buffer or with too many headers. It writes an empty body and
//! closes, and offers no hook to change that answer. [`AnswerProtocolErrors`]
//! wraps a connection's socket and replaces exactly those answers on their
//! way out.
//!
//! It recognises them by what only they are: a response head with one of
//! those three statuses and no `x-request-id`. Every answer the edge's own
//! handlers give carries an `x-request-id` (the request-id middleware runs
//! outside all of them), and a response body never begins a write with a
//! status line: bodies are JSON, SSE (`data:`) or chunk sizes. The check on
//! the data path is one comparison of a write's first ten bytes.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use switchyard_common::ServiceError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use uuid::Uuid;

use crate::error::error_json;

/// The start every refusal hyper writes itself shares: all are 4xx.
const HYPER_REFUSAL_PREFIX: &[u8] = b"HTTP/1.1 4";

/// A connection's socket whose refusals from hyper leave as OpenAI errors.
#[derive(Debug)]
pub struct AnswerProtocolErrors<T> {
    inner: T,
    /// The replacement answer, once one was made, and how much of it has
    /// been written. After it, the connection only closes.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<T> AnswerProtocolErrors<T> {
    /// Wraps a connection's socket.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            replacement: None,
        }
    }
}

impl<T: AsyncWrite + Unpin> AnswerProtocolErrors<T> {
    /// Writes what is left of the replacement answer.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some((answer, written)) = &mut self.replacement {
            while *written < answer.len() {
                let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &answer[*written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *written += n;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Takes over a write that is hyper's own refusal; `false` for any
    /// other write.
    fn replaces(&mut self, buf: &[u8]) -> bool {
        match replacement_for(buf) {
            Some(answer) => {
                self.replacement = Some((answer, 0));
                true
            }
            None => false,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for AnswerProtocolErrors<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for AnswerProtocolErrors<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacement.is_some() {
            // hyper closes after its refusal; nothing more is sent.
            ready!(this.drain(cx))?;
            return Poll::Ready(Ok(buf.len()));
        }
        if this.replaces(buf) {
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacement.is_some() {
            ready!(this.drain(cx))?;
            return Poll::Ready(Ok(bufs.iter().map(|buf| buf.len()).sum()));
        }
        // A response head is always a slice of its own.
        if let Some(first) = bufs.iter().find(|buf| !buf.is_empty())
            && this.replaces(first)
        {
            return Poll::Ready(Ok(first.len()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The OpenAI-shaped answer replacing `buf`, if `buf` is a refusal hyper
/// wrote itself.
fn replacement_for(buf: &[u8]) -> Option<Vec<u8>> {
    if !buf.starts_with(HYPER_REFUSAL_PREFIX) {
        return None;
    }
    let (status_line, message) = match buf.get(..13)? {
        b"HTTP/1.1 400 " => (
            "400 Bad Request",
            "The request is not valid HTTP/1.1: its request line or a header is malformed \
             (for example a bad or repeated Content-Length, a bare CR, a folded header or a NUL).",
        ),
        b"HTTP/1.1 414 " => ("414 URI Too Long", "The request URI is too long."),
        b"HTTP/1.1 431 " => (
            "431 Request Header Fields Too Large",
            "The request's headers are too large or too many.",
        ),
        _ => return None,
    };
    let head_end = buf.windows(4).position(|window| window == b"\r\n\r\n")?;
    let has_request_id = buf[..head_end]
        .split(|&byte| byte == b'\n')
        .any(|line| line.len() > 13 && line[..13].eq_ignore_ascii_case(b"x-request-id:"));
    if has_request_id {
        return None;
    }
    let request_id = Uuid::now_v7();
    tracing::debug!(%request_id, status = status_line, "refused a request that is not valid HTTP/1.1");
    Some(whole_error_response(
        status_line,
        &ServiceError::invalid_request(message),
        request_id,
        "",
    ))
}

/// A complete HTTP/1.1 error response that closes its connection: the
/// status line's code and reason (`"503 Service Unavailable"`), the error
/// as OpenAI JSON, the request id, and any `extra_headers` (each ending in
/// CRLF).
pub fn whole_error_response(
    status_line: &str,
    error: &ServiceError,
    request_id: Uuid,
    extra_headers: &str,
) -> Vec<u8> {
    let body = error_json(error);
    let mut response = format!(
        "HTTP/1.1 {status_line}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n{extra_headers}x-request-id: {request_id}\r\n\r\n",
        body.len(),
    )
    .into_bytes();
    response.extend_from_slice(&body);
    response
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const HYPER_400: &[u8] =
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 10:00:00 GMT\r\n\r\n";

    fn split(answer: &[u8]) -> (String, serde_json::Value) {
        let text = String::from_utf8(answer.to_vec()).expect("ASCII and JSON");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        let json = serde_json::from_str(body).expect("JSON");
        (head.to_owned(), json)
    }

    #[test]
    fn hyper_refusals_become_openai_errors_with_a_request_id() {
        for (hyper, status) in [
            (HYPER_400.to_vec(), "400"),
            (
                b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n".to_vec(),
                "414",
            ),
            (
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n"
                    .to_vec(),
                "431",
            ),
        ] {
            let answer = replacement_for(&hyper).expect("replaced");
            let (head, json) = split(&answer);
            assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
            assert!(head.contains("x-request-id: "), "{head}");
            assert!(head.contains("connection: close"), "{head}");
            let body_len = answer.len() - head.len() - 4;
            assert!(
                head.contains(&format!("content-length: {body_len}")),
                "{head}"
            );
            assert_eq!(json["error"]["type"], "invalid_request_error");
        }
    }

    #[test]
    fn the_edges_own_answers_and_bodies_pass_untouched() {
        let own = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\
                    x-request-id: 0190a0a0-0000-7000-8000-000000000000\r\ncontent-length: 2\r\n\r\n{}";
        assert!(replacement_for(own).is_none());
        assert!(replacement_for(b"HTTP/1.1 100 Continue\r\n\r\n").is_none());
        assert!(replacement_for(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(replacement_for(b"data: {\"id\":1}\n\n").is_none());
        // A head cut short is not recognised, so nothing half-replaced.
        assert!(replacement_for(b"HTTP/1.1 400 Bad Request\r\ncontent-le").is_none());
    }

    #[tokio::test]
    async fn the_replacement_is_what_reaches_the_peer_and_nothing_after_it() {
        let (client, server) = tokio::io::duplex(64);
        let mut wrapped = AnswerProtocolErrors::new(server);
        let write = async move {
            wrapped.write_all(HYPER_400).await.expect("written");
            wrapped.write_all(b"ignored").await.expect("swallowed");
            wrapped.flush().await.expect("flushed");
            wrapped.shutdown().await.expect("closed");
        };
        let mut received = Vec::new();
        let mut client = client;
        let read = client.read_to_end(&mut received);
        let ((), read) = tokio::join!(write, read);
        read.expect("read to the close");
        let (head, json) = split(&received);
        assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
        assert!(json["error"]["message"].as_str().is_some());
    }
}

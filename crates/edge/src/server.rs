//! The edge's HTTP/1.1 server loop: every connection bounded in time and
//! in number.
//!
//! - A client has [`EdgeConfig::header_read_timeout`] to send a request's
//!   headers. The same timer runs while a keep-alive connection waits for
//!   its next request, so an idle connection is closed after it too.
//! - At most [`EdgeConfig::max_connections`] connections are open at once.
//!   A connection over the limit is answered `503` in OpenAI's error shape
//!   and closed, before the process runs out of file descriptors; the edge
//!   logs when it reaches the limit and when it accepts again.
//! - A request hyper refuses before any handler runs (malformed, a URI or
//!   head too large) is answered in OpenAI's error shape with a request id
//!   (see [`crate::protocol_errors`]).
//! - On shutdown the listener closes, open connections finish their
//!   requests (streams included) and close, for at most [`DRAIN_DEADLINE`].

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use prometheus_client::{metrics::counter::Counter, registry::Registry};
use switchyard_common::{ErrorClass, ServiceError, metrics::GaugeFn};
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use uuid::Uuid;

use crate::{
    config::EdgeConfig,
    protocol_errors::{AnswerProtocolErrors, whole_error_response},
};

/// How long open requests (streams included) may run on after shutdown
/// begins; a client that stops reading must not keep the process alive.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// How long a refused connection gets to receive its `503`.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Pause after a failed `accept` (out of descriptors, for one), so the
/// loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The edge's connection limit and its series: connections open (read at
/// scrape time from the limit's permits) and connections refused.
pub struct Connections {
    permits: Arc<Semaphore>,
    refused: Counter,
}

impl Connections {
    /// A limit of `max_connections`, with its series in `registry`.
    pub fn register(max_connections: usize, registry: &mut Registry) -> Self {
        let permits = Arc::new(Semaphore::new(max_connections));
        let refused = Counter::default();
        registry.register(
            "edge_connections_refused",
            "Connections the edge refused with 503 at its connection limit",
            refused.clone(),
        );
        let open = Arc::clone(&permits);
        GaugeFn::register(
            registry,
            "edge_connections_open",
            "Client connections the edge holds open",
            move || {
                let open = max_connections.saturating_sub(open.available_permits());
                i64::try_from(open).unwrap_or(i64::MAX)
            },
        );
        Self { permits, refused }
    }
}

/// Serves `edge` on an already-bound listener until `shutdown` is
/// cancelled, under the connection limits of `config`.
pub async fn serve(
    listener: TcpListener,
    edge: crate::Edge,
    config: &EdgeConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let crate::Edge {
        app,
        connections: Connections { permits, refused },
    } = edge;
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    let limit = LimitLog::new(config.max_connections);
    // Every connection task is tracked, so shutdown can wait for them.
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let tcp = match accepted {
            Ok((tcp, _peer)) => tcp,
            Err(error) => {
                tracing::warn!(%error, "the edge could not accept a connection");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "cannot set TCP_NODELAY");
        }
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            limit.refused();
            refused.inc();
            connections.spawn(refuse(tcp));
            continue;
        };
        limit.accepted();
        let connection = http
            .serve_connection(
                TokioIo::new(AnswerProtocolErrors::new(tcp)),
                TowerToHyperService::new(app.clone()),
            )
            .with_upgrades();
        connections.spawn(run_connection(connection, permit, shutdown.clone()));
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(DRAIN_DEADLINE, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("requests still open after the drain deadline; closing them");
    }
    Ok(())
}

/// Drives one connection until it closes; on shutdown, lets the request in
/// flight finish and then closes it. Holds its connection-limit permit.
async fn run_connection<C>(connection: C, permit: OwnedSemaphorePermit, shutdown: CancellationToken)
where
    C: std::future::Future<Output = hyper::Result<()>> + GracefulShutdown,
{
    let _permit = permit;
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            connection.as_mut().shut_down_gracefully();
            connection.await
        }
    };
    if let Err(error) = result {
        // Clients that go away mid-request are routine; say so quietly.
        tracing::debug!(%error, "connection closed with an error");
    }
}

/// A connection that can stop taking new requests and close once the
/// current one is answered.
trait GracefulShutdown {
    /// Starts the graceful close.
    fn shut_down_gracefully(self: std::pin::Pin<&mut Self>);
}

impl<I, S> GracefulShutdown for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn shut_down_gracefully(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Answers a connection over the limit with `503` and closes it.
async fn refuse(mut tcp: TcpStream) {
    let response = refusal_response();
    // The client may not read at all; the descriptor is freed either way.
    let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, tcp.write_all(&response)).await;
}

/// The whole HTTP/1.1 response to a refused connection.
fn refusal_response() -> Vec<u8> {
    let error = ServiceError::new(
        ErrorClass::Overloaded,
        "The gateway has too many open connections; try again shortly.",
    );
    whole_error_response(
        "503 Service Unavailable",
        &error,
        Uuid::now_v7(),
        "retry-after: 1\r\n",
    )
}

/// Logs once when the connection limit is reached and once when the edge
/// accepts again, with how many connections were refused in all.
struct LimitLog {
    limit: usize,
    at_limit: AtomicBool,
    refused_total: AtomicU64,
}

impl LimitLog {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            at_limit: AtomicBool::new(false),
            refused_total: AtomicU64::new(0),
        }
    }

    fn refused(&self) {
        let refused_total = self.refused_total.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.at_limit.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                limit = self.limit,
                refused_total,
                "the edge is at its connection limit; refusing new connections with 503"
            );
        }
    }

    fn accepted(&self) {
        // Read first: the common case writes nothing to the shared flag.
        if self.at_limit.load(Ordering::Relaxed) && self.at_limit.swap(false, Ordering::Relaxed) {
            tracing::info!(
                limit = self.limit,
                refused_total = self.refused_total.load(Ordering::Relaxed),
                "the edge accepts connections again"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_gets_a_complete_openai_error() {
        let response = refusal_response();
        let text = String::from_utf8(response).expect("ASCII and JSON");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        assert!(head.contains("x-request-id: "), "{head}");
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(json["error"]["type"], "server_error");
    }
}

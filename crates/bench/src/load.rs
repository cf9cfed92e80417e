//! The load generator: closed-loop workers, each on its own keep-alive
//! HTTP/1.1 connection, recording latency, time to first chunk and the gaps
//! between chunks.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::{net::TcpStream, time::Instant};

/// What to send and how hard.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Where to send requests.
    pub address: SocketAddr,
    /// The JSON request body.
    pub body: Bytes,
    /// Bearer key, when the target needs one.
    pub api_key: Option<String>,
    /// Concurrent workers (connections).
    pub concurrency: usize,
    /// How long to measure, after the warm-up.
    pub duration: Duration,
    /// How long to send before measuring.
    pub warmup: Duration,
    /// Requests per second for all workers together; `None` is as fast as possible.
    pub rate: Option<f64>,
}

/// What the workers measured.
#[derive(Debug, Default)]
pub struct LoadResult {
    /// Whole-request latency of each measured request, in microseconds.
    pub latencies: Vec<u64>,
    /// Time to the first body frame, in microseconds.
    pub first_chunk: Vec<u64>,
    /// Gaps between body frames, in microseconds.
    pub gaps: Vec<u64>,
    /// Failed requests (connection errors or non-200 answers).
    pub errors: u64,
    /// Length of the measured window.
    pub elapsed: Duration,
}

/// Runs the load and returns the measurements of the window after warm-up.
pub async fn run(spec: &LoadSpec) -> LoadResult {
    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let stop_at = measure_from + spec.duration;
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..spec.concurrency {
        let spec = spec.clone();
        // Paced workers start spread over one period so the load is smooth.
        let pace = spec
            .rate
            .map(|rate| Duration::from_secs_f64(spec.concurrency as f64 / rate));
        let offset = pace.map_or(Duration::ZERO, |pace| {
            pace.mul_f64(worker as f64 / spec.concurrency as f64)
        });
        workers.spawn(async move { worker_loop(spec, measure_from, stop_at, pace, offset).await });
    }
    let mut total = LoadResult::default();
    while let Some(result) = workers.join_next().await {
        if let Ok(result) = result {
            total.latencies.extend(result.latencies);
            total.first_chunk.extend(result.first_chunk);
            total.gaps.extend(result.gaps);
            total.errors += result.errors;
        } else {
            total.errors += 1;
        }
    }
    total.elapsed = spec.duration;
    total
}

async fn worker_loop(
    spec: LoadSpec,
    measure_from: Instant,
    stop_at: Instant,
    pace: Option<Duration>,
    offset: Duration,
) -> LoadResult {
    let mut result = LoadResult::default();
    let mut sender = None;
    let mut next_send = Instant::now() + offset;
    while Instant::now() < stop_at {
        if let Some(pace) = pace {
            tokio::time::sleep_until(next_send).await;
            next_send += pace;
        }
        if sender.is_none() {
            sender = connect(spec.address).await;
            if sender.is_none() {
                result.errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        }
        let Some(connection) = sender.as_mut() else {
            continue;
        };
        let mut builder = Request::post("/v1/chat/completions")
            .header(header::HOST, "bench")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(key) = &spec.api_key {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let Ok(request) = builder.body(Full::new(spec.body.clone())) else {
            result.errors += 1;
            continue;
        };
        let sent_at = Instant::now();
        let measured = sent_at >= measure_from;
        let Ok(response) = connection.send_request(request).await else {
            result.errors += 1;
            sender = None;
            continue;
        };
        let ok = response.status().is_success();
        let mut body = response.into_body();
        let mut previous: Option<Instant> = None;
        let mut failed = false;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                failed = true;
                break;
            };
            if frame.data_ref().is_none_or(|data| data.is_empty()) {
                continue;
            }
            let now = Instant::now();
            if measured {
                match previous {
                    None => result.first_chunk.push(micros(now - sent_at)),
                    Some(previous) => result.gaps.push(micros(now - previous)),
                }
            }
            previous = Some(now);
        }
        if failed {
            sender = None;
        }
        if !ok || failed {
            result.errors += u64::from(measured);
            continue;
        }
        if measured && Instant::now() <= stop_at {
            result.latencies.push(micros(sent_at.elapsed()));
        }
    }
    result
}

async fn connect(address: SocketAddr) -> Option<http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(address).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.ok()?;
    // Detached: drives this worker's connection until the worker drops it.
    switchyard_common::task::spawn_detached(
        "a benchmark connection lives as long as the load run",
        connection,
    );
    Some(sender)
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

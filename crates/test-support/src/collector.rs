//! An OTLP/gRPC trace collector, the protocol Jaeger ingests: it receives
//! the spans a gateway exports and keeps them for a test to inspect.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, any_value::Value as OtlpValue},
    trace::v1::status::StatusCode,
};
use serde_json::Value;
use tokio_stream::wrappers::TcpListenerStream;

/// One span as the collector received it.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectedSpan {
    /// `service.name` of the process that exported it.
    pub service: String,
    /// Span name.
    pub name: String,
    /// Trace id, 32 lowercase hex digits.
    pub trace_id: String,
    /// Span id, 16 lowercase hex digits.
    pub span_id: String,
    /// Parent span id; empty for a root span.
    pub parent_span_id: String,
    /// OTLP span kind (1 internal, 2 server, 3 client).
    pub kind: i32,
    /// Start and end, Unix epoch nanoseconds.
    pub start_unix_nanos: u64,
    /// End, Unix epoch nanoseconds.
    pub end_unix_nanos: u64,
    /// Whether the span's status is `ERROR`.
    pub failed: bool,
    /// Attributes as JSON values (strings, numbers, booleans, arrays).
    pub attributes: BTreeMap<String, Value>,
}

impl CollectedSpan {
    /// The attribute `key` as a string, if it is one.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }

    /// The attribute `key` as an integer, if it is one.
    pub fn integer(&self, key: &str) -> Option<i64> {
        self.attributes.get(key).and_then(Value::as_i64)
    }
}

/// A running collector.
#[derive(Debug, Clone)]
pub struct Collector {
    address: SocketAddr,
    spans: Arc<Mutex<Vec<CollectedSpan>>>,
}

impl Collector {
    /// Starts a collector on a free loopback port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the collector");
        let address = listener.local_addr().expect("collector address");
        let spans = Arc::new(Mutex::new(Vec::new()));
        let service = TraceServiceServer::new(Receiver {
            spans: Arc::clone(&spans),
        });
        switchyard_common::task::spawn_detached(
            "serves the test's collector until the test's runtime ends",
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        Self { address, spans }
    }

    /// The endpoint to give `telemetry.otlp_endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<CollectedSpan> {
        self.spans.lock().expect("not poisoned").clone()
    }

    /// The spans of `trace_id`, once `ready` holds for them or `patience`
    /// has passed (then whatever arrived).
    pub async fn trace(
        &self,
        trace_id: &str,
        patience: Duration,
        ready: impl Fn(&[CollectedSpan]) -> bool,
    ) -> Vec<CollectedSpan> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let spans: Vec<CollectedSpan> = self
                .spans()
                .into_iter()
                .filter(|span| span.trace_id == trace_id)
                .collect();
            if ready(&spans) || tokio::time::Instant::now() >= deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

struct Receiver {
    spans: Arc<Mutex<Vec<CollectedSpan>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|attribute| attribute.key == "service.name")
                .and_then(|attribute| attribute.value.as_ref())
                .map(json)
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default();
            for span in resource_spans
                .scope_spans
                .into_iter()
                .flat_map(|scope| scope.spans)
            {
                received.push(CollectedSpan {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    kind: span.kind,
                    start_unix_nanos: span.start_time_unix_nano,
                    end_unix_nanos: span.end_time_unix_nano,
                    failed: span
                        .status
                        .is_some_and(|status| status.code == StatusCode::Error as i32),
                    attributes: span
                        .attributes
                        .iter()
                        .filter_map(|attribute| {
                            Some((attribute.key.clone(), json(attribute.value.as_ref()?)))
                        })
                        .collect(),
                });
            }
        }
        self.spans.lock().expect("not poisoned").extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// An OTLP attribute value as JSON.
fn json(value: &AnyValue) -> Value {
    match &value.value {
        Some(OtlpValue::StringValue(text)) => Value::from(text.as_str()),
        Some(OtlpValue::BoolValue(flag)) => Value::from(*flag),
        Some(OtlpValue::IntValue(number)) => Value::from(*number),
        Some(OtlpValue::DoubleValue(number)) => Value::from(*number),
        Some(OtlpValue::ArrayValue(array)) => Value::Array(array.values.iter().map(json).collect()),
        Some(OtlpValue::BytesValue(bytes)) => Value::from(hex::encode(bytes)),
        _ => Value::Null,
    }
}

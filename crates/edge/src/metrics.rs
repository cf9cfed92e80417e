//! The edge's series: every error answered to a client, by class, whoever
//! decided it (the edge itself, the router, or a caught panic); and the
//! gateway's own overhead (see [`crate::overhead`]).

use std::time::Duration;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};
use switchyard_common::{ErrorClass, metrics::overhead_buckets};

use crate::overhead::StreamOverhead;

/// An error answer's class.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    class: &'static str,
}

/// What a whole (non-streamed) answer was.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    /// `chat` or `embeddings`.
    operation: &'static str,
}

/// What a whole answer answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/embeddings`.
    Embeddings,
}

/// The edge's series.
#[derive(Debug, Clone)]
pub struct EdgeMetrics {
    errors: Family<ClassLabels, Counter>,
    /// Whole-answer overhead of chat and of embeddings, resolved once.
    chat_overhead: Histogram,
    embeddings_overhead: Histogram,
    first_token_overhead: Histogram,
    chunk_gap_overhead: Histogram,
}

fn overhead_histogram() -> Histogram {
    Histogram::new(overhead_buckets())
}

impl EdgeMetrics {
    /// Registers the edge's series in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let overhead: Family<OperationLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(overhead_histogram);
        let of = |operation| overhead.get_or_create_owned(&OperationLabels { operation });
        let metrics = Self {
            errors: Family::default(),
            chat_overhead: of("chat"),
            embeddings_overhead: of("embeddings"),
            first_token_overhead: overhead_histogram(),
            chunk_gap_overhead: overhead_histogram(),
        };
        registry.register(
            "errors",
            "Error answers sent to clients, by error class",
            metrics.errors.clone(),
        );
        registry.register(
            "overhead_seconds",
            "Time the gateway added to a whole answer: the client's wait after its body was read, less the time at providers",
            overhead.clone(),
        );
        registry.register(
            "overhead_first_token_seconds",
            "Time the gateway added to a stream's first token",
            metrics.first_token_overhead.clone(),
        );
        registry.register(
            "overhead_chunk_gap_seconds",
            "Time the gateway added to the gap between a stream's chunks, on average per stream",
            metrics.chunk_gap_overhead.clone(),
        );
        metrics
    }

    /// Records the overhead of one whole answer.
    pub fn whole_answer(&self, operation: Operation, overhead: Duration) {
        let histogram = match operation {
            Operation::Chat => &self.chat_overhead,
            Operation::Embeddings => &self.embeddings_overhead,
        };
        histogram.observe(overhead.as_secs_f64());
    }

    /// Records the overhead of one finished stream.
    pub fn stream(&self, overhead: &StreamOverhead) {
        self.first_token_overhead
            .observe(overhead.first_token.as_secs_f64());
        if let Some(gap) = overhead.chunk_gap {
            self.chunk_gap_overhead.observe(gap.as_secs_f64());
        }
    }

    /// Counts one error answer.
    pub fn error(&self, class: ErrorClass) {
        self.errors
            .get_or_create(&ClassLabels {
                class: class.as_str(),
            })
            .inc();
    }
}

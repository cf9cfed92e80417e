//! The edge's series: every error answered to a client, by class, whoever
//! decided it (the edge itself, the router, or a caught panic).

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};
use switchyard_common::ErrorClass;

/// An error answer's class.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    class: &'static str,
}

/// The edge's series.
#[derive(Debug, Clone)]
pub struct EdgeMetrics {
    errors: Family<ClassLabels, Counter>,
}

impl EdgeMetrics {
    /// Registers the edge's series in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            errors: Family::default(),
        };
        registry.register(
            "errors",
            "Error answers sent to clients, by error class",
            metrics.errors.clone(),
        );
        metrics
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

//! Liveness and readiness probes.

use std::sync::Arc;

use axum::{extract::State, http::StatusCode};

use crate::EdgeState;

/// `GET /healthz`: the process is up.
pub async fn live() -> &'static str {
    "ok"
}

/// `GET /readyz`: ready once the first config snapshot has arrived.
pub async fn ready(State(state): State<Arc<EdgeState>>) -> (StatusCode, &'static str) {
    if state.index.load().is_some() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "waiting for configuration")
    }
}

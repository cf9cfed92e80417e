//! Scenarios every sink must pass.

use switchyard_common::{ErrorClass, ServiceError};

use super::backend::{Backend, expected_row, usage_event};

/// Three events become three rows with the right values.
pub async fn records_events(backend: &Backend) {
    let events: Vec<_> = (1..=3).map(usage_event).collect();
    let accepted = backend
        .record(events.clone())
        .await
        .expect("a valid batch is recorded");
    assert_eq!(accepted, 3);
    let rows = backend.rows().await;
    let expected: Vec<_> = events.iter().map(expected_row).collect();
    assert_eq!(rows, expected);
}

/// A batch of many rows lands whole, values intact.
pub async fn records_large_batches_whole(backend: &Backend) {
    let events: Vec<_> = (1..=150).map(usage_event).collect();
    let accepted = backend
        .record(events.clone())
        .await
        .expect("a large batch is recorded");
    assert_eq!(accepted, 150);
    let mut rows = backend.rows().await;
    let mut expected: Vec<_> = events.iter().map(expected_row).collect();
    let key = |row: &serde_json::Value| row["event_id"].as_str().unwrap_or_default().to_owned();
    rows.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(rows, expected);
}

/// Re-sending event ids (in a later batch or twice in one) stores nothing new.
pub async fn is_idempotent_by_event_id(backend: &Backend) {
    let events: Vec<_> = (1..=3).map(usage_event).collect();
    backend
        .record(events.clone())
        .await
        .expect("first batch is recorded");
    let mut again = events.clone();
    again.push(events[0].clone());
    let accepted = backend.record(again).await.expect("re-sending is harmless");
    assert_eq!(accepted, 4);
    assert_eq!(backend.distinct_events().await, 3);
    assert_eq!(backend.rows().await.len(), 3);
}

/// One invalid event rejects the whole batch as an invalid request.
pub async fn rejects_invalid_batches_whole(backend: &Backend) {
    let mut events: Vec<_> = (1..=3).map(usage_event).collect();
    events[1].event_id = "not-a-uuid".to_owned();
    let status = backend
        .record(events)
        .await
        .expect_err("an invalid event is rejected");
    let error = ServiceError::from_status(&status);
    assert_eq!(error.class, ErrorClass::InvalidRequest);
    assert_eq!(error.param.as_deref(), Some("events[1].event_id"));
    assert_eq!(backend.distinct_events().await, 0);
}

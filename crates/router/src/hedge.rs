//! Hedging: when a route's first attempt has not produced its first
//! message after the route's `hedge.after`, a backup attempt goes to the
//! next candidate, and whichever answers first is served. The other is
//! dropped at once, which closes its upstream connection; it stays in the
//! usage record as `cancelled`.

use std::{
    future::Future,
    pin::pin,
    time::{Duration, Instant},
};

use switchyard_common::ServiceError;

/// How a hedged pair of attempts ended.
pub enum Raced<T> {
    /// The first attempt ended before the hedge was sent.
    Alone(Result<T, ServiceError>),
    /// One answered; the other was cancelled or had failed.
    Answered {
        /// Whether the backup (not the first attempt) answered.
        by_backup: bool,
        /// Its answer.
        answer: T,
        /// When it answered.
        at: Instant,
        /// The other attempt's error and when it ended, when it failed
        /// rather than being cancelled.
        other: Option<(ServiceError, Instant)>,
    },
    /// Both failed.
    BothFailed {
        /// The first attempt's error, and when it ended.
        first: (ServiceError, Instant),
        /// The backup's, likewise.
        backup: (ServiceError, Instant),
    },
}

/// Runs `first`; if it has not ended after `after`, starts the backup with
/// `start_backup` (which returns `None` when the backup may not be sent,
/// e.g. its breaker refuses) and races the two.
pub async fn race<T, F1, F2>(
    first: F1,
    after: Duration,
    start_backup: impl FnOnce() -> Option<F2>,
) -> Raced<T>
where
    F1: Future<Output = Result<T, ServiceError>>,
    F2: Future<Output = Result<T, ServiceError>>,
{
    let mut first = pin!(first);
    tokio::select! {
        result = &mut first => return Raced::Alone(result),
        () = tokio::time::sleep(after) => {}
    }
    let Some(backup) = start_backup() else {
        return Raced::Alone(first.await);
    };
    let mut backup = pin!(backup);
    let (first_failed, backup_failed) = tokio::select! {
        result = &mut first => match result {
            Ok(answer) => {
                return Raced::Answered { by_backup: false, answer, at: Instant::now(), other: None };
            }
            Err(error) => (Some((error, Instant::now())), None),
        },
        result = &mut backup => match result {
            Ok(answer) => {
                return Raced::Answered { by_backup: true, answer, at: Instant::now(), other: None };
            }
            Err(error) => (None, Some((error, Instant::now()))),
        },
    };
    // One failed: the other may still answer.
    match (first_failed, backup_failed) {
        (Some(first), None) => match backup.await {
            Ok(answer) => Raced::Answered {
                by_backup: true,
                answer,
                at: Instant::now(),
                other: Some(first),
            },
            Err(error) => Raced::BothFailed {
                first,
                backup: (error, Instant::now()),
            },
        },
        (None, Some(backup)) => match first.await {
            Ok(answer) => Raced::Answered {
                by_backup: false,
                answer,
                at: Instant::now(),
                other: Some(backup),
            },
            Err(error) => Raced::BothFailed {
                first: (error, Instant::now()),
                backup,
            },
        },
        _ => unreachable!("exactly one of the two ended"),
    }
}

//! Spawning tasks that deliberately outlive whoever started them.
//!
//! Almost every task belongs on a `TaskTracker`, so shutdown can wait for
//! it. The few that may not (a signal listener living as long as the
//! process, a test fake living as long as the test's runtime) go through
//! [`spawn_detached`], which makes the caller say why.

use std::future::Future;

/// Spawns `future` untracked. `why` names the reason it may outlive its
/// owner; it is logged at debug level.
pub fn spawn_detached<F>(why: &'static str, future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tracing::debug!(why, "spawning a detached task");
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place detached tasks are spawned, each with a stated reason"
    )]
    tokio::spawn(future)
}

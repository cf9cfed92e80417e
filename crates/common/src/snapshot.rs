//! The client side of the control plane's `Watch` stream.
//!
//! Edges, routers and adapters hold the newest snapshot of their role's view
//! in memory behind an `ArcSwap` and never call the control plane per
//! request. A background task keeps the stream open, reconnecting with backoff.

use std::{sync::Arc, time::Duration};

use arc_swap::ArcSwapOption;
use switchyard_proto::v1::{Snapshot, SnapshotAudience, WatchRequest};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::client::ControlPlaneClient;

/// The newest snapshot, converted by the consumer into its own index type `T`.
pub struct SnapshotHandle<T> {
    current: Arc<ArcSwapOption<T>>,
}

impl<T> Clone for SnapshotHandle<T> {
    fn clone(&self) -> Self {
        Self {
            current: self.current.clone(),
        }
    }
}

impl<T> SnapshotHandle<T> {
    /// Returns the newest snapshot, or `None` before the first one arrived.
    pub fn load(&self) -> Option<Arc<T>> {
        self.current.load_full()
    }

    /// A handle that holds `value` until [`SnapshotHandle::store`] replaces
    /// it, with no control plane behind it (for tests and fixed setups).
    pub fn fixed(value: T) -> Self {
        Self {
            current: Arc::new(ArcSwapOption::from_pointee(value)),
        }
    }

    /// Replaces the held value.
    pub fn store(&self, value: T) {
        self.current.store(Some(Arc::new(value)));
    }
}

/// Starts watching the control plane for `audience`'s view, converting each
/// snapshot with `index`. The task is tracked by `tasks` and ends when
/// `shutdown` is cancelled.
pub fn watch_snapshots<T, F>(
    control_plane: ControlPlaneClient,
    audience: SnapshotAudience,
    index: F,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> SnapshotHandle<T>
where
    T: Send + Sync + 'static,
    F: Fn(Snapshot) -> T + Send + 'static,
{
    let current = Arc::new(ArcSwapOption::empty());
    let handle = SnapshotHandle {
        current: current.clone(),
    };
    // Tracked: lives as long as the service, stops on shutdown.
    tasks.spawn(async move {
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = watch_forever(control_plane, audience, index, current) => {}
        }
    });
    handle
}

async fn watch_forever<T, F>(
    client: ControlPlaneClient,
    audience: SnapshotAudience,
    index: F,
    current: Arc<ArcSwapOption<T>>,
) where
    F: Fn(Snapshot) -> T,
{
    let mut backoff = Duration::from_millis(50);
    // The version this process holds; the stream resumes from it after a reconnect.
    let mut known_version = 0;
    loop {
        let request = WatchRequest {
            known_version,
            audience: audience as i32,
        };
        match client.watch(request).await {
            Ok(mut stream) => loop {
                match stream.message().await {
                    Ok(Some(message)) => {
                        let Some(snapshot) = message.snapshot else {
                            continue;
                        };
                        let version = snapshot.version;
                        current.store(Some(Arc::new(index(snapshot))));
                        known_version = version;
                        backoff = Duration::from_millis(50);
                        tracing::debug!(version, "snapshot applied");
                    }
                    Ok(None) => break,
                    Err(status) => {
                        tracing::warn!(code = ?status.code(), "snapshot stream failed");
                        break;
                    }
                }
            },
            Err(status) => {
                tracing::warn!(code = ?status.code(), "cannot watch the control plane");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

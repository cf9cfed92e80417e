//! The client side of the control plane's `Watch` stream.
//!
//! Edges, routers and adapters hold the newest snapshot of their role's view
//! in memory behind an `ArcSwap` and never call the control plane per
//! request. A background task keeps the stream open, reconnecting with
//! backoff. After the first full snapshot, changes arrive as deltas
//! ([`delta::apply_delta`]), so one changed key among 100,000 is one key on
//! the wire.

pub mod delta;

use std::{sync::Arc, time::Duration};

use arc_swap::ArcSwapOption;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{family::Family, gauge::Gauge},
    registry::Registry,
};
use switchyard_proto::v1::{Snapshot, SnapshotAudience, WatchRequest};
use tokio::sync::Notify;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::client::ControlPlaneClient;

/// How long a request that arrives before a service's first snapshot waits
/// for it (a process just started, or its control plane is slow to answer),
/// rather than failing at once.
pub const STARTUP_PATIENCE: Duration = Duration::from_secs(5);

/// The newest snapshot, converted by the consumer into its own index type `T`.
pub struct SnapshotHandle<T> {
    current: Arc<ArcSwapOption<T>>,
    /// Woken at every store, for requests waiting for the first snapshot.
    stored: Arc<Notify>,
}

impl<T> Clone for SnapshotHandle<T> {
    fn clone(&self) -> Self {
        Self {
            current: self.current.clone(),
            stored: self.stored.clone(),
        }
    }
}

impl<T> SnapshotHandle<T> {
    /// Returns the newest snapshot, or `None` before the first one arrived.
    pub fn load(&self) -> Option<Arc<T>> {
        self.current.load_full()
    }

    /// Returns the newest snapshot; before the first one has arrived, waits
    /// for it for at most `patience`. `None` when none came in time.
    pub async fn load_or_wait(&self, patience: Duration) -> Option<Arc<T>> {
        if let Some(current) = self.load() {
            return Some(current);
        }
        let stored = self.stored.notified();
        tokio::pin!(stored);
        // Registered before the second look, so a store in between wakes it.
        stored.as_mut().enable();
        if let Some(current) = self.load() {
            return Some(current);
        }
        let _ = tokio::time::timeout(patience, stored).await;
        self.load()
    }

    /// A handle that holds `value` until [`SnapshotHandle::store`] replaces
    /// it, with no control plane behind it (for tests and fixed setups).
    pub fn fixed(value: T) -> Self {
        Self {
            current: Arc::new(ArcSwapOption::from_pointee(value)),
            stored: Arc::new(Notify::new()),
        }
    }

    /// A handle with nothing in it yet: the first [`SnapshotHandle::store`]
    /// fills it and wakes every [`SnapshotHandle::load_or_wait`].
    pub fn empty() -> Self {
        Self {
            current: Arc::new(ArcSwapOption::empty()),
            stored: Arc::new(Notify::new()),
        }
    }

    /// Replaces the held value.
    pub fn store(&self, value: T) {
        self.current.store(Some(Arc::new(value)));
        self.stored.notify_waiters();
    }
}

/// Labels of the snapshot series: the role holding the snapshot.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HolderLabels {
    role: &'static str,
}

/// What every snapshot holder reports: the version it holds and whether
/// its watch stream is open (a closed one means the snapshot may be stale).
#[derive(Debug, Clone)]
pub struct SnapshotMetrics {
    version: Family<HolderLabels, Gauge>,
    connected: Family<HolderLabels, Gauge>,
}

impl SnapshotMetrics {
    /// Registers the series in `registry`; once per process.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            version: Family::default(),
            connected: Family::default(),
        };
        registry.register(
            "snapshot_version",
            "Version of the config snapshot this role holds",
            metrics.version.clone(),
        );
        registry.register(
            "snapshot_watch_connected",
            "1 while this role's snapshot watch stream is open, 0 while it reconnects",
            metrics.connected.clone(),
        );
        metrics
    }

    fn labels(audience: SnapshotAudience) -> HolderLabels {
        let role = match audience {
            SnapshotAudience::Edge => "edge",
            SnapshotAudience::Router => "router",
            SnapshotAudience::Adapter => "adapter",
            SnapshotAudience::Unspecified => "unspecified",
        };
        HolderLabels { role }
    }
}

/// Starts watching the control plane for `audience`'s view, converting each
/// snapshot with `index`. The task is tracked by `tasks` and ends when
/// `shutdown` is cancelled; it reports to `metrics`.
pub fn watch_snapshots<T, F>(
    control_plane: ControlPlaneClient,
    audience: SnapshotAudience,
    index: F,
    metrics: &SnapshotMetrics,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> SnapshotHandle<T>
where
    T: Send + Sync + 'static,
    F: Fn(Snapshot) -> T + Send + 'static,
{
    let handle = SnapshotHandle::empty();
    let current = handle.clone();
    let labels = SnapshotMetrics::labels(audience);
    let reports = Reports {
        version: metrics.version.get_or_create_owned(&labels),
        connected: metrics.connected.get_or_create_owned(&labels),
    };
    // Tracked: lives as long as the service, stops on shutdown.
    tasks.spawn(async move {
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = watch_forever(control_plane, audience, index, current, &reports) => {}
        }
        reports.connected.set(0);
    });
    handle
}

/// One holder's snapshot gauges.
struct Reports {
    version: Gauge,
    connected: Gauge,
}

async fn watch_forever<T, F>(
    client: ControlPlaneClient,
    audience: SnapshotAudience,
    index: F,
    current: SnapshotHandle<T>,
    reports: &Reports,
) where
    F: Fn(Snapshot) -> T,
{
    let mut backoff = Duration::from_millis(50);
    // The full view this process holds; the stream resumes from its version
    // after a reconnect, and deltas apply to it.
    let mut held: Option<Snapshot> = None;
    loop {
        let request = WatchRequest {
            known_version: held.as_ref().map_or(0, |snapshot| snapshot.version),
            audience: audience as i32,
        };
        let watched = client.watch(request).await;
        reports.connected.set(i64::from(watched.is_ok()));
        match watched {
            Ok(mut stream) => loop {
                match stream.message().await {
                    Ok(Some(message)) => {
                        let snapshot = match (message.snapshot, message.delta, held.take()) {
                            (Some(snapshot), _, _) => snapshot,
                            (None, Some(delta), Some(mut snapshot)) => {
                                if let Err(mismatch) = delta::apply_delta(&mut snapshot, delta) {
                                    // Start over from a full snapshot.
                                    tracing::warn!(%mismatch, "snapshot delta does not apply");
                                    break;
                                }
                                snapshot
                            }
                            (None, _, kept) => {
                                held = kept;
                                continue;
                            }
                        };
                        let version = snapshot.version;
                        current.store(index(snapshot.clone()));
                        held = Some(snapshot);
                        reports
                            .version
                            .set(i64::try_from(version).unwrap_or(i64::MAX));
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
        reports.connected.set(0);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_before_the_first_snapshot_waits_for_it_within_patience() {
        let handle: SnapshotHandle<u32> = SnapshotHandle::empty();
        assert_eq!(handle.load_or_wait(Duration::from_millis(20)).await, None);
        let writer = handle.clone();
        let (waited, ()) = tokio::join!(handle.load_or_wait(Duration::from_secs(5)), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            writer.store(7);
        });
        assert_eq!(waited.as_deref(), Some(&7));
        // Once loaded, no wait at all.
        assert_eq!(
            handle.load_or_wait(Duration::ZERO).await.as_deref(),
            Some(&7)
        );
    }
}

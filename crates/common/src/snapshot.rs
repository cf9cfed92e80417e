//! The client side of the control plane's `Watch` stream.
//!
//! Edges and routers hold the newest snapshot in memory behind an `ArcSwap`
//! and never call the control plane per request. A background task keeps the
//! stream open, reconnecting with backoff.

use std::{sync::Arc, time::Duration};

use arc_swap::ArcSwapOption;
use switchyard_proto::v1::{
    Snapshot, WatchRequest, control_plane_service_client::ControlPlaneServiceClient,
};
use tokio::sync::watch;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{GrpcChannel, channel::MAX_GRPC_MESSAGE_BYTES};

/// The newest snapshot, converted by the consumer into its own index type `T`.
pub struct SnapshotHandle<T> {
    current: Arc<ArcSwapOption<T>>,
    version: watch::Receiver<u64>,
}

impl<T> Clone for SnapshotHandle<T> {
    fn clone(&self) -> Self {
        Self {
            current: self.current.clone(),
            version: self.version.clone(),
        }
    }
}

impl<T> SnapshotHandle<T> {
    /// Returns the newest snapshot, or `None` before the first one arrived.
    pub fn load(&self) -> Option<Arc<T>> {
        self.current.load_full()
    }

    /// Waits until a snapshot newer than version 0 has arrived.
    pub async fn ready(&self) {
        let mut version = self.version.clone();
        // An error means the watcher task is gone; nothing more will arrive.
        let _ = version.wait_for(|version| *version > 0).await;
    }

    /// Returns the version of the newest snapshot (0 before the first).
    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// Creates a handle holding a fixed value (for tests of consumers).
    pub fn fixed(value: T, version: u64) -> Self {
        let (_sender, receiver) = watch::channel(version);
        Self {
            current: Arc::new(ArcSwapOption::from_pointee(value)),
            version: receiver,
        }
    }
}

/// Starts watching the control plane, converting each snapshot with `index`.
/// The task is tracked by `tasks` and ends when `shutdown` is cancelled.
pub fn watch_snapshots<T, F>(
    channel: GrpcChannel,
    index: F,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> SnapshotHandle<T>
where
    T: Send + Sync + 'static,
    F: Fn(Snapshot) -> T + Send + 'static,
{
    let current = Arc::new(ArcSwapOption::empty());
    let (sender, receiver) = watch::channel(0);
    let handle = SnapshotHandle {
        current: current.clone(),
        version: receiver,
    };
    // Tracked: lives as long as the service, stops on shutdown.
    tasks.spawn(async move {
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = watch_forever(channel, index, current, sender) => {}
        }
    });
    handle
}

async fn watch_forever<T, F>(
    channel: GrpcChannel,
    index: F,
    current: Arc<ArcSwapOption<T>>,
    sender: watch::Sender<u64>,
) where
    F: Fn(Snapshot) -> T,
{
    let mut client = ControlPlaneServiceClient::new(channel)
        .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES);
    let mut backoff = Duration::from_millis(50);
    loop {
        let known_version = *sender.borrow();
        match client.watch(WatchRequest { known_version }).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(message)) => {
                            let Some(snapshot) = message.snapshot else {
                                continue;
                            };
                            let version = snapshot.version;
                            current.store(Some(Arc::new(index(snapshot))));
                            sender.send_replace(version);
                            backoff = Duration::from_millis(50);
                            tracing::debug!(version, "snapshot applied");
                        }
                        Ok(None) => break,
                        Err(status) => {
                            tracing::warn!(code = ?status.code(), "snapshot stream failed");
                            break;
                        }
                    }
                }
            }
            Err(status) => {
                tracing::warn!(code = ?status.code(), "cannot watch the control plane");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

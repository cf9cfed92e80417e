//! Publishing snapshots: the publisher reloads at once when this process
//! committed a change, and polls to notice changes other writers made.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use switchyard_proto::v1::{Snapshot, SnapshotDelta};
use tokio::{
    sync::{Notify, watch},
    time::MissedTickBehavior,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    Result,
    delta::{KEPT_DELTAS, diff},
    store::ConfigStore,
};

/// What the publisher publishes: the newest full snapshot, and the deltas
/// that led to it from the recent versions before.
#[derive(Debug, Default)]
pub(crate) struct Published {
    /// The full (unfiltered) snapshot.
    pub snapshot: Arc<Snapshot>,
    /// At most [`KEPT_DELTAS`] consecutive deltas, the newest last, ending at
    /// `snapshot`'s version; shared with the publications before, so a large
    /// delta (a bulk import) is not copied at every publication.
    pub deltas: VecDeque<Arc<SnapshotDelta>>,
}

impl Published {
    /// The first publication: a snapshot with no history.
    pub(crate) fn first(snapshot: Snapshot) -> Self {
        Self {
            snapshot: Arc::new(snapshot),
            deltas: VecDeque::new(),
        }
    }

    /// The publication after this one, for `next`.
    fn then(&self, next: Snapshot) -> Self {
        let mut deltas = self.deltas.clone();
        deltas.push_back(Arc::new(diff(&self.snapshot, &next)));
        while deltas.len() > KEPT_DELTAS {
            deltas.pop_front();
        }
        Self {
            snapshot: Arc::new(next),
            deltas,
        }
    }
}

/// Starts the task that checks the stored version when `changed` is
/// notified (this process committed a change) and every `poll_interval`
/// (another replica or process wrote), and publishes a fresh snapshot through
/// `sender` when it changed. Tracked by `tasks`; stops on `shutdown`, which
/// drops `sender` and so ends every `Watch` stream.
pub(crate) fn spawn_poll_task(
    store: ConfigStore,
    sender: watch::Sender<Arc<Published>>,
    poll_interval: Duration,
    changed: Arc<Notify>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) {
    // Tracked: lives as long as the service, stops on shutdown.
    tasks.spawn(async move {
        let mut ticker = tokio::time::interval(poll_interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The first tick completes at once; the first snapshot is already published.
        ticker.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = changed.notified() => {}
                _ = ticker.tick() => {}
            }
            shift_due(&store).await;
            if let Err(error) = publish_if_changed(&store, &sender).await {
                tracing::warn!(%error, "cannot refresh the control-plane snapshot");
            }
        }
        store.close().await;
    });
}

/// The actor of the sunset shifts the control plane makes.
pub(crate) const CONTROL_PLANE_ACTOR: &str = "control-plane";

/// Makes the sunset shifts due now (published by the next
/// [`publish_if_changed`]), logging each; a failure is logged and retried
/// at the next poll.
pub(crate) async fn shift_due(store: &ConfigStore) {
    match store.shift_due(CONTROL_PLANE_ACTOR).await {
        Ok(shifts) => {
            for shift in shifts {
                tracing::warn!(
                    deployment = %shift.deployment,
                    successor = %shift.successor,
                    routes = ?shift.routes,
                    "deployment past its sunset; its traffic now goes to its successor"
                );
            }
        }
        Err(error) => tracing::warn!(%error, "cannot make the sunset shifts due"),
    }
}

/// Starts the task that listens on PostgreSQL for commits of any control
/// plane (`LISTEN`, see [`crate::store::CHANGE_CHANNEL`]) and wakes the
/// publisher through `changed`, so a change another replica committed is
/// published within milliseconds rather than at the next poll. The poll stays
/// as the fallback while the listening connection is down. Tracked by
/// `tasks`; stops on `shutdown`.
pub(crate) fn spawn_change_listener(
    database_url: String,
    changed: Arc<Notify>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) {
    // Tracked: lives as long as the service, stops on shutdown.
    tasks.spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let listened = tokio::select! {
                () = shutdown.cancelled() => return,
                listened = listen(&database_url, &changed) => listened,
            };
            if let Err(error) = listened {
                tracing::warn!(%error, "cannot listen for config changes; polling meanwhile");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    });
}

/// Listens until the connection fails, waking the publisher per notification.
async fn listen(database_url: &str, changed: &Notify) -> Result<()> {
    let mut listener = sqlx::postgres::PgListener::connect(database_url).await?;
    listener.listen(crate::store::CHANGE_CHANNEL).await?;
    tracing::debug!("listening for config changes");
    // Whatever committed while the listener was away is picked up now.
    changed.notify_one();
    loop {
        let notification = listener.recv().await?;
        tracing::debug!(version = notification.payload(), "config change notified");
        changed.notify_one();
    }
}

/// Reloads and publishes the snapshot if the stored version differs from the
/// published one.
async fn publish_if_changed(
    store: &ConfigStore,
    sender: &watch::Sender<Arc<Published>>,
) -> Result<()> {
    let published = sender.borrow().snapshot.version;
    if store.version().await? == published {
        return Ok(());
    }
    let snapshot = store.load_snapshot().await?;
    let version = snapshot.version;
    sender.send_if_modified(|current| {
        if current.snapshot.version == version {
            return false;
        }
        *current = Arc::new(current.then(snapshot));
        true
    });
    tracing::info!(version, "control-plane snapshot published");
    Ok(())
}

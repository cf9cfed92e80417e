//! Usage emission: one event per request, batched to the ledger off the data path.
//!
//! Requests hand events to a bounded queue without waiting; a background
//! batcher sends them in `Record` calls of up to `usage_batch_size` events or
//! every `usage_flush_interval`. A full queue drops the event (and counts it)
//! rather than slowing requests down.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use prometheus_client::{metrics::counter::Counter, registry::Registry};
use switchyard_common::{client::LedgerClient, metrics::GaugeFn};
use switchyard_proto::v1::{RecordRequest, UsageEvent};
use tokio::sync::mpsc;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::RouterConfig;

/// Sends usage events to the ledger in the background.
#[derive(Clone)]
pub struct UsageEmitter {
    /// `None` when usage events are switched off.
    sender: Option<mpsc::Sender<UsageEvent>>,
    counts: UsageCounts,
}

/// The usage path's counters.
#[derive(Clone, Default)]
struct UsageCounts {
    /// Dropped because the queue was full.
    dropped: Counter,
    /// Lost because the ledger did not take them.
    lost: Counter,
    /// Taken by the ledger.
    recorded: Counter,
}

impl UsageCounts {
    fn register(registry: &mut Registry) -> Self {
        let counts = Self::default();
        registry.register(
            "usage_events_dropped",
            "Usage events dropped because the router's usage queue was full",
            counts.dropped.clone(),
        );
        registry.register(
            "usage_events_lost",
            "Usage events lost because the ledger did not take them after retries",
            counts.lost.clone(),
        );
        registry.register(
            "usage_events_recorded",
            "Usage events the ledger took",
            counts.recorded.clone(),
        );
        counts
    }
}

impl UsageEmitter {
    /// Starts the batcher. When `shutdown` is cancelled it waits for the
    /// pending settles on `settles`, flushes what it holds and stops.
    pub fn start(
        config: &RouterConfig,
        ledger: LedgerClient,
        registry: &mut Registry,
        tasks: &TaskTracker,
        settles: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        if !config.usage_events {
            // Tracked: nothing to flush, but shutdown still waits for settles.
            tasks.spawn(async move {
                shutdown.cancelled().await;
                settles.close();
                settles.wait().await;
            });
            return Self {
                sender: None,
                counts: UsageCounts::default(),
            };
        }
        let counts = UsageCounts::register(registry);
        let (sender, receiver) = mpsc::channel(config.usage_queue_capacity.max(1));
        let held = Arc::new(AtomicI64::new(0));
        let queue = sender.downgrade();
        let in_batch = held.clone();
        GaugeFn::register(
            registry,
            "usage_queue_depth",
            "Usage events waiting for the ledger: queued, and in the batch being sent",
            move || {
                let queued = queue.upgrade().map_or(0, |sender| {
                    sender.max_capacity().saturating_sub(sender.capacity())
                });
                i64::try_from(queued).unwrap_or(i64::MAX) + in_batch.load(Ordering::Relaxed)
            },
        );
        let batcher = Batcher {
            receiver,
            held,
            counts: counts.clone(),
            client: ledger,
            batch_size: config.usage_batch_size.max(1),
            // A zero interval would panic in `tokio::time::interval`.
            flush_interval: config.usage_flush_interval.max(Duration::from_millis(1)),
        };
        // Tracked: the batcher must finish its last flush before the process exits.
        tasks.spawn(batcher.run(settles, shutdown));
        Self {
            sender: Some(sender),
            counts,
        }
    }

    /// Queues an event without waiting. Drops it when the queue is full.
    pub fn emit(&self, event: UsageEvent) {
        let Some(sender) = &self.sender else {
            return;
        };
        if sender.try_send(event).is_err() {
            let dropped = self.counts.dropped.inc() + 1;
            tracing::warn!(dropped, "usage queue full or closed; usage event dropped");
        }
    }
}

struct Batcher {
    receiver: mpsc::Receiver<UsageEvent>,
    /// Events taken from the queue and not yet sent.
    held: Arc<AtomicI64>,
    counts: UsageCounts,
    client: LedgerClient,
    batch_size: usize,
    flush_interval: Duration,
}

impl Batcher {
    async fn run(mut self, settles: TaskTracker, shutdown: CancellationToken) {
        let mut batch = Vec::with_capacity(self.batch_size);
        let mut ticker = tokio::time::interval(self.flush_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                received = self.receiver.recv_many(&mut batch, self.batch_size) => {
                    if received == 0 {
                        break;
                    }
                    self.held.fetch_add(i64::try_from(received).unwrap_or(i64::MAX), Ordering::Relaxed);
                    if batch.len() >= self.batch_size {
                        self.flush(&mut batch).await;
                    }
                }
                _ = ticker.tick() => {
                    if !batch.is_empty() {
                        self.flush(&mut batch).await;
                    }
                }
                () = shutdown.cancelled() => break,
            }
        }
        // Settles still running may queue events: let them finish first, then
        // take whatever is queued and send it all.
        settles.close();
        settles.wait().await;
        self.receiver.close();
        while let Some(event) = self.receiver.recv().await {
            self.held.fetch_add(1, Ordering::Relaxed);
            batch.push(event);
            if batch.len() >= self.batch_size {
                self.flush(&mut batch).await;
            }
        }
        self.flush(&mut batch).await;
    }

    /// Sends the batch, retrying transient failures a few times.
    async fn flush(&mut self, batch: &mut Vec<UsageEvent>) {
        if batch.is_empty() {
            return;
        }
        let events = std::mem::take(batch);
        let count = events.len();
        let counted = u64::try_from(count).unwrap_or(u64::MAX);
        let request = RecordRequest { events };
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=4 {
            let record = self.client.record(&request);
            let result = match tokio::time::timeout(Duration::from_secs(10), record).await {
                Ok(result) => result,
                Err(_elapsed) => Err(tonic::Status::deadline_exceeded("ledger did not answer")),
            };
            match result {
                Ok(_) => {
                    self.counts.recorded.inc_by(counted);
                    break;
                }
                Err(status) if attempt < 4 => {
                    tracing::warn!(code = ?status.code(), attempt, "ledger record failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 4;
                }
                Err(status) => {
                    self.counts.lost.inc_by(counted);
                    tracing::error!(code = ?status.code(), count, "ledger unreachable; usage events lost");
                }
            }
        }
        self.held
            .fetch_sub(i64::try_from(count).unwrap_or(i64::MAX), Ordering::Relaxed);
    }
}

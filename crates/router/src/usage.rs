//! Usage emission: one event per request, batched to the ledger off the data path.
//!
//! Requests hand events to a bounded queue without waiting; a background
//! batcher sends them in `Record` calls of up to `usage_batch_size` events or
//! every `usage_flush_interval`. A full queue drops the event (and counts it)
//! rather than slowing requests down.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use switchyard_common::client::LedgerClient;
use switchyard_proto::v1::{RecordRequest, UsageEvent};
use tokio::sync::mpsc;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::RouterConfig;

/// Sends usage events to the ledger in the background.
#[derive(Clone)]
pub struct UsageEmitter {
    /// `None` when usage events are switched off.
    sender: Option<mpsc::Sender<UsageEvent>>,
    dropped: Arc<AtomicU64>,
}

impl UsageEmitter {
    /// Starts the batcher. When `shutdown` is cancelled it waits for the
    /// pending settles on `settles`, flushes what it holds and stops.
    pub fn start(
        config: &RouterConfig,
        ledger: LedgerClient,
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
                dropped: Arc::new(AtomicU64::new(0)),
            };
        }
        let (sender, receiver) = mpsc::channel(config.usage_queue_capacity.max(1));
        let batcher = Batcher {
            receiver,
            client: ledger,
            batch_size: config.usage_batch_size.max(1),
            // A zero interval would panic in `tokio::time::interval`.
            flush_interval: config.usage_flush_interval.max(Duration::from_millis(1)),
        };
        // Tracked: the batcher must finish its last flush before the process exits.
        tasks.spawn(batcher.run(settles, shutdown));
        Self {
            sender: Some(sender),
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queues an event without waiting. Drops it when the queue is full.
    pub fn emit(&self, event: UsageEvent) {
        let Some(sender) = &self.sender else {
            return;
        };
        if sender.try_send(event).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(dropped, "usage queue full or closed; usage event dropped");
        }
    }
}

struct Batcher {
    receiver: mpsc::Receiver<UsageEvent>,
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
        let request = RecordRequest { events };
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=4 {
            let record = self.client.record(&request);
            let result = match tokio::time::timeout(Duration::from_secs(10), record).await {
                Ok(result) => result,
                Err(_elapsed) => Err(tonic::Status::deadline_exceeded("ledger did not answer")),
            };
            match result {
                Ok(_) => return,
                Err(status) if attempt < 4 => {
                    tracing::warn!(code = ?status.code(), attempt, "ledger record failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 4;
                }
                Err(status) => {
                    tracing::error!(code = ?status.code(), count, "ledger unreachable; usage events lost");
                }
            }
        }
    }
}
